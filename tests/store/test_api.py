"""The curated public surface of xplane.store: names resolve, nothing heavy loads at import."""

from __future__ import annotations

import subprocess
import sys

import pytest

import xplane.store
from xplane.errors import XplaneError


def test_every_exported_name_resolves() -> None:
    assert xplane.store.__all__
    for name in xplane.store.__all__:
        assert getattr(xplane.store, name) is not None, name
    with pytest.raises(AttributeError):
        _ = xplane.store.Core


def test_errors_are_xplane_errors_with_kubernetes_reasons() -> None:
    from xplane.store import errors

    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, XplaneError), name
    assert errors.NotFoundError("secrets", "s").reason == "NotFound"
    assert errors.ConflictError("secrets", "s").reason == "Conflict"


def test_importing_the_package_is_cheap_and_opening_stays_light() -> None:
    code = (
        "import sys, xplane.store; first = [m for m in ('sqlite3', 'orjson') if m in sys.modules]; "
        "from xplane.store import Store; "
        "print(','.join(first)); print(','.join(m for m in ('yaml', 'httpx', 'rich', 'click', 'grpc', 'xplane.oci', "
        "'xplane.xpkg', 'difflib') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == ["", ""]
