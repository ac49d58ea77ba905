"""deploy/: the Dockerfile, Kubernetes manifests and compose file agree with the runner's real interface."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from xplane.cli.xfn import serve
from xplane.fn.settings import FLAG_ENV, Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
FLAGS = {opt for p in serve.params for opt in p.opts}
ENV_VARS = {var for _, _, var in FLAG_ENV if var}
DEFAULTS = Settings()


def _check_args(args: list[str]) -> None:
    assert args[0] == "serve"
    for arg in args[1:]:
        if arg.startswith("-"):
            assert arg.split("=", 1)[0] in FLAGS, f"{arg} is not an xfn serve flag"
    Settings.load(
        {
            _setting(f): v
            for f, v in zip(args[1:], [*args[2:], None], strict=True)
            if f.startswith("--") and v is not None and not v.startswith("-")
        },
        {},
    )


def _setting(flag: str) -> str:
    return next(s for s, f, _ in FLAG_ENV if f == flag)


def _check_env(env: dict[str, str]) -> Settings:
    for var in env:
        assert var in ENV_VARS, f"{var} is not a variable xfn reads"
    return Settings.load({}, env)


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_dockerfile() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.\d+-slim$", text, re.M)
    user = re.search(r"^USER (\S+)", text, re.M)
    assert user and not user.group(1).startswith(("root", "0"))
    assert set(re.search(r"^EXPOSE (.+)$", text, re.M).group(1).split()) == {  # type: ignore[union-attr]
        str(DEFAULTS.grpc_addr.port),
        str(DEFAULTS.listen_addr.port),
    }
    health = re.search(r"^HEALTHCHECK .*?CMD (.+)$", text, re.M | re.S)
    assert health and f"127.0.0.1:{DEFAULTS.listen_addr.port}/health" in health.group(1)
    assert json.loads(re.search(r"^ENTRYPOINT (.+)$", text, re.M).group(1)) == ["xfn"]  # type: ignore[union-attr]
    _check_args(json.loads(re.search(r"^CMD (.+)$", text, re.M).group(1)))  # type: ignore[union-attr]
    env = dict(re.findall(r"(FUNCTIONS_DIR|LISTEN_ADDR)=(\S+)", text))
    assert _check_env(env).functions_dir == DEFAULTS.functions_dir


def test_kubernetes_deployment() -> None:
    (dep,) = _docs(DEPLOY / "kubernetes" / "deployment.yaml")
    assert dep["kind"] == "Deployment"
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    _check_args(c["args"])
    settings = _check_env({e["name"]: e["value"] for e in c["env"]})
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"grpc": settings.grpc_addr.port, "http": settings.listen_addr.port}
    assert c["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert Path(mounts["tls-server-certs"]) == settings.tls_certs_dir
    assert Path(mounts["functions"]) == settings.functions_dir
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["tls-server-certs"]["secret"]["secretName"] == "xfn-tls-server"
    assert settings.load_mode == "secret" and "secret" in volumes["functions"]
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_kubernetes_service_and_secret() -> None:
    svcs = {d["metadata"]["name"]: d for d in _docs(DEPLOY / "kubernetes" / "service.yaml")}
    grpc_port = svcs["function-hello"]["spec"]["ports"][0]
    assert (grpc_port["port"], grpc_port["targetPort"]) == (9443, "grpc")
    assert svcs["function-hello"]["spec"]["clusterIP"] == "None"
    (secret,) = _docs(DEPLOY / "kubernetes" / "tls-secret.yaml")
    assert secret["metadata"]["name"] == "xfn-tls-server"
    assert set(secret["stringData"]) == {"tls.crt", "tls.key", "ca.crt"}


def test_docker_compose() -> None:
    doc = yaml.safe_load((DEPLOY / "docker-compose.yaml").read_text())
    svc = doc["services"]["xfn"]
    _check_args(svc["command"])
    assert "--insecure" in svc["command"]
    settings = _check_env(svc["environment"])
    assert {p.split(":")[1] for p in svc["ports"]} == {
        str(settings.grpc_addr.port),
        str(settings.listen_addr.port),
    }
    assert any(v.split(":")[1] == str(settings.functions_dir) for v in svc["volumes"])
    assert svc["build"]["dockerfile"] == "deploy/Dockerfile"


@pytest.mark.parametrize("bad", [["serve", "--no-such-flag"], ["run"]])
def test_the_checker_can_fail(bad: list[str]) -> None:
    with pytest.raises((AssertionError, StopIteration)):
        _check_args(bad)
