"""``xp cache ls|rm|prune|du``."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_xpkg_pull_cli import xp
from tests.support.images import make_test_image
from xplane.cli.cache import age, human_size, table


def test_helpers() -> None:
    assert human_size(512) == "512B" and human_size(4096) == "4.0KiB" and human_size(3 << 20) == "3.0MiB"
    assert age(None) == "<unknown>" and age("2020-01-01T00:00:00Z", now=1577836800 + 90) == "1m"
    assert age("2020-01-01T00:00:00Z", now=1577836800 + 5 * 86400) == "5d"
    assert table(["A", "BB"], [["xxx", "y"]]) == "A     BB\nxxx   y"


def test_ls_rm_prune_du(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    r = xp("cache", "ls", cache=cache)
    assert r.returncode == 0 and r.stdout == "" and "No images" in r.stderr
    a = make_test_image(tmp_path, archive=tmp_path / "a.tar", layout=tmp_path / "la", package_yaml="a: 1\n")
    b = make_test_image(tmp_path, archive=tmp_path / "b.tar", layout=tmp_path / "lb", package_yaml="b: 1\n")
    assert xp("xpkg", "load", str(a.layout), "--ref", "127.0.0.1:5000/org/a:v1", cache=cache).returncode == 0
    assert xp("xpkg", "load", str(b.layout), "--ref", "127.0.0.1:5000/org/b:v1", cache=cache).returncode == 0

    r = xp("cache", "ls", cache=cache)
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["REPOSITORY", "TAG", "DIGEST", "SIZE", "PULLED"]
    assert lines[1].split()[:3] == ["127.0.0.1:5000/org/a", "v1", a.manifest_digest[:19]]
    assert len(lines) == 3
    doc = json.loads(xp("cache", "ls", "-o", "json", cache=cache).stdout)
    sizes = {i["repository"]: i["size"] for i in doc["images"]}
    assert sizes["127.0.0.1:5000/org/a"] == len(a.manifest) + len(a.config) + len(a.layer)
    assert doc["images"][0]["source"].startswith("archive:")

    du = json.loads(xp("cache", "du", "-o", "json", cache=cache).stdout)
    assert du["images"] == 2 and du["blobs"] == 6 and du["reclaimableBytes"] == 0

    r = xp("cache", "rm", "127.0.0.1:5000/org/b:v1", "--no-prune", cache=cache)
    assert r.returncode == 0 and "Untagged: 127.0.0.1:5000/org/b:v1" in r.stdout
    du = json.loads(xp("cache", "du", "-o", "json", cache=cache).stdout)
    assert du["images"] == 1 and du["reclaimableBytes"] == len(b.manifest) + len(b.config) + len(b.layer)
    dry = json.loads(xp("cache", "prune", "--dry-run", "-o", "json", cache=cache).stdout)
    assert dry == {"blobs": 3, "bytes": du["reclaimableBytes"], "tempFiles": 0, "dryRun": True}
    r = xp("cache", "prune", cache=cache)
    assert r.stdout.startswith("Deleted 3 blobs")
    assert json.loads(xp("cache", "du", "-o", "json", cache=cache).stdout)["blobs"] == 3

    r = xp("cache", "rm", "127.0.0.1:5000/org/a:v1", "127.0.0.1:5000/org/a:nope", cache=cache)
    assert r.returncode == 3 and "not in the cache: 127.0.0.1:5000/org/a:nope" in r.stderr
    assert "Deleted 3 blobs" in r.stdout
    assert json.loads(xp("cache", "du", "-o", "json", cache=cache).stdout)["blobs"] == 0
    r = xp("cache", "du", cache=cache)
    assert r.stdout.split()[:5] == ["CACHE", "IMAGES", "BLOBS", "SIZE", "RECLAIMABLE"]
