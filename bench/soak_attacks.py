"""The attacks of the issue 8 soak (bench/soak.py): hostile registries, hostile archives, hostile callers.

Three parts, all on 127.0.0.1:

* ``python bench/soak_attacks.py hostile WORKDIR``: a process serving the hostile registries of
  tests/support/hostile.py, one repository per attack. It prints one JSON line (the ``xp xpkg pull``
  attacks: arguments, expected exit code, words the error must hold) and serves until its stdin
  closes; a line ``stats`` on stdin prints what each attack route was asked and sent.
* :func:`archive_attacks`: hostile archives for ``xp xpkg load`` / ``inspect`` / ``extract``, built
  in WORKDIR (a 4 GiB gzip bomb in 4 MB, a layer of a million empty files, deep JSON...).
* ``python bench/soak_attacks.py flood PORT SECONDS [dense,huge,...]``: callers of ``xfn``'s
  ``POST /functions/{name}:run`` (the issue's item 1) and slow clients, for SECONDS; prints the
  outcome counts as JSON.

The attacker processes run niced by the soak: their own CPU is not what is measured. The soak's
helpers live here too: running an ``xp`` under ``/usr/bin/time`` and judging its outcome, reading
``/proc``, and printing the report.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.oci.hostile import (  # noqa: E402
    MiB,
    canonical,
    docker_config,
    docker_save,
    gzip_bomb,
    oci_layout,
    zeros_digest,
)
from tests.oci.hostile import deep_json as deep_array  # noqa: E402
from tests.support.hostile import (  # noqa: E402
    Answer,
    Behavior,
    Drip,
    Endless,
    HeaderDrip,
    HostileRegistry,
    RedirectLoop,
    Truncated,
    deep_json,
)
from tests.support.images import (  # noqa: E402
    DEFAULT_PACKAGE_YAML,
    OCI_CONFIG,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    TestImage,
    canonical_json,
    layer_tar,
    make_test_image,
    sha256,
)
from tests.support.runbodies import kubernetes_request, wrap  # noqa: E402

GIB = 1 << 30
FUNCTION = "echo"  # the function the soak's xfn serves
_BIN = Path(sys.executable).parent
XP = [str(_BIN / "xp")] if (_BIN / "xp").exists() else [sys.executable, "-m", "xplane.cli.main"]
NICE = ["nice", "-n", "10"]


@dataclass
class XpAttack:
    """One ``xp`` command that must fail (or succeed) the documented way."""

    name: str
    args: list[str]
    code: int  # the documented exit code
    words: list[str] = field(default_factory=list)  # every one must be in stderr
    stdin: str = ""
    timeout: float = 60.0  # the soak kills it (and counts a failure) after this
    out: str | None = None  # a path the command must not leave behind


# -- hostile registries ------------------------------------------------------------------------------


def _repo(name: str) -> str:
    """A repository name for an attack's description."""
    return "soak/" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _deep_config_image(reg: HostileRegistry, repo: str, image: TestImage) -> None:
    """``repo:v1``: a manifest whose config is nested 5000 levels deep (it once entered the cache)."""
    config = b'{"x":' + deep_array(5000) + b"}"
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": reg.add_blob(config), "size": len(config)},
            "layers": [
                {"mediaType": OCI_LAYER_GZIP, "digest": reg.add_blob(image.layer), "size": len(image.layer)}
            ],
        }
    )
    reg.add_manifest(repo, "v1", manifest, OCI_MANIFEST)


def _pull(ref: str, *extra: str) -> list[str]:
    return ["xpkg", "pull", "--plain-http", "--pull-policy", "Always", ref, *extra]


def serve_hostile(work: Path) -> tuple[list[HostileRegistry], list[XpAttack], Callable[[], dict[str, Any]]]:
    """Start the hostile registries; the pull attacks and a function reporting what was served.

    Every attack serves an image of its own (its own digests), so that what one attack's pull got
    into the shared cache never spares another's the attacked request.
    """
    reg = HostileRegistry().start()
    servers = [reg]
    attacks: list[XpAttack] = []
    routes: dict[str, tuple[HostileRegistry, str]] = {}

    def image_for(name: str) -> TestImage:
        pkg = DEFAULT_PACKAGE_YAML + f"# {name}\n"
        return make_test_image(work / _repo(name), name=_repo(name), tag="v1", package_yaml=pkg)

    def on(
        name: str, route: str, make: Callable[[TestImage], Behavior], code: int, words: list[str], *extra: str
    ) -> XpAttack:
        image = image_for(name)
        ref = reg.serve_image(image)
        pattern = f"^/v2/{image.name}/{route}/"
        reg.attack(pattern, make(image), method="GET")  # HEAD answers: the pull goes on to the GET
        routes[name] = (reg, pattern)
        attacks.append(XpAttack(f"pull: {name}", _pull(ref, *extra), code, [reg.host, *words]))
        return attacks[-1]

    def typed(i: TestImage) -> dict[str, str]:
        return {"Content-Type": i.manifest_media_type}

    def deep_manifest(i: TestImage) -> Behavior:
        deep = deep_json(200_000)
        reg.add_manifest(i.name, i.tag, deep, i.manifest_media_type)  # the tag names the deep one
        return Answer(200, deep, typed(i))

    on(
        "404 with a 1.5 GB body",
        "manifests",
        lambda i: Endless(404, content_length=3 * GIB // 2),
        3,
        ["HTTP 404"],
    )
    on("endless 500 body", "manifests", lambda i: Endless(500), 1, ["HTTP 500"])
    on("endless 403 body", "manifests", lambda i: Endless(403), 4, ["HTTP 403"])
    on(
        "manifest Content-Length 10^15",
        "manifests",
        lambda i: Endless(200, typed(i), content_length=10**15),
        1,
        ["larger than 4194304 bytes", "refusing to read it"],
    )
    on(
        "truncated manifest",
        "manifests",
        lambda i: Truncated(i.manifest, at=100, headers=typed(i)),
        1,
        ["broke off after 100 bytes"],
    )
    on("deep JSON manifest", "manifests", deep_manifest, 1, ["nested deeper than 64 levels"])
    on("blob redirect loop", "blobs", lambda i: RedirectLoop(), 1, ["redirect loop"])
    on("blob larger than its descriptor", "blobs", lambda i: Endless(200), 1, ["descriptor says"])
    on("blob Content-Length 10^15", "blobs", lambda i: Endless(200, content_length=10**15), 1, ["hint:"])
    on(
        "503 Retry-After storm, --pull-timeout 3s",
        "manifests",
        lambda i: Answer(503, b"{}", {"Retry-After": "1"}),
        1,
        ["HTTP 503"],
        "--pull-timeout",
        "3s",
    )
    on(
        "manifest at 1 byte/s, --pull-timeout 3s",
        "manifests",
        lambda i: Drip(i.manifest, interval=1.0, headers=typed(i)),
        1,
        ["did not finish within 3s"],
        "--pull-timeout",
        "3s",
    )
    on(
        "headers at 5 bytes/s, --pull-timeout 3s",
        "manifests",
        lambda i: HeaderDrip(interval=0.2),
        1,
        ["did not finish within 3s"],
        "--pull-timeout",
        "3s",
    )
    slow = on(
        "manifest at 1 byte/s, default limits",
        "manifests",
        lambda i: Drip(i.manifest, interval=1.0, headers=typed(i)),
        1,
        ["below the minimum"],
    )
    slow.timeout = 90.0  # the 1 KiB/s minimum is averaged over 30 s
    deep_config = _repo("deep JSON config")
    _deep_config_image(reg, deep_config, image_for("deep JSON config"))
    routes["deep JSON config"] = (reg, f"^/v2/{deep_config}/blobs/")
    attacks.append(
        XpAttack(
            "pull: deep JSON config", _pull(reg.ref(deep_config, "v1")), 1, ["nested deeper than 64 levels"]
        )
    )

    def token_registry(name: str, token: Behavior, words: list[str]) -> None:
        tok = HostileRegistry(auth="token").start()
        servers.append(tok)
        ref = tok.serve_image(image_for(name))
        tok.attack(r"^/token$", token)
        routes[name] = (tok, r"^/token$")
        attacks.append(XpAttack(f"pull: {name}", _pull(ref), 1, [tok.host, *words]))

    token_registry("1.5 GB token response", Endless(200, content_length=3 * GIB // 2), ["256 KiB"])
    token_registry("endless token response", Endless(200), ["256 KiB"])
    token_registry("deep JSON token", Answer(200, deep_json(100_000, key="token")), ["nested deeper than 64"])

    realm = HostileRegistry().start()
    victim = HostileRegistry(auth="token", realm=f"http://localhost:{realm.port}/token").start()
    servers += [realm, victim]
    ref = victim.serve_image(image_for("realm"))
    routes["realm on another host (must get no request)"] = (realm, r"^/token$")
    attacks.append(
        XpAttack(
            "pull: realm on another host, plain HTTP, with a password",
            [*_pull(ref), "-u", "victim", "--password-stdin"],
            1,
            ["refusing to send credentials", "plainHTTP"],
            stdin="s3cret\n",
        )
    )

    def stats() -> dict[str, Any]:
        return {
            name: {"requests": server.count(pattern), "body_bytes_sent": server.sent(pattern)}
            for name, (server, pattern) in routes.items()
        }

    return servers, attacks, stats


def _hostile_main(work: Path) -> int:
    servers, attacks, stats = serve_hostile(work)
    print(json.dumps({"attacks": [asdict(a) for a in attacks]}), flush=True)
    try:
        for line in sys.stdin:
            if line.strip() == "stats":
                print(json.dumps(stats()), flush=True)
    finally:
        for s in servers:
            s.stop()
    return 0


# -- hostile archives --------------------------------------------------------------------------------


def _good_layer() -> tuple[bytes, str]:
    tar = layer_tar({"package.yaml": b"a: 1\n"})
    return gzip.compress(tar, mtime=0), sha256(tar)


def many_entries_layer(path: Path, entries: int) -> bytes:
    """A gzip'd tar of ``entries`` empty files then a package.yaml, streamed (never whole in memory)."""
    info = tarfile.TarInfo("e0000000")
    info.mtime = 0
    template = bytearray(info.tobuf(format=tarfile.USTAR_FORMAT))
    base = sum(template) - sum(template[148:156]) + 8 * ord(" ") - sum(b"e0000000")
    with gzip.open(path, "wb", compresslevel=1) as out:
        batch = bytearray()
        for i in range(entries):
            name = b"e%07d" % i
            template[0:8] = name
            template[148:156] = b"%06o\0 " % (base + sum(name))
            batch += template
            if len(batch) >= 4 * MiB:
                out.write(batch)
                batch.clear()
        out.write(batch)
        pkg = DEFAULT_PACKAGE_YAML.encode()
        last = tarfile.TarInfo("package.yaml")
        last.size = len(pkg)
        out.write(last.tobuf(format=tarfile.USTAR_FORMAT) + pkg + b"\0" * (-len(pkg) % 512) + b"\0" * 1024)
    data = path.read_bytes()
    path.unlink()
    return data


def _tar_dir(src: Path, dest: Path) -> Path:
    with tarfile.open(dest, "w") as tf:
        for p in sorted(src.rglob("*")):
            if p.is_file():
                tf.add(p, str(p.relative_to(src)))
    return dest


def archive_attacks(work: Path) -> list[XpAttack]:
    """Build the hostile archives under ``work``; the ``xp`` commands that read them."""
    work.mkdir(parents=True, exist_ok=True)
    ref = "soak.example/org/pkg:v1"
    layer, diff_id = _good_layer()
    out: list[XpAttack] = []

    def load(name: str, source: Path, code: int, words: list[str], *extra: str) -> None:
        out.append(
            XpAttack(f"load: {name}", ["xpkg", "load", str(source), "--ref", ref, *extra], code, words)
        )

    bomb = docker_save(
        work / "bomb.tar", config=docker_config([zeros_digest(1)]), layers=[("l/layer.tar", gzip_bomb(4096))]
    )
    load(
        "gzip bomb, 4 MB -> 4 GiB, --max-total-size 10M",
        bomb,
        1,
        ["inflate to more than 10485760 bytes"],
        "--max-total-size",
        "10M",
    )
    load(
        "deep JSON manifest.json",
        docker_save(
            work / "deep-manifest.tar",
            config=docker_config([diff_id]),
            layers=[("l/layer.tar", layer)],
            manifest_json=deep_array(100_000),
        ),
        1,
        ["manifest.json"],
    )
    deep_cfg = canonical({"rootfs": {"type": "layers", "diff_ids": [diff_id]}, "x": "PLACEHOLDER"})
    deep_cfg = deep_cfg.replace(b'"PLACEHOLDER"', deep_array(5000))
    load(
        "deep JSON config",
        docker_save(work / "deep-config.tar", config=deep_cfg, layers=[("l/layer.tar", layer)]),
        1,
        ["nested deeper than 64 levels"],
    )
    repotags = canonical([{"Config": "config.json", "RepoTags": 5, "Layers": ["l/layer.tar"]}])
    load(
        "RepoTags is a number",
        docker_save(
            work / "repotags.tar",
            config=docker_config([diff_id]),
            layers=[("l/layer.tar", layer)],
            manifest_json=repotags,
        ),
        1,
        ["manifest.json"],
    )
    deep_index = oci_layout(work / "deep-index", config=b"{}", layers=[layer], index_json=deep_array(100_000))
    load("deep JSON index.json", deep_index.path, 1, ["index.json"])
    deep_layer = oci_layout(
        work / "deep-layer", config=b'{"architecture":"amd64","os":"linux"}', layers=[deep_array(200_000)]
    )
    load("deep JSON in a layer (loads; poisons nothing)", deep_layer.path, 0, [])
    many = many_entries_layer(work / "many.tar.gz", 1_000_000)
    layout = oci_layout(work / "many-entries", config=b'{"architecture":"amd64","os":"linux"}', layers=[many])
    words = ["more than 100000 tar entries"]
    out.append(
        XpAttack("inspect: a layer of 1M empty files", ["xpkg", "inspect", str(layout.path)], 1, words)
    )
    archive = _tar_dir(layout.path, work / "many-entries.tar")
    extracted = work / "extract" / "out.gz"
    extracted.parent.mkdir(exist_ok=True)
    out.append(
        XpAttack(
            "extract: a layer of 1M empty files",
            ["xpkg", "extract", "--from-xpkg", str(archive), "-o", str(extracted)],
            1,
            words,
            out=str(extracted),
        )
    )
    return out


# -- hostile callers of xfn --------------------------------------------------------------------------


def post(port: int, body: bytes, *, timeout: float = 120.0) -> str:
    """POST ``body`` to ``:run`` as an attacker does (the whole body, then read); the status or what broke."""
    path = f"/functions/{FUNCTION}:run"
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                s.sendall(head)
                s.sendall(body)
            return _status(s)
    except TimeoutError:
        return "client timeout"
    except OSError as e:
        return f"error: {type(e).__name__}"


def _status(s: socket.socket) -> str:
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while b"\r\n" not in data and (chunk := s.recv(4096)):
            data += chunk
    if not data:
        return "reset without an answer"
    parts = data.split(b"\r\n", 1)[0].split()
    return parts[1].decode() if len(parts) > 1 else "malformed answer"


@dataclass
class Flood:
    """One kind of caller, looping until ``stop``: what it sends, how many at once, what may come back."""

    key: str  # for --floods
    name: str
    send: Callable[[], Iterator[str]]
    threads: int
    expected: set[str]
    size: int = 0  # bytes per call
    outcomes: Counter[str] = field(default_factory=Counter)


def _slow_clients(port: int, stop: threading.Event, *, conns: int, body: bool) -> Iterator[str]:
    """Slowloris: ``conns`` connections sending their head (or a :run body) a few bytes a second.

    Yields each connection's answer (xfn's read timeout is 30 s from the connection's start)."""
    if body:
        head = f"POST /functions/{FUNCTION}:run HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n"
        start, drip = head.encode(), b"[" * 200_000
    else:
        start, drip = b"GET /health HTTP/1.1\r\nX-Pad: ", b"a" * 200_000
    live: dict[socket.socket, int] = {}
    while not stop.is_set():
        while len(live) < conns:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(start)
            live[s] = 0
        readable, _, _ = select.select(list(live), [], [], 0.5)
        for s in readable:
            live.pop(s)
            yield _status(s)
            s.close()
        for s, sent in list(live.items()):
            try:
                s.send(drip[sent : sent + 5])
                live[s] = sent + 5
            except OSError:
                live.pop(s)
                s.close()
                yield "reset without an answer"
    for s in live:
        s.close()


def floods(port: int, stop: threading.Event) -> list[Flood]:
    dense = wrap(b"{}," * 2_499_999 + b"{}")  # 7.5 MB, 2.5M values: under --http-max-body
    huge = b"0," * 10_000_000  # 20 MB: over --http-max-body
    valid = kubernetes_request(14_000)  # 6 MB, 400k values: parsed in a JSON worker
    small = kubernetes_request(5)
    nested = b'{"observed":{"composite":{"resource":{"n":' + b'{"a":' * 5000 + b"1" + b"}" * 5000 + b"}}}}"

    def loop(body: bytes) -> Callable[[], Iterator[str]]:
        def run() -> Iterator[str]:
            while not stop.is_set():
                yield post(port, body)

        return run

    def burst() -> Iterator[str]:  # many small calls at once, and deep nesting
        while not stop.is_set():
            for body in [small] * 8 + [nested] * 2:
                yield post(port, body)

    return [
        Flood("dense", "7.5 MB of [{},...] (2.5M values)", loop(dense), 4, {"413", "503"}, len(dense)),
        Flood("huge", "20 MB body (over --http-max-body)", loop(huge), 2, {"413"}, len(huge)),
        Flood(
            "valid", "6 MB Kubernetes-like bodies (400k values)", loop(valid), 2, {"200", "503"}, len(valid)
        ),
        Flood("small", "small and 5000-deep bodies, 6 at once", burst, 6, {"200", "400", "503"}),
        Flood(
            "slowloris",
            "slowloris: 50 heads at 10 bytes/s",
            lambda: _slow_clients(port, stop, conns=50, body=False),
            1,
            {"408"},
        ),
        Flood(
            "slowbody",
            "a :run body at 10 bytes/s",
            lambda: _slow_clients(port, stop, conns=1, body=True),
            1,
            {"408", "503"},
        ),
    ]


FLOODS = ("dense", "huge", "valid", "small", "slowloris", "slowbody")


def _flood_main(port: int, seconds: float, keys: set[str]) -> int:
    stop = threading.Event()
    kinds = [f for f in floods(port, stop) if f.key in keys]

    def worker(flood: Flood) -> None:
        for outcome in flood.send():
            flood.outcomes[outcome] += 1

    threads = [
        threading.Thread(target=worker, args=(f,), daemon=True) for f in kinds for _ in range(f.threads)
    ]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(150)
    doc = {
        f.name: {
            "outcomes": dict(f.outcomes),
            "expected": sorted(f.expected),
            "threads": f.threads,
            "mb_per_s": f.size * sum(f.outcomes.values()) / seconds / 1e6,
        }
        for f in kinds
    }
    print(json.dumps(doc), flush=True)
    return 0


# -- /proc ----------------------------------------------------------------------------------------


def status_kib(pid: int, key: str) -> int:
    """``VmHWM``/``VmRSS`` of ``pid`` in KiB (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{p}/task").iterdir():
                with contextlib.suppress(OSError):
                    kids = [int(c) for c in (task / "children").read_text().split()]
                    out += kids
                    todo += kids
    return out


def disk_use(path: Path) -> tuple[int, int]:
    """Bytes on disk (allocated blocks) and files under ``path``."""
    total = files = 0
    for dirpath, _dirs, names in os.walk(path):
        for n in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, n)).st_blocks * 512
                files += 1
    return total, files


# -- the pieces that run ----------------------------------------------------------------------------


@dataclass
class XpRun:
    code: int | None  # None: killed at its timeout
    stderr: str
    seconds: float
    rss_mib: float


def run_xp(
    args: list[str],
    env: dict[str, str],
    work: Path,
    *,
    stdin: str = "",
    timeout: float = 60,
    nice: bool = False,
    argv: list[str] = XP,
) -> XpRun:
    """``xp ARGS`` (or ``argv ARGS``) under ``/usr/bin/time``, killed at ``timeout``.

    The peak RSS is ``time``'s: that of the process itself, not inherited from this one. An
    attacker (``nice``) runs at nice 10 in this process's session: with the kernel's autogroups,
    nice only counts between processes of one session. A probe gets a session of its own, as a
    user's command would.
    """
    fd, rss_file = tempfile.mkstemp(dir=work, prefix="rss-")
    os.close(fd)
    cmd = [*(NICE if nice else []), "/usr/bin/time", "-f", "%M", "-o", rss_file, *argv, *args]
    start = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=not nice,
        process_group=0 if nice else None,
    )
    try:
        _, err = proc.communicate(stdin.encode(), timeout=timeout)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        code = None
    seconds = time.monotonic() - start
    text = Path(rss_file).read_text().strip().splitlines()
    os.unlink(rss_file)
    rss = int(text[-1]) / 1024 if text and text[-1].isdigit() else 0.0
    return XpRun(code, err.decode(errors="replace"), seconds, rss)


def judge(attack: XpAttack, run: XpRun) -> str | None:
    """Why ``run`` is not what the docs promise for ``attack`` (None: it is)."""
    if run.code is None:
        return f"still running after {attack.timeout:g}s (killed)"
    if "Traceback" in run.stderr:
        return "a traceback"
    if run.code != attack.code:
        return f"exit code {run.code}, expected {attack.code}"
    errors = [ln for ln in run.stderr.splitlines() if ln.startswith("xp: error: ")]
    if len(errors) != (1 if attack.code else 0):
        return f"{len(errors)} 'xp: error:' lines"
    missing = [w for w in attack.words if w not in run.stderr]
    if missing:
        return f"stderr lacks {missing}"
    if attack.out and Path(attack.out).exists():
        return f"left {attack.out} behind"
    return None


@dataclass
class Tally:
    """Outcomes of one attack over the soak."""

    runs: int = 0
    ok: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    seconds: list[float] = field(default_factory=list)
    rss_mib: float = 0.0
    failures: list[str] = field(default_factory=list)


def machine_jiffies() -> tuple[int, int]:
    """Busy and total CPU jiffies of the machine, all CPUs."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return sum(v) - v[3] - v[4], sum(v)


def tree_jiffies(pid: int, *, alone: bool = False) -> int:
    """CPU jiffies of ``pid``, with its reaped children and its live descendants unless ``alone``."""
    total = 0
    for i, p in enumerate([pid] if alone else [pid, *descendants(pid)]):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11 : 13 if alone or i else 15])
    return total


# -- the report ---------------------------------------------------------------------------------


def print_table(res: dict[str, Any]) -> None:
    rows: list[tuple[str, ...]] = [
        (
            "PROBE",
            "QUIET median / p95",
            "ATTACK median / p95",
            "AFTER median",
            "RATIO median (p95)",
            "N quiet/attack",
        )
    ]
    for what, r in res["probes"].items():

        def ms(phase: str, r: dict[str, Any] = r) -> str:
            p = r.get(phase)
            return f"{p['median_s'] * 1000:.1f} / {p['p95_s'] * 1000:.1f} ms" if p else "-"

        ratio = f"{r['ratio']:.2f}x ({r['p95_ratio']:.2f}x)" if "ratio" in r else "-"
        if "net_ratio" in r:
            ratio += f", net {r['net_ratio']:.2f}x"
        n = f"{r.get('quiet', {}).get('n', 0)}/{r.get('attack', {}).get('n', 0)}"
        rows.append((what, ms("quiet"), ms("attack"), ms("after").split(" / ")[0], ratio, n))
    _table(rows)
    print()
    _table([("PROCESS", "PEAK RSS MiB"), *((k, f"{v:.0f}") for k, v in res["peak_rss_mib"].items())])
    print(f"  (most xfn JSON workers at once: {res['most_xfn_workers']})\n")
    _table(
        [
            ("DISK", "VALUE"),
            *((k, f"{v:.1f}" if isinstance(v, float) else str(v)) for k, v in res["disk"].items()),
        ]
    )
    print()
    rows = [("XP ATTACK", "RUNS", "AS DOCUMENTED", "EXIT CODES", "MEDIAN s", "MAX s", "PEAK RSS MiB")]
    for name, t in sorted(res["xp_attacks"].items()):
        codes = ",".join(f"{k}x{v}" for k, v in sorted(t["codes"].items()))
        rows.append(
            (
                name,
                str(t["runs"]),
                str(t["ok"]),
                codes,
                f"{t['median_s']:.2f}",
                f"{t['max_s']:.2f}",
                f"{t['peak_rss_mib']:.0f}",
            )
        )
    _table(rows)
    print()
    rows = [("XFN :run FLOOD", "THREADS", "MB/s", "OUTCOMES", "EXPECTED")]
    for name, f in res["xfn_floods"].items():
        outcomes = ", ".join(f"{k}: {v}" for k, v in sorted(f["outcomes"].items()))
        mbs = f"{f['mb_per_s']:.0f}" if f["mb_per_s"] else "-"
        rows.append((name, str(f["threads"]), mbs, outcomes, "/".join(f["expected"])))
    _table(rows)
    print()
    loads = ", ".join(f"{p} {v['mean']:.2f} (max {v['max']:.2f})" for p, v in res["loadavg"].items())
    print(f"load average (1 min) per phase: {loads}; at the end {res['loadavg_end'][0]:.2f}")
    cpu = ", ".join(
        f"{p} {c['machine_busy_pct']:.0f}% busy, xfn {c['xfn_cpus']:.2f} CPUs ({c['xfn_runner_cpus']:.2f} the runner)"
        for p, c in res["cpu"].items()
    )
    print(f"CPU per phase (2 CPUs = 100%): {cpu}\n")
    _table(
        [
            ("CHECK", "OK", "DETAIL"),
            *((c["check"], "yes" if c["ok"] else "NO", c["detail"][:150]) for c in res["checks"]),
        ]
    )
    for name, t in res["xp_attacks"].items():
        for failure in t["failures"]:
            print(f"\n{name}: {failure}")


def _table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


if __name__ == "__main__":
    if sys.argv[1:2] == ["hostile"]:
        sys.exit(_hostile_main(Path(sys.argv[2])))
    if sys.argv[1:2] == ["flood"]:
        keys = set(sys.argv[4].split(",")) if len(sys.argv) > 4 else set(FLOODS)
        sys.exit(_flood_main(int(sys.argv[2]), float(sys.argv[3]), keys))
    sys.exit(f"usage: {sys.argv[0]} hostile WORKDIR | flood HTTP_PORT SECONDS [{','.join(FLOODS)}]")
