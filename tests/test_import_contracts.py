"""The import-linter contracts in pyproject.toml cover every module, and the package exports are sound.

import-linter checks only the modules a contract names: a new module left out of a ``layers`` list
or of a "through its __init__" list would go unchecked. These tests fail until it is added.
"""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
CURATED = [
    "xplane.oci",
    "xplane.xpkg",
    "xplane.fn",
    "xplane.store",
    "xplane.pkg",
    "xplane.compose",
    "xplane.validate",
]


def contracts() -> list[dict[str, Any]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return list(config["tool"]["importlinter"]["contracts"])


def submodules(package: str) -> set[str]:
    module = importlib.import_module(package)
    return {f"{package}.{info.name}" for info in pkgutil.iter_modules(module.__path__)}


@pytest.mark.parametrize("package", CURATED)
def test_every_submodule_is_reachable_only_through_the_curated_init(package: str) -> None:
    (contract,) = [
        c
        for c in contracts()
        if c["name"] == f"other packages use {package} only through its curated __init__"
    ]
    assert set(contract["forbidden_modules"]) == submodules(package)
    assert contract.get("allow_indirect_imports") is True  # importing the package itself is the point


def test_every_layers_contract_names_every_module_of_its_container() -> None:
    layered = [c for c in contracts() if c["type"] == "layers"]
    assert {c["containers"][0] for c in layered} >= {"xplane.oci", "xplane.xpkg", "xplane.fn"}
    for contract in layered:
        (container,) = contract["containers"]
        named = {
            f"{container}.{name.strip()}"
            for layer in contract["layers"]
            for name in layer.replace("|", ":").split(":")
        }
        assert named == submodules(container), contract["name"]


@pytest.mark.parametrize("package", [*CURATED, "xplane.xpkg.yaml", "xplane.xpkg.semver"])
def test_no_exported_name_is_also_a_submodule(package: str) -> None:
    # Importing a submodule binds its name on the package: an export of the same name would be
    # replaced by the module depending on import order.
    exported = set(importlib.import_module(package).__all__)
    assert not exported & {m.rsplit(".", 1)[1] for m in submodules(package)}


def test_pull_is_the_function_whatever_was_imported_first() -> None:
    code = "import xplane.oci.imagepull, xplane.oci; from xplane.oci import pull; print(callable(pull))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


@pytest.mark.parametrize("package", CURATED)
def test_the_type_checking_imports_match_the_export_table(package: str) -> None:
    # The TYPE_CHECKING block gives type checkers the same names the lazy table serves at run time.
    module = importlib.import_module(package)
    source = Path(module.__file__ or "").read_text()
    block = source.split("if TYPE_CHECKING:", 1)[1]
    for name, where in module._EXPORTS.items():
        assert f"from {package}.{where} import" in block, name
        assert name in block, name
