"""A Python function directory is a package: relative imports, as in function-template-python's layout."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from tests.fn.conftest import arun, make_request, results
from xplane.fn.errors import FunctionLoadError
from xplane.fn.kinds.pyprocess import PythonProcessFunction
from xplane.fn.loader import load_function
from xplane.fn.proto import fnv1

#: function/fn.py as the template writes it, importing its helpers relatively.
TEMPLATE_FN = """\
from crossplane.function import response
from crossplane.function.proto.v1 import run_function_pb2_grpc as grpcv1

from .helpers import greeting
from . import words


class FunctionRunner(grpcv1.FunctionRunnerServiceServicer):
    async def RunFunction(self, req, context):
        rsp = response.to(req)
        response.normal(rsp, greeting(words.WORD))
        return rsp
"""


def template_function(root: Path, word: str, *, init: bool = True, extra_yaml: str = "") -> Path:
    """``root`` laid out like function-template-python: a ``function`` package with ``fn.py``."""
    pkg = root / "function"
    pkg.mkdir(parents=True, exist_ok=True)
    if init:
        (pkg / "__init__.py").write_text('"""The function package."""\n')
    (pkg / "fn.py").write_text(TEMPLATE_FN)
    (pkg / "helpers.py").write_text("def greeting(word):\n    return f'hello {word}'\n")
    (pkg / "words.py").write_text(f"WORD = {word!r}\n")
    (pkg / "main.py").write_text(
        "from .fn import FunctionRunner\nraise SystemExit('main.py is not the entrypoint')\n"
    )
    if extra_yaml:
        (root / "function.yaml").write_text(textwrap.dedent(extra_yaml))
    return root


def message(fn: object) -> str:
    rsp = arun(fn.run(make_request(), timeout=5))  # type: ignore[attr-defined]
    ((severity, text),) = results(rsp)
    assert severity == fnv1.SEVERITY_NORMAL, text
    return text


def test_template_layout_imports_relatively(tmp_path: Path) -> None:
    fn = load_function(template_function(tmp_path / "function-hello", "world"))
    assert fn.spec.entrypoint == "function/fn.py"
    assert message(fn) == "hello world"


def test_a_package_directory_without_init_py_imports_relatively_too(tmp_path: Path) -> None:
    fn = load_function(template_function(tmp_path / "fn", "namespace", init=False))
    assert message(fn) == "hello namespace"


def test_relative_imports_reach_up_to_the_function_directory(tmp_path: Path) -> None:
    root = template_function(tmp_path / "fn", "unused")
    (root / "shared.py").write_text("WORD = 'shared'\n")
    (root / "function" / "words.py").write_text("from ..shared import WORD\n")
    assert message(load_function(root)) == "hello shared"


def test_two_functions_with_the_same_module_names_keep_their_own(tmp_path: Path) -> None:
    a = load_function(template_function(tmp_path / "a", "alpha"))
    b = load_function(template_function(tmp_path / "b", "beta"))
    assert (message(a), message(b)) == ("hello alpha", "hello beta")


def test_reload_imports_the_changed_helper_and_the_old_version_keeps_its_own(tmp_path: Path) -> None:
    root = template_function(tmp_path / "fn", "one")
    first = load_function(root)
    words = root / "function" / "words.py"
    words.write_text("WORD = 'two, much longer'\n")
    stat = words.stat()  # a later mtime too: bytecode caches are keyed by size and mtime
    os.utime(words, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    second = load_function(root)
    assert message(second) == "hello two, much longer"
    assert message(first) == "hello one"


def test_a_relative_import_inside_a_call_works(tmp_path: Path) -> None:
    root = tmp_path / "lazy"
    (root / "function").mkdir(parents=True)
    (root / "function" / "helpers.py").write_text("WORD = 'late'\n")
    (root / "function" / "fn.py").write_text(
        "from crossplane.function import response\n\n"
        "def run_function(req):\n"
        "    from .helpers import WORD  # imported at call time, after loading\n"
        "    rsp = response.to(req)\n    response.normal(rsp, WORD)\n    return rsp\n"
    )
    assert message(load_function(root)) == "late"


def test_a_single_file_function_explains_that_it_is_not_a_package(tmp_path: Path) -> None:
    (tmp_path / "helpers.py").write_text("X = 1\n")
    (tmp_path / "lonely.py").write_text("from .helpers import X\n\ndef run_function(req):\n    return None\n")
    with pytest.raises(FunctionLoadError, match="no known parent package") as err:
        load_function(tmp_path / "lonely.py")
    assert err.value.hint is not None and "put it in a directory" in err.value.hint


def test_an_import_error_in_a_helper_names_it(tmp_path: Path) -> None:
    root = template_function(tmp_path / "fn", "x")
    (root / "function" / "helpers.py").write_text("import not_a_module_anywhere\n")
    with pytest.raises(FunctionLoadError, match="not_a_module_anywhere"):
        load_function(root)
    # The failed load left nothing behind: fixed, it loads.
    (root / "function" / "helpers.py").write_text("def greeting(word):\n    return 'fixed ' + word\n")
    assert message(load_function(root)) == "fixed x"


def test_a_process_isolated_function_imports_relatively(tmp_path: Path) -> None:
    root = template_function(tmp_path / "fn", "isolated", extra_yaml="kind: python\nisolation: process\n")
    fn = load_function(root)
    assert isinstance(fn, PythonProcessFunction)
    try:
        assert message(fn) == "hello isolated"
    finally:
        arun(fn.close())
