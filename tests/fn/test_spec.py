"""function.yaml validation (a table: document -> error field and message) and parsing helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from xplane.fn.errors import FunctionLoadError
from xplane.fn.loader import load_spec
from xplane.fn.spec import infer_kind, parse_duration, parse_quantity

P = Path("function.yaml")


@pytest.mark.parametrize(
    ("value", "expect"),
    [
        (1024, 1024),
        ("128Mi", 128 << 20),
        ("1G", 10**9),
        ("64MB", 64 * 10**6),
        ("1.5Ki", 1536),
        ("2Gi", 2 << 30),
    ],
)
def test_quantities(value: object, expect: int) -> None:
    assert parse_quantity(value, path=P, field="limits.memory") == expect


@pytest.mark.parametrize(
    ("value", "expect"), [(10, 10.0), (2.5, 2.5), ("500ms", 0.5), ("30s", 30.0), ("2m", 120.0)]
)
def test_durations(value: object, expect: float) -> None:
    assert parse_duration(value, path=P, field="timeout") == expect


@pytest.mark.parametrize("value", ["lots", "-1", 0, True, "12 parsecs"])
def test_bad_quantities_and_durations(value: object) -> None:
    with pytest.raises(FunctionLoadError, match=r"function.yaml \(field 'f'\)"):
        parse_quantity(value, path=P, field="f")
    with pytest.raises(FunctionLoadError, match=r"function.yaml \(field 'f'\)"):
        parse_duration(value, path=P, field="f")


BAD = [
    ("kind: lambda\n", "kind", "unknown kind 'lambda'"),
    ("kind: exec\nentrypoint: fn\nprotocol: xml\n", "protocol", "protocol 'xml' is not valid for kind exec"),
    ("kind: exec\nentrypoint: fn\ntimeout: soon\n", "timeout", "expected a duration"),
    ("kind: exec\nentrypoint: fn\nlimits: {memory: lots}\n", "limits.memory", "expected a size"),
    ("kind: exec\nentrypoint: fn\nlimits: {cpu: 1}\n", "limits.cpu", "unknown limit 'cpu'"),
    ("kind: wasm\nentrypoint: fn.wasm\nlimits: {fuel: -5}\n", "limits.fuel", "positive integer"),
    ("kind: exec\nentrypoint: fn\nenv: {1BAD: x}\n", "env", "invalid variable name"),
    ("kind: exec\nentrypoint: fn\nenv: {A: {b: c}}\n", "env.A", "must be a string"),
    ("kind: exec\nentrypoint: fn\nsandbox: docker\n", "sandbox", "sandbox must be one of auto, bwrap, none"),
    ("kind: exec\nentrypoint: ../../bin/sh\n", "entrypoint", "must be a path inside the function directory"),
    ("kind: exec\nentrypoint: fn\nargs: oops\n", "args", "expected a list of strings"),
    ("kind: python\nentrypoint: fn.py\nremote: {address: x:1}\n", "remote", "only valid with kind remote"),
    ("kind: python\nentrypoint: fn.py\nisolation: container\n", "isolation", "isolation must be one of"),
    ("kind: exec\nentrypoint: fn\nisolation: process\n", "isolation", "only valid with kind python (kind is"),
    ("kind: python\nentrypoint: fn.py\nsandbox: bwrap\n", "sandbox", "no effect on a python function in the"),
    ("kind: python\nentrypoint: fn.py\nisolation: inprocess\nnetwork: true\n", "network", "no effect on a"),
    ("name: Not Valid!\nkind: exec\nentrypoint: fn\n", "name", "invalid function name"),
    ("kind: exec\nentrypoint: fn\nentrypoitn: typo\n", "entrypoitn", "unknown field(s) entrypoitn"),
    (
        "kind: remote\nremote: {address: a:1, tls: {verify: false}}\n",
        "remote.tls.verify",
        "unknown field(s) verify",
    ),
    ("kind: exec\n", "entrypoint", "missing entrypoint"),
    ("[1, 2]\n", None, "expected a mapping, got list"),
    ("kind: [exec\n", None, "invalid YAML"),
]


@pytest.mark.parametrize(("doc", "field", "message"), BAD, ids=[b[2][:30] for b in BAD])
def test_invalid_function_yaml(tmp_path: Path, doc: str, field: str | None, message: str) -> None:
    (tmp_path / "function.yaml").write_text(doc)
    with pytest.raises(FunctionLoadError) as e:
        load_spec(tmp_path)
    assert e.value.field == field
    assert e.value.path == tmp_path / "function.yaml"
    assert message in str(e.value)
    assert str(tmp_path / "function.yaml") in str(e.value)


def test_full_function_yaml(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "function.yaml").write_text(
        "name: function-legacy\nkind: exec\nentrypoint: bin/fn\nprotocol: functionio\ntimeout: 5s\n"
        "limits: {memory: 64Mi, outputBytes: 1Mi}\nenv: [{name: A, value: 1}, {name: B, value: true}]\n"
        "sandbox: none\nargs: [--x, 1]\nnetwork: true\nversion: 1.2\n"
    )
    spec = load_spec(tmp_path)
    assert (spec.name, spec.kind, spec.entrypoint, spec.protocol, spec.timeout) == (
        "function-legacy", "exec", "bin/fn", "functionio", 5.0,
    )  # fmt: skip
    assert spec.limits == {"memory": 64 << 20, "output_bytes": 1 << 20}
    assert spec.env == {"A": "1", "B": "true"}
    assert spec.options == {"sandbox": "none", "args": ["--x", "1"], "network": True, "version": "1.2"}
    assert spec.entrypoint_path() == tmp_path / "bin" / "fn"


def _touch(p: Path, mode: int = 0o644) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("")
    os.chmod(p, mode)
    return p


@pytest.mark.parametrize(
    ("files", "expect"),
    [
        (["__init__.py"], ("python", "__init__.py")),
        (["fn.py", "helpers.py"], ("python", "fn.py")),
        (["function/fn.py", "function/main.py"], ("python", "function/fn.py")),
        (["fn.wasm", "README.md"], ("wasm", "fn.wasm")),
        (["module.wat"], ("wasm", "module.wat")),
        (["+server"], ("exec", "server")),
        (["+main", "+helper.sh"], ("exec", "main")),
    ],
)
def test_conventions(tmp_path: Path, files: list[str], expect: tuple[str, str]) -> None:
    for f in files:
        _touch(tmp_path / f.lstrip("+"), 0o755 if f.startswith("+") else 0o644)
    assert infer_kind(tmp_path) == expect


def test_ambiguous_directory_needs_function_yaml(tmp_path: Path) -> None:
    _touch(tmp_path / "a", 0o755)
    _touch(tmp_path / "b", 0o755)
    with pytest.raises(FunctionLoadError, match=r"cannot tell which function .*found a, b") as e:
        infer_kind(tmp_path)
    assert "function.yaml" in str(e.value)


def test_function_yaml_without_kind_uses_convention(tmp_path: Path) -> None:
    _touch(tmp_path / "fn.py")
    (tmp_path / "function.yaml").write_text("name: x\ntimeout: 3\n")
    spec = load_spec(tmp_path)
    assert (spec.kind, spec.entrypoint, spec.timeout) == ("python", "fn.py", 3.0)


def test_isolation_is_an_option_of_python_functions(tmp_path: Path) -> None:
    _touch(tmp_path / "fn.py")
    (tmp_path / "function.yaml").write_text("isolation: process\n")
    spec = load_spec(tmp_path)
    assert (spec.kind, spec.options) == ("python", {"isolation": "process"})
    assert "memory" not in spec.limits  # no default memory limit unless one is written down
    (tmp_path / "function.yaml").write_text("isolation: inprocess\nlimits: {memory: 300Mi}\n")
    spec = load_spec(tmp_path)
    assert (spec.options, spec.limits) == ({"isolation": "inprocess"}, {"memory": 300 << 20})
