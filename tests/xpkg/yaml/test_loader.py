"""The Kubernetes YAML rules (shared/spec/yaml.md), one row per case: YAML text -> JSON value."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from xplane.xpkg.errors import YAMLError
from xplane.xpkg.yaml import (
    YAMLWarning,
    dump_documents,
    load_all,
    load_file_documents,
    loads,
    parse_stream,
    split_documents,
)

# Unquoted (and quoted) scalar values: `v: <text>` -> the JSON value sigs.k8s.io/yaml produces.
VALUES: list[tuple[str, object]] = [
    # YAML 1.1 booleans
    *[(w, True) for w in ("yes", "Yes", "YES", "on", "On", "ON", "y", "Y", "true", "True", "TRUE")],
    *[(w, False) for w in ("no", "No", "NO", "off", "Off", "OFF", "n", "N", "false", "False", "FALSE")],
    ("tRUE", "tRUE"),
    ("yES", "yES"),
    ("oN", "oN"),
    # quoting always keeps a string
    ('"yes"', "yes"),
    ("'on'", "on"),
    ('"012"', "012"),
    ("'1e3'", "1e3"),
    ('"null"', "null"),
    ('""', ""),
    # integers
    ("012", 10),
    ("007", 7),
    ("08", 8),
    ("09", 9),
    ("0o12", 10),
    ("0O12", 10),
    ("0x1F", 31),
    ("0X1f", 31),
    ("-0x1F", -31),
    ("+0x1F", 31),
    ("0b101", 5),
    ("-0b101", -5),
    ("1_000", 1000),
    ("1__0_0", 100),
    ("+12", 12),
    ("-12", -12),
    ("0", 0),
    ("-0", 0),
    ("00", 0),
    ("9223372036854775807", 9223372036854775807),
    ("-9223372036854775808", -9223372036854775808),
    ("12345678901234567890", 12345678901234567890),
    ("18446744073709551615", 18446744073709551615),
    ("0x", "0x"),
    ("0o", "0o"),
    ("0b2", "0b2"),
    ("0xG", "0xG"),
    ("_1", "_1"),
    # floats; integral floats print without a fraction
    (".5", 0.5),
    ("1.5e3", 1500),
    ("1e3", 1000),
    ("1E3", 1000),
    ("3.0", 3),
    ("0.0", 0),
    ("-0.0", 0),
    ("1.", 1),
    ("+1.5", 1.5),
    ("-.5", -0.5),
    ("1.25e-2", 0.0125),
    ("1e-7", 1e-7),
    ("1e20", 100000000000000000000),
    ("1e21", 1e21),
    ("18446744073709551616", 18446744073709552000),
    ("99999999999999999999999", 1e23),
    ("1_0.5", 10.5),
    (".5e3", 500),
    # '.'-first floats go to Go's ParseFloat with their underscores: allowed between digits only
    (".5_0", 0.5),
    (".1_2e3", 120),
    (".5e1_0", 5_000_000_000),
    ("-.5_0", -0.5),
    (".5_", ".5_"),
    (".5__0", ".5__0"),
    (".5_e3", ".5_e3"),
    (".5e_3", ".5e_3"),
    ("09.5", 9.5),
    ("1e400", "1e400"),
    ("-1e400", "-1e400"),
    (".5e400", ".5e400"),
    ("1e", "1e"),
    (".", "."),
    ("._5", "._5"),
    ("1.2.3", "1.2.3"),
    ("+", "+"),
    ("+.5", 0.5),
    ("inf", "inf"),
    ("nan", "nan"),
    ("-inf", "-inf"),
    (".INf", ".INf"),
    # nulls
    ("null", None),
    ("Null", None),
    ("NULL", None),
    ("~", None),
    ("", None),
    ("nULL", "nULL"),
    # timestamps and sexagesimals stay strings
    ("2024-01-01", "2024-01-01"),
    ("2001-12-14t21:59:43.10-05:00", "2001-12-14t21:59:43.10-05:00"),
    ("2001-12-14 21:59:43.10", "2001-12-14 21:59:43.10"),
    ("1:20", "1:20"),
    ("1:20:30", "1:20:30"),
    ("-1:20", "-1:20"),
    # strings that merely start like something else
    ("type", "type"),
    ("object", "object"),
    ("nullable", "nullable"),
    ("yesterday", "yesterday"),
    ("1.2.3-rc.1", "1.2.3-rc.1"),
    ("v1", "v1"),
    ("~foo", "~foo"),
    ("12abc", "12abc"),
    ("0.0.0.0/0", "0.0.0.0/0"),
    ("<<", "<<"),
    # explicit tags
    ("!!str 12", "12"),
    ("!!str yes", "yes"),
    ('!!int "12"', 12),
    ("!!float 1", 1),
    ("!!float 1.5", 1.5),
    ("!!bool yes", True),
    ("!!null ~", None),  # go-yaml v2 resolves the !!null tag
    ("!!null null", None),
    ("!!null ''", None),
    ("!!timestamp 2001-01-01", "2001-01-01"),
    ("!custom 12", "12"),
    ("!<!> 12", "12"),  # the verbatim spelling of the non-specific tag `!`
    ("!<!> true", "true"),
    ("!!merge foo", "foo"),
    ("!!binary aGVsbG8=", "hello"),
    # block scalars are strings
    ("|\n  012\n", "012\n"),
    (">-\n  yes\n", "yes"),
]


@pytest.mark.parametrize(("text", "want"), VALUES, ids=[repr(t) for t, _ in VALUES])
def test_scalar_values(text: str, want: object) -> None:
    got = loads(f"v: {text}\n")["v"]
    assert got == want and type(got) is type(want)
    assert json.loads(json.dumps(got)) == want  # JSON-able as is


# Mapping keys are resolved, then stringified like sigs.k8s.io/yaml (float keys as float32 %g).
KEYS: list[tuple[str, str]] = [
    ("y", "true"),
    ("n", "false"),
    ("on", "true"),
    ("off", "false"),
    ("yes", "true"),
    ("'y'", "y"),
    ("1", "1"),
    ("012", "10"),
    ("0x1F", "31"),
    ("-5", "-5"),
    ("1.5", "1.5"),
    ("1.0", "1"),
    ("1e3", "1000"),
    ("1e6", "1e+06"),
    ("123456.0", "123456"),
    ("0.1", "0.1"),
    ("0.0001", "0.0001"),
    ("0.00001", "1e-05"),
    ("3.14159265358979", "3.1415927"),
    (".inf", ".inf"),
    ("-.inf", "-.inf"),
    (".nan", ".nan"),
    ("2024-01-01", "2024-01-01"),
    ("1:20", "1:20"),
    ("'<<'", "<<"),
    ("!!str 1", "1"),
    ("!!merge foo", "foo"),  # go-yaml merges only a key whose text is `<<`
    ("!<!> 12", "12"),
    (".5_0", "0.5"),
    # float32's largest value: short candidates like 3.403e+38 round past it (no OverflowError)
    ("3.4028235e38", "3.4028235e+38"),
    ("-3.4028235e38", "-3.4028235e+38"),
    ("3.4028234e38", "3.4028235e+38"),
    ("3.4028236e38", ".inf"),  # rounds to float32 infinity: FormatFloat's "+Inf", then ".inf"
    ("1e39", ".inf"),
]


@pytest.mark.parametrize(("text", "want"), KEYS, ids=[repr(t) for t, _ in KEYS])
def test_keys_are_resolved_then_stringified(text: str, want: str) -> None:
    assert loads(f"{text}: x\n") == {want: "x"}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("v: .inf\n", "json: unsupported value: .inf"),
        ("v: -.Inf\n", "unsupported value"),
        ("v: .nan\n", "unsupported value"),
        ("v: [1, .NaN]\n", "unsupported value"),
        ("null: x\n", "Unsupported map key of type: <nil>"),
        ("~: x\n", "Unsupported map key"),
        ("18446744073709551615: x\n", "uint64"),
        ("? [a]\n: x\n", "cannot be a mapping key"),
        ("v: !!int abc\n", "cannot decode !!str `abc` as a !!int"),
        ("v: !!int 1.5\n", "cannot decode !!float `1.5` as a !!int"),
        ("v: !!bool 1\n", "as a !!bool"),
        ("v: !!binary '***'\n", "invalid base64"),
        ("a: <<: x\n", "invalid YAML"),
        ("v: {<<: 1}\n", "map merge requires map"),
        ("v: {<<: [1]}\n", "map merge requires map"),
        ("v: !!null foo\n", "cannot decode !!str `foo` as a !!null"),
        ("v: !!null 0\n", "cannot decode !!int `0` as a !!null"),
        ("v: [a:?]\n", "found unexpected ':'"),  # go-yaml ends `a:` at '?', then finds no ','
    ],
)
def test_values_crossplane_rejects(text: str, fragment: str) -> None:
    with pytest.raises(YAMLError) as e:
        loads(text, file="f.yaml")
    assert fragment in str(e.value)
    assert e.value.file == "f.yaml" and e.value.line == 1 and e.value.column


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("a: 1\nb: [1, 2\n", 3, 1),
        ("a: 1\n  b: 2\n", 2, 4),
        ("a:\n  - 1\n - 2\n", 3, 2),
        ("a: 'unterminated\n", 2, 1),
        ("a: *nope\n", 1, 4),
        ("a: 1\n---\nb: .inf\n", 3, 4),
        ("a: 1\n---\n---\nc: [\n", 5, 1),
        ("x: \t1\n\tb: 2\n", 2, 1),
    ],
)
def test_errors_carry_file_line_and_column(text: str, line: int, column: int) -> None:
    with pytest.raises(YAMLError) as e:
        load_all(text, file="pkg/crds.yaml")
    assert (e.value.file, e.value.line, e.value.column) == ("pkg/crds.yaml", line, column)
    assert str(e.value).startswith(f"pkg/crds.yaml:{line}:{column}: ")


NON_SPECIFIC = [
    ("a: ! 12", {"a": "12"}),
    ("a: !  true", {"a": "true"}),
    ("a: ! ~", {"a": "~"}),
    ("a: ! null", {"a": "null"}),
    ("a: ! 1.5", {"a": "1.5"}),
    ("a: !\n  0x1F", {"a": "0x1F"}),
    ("a: [! true, ! 1.5, true, 2]", {"a": ["true", "1.5", True, 2]}),
    ("a: &x ! 12\nb: *x", {"a": "12", "b": "12"}),
    ("a: ! &x 12", {"a": "12"}),
    ("\u00e9t\u00e9: &x ! 12", {"\u00e9t\u00e9": "12"}),  # marks count characters, not bytes
    ("! true: x", {"true": "x"}),
    ("! ~: x", {"~": "x"}),
    ("a: &x 12\nb: !!str 1\nc: true", {"a": 12, "b": "1", "c": True}),  # '!' elsewhere changes nothing
    ("a: ! abc", {"a": "abc"}),
    ("a: ! [1, true]", {"a": [1, True]}),  # on a collection the tag means nothing to its items
]


@pytest.mark.parametrize(("text", "want"), NON_SPECIFIC, ids=[repr(t) for t, _ in NON_SPECIFIC])
def test_the_non_specific_tag_keeps_the_text(text: str, want: object) -> None:
    # go-yaml v2 resolves only untagged plain scalars; libyaml (and PyYAML) treat `!` as untagged
    assert loads(text) == want


# Plain scalars in [] and {} as go-yaml v2 scans them (scannerc.go, yaml_parser_scan_plain_scalar,
# v2.4.0, ported from libyaml 0.1). Inside a plain scalar, ':' ends it only when a blank follows; in
# flow context ',', '?', '[', ']', '{' and '}' end it. A ':' is a value indicator only where a token
# starts. So in `[a:]` the ':' (followed by ']', not a blank) is part of the scalar, and ']' ends
# it: the string "a:", not a key `a` with a null value. `{a:}` holds one entry without ':' (a key
# whose value is null): the key "a:". `[http://x:]` is the string "http://x:" (both colons are
# followed by non-blanks). libyaml 0.2 refuses all three ("found unexpected ':'"), a check added
# after go-yaml was ported; xplane reads them as go-yaml does.
FLOW = [
    ("v: [a:]", {"v": ["a:"]}),
    ("v: {a:}", {"v": {"a:": None}}),
    ("v: [http://x:]", {"v": ["http://x:"]}),
    ("v: [a:, {b:}, [c:]]", {"v": ["a:", {"b:": None}, ["c:"]]}),
    ("v: {a:b:}", {"v": {"a:b:": None}}),
    ("- [a:]\n- [a:]\n", [["a:"], ["a:"]]),
    ("v: [a: b]", {"v": [{"a": "b"}]}),  # ':' then a blank: a single-pair mapping, in both
    ("v: {a:b: c}", {"v": {"a:b": "c"}}),
    ("v: [http://x]", {"v": ["http://x"]}),
    ("v: ['a:']", {"v": ["a:"]}),
    ("v: [1:]", {"v": ["1:"]}),
]


@pytest.mark.parametrize(("text", "want"), FLOW, ids=[repr(t) for t, _ in FLOW])
def test_plain_scalars_in_flow_collections_read_like_go_yaml(text: str, want: object) -> None:
    warnings: list[YAMLWarning] = []
    assert loads(text, warnings=warnings) == want
    assert warnings == []


def test_values_ending_in_a_colon_are_read_a_bounded_number_of_times() -> None:
    # each one costs libyaml one more parse of the document: a hostile file gets an error instead
    ok = "".join(f"k{i}: [a:]\n" for i in range(16))
    assert loads(ok)["k15"] == ["a:"]
    with pytest.raises(YAMLError, match="found unexpected ':'") as e:
        loads(ok + "k16: [a:]\n", file="f.yaml")
    assert (e.value.line, e.value.column) == (17, 8)
    assert "quote" in (e.value.hint or "")


# go-yaml v2 keeps one anchor table per document and overwrites an entry when an anchor is defined
# again (decode.go, parser.anchor); an alias takes the latest definition. PyYAML refuses this.
ANCHORS = [
    ("a: &x 1\nb: &x 2\nc: *x\n", {"a": 1, "b": 2, "c": 2}),
    ("a: &x [1]\nb: *x\nc: &x {k: v}\nd: *x\n", {"a": [1], "b": [1], "c": {"k": "v"}, "d": {"k": "v"}}),
    (
        "a: &x {p: 1}\nb: &x {q: 2}\nc: {<<: *x, r: 3}\n",
        {"a": {"p": 1}, "b": {"q": 2}, "c": {"q": 2, "r": 3}},
    ),
    ("a: &x 1\nb: &x 2\nc: [*x, a:]\n", {"a": 1, "b": 2, "c": [2, "a:"]}),
    ("- &x a\n- &x b\n- *x\n", ["a", "b", "b"]),
]


@pytest.mark.parametrize(("text", "want"), ANCHORS, ids=[repr(t) for t, _ in ANCHORS])
def test_anchors_may_be_defined_again(text: str, want: object) -> None:
    warnings: list[YAMLWarning] = []
    assert loads(text, warnings=warnings) == want
    assert warnings == []


def test_a_redefined_anchor_is_in_scope_for_its_own_children() -> None:
    # go-yaml registers an anchor before reading the node's children: `*x` here is `b` itself
    with pytest.raises(YAMLError, match="contains it") as e:
        loads("a: &x 1\nb: &x [*x]\n", file="f.yaml")
    assert e.value.line == 2


def test_a_document_with_a_redefined_anchor_still_warns_about_trailing_content() -> None:
    warnings: list[YAMLWarning] = []
    assert load_all("a: &x 1\nb: &x 2\nc: *x\n...\nd: 1\n", warnings=warnings) == [{"a": 1, "b": 2, "c": 2}]
    assert [(w.line, w.message) for w in warnings] == [
        (5, "content after '...' is ignored, as in Crossplane")
    ]


# YAML that libyaml 0.2 reads but go-yaml v2 refuses (so Crossplane refuses the file): xplane reads
# it and warns, with the position: (text, value, line, column, what the warning names).
REFUSED_UPSTREAM = [
    # go-yaml ends a plain scalar at '?' inside [] or {}, then finds a '?' key where ',' must be
    ("v: {u: http://x/?q=1}\n", {"v": {"u": "http://x/?q=1"}}, 1, 8, "'?'"),
    ("v: [a, b?c]\n", {"v": ["a", "b?c"]}, 1, 8, "'?'"),
    ("v: {k?: 1}\n", {"v": {"k?": 1}}, 1, 5, "'?'"),
    ("v: [a\n  ?b]\n", {"v": ["a ?b"]}, 1, 5, "'?'"),
    # `!!timestamp` goes through Go's time.Parse, which checks every field
    ("v: !!timestamp 2001-13-01\n", {"v": "2001-13-01"}, 1, 4, "month out of range"),
    ("v: !!timestamp 2001-02-29\n", {"v": "2001-02-29"}, 1, 4, "day out of range"),
    ("v: !!timestamp 2001-12-14T21:59:43\n", {"v": "2001-12-14T21:59:43"}, 1, 4, "no time zone"),
    ("v: !!timestamp 2001-12-14 21:59:43-05:00\n", {"v": "2001-12-14 21:59:43-05:00"}, 1, 4, "takes no zone"),
    ("v: !!timestamp 2001-12-14T24:00:00Z\n", {"v": "2001-12-14T24:00:00Z"}, 1, 4, "hour out of range"),
    # go-yaml reads only %YAML 1.1 (with '\r' line ends, Kubernetes' splitter keeps the directive)
    ("%YAML 1.2\r---\ra: 1\r", {"a": 1}, 1, 1, "%YAML 1.2"),
    ("\r%YAML 1.2\r---\r# c\ra: 1\r", {"a": 1}, 2, 1, "%YAML 1.2"),
]


@pytest.mark.parametrize(
    ("text", "want", "line", "column", "names"), REFUSED_UPSTREAM, ids=[repr(c[0]) for c in REFUSED_UPSTREAM]
)
def test_yaml_crossplane_refuses_is_read_with_a_warning(
    text: str, want: object, line: int, column: int, names: str
) -> None:
    warnings: list[YAMLWarning] = []
    assert loads(text, file="f.yaml", warnings=warnings) == want
    assert [(w.line, w.column) for w in warnings] == [(line, column)]
    assert names in warnings[0].message and "Crossplane will refuse this file" in warnings[0].message
    assert str(warnings[0]).startswith(f"f.yaml:{line}:{column}: warning: ")


@pytest.mark.parametrize(
    "text",
    [
        "v: !!timestamp 2001-12-14t21:59:43.10-05:00\n",
        "v: !!timestamp 2001-12-14 21:59:43.10\n",
        "v: !!timestamp 2001-12-14T21:59:43,5Z\n",
        "v: !!timestamp 2000-02-29\n",
        "%YAML 1.1\r---\ra: 1\r",
        "v: {u: 'http://x/?q=1'}\n",
        "v: http://x/?q=1\n",  # block context: '?' is an ordinary character
        "v: [a, ? b]\n",  # '?' where a token starts is the key indicator, in both
        "v: |\n  [a?]\n",
        "v: [50%]\n",
    ],
)
def test_yaml_crossplane_reads_gives_no_such_warning(text: str) -> None:
    warnings: list[YAMLWarning] = []
    loads(text, warnings=warnings)
    assert warnings == []


def test_warnings_about_refused_yaml_reach_the_document_stream() -> None:
    s = parse_stream(b"v: {u: http://x/?q=1}\nt: !!timestamp 2001-13-01\n", file="p.yaml")
    assert [(w.file, w.line, w.column) for w in s.warnings] == [("p.yaml", 1, 8), ("p.yaml", 2, 4)]


def test_bad_encoding_is_located() -> None:
    with pytest.raises(YAMLError) as e:
        load_all(b"a: 1\nb: \xff\xfe\n", file="x.yaml")
    assert e.value.line == 2 and "UTF-8" in (e.value.hint or "")


def test_anchors_aliases_and_merge_keys() -> None:
    doc = loads(
        """
base: &base {x: 1, p: 2}
list: &l [1, 2]
copy: *base
seq: *l
merged: {<<: *base, p: 3}
before: {p: 3, <<: *base}
multi: {<<: [{a: 1}, {a: 2, b: 2}], c: 3}
"""
    )
    assert doc["copy"] == {"x": 1, "p": 2} and doc["seq"] == [1, 2]
    assert doc["merged"] == {"x": 1, "p": 3}
    assert doc["before"] == {"p": 2, "x": 1}  # go-yaml v2: the merge applies in place, so it wins here
    assert doc["multi"] == {"a": 1, "b": 2, "c": 3}  # earlier mappings in a merge list win
    doc["copy"]["x"] = 9
    assert doc["base"]["x"] == 1  # every alias is a copy, as in go-yaml


def test_recursive_anchor_and_alias_bomb_are_errors() -> None:
    with pytest.raises(YAMLError, match="contains it"):
        loads("a: &a [*a]\n")
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    with pytest.raises(YAMLError, match="excessive aliasing"):
        loads(bomb)


def test_duplicate_keys_keep_the_last_and_warn() -> None:
    warnings: list[YAMLWarning] = []
    doc = loads("a: 1\nb: 2\na: 3\n1: x\n'1': z\n", file="d.yaml", warnings=warnings)
    assert doc == {"a": 3, "b": 2, "1": "z"}
    dups = [w for w in warnings if "duplicate" in w.message]
    assert [(w.key, w.line, w.column) for w in dups] == [("a", 3, 1), ("1", 5, 1)]
    assert str(dups[0]).startswith("d.yaml:3:1: warning: duplicate key 'a'")
    assert "line 1" in dups[0].message


def test_yaml11_surprises_are_warned() -> None:
    warnings: list[YAMLWarning] = []
    assert loads("y: on\nz: true\n", warnings=warnings) == {"true": True, "z": True}
    assert [(w.line, w.column) for w in warnings] == [(1, 1), (1, 4)]


def test_documents_split_like_kubernetes() -> None:
    text = "# only a comment\n---\n---\na: 1\n...\n---  # c\n\n---\nb: 2\n...\nignored: 1\n"
    warnings: list[YAMLWarning] = []
    assert load_all(text, warnings=warnings) == [{"a": 1}, {"b": 2}]
    assert any("after '...'" in w.message and w.line == 11 for w in warnings)
    assert load_all("") == [] and load_all("\n\n# x\n") == []
    assert load_all("# c\n...\n---\n...\n# d\n") == []  # a comment-only file in upstream's stream
    assert load_all("~\n") == [None]  # not empty: upstream would reject it later


@pytest.mark.parametrize("sep", ["--- {a: 1}", "---a", "--- !!map", "--- |"])
def test_invalid_document_separator(sep: str) -> None:
    with pytest.raises(YAMLError, match="invalid Yaml document separator") as e:
        load_all(f"a: 1\n{sep}\nb: 2\n", file="s.yaml")
    assert e.value.line == 2


def test_split_documents_offsets_and_lines() -> None:
    data = b"---\na: 1\n---\n\nb: 2\n---\n"
    chunks = list(split_documents(data))
    assert [(data[c.start : c.end], c.line) for c in chunks] == [(b"---\na: 1\n", 0), (b"\nb: 2\n", 3)]


def test_load_file_documents_locates_each_document(tmp_path: Path) -> None:
    f = tmp_path / "crds.yaml"
    f.write_text("# head\n---\napiVersion: v1\nkind: A\n---\n\n  # pad\nkind: B\n")
    docs, warnings = load_file_documents(f, name="crds.yaml")
    assert [(d.doc["kind"], d.file, d.line) for d in docs] == [("A", "crds.yaml", 3), ("B", "crds.yaml", 8)]
    assert warnings == []


def test_dump_round_trips_every_scalar_rule() -> None:
    words = [t for t, _ in VALUES if not t.startswith(("!", "|", ">", '"', "'"))]
    docs = [
        {"strings": words, **{w: w for w in words if w}},
        {"n": [1, 2.5, None, True, 1e21, 12345678901234567890]},
    ]
    out = dump_documents(docs)
    assert out.startswith(b"---\n") and out.endswith(b"---\n")
    assert load_all(out) == docs


def test_plain_output_is_json_like() -> None:
    doc = loads("a: [1, {b: c}]\nd: 2024-01-01\n")
    assert json.loads(json.dumps(doc)) == doc
    assert isinstance(doc["a"], list) and type(doc["a"][1]) is dict


def _nested(form: str, depth: int) -> tuple[str, object]:
    """A document nesting ``depth`` collections in one of YAML's ways, and its value."""
    value: object = "x"
    for _ in range(depth):
        value = {"a": value} if form in ("flow-map", "block-map") else [value]
    if form == "flow-seq":
        return "[" * depth + "x" + "]" * depth + "\n", value
    if form == "flow-map":
        return "{a: " * depth + "x" + "}" * depth + "\n", value
    if form == "compact-seq":
        return "- " * depth + "x\n", value
    assert form == "block-map"
    return "".join(" " * i + "a:" + ("\n" if i < depth - 1 else " x\n") for i in range(depth)), value


FORMS = ["flow-seq", "flow-map", "compact-seq", "block-map"]
#: The deepest nesting accepted, as docs/xpkg.md documents it.
CAP = 512
#: Where the first collection past the cap starts in ``_nested(form, depth > CAP)``: (line, column).
PAST_CAP = {
    "flow-seq": (1, CAP + 1),
    "flow-map": (1, 4 * CAP + 1),
    "compact-seq": (1, 2 * CAP + 1),
    "block-map": (CAP + 1, CAP + 1),
}
TOO_DEEP = f"document is nested too deeply (more than {CAP} levels)"


def _first_line(e: YAMLError) -> str:
    return str(e).splitlines()[0]


@pytest.mark.parametrize("form", FORMS)
def test_deep_but_sane_nesting_parses(form: str) -> None:
    text, value = _nested(form, 100)
    assert loads(text) == value


@pytest.mark.parametrize("form", FORMS)
def test_nesting_at_the_cap_parses(form: str) -> None:
    # the builder recurses in Python (two to four frames a level): the cap must not meet the
    # interpreter's recursion limit first
    text, value = _nested(form, CAP)
    assert loads(text) == value


@pytest.mark.parametrize("form", FORMS)
def test_one_level_past_the_cap_is_xplanes_located_error(form: str) -> None:
    text, _ = _nested(form, CAP + 1)
    with pytest.raises(YAMLError) as e:
        loads(text, file="d.yaml")
    line, column = PAST_CAP[form]
    assert _first_line(e.value) == f"d.yaml:{line}:{column}: {TOO_DEEP}"
    assert "runaway brackets or indentation" in (e.value.hint or "")


def test_the_cap_holds_on_a_deep_call_stack() -> None:
    text, value = _nested("block-map", CAP)
    limit = sys.getrecursionlimit()
    frames, f = 1, sys._getframe()
    while f.f_back is not None:
        frames, f = frames + 1, f.f_back
    got: list[object] = []

    def descend(n: int) -> None:
        if n:
            descend(n - 1)
        else:
            got.append(loads(text))

    descend(limit - frames - 40)  # the caller leaves the loader 40 frames of its own
    assert got == [value]
    assert sys.getrecursionlimit() == limit


def test_aliases_that_expand_past_the_cap_are_an_error() -> None:
    # each level of the text is well within the cap; the value, with `*a` expanded, is not
    half = CAP // 2 + 1
    text = f"a: &a {'[' * half}x{']' * half}\nb: {'[' * half}*a{']' * half}\n"
    with pytest.raises(YAMLError) as e:
        loads(text, file="d.yaml")
    assert _first_line(e.value).endswith(TOO_DEEP)


@pytest.mark.parametrize("depth", [1_500, 100_000])
@pytest.mark.parametrize("form", ["flow-seq", "flow-map", "compact-seq"])
def test_very_deep_nesting_is_a_located_error_not_a_crash(form: str, depth: int) -> None:
    # libyaml's composer recurses in C: 100,000 levels used to overflow the stack (a segfault).
    # libyaml 0.2.6 (PyYAML >= 6.0.3) refuses 1,000 levels itself, reading ahead of its events;
    # xplane's error, wording and position must be the same whichever libyaml is installed.
    text, _ = _nested(form, depth)
    with pytest.raises(YAMLError) as e:
        load_all("a: 1\n---\n" + text, file="deep.yaml")
    _, column = PAST_CAP[form]
    assert _first_line(e.value) == f"deep.yaml:3:{column}: {TOO_DEEP}"
    assert e.value.hint and "maximum nesting depth" not in str(e.value)


def test_unclosed_deep_flow_is_an_error_not_a_crash() -> None:
    with pytest.raises(YAMLError) as e:
        loads("[" * 200_000, file="u.yaml")
    assert _first_line(e.value) == f"u.yaml:1:{CAP + 1}: {TOO_DEEP}"


def test_a_deep_indentation_staircase_is_an_error() -> None:
    text, _ = _nested("block-map", 1_200)  # 720 KB of indentation
    with pytest.raises(YAMLError) as e:
        loads(text, file="s.yaml")
    assert _first_line(e.value) == f"s.yaml:{CAP + 1}:{CAP + 1}: {TOO_DEEP}"


@pytest.mark.parametrize(
    "text",
    [
        "description: " + "word " * 4000 + "\nitems: [1, 2]\n",  # one long line: scanned, fine
        "items:\n" + "- {a: [1]}\n" * 3000,  # thousands of flow collections side by side
    ],
)
def test_documents_that_need_the_depth_scan_still_parse(text: str) -> None:
    assert loads(text) == yaml.load(text, Loader=yaml.CSafeLoader)


def test_the_depth_scan_leaves_trailing_documents_to_the_warning() -> None:
    warnings: list[YAMLWarning] = []
    text = "a: " + "b" * 7000 + "\n...\n]bad\n"  # long line: scanned; the second document is broken
    assert load_all(text, warnings=warnings) == [{"a": "b" * 7000}]
    assert [w.message for w in warnings] == ["content after '...' is ignored, as in Crossplane"]
