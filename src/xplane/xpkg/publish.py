"""``xp xpkg push``: publish ``.xpkg`` files as ``crossplane xpkg push`` does.

Each file's image is re-described with ``AnnotateLayers``: every layer named by a config label
``io.crossplane.xpkg:<digest>`` gets the descriptor annotation ``io.crossplane.xpkg: <value>``, so
Crossplane finds the package layer without flattening. The manifest stays Docker schema 2 and the
layer digests do not change. One file is pushed to the tag; several are pushed by digest and then
an OCI image index over them (one entry per platform of each image's config) is pushed to the tag.
``--oci-annotation`` values go on the manifest (one file) or on the index (several).

Files are loaded into the image cache first (untagged: staging leaves no entry in ``xp cache ls``),
so a pushed package is also available offline under the destination reference afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xplane.oci import (
    DOCKER_MANIFEST,
    Descriptor,
    Image,
    ImageCache,
    Reference,
    image_from_cache,
    push_image,
    push_index,
)
from xplane.xpkg.errors import PackageError
from xplane.xpkg.layers import annotate_layers

if TYPE_CHECKING:
    from xplane.oci import RegistryClient


@dataclass(frozen=True)
class PushResult:
    """What was pushed: the digest at the tag and each image's manifest digest."""

    digest: str
    images: list[str]


def find_package_files(directory: Path) -> list[Path]:
    """The one ``*.xpkg`` in ``directory`` (upstream's rule when ``-f`` is not given)."""
    found = sorted(p for p in directory.glob("*.xpkg") if p.is_file())
    where = directory.resolve()
    if not found:
        raise PackageError(
            f"directory does not contain a compiled crossplane package (no *.xpkg file in {where})",
            hint="build one with 'xp xpkg build' or pass -f FILE.xpkg",
        )
    if len(found) > 1:
        raise PackageError(
            f"directory contains multiple compiled crossplane packages ({len(found)} *.xpkg files in {where})",
            hint="choose with -f " + ",".join(p.name for p in found),
        )
    return found


def _go_quote(s: str) -> str:
    """Go's ``%q`` for the strings users type (a double-quoted, escaped string)."""
    return json.dumps(s, ensure_ascii=False)


def parse_annotations(values: Sequence[str]) -> dict[str, str]:
    """``KEY=VALUE`` strings -> a dict, with upstream's error messages."""
    out: dict[str, str] = {}
    for v in values:
        key, sep, value = v.partition("=")
        if not sep:
            raise PackageError(f"invalid annotation {_go_quote(v)}: must be in key=value format")
        if not key.strip():
            raise PackageError(f"invalid annotation {_go_quote(v)}: key must not be empty")
        out[key.strip()] = value
    return out


def _manifest_json(image: Image, annotations: Mapping[str, str] | None) -> bytes:
    """The image's Docker schema 2 manifest with xpkg layer annotations (and manifest annotations)."""
    assert image.config_descriptor is not None
    layers = annotate_layers(image.layers, image.config)

    def desc(d: Descriptor) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": d.media_type, "size": d.size, "digest": d.digest}
        if d.annotations:
            out["annotations"] = dict(d.annotations)
        return out

    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": desc(image.config_descriptor),
        "layers": [desc(d) for d in layers],
    }
    if annotations:
        doc["annotations"] = dict(annotations)
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def stage_package_file(path: Path, cache: ImageCache, annotations: Mapping[str, str] | None = None) -> Image:
    """Load ``path`` into ``cache`` and store its annotated manifest; the image to push.

    Nothing is tagged: hold ``cache.writer()`` until the image is pushed and tagged where it went
    (as :func:`push_packages` does), or a concurrent prune may remove its blobs.
    """
    from xplane.oci import load_file

    loaded = load_file(path, cache=cache)
    data = _manifest_json(loaded, annotations)
    with cache.writer():
        digest = cache.write_blob(None, data)
    image = image_from_cache(cache, loaded.reference, digest)
    if image is None:  # pragma: no cover - everything was just written
        raise PackageError(f"{path}: the staged image is incomplete in the cache")
    return image


def push_packages(
    files: Sequence[Path],
    ref: str,
    *,
    client: RegistryClient,
    cache: ImageCache | None = None,
    annotations: Mapping[str, str] | None = None,
) -> PushResult:
    """Push ``files`` to ``ref`` (strictly parsed: registry, repository and tag must be given)."""
    if not files:
        raise PackageError("no package files to push")
    dest = Reference.parse(ref, strict=True)
    cache = cache or ImageCache()
    with cache.writer():  # staged images are untagged until they are tagged as dest below
        if len(files) == 1:
            image = stage_package_file(Path(files[0]), cache, annotations)
            digest = push_image(image, dest, client=client)
            cache.set_tag(dest, digest, source="push")
            return PushResult(digest, [image.manifest_digest])
        images = [stage_package_file(Path(f), cache) for f in files]
        digest = push_index(images, dest, annotations=annotations, client=client, cache=cache)
        return PushResult(digest, [i.manifest_digest for i in images])
