"""The parsed-package cache: round trips, version stamps, damage, atomic writes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from xplane.xpkg import parsedcache
from xplane.xpkg.errors import PackageError, YAMLError
from xplane.xpkg.parsedcache import ParsedCache
from xplane.xpkg.stream import parse_stream

DATA = (
    b"---\napiVersion: meta.pkg.crossplane.io/v1\nkind: Provider\nmetadata: {name: p}\n---\n"
    b"kind: CRD\nspec: {a: 1, a: 2, big: 12345678901234567890, f: 2.5, n: null, t: yes, s: '012'}\n"
)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_round_trip_keeps_documents_positions_and_warnings(tmp_path: Path) -> None:
    cache = ParsedCache(tmp_path)
    s = parse_stream(DATA, file="package.yaml")
    d = _digest(DATA)
    assert cache.get(d) is None
    path = cache.put(d, s)
    assert path.parent == tmp_path / "sha256" and not list(path.parent.glob(".tmp-*"))
    got = cache.get(d)
    assert got == s
    assert got is not None and got.documents[1].doc["spec"]["big"] == 12345678901234567890
    assert len(got.warnings) == 3  # the duplicate key and the YAML 1.1 'yes' and key 'n'


def test_integers_beyond_64_bits_fall_back_to_stdlib_json(tmp_path: Path) -> None:
    cache = ParsedCache(tmp_path)
    s = parse_stream("v: 18446744073709551616\n")  # an integral float printed with all its digits
    d = _digest(b"x")
    cache.put(d, s)
    assert cache.path(d).read_bytes().split(b"\n", 1)[1][:1] == b"j"
    assert cache.get(d) == s


def test_load_parses_once_then_reads_the_cache(tmp_path: Path) -> None:
    cache = ParsedCache(tmp_path)
    calls = []

    def read() -> bytes:
        calls.append(1)
        return DATA

    first = cache.load(_digest(DATA), read)
    second = cache.load(_digest(DATA), read)
    assert first == second and len(calls) == 1


def test_parse_errors_are_not_cached(tmp_path: Path) -> None:
    cache = ParsedCache(tmp_path)
    with pytest.raises(YAMLError):
        cache.load(_digest(b"bad"), lambda: b"a: [\n")
    assert cache.get(_digest(b"bad")) is None


def test_another_version_is_a_miss(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = ParsedCache(tmp_path)
    d = _digest(DATA)
    cache.put(d, parse_stream(DATA))
    monkeypatch.setattr(parsedcache, "_STAMP", b"xplane-parsed/1/999\n")
    assert cache.get(d) is None


@pytest.mark.parametrize(
    "content", [b"", b"garbage", parsedcache._STAMP + b"o{not json", parsedcache._STAMP + b"z{}"]
)
def test_damaged_entries_are_misses_and_removed(tmp_path: Path, content: bytes) -> None:
    cache = ParsedCache(tmp_path)
    d = _digest(content)
    cache.path(d).parent.mkdir(parents=True)
    cache.path(d).write_bytes(content)
    assert cache.get(d) is None
    if content.startswith(parsedcache._STAMP):
        assert not cache.path(d).exists()


@pytest.mark.parametrize("digest", ["sha256:abc", "sha256:../../etc/passwd", "md5:" + "0" * 32, "0" * 64])
def test_invalid_digests_are_rejected(tmp_path: Path, digest: str) -> None:
    with pytest.raises(PackageError, match="invalid digest"):
        ParsedCache(tmp_path).path(digest)


def test_default_root_follows_the_image_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XPLANE_CACHE_DIR", str(tmp_path))
    assert ParsedCache().root == tmp_path / "parsed"


def test_remove(tmp_path: Path) -> None:
    cache = ParsedCache(tmp_path)
    d = _digest(DATA)
    cache.put(d, parse_stream(DATA))
    assert cache.remove(d) and not cache.remove(d) and cache.get(d) is None
