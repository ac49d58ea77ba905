"""``xp describe`` and ``xp create secret``: kubectl's layouts, and a password that never shows."""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from xplane.cli.main import cli
from xplane.cli.output import run_cli
from xplane.store import Store

PASSWORD = "hunter2-Pa55w0rd"
CONFIG = """\
apiVersion: pkg.crossplane.io/v1
kind: Configuration
metadata:
  name: platform-ref-aws
  labels: {team: platform, tier: core}
  annotations: {example.org/owner: ops}
spec:
  package: registry.example.com/upbound/platform-ref-aws:v0.6.0
  packagePullSecrets: [{name: example-secret}]
"""

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XPLANE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def xp(capsys: pytest.CaptureFixture[str], home: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
        capsys.readouterr()
        code = run_cli(cli, list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


IMAGE_CONFIG = """
---
apiVersion: pkg.crossplane.io/v1beta1
kind: ImageConfig
metadata: {name: private-mirror}
spec:
  matchImages: [{prefix: registry.example.com/org}]
  rewriteImage: {prefix: mirror.example.com/org}
"""


def test_describe_a_configuration_with_conditions_and_events(xp: Run, home: Path) -> None:
    code, _, _ = xp("apply", "-f", "-", stdin=CONFIG)
    assert code == 0
    with Store.open(home=home) as s:
        obj = s.get("configuration", "platform-ref-aws")
        obj["status"] = {
            "conditions": [
                {
                    "type": "Installed",
                    "status": "True",
                    "reason": "ActivePackageRevision",
                    "lastTransitionTime": "2026-08-07T12:00:00Z",
                },
                {
                    "type": "Healthy",
                    "status": "False",
                    "reason": "UnhealthyPackageRevision",
                    "message": 'Package revision health is "Unknown"',
                    "lastTransitionTime": "2026-08-07T12:00:01Z",
                },
            ],
            "currentRevision": "platform-ref-aws-1a2b3c",
        }
        obj = s.update_status(obj)
        src = "packages/configuration.pkg.crossplane.io"
        s.record_event(obj, "Warning", "LintPackage", "incompatible Crossplane version", source=src)
        s.record_event(obj, "Warning", "LintPackage", "incompatible Crossplane version", source=src)
        s.record_event(
            obj, "Normal", "InstallPackageRevision", "Successfully installed package revision", source=src
        )
    code, out, _ = xp("describe", "configuration", "platform-ref-aws")
    assert code == 0
    lines = out.splitlines()
    assert lines[:7] == [
        "Name:         platform-ref-aws",
        "Namespace:    ",
        "Labels:       team=platform",
        "              tier=core",
        "Annotations:  example.org/owner: ops",
        "API Version:  pkg.crossplane.io/v1",
        "Kind:         Configuration",
    ]
    assert "Metadata:" in lines and any(line.startswith("  Creation Timestamp:  ") for line in lines)
    assert "  Package Pull Policy:            IfNotPresent" in lines
    assert "    Name:                      example-secret" in lines  # list items: kubectl's generic layout
    i = lines.index("  Conditions:")
    assert lines[i + 1].split() == ["Type", "Status", "Last", "Transition", "Time", "Reason", "Message"]
    assert lines[i + 3].split() == ["Installed", "True", "2026-08-07T12:00:00Z", "ActivePackageRevision"]
    assert lines[i + 4].split()[:4] == [
        "Healthy",
        "False",
        "2026-08-07T12:00:01Z",
        "UnhealthyPackageRevision",
    ]
    assert lines[i + 4].endswith('Package revision health is "Unknown"')
    assert "  Current Revision:  platform-ref-aws-1a2b3c" in lines
    e = lines.index("Events:")
    assert lines[e + 1].split() == ["Type", "Reason", "Age", "From", "Message"]
    assert lines[e + 2].split() == ["----", "------", "----", "----", "-------"]
    rows = {line.split()[1]: line for line in lines[e + 3 :]}
    # the package manager ran after the apply; registry.example.com cannot be reached from here
    assert rows["UnpackPackage"].split()[0] == "Warning"
    assert rows["LintPackage"].split()[0] == "Warning"
    assert "(x2 over " in rows["LintPackage"] and rows["LintPackage"].endswith(
        "incompatible Crossplane version"
    )
    assert rows["InstallPackageRevision"].split()[0] == "Normal" and src in rows["InstallPackageRevision"]
    assert list(rows).index("LintPackage") < list(rows).index("InstallPackageRevision")  # oldest first


def test_describe_without_events_missing_and_several(xp: Run) -> None:
    xp("apply", "-f", "-", stdin=CONFIG + IMAGE_CONFIG)
    assert xp("describe", "imageconfig", "private-mirror")[1].endswith("Events:  <none>\n")
    code, _, err = xp("describe", "configuration", "nope")
    assert code == 3 and 'configurations.pkg.crossplane.io "nope" not found' in err
    code, out, _ = xp("describe", "pkg")
    assert code == 0 and out.startswith("Name:         platform-ref-aws\n")
    assert xp("describe", "pkg", "nope")[0] == 3


def test_create_docker_registry_secret_as_kubectl_does(
    xp: Run, home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    code, out, err = xp(
        "-vv",
        "create",
        "secret",
        "docker-registry",
        "example-secret",
        "--docker-server",
        "registry.example.com",
        "--docker-username",
        "robot",
        "--docker-email",
        "robot@example.com",
        "--docker-password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert (code, out) == (0, "secret/example-secret created\n")
    with Store.open(home=home) as s:
        secret = s.get("secret", "example-secret", "crossplane-system")
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    config = base64.b64decode(secret["data"][".dockerconfigjson"])
    auth = base64.b64encode(f"robot:{PASSWORD}".encode()).decode()
    assert config.decode() == (
        '{"auths":{"registry.example.com":{"username":"robot","password":"'
        + PASSWORD
        + f'","email":"robot@example.com","auth":"{auth}"}}}}}}'
    )
    for command in (
        ("describe", "secret", "example-secret"),
        ("get", "secrets"),
        ("get", "secret", "example-secret", "-o", "name"),
    ):
        code, out, err = xp("-vv", *command)
        assert code == 0
        for text in (out, err, caplog.text):
            assert PASSWORD not in text and auth not in text
            assert secret["data"][".dockerconfigjson"] not in text
    out = xp("describe", "secret", "example-secret")[1]
    assert "\nType:  kubernetes.io/dockerconfigjson\n\nData\n====\n" in out
    assert out.endswith(f".dockerconfigjson:  {len(config)} bytes\n")
    # -o yaml shows data base64, as Kubernetes does
    shown = yaml.safe_load(xp("get", "secret", "example-secret", "-o", "yaml")[1])
    assert shown["data"] == secret["data"]
    code, _, err = xp(
        "create",
        "secret",
        "docker-registry",
        "example-secret",
        "--docker-username",
        "u",
        "--docker-password",
        "p",
    )
    assert code == 1 and 'secrets "example-secret" already exists' in err


def test_create_secret_dry_run_and_generic(xp: Run, home: Path) -> None:
    code, out, _ = xp(
        "create",
        "secret",
        "docker-registry",
        "s",
        "--docker-server",
        "r.example.com",
        "--docker-username",
        "u",
        "--docker-password",
        "p",
        "--dry-run=client",
        "-o",
        "yaml",
    )
    assert code == 0
    assert out.splitlines()[:2] == ["apiVersion: v1", "data:"]
    assert (
        "  creationTimestamp: null\n  name: s\n  namespace: crossplane-system\ntype: kubernetes.io/dockerconfigjson\n"
        in out
    )
    assert not (home / "state.db").exists()
    code, out, _ = xp(
        "create", "secret", "generic", "g", "-n", "team-a", "--from-literal", "token=abc", "-o", "json"
    )
    assert code == 0 and json.loads(out)["data"] == {"token": base64.b64encode(b"abc").decode()}
    assert xp("get", "secret", "g", "-n", "team-a", "-o", "name")[1] == "secret/g\n"
    assert xp("create", "secret", "docker-registry", "x", "--docker-username", "u")[0] == 2
    assert xp("create", "secret", "generic", "x", "--from-literal", "novalue")[0] == 2
