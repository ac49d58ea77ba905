"""The credential chain: every source with real files, helpers as real executables, podman interop."""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.support.registry import RegistryServer
from xplane.oci.credentials import (
    AuthFileSource,
    CredentialMatch,
    Credentials,
    ExplicitSource,
    Keychain,
    PullSecretSource,
    candidate_keys,
    default_keychain,
    normalize_key,
    remove_login,
    store_login,
)
from xplane.oci.errors import CredentialsError

SECRET = "s3cr3t-Pa55"
REG = "reg.example:5000"


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def write_json(path: Path, doc: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def auths(**entries: Any) -> dict[str, Any]:
    return {"auths": entries}


def login(user: str, pw: str = SECRET) -> dict[str, str]:
    return {"auth": b64(f"{user}:{pw}")}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A hermetic environment: HOME, XDG dirs and PATH inside tmp_path."""
    home = tmp_path / "home"
    (home / "run").mkdir(parents=True)
    (tmp_path / "bin").mkdir()
    return {
        "HOME": str(home),
        "XDG_RUNTIME_DIR": str(home / "run"),
        "XDG_CONFIG_HOME": str(home / "cfg"),
        "PATH": str(tmp_path / "bin"),
    }


def chain(env: dict[str, str], **kw: Any) -> Keychain:
    return default_keychain(env=env, system_root=Path(env["HOME"]) / "sysroot", **kw)


def user_for(kc: Keychain, registry: str = REG, repository: str = "org/app") -> str | None:
    m = kc.lookup(registry, repository)
    return m.credentials.username if m else None


# -- values and keys ----------------------------------------------------------------------------


def test_secrets_never_in_repr_str_or_format(tmp_path: Path, env: dict[str, str]) -> None:
    creds = [
        Credentials(username="u", password=SECRET),
        Credentials(identity_token=SECRET),
        Credentials(registry_token=SECRET),
        Credentials(username="u", password=SECRET, identity_token=SECRET, registry_token=SECRET),
    ]
    secret_obj = {
        "type": "kubernetes.io/dockerconfigjson",
        "metadata": {"name": "regcred", "namespace": "ns"},
        "stringData": {".dockerconfigjson": json.dumps(auths(**{REG: login("u")}))},
    }
    write_json(Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json", auths(**{REG: login("u")}))
    kc = chain(env, explicit=creds[0], pull_secrets=[secret_obj])
    objects: list[Any] = [
        *creds,
        CredentialMatch(creds[0], "somewhere"),
        ExplicitSource(creds[0]),
        PullSecretSource(secret_obj),
        kc,
        kc.lookup(REG, "x"),
        *kc.sources,
        [kc.lookup(REG, "x")],
        {"c": creds[3]},
    ]
    for obj in objects:
        spec = f"{obj:>10}" if isinstance(obj, Credentials) else ""
        for text in (repr(obj), str(obj), f"{obj}", f"{obj!r}", spec):
            assert SECRET not in text and b64(f"u:{SECRET}") not in text, text
    assert repr(creds[0]) == "Credentials(username='u', password=<redacted>)"
    assert str(creds[1]) == "Credentials(username=None, identity_token=<redacted>)"
    assert creds[0].password == SECRET  # the value is still there for the client


@pytest.mark.parametrize(
    ("key", "normal"),
    [
        ("reg.example:5000", "reg.example:5000"),
        ("https://reg.example:5000", "reg.example:5000"),
        ("http://reg.example:5000/", "reg.example:5000"),
        ("https://reg.example:5000/v1/", "reg.example:5000"),
        ("https://reg.example:5000/v2/", "reg.example:5000"),
        ("reg.example:5000/org/app", "reg.example:5000/org/app"),
        ("REG.Example", "reg.example"),
        ("https://index.docker.io/v1/", "index.docker.io"),
        ("docker.io", "index.docker.io"),
        ("registry-1.docker.io", "index.docker.io"),
        ("docker.io/library/nginx", "index.docker.io/library/nginx"),
    ],
)
def test_normalize_key(key: str, normal: str) -> None:
    assert normalize_key(key) == normal


def test_candidate_keys_most_specific_first() -> None:
    assert candidate_keys("h:1", "a/b/c") == ["h:1/a/b/c", "h:1/a/b", "h:1/a", "h:1"]
    assert candidate_keys("docker.io", "") == ["index.docker.io"]


# -- docker config.json -------------------------------------------------------------------------


def test_docker_config_entry_forms(tmp_path: Path, env: dict[str, str]) -> None:
    env["DOCKER_CONFIG"] = str(tmp_path / "dc")
    write_json(
        tmp_path / "dc" / "config.json",
        auths(
            **{
                "a.example": login("alice"),
                "https://b.example": {"username": "bob", "password": SECRET},
                "https://c.example/v1/": {"auth": "", "identitytoken": "refresh-tok"},
                "d.example": {"registrytoken": "bearer-tok"},
                "https://index.docker.io/v1/": login("hubuser"),
                "e.example": {},
            }
        ),
    )
    kc = chain(env)
    a = kc.lookup("a.example", "x/y")
    assert a is not None and a.credentials == Credentials("alice", SECRET)
    assert a.source == f"{tmp_path / 'dc' / 'config.json'} (key a.example)"
    assert kc.lookup("b.example", "x") == CredentialMatch(
        Credentials("bob", SECRET), f"{tmp_path / 'dc' / 'config.json'} (key https://b.example)"
    )
    c = kc.lookup("c.example", "x")
    assert c is not None and c.credentials.identity_token == "refresh-tok" and c.credentials.password is None
    d = kc.lookup("d.example", "x")
    assert d is not None and d.credentials.registry_token == "bearer-tok"
    for hub in ("index.docker.io", "docker.io"):
        assert user_for(kc, hub, "library/nginx") == "hubuser"
    assert kc.lookup("e.example", "x") is None  # empty entry: nothing usable
    assert kc.lookup("a.example:443", "x") is None  # the port is part of the host
    assert kc.lookup("unknown.example", "x") is None


def test_home_docker_config_used_without_docker_config(env: dict[str, str]) -> None:
    write_json(Path(env["HOME"]) / ".docker" / "config.json", auths(**{REG: login("homeuser")}))
    assert user_for(chain(env)) == "homeuser"
    env["DOCKER_CONFIG"] = str(Path(env["HOME"]) / "elsewhere")
    assert user_for(chain(env)) is None


def test_repository_keys_beat_host_keys_longest_first(tmp_path: Path, env: dict[str, str]) -> None:
    path = write_json(
        Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json",
        auths(
            **{
                REG: login("host"),
                f"{REG}/org": login("org"),
                f"{REG}/org/team": login("team"),
                f"{REG}/org/team/app": login("app"),
            }
        ),
    )
    kc = chain(env)
    assert user_for(kc, REG, "org/team/app") == "app"
    assert user_for(kc, REG, "org/team/other") == "team"
    assert user_for(kc, REG, "org/x") == "org"
    assert user_for(kc, REG, "organisation/x") == "host"  # path segments, not string prefixes
    assert user_for(kc, REG, "other") == "host"
    m = kc.lookup(REG, "org/team/z")
    assert m is not None and m.source == f"{path} (key {REG}/org/team)"


def test_source_order(tmp_path: Path, env: dict[str, str]) -> None:
    sysroot = Path(env["HOME"]) / "sysroot"
    files = {
        "docker": Path(env["HOME"]) / ".docker" / "config.json",
        "xdg_config": Path(env["XDG_CONFIG_HOME"]) / "containers" / "auth.json",
        "xdg_runtime": Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json",
        "auth_file": tmp_path / "explicit-auth.json",
    }
    for name, path in files.items():
        write_json(path, auths(**{REG: login(name)}))
    env["REGISTRY_AUTH_FILE"] = str(files["auth_file"])
    secret = {
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": b64(json.dumps(auths(**{REG: login("secret")})))},
    }
    explicit = Credentials("explicit", SECRET)

    assert user_for(chain(env, explicit=explicit, pull_secrets=[secret])) == "explicit"
    assert user_for(chain(env, pull_secrets=[secret])) == "secret"
    order = ["auth_file", "xdg_runtime", "xdg_config", "docker"]
    for name in order:
        assert user_for(chain(env)) == name
        if name == "auth_file":
            del env["REGISTRY_AUTH_FILE"]
        else:
            files[name].unlink()
    assert user_for(chain(env)) is None

    # No XDG_RUNTIME_DIR: podman's /run/containers/$UID/auth.json (under the system root here).
    del env["XDG_RUNTIME_DIR"]
    write_json(sysroot / "run" / "containers" / str(os.getuid()) / "auth.json", auths(**{REG: login("run")}))
    assert user_for(chain(env)) == "run"
    # No XDG_CONFIG_HOME: $HOME/.config/containers/auth.json.
    del env["XDG_CONFIG_HOME"]
    shutil.rmtree(sysroot / "run")
    write_json(Path(env["HOME"]) / ".config" / "containers" / "auth.json", auths(**{REG: login("dotconfig")}))
    assert user_for(chain(env)) == "dotconfig"


def test_first_file_with_a_match_wins_even_with_a_less_specific_key(env: dict[str, str]) -> None:
    """As containers/image: files are tried in order, keys most-specific-first inside each file."""
    write_json(
        Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json", auths(**{REG: login("podman-host")})
    )
    write_json(Path(env["HOME"]) / ".docker" / "config.json", auths(**{f"{REG}/org": login("docker-repo")}))
    assert user_for(chain(env), REG, "org/app") == "podman-host"


def test_searched_lists_paths_never_secrets(tmp_path: Path, env: dict[str, str]) -> None:
    env["REGISTRY_AUTH_FILE"] = str(tmp_path / "nope.json")
    write_json(Path(env["HOME"]) / ".docker" / "config.json", auths(**{REG: login("u")}))
    kc = chain(env, explicit=None)
    searched = kc.searched
    assert searched[0] == f"{tmp_path / 'nope.json'} (REGISTRY_AUTH_FILE) [not found]"
    assert f"{Path(env['XDG_RUNTIME_DIR']) / 'containers' / 'auth.json'} (podman) [not found]" in searched
    assert f"{Path(env['HOME']) / '.docker' / 'config.json'} (docker)" in searched
    assert not any(SECRET in s for s in searched)


def test_malformed_files_raise_with_path_and_line(tmp_path: Path, env: dict[str, str]) -> None:
    bad = Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json"
    bad.parent.mkdir(parents=True)
    bad.write_text('{\n  "auths": {\n    "x": {"auth": "abc"},,\n  }\n}\n')
    with pytest.raises(CredentialsError, match=rf"{bad}: invalid JSON at line 3"):
        chain(env).lookup(REG, "x")
    bad.write_text(json.dumps(auths(**{REG: {"auth": "!!not base64!!"}})))
    with pytest.raises(CredentialsError, match=r"auths\['reg.example:5000'\].auth is not base64"):
        chain(env).lookup(REG, "x")
    bad.write_text(json.dumps(auths(**{REG: {"auth": b64("no-colon-" + SECRET)}})))
    with pytest.raises(CredentialsError) as e:
        chain(env).lookup(REG, "x")
    assert SECRET not in str(e.value) and e.value.exit_code == 4
    bad.write_text("")  # an empty file (as podman leaves after logout -a) is fine
    assert chain(env).lookup(REG, "x") is None


# -- pull secrets -------------------------------------------------------------------------------


def test_pull_secret_forms(env: dict[str, str]) -> None:
    doc = json.dumps(auths(**{REG: login("viadata"), f"{REG}/org": login("viaorg")}))
    by_data = {
        "type": "kubernetes.io/dockerconfigjson",
        "metadata": {"name": "a"},
        "data": {".dockerconfigjson": b64(doc)},
    }
    by_string = {
        "type": "kubernetes.io/dockerconfigjson",
        "stringData": {".dockerconfigjson": json.dumps(auths(**{REG: login("viastring")}))},
    }
    legacy = {
        "type": "kubernetes.io/dockercfg",
        "data": {".dockercfg": b64(json.dumps({f"https://{REG}": login("legacy")}))},
    }
    assert user_for(chain(env, pull_secrets=[by_data]), REG, "x") == "viadata"
    assert user_for(chain(env, pull_secrets=[by_data]), REG, "org/x") == "viaorg"
    assert user_for(chain(env, pull_secrets=[by_string]), REG, "x") == "viastring"
    assert user_for(chain(env, pull_secrets=[legacy]), REG, "x") == "legacy"
    m = chain(env, pull_secrets=[{**by_data, "metadata": {"name": "a", "namespace": "ns"}}]).lookup(REG, "x")
    assert m is not None and m.source == f"pull secret ns/a (key {REG})"
    # Secrets are tried in order: the first with a match wins.
    other = {"stringData": {".dockerconfigjson": json.dumps(auths(**{"other.example": login("o")}))}}
    assert user_for(chain(env, pull_secrets=[other, by_data]), REG, "x") == "viadata"


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ({"type": "Opaque", "metadata": {"name": "s"}, "data": {}}, "pull secret s has type 'Opaque'"),
        ({"metadata": {"name": "s"}, "data": {}}, r"pull secret s has no data\['.dockerconfigjson'\]"),
        ({"metadata": {"name": "s"}, "data": {".dockerconfigjson": "%%%"}}, "is not valid base64"),
        ({"metadata": {"name": "s"}, "data": {".dockerconfigjson": b64("{" + SECRET)}}, "is not JSON"),
    ],
)
def test_bad_pull_secrets(env: dict[str, str], secret: dict[str, Any], message: str) -> None:
    with pytest.raises(CredentialsError, match=message) as e:
        chain(env, pull_secrets=[secret])
    assert SECRET not in str(e.value)


# -- credential helpers -------------------------------------------------------------------------

HELPER = """#!{python}
import json, sys, os
store = os.path.join(os.path.dirname(os.path.abspath(__file__)), "helper-store.json")
log = os.path.join(os.path.dirname(os.path.abspath(__file__)), "helper-calls.log")
data = json.load(open(store)) if os.path.exists(store) else {{}}
action = sys.argv[1]
payload = sys.stdin.read()
open(log, "a").write(action + " " + (payload.strip() if action != "store" else json.loads(payload)["ServerURL"]) + "\\n")
if os.environ.get("XPTEST_FAIL"):
    sys.stderr.write("keyring locked\\n"); sys.stdout.write("{secret}"); sys.exit(3)
if action == "get":
    if payload.strip() not in data:
        print("credentials not found in native keychain"); sys.exit(1)
    user, secret = data[payload.strip()]
    json.dump({{"ServerURL": payload.strip(), "Username": user, "Secret": secret}}, sys.stdout)
elif action == "store":
    d = json.loads(payload); data[d["ServerURL"]] = [d["Username"], d["Secret"]]
    json.dump(data, open(store, "w"))
elif action == "erase":
    if data.pop(payload.strip(), None) is None:
        print("credentials not found in native keychain"); sys.exit(1)
    json.dump(data, open(store, "w"))
"""


def install_helper(bindir: Path, preset: dict[str, list[str]] | None = None) -> Path:
    exe = bindir / "docker-credential-xptest"
    exe.write_text(HELPER.format(python=sys.executable, secret=SECRET))
    exe.chmod(0o755)
    if preset is not None:
        (bindir / "helper-store.json").write_text(json.dumps(preset))
    return exe


def helper_calls(bindir: Path) -> list[str]:
    log = bindir / "helper-calls.log"
    return log.read_text().splitlines() if log.exists() else []


def test_cred_helpers_and_creds_store(tmp_path: Path, env: dict[str, str]) -> None:
    bindir = tmp_path / "bin"
    install_helper(
        bindir,
        {
            REG: ["helperuser", SECRET],
            "https://index.docker.io/v1/": ["<token>", "id-token"],
            "s.example": ["storeuser", SECRET],
        },
    )
    cfg = write_json(
        Path(env["HOME"]) / ".docker" / "config.json",
        {
            "auths": {"s.example": {}, "f.example": login("fileuser")},
            "credHelpers": {REG: "xptest", "docker.io": "xptest"},
            "credsStore": "xptest",
        },
    )
    kc = chain(env)
    m = kc.lookup(REG, "org/app")
    assert m is not None and m.credentials == Credentials("helperuser", SECRET)
    assert m.source == f"docker-credential-xptest (credHelpers in {cfg})"
    hub = kc.lookup("index.docker.io", "library/x")
    assert hub is not None and hub.credentials == Credentials(identity_token="id-token")
    assert user_for(kc, "s.example") == "storeuser"  # empty auths entry -> credsStore
    assert user_for(kc, "f.example") == "fileuser"  # a file entry is used before credsStore
    assert kc.lookup("none.example", "x") is None  # helper says "not found": no match, no error
    assert helper_calls(bindir) == [
        f"get {REG}",
        "get https://index.docker.io/v1/",
        "get s.example",
        "get none.example",
    ]
    assert f"docker-credential-xptest (credsStore in {cfg})" in kc.searched


def test_helper_missing_or_failing_names_the_helper(tmp_path: Path, env: dict[str, str]) -> None:
    write_json(Path(env["HOME"]) / ".docker" / "config.json", {"auths": {}, "credHelpers": {REG: "xptest"}})
    with pytest.raises(CredentialsError, match="docker-credential-xptest is not installed") as e:
        chain(env).lookup(REG, "x")
    assert e.value.exit_code == 4
    install_helper(tmp_path / "bin", {REG: ["u", SECRET]})
    env["XPTEST_FAIL"] = "1"
    with pytest.raises(CredentialsError) as e:
        chain(env).lookup(REG, "x")
    msg = str(e.value)
    assert "docker-credential-xptest get failed (exit status 3): keyring locked" in msg and SECRET not in msg


def test_helper_printing_deep_or_bad_json_is_a_credentials_error(tmp_path: Path, env: dict[str, str]) -> None:
    write_json(Path(env["HOME"]) / ".docker" / "config.json", {"auths": {}, "credHelpers": {REG: "xptest"}})
    exe = tmp_path / "bin" / "docker-credential-xptest"
    exe.parent.mkdir(exist_ok=True)
    for output in ("[" * 100_000, "{not json", "[1, 2]"):
        exe.write_text(f"#!{sys.executable}\nimport sys\nsys.stdout.write({output!r})\n")
        exe.chmod(0o755)
        with pytest.raises(
            CredentialsError, match="get printed something that is not a JSON object|not an object"
        ):
            chain(env).lookup(REG, "x")


def test_store_and_remove_login_in_docker_config(tmp_path: Path, env: dict[str, str]) -> None:
    env["DOCKER_CONFIG"] = str(tmp_path / "dc")
    cfg = write_json(
        tmp_path / "dc" / "config.json",
        {
            "auths": {"keep.example": login("keep"), f"https://{REG}": login("old")},
            "psFormat": "table {{.ID}}",
        },
    )
    cfg.chmod(0o644)
    assert store_login(REG, Credentials("new", SECRET), env=env) == str(cfg)
    doc = json.loads(cfg.read_text())
    assert doc["psFormat"] == "table {{.ID}}" and doc["auths"]["keep.example"] == login("keep")
    assert doc["auths"][REG] == login("new", SECRET) and f"https://{REG}" not in doc["auths"]
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o600
    assert [p.name for p in cfg.parent.iterdir()] == ["config.json"]  # no temp files left
    assert user_for(chain(env)) == "new"
    store_login("docker.io", Credentials("hub", SECRET), env=env)
    assert "https://index.docker.io/v1/" in json.loads(cfg.read_text())["auths"]
    store_login(f"{REG}/org", Credentials("org", SECRET), env=env)
    assert user_for(chain(env), REG, "org/a") == "org" and user_for(chain(env), REG, "b") == "new"

    assert remove_login(f"https://{REG}/", env=env) is True
    assert user_for(chain(env), REG, "b") is None and user_for(chain(env), REG, "org/a") == "org"
    assert remove_login(REG, env=env) is False
    assert json.loads(cfg.read_text())["auths"]["keep.example"] == login("keep")


def test_login_into_fresh_home_creates_private_dir(tmp_path: Path, env: dict[str, str]) -> None:
    store_login(REG, Credentials("u", SECRET), env=env)
    cfg = Path(env["HOME"]) / ".docker" / "config.json"
    assert stat.S_IMODE(cfg.parent.stat().st_mode) == 0o700 and stat.S_IMODE(cfg.stat().st_mode) == 0o600
    with pytest.raises(CredentialsError, match="neither DOCKER_CONFIG nor HOME"):
        store_login(REG, Credentials("u", SECRET), env={})


def test_store_login_refuses_to_clobber_a_broken_file(tmp_path: Path, env: dict[str, str]) -> None:
    env["DOCKER_CONFIG"] = str(tmp_path / "dc")
    (tmp_path / "dc").mkdir()
    (tmp_path / "dc" / "config.json").write_text('{"auths": ')
    with pytest.raises(CredentialsError, match="not overwriting"):
        store_login(REG, Credentials("u", SECRET), env=env)
    assert (tmp_path / "dc" / "config.json").read_text() == '{"auths": '


def test_login_goes_to_the_configured_helper(tmp_path: Path, env: dict[str, str]) -> None:
    bindir = tmp_path / "bin"
    install_helper(bindir, {})
    cfg = write_json(Path(env["HOME"]) / ".docker" / "config.json", {"credsStore": "xptest"})
    assert store_login(REG, Credentials("u", SECRET), env=env) == f"docker-credential-xptest (via {cfg})"
    assert json.loads(cfg.read_text())["auths"] == {REG: {}}
    assert SECRET not in cfg.read_text()
    assert json.loads((bindir / "helper-store.json").read_text()) == {REG: ["u", SECRET]}
    m = chain(env).lookup(REG, "x")
    assert m is not None and m.credentials == Credentials("u", SECRET)
    assert remove_login(REG, env=env) is True
    assert json.loads((bindir / "helper-store.json").read_text()) == {}
    assert helper_calls(bindir)[-1] == f"erase {REG}"


# -- podman interop (real podman, real registry) ------------------------------------------------


def test_podman_login_file_is_read(
    tmp_path: Path, registry_basic: RegistryServer, env: dict[str, str], request: pytest.FixtureRequest
) -> None:
    podman = shutil.which("podman")
    if podman is None:
        pytest.skip("podman is not installed")
    short = Path(tempfile.mkdtemp(prefix="xpt-", dir="/tmp"))  # podman: runroot under 50 chars
    request.addfinalizer(lambda: shutil.rmtree(short, ignore_errors=True))
    authfile = tmp_path / "podman-auth.json"
    penv = {**os.environ, "HOME": env["HOME"], "XDG_RUNTIME_DIR": env["XDG_RUNTIME_DIR"]}
    penv.pop("REGISTRY_AUTH_FILE", None)
    proc = subprocess.run(
        [
            podman,
            "--root",
            str(short / "st"),
            "--runroot",
            str(short / "rr"),
            "login",
            "--authfile",
            str(authfile),
            "--tls-verify=false",
            "-u",
            registry_basic.username or "",
            "-p",
            registry_basic.password or "",
            registry_basic.host,
        ],
        capture_output=True,
        text=True,
        env=penv,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    env["REGISTRY_AUTH_FILE"] = str(authfile)
    m = chain(env).lookup(registry_basic.host, "t/any")
    assert m is not None
    assert m.credentials == Credentials(registry_basic.username, registry_basic.password)
    assert m.source == f"{authfile} (key {registry_basic.host})"
    src = AuthFileSource(authfile, env)
    assert src.find(registry_basic.host, "") == m


def test_a_login_file_read_by_threads_at_once_gives_every_thread_its_credentials(
    tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A push uploads blobs from several threads, which look credentials up together. The file was
    marked read before it was parsed, so a second thread could see it read and empty, go
    anonymous, and the push fail with 401 "no credentials found" (seen once in a full CI run)."""
    import threading
    import time

    path = write_json(tmp_path / "config.json", auths(**{REG: login("alice")}))
    source = AuthFileSource(path, env)
    real_read = Path.read_text

    def slow_read(self: Path, *a: Any, **kw: Any) -> str:
        time.sleep(0.2)  # the first reader is still reading when the others arrive
        return real_read(self, *a, **kw)

    monkeypatch.setattr(Path, "read_text", slow_read)
    got: list[str | None] = []
    start = threading.Barrier(4)

    def look() -> None:
        start.wait()
        match = source.find(REG, "org/app")
        got.append(match.credentials.username if match else None)

    threads = [threading.Thread(target=look) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == ["alice"] * 4


def test_a_malformed_login_file_fails_every_lookup_not_only_the_first(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """(It used to be marked read before parsing: after the first error, lookups went anonymous.)"""
    path = tmp_path / "config.json"
    path.write_text("{not json")
    source = AuthFileSource(path, env)
    for _ in range(2):
        with pytest.raises(CredentialsError, match="invalid JSON"):
            source.find(REG, "org/app")
