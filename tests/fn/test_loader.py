"""discover(): a functions directory holding every kind, broken functions beside working ones."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.fn.conftest import FIXTURES, arun, make_request, results
from xplane.fn.base import Function
from xplane.fn.errors import FunctionLoadError
from xplane.fn.loader import discover, load_function
from xplane.fn.proto import fnv1

WAT = """(module
  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "{\\"results\\":[{\\"severity\\":\\"SEVERITY_NORMAL\\",\\"message\\":\\"wasm\\"}]}")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 64)) (i32.store (i32.const 4) (i32.const 61))
    (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
"""


@pytest.fixture
def functions_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XPLANE_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "functions"
    root.mkdir()
    shutil.copytree(FIXTURES / "python" / "sdk_fn", root / "function-sdk")
    shutil.copy(FIXTURES / "python" / "broken_import.py", root / "broken.py")
    shutil.copy(FIXTURES / "python" / "sync_fn.py", root / "sync.py")
    exe = root / "shell"
    exe.mkdir()
    (exe / "run").write_text(
        f"#!{sys.executable}\nimport sys, json\nsys.stdin.read()\n"
        "print(json.dumps({'results': [{'severity': 'SEVERITY_NORMAL', 'message': 'exec'}]}))\n"
    )
    (exe / "run").chmod(0o755)
    (root / "wasm").mkdir()
    (root / "wasm" / "fn.wat").write_text(WAT)
    (root / "elsewhere.yaml").write_text(
        "kind: remote\nremote: {address: 127.0.0.1:1, tls: {insecure: true}}\n"
    )
    (root / "typo").mkdir()
    (root / "typo" / "fn.py").write_text("def run_function(req):\n    return None\n")
    (root / "typo" / "function.yaml").write_text("kind: python\ntimeout: forever\n")
    (root / "README.md").write_text("# my functions\n")
    (root / "..data").mkdir()  # Secret volume internals are ignored
    (root / "__pycache__").mkdir()
    return root


def test_discover_every_kind_and_isolate_failures(functions_dir: Path) -> None:
    found = discover(functions_dir)
    assert sorted(found) == ["broken", "elsewhere", "function-sdk", "shell", "sync", "typo", "wasm"]
    kinds = {n: f.spec.kind for n, f in found.items() if isinstance(f, Function)}
    assert kinds == {"elsewhere": "remote", "function-sdk": "python", "shell": "exec", "sync": "python",
                     "wasm": "wasm"}  # fmt: skip
    assert isinstance(found["broken"], FunctionLoadError) and "ModuleNotFoundError" in str(found["broken"])
    assert isinstance(found["typo"], FunctionLoadError) and found["typo"].field == "timeout"
    expected = {"function-sdk": "composed bucket for my-xr (data)", "shell": "exec", "wasm": "wasm"}
    for name, message in expected.items():
        fn = found[name]
        assert isinstance(fn, Function)
        assert results(arun(fn.run(make_request(), timeout=5))) == [(fnv1.SEVERITY_NORMAL, message)]
    unreachable = found["elsewhere"]
    assert isinstance(unreachable, Function)
    rsp = arun(unreachable.run(make_request(), timeout=2))
    assert rsp.results[0].severity == fnv1.SEVERITY_FATAL
    for fn in found.values():
        if isinstance(fn, Function):
            assert fn.version
            arun(fn.close())


def test_rediscover_after_change(functions_dir: Path) -> None:
    first = discover(functions_dir)["function-sdk"]
    (functions_dir / "function-sdk" / "helpers.py").write_text("def bucket_name(n):\n    return 'renamed'\n")
    second = discover(functions_dir)["function-sdk"]
    assert isinstance(first, Function) and isinstance(second, Function)
    assert first.version != second.version
    from xplane.fn.proto import struct_to_dict

    rsp = arun(second.run(make_request(), timeout=5))
    assert struct_to_dict(rsp.desired.resources["bucket"].resource)["metadata"]["name"] == "renamed"


def test_duplicate_names_are_reported(tmp_path: Path) -> None:
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        shutil.copy(FIXTURES / "python" / "sync_fn.py", tmp_path / d / "fn.py")
        (tmp_path / d / "function.yaml").write_text("name: same\n")
    found = discover(tmp_path)
    assert isinstance(found["same"], Function) and found["same"].spec.path == tmp_path / "a"
    (err,) = [v for k, v in found.items() if k != "same"]
    assert isinstance(err, FunctionLoadError) and "already used by" in str(err)


def test_function_yaml_at_the_root_is_one_function(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "python" / "sync_fn.py", tmp_path / "fn.py")
    (tmp_path / "function.yaml").write_text("name: solo\nkind: python\nentrypoint: fn.py\n")
    assert list(discover(tmp_path)) == ["solo"]


def test_missing_things(tmp_path: Path) -> None:
    with pytest.raises(FunctionLoadError, match="does not exist"):
        discover(tmp_path / "nope")
    with pytest.raises(FunctionLoadError, match="does not exist"):
        load_function(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FunctionLoadError, match="cannot tell which function"):
        load_function(tmp_path / "empty")


def test_top_level_yaml_function(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "python" / "sync_fn.py", tmp_path / "impl.py")
    (tmp_path / "named.yaml").write_text("kind: python\nentrypoint: impl.py\nversion: 7\n")
    (tmp_path / "bare.yaml").write_text("kind: python\n")
    fn = load_function(tmp_path / "named.yaml")
    assert (fn.name, fn.spec.path, fn.version) == ("named", tmp_path / "named.yaml", "7")
    assert results(arun(fn.run(make_request(), timeout=5)))[0][1].startswith("sync in")
    with pytest.raises(FunctionLoadError, match="needs an entrypoint"):
        load_function(tmp_path / "bare.yaml")


def _named_dir(tmp_path: Path) -> Path:
    """A working ``hello`` beside entries that would fail, or leave a trace, if they were loaded."""
    root = tmp_path / "named"
    (root / "hello").mkdir(parents=True)
    (root / "hello" / "fn.py").write_text(
        "from crossplane.function import response\n\n"
        "def run_function(req):\n    rsp = response.to(req)\n    response.normal(rsp, 'hi')\n    return rsp\n"
    )
    trace = tmp_path / "imported"
    (root / "other.py").write_text(
        f"open({str(trace)!r}, 'w').close()\nraise ImportError('other is broken')\n"
    )
    (root / "request.yaml").write_text("meta: {tag: t}\n")  # not a function.yaml at all
    (root / "notes").mkdir()
    return root


def test_load_named_loads_only_that_function(tmp_path: Path) -> None:
    from xplane.fn.loader import load_named

    fn = load_named(_named_dir(tmp_path), "hello")
    assert results(arun(fn.run(make_request(), timeout=5))) == [(fnv1.SEVERITY_NORMAL, "hi")]
    assert not (tmp_path / "imported").exists()  # other.py was never imported


def test_load_named_says_which_function_failed_and_why(tmp_path: Path) -> None:
    from xplane.fn.loader import load_named

    root = _named_dir(tmp_path)
    with pytest.raises(FunctionLoadError) as err:
        load_named(root, "other")
    assert str(err.value).startswith("function 'other' failed to load: ")
    assert "ImportError: other is broken" in str(err.value)
    assert err.value.path == root / "other.py"
    with pytest.raises(
        FunctionLoadError, match=r"function 'request' failed to load: .*unknown field\(s\) meta"
    ):
        load_named(root, "request")


def test_load_named_lists_the_functions_there_are(tmp_path: Path) -> None:
    from xplane.fn.errors import FunctionNotFoundError
    from xplane.fn.loader import load_named

    with pytest.raises(FunctionNotFoundError, match="functions there: hello, other") as err:
        load_named(_named_dir(tmp_path), "nope")
    assert err.value.exit_code == 3
    assert err.value.hint is not None and "not functions (--debug says why): notes, request" in err.value.hint
