"""``xp registry login|logout`` against real registries; the written file checked by skopeo."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from tests.support.authfiles import write_auth_file
from tests.support.images import TestImage
from tests.support.registry import RegistryServer
from tests.support.skopeo import Skopeo
from xplane.cli.main import cli
from xplane.cli.options import build_registry_access, make_registry_client, registry_options
from xplane.cli.output import run_cli
from xplane.oci.client import RegistryClient
from xplane.oci.credentials import Credentials, Keychain, default_keychain
from xplane.oci.errors import AuthenticationError
from xplane.oci.reference import Reference

ENV_KEYS = ("REGISTRY_AUTH_FILE", "CONTAINERS_REGISTRIES_CONF", "XPLANE_CONFIG", "DOCKER_CONFIG")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    (home / "run").mkdir(parents=True)
    return {
        "HOME": str(home),
        "XDG_RUNTIME_DIR": str(home / "run"),
        "XDG_CONFIG_HOME": str(home / "cfg"),
        "DOCKER_CONFIG": str(tmp_path / "docker"),
    }


def runner() -> CliRunner:
    """A runner keeping stderr apart on every click the range allows (8.1 mixes it in by default)."""
    try:
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]  # click < 8.2
    except TypeError:  # click 8.2 and later: always apart, and no such argument
        return CliRunner()


def xp(*args: str, env: dict[str, str], input: str | None = None) -> tuple[int, str, str]:
    """Run ``xp ARGS`` in-process with exactly ``env``'s registry variables; (code, stdout, stderr)."""
    full: dict[str, str | None] = {k: None for k in ENV_KEYS}
    full.update(env)
    with runner().isolation(input=input, env=full) as streams:
        out, err = streams[0], streams[1]
        code = run_cli(cli, list(args))
        return code, out.getvalue().decode(), err.getvalue().decode()


def docker_config(env: dict[str, str]) -> Path:
    return Path(env["DOCKER_CONFIG"]) / "config.json"


def test_login_writes_docker_config_that_skopeo_accepts(
    registry_basic: RegistryServer, skopeo: Skopeo, xpkg_image: TestImage, env: dict[str, str]
) -> None:
    ref = skopeo.push(xpkg_image, registry_basic)
    host, user, pw = registry_basic.host, registry_basic.username or "", registry_basic.password or ""
    cfg = docker_config(env)
    cfg.parent.mkdir()
    cfg.write_text(json.dumps({"auths": {"other.example": {"auth": "b3RoZXI6eA=="}}, "detachKeys": "ctrl-p"}))

    code, out, err = xp(
        "registry", "login", host, "--plain-http", "-u", user, "--password-stdin", env=env, input=pw + "\n"
    )
    assert code == 0, err
    assert out == f"Login Succeeded: {host} (saved in {cfg})\n"
    doc = json.loads(cfg.read_text())
    assert doc["detachKeys"] == "ctrl-p" and "other.example" in doc["auths"]
    assert base64.b64decode(doc["auths"][host]["auth"]).decode() == f"{user}:{pw}"
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o600

    inspect = ["inspect", "--raw", "--tls-verify=false", "--authfile", str(cfg), f"docker://{ref}"]
    proc = skopeo(*inspect)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == json.loads(xpkg_image.manifest)

    # xplane itself now finds the login and can talk to the registry with it.
    keychain = default_keychain(env=env)
    match = keychain.lookup(host, xpkg_image.name)
    assert match is not None and match.credentials == Credentials(user, pw)
    with make_registry_client(plain_http=True, env=env) as client:
        assert client.list_tags(Reference.parse(ref)) == [xpkg_image.tag]
    anonymous = RegistryClient(keychain=Keychain(), config=client.config)
    with anonymous, pytest.raises(AuthenticationError, match="no credentials found"):
        anonymous.list_tags(Reference.parse(ref))

    code, out, err = xp("registry", "logout", host, env=env)
    assert code == 0 and out == f"Removed login credentials for {host} from {cfg}\n"
    assert host not in json.loads(cfg.read_text())["auths"]
    proc = skopeo(*inspect)
    assert proc.returncode != 0 and "unauthorized" in proc.stderr.lower()
    code, out, err = xp("registry", "logout", host, env=env)
    assert code == 0 and f"Not logged in to {host}" in err


def test_wrong_password_exits_4_and_writes_nothing(
    registry_basic: RegistryServer, env: dict[str, str]
) -> None:
    code, out, err = xp(
        "registry",
        "login",
        registry_basic.host,
        "--plain-http",
        "-u",
        "testuser",
        "--password-stdin",
        env=env,
        input="wrong-pa55\n",
    )
    assert code == 4, err
    assert "authentication" in err and registry_basic.host in err and "wrong-pa55" not in err + out
    assert "the registry rejected the password for user 'testuser' (given to xp registry login)" in err
    assert "credentials from the credentials" not in err and "run `xp registry login" not in err
    assert "hint: check the username and password" in err
    assert not docker_config(env).exists()
    code, _, err = xp(
        "registry",
        "login",
        registry_basic.host,
        "--plain-http",
        "-u",
        "nobody",
        "--password-stdin",
        env=env,
        input="x\n",
    )
    assert code == 4 and not docker_config(env).exists()


def test_login_uses_config_file_settings_and_repository_logins(
    registry_basic: RegistryServer, env: dict[str, str], tmp_path: Path
) -> None:
    host = registry_basic.host
    code, _, err = xp(
        "registry", "login", host, "-u", "testuser", "--password-stdin", env=env, input="testpass"
    )
    # Not marked plain HTTP (loopback included): HTTPS is tried, fails, and the hint says what to do.
    assert code == 5 and "plain" in err and not docker_config(env).exists()
    conf = tmp_path / "xp.yaml"
    conf.write_text(f'registries:\n  "{host}": {{plainHTTP: true}}\n')
    env["XPLANE_CONFIG"] = str(conf)
    code, _, err = xp(
        "registry",
        "login",
        f"{host}/team/app",
        "-u",
        "testuser",
        "--password-stdin",
        env=env,
        input="testpass",
    )
    assert code == 0, err
    assert list(json.loads(docker_config(env).read_text())["auths"]) == [f"{host}/team/app"]
    kc = default_keychain(env=env)
    assert kc.lookup(host, "team/app") is not None and kc.lookup(host, "team/other") is None


def test_login_warns_when_another_file_shadows_it(
    registry_basic: RegistryServer, env: dict[str, str], tmp_path: Path
) -> None:
    podman_file = write_auth_file(tmp_path / "auth.json", auths={registry_basic.host: ("old", "x")})
    env["REGISTRY_AUTH_FILE"] = str(podman_file)
    code, _, err = xp(
        "registry",
        "login",
        registry_basic.host,
        "--plain-http",
        "-u",
        "testuser",
        "--password-stdin",
        env=env,
        input="testpass\n",
    )
    assert code == 0, err
    assert f"note: {podman_file} (key {registry_basic.host}) also holds a login" in err
    code, _, err = xp("registry", "logout", registry_basic.host, env=env)
    assert code == 0
    assert f"note: xplane still finds a login for {registry_basic.host} in {podman_file}" in err


def test_login_over_tls_with_ca_file(registry_tls: RegistryServer, env: dict[str, str]) -> None:
    args = ["registry", "login", registry_tls.host, "-u", "testuser", "--password-stdin"]
    code, _, err = xp(*args, env=env, input="testpass")
    assert code == 5, err  # unknown CA
    assert registry_tls.ca_file is not None
    code, _, err = xp(*args, "--ca-file", str(registry_tls.ca_file), env=env, input="testpass")
    assert code == 0, err
    code, _, err = xp(*args, "--insecure-skip-tls-verify", env=env, input="nope")
    assert code == 4, err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--password-stdin"], "give the username with -u/--username"),
        (["-u", "someone"], "pipe the password in with --password-stdin"),
    ],
)
def test_login_usage_errors(env: dict[str, str], args: list[str], message: str) -> None:
    code, _, err = xp("registry", "login", "reg.example", *args, env=env, input="pw")
    assert code == 2 and message in err


def test_registry_options_and_build_registry_access(tmp_path: Path, env: dict[str, str]) -> None:
    seen: dict[str, object] = {}

    @click.command()
    @registry_options
    def cmd(**kw: object) -> None:
        seen.update(kw)
        keychain, config = build_registry_access(**kw)  # type: ignore[arg-type]
        seen["match"] = keychain.lookup("any.example", "x")
        seen["settings"] = config.for_registry("any.example")

    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    args = [
        "--ca-file",
        str(ca),
        "--insecure-skip-tls-verify",
        "--plain-http",
        "-u",
        "me",
        "--password-stdin",
    ]
    with runner().isolation(input="pw\n", env={**env, **{k: None for k in ENV_KEYS[:3]}}):
        assert run_cli(cmd, args) == 0
    assert set(seen) >= {"ca_file", "insecure_skip_tls_verify", "plain_http", "username", "password_stdin"}
    match = seen["match"]
    assert match is not None and match.credentials == Credentials("me", "pw")  # type: ignore[attr-defined]
    s = seen["settings"]
    assert s.ca_files == (ca,) and s.plain_http and s.insecure_skip_verify  # type: ignore[attr-defined]
    with runner().isolation(input="", env=env) as streams:
        err = streams[1]
        assert run_cli(cmd, ["-u", "me"]) == 2
        assert "--username needs --password-stdin" in err.getvalue().decode()


def test_plain_http_to_a_tls_registry_exits_5_and_saves_nothing(
    registry_tls: RegistryServer, env: dict[str, str]
) -> None:
    """The registry answers plain HTTP with a 400 page, which must not pass for a login."""
    code, out, err = xp(
        "registry", "login", registry_tls.host, "--plain-http", "-u", "testuser", "--password-stdin",
        env=env, input="testpass\n",
    )  # fmt: skip
    assert code == 5, err
    assert f"{registry_tls.host} speaks HTTPS but was contacted over plain HTTP" in err
    assert "hint: drop --plain-http" in err and "Login Succeeded" not in out
    assert not docker_config(env).exists()
    code, _, err = xp("xpkg", "pull", registry_tls.ref("a/b", "v1"), "--plain-http", env=env)
    assert code == 5 and err.count("speaks HTTPS") == 1, err
