"""Manifests for ``xp apply -f`` and ``xp delete -f``: files, directories and stdin, read and checked.

Every file is read and every document checked before anything is written: its YAML (a located
``file:line:column`` error from xplane's loader), its kind (kubectl's ``resource mapping not found``
message), and, for Crossplane's package kinds, the fields its ``spec`` may have (kubectl's ``strict
decoding error``) and their types. A file is all or nothing: one problem in it and none of its
documents is applied; the other files are (see docs/controlplane.md, "Applying manifests").
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    from xplane.store import Kind, Store

EXTENSIONS = (".json", ".yaml", ".yml")
STDIN = "STDIN"


@dataclass
class Manifest:
    """One document of a file: its kind and object, where it is written, and whether it exists."""

    kind: Kind
    obj: dict[str, Any]
    where: str
    exists: bool

    @property
    def name(self) -> str:
        """``metadata.name``."""
        return str((self.obj.get("metadata") or {}).get("name") or "")

    @property
    def namespace(self) -> str | None:
        """``metadata.namespace`` (None when not given)."""
        return (self.obj.get("metadata") or {}).get("namespace") or None


@dataclass
class ManifestFile:
    """The checked documents of one file; ``problems`` refuse the whole file."""

    name: str
    manifests: list[Manifest] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def expand(paths: Sequence[str], recursive: bool) -> tuple[list[str], list[str]]:
    """The files ``-f`` names (directories: their .json/.yaml/.yml files, sorted; ``-R``: below too),
    and the problems (a path that does not exist)."""
    files: list[str] = []
    problems: list[str] = []
    for p in paths:
        if p == "-":
            files.append(p)
            continue
        path = Path(p)
        if path.is_dir():
            found = path.rglob("*") if recursive else path.iterdir()
            files += sorted(str(f) for f in found if f.is_file() and f.suffix in EXTENSIONS)
        elif path.exists():
            files.append(p)
        else:
            problems.append(f'the path "{p}" does not exist')
    return files, problems


def _read(name: str, stdin: BinaryIO | None) -> bytes:
    if name == "-":
        return (stdin or sys.stdin.buffer).read()
    return Path(name).read_bytes()


def _check(
    store: Store, label: str, doc: Any, where: str, namespace: str | None, out: ManifestFile, strict: bool
) -> None:
    from xplane.pkg import check_package_object, package_warnings
    from xplane.store import StoreError, UnknownKindError

    if not isinstance(doc, dict):
        out.problems.append(f"{where}: error validating data: the document is not an object")
        return
    missing = [
        f"{k} not set" for k in ("apiVersion", "kind") if not isinstance(doc.get(k), str) or not doc[k]
    ]
    if missing:
        out.problems.append(
            f'error validating "{label}" ({where}): error validating data: [{", ".join(missing)}]'
        )
        return
    meta = doc.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        from xplane.errors import json_type

        out.problems.append(
            f'error validating "{label}" ({where}): error validating data: ValidationError({doc["kind"]}.metadata): '
            f'invalid type for io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta: got "{json_type(meta)}", '
            'expected "map"'
        )
        return
    name = meta.get("name", "") if isinstance(meta, dict) else ""
    try:
        kind = store.kind_of(doc)
    except UnknownKindError as e:
        ns = meta.get("namespace", "") if isinstance(meta, dict) else ""
        hint = f"\n  hint: {e.hint}" if e.hint else ""
        out.problems.append(
            f'resource mapping not found for name: "{name}" namespace: "{ns or ""}" from "{label}": '
            f"{e.message} ({where}){hint}"
        )
        return
    if meta is None:
        meta = doc["metadata"] = {}
    if kind.namespaced and namespace and isinstance(meta, dict):
        given = meta.get("namespace")
        if given and given != namespace:
            out.problems.append(
                f'the namespace from the provided object "{given}" does not match the namespace '
                f"\"{namespace}\". You must pass '--namespace={given}' to perform this operation. ({where})"
            )
            return
        meta["namespace"] = namespace
    exists = False
    if name and isinstance(name, str) and isinstance(meta, dict):
        try:
            exists = store.try_get(kind, name, meta.get("namespace")) is not None
        except StoreError:
            exists = False
    if not strict:
        out.manifests.append(Manifest(kind, doc, where, exists))
        return
    verb = "patching" if exists else "creating"
    problems = check_package_object(kind, doc)
    if problems.unknown:
        listed = ", ".join(f'unknown field "{p}"' for p in problems.unknown)
        version = doc["apiVersion"].rpartition("/")[2]
        out.problems.append(
            f'error when {verb} "{label}": {kind.kind} in version "{version}" cannot be handled as a '
            f"{kind.kind}: strict decoding error: {listed} ({where})"
        )
    if problems.invalid:
        causes = problems.invalid
        joined = causes[0] if len(causes) == 1 else "[" + ", ".join(causes) + "]"
        out.problems.append(
            f'error when {verb} "{label}": {kind.group_kind} "{name}" is invalid: {joined} ({where})'
        )
    if problems:
        return
    out.warnings += [f"{where}: {doc['kind']}/{name}: warning: {w}" for w in package_warnings(kind, doc)]
    out.manifests.append(Manifest(kind, doc, where, exists))


def load(
    store: Store,
    paths: Sequence[str],
    *,
    recursive: bool = False,
    namespace: str | None = None,
    strict: bool = True,
    stdin: BinaryIO | None = None,
) -> tuple[list[ManifestFile], list[str]]:
    """Every file ``paths`` name, read and checked (see the module's notes); and path problems.

    ``strict=False`` (``delete -f``) checks only the YAML and the kinds, not the package kinds' fields.
    """
    from xplane.xpkg import YAMLError, parse_stream

    files, problems = expand(paths, recursive)
    out: list[ManifestFile] = []
    for name in files:
        label = STDIN if name == "-" else name
        mf = ManifestFile(label)
        out.append(mf)
        try:
            stream = parse_stream(_read(name, stdin), file=label)
        except OSError as e:
            mf.problems.append(f"{label}: cannot read: {e.strerror or e}")
            continue
        except YAMLError as e:
            mf.problems.append(str(e))
            continue
        mf.warnings += [str(w) for w in stream.warnings]
        for d in stream.documents:
            if d.doc is None:
                continue
            where = f"{label}:{d.line}" if d.line is not None else label
            _check(store, label, d.doc, where, namespace, mf, strict)
    return out, problems


__all__ = ["EXTENSIONS", "Manifest", "ManifestFile", "expand", "load"]
