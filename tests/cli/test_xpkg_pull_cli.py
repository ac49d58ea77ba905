"""``xp xpkg pull`` and ``xp xpkg load`` as whole processes: output, exit codes, startup cost."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.support.images import TestImage, make_test_image
from tests.support.registry import RegistryServer
from tests.support.skopeo import Skopeo

REF = "127.0.0.1:5000/test/pkg:v0.1.0"


def xp(*args: str, cache: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    e = {**os.environ, "XPLANE_CACHE_DIR": str(cache), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "xplane.cli.main", *args], capture_output=True, text=True, env=e, timeout=60
    )


@pytest.fixture
def loaded(tmp_path: Path) -> tuple[TestImage, Path]:
    img = make_test_image(tmp_path / "src")
    cache = tmp_path / "cache"
    r = xp("xpkg", "load", str(img.archive), "--ref", REF, cache=cache)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"Loaded {REF} (sha256:")
    return img, cache


def test_load_then_pull_offline_with_every_policy_but_always(loaded: tuple[TestImage, Path]) -> None:
    img, cache = loaded
    r = xp("xpkg", "pull", REF, cache=cache)
    assert r.returncode == 0 and r.stdout.startswith(f"Cached {REF}")
    r = xp("xpkg", "pull", REF, "--pull-policy", "Never", "--format", "json", cache=cache)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["reference"] == REF and doc["fromCache"] is True
    assert doc["layers"] == [
        {
            "digest": img.layer_digest,
            "size": len(img.layer),
            "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
        }
    ]
    assert doc["cacheDir"] == str(cache)


def test_never_miss_exits_3_naming_ref_and_policy(tmp_path: Path) -> None:
    r = xp("xpkg", "pull", "127.0.0.1:5000/nope/pkg:v9", "--pull-policy", "never", cache=tmp_path)
    assert r.returncode == 3
    assert "127.0.0.1:5000/nope/pkg:v9 is not in the cache and the pull policy is Never" in r.stderr
    assert "xp xpkg load" in r.stderr


def test_load_refuses_unsafe_archives_with_a_clear_error(tmp_path: Path) -> None:
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tf:
        info = tarfile.TarInfo("../../escape")
        tf.addfile(info)
    r = xp("xpkg", "load", str(evil), "--ref", REF, cache=tmp_path / "cache")
    assert r.returncode == 1
    assert "xp: error:" in r.stderr and "contains '..'" in r.stderr
    img = make_test_image(tmp_path / "src")
    r = xp(
        "xpkg", "load", str(img.archive), "--ref", REF, "--max-member-size", "100", cache=tmp_path / "cache"
    )
    assert r.returncode == 1 and "over the limit of 100" in r.stderr
    r = xp("xpkg", "load", str(img.archive), "--max-member-size", "lots", cache=tmp_path / "cache")
    assert r.returncode == 2 and "not a size" in r.stderr


# Runs xp in-process and lists, at exit, every module the process imported (the lazy package
# exports import through importlib, which -X importtime does not always report).
_MODULES_AT_EXIT = """
import atexit, sys
atexit.register(lambda: sys.stderr.write("modules: " + " ".join(sorted(sys.modules)) + "\\n"))
sys.argv = ["xp", *sys.argv[1:]]
from xplane.cli.main import main
main()
"""


def test_warm_pull_is_lean(loaded: tuple[TestImage, Path]) -> None:
    _, cache = loaded
    r = subprocess.run(
        [sys.executable, "-c", _MODULES_AT_EXIT, "xpkg", "pull", REF],
        capture_output=True,
        text=True,
        env={**os.environ, "XPLANE_CACHE_DIR": str(cache)},
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"Cached {REF}")
    imported = set(r.stderr.rsplit("modules: ", 1)[1].split())
    assert "xplane.oci.imagepull" in imported  # the measurement works
    assert not {m for m in imported if m.split(".")[0] in ("httpx", "rich", "yaml", "grpc")}
    # How fast the warm process is, bench/run.py measures (target 0.3 s); here: what it imports.


def test_cold_pull_from_a_registry(
    xpkg_image: TestImage, registry_plain: RegistryServer, skopeo: Skopeo, tmp_path: Path
) -> None:
    pytest.importorskip("xplane.cli.options", reason="the shared registry flags are not there yet")
    ref = skopeo.push(xpkg_image, registry_plain)
    r = xp("xpkg", "pull", ref, "--plain-http", cache=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"Pulled {ref} ({xpkg_image.manifest_digest})")
    assert "fetching" in r.stderr  # plain progress lines when stderr is not a TTY
    r = xp("xpkg", "pull", ref, "--pull-policy", "Always", "--plain-http", "--format", "json", cache=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["digest"] == xpkg_image.manifest_digest


def test_a_blocked_registry_exits_4_and_the_cache_still_serves(
    loaded: tuple[TestImage, Path], tmp_path: Path
) -> None:
    _, cache = loaded
    conf = tmp_path / "registries.conf"
    conf.write_text('[[registry]]\nlocation = "127.0.0.1:5000"\nblocked = true\n')
    env = {"CONTAINERS_REGISTRIES_CONF": str(conf), "CONTAINERS_REGISTRIES_CONF_DIR": str(tmp_path / "none")}
    r = xp("xpkg", "pull", REF, "--pull-policy", "Always", cache=cache, env=env)
    assert r.returncode == 4, r.stderr
    assert f"{conf}:3" in r.stderr and "blocked" in r.stderr and "Traceback" not in r.stderr
    # nothing is contacted for a cached tag: IfNotPresent still answers from the cache
    assert xp("xpkg", "pull", REF, cache=cache, env=env).returncode == 0


def _log_sources(stderr: str) -> set[str]:
    """The logger names of ``LEVEL name: message`` lines."""
    return {ln.split()[1].rstrip(":") for ln in stderr.splitlines() if ln.startswith(("DEBUG ", "INFO "))}


def test_verbosity_keeps_library_internals_for_vvv(
    xpkg_image: TestImage, registry_plain: RegistryServer, skopeo: Skopeo, tmp_path: Path
) -> None:
    ref = skopeo.push(xpkg_image, registry_plain)
    by_level = {}
    for flag in ("-v", "-vv", "-vvv"):
        r = xp(flag, "xpkg", "pull", ref, "--plain-http", "--pull-policy", "Always", cache=tmp_path / flag)
        assert r.returncode == 0, r.stderr
        by_level[flag] = _log_sources(r.stderr)
    assert all(name.startswith("xplane.") for name in by_level["-v"] | by_level["-vv"]), by_level
    assert "xplane.oci.transport" in by_level["-vv"]  # each request, with its status and time
    assert {"httpcore.http11", "httpcore.connection"} <= by_level["-vvv"]
    assert "xplane.oci.transport" in by_level["-vvv"]


@pytest.mark.parametrize(
    ("verbose", "record", "shown"),
    [
        (0, ("xplane.oci.imagepull", logging.WARNING), True),
        (0, ("xplane.oci.imagepull", logging.INFO), False),
        (1, ("xplane.oci.imagepull", logging.INFO), True),
        (1, ("xplane.oci.auth", logging.DEBUG), False),
        (1, ("httpx", logging.INFO), False),
        (2, ("xplane.oci.auth", logging.DEBUG), True),
        (2, ("httpcore.http11", logging.DEBUG), False),
        (2, ("hpack.hpack", logging.DEBUG), False),
        (2, ("grpc._cython", logging.INFO), False),
        (2, ("httpx", logging.WARNING), True),
        (3, ("httpcore.http11", logging.DEBUG), True),
        (3, ("xplane", logging.DEBUG), True),
    ],
)
def test_verbosity_levels(verbose: int, record: tuple[str, int], shown: bool) -> None:
    from xplane.cli.output import VerbosityFilter, verbosity_levels

    name, level = record
    rec = logging.LogRecord(name, level, __file__, 1, "message", None, None)
    assert VerbosityFilter(*verbosity_levels(verbose)).filter(rec) is shown
