"""Issue 8, items 4, 6, 7 and 9: hostile archives and damaged caches, attacked and bounded.

Each test runs the attack against archives or caches it builds (tests/oci/hostile.py) and asserts
the bound: memory (peak RSS growth of a fresh interpreter), time, and that only a located
``xp: error`` comes out, never a traceback, and never a tag for an image that does not load.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.cli.test_xpkg_pull_cli import xp
from tests.oci.hostile import (
    MiB,
    canonical,
    deep_json,
    docker_config,
    docker_save,
    gzip_bomb,
    measure,
    oci_layout,
    sha256,
    tar_bytes,
    zeros_digest,
)
from tests.support.images import layer_tar, make_test_image
from xplane.oci.archive import ArchiveLimits, load_archive
from xplane.oci.cache import ImageCache
from xplane.oci.errors import ArchiveError
from xplane.oci.imagepull import PullPolicy, pull

REF = "example.com/org/pkg:v1"
SRC = str(Path(__file__).resolve().parents[2] / "src")


def _good_layer() -> tuple[bytes, str]:
    import gzip

    tar = layer_tar({"package.yaml": b"a: 1\n"})
    return gzip.compress(tar, mtime=0), sha256(tar)


# -- item 6: gzip bombs in docker-save tarballs ------------------------------------------------


def test_gzip_bomb_stops_at_max_total_size_on_inflated_bytes(tmp_path: Path) -> None:
    """The issue's tarball: 4 MB on disk, a 4 GiB layer. --max-total-size 10M stops it at ~10 MiB."""
    bomb = gzip_bomb(4096)
    archive = docker_save(
        tmp_path / "bomb.tar", config=docker_config([zeros_digest(1)]), layers=[("l/layer.tar", bomb)]
    )
    assert archive.stat().st_size < 5 * MiB
    cache = tmp_path / "cache"
    m = measure(
        "from xplane.cli.main import cli\nfrom xplane.cli.output import run_cli",
        f"result = run_cli(cli, ['xpkg', 'load', {str(archive)!r}, '--max-total-size', '10M', "
        f"'--cache-dir', {str(cache)!r}])",
        env={"PYTHONPATH": SRC},
    )
    assert m.outcome == "ok" and m.value == 1  # exit code 1, an xplane error
    assert m.seconds < 2.0, m  # was 25 s
    assert m.rss_growth < 32 * MiB, m  # was 2.1 GB
    r = xp("xpkg", "load", str(archive), "--max-total-size", "10M", cache=cache)
    assert r.returncode == 1 and r.stderr.startswith("xp: error: ")
    assert "inflate to more than 10485760 bytes" in r.stderr and "hint: raise --max-total-size" in r.stderr
    assert ImageCache(cache).entries() == []
    assert not [p for p in ImageCache(cache).blobs_dir.iterdir() if p.stat().st_size > MiB]


def test_gzip_bomb_inflates_in_bounded_memory(tmp_path: Path) -> None:
    """Within the limits, a layer inflating to 256 MiB is checked in a few MiB of memory."""
    mib = 256
    archive = docker_save(
        tmp_path / "big.tar",
        config=docker_config([zeros_digest(mib)]),
        layers=[("l/layer.tar", gzip_bomb(mib))],
    )
    m = measure(
        "from xplane.oci.archive import load_archive\nfrom xplane.oci.cache import ImageCache",
        f"result = load_archive({str(archive)!r}, cache=ImageCache({str(tmp_path / 'cache')!r})).digest",
        env={"PYTHONPATH": SRC},
    )
    assert m.outcome == "ok", m  # the diff_id matched: all 256 MiB were inflated and hashed
    assert m.rss_growth < 48 * MiB, m  # the old check inflated each 1 MiB read whole: +256 MiB here


def test_gzip_bomb_layer_over_member_limit(tmp_path: Path) -> None:
    archive = docker_save(
        tmp_path / "b.tar", config=docker_config([zeros_digest(1)]), layers=[("l/layer.tar", gzip_bomb(64))]
    )
    start = time.monotonic()
    with pytest.raises(ArchiveError, match="'l/layer.tar' inflates to more than 8388608 bytes"):
        load_archive(
            archive, cache=ImageCache(tmp_path / "c"), limits=ArchiveLimits(max_member_bytes=8 * MiB)
        )
    assert time.monotonic() - start < 1.0


def test_concatenated_gzip_members_and_trailing_zeros_are_read_as_go_reads_them(tmp_path: Path) -> None:
    import gzip

    tar = layer_tar({"package.yaml": b"a: 1\n", "pad": b"x" * 5000})
    two = gzip.compress(tar[:1024], mtime=0) + gzip.compress(tar[1024:], mtime=0) + b"\0" * 512
    archive = docker_save(
        tmp_path / "m.tar", config=docker_config([sha256(tar)]), layers=[("l/layer.tar", two)]
    )
    image = load_archive(archive, cache=ImageCache(tmp_path / "c"))
    assert image.layer_path(0).read_bytes() == two
    truncated = docker_save(
        tmp_path / "t.tar",
        config=docker_config([sha256(tar)]),
        layers=[("l/layer.tar", gzip.compress(tar)[:-20])],
    )
    with pytest.raises(ArchiveError, match="is not valid gzip"):
        load_archive(truncated, cache=ImageCache(tmp_path / "c"))


def _zstd_zeros(mib: int) -> bytes:
    """A zstd stream of ``mib`` MiB of zeros: a few hundred bytes per MiB."""
    import io

    import zstandard

    out = io.BytesIO()
    with zstandard.ZstdCompressor(level=1).stream_writer(out, closefd=False) as w:
        for _ in range(mib):
            w.write(b"\0" * MiB)
    return out.getvalue()


def test_zstd_layers_have_their_diff_id_checked(tmp_path: Path) -> None:
    import zstandard

    from xplane.oci.models import OCI_LAYER_ZSTD

    tar = layer_tar({"package.yaml": b"a: 1\n", "pad": b"x" * 5000})
    blob = zstandard.ZstdCompressor().compress(tar[:2048]) + zstandard.ZstdCompressor().compress(tar[2048:])
    good = docker_save(tmp_path / "z.tar", config=docker_config([sha256(tar)]), layers=[("l.tar.zst", blob)])
    image = load_archive(good, cache=ImageCache(tmp_path / "c"))
    assert image.layers[0].media_type == OCI_LAYER_ZSTD and image.layer_path(0).read_bytes() == blob
    other = docker_save(
        tmp_path / "o.tar", config=docker_config([sha256(tar + b"\0")]), layers=[("l.tar.zst", blob)]
    )
    with pytest.raises(ArchiveError, match="does not match the config's diff_id"):
        load_archive(other, cache=ImageCache(tmp_path / "c2"))
    damaged = docker_save(
        tmp_path / "d.tar",
        config=docker_config([sha256(tar)]),
        layers=[("l.tar.zst", blob[:6] + b"\xff" * 20)],
    )
    with pytest.raises(ArchiveError, match="is not valid zstd|does not match the config's diff_id"):
        load_archive(damaged, cache=ImageCache(tmp_path / "c3"))
    assert ImageCache(tmp_path / "c3").entries() == []


def test_zstd_bomb_stops_at_max_total_size_in_bounded_memory(tmp_path: Path) -> None:
    bomb = _zstd_zeros(1024)
    assert len(bomb) < MiB
    archive = docker_save(
        tmp_path / "bomb.tar", config=docker_config([zeros_digest(1)]), layers=[("l.tar.zst", bomb)]
    )
    m = measure(
        "from xplane.oci.archive import ArchiveLimits, load_archive\nfrom xplane.oci.cache import ImageCache",
        f"result = load_archive({str(archive)!r}, cache=ImageCache({str(tmp_path / 'cache')!r}), "
        f"limits=ArchiveLimits(max_total_bytes={10 * MiB}))",
        env={"PYTHONPATH": SRC},
    )
    assert m.outcome != "ok" and "inflate to more than 10485760 bytes" in str(m), m
    assert m.seconds < 2.0 and m.rss_growth < 32 * MiB, m


# -- items 4 and 9: deep JSON and wrong JSON types -------------------------------------------------


def _deep_config_docker(tmp_path: Path) -> Path:
    layer, diff_id = _good_layer()
    config = canonical({"rootfs": {"type": "layers", "diff_ids": [diff_id]}, "x": "PLACEHOLDER"})
    config = config.replace(b'"PLACEHOLDER"', deep_json(5000))
    return docker_save(tmp_path / "deep.tar", config=config, layers=[("l/layer.tar", layer)])


def _deep_config_oci(tmp_path: Path) -> Path:
    layer, _ = _good_layer()
    return oci_layout(tmp_path / "deep-layout", config=b'{"x":' + deep_json(5000) + b"}", layers=[layer]).path


@pytest.mark.parametrize("make", [_deep_config_docker, _deep_config_oci], ids=["docker-save", "oci-layout"])
def test_deep_config_is_refused_and_records_no_tag(tmp_path: Path, make: object) -> None:
    archive = make(tmp_path)  # type: ignore[operator]
    cache = tmp_path / "cache"
    r = xp("xpkg", "load", str(archive), "--ref", REF, cache=cache)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith(f"xp: error: {archive}: config") and "nested deeper than 64 levels" in r.stderr
    assert "hint: " in r.stderr
    assert ImageCache(cache).entries() == []
    for cmd in (("ls",), ("du",), ("prune",)):
        assert xp("cache", *cmd, cache=cache).returncode == 0


def _manifest_entry(**fields: object) -> bytes:
    return canonical([{"Config": "config.json", "RepoTags": [REF], "Layers": ["l/layer.tar"], **fields}])


HOSTILE_DOCKER = {
    "RepoTags is a number": _manifest_entry(RepoTags=5),
    "RepoTags holds a number": _manifest_entry(RepoTags=[5]),
    "Layers is a string": _manifest_entry(Layers="l/layer.tar"),
    "manifest.json is an object": b'{"Config": "config.json"}',
    "manifest.json is deep": deep_json(100_000),
    "manifest.json is deep objects": b'{"a":' * 5000 + b"1" + b"}" * 5000,
    "manifest.json is not JSON": b"\xff\xfe not json",
    "manifest.json has a huge number": b"[" + b"9" * 5000 + b"]",
}


@pytest.mark.parametrize("manifest_json", HOSTILE_DOCKER.values(), ids=HOSTILE_DOCKER.keys())
def test_hostile_manifest_json_is_a_located_hinted_error(tmp_path: Path, manifest_json: bytes) -> None:
    layer, diff_id = _good_layer()
    archive = docker_save(
        tmp_path / "a.tar",
        config=docker_config([diff_id]),
        layers=[("l/layer.tar", layer)],
        manifest_json=manifest_json,
    )
    r = xp("xpkg", "load", str(archive), "--ref", REF, cache=tmp_path / "cache")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith(f"xp: error: {archive}: ") and "manifest.json" in r.stderr
    assert "\n  hint: " in r.stderr, r.stderr


HOSTILE_OCI = {
    "index.json is deep": deep_json(100_000),
    "index.json is a list": b"[]",
    "index.json manifests is a string": b'{"schemaVersion":2,"manifests":"x"}',
    "descriptor urls is a number": canonical(
        {
            "schemaVersion": 2,
            "manifests": [{"mediaType": "x", "digest": "sha256:" + "0" * 64, "size": 1, "urls": 5}],
        }
    ),
    "platform features is a number": canonical(
        {
            "schemaVersion": 2,
            "manifests": [
                {"digest": "sha256:" + "0" * 64, "size": 1, "platform": {"os": "linux", "os.features": 7}}
            ],
        }
    ),
    "annotations is a string": b'{"schemaVersion":2,"manifests":[],"annotations":"ab"}',
}


@pytest.mark.parametrize("index_json", HOSTILE_OCI.values(), ids=HOSTILE_OCI.keys())
def test_hostile_index_json_is_a_located_hinted_error(tmp_path: Path, index_json: bytes) -> None:
    layer, _ = _good_layer()
    layout = oci_layout(tmp_path / "layout", config=b"{}", layers=[layer], index_json=index_json).path
    for source in (layout, tmp_path / "layout.tar"):
        if source.suffix == ".tar":
            members = [
                (str(p.relative_to(layout)), p.read_bytes()) for p in sorted(layout.rglob("*")) if p.is_file()
            ]
            source.write_bytes(tar_bytes(members, compress=True))
        r = xp("xpkg", "load", str(source), "--ref", REF, cache=tmp_path / "cache")
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        assert r.stderr.startswith(f"xp: error: {source}: index.json") and "\n  hint: " in r.stderr, r.stderr


# -- items 4 and 7: the cache commands --------------------------------------------------------------


def _poisoned_cache(tmp_path: Path) -> tuple[ImageCache, str]:
    """A cache with one good image and three damaged entries, as an older xplane could leave them."""
    cache = ImageCache(tmp_path / "cache")
    good = make_test_image(tmp_path / "good")
    loaded = load_archive(good.archive, "example.com/org/good:v1", cache=cache)
    from xplane.oci.reference import Reference

    deep = cache.write_blob(None, deep_json(100_000))  # a "manifest" a pull used to accept
    cache.set_tag(Reference.parse("example.com/org/deep:v1"), deep)
    big = cache.write_blob(None, b"{" + b" " * (17 * MiB) + b"}")
    cache.set_tag(Reference.parse("example.com/org/big:v1"), big)
    odd = cache.refs_dir / "example.com" / "org" / "odd" / "_tags.json"
    odd.parent.mkdir(parents=True)
    odd.write_text(
        json.dumps({"tags": {"v1": {"digest": "sha512:" + "0" * 128, "resolvedAt": 5}}, "digests": {"x": 3}})
    )
    (cache.refs_dir / "example.com" / "org" / "worse").mkdir()
    (cache.refs_dir / "example.com" / "org" / "worse" / "_tags.json").write_bytes(deep_json(100_000))
    return cache, loaded.manifest_digest


def test_cache_commands_report_damaged_entries_and_carry_on(tmp_path: Path) -> None:
    cache, good = _poisoned_cache(tmp_path)
    c = cache.root
    r = xp("cache", "ls", cache=c)
    assert r.returncode == 0, r.stderr
    assert "example.com/org/good" in r.stdout and "example.com/org/deep" in r.stdout
    assert "example.com/org/deep:v1: warning: cached manifest sha256:" in r.stderr
    assert "nested deeper than 64 levels" in r.stderr and "over the 16 MiB" in r.stderr
    assert "hint: remove a damaged image with 'xp cache rm REF'" in r.stderr
    doc = json.loads(xp("cache", "ls", "-o", "json", cache=c).stdout)
    by_repo = {i["repository"]: i for i in doc["images"]}
    assert "problems" not in by_repo["example.com/org/good"] and by_repo["example.com/org/deep"]["problems"]
    assert by_repo["example.com/org/odd"]["resolvedAt"] is None  # a number in the index is not passed on
    r = xp("cache", "du", "-o", "json", cache=c)
    assert r.returncode == 0 and json.loads(r.stdout)["images"] == 4 and "warning:" in r.stderr
    r = xp("cache", "prune", cache=c)
    assert r.returncode == 0 and "warning:" in r.stderr, r.stderr
    image = pull("example.com/org/good:v1", policy=PullPolicy.NEVER, cache=cache)  # kept whole
    assert image.manifest_digest == good
    r = xp("cache", "rm", "example.com/org/deep:v1", "example.com/org/big:v1", cache=c)
    assert r.returncode == 0 and "org/deep:v1: warning" not in r.stderr, r.stderr
    assert "Untagged: example.com/org/deep:v1" in r.stdout


def test_deep_json_in_a_layer_poisons_nothing(tmp_path: Path) -> None:
    layout = oci_layout(
        tmp_path / "l", config=b'{"architecture":"amd64","os":"linux"}', layers=[deep_json(200_000)]
    )
    c = tmp_path / "cache"
    assert xp("xpkg", "load", str(layout.path), "--ref", REF, cache=c).returncode == 0
    for cmd in (("ls",), ("ls", "-o", "json"), ("du",), ("prune",)):
        r = xp("cache", *cmd, cache=c)
        assert r.returncode == 0 and r.stderr == "", (cmd, r.stderr)


def test_cache_ls_never_reads_layers(tmp_path: Path) -> None:
    """The issue's cache: one image with a 300 MiB layer. ``ls``, ``du`` and ``prune`` only stat it."""
    layer_size = 300 * MiB
    layer_digest = "sha256:" + "ab" * 32  # never hashed: nothing reads the layer
    cache = ImageCache(tmp_path / "cache")
    config = b'{"architecture":"amd64","os":"linux"}'
    manifest = canonical(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sha256(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer_digest,
                    "size": layer_size,
                }
            ],
        }
    )
    cache.write_blob(None, config)
    top = cache.write_blob(None, manifest)
    with cache.blob_path(layer_digest).open("wb") as f:
        f.truncate(layer_size)  # sparse: costs no disk, but reads as 300 MiB
    from xplane.oci.reference import Reference

    cache.set_tag(Reference.parse(REF), top)
    setup = "from xplane.cli.main import cli\nfrom xplane.cli.output import run_cli"
    for cmd in ("ls", "du"):
        m = measure(
            setup,
            f"result = run_cli(cli, ['cache', {cmd!r}, '--cache-dir', {str(cache.root)!r}])",
            env={"PYTHONPATH": SRC},
        )
        assert m.outcome == "ok" and m.value == 0, m
        assert m.rss_growth < 32 * MiB, (cmd, m)  # was 636 MB for ls
    doc = json.loads(xp("cache", "ls", "-o", "json", cache=cache.root).stdout)
    assert doc["images"][0]["size"] == layer_size + len(config) + len(manifest)


def test_pull_of_an_image_with_a_deep_config_records_no_tag(
    tmp_path: Path, registry_plain: object, unique_repo: str
) -> None:
    import io

    from tests.oci.test_pull import make_client
    from xplane.oci.errors import ManifestError
    from xplane.oci.reference import Reference

    layer, _ = _good_layer()
    config = b'{"x":' + deep_json(5000) + b"}"
    manifest = canonical(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sha256(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": sha256(layer),
                    "size": len(layer),
                }
            ],
        }
    )
    ref = Reference.parse(f"{registry_plain.host}/{unique_repo}:v1")  # type: ignore[attr-defined]
    cache = ImageCache(tmp_path / "cache")
    with make_client() as client:
        for blob in (config, layer):
            client.push_blob(ref, sha256(blob), len(blob), lambda b=blob: io.BytesIO(b))  # type: ignore[misc]
        client.put_manifest(ref, manifest, "application/vnd.oci.image.manifest.v1+json")
        with pytest.raises(ManifestError, match="nested deeper than 64 levels"):
            pull(ref, cache=cache, client=client)
    assert cache.entries() == []  # the tag was recorded before the config was ever read
    r = xp("xpkg", "pull", str(ref), "--pull-policy", "Never", cache=cache.root)
    assert r.returncode == 3
    assert xp("cache", "ls", cache=cache.root).returncode == 0


def test_measure_sees_memory(tmp_path: Path) -> None:
    """The RSS probe the bounds above rely on does register a 64 MiB allocation."""
    m = measure("", "result = len(b'x' * (64 << 20))")
    assert 56 * MiB < m.rss_growth < 80 * MiB, m
