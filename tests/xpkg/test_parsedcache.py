"""The parsed-package cache: round trips, version stamps, damage, atomic writes."""

from __future__ import annotations

import copy
import hashlib
import json
import pickle
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from xplane.xpkg import parsedcache
from xplane.xpkg.errors import PackageError, YAMLError
from xplane.xpkg.parsedcache import ParsedCache
from xplane.xpkg.yaml import parse_stream

DATA = (
    b"---\napiVersion: meta.pkg.crossplane.io/v1\nkind: Provider\nmetadata: {name: p}\n---\n"
    b"kind: CRD\nspec: {a: 1, a: 2, big: 12345678901234567890, f: 2.5, n: null, t: yes, s: '012'}\n"
)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _split(entry: bytes) -> tuple[dict[str, Any], bytes]:
    """An entry's index (decoded) and its payloads, read without the library."""
    assert entry.startswith(parsedcache._STAMP)
    head, rest = entry[len(parsedcache._STAMP) :].split(b"\n", 1)
    length, crc = head.split(b" ")
    index = rest[: int(length)]
    assert zlib.crc32(index) == int(crc, 16)
    return json.loads(index), rest[int(length) :]


def _index(entry: bytes) -> dict[str, Any]:
    return _split(entry)[0]


def _join(index: dict[str, Any], payloads: bytes) -> bytes:
    raw = json.dumps(index).encode()
    return parsedcache._STAMP + f"{len(raw)} {zlib.crc32(raw):08x}\n".encode() + raw + payloads


def _stored(tmp_path: Path, data: bytes = DATA) -> tuple[ParsedCache, str, Path]:
    cache = ParsedCache(tmp_path)
    d = _digest(data)
    return cache, d, cache.put(d, parse_stream(data, file="package.yaml"))


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
    assert _index(cache.path(d).read_bytes())["documents"][0][9] == "j"
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


def test_the_index_describes_every_document(tmp_path: Path) -> None:
    _, _, path = _stored(tmp_path)
    index, payloads = _split(path.read_bytes())
    assert index["size"] == len(payloads)
    rows = index["documents"]
    second = DATA.index(b"kind: CRD")
    assert [r[:7] for r in rows] == [
        ["meta.pkg.crossplane.io/v1", "Provider", "p", "package.yaml", 2, 1, 0],
        ["", "CRD", "", "package.yaml", 6, 1, second],
    ]
    for r in rows:  # each payload is the document's own JSON, at the range the index names
        start, length, codec, crc = r[7:]
        assert codec == "o" and zlib.crc32(payloads[start : start + length]) == crc
    assert json.loads(payloads[rows[0][7] : rows[0][7] + rows[0][8]])["metadata"] == {"name": "p"}


def test_a_hit_decodes_documents_only_when_asked(tmp_path: Path) -> None:
    cache, d, _ = _stored(tmp_path)
    got = cache.get(d)
    assert got is not None
    assert [x.loaded for x in got] == [False, False]
    # kinds, names, lookups and positions come from the index
    assert got.kinds() == {"meta.pkg.crossplane.io/v1/Provider": 1, "CRD": 1}
    assert [(x.api_version, x.kind, x.name, x.where) for x in got] == [
        ("meta.pkg.crossplane.io/v1", "Provider", "p", "package.yaml:2:1"),
        ("", "CRD", "", "package.yaml:6:1"),
    ]
    meta = got.find("meta.pkg.crossplane.io/v1", "Provider", "p")
    assert meta is got.documents[0] and got.by_kind("", "CRD") == (got.documents[1],)
    assert "not decoded" in repr(meta)
    assert [x.loaded for x in got] == [False, False]
    assert meta.doc["metadata"]["name"] == "p"
    assert meta.doc is meta.doc  # decoded once and kept
    assert [x.loaded for x in got] == [True, False]


def test_lazy_documents_compare_copy_and_pickle_as_values(tmp_path: Path) -> None:
    cache, d, _ = _stored(tmp_path)
    fresh = parse_stream(DATA, file="package.yaml")
    got = cache.get(d)
    assert got is not None
    assert pickle.loads(pickle.dumps(got)) == fresh
    assert copy.deepcopy(got.documents[1]) == fresh.documents[1]
    assert got.documents[0] != got.documents[1]


def test_a_truncated_entry_is_a_miss_and_removed(tmp_path: Path) -> None:
    cache, d, path = _stored(tmp_path)
    path.write_bytes(path.read_bytes()[:-5])
    assert cache.get(d) is None and not path.exists()


def test_a_damaged_index_is_a_miss_and_removed(tmp_path: Path) -> None:
    cache, d, path = _stored(tmp_path)
    raw = bytearray(path.read_bytes())
    i = raw.index(b'"Provider"')
    raw[i + 1] = ord("Q")  # the index checksum no longer matches
    path.write_bytes(bytes(raw))
    assert cache.get(d) is None and not path.exists()


def _damage_payload(path: Path, doc: int, change: Callable[[bytes], bytes]) -> None:
    index, payloads = _split(path.read_bytes())
    start, length = index["documents"][doc][7:9]
    new = change(payloads[start : start + length])
    assert len(new) == length
    path.write_bytes(_join(index, payloads[:start] + new + payloads[start + length :]))


@pytest.mark.parametrize(
    ("doc", "change"),
    [
        (
            1,
            lambda b: b.replace(b'"f":2.5', b'"f":3.5'),
        ),  # still valid JSON, index intact: the CRC catches it
        (0, lambda b: b[:-1] + b"!"),
    ],
)
def test_a_damaged_payload_raises_naming_the_entry_and_removes_it(
    tmp_path: Path, doc: int, change: Callable[[bytes], bytes]
) -> None:
    cache, d, path = _stored(tmp_path)
    _damage_payload(path, doc, change)
    got = cache.get(d)
    assert got is not None  # the index is intact; the damage shows when the document is decoded
    assert got.documents[1 - doc].doc == parse_stream(DATA).documents[1 - doc].doc  # the other one decodes
    with pytest.raises(PackageError, match="parsed-package cache entry") as e:
        _ = got.documents[doc].doc
    where = ("package.yaml:2:1", "package.yaml:6:1")[doc]
    msg = str(e.value)
    assert str(path) in msg and "checksum mismatch" in msg and f"document {doc + 1} of 2 ({where})" in msg
    assert "removed" in msg and not path.exists()
    with pytest.raises(PackageError):  # never a value later either
        _ = got.documents[doc].doc
    # the next read parses again and stores a good entry
    assert cache.load(d, lambda: DATA) == parse_stream(DATA, file="package.yaml")
    assert path.exists()


def test_a_payload_that_contradicts_the_index_is_damage(tmp_path: Path) -> None:
    cache, d, path = _stored(tmp_path)
    index, payloads = _split(path.read_bytes())
    start, length = index["documents"][0][7:9]
    new = payloads[start : start + length].replace(b'"Provider"', b'"Providex"')
    index["documents"][0][10] = zlib.crc32(new)  # a consistent checksum: only the index check remains
    path.write_bytes(_join(index, payloads[:start] + new + payloads[start + length :]))
    got = cache.get(d)
    assert got is not None and got.documents[0].kind == "Provider"
    with pytest.raises(PackageError, match="does not match the index"):
        _ = got.documents[0].doc
    assert not path.exists()


def test_a_stale_reader_does_not_remove_a_newer_entry(tmp_path: Path) -> None:
    cache, d, path = _stored(tmp_path)
    _damage_payload(path, 0, lambda b: b[:-1] + b"!")
    got = cache.get(d)
    assert got is not None
    cache.put(d, parse_stream(DATA, file="package.yaml"))  # another process rewrote the entry meanwhile
    with pytest.raises(PackageError, match="checksum mismatch"):
        _ = got.documents[0].doc
    assert path.exists() and cache.get(d) == parse_stream(DATA, file="package.yaml")


def test_decode_all_decodes_every_document_or_raises(tmp_path: Path) -> None:
    cache, d, path = _stored(tmp_path)
    got = cache.get(d)
    assert got is not None
    got.decode_all()
    assert all(x.loaded for x in got) and got == parse_stream(DATA, file="package.yaml")
    _damage_payload(path, 1, lambda b: b[:-1] + b"!")
    damaged = cache.get(d)
    assert damaged is not None
    with pytest.raises(PackageError, match="document 2 of 2"):
        damaged.decode_all()
