"""The lock files agree with pyproject.toml, and what is installed is what they pin.

scripts/lock.sh writes the locks from pyproject.toml's ranges; these checks fail when someone changes
one without the other (a range the pin falls outside of, a dependency added or dropped without a
refresh), when a pin has no hash, or when a runtime dependency is declared but never imported.
"""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import distribution, packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DEV_LOCK = ROOT / "requirements-dev.lock"
RUNTIME_LOCK = ROOT / "requirements.lock"
BUILD_LOCK = ROOT / "requirements-build.lock"
SELF = canonicalize_name(PYPROJECT["project"]["name"])

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+?)(?:\s*;[^\\]*)?\s*\\?$", re.M)
_HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")


def parse_lock(text: str) -> dict[str, tuple[Version, str]]:
    """Pinned name → (version, the entry's whole text: pin, hashes and "via" notes)."""
    pins: dict[str, tuple[Version, str]] = {}
    starts = list(_PIN.finditer(text))
    for m, nxt in zip(starts, [*starts[1:], None], strict=True):
        entry = text[m.start() : nxt.start() if nxt else len(text)]
        pins[canonicalize_name(m.group(1))] = (Version(m.group(2)), entry)
    return pins


def _direct(runtime_only: bool = False) -> list[Requirement]:
    project = PYPROJECT["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    if not runtime_only:
        for extra in project["optional-dependencies"].values():
            reqs += [Requirement(r) for r in extra]
        reqs += [Requirement(r) for r in PYPROJECT["build-system"]["requires"]]
    return [
        r for r in reqs if canonicalize_name(r.name) != SELF and (r.marker is None or r.marker.evaluate())
    ]


DEV = parse_lock(DEV_LOCK.read_text())
RUNTIME = parse_lock(RUNTIME_LOCK.read_text())
BUILD = parse_lock(BUILD_LOCK.read_text())


@pytest.mark.parametrize("req", _direct(), ids=str)
def test_every_declared_dependency_is_pinned_inside_its_range(req: Requirement) -> None:
    name = canonicalize_name(req.name)
    assert name in DEV, f"{req} is in pyproject.toml but not in the lock: run ./scripts/lock.sh"
    version = DEV[name][0]
    assert req.specifier.contains(version, prereleases=True), (
        f"the lock pins {name}=={version}, outside pyproject.toml's {req}: run ./scripts/lock.sh"
    )


def test_nothing_is_locked_as_direct_that_pyproject_no_longer_declares() -> None:
    declared = {canonicalize_name(r.name) for r in _direct()}
    for name, (_, entry) in DEV.items():
        if re.search(r"#\s+(via\s+)?(xplane|-r) \(?pyproject\.toml", entry):
            assert name in declared, f"{name} is locked for xplane but pyproject.toml dropped it"


def test_every_pin_carries_hashes() -> None:
    for lock in (DEV, RUNTIME, BUILD):
        for name, (_, entry) in lock.items():
            assert _HASH.search(entry), f"{name} has no sha256 hash in the lock"


def test_runtime_and_build_locks_pin_what_the_tests_ran() -> None:
    for lock, path in ((RUNTIME, RUNTIME_LOCK), (BUILD, BUILD_LOCK)):
        for name, (version, _) in lock.items():
            assert name in DEV and DEV[name][0] == version, (
                f"{path.name}: {name}=={version} differs from the dev lock"
            )
    for req in _direct(runtime_only=True):
        assert canonicalize_name(req.name) in RUNTIME, f"{req} is missing from requirements.lock"


def test_installed_versions_are_the_locked_ones() -> None:
    """setup.sh installed from the lock: the environment running this test has exactly those versions."""
    for name, (version, _) in DEV.items():
        entry = DEV[name][1].split("\n", 1)[0]
        if ";" in entry and not Requirement(entry.split(" \\")[0]).marker.evaluate():  # type: ignore[union-attr]
            continue
        assert Version(distribution(name).version) == version, f"{name} installed differs from the lock"


def test_every_runtime_dependency_is_imported_by_xplane() -> None:
    """A dependency earns its place: each runtime one is imported somewhere in src/xplane."""
    source = "\n".join(p.read_text() for p in (ROOT / "src" / "xplane").rglob("*.py"))
    imported = {m for m in re.findall(r"^\s*(?:from|import)\s+([A-Za-z_]\w*)", source, re.M)}
    provides: dict[str, set[str]] = {}
    for module, dists in packages_distributions().items():
        for dist in dists:
            provides.setdefault(canonicalize_name(dist), set()).add(module)
    for req in _direct(runtime_only=True):
        modules = provides.get(canonicalize_name(req.name), set())
        assert modules & imported, f"{req.name} is declared but src/xplane imports none of {sorted(modules)}"
