"""Each package's curated public API resolves, and does not drift silently (httpx's exported-members test)."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = ["xplane.oci", "xplane.xpkg", "xplane.xpkg.yaml", "xplane.xpkg.semver", "xplane.fn"]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_exported_name_resolves(package: str) -> None:
    mod = importlib.import_module(package)
    names = getattr(mod, "__all__", None) or list(getattr(mod, "_EXPORTS", {}))
    assert names, f"{package} exports nothing"
    for name in names:
        value = getattr(mod, name)
        assert value is not None, f"{package}.{name}"


@pytest.mark.parametrize("package", PACKAGES)
def test_unknown_names_raise_attribute_error(package: str) -> None:
    mod = importlib.import_module(package)
    with pytest.raises(AttributeError):
        _ = mod.definitely_not_exported  # type: ignore[attr-defined]


def test_importing_packages_is_cheap() -> None:
    """Importing the package roots must not import grpc, httpx or rich (CLI start-up depends on it)."""
    import subprocess
    import sys

    code = (
        "import sys, xplane.oci, xplane.xpkg, xplane.fn; "
        "print(','.join(m for m in ('grpc', 'httpx', 'rich', 'wasmtime') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
