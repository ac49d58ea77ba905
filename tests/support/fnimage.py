"""A real function image for the package runtime's tests: an SDK-written function on a copied interpreter.

Real function images are static binaries on distroless bases. This one is the next best thing the
test machine can build offline: this venv's base interpreter (the binary, the shared libraries
``ldd`` names and the dynamic loader), the stdlib modules the function touches (whole top-level
packages), the installed distributions of crossplane-function-sdk-python and its requirements
(grpcio, protobuf, pydantic, ...), all byte-compiled with unchecked-hash ``.pyc`` files (the rootfs
is read-only), and a small function ``/fn/main.py`` written as function-template-python's. Its
Entrypoint is ``python3 /fn/main.py``; it takes ``--insecure`` and ``--address`` as SDK functions do.

``FN_MODE`` (set with the ``runtime-docker-env`` annotation) changes how it starts: ``crash``
writes to stderr and exits 3, ``hang`` never listens, ``garbage`` answers every connection with
bytes that are not HTTP/2. ``FN_PROBE=HOST:PORT`` makes each call try a TCP connection there and
report ``probe=connected`` (or the error's name) in its Result: what the sandbox's network allows.

The image is written as a ``docker save`` tarball and cached by content: the build (a few seconds)
happens once per key, reused by later sessions from ``cache_dir``.
"""

from __future__ import annotations

import compileall
import gzip
import hashlib
import io
import json
import os
import py_compile
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

FUNCTION_NAME = "function-pkg"
PY = f"python{sys.version_info.major}.{sys.version_info.minor}"
LIB = f"usr/local/lib/{PY}"
ROOT_DISTRIBUTION = "crossplane-function-sdk-python"

MAIN_PY = '''\
"""function-pkg: a function written with crossplane-function-sdk-python, run from its package."""

import os
import socket
import sys
import time

import click
from crossplane.function import logging, resource, response, runtime
from crossplane.function.proto.v1 import run_function_pb2 as fnv1
from crossplane.function.proto.v1 import run_function_pb2_grpc as grpcv1


def _writable(path):
    try:
        with open(os.path.join(path, ".probe"), "w") as f:
            f.write("x")
        return "yes"
    except OSError:
        return "no"


def _probe(address):
    """Whether this function can open a TCP connection to HOST:PORT (the sandbox's network)."""
    host, _, port = address.rpartition(":")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:  # no getaddrinfo: no idna codec here
        s.settimeout(2)
        try:
            s.connect((host, int(port)))
        except OSError as e:
            return type(e).__name__
    return "connected"


class FunctionRunner(grpcv1.FunctionRunnerService):
    async def RunFunction(self, req, _context):
        rsp = response.to(req)
        xr = resource.struct_to_dict(req.observed.composite.resource)
        region = xr.get("spec", {}).get("region", "us-east-1")
        resource.update(
            rsp.desired.resources["bucket"],
            {
                "apiVersion": "s3.aws.upbound.io/v1beta1",
                "kind": "Bucket",
                "spec": {"forProvider": {"region": region}},
            },
        )
        rsp.desired.resources["bucket"].ready = fnv1.READY_TRUE
        message = (
            f"cwd={os.getcwd()} greeting={os.environ.get('GREETING', '')} "
            f"tmp-writable={_writable('/tmp')} root-writable={_writable('/')}"
        )
        if os.environ.get("FN_PROBE"):
            message += f" probe={_probe(os.environ['FN_PROBE'])}"
        response.normal(rsp, message)
        return rsp


@click.command()
@click.option("--debug", "-d", is_flag=True)
@click.option("--address", default="0.0.0.0:9443")
@click.option("--tls-certs-dir", envvar="TLS_SERVER_CERTS_DIR")
@click.option("--insecure", is_flag=True)
def cli(debug, address, tls_certs_dir, insecure):
    mode = os.environ.get("FN_MODE", "serve")
    if mode == "crash":
        print("function-pkg: cannot start: the database is on fire (FN_MODE=crash)", file=sys.stderr)
        sys.exit(3)
    if mode == "hang":
        print("function-pkg: thinking forever", file=sys.stderr, flush=True)
        time.sleep(3600)
    if mode == "garbage":
        print("function-pkg: speaking in tongues", file=sys.stderr, flush=True)
        host, _, port = address.rpartition(":")
        with socket.create_server((host, int(port))) as srv:
            while True:
                conn, _ = srv.accept()
                with conn:
                    conn.sendall(b"HTTP/1.1 418 teapot, not gRPC at all")
    logging.configure(level=logging.Level.DEBUG if debug else logging.Level.INFO)
    runtime.serve(FunctionRunner(), address, creds=runtime.load_credentials(tls_certs_dir), insecure=insecure)


if __name__ == "__main__":
    cli()
'''

# Run by this venv's python: import the function, serve one call, print the modules that loaded.
_TRACE = """
import asyncio, json, sys
sys.path.insert(0, sys.argv[1])
import grpc, main
from crossplane.function.proto.v1 import run_function_pb2 as fnv1
from crossplane.function.proto.v1 import run_function_pb2_grpc as grpcv1
from crossplane.function import logging, runtime
logging.configure(level=logging.Level.INFO)

async def go():
    server = grpc.aio.server()
    grpcv1.add_FunctionRunnerServiceServicer_to_server(main.FunctionRunner(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        await grpcv1.FunctionRunnerServiceStub(ch).RunFunction(fnv1.RunFunctionRequest(), timeout=10)
    await server.stop(None)

asyncio.run(go())
print(json.dumps(sorted({getattr(m, "__file__", None) or "" for m in list(sys.modules.values())})))
"""

_SKIP_DYNLOAD = re.compile(r"^(_test|_tkinter|_curses|xx|_ctypes_test|_xxtest)")


@dataclass(frozen=True)
class FunctionImage:
    """A built runtime image: a ``docker save`` tarball and what it is made of."""

    tarball: Path
    config: dict[str, object]
    key: str


def _distributions(root: str) -> list[metadata.Distribution]:
    seen: dict[str, metadata.Distribution] = {}
    todo = [root]
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        dist = metadata.distribution(name)
        seen[key] = dist
        for req in dist.requires or []:
            if "extra ==" not in req:
                todo.append(re.split(r"[ ;<>=!~\[(]", req, maxsplit=1)[0])
    return [seen[k] for k in sorted(seen)]


def _key() -> str:
    h = hashlib.sha256(b"v2" + MAIN_PY.encode() + _TRACE.encode() + sys.version.encode())
    for dist in _distributions(ROOT_DISTRIBUTION):
        h.update(f"{dist.metadata['Name']}=={dist.version}\n".encode())
    return h.hexdigest()[:16]


def _copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dest, follow_symlinks=True)


def _shared_libraries(paths: list[Path]) -> set[Path]:
    found: set[Path] = set()
    for path in paths:
        out = subprocess.run(["ldd", str(path)], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            m = re.search(r"(/\S+) \(0x", line)
            if m:
                found.add(Path(m.group(1)))
    return found


def _stdlib_files(stdlib: Path, loaded: list[str]) -> set[Path]:
    files: set[Path] = {stdlib / "os.py"}  # the interpreter's prefix landmark
    tops = {"encodings"}
    for name in loaded:
        p = Path(name)
        if not name or stdlib not in p.parents or "site-packages" in p.parts or "lib-dynload" in p.parts:
            continue
        rel = p.relative_to(stdlib)
        if len(rel.parts) > 1:
            tops.add(rel.parts[0])
        else:
            files.add(p)
    for top in tops:
        files.update(
            f for f in (stdlib / top).rglob("*.py") if "tests" not in f.parts and "test" not in f.parts
        )
    dynload = stdlib / "lib-dynload"
    files.update(f for f in dynload.glob("*.so") if not _SKIP_DYNLOAD.match(f.name))
    return files


def _tree(work: Path) -> Path:
    """Lay out the image's filesystem under ``work/rootfs``."""
    root = work / "rootfs"
    fn_dir = root / "fn"
    fn_dir.mkdir(parents=True)
    (fn_dir / "main.py").write_text(MAIN_PY)
    (root / "tmp").mkdir()
    traced = subprocess.run(
        [sys.executable, "-c", _TRACE, str(fn_dir)], capture_output=True, text=True, timeout=60, check=False
    )
    if traced.returncode != 0:
        raise RuntimeError(f"tracing the function's imports failed: {traced.stderr[-2000:]}")
    loaded = json.loads(traced.stdout.strip().splitlines()[-1])
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for f in _stdlib_files(stdlib, loaded):
        _copy(f, root / LIB / f.relative_to(stdlib))
    site = root / LIB / "site-packages"
    for dist in _distributions(ROOT_DISTRIBUTION):
        for rel in dist.files or []:
            src = Path(str(dist.locate_file(rel)))
            if ".." in rel.parts or "__pycache__" in rel.parts or not src.is_file():
                continue
            _copy(src, site / Path(str(rel)))
    interpreter = Path(os.path.realpath(sys.executable))
    _copy(interpreter, root / "usr/local/bin/python3")
    objects = [interpreter, *root.rglob("*.so")]
    for lib in _shared_libraries(objects):
        if lib.name.startswith("ld-linux"):
            _copy(lib, root / str(lib).lstrip("/"))  # PT_INTERP: the very path the binary names
        else:
            _copy(lib, root / "usr/local/lib" / lib.name)
    compileall.compile_dir(
        str(root / LIB),
        ddir=f"/{LIB}",
        quiet=2,
        workers=2,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    compileall.compile_dir(
        str(fn_dir), ddir="/fn", quiet=2, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
    )
    return root


def _layer(root: Path, tops: list[str]) -> bytes:
    """An uncompressed tar of ``root``'s ``tops``, sorted, owned by root, timestamps fixed."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for top in tops:
            paths = [root / top, *sorted((root / top).rglob("*"))]
            for p in paths:
                info = tf.gettarinfo(str(p), arcname=str(p.relative_to(root)))
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.mtime = 1_700_000_000
                if info.isfile():
                    with p.open("rb") as f:
                        tf.addfile(info, f)
                else:
                    tf.addfile(info)
    return buf.getvalue()


def _docker_save(dest: Path, layers: list[bytes], config: dict[str, object]) -> None:
    def sha(b: bytes) -> str:
        return hashlib.sha256(b).hexdigest()

    config = {**config, "rootfs": {"type": "layers", "diff_ids": [f"sha256:{sha(la)}" for la in layers]}}
    cfg = json.dumps(config, sort_keys=True).encode()
    blobs = [gzip.compress(la, compresslevel=1, mtime=0) for la in layers]  # xpkg build embeds gzip layers
    manifest = [
        {
            "Config": f"{sha(cfg)}.json",
            "RepoTags": [f"{FUNCTION_NAME}:latest"],
            "Layers": [f"{sha(b)}.tar.gz" for b in blobs],
        }
    ]
    tmp = dest.with_name(dest.name + ".tmp")
    with tarfile.open(tmp, "w") as tf:
        for name, data in [
            (f"{sha(cfg)}.json", cfg),
            *[(f"{sha(b)}.tar.gz", b) for b in blobs],
            ("manifest.json", json.dumps(manifest).encode()),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    tmp.replace(dest)


IMAGE_CONFIG: dict[str, object] = {
    "architecture": "amd64",
    "os": "linux",
    "config": {
        "Entrypoint": ["/usr/local/bin/python3", "/fn/main.py"],
        "Cmd": ["--debug"],
        "Env": [
            "PATH=/usr/local/bin:/usr/bin:/bin",
            "PYTHONHOME=/usr/local",
            "LD_LIBRARY_PATH=/usr/local/lib",
            "PYTHONDONTWRITEBYTECODE=1",
            "GREETING=from-the-image",
        ],
        "WorkingDir": "/fn",
        "ExposedPorts": {"9443/tcp": {}},
    },
}


def build_function_image(cache_dir: Path) -> FunctionImage:
    """The function image as a ``docker save`` tarball under ``cache_dir``, built once per content key."""
    key = _key()
    dest = cache_dir / f"function-image-{key}.tar"
    if not dest.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache_dir) as work:
            root = _tree(Path(work))
            system = _layer(root, sorted(p.name for p in root.iterdir() if p.name != "fn"))
            function = _layer(root, ["fn"])
            _docker_save(dest, [system, function], IMAGE_CONFIG)
    return FunctionImage(dest, IMAGE_CONFIG, key)
