"""The package.yaml writer: exact layout, quoting, and round trips through Kubernetes' rules and PyYAML."""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xplane.xpkg.yaml import EmitError, YAMLWarning, dump_documents, load_all
from xplane.xpkg.yaml.emitter import double_quoted, float_text, inline_str
from xplane.xpkg.yaml.scalars import json_number

# --- strategies -------------------------------------------------------------------------------------

#: Strings that some YAML reader resolves to something else, or that break naive emitters.
NASTY = [
    *[
        "y",
        "Y",
        "yes",
        "Yes",
        "YES",
        "n",
        "N",
        "no",
        "NO",
        "on",
        "On",
        "ON",
        "off",
        "OFF",
        "true",
        "True",
        "TRUE",
        "false",
        "False",
        "FALSE",
    ],
    *[
        "null",
        "Null",
        "NULL",
        "~",
        ".",
        "..",
        "...",
        ".5",
        ".e5",
        "1.",
        "+1",
        "-1",
        "+.5",
        "012",
        "007",
        "08",
        "0o12",
        "0O7",
        "0x1F",
        "-0x1F",
        "0b101",
        "1_000",
    ],
    *[
        "1e3",
        "1E3",
        "1e400",
        "1.5e3",
        "-1e-3",
        ".inf",
        ".Inf",
        "-.inf",
        "+.inf",
        ".nan",
        ".NaN",
        "1:20",
        "1:20:30",
        "190:20:30",
        "-1:20",
    ],
    *[
        "2024-01-01",
        "2001-12-14t21:59:43.10-05:00",
        "2002-12-14",
        "12345678901234567890",
        "99999999999999999999",
    ],
    *[
        "<<",
        "=",
        "-",
        "--",
        "---",
        "?",
        "?x",
        ":",
        ":x",
        "x:",
        "x::",
        "a:b",
        "http://x/y",
        "#",
        "a#b",
        "&",
        "&a",
        "*",
        "*a",
        "!",
        "!a",
        "!!str",
        "|",
        "|-",
        ">",
        ">-",
        "'",
        '"',
        "%",
        "%a",
    ],
    *[
        "@",
        "`",
        ",",
        "[",
        "]",
        "{",
        "}",
        "[a]",
        "{a:",
        "1}",
        "a,b",
        "-a",
        "-",
        "--x",
        "0",
        "00",
        "-0",
        "0.0",
        "-0.0",
        "+0",
        "1",
        "+12",
        "1,000",
        "1__0",
        "_1",
        "0x",
        "0b",
        "0o",
        "0b2",
    ],
    "",
    " ",
    "  lead",
    "trail ",
    "a: b",
    "a #b",
    "a\tb",
    "\t",
    "a\n",
    "a\nb",
    "a\n\nb\n",
    "\n",
    "\na",
    "a\n\n",
    " a\nb",
    "a \nb",
    "a\n b\n  c",
    "a\n\tb",
    "a\r\nb",
    "\x85",
    "a\x85b",
    "\u2028",
    "a\u2029b",
    "\ufeff",
    "a\ufeffb",
    "\x7f",
    "\x00",
    "\x1b[0m",
    "\ufffe",
    "é",
    "naïve café",
    "😀",
    "a 😀 b",
    "\u00a0",
    "x" * 1200,
    "- a\n- b",
    "---\na: 1",
    "...\n",
    "'quoted'",
    "it's",
    '"dq"',
    "\\",
    "a\\nb",
]

strings = st.one_of(st.text(), st.sampled_from(NASTY), st.text(alphabet=st.sampled_from(" \n\t:#-'\"ab\\")))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    strings,
)
trees = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(strings, inner, max_size=5)),
    max_leaves=25,
)


def canon(x: Any) -> Any:
    """What Kubernetes reads back for ``x``: floats become what encoding/json prints (``1.0`` -> 1)."""
    if type(x) is float:
        return json_number(x)
    if type(x) is dict:
        return {k: canon(v) for k, v in x.items()}
    if type(x) is list:
        return [canon(v) for v in x]
    return x


def pyyaml_load_all(data: bytes) -> list[Any]:
    """PyYAML's view of a dumped stream (the trailing ``---`` opens an empty document: dropped)."""
    docs = list(yaml.load_all(data, Loader=yaml.CSafeLoader))
    assert docs[-1] is None
    return docs[:-1]


# --- properties --------------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(trees, min_size=1, max_size=3))
def test_kubernetes_rules_read_back_every_tree(docs: list[Any]) -> None:
    out = dump_documents(docs)
    warnings: list[YAMLWarning] = []
    assert load_all(out, warnings=warnings) == canon(docs)
    assert warnings == []  # no plain y/on/off and no duplicate keys were written


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(trees, min_size=1, max_size=3))
def test_pyyaml_reads_the_same_values(docs: list[Any]) -> None:
    # PyYAML resolves YAML 1.1 differently (timestamps, 1:20, 0o12, '='); nothing ambiguous is left plain
    assert pyyaml_load_all(dump_documents(docs)) == docs


@settings(max_examples=200, deadline=None)
@given(st.lists(trees, min_size=1, max_size=3))
def test_dump_is_stable_after_a_round_trip(docs: list[Any]) -> None:
    once = dump_documents(load_all(dump_documents(docs)))  # floats are now what Kubernetes reads
    assert dump_documents(load_all(once)) == once


@settings(max_examples=300, deadline=None)
@given(strings)
def test_every_string_reads_back_as_key_value_item_and_document(s: str) -> None:
    docs = [{s: s}, [s, [s], {s: [s]}], s]
    out = dump_documents(docs)
    assert load_all(out) == docs
    assert pyyaml_load_all(out) == docs


plain_words = st.text(alphabet=st.sampled_from("abcXZ"), min_size=1, max_size=8)  # no y/n/on/off
plain_trees = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), plain_words),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(plain_words, inner, max_size=4)),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(plain_trees)
def test_layout_matches_pyyaml_for_plain_content(doc: Any) -> None:
    # same block layout as PyYAML's emitter (and yaml.v2): indentless sequences, "- key:", {} and []
    expected = "---\n" + yaml.safe_dump(doc, sort_keys=True, default_flow_style=False, width=10**9)
    expected = expected.replace("\n...\n", "\n")  # PyYAML ends a bare top-level scalar with '...'
    assert dump_documents([doc]).decode() == expected + "---\n"


# --- exact output --------------------------------------------------------------------------------------

LAYOUT = [
    (
        {"b": [{"x": 1, "a": {"c": []}}, [1, [2, {}]], "s"], "a": {}},
        "a: {}\nb:\n- a:\n    c: []\n  x: 1\n- - 1\n  - - 2\n    - {}\n- s\n",
    ),
    ({"k": {"n": None, "t": True, "f": 2.5, "i": -3}}, "k:\n  f: 2.5\n  i: -3\n  'n': null\n  t: true\n"),
    ([[[]]], "- - []\n"),
    ({}, "{}\n"),
    ([], "[]\n"),
    (None, "null\n"),
    ("on", "'on'\n"),
]


@pytest.mark.parametrize(("doc", "text"), LAYOUT)
def test_layout(doc: Any, text: str) -> None:
    assert dump_documents([doc]).decode() == "---\n" + text + "---\n"


SCALARS = [
    ("plain text", "plain text"),
    ("http://x/y?a=b", "http://x/y?a=b"),
    ("a,b[c]{d}", "a,b[c]{d}"),
    ("tRUE", "tRUE"),  # not a YAML 1.1 boolean: plain
    ("y", "'y'"),
    ("n", "'n'"),
    ("on", "'on'"),
    ("null", "'null'"),
    ("~", "'~'"),
    ("012", "'012'"),
    ("0o12", "'0o12'"),
    ("0x1F", "'0x1F'"),
    ("1_000", "'1_000'"),
    ("1e3", "'1e3'"),
    (".inf", "'.inf'"),
    ("1e400", "'1e400'"),  # a string to Kubernetes and PyYAML, infinity to YAML 1.2 readers: quoted
    ("1__0", "'1__0'"),
    ("1:20", "'1:20'"),  # PyYAML: sexagesimal 80
    ("2024-01-01", "'2024-01-01'"),  # PyYAML: a date
    ("<<", "'<<'"),
    ("=", "'='"),
    ("...", "'...'"),
    ("", "''"),
    (" x", "' x'"),
    ("x ", "'x '"),
    ("a: b", "'a: b'"),
    ("a #b", "'a #b'"),
    ("x:", "'x:'"),
    ("-x", "'-x'"),
    ("it's", "it's"),
    ("'x'", "'''x'''"),
    ("a\tb", '"a\\tb"'),
    ("\x85", '"\\u0085"'),
    ("\u2028", '"\\u2028"'),
    ("\ufeff", '"\\ufeff"'),
    ("\x7f", '"\\u007f"'),
    ("é 😀", "é 😀"),
]


@pytest.mark.parametrize(("value", "text"), SCALARS)
def test_scalar_quoting(value: str, text: str) -> None:
    assert inline_str(value) == text
    assert dump_documents([{"k": value}]).decode() == f"---\nk: {text}\n---\n"
    assert load_all(dump_documents([{value: value}])) == [{value: value}]


LITERALS = [
    ("a\nb", "k: |-\n  a\n  b\n"),
    ("a\nb\n", "k: |\n  a\n  b\n"),
    ("a\n\n  b", "k: |-\n  a\n\n    b\n"),
    ("a\n\tb", "k: |-\n  a\n  \tb\n"),
    # not exact as a literal block: double quotes
    ("a \nb", 'k: "a \\nb"\n'),
    (" a\nb", 'k: " a\\nb"\n'),
    ("a\n\n", 'k: "a\\n\\n"\n'),
    ("a\r\nb", 'k: "a\\r\\nb"\n'),
]


@pytest.mark.parametrize(("value", "text"), LITERALS)
def test_multiline_text(value: str, text: str) -> None:
    out = dump_documents([{"k": value}])
    assert out.decode() == "---\n" + text + "---\n"
    assert load_all(out) == [{"k": value}] == pyyaml_load_all(out)


def test_literal_block_indentation_follows_nesting() -> None:
    doc = {"a": [{"b": "x\ny"}, "p\nq", ["r\ns"]]}
    out = dump_documents([doc])
    assert out.decode() == "---\na:\n- b: |-\n    x\n    y\n- |-\n  p\n  q\n- - |-\n    r\n    s\n---\n"
    assert load_all(out) == [doc] == pyyaml_load_all(out)


def test_multiline_keys_and_documents_are_double_quoted() -> None:
    out = dump_documents([{"a\nb": 1}, "x\ny"])
    assert out.decode() == '---\n"a\\nb": 1\n---\n"x\\ny"\n---\n'


@pytest.mark.parametrize(
    ("value", "text"),
    [(2.5, "2.5"), (1.0, "1.0"), (-0.0, "-0.0"), (1e21, "1.0e+21"), (1.5e-07, "1.5e-07"), (1e-05, "1.0e-05")],
)
def test_floats_read_back_as_kubernetes_and_pyyaml_floats(value: float, text: str) -> None:
    assert float_text(value) == text
    out = dump_documents([{"f": value}])
    assert load_all(out) == [{"f": json_number(value)}]
    got = pyyaml_load_all(out)[0]["f"]
    assert type(got) is float and got == value


def test_integers_up_to_uint64_and_those_a_float64_keeps() -> None:
    docs = [{"i": [-(2**63), 2**63 - 1, 2**64 - 1, 10**20, json_number(1.2345678901234568e22)]}]
    assert load_all(dump_documents(docs)) == docs


def test_long_keys_use_the_explicit_form() -> None:
    long = "k" * 1500
    doc = {long: {"a": [1, long]}, "b" + long: [1, {"c": 2}], "c" + long: "v", "d" + long: "x\ny"}
    out = dump_documents([doc, [{long: []}]])
    assert f"? {long}\n:\n  a:\n  - 1\n" in out.decode()
    assert load_all(out) == [doc, [{long: []}]] == pyyaml_load_all(out)


def test_double_quoted_is_json_with_yaml_escapes() -> None:
    assert double_quoted('a"\\\n\x00') == '"a\\"\\\\\\n\\u0000"'
    assert double_quoted("\x80\u2029") == '"\\u0080\\u2029"'


# --- errors ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        ({"spec": {"x": [1, math.nan]}}, r"document 1 at spec\.x\[1\]: cannot write nan"),
        ({"a": math.inf}, "document 1 at a: cannot write inf"),
        ({"a": [2**70 + 1]}, r"at a\[0\]: cannot write integer 1180591620717411303425"),
        ({"a": {1: "x"}}, "at a: cannot write mapping key 1"),
        ({"a": {1: "x", "b": 2}}, "at a: cannot write mapping keys"),
        ({"a": {1, 2}}, "cannot write a set value"),
        ({"a": "\ud800"}, "lone surrogate"),
    ],
)
def test_values_kubernetes_cannot_carry_are_errors(doc: Any, match: str) -> None:
    with pytest.raises(EmitError, match=match):
        dump_documents([doc])


def test_error_names_the_document() -> None:
    with pytest.raises(EmitError, match="document 2 at "):
        dump_documents([{"ok": 1}, {"bad": math.nan}])


def test_json_type_subclasses_are_written_as_their_base_values() -> None:
    class Name(str):
        pass

    out = dump_documents([{"a": Name("on"), "b": [Name("x")]}])
    assert load_all(out) == [{"a": "on", "b": ["x"]}]


def test_other_mappings_and_sequences_are_written_as_dicts_and_lists() -> None:
    doc = OrderedDict([("b", (1, OrderedDict(z=()))), ("a", [("x",)])])
    out = dump_documents([doc, (1, 2)])
    assert out.decode() == "---\na:\n- - x\nb:\n- 1\n- z: []\n---\n- 1\n- 2\n---\n"


def test_huge_integer_that_a_float64_keeps_is_written() -> None:
    n = int(2.0**80)
    assert load_all(dump_documents([n])) == [n]
