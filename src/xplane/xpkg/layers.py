"""The layers, config and manifest of a Crossplane package image, as ``crossplane xpkg build`` makes them.

Each package layer is a gzip-compressed tar holding exactly one regular file (mode 0644, uid/gid 0,
mtime 0), annotated ``io.crossplane.xpkg: base`` (``package.yaml``) or ``upbound``
(``.up/examples.yaml``). The image config records each annotated layer as a label
``io.crossplane.xpkg:<compressed layer digest>`` so that ``xpkg push`` can re-annotate the layer
descriptors; the manifest is Docker schema 2. Everything here is deterministic: the same inputs
give the same digests.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import tarfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from xplane.oci import DOCKER_CONFIG, DOCKER_LAYER, Descriptor, docker_manifest_bytes
from xplane.xpkg.errors import PackageError

ANNOTATION_KEY = "io.crossplane.xpkg"
PACKAGE_ANNOTATION = "base"
EXAMPLES_ANNOTATION = "upbound"
PACKAGE_FILE = "package.yaml"
EXAMPLES_FILE = ".up/examples.yaml"


@dataclass(frozen=True)
class Layer:
    """A compressed layer blob with its digests and (optional) xpkg annotation value."""

    blob: bytes
    digest: str  # of the compressed blob
    diff_id: str  # of the uncompressed tar
    annotation: str | None = None

    def descriptor(self, *, annotate: bool = False) -> Descriptor:
        """The Docker layer descriptor; with ``annotate`` it carries the ``io.crossplane.xpkg`` annotation."""
        ann = {ANNOTATION_KEY: self.annotation} if annotate and self.annotation else {}
        return Descriptor(DOCKER_LAYER, self.digest, len(self.blob), annotations=ann)


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _gzip(data: bytes) -> bytes:
    """gzip with a fixed header (no name, mtime 0, OS unknown) and level 1, as Go's BestSpeed."""
    c = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = c.compress(data) + c.flush()
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x04\xff"  # XFL=4: fastest compression
    trailer = (zlib.crc32(data) & 0xFFFFFFFF).to_bytes(4, "little") + (len(data) & 0xFFFFFFFF).to_bytes(
        4, "little"
    )
    return header + body + trailer


def single_file_tar(name: str, content: bytes) -> bytes:
    """An uncompressed tar with one regular file ``name`` (mode 0644, owner 0:0, mtime 0)."""
    info = tarfile.TarInfo(name)
    info.size = len(content)
    info.mode = 0o644
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        tf.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def make_layer(name: str, content: bytes, annotation: str | None) -> Layer:
    """The compressed single-file layer for ``content`` at ``name``."""
    tar = single_file_tar(name, content)
    blob = _gzip(tar)
    return Layer(blob=blob, digest=_sha256(blob), diff_id=_sha256(tar), annotation=annotation)


def empty_config() -> dict[str, Any]:
    """The config of go-containerregistry's ``empty.Image``: no architecture, no OS, zero time."""
    return {
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": []},
        "config": {},
    }


def package_config(base: Mapping[str, Any] | None, layers: Sequence[Layer]) -> dict[str, Any]:
    """``base`` config (or the empty one) with ``layers`` appended and their xpkg labels added.

    Labels and runtime settings (entrypoint, env, user...) of a runtime base image are kept. A base
    config whose ``rootfs``, ``rootfs.diff_ids``, ``history``, ``config`` or ``config.Labels`` has
    the wrong JSON type raises :class:`PackageError`.
    """
    cfg = copy.deepcopy(dict(base)) if base is not None else empty_config()
    rootfs = _field(cfg, "rootfs", dict, {"type": "layers", "diff_ids": []})
    rootfs.setdefault("type", "layers")
    diff_ids = _field(rootfs, "diff_ids", list, [], "rootfs.")
    history = _field(cfg, "history", list, [])
    inner = _field(cfg, "config", dict, {})
    labels = inner.get("Labels") or {}
    if not isinstance(labels, dict):
        raise PackageError("the runtime image config's 'config.Labels' is not a JSON object")
    for layer in layers:
        diff_ids.append(layer.diff_id)
        history.append({"created": "0001-01-01T00:00:00Z"})
        if layer.annotation:
            labels[f"{ANNOTATION_KEY}:{layer.digest}"] = layer.annotation
    if labels:
        inner["Labels"] = labels
    return cfg


def _field(obj: dict[str, Any], key: str, kind: type, default: Any, prefix: str = "") -> Any:
    """``obj[key]`` (set to ``default`` when absent or null), which must be of JSON type ``kind``."""
    if obj.get(key) is None:
        obj[key] = default
    if not isinstance(obj[key], kind):
        what = "an object" if kind is dict else "a list"
        raise PackageError(f"the runtime image config's '{prefix}{key}' is not {what}")
    return obj[key]


def config_bytes(cfg: Mapping[str, Any]) -> bytes:
    """The config JSON, compact and with sorted keys, so it is reproducible."""
    return json.dumps(cfg, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def xpkg_labels(cfg: Mapping[str, Any]) -> dict[str, str]:
    """``{compressed layer digest: annotation}`` from a config's ``io.crossplane.xpkg:<digest>`` labels."""
    inner = cfg.get("config") if isinstance(cfg, Mapping) else None
    labels = inner.get("Labels") if isinstance(inner, Mapping) else None
    if not isinstance(labels, Mapping):
        return {}  # none, or not an object: a config that labels nothing
    prefix = f"{ANNOTATION_KEY}:"
    return {
        k[len(prefix) :]: str(v) for k, v in labels.items() if isinstance(k, str) and k.startswith(prefix)
    }


def annotate_layers(layers: Sequence[Descriptor], cfg: Mapping[str, Any]) -> list[Descriptor]:
    """What ``crossplane xpkg push`` does: annotate each layer that a config label names."""
    labels = xpkg_labels(cfg)
    out = []
    for d in layers:
        value = labels.get(d.digest)
        if value is None:
            out.append(d)
        else:
            out.append(Descriptor(d.media_type, d.digest, d.size, {**d.annotations, ANNOTATION_KEY: value}))
    return out


def manifest_bytes(config: bytes, layers: Sequence[Descriptor]) -> bytes:
    """A Docker schema 2 manifest for ``config`` and ``layers``."""
    cfg_desc = Descriptor(DOCKER_CONFIG, _sha256(config), len(config))
    return docker_manifest_bytes(cfg_desc, layers)
