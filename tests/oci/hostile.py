"""Hostile inputs the tests build: gzip bombs, tar bombs, deep JSON, malformed archives.

Everything is made in memory in milliseconds (a 4 GiB gzip bomb is 4 MB and is never inflated
here), and :func:`measure` runs an attack in a fresh interpreter to read its peak memory.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile
import textwrap
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MiB = 1 << 20
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def deep_json(levels: int, *, opener: bytes = b"[", closer: bytes = b"]") -> bytes:
    """``[[[...]]]`` nested ``levels`` deep."""
    return opener * levels + closer * levels


def gzip_bomb(inflated_mib: int) -> bytes:
    """One gzip member that inflates to ``inflated_mib`` MiB of zeros, about 1 KiB per MiB.

    1 MiB of zeros is deflated once, ended with a full flush (so the blocks stand alone and end
    byte-aligned), repeated, closed with an empty final block and the gzip trailer.
    """
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(b"\0" * MiB) + c.flush(zlib.Z_FULL_FLUSH)
    final = c.flush()
    crc = 0
    zero = b"\0" * MiB
    for _ in range(inflated_mib):
        crc = zlib.crc32(zero, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    size = (inflated_mib * MiB) & 0xFFFFFFFF
    return header + block * inflated_mib + final + crc.to_bytes(4, "little") + size.to_bytes(4, "little")


def zeros_digest(mib: int) -> str:
    """sha256 of ``mib`` MiB of zeros (what a :func:`gzip_bomb` inflates to)."""
    h = hashlib.sha256()
    zero = b"\0" * MiB
    for _ in range(mib):
        h.update(zero)
    return "sha256:" + h.hexdigest()


def many_entries_tar(n: int, *, last: Mapping[str, bytes] | None = None) -> bytes:
    """An uncompressed tar of ``n`` empty regular files (``e0000000``...), then ``last``'s files.

    Headers are patched from one template (name and checksum), so a million entries take a second.
    """
    info = tarfile.TarInfo("e0000000")
    info.mtime = 0
    template = bytearray(info.tobuf(format=tarfile.USTAR_FORMAT))
    base = sum(template) - sum(template[148:156]) + 8 * ord(" ") - sum(b"e0000000")
    out = io.BytesIO()
    for i in range(n):
        entry = b"e%07d" % i
        template[0:8] = entry
        template[148:156] = b"%06o\0 " % (base + sum(entry))
        out.write(template)
    for name, data in (last or {}).items():
        t = tarfile.TarInfo(name)
        t.size = len(data)
        out.write(t.tobuf(format=tarfile.USTAR_FORMAT))
        out.write(data + b"\0" * (-len(data) % 512))
    out.write(b"\0" * 1024)
    return out.getvalue()


def tar_bytes(members: Sequence[tuple[str, bytes]], *, compress: bool = False) -> bytes:
    """A tar (gzipped with ``compress``) of ``(name, data)`` regular files, in order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if compress else "w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def docker_save(
    path: Path,
    *,
    config: bytes,
    layers: Sequence[tuple[str, bytes]],
    repo_tags: Any = ("example.com/org/pkg:v1",),
    manifest_json: bytes | None = None,
) -> Path:
    """A docker-save tarball: ``config.json``, the layers by name, ``manifest.json`` (or the bytes given)."""
    tags = list(repo_tags) if isinstance(repo_tags, tuple) else repo_tags
    manifest = manifest_json or canonical(
        [{"Config": "config.json", "RepoTags": tags, "Layers": [name for name, _ in layers]}]
    )
    path.write_bytes(tar_bytes([("config.json", config), *layers, ("manifest.json", manifest)]))
    return path


def docker_config(diff_ids: Sequence[str], **extra: Any) -> bytes:
    return canonical(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
            **extra,
        }
    )


@dataclass(frozen=True)
class Layout:
    path: Path
    manifest_digest: str
    config_digest: str
    layer_digests: tuple[str, ...]


def oci_layout(
    path: Path,
    *,
    config: bytes,
    layers: Sequence[bytes],
    tag: str = "v1",
    layer_media_type: str = OCI_LAYER_GZIP,
    index_json: bytes | None = None,
) -> Layout:
    """An OCI image layout holding one image (``index.json`` may be replaced by the bytes given)."""
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def put(data: bytes) -> str:
        digest = sha256(data)
        (blobs / digest.split(":")[1]).write_bytes(data)
        return digest

    layer_descs: list[dict[str, Any]] = [
        {"mediaType": layer_media_type, "digest": put(x), "size": len(x)} for x in layers
    ]
    manifest = canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": put(config), "size": len(config)},
            "layers": layer_descs,
        }
    )
    digest = put(manifest)
    index = index_json or canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": digest,
                    "size": len(manifest),
                    "annotations": {"org.opencontainers.image.ref.name": tag},
                }
            ],
        }
    )
    (path / "index.json").write_bytes(index)
    (path / "oci-layout").write_bytes(b'{"imageLayoutVersion":"1.0.0"}')
    return Layout(path, digest, sha256(config), tuple(d["digest"] for d in layer_descs))


@dataclass(frozen=True)
class Measured:
    """What :func:`measure` saw: peak memory growth, time and how the attack ended."""

    rss_growth: int  # bytes the peak resident set grew by while ``run`` ran
    seconds: float
    outcome: str  # "ok", or "<ExceptionType>: <message>"
    value: Any  # what ``run`` left in ``result`` (JSON-able), if anything


def measure(setup: str, run: str, *, env: Mapping[str, str] | None = None, timeout: float = 60) -> Measured:
    """Run ``setup`` then ``run`` in a fresh interpreter; ``run`` may set ``result``.

    Peak RSS is read before and after ``run``, so imports done in ``setup`` do not count. It is
    the process's own high-water mark (``VmHWM``): ``getrusage``'s ``ru_maxrss`` survives
    ``exec`` on Linux, so in a child of a big pytest process it starts at the parent's size and
    hides any growth below that.
    """
    script = "\n".join(
        [
            "import json, resource, time",
            "def peak():",
            "    try:",
            "        with open('/proc/self/status') as f:",
            "            return next(int(x.split()[1]) for x in f if x.startswith('VmHWM:'))",
            "    except OSError:",
            "        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss",
            textwrap.dedent(setup),
            "result = None",
            "before = peak()",
            "t0 = time.perf_counter()",
            "try:",
            textwrap.indent(textwrap.dedent(run), "    "),
            "    outcome = 'ok'",
            "except BaseException as e:",
            "    outcome = f'{type(e).__name__}: {e}'",
            "seconds = time.perf_counter() - t0",
            "after = peak()",
            "print(json.dumps({'growth': (after - before) * 1024, 'seconds': seconds,"
            " 'outcome': outcome, 'result': result}))",
        ]
    )
    import os

    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout.strip().splitlines()[-1])
    return Measured(doc["growth"], doc["seconds"], doc["outcome"], doc["result"])
