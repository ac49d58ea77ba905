# ruff: noqa: F811 (pytest fixtures imported from tests/compose/conftest.py are parameters here)
"""The package runtime: ``xp render`` pulls a Function package from a registry behind a login, unpacks
it into a content-addressed rootfs and runs it under bubblewrap — no Docker, no --functions-dir.

The function image is real (tests/support/fnimage.py: an SDK-written function on a copied
interpreter), packaged with ``xp xpkg build --embed-runtime-image-tarball`` and pushed with
``xp xpkg push`` to the basic-auth test registry, whose login is in a Docker ``config.json``.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.compose.conftest import render_cli  # noqa: F401 (fixture)
from tests.support.authfiles import write_docker_config
from tests.support.fnimage import FUNCTION_NAME, build_function_image
from tests.support.registry import RegistryServer
from xplane.compose.sandbox import own_network_unavailable

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/bin/bwrap"), reason="bubblewrap is not installed")

XR = """\
apiVersion: example.org/v1alpha1
kind: XBucket
metadata:
  name: my-bucket
spec:
  region: eu-west-1
"""
COMPOSITION = """\
apiVersion: apiextensions.crossplane.io/v1
kind: Composition
metadata:
  name: xbuckets
spec:
  compositeTypeRef:
    apiVersion: example.org/v1alpha1
    kind: XBucket
  mode: Pipeline
  pipeline:
  - step: make-bucket
    functionRef:
      name: function-pkg
"""
PACKAGE_META = """\
apiVersion: meta.pkg.crossplane.io/v1beta1
kind: Function
metadata:
  name: function-pkg
"""
EXPECTED = """\
---
apiVersion: example.org/v1alpha1
kind: XBucket
metadata:
  name: my-bucket
status:
  conditions:
  - lastTransitionTime: "2024-01-01T00:00:00Z"
    reason: Available
    status: "True"
    type: Ready
---
apiVersion: s3.aws.upbound.io/v1beta1
kind: Bucket
metadata:
  annotations:
    crossplane.io/composition-resource-name: bucket
  generateName: my-bucket-
  labels:
    crossplane.io/composite: my-bucket
  ownerReferences:
  - apiVersion: example.org/v1alpha1
    blockOwnerDeletion: true
    controller: true
    kind: XBucket
    name: my-bucket
    uid: ""
spec:
  forProvider:
    region: eu-west-1
---
apiVersion: render.crossplane.io/v1beta1
kind: Result
message: cwd=/fn greeting=GREETING tmp-writable=yes root-writable=no
severity: SEVERITY_NORMAL
step: make-bucket
"""


def _xp(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xplane.cli.main", *args], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.fixture(scope="session")
def function_package(
    tmp_path_factory: pytest.TempPathFactory, registry_basic: RegistryServer
) -> Iterator[dict[str, Any]]:
    """The function package pushed to ``registry_basic`` (behind a login); its ref and login dir."""
    image = build_function_image(tmp_path_factory.getbasetemp().parent / "fnimage-cache")
    work = tmp_path_factory.mktemp("function-package")
    (work / "package").mkdir()
    (work / "package" / "crossplane.yaml").write_text(PACKAGE_META)
    login = work / "docker"
    write_docker_config(login, registries=[registry_basic])
    env = {**os.environ, "DOCKER_CONFIG": str(login), "XPLANE_CACHE_DIR": str(work / "build-cache")}
    xpkg = work / "fn.xpkg"
    built = _xp("xpkg", "build", "-f", str(work / "package"), "--embed-runtime-image-tarball", str(image.tarball),
                "-o", str(xpkg), env=env)  # fmt: skip
    assert built.returncode == 0, built.stderr
    ref = registry_basic.ref(f"t/{FUNCTION_NAME}", "v0.1.0")
    pushed = _xp("xpkg", "push", ref, "-f", str(xpkg), "--plain-http", env=env)
    # (a push once failed here in a full run, 401 "no credentials found" with this login file in
    # place, and never again in isolation: say what the login file and the environment held)
    assert pushed.returncode == 0, (
        f"{pushed.stderr}\nconfig.json logins: {sorted(json.loads((login / 'config.json').read_text())['auths'])}\n"
        f"auth env: { {k: v for k, v in env.items() if 'DOCKER' in k or 'REGISTRY' in k or 'XDG' in k or k == 'HOME'} }"
    )
    yield {"ref": ref, "login": login, "cache": work / "render-cache"}


def _inputs(d: Path, ref: str, annotations: dict[str, str] | None = None) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "xr.yaml").write_text(XR)
    (d / "composition.yaml").write_text(COMPOSITION)
    ann = "".join(f"    {k}: {v!r}\n" for k, v in (annotations or {}).items())
    (d / "functions.yaml").write_text(
        "apiVersion: pkg.crossplane.io/v1\nkind: Function\nmetadata:\n  name: function-pkg\n"
        + (f"  annotations:\n{ann}" if ann else "")
        + f"spec:\n  package: {ref}\n"
    )
    return d


def _render(render_cli: Any, d: Path, cache: Path, *args: str) -> Any:
    return render_cli(
        ["xr.yaml", "composition.yaml", "functions.yaml", "--plain-http", "--cache-dir", str(cache), *args],
        cwd=d,
    )


def _sandboxes(cache: Path) -> list[int]:
    """PIDs of processes whose command line names ``cache`` (the sandboxes of its rootfs)."""
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if str(cache).encode() in cmdline and b"bwrap" in cmdline:
                found.append(int(pid))
    return found


def test_render_pulls_unpacks_and_runs_the_package_then_reuses_the_rootfs(
    render_cli: Any, function_package: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(function_package["login"]))
    cache = tmp_path / "cache"
    d = _inputs(
        tmp_path / "in", function_package["ref"], {"render.crossplane.io/runtime-docker-env": "GREETING=hi"}
    )
    got = _render(render_cli, d, cache, "-r")
    assert got.code == 0, got.err
    assert got.out == EXPECTED.replace("GREETING", "hi")
    (rootfs,) = (cache / "rootfs").iterdir()
    assert rootfs.name.startswith("sha256-") and (rootfs / "fn" / "main.py").is_file()
    inode = rootfs.stat().st_ino
    assert _sandboxes(cache) == []  # Remove (the default): stopped after the render

    # offline and warm: Never uses the cached package, the rootfs is reused (not unpacked again)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-login"))
    start = time.monotonic()
    again = _render(render_cli, d, cache, "-r", "-a", "render.crossplane.io/runtime-docker-pull-policy=Never")
    assert again.code == 0, again.err
    assert again.out == got.out
    assert [p.name for p in (cache / "rootfs").iterdir()] == [rootfs.name]
    assert rootfs.stat().st_ino == inode
    assert time.monotonic() - start < 10


def test_the_image_env_applies_without_the_annotation(
    render_cli: Any, function_package: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(function_package["login"]))
    d = _inputs(tmp_path / "in", function_package["ref"])
    got = _render(render_cli, d, function_package["cache"], "-r")
    assert got.code == 0, got.err
    assert got.out == EXPECTED.replace("GREETING", "from-the-image")


def test_a_function_that_exits_at_start_fails_the_render_with_its_stderr(
    render_cli: Any, function_package: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(function_package["login"]))
    d = _inputs(
        tmp_path / "in", function_package["ref"], {"render.crossplane.io/runtime-docker-env": "FN_MODE=crash"}
    )
    got = _render(render_cli, d, function_package["cache"])
    assert got.code == 1 and got.out == ""
    assert 'cannot run pipeline step "make-bucket": function function-pkg' in got.err
    assert "stopped before it served; it exited with code 3" in got.err
    assert "the database is on fire (FN_MODE=crash)" in got.err


def test_a_function_that_hangs_is_bounded_by_the_timeout_and_stopped(
    render_cli: Any, function_package: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(function_package["login"]))
    cache = function_package["cache"]
    d = _inputs(
        tmp_path / "in", function_package["ref"], {"render.crossplane.io/runtime-docker-env": "FN_MODE=hang"}
    )
    start = time.monotonic()
    got = _render(render_cli, d, cache, "--timeout", "3s")
    assert got.code == 1, got.err
    assert time.monotonic() - start < 8
    assert "function function-pkg" in got.err and "did not accept connections on 127.0.0.1:" in got.err
    assert "thinking forever" in got.err
    assert _sandboxes(cache) == [] and _relays() == []


def test_a_function_that_answers_garbage_fails_the_render_within_the_timeout(
    render_cli: Any, function_package: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(function_package["login"]))
    env = {"render.crossplane.io/runtime-docker-env": "FN_MODE=garbage"}
    d = _inputs(tmp_path / "in", function_package["ref"], env)
    start = time.monotonic()
    got = _render(render_cli, d, function_package["cache"], "--timeout", "2s")
    assert got.code == 1 and time.monotonic() - start < 6
    assert "function function-pkg" in got.err and "speaking in tongues" in got.err
    assert _sandboxes(function_package["cache"]) == []


def test_a_warm_runner_keeps_one_process_across_renders_until_closed(
    function_package: dict[str, Any], tmp_path: Path
) -> None:
    """What --watch does: the sandbox started by the first render answers the next ones."""
    import asyncio

    import yaml

    from xplane.compose import PackageRunner, RenderInputs, open_runtimes, render_async
    from xplane.oci import RegistryClient, RegistryConfig, RegistryOverrides, default_keychain

    env = {"DOCKER_CONFIG": str(function_package["login"])}

    def client() -> RegistryClient:
        overrides = RegistryOverrides(plain_http=True)
        return RegistryClient(
            keychain=default_keychain(env=env), config=RegistryConfig.load(env=env, overrides=overrides)
        )

    fn = yaml.safe_load((_inputs(tmp_path / "in", function_package["ref"]) / "functions.yaml").read_text())
    inputs = RenderInputs(xr=yaml.safe_load(XR), composition=yaml.safe_load(COMPOSITION), functions=[fn])
    cache = tmp_path / "cache"
    pids = []
    with PackageRunner(cache_root=cache, client_factory=client, keep_warm=True) as runner:
        for _ in range(2):
            rts = open_runtimes([fn], packages=runner)

            async def once(rts: Any = rts) -> Any:
                try:
                    return await render_async(inputs, runtimes=rts, timeout=30)
                finally:
                    for rt in rts.values():
                        await rt.close()

            out = asyncio.run(once())
            assert out.documents()[1]["spec"] == {"forProvider": {"region": "eu-west-1"}}
            pids.append(_sandboxes(cache))
    assert pids[0] and pids[0] == pids[1]  # bwrap and its pid-namespace init: the same two processes
    assert _sandboxes(cache) == []


def _relays() -> list[int]:
    """PIDs of running network relays (xplane.compose.netrelay), which must not outlive a render."""
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            with contextlib.suppress(OSError):
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                if any(arg.endswith(b"xplane/compose/netrelay.py") for arg in argv):
                    found.append(int(pid))
    return found


@pytest.fixture
def host_listener() -> Iterator[str]:
    """A TCP listener on the host's 127.0.0.1 that a sandboxed function may or may not reach."""
    with socket.create_server(("127.0.0.1", 0)) as srv:
        yield f"127.0.0.1:{srv.getsockname()[1]}"


@pytest.mark.skipif(
    own_network_unavailable("/usr/bin/bwrap") is not None, reason="no network namespaces here"
)
def test_by_default_the_function_has_only_a_loopback_of_its_own(
    render_cli: Any, function_package: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    host_listener: str,
) -> None:  # fmt: skip
    monkeypatch.setenv("DOCKER_CONFIG", str(function_package["login"]))
    env = {"render.crossplane.io/runtime-docker-env": f"FN_PROBE={host_listener}"}
    d = _inputs(tmp_path / "in", function_package["ref"], env)
    got = _render(render_cli, d, function_package["cache"], "-r")
    assert got.code == 0, got.err
    # the host's 127.0.0.1 listener is not the sandbox's: nothing listens on its own loopback there
    assert "probe=ConnectionRefusedError" in got.out
    assert _sandboxes(function_package["cache"]) == [] and _relays() == []


def test_the_host_network_annotation_shares_the_hosts_network(
    render_cli: Any, function_package: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    host_listener: str,
) -> None:  # fmt: skip
    monkeypatch.setenv("DOCKER_CONFIG", str(function_package["login"]))
    ann = {
        "render.crossplane.io/runtime-docker-env": f"FN_PROBE={host_listener}",
        "render.xplane.io/network": "Host",
    }
    d = _inputs(tmp_path / "in", function_package["ref"], ann)
    got = _render(render_cli, d, function_package["cache"], "-r")
    assert got.code == 0, got.err
    assert "probe=connected" in got.out
    assert _relays() == []


def test_where_network_namespaces_are_forbidden_functions_share_the_hosts_network_with_a_warning(
    function_package: dict[str, Any], tmp_path: Path, host_listener: str, caplog: pytest.LogCaptureFixture
) -> None:
    """As in a container that forbids them: the real bwrap behind a shim that refuses --unshare-net."""
    import asyncio

    import yaml

    from xplane.compose import ComposeError, PackageRunner, RenderInputs, render_async
    from xplane.oci import RegistryClient, RegistryConfig, RegistryOverrides, default_keychain

    shim = tmp_path / "bwrap"
    shim.write_text(
        '#!/bin/sh\nfor a in "$@"; do\n  if [ "$a" = --unshare-net ]; then\n'
        "    echo 'bwrap: loopback: Failed RTM_NEWADDR: Operation not permitted' >&2; exit 1\n  fi\ndone\n"
        'exec /usr/bin/bwrap "$@"\n'
    )
    shim.chmod(0o755)
    env = {"DOCKER_CONFIG": str(function_package["login"])}

    def client() -> RegistryClient:
        config = RegistryConfig.load(env=env, overrides=RegistryOverrides(plain_http=True))
        return RegistryClient(keychain=default_keychain(env=env), config=config)

    def render(network: str | None) -> Any:
        ann = {"render.crossplane.io/runtime-docker-env": f"FN_PROBE={host_listener}"}
        if network:
            ann["render.xplane.io/network"] = network
        d = _inputs(tmp_path / f"in-{network}", function_package["ref"], ann)
        fn = yaml.safe_load((d / "functions.yaml").read_text())
        inputs = RenderInputs(xr=yaml.safe_load(XR), composition=yaml.safe_load(COMPOSITION), functions=[fn])
        with PackageRunner(cache_root=function_package["cache"], client_factory=client, bwrap=str(shim)) as r:
            return asyncio.run(render_async(inputs, packages=r, timeout=30))

    with caplog.at_level("WARNING", logger="xplane.compose.packagerun"):
        out = render(None)
    assert [r["message"].rsplit(" ", 1)[-1] for r in out.results] == ["probe=connected"]
    assert "function function-pkg shares the host's network" in caplog.text
    assert "RTM_NEWADDR: Operation not permitted" in caplog.text
    with pytest.raises(
        ComposeError, match="cannot give a sandbox a network namespace of its own: bwrap: loopback"
    ):
        render("Loopback")
    assert _relays() == []


def test_pull_policy_never_with_nothing_cached_is_a_clear_error(
    render_cli: Any, tmp_path: Path, registry_basic: RegistryServer
) -> None:
    ref = registry_basic.ref("t/function-absent", "v1")
    d = _inputs(tmp_path / "in", ref, {"render.crossplane.io/runtime-docker-pull-policy": "Never"})
    got = _render(render_cli, d, tmp_path / "empty-cache")
    assert got.code == 1
    assert f'cannot run Function "function-pkg" from its package {ref}: cannot pull it: ' in got.err
    assert "is not in the cache and the pull policy is Never" in got.err


def test_bad_annotation_values_are_named(render_cli: Any, tmp_path: Path) -> None:
    d = _inputs(
        tmp_path / "in",
        "xpkg.example.org/f:v1",
        {"render.crossplane.io/runtime-docker-pull-policy": "Sometimes"},
    )
    got = _render(render_cli, d, tmp_path / "c")
    assert got.code == 1
    assert (
        'unsupported "render.crossplane.io/runtime-docker-pull-policy" annotation value "Sometimes"'
        in got.err
    )
    d = _inputs(tmp_path / "in2", "xpkg.example.org/f:v1", {"render.xplane.io/network": "None"})
    got = _render(render_cli, d, tmp_path / "c")
    assert got.code == 1
    assert 'unsupported "render.xplane.io/network" annotation value "None" (want Loopback or Host)' in got.err


# ---- the rootfs unpacker, on hand-made layers --------------------------------------------------


def _layer(path: Path, entries: list[tarfile.TarInfo | tuple[str, bytes]], *, zstd: bool = False) -> Path:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for e in entries:
            if isinstance(e, tarfile.TarInfo):
                tf.addfile(e)
            else:
                info = tarfile.TarInfo(e[0])
                info.size = len(e[1])
                info.mode = 0o644
                tf.addfile(info, io.BytesIO(e[1]))
    if zstd:
        import zstandard

        params = zstandard.ZstdCompressionParameters(write_checksum=True)
        path.write_bytes(zstandard.ZstdCompressor(compression_params=params).compress(buf.getvalue()))
    else:
        path.write_bytes(gzip.compress(buf.getvalue(), mtime=0))
    return path


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def test_a_path_traversal_layer_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    from xplane.compose import ComposeError
    from xplane.compose.rootfs import ensure_rootfs

    bad = _layer(tmp_path / "bad.tgz", [("ok", b"1"), ("../../escaped", b"boom")])
    dest = tmp_path / "cache" / "rootfs" / "sha256-abc"
    with pytest.raises(ComposeError, match=r"entry '\.\./\.\./escaped' leaves the image's root"):
        ensure_rootfs([bad], dest, label="img")
    assert not dest.exists() and list((tmp_path / "cache" / "rootfs").iterdir()) == []
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "cache" / "escaped").exists()


def test_layers_apply_in_order_with_whiteouts_and_links_scoped_to_the_root(tmp_path: Path) -> None:
    from xplane.compose.rootfs import ensure_rootfs

    outside = tmp_path / "host"
    outside.mkdir()
    lower = _layer(tmp_path / "1.tgz", [
        ("usr/lib/a.so", b"a"), ("etc/old", b"old"), ("etc/keep", b"k"), ("opq/gone", b"g"),
        _link("lib", "usr/lib"), _link("evil", str(outside)),
    ])  # fmt: skip
    upper = _layer(tmp_path / "2.tgz", [
        ("lib/b.so", b"b"),                 # through lib -> usr/lib, inside the root
        ("evil/pwned", b"x"),               # through an absolute symlink: stays inside the root
        ("etc/.wh.old", b""), ("opq/.wh..wh..opq", b""), ("opq/new", b"n"),
        _link("etc/hard", "etc/keep", tarfile.LNKTYPE),
    ])  # fmt: skip
    root, unpacked = ensure_rootfs([lower, upper], tmp_path / "rootfs" / "sha256-1", label="img")
    assert unpacked
    assert (root / "usr/lib/b.so").read_bytes() == b"b" and (root / "lib").is_symlink()
    assert list(outside.iterdir()) == []
    assert (root / str(outside).lstrip("/") / "pwned").read_bytes() == b"x"
    assert not (root / "etc/old").exists() and (root / "etc/keep").read_bytes() == b"k"
    assert sorted(p.name for p in (root / "opq").iterdir()) == ["new"]
    assert os.path.samefile(root / "etc/hard", root / "etc/keep")
    assert all((root / m).is_dir() for m in ("proc", "dev", "tmp"))
    # a second unpack of the same image reuses it; a killed unpack's leftovers are cleaned
    stale = tmp_path / "rootfs" / ".tmp-999999999-x"
    stale.mkdir()
    assert ensure_rootfs([lower, upper], root, label="img") == (root, False)
    ensure_rootfs([lower], tmp_path / "rootfs" / "sha256-2", label="img")
    assert not stale.exists()
    shutil.rmtree(tmp_path / "rootfs")


def test_zstd_layers_unpack_over_gzip_ones(tmp_path: Path) -> None:
    from xplane.compose.rootfs import ensure_rootfs

    lower = _layer(tmp_path / "1.tgz", [("bin/fn", b"v1"), ("etc/old", b"old")])
    upper = _layer(tmp_path / "2.tar.zst", [("bin/fn", b"v2"), ("etc/.wh.old", b"")], zstd=True)
    assert upper.read_bytes()[:4] == b"\x28\xb5\x2f\xfd"
    root, _ = ensure_rootfs([lower, upper], tmp_path / "rootfs" / "sha256-z", label="img")
    assert (root / "bin/fn").read_bytes() == b"v2" and not (root / "etc/old").exists()


def test_a_damaged_zstd_layer_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    from xplane.compose import ComposeError
    from xplane.compose.rootfs import ensure_rootfs

    blob = bytearray(
        _layer(tmp_path / "1.tar.zst", [("bin/fn", b"function " * 4000)], zstd=True).read_bytes()
    )
    blob[len(blob) // 2] ^= 0xFF
    (tmp_path / "1.tar.zst").write_bytes(bytes(blob))
    with pytest.raises(ComposeError, match="is not a readable tar: not a valid zstd stream"):
        ensure_rootfs([tmp_path / "1.tar.zst"], tmp_path / "rootfs" / "sha256-d", label="img")
    assert list((tmp_path / "rootfs").iterdir()) == []


def test_a_zstd_bomb_stops_at_the_byte_limit(tmp_path: Path) -> None:
    import zstandard

    from xplane.compose import ComposeError
    from xplane.compose.rootfs import RootfsLimits, ensure_rootfs

    info = tarfile.TarInfo("bomb")
    info.size = 64 << 20
    path = tmp_path / "bomb.tar.zst"
    with path.open("wb") as f, zstandard.ZstdCompressor(level=1).stream_writer(f) as w:
        w.write(info.tobuf(format=tarfile.USTAR_FORMAT))
        for _ in range(64):
            w.write(bytes(1 << 20))
    assert path.stat().st_size < 1 << 20
    limits = RootfsLimits(max_bytes=16 << 20)
    with pytest.raises(ComposeError, match="refusing a possible decompression bomb"):
        ensure_rootfs([path], tmp_path / "rootfs" / "sha256-b", label="img", limits=limits)
    assert list((tmp_path / "rootfs").iterdir()) == []
