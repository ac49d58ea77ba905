"""Issue 8, item 9: random and hostile bytes into every file-format parser; only xplane errors come out.

Entry points: the models (``parse_manifest``, ``Manifest``/``Index``/``Descriptor``/``Platform``
``from_json``), archive loading (docker-save tarballs, OCI archives, compressed or truncated),
OCI layout directories, the cache's tag index and reads, and package reading in ``xplane.xpkg``
(``read_package_yaml`` on a layer, ``open_package`` on a file). Inputs are random JSON, JSON
shaped like the real documents with wrong types in any field, deep nesting, random bytes and
damaged tars. Anything but an :class:`~xplane.errors.XplaneError` (a ``TypeError``, a
``RecursionError``, a ``zlib.error``...) fails the test; so does a hang (hypothesis' deadline).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xplane.errors import XplaneError
from xplane.oci.archive import load_archive
from xplane.oci.cache import ImageCache
from xplane.oci.imagepull import image_from_cache
from xplane.oci.models import (
    DOCKER_MANIFEST,
    MANIFEST_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    Index,
    Manifest,
    Platform,
    parse_manifest,
)
from xplane.oci.reference import Reference

FUZZ = settings(
    max_examples=120, deadline=2000, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
HEX = "a" * 64
DIGEST = f"sha256:{HEX}"

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=16,
)
deep = st.integers(min_value=60, max_value=20_000).flatmap(
    lambda n: st.sampled_from([b"[" * n + b"]" * n, b'{"a":' * n + b"1" + b"}" * n, b"[" * n])
)
descriptor_like = st.fixed_dictionaries(
    {
        "mediaType": st.sampled_from([*MANIFEST_TYPES, "x"]) | json_values,
        "digest": st.just(DIGEST) | json_values,
        "size": st.integers(min_value=-1, max_value=1 << 40) | json_values,
    },
    optional={
        "annotations": st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2) | json_values,
        "platform": st.fixed_dictionaries(
            {"os": st.just("linux") | json_values, "architecture": st.just("amd64") | json_values},
            optional={"variant": json_values, "os.features": json_values, "os.version": json_values},
        )
        | json_values,
        "urls": st.lists(st.text(max_size=5), max_size=2) | json_values,
        "artifactType": json_values,
    },
)
manifest_like = st.fixed_dictionaries(
    {"schemaVersion": st.just(2) | json_values},
    optional={
        "mediaType": st.sampled_from([OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX]) | json_values,
        "config": descriptor_like | json_values,
        "layers": st.lists(descriptor_like, max_size=3) | json_values,
        "manifests": st.lists(descriptor_like, max_size=3) | json_values,
        "annotations": json_values,
        "subject": descriptor_like,
    },
)
documents = (
    st.binary(max_size=200)
    | json_values.map(lambda v: json.dumps(v).encode())
    | manifest_like.map(lambda v: json.dumps(v).encode())
    | deep
)


def only_xplane_errors(call: Callable[[], object]) -> None:
    """Run ``call``; an :class:`XplaneError` is a fine answer, anything else escapes and fails."""
    with contextlib.suppress(XplaneError):
        call()


@FUZZ
@given(data=documents, media_type=st.sampled_from([None, *MANIFEST_TYPES, "text/plain"]))
def test_parse_manifest(data: bytes, media_type: str | None) -> None:
    only_xplane_errors(lambda: parse_manifest(data, media_type))


@FUZZ
@given(doc=json_values | manifest_like | descriptor_like)
def test_model_constructors(doc: Any) -> None:
    for parse in (Descriptor.from_json, Platform.from_json, Manifest.from_json, Index.from_json):
        only_xplane_errors(lambda parse=parse: parse(doc))  # type: ignore[misc]


# -- archives ----------------------------------------------------------------------------------------

member_names = st.sampled_from(
    [
        "manifest.json",
        "index.json",
        "oci-layout",
        "config.json",
        "l/layer.tar",
        f"blobs/sha256/{HEX}",
        "x/../y",
    ]
)
docker_entries = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "Config": st.just("config.json") | json_values,
            "RepoTags": st.lists(st.text(max_size=12), max_size=2) | json_values,
            "Layers": st.lists(st.just("l/layer.tar"), max_size=2) | json_values,
        },
    ),
    max_size=2,
).map(lambda v: json.dumps(v).encode())
member_data = documents | docker_entries | st.binary(min_size=0, max_size=2000)


@st.composite
def archives(draw: st.DrawFn) -> bytes:
    """A tar of hostile members, maybe with a link, maybe gzipped, maybe truncated, or random bytes."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=3000))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in draw(st.lists(st.tuples(member_names, member_data), max_size=6)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        if draw(st.booleans()):
            link = tarfile.TarInfo(draw(member_names))
            link.type = draw(st.sampled_from([tarfile.SYMTYPE, tarfile.LNKTYPE]))
            link.linkname = draw(st.sampled_from(["manifest.json", "../etc/passwd", "/abs", "loop"]))
            tf.addfile(link)
    data = buf.getvalue()
    if draw(st.booleans()):
        data = gzip.compress(data, mtime=0)
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return data


@FUZZ
@given(data=archives(), ref=st.sampled_from([None, "example.com/o/p:v1"]), record=st.booleans())
def test_load_archive_file(data: bytes, ref: str | None, record: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "archive.tar"
        path.write_bytes(data)
        only_xplane_errors(lambda: load_archive(path, ref, cache=ImageCache(Path(tmp) / "c"), record=record))


@FUZZ
@given(index=documents, blob=documents, name=st.sampled_from([HEX, "b" * 64]))
def test_load_oci_layout_directory(index: bytes, blob: bytes, name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        layout = Path(tmp) / "layout"
        (layout / "blobs" / "sha256").mkdir(parents=True)
        (layout / "index.json").write_bytes(index)
        (layout / "blobs" / "sha256" / name).write_bytes(blob)
        only_xplane_errors(
            lambda: load_archive(layout, "example.com/o/p:v1", cache=ImageCache(Path(tmp) / "c"))
        )


def _real_image(manifest: Any, config: bytes) -> bytes:
    """An OCI archive of one image whose manifest is ``manifest`` with the real config descriptor."""
    config_hex = hashlib.sha256(config).hexdigest()
    cfg = {
        "mediaType": "application/vnd.oci.image.config.v1+json",
        "size": len(config),
        "digest": f"sha256:{config_hex}",
    }
    doc = manifest if not isinstance(manifest, dict) else {**manifest, "config": cfg}
    body = json.dumps(doc).encode()
    digest = hashlib.sha256(body).hexdigest()
    index = {
        "schemaVersion": 2,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": f"sha256:{digest}", "size": len(body)}],
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in (
            ("index.json", json.dumps(index).encode()),
            (f"blobs/sha256/{digest}", body),
            (f"blobs/sha256/{config_hex}", config),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@FUZZ
@given(manifest=manifest_like | json_values, config=documents)
def test_load_archive_with_consistent_digests_and_hostile_documents(manifest: Any, config: bytes) -> None:
    """Digests and sizes all match, so the hostile JSON reaches the parsers behind the checks."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a.tar"
        path.write_bytes(_real_image(manifest, config))
        cache = ImageCache(Path(tmp) / "c")
        only_xplane_errors(lambda: load_archive(path, "example.com/o/p:v1", cache=cache))
        for entry in cache.entries():  # a tag is recorded only for an image that reads back whole
            assert image_from_cache(cache, Reference.parse(f"{entry.name}:{entry.tag}"), entry.digest)


# -- the cache --------------------------------------------------------------------------------------


@FUZZ
@given(tags=documents, blob=documents)
def test_cache_reads_any_tag_index_and_blob(tags: bytes, blob: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cache = ImageCache(Path(tmp))
        digest = cache.write_blob(None, blob)
        index = cache.refs_dir / "example.com" / "o" / "p" / "_tags.json"
        index.parent.mkdir(parents=True)
        index.write_bytes(tags)
        (cache.refs_dir / "example.com" / "o" / "q").mkdir()
        cache.set_tag(Reference.parse("example.com/o/q:v1"), digest)
        ref = Reference.parse("example.com/o/p:v1")
        for call in (
            cache.entries,
            cache.disk_usage,
            lambda: cache.prune(dry_run=True),
            lambda: cache.resolve_tag(ref),
            lambda: cache.tag_entry(ref),
            lambda: [cache.image_size(e.digest) for e in cache.entries()],
            lambda: image_from_cache(cache, ref, digest),
        ):
            only_xplane_errors(call)


# -- packages (xplane.xpkg) ------------------------------------------------------------------------


@FUZZ
@given(layer=archives())
def test_read_package_yaml_from_any_layer(layer: bytes) -> None:
    from xplane.xpkg.extract import read_package_yaml

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "layer"
        path.write_bytes(layer)
        desc = Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", DIGEST, len(layer))
        only_xplane_errors(lambda: read_package_yaml([path], [desc], max_entries=1000))
        only_xplane_errors(
            lambda: read_package_yaml(
                [path], [desc], {"config": {"Labels": {f"io.crossplane.xpkg:{DIGEST}": "base"}}}
            )
        )


@FUZZ
@given(data=archives(), config=json_values)
def test_open_package_on_any_file(data: bytes, config: Any) -> None:
    from xplane.xpkg.layers import xpkg_labels
    from xplane.xpkg.package import open_package

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pkg.xpkg"
        path.write_bytes(data)
        only_xplane_errors(lambda: open_package(str(path), cache=ImageCache(Path(tmp) / "c")))
        only_xplane_errors(lambda: xpkg_labels(config if isinstance(config, dict) else {"config": config}))
