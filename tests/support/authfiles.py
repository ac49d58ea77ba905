"""Docker/Podman login files for tests (``config.json`` / ``auth.json``), written 0600.

Both tools read the same ``{"auths": {"HOST": {"auth": base64("user:pass")}}}`` shape; skopeo and
podman take it with ``--authfile``, xplane's keychain via ``DOCKER_CONFIG``/``REGISTRY_AUTH_FILE``.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tests.support.registry import RegistryServer


def auth_entry(username: str, password: str) -> dict[str, str]:
    """One ``auths`` entry: ``{"auth": base64("user:pass")}``."""
    return {"auth": base64.b64encode(f"{username}:{password}".encode()).decode()}


def write_auth_file(
    path: Path,
    *,
    registries: Iterable[RegistryServer] = (),
    auths: Mapping[str, tuple[str, str]] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write a login file with an entry per registry with auth (and per ``auths`` key -> (user, pw)).

    ``extra`` is merged at the top level (e.g. ``{"credHelpers": {...}}``). Returns ``path``.
    """
    entries: dict[str, dict[str, str]] = {}
    for reg in registries:
        if reg.username is not None and reg.password is not None:
            entries[reg.host] = auth_entry(reg.username, reg.password)
    for key, (user, pw) in (auths or {}).items():
        entries[key] = auth_entry(user, pw)
    doc: dict[str, Any] = {"auths": entries, **(extra or {})}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, indent=2)
    return path


def write_docker_config(directory: Path, **kw: Any) -> Path:
    """Write ``directory/config.json`` (use ``DOCKER_CONFIG=directory``); returns the file path."""
    return write_auth_file(directory / "config.json", **kw)
