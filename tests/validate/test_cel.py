"""CEL x-kubernetes-validations: messages, messageExpression, fieldPath, reason, libraries, cost."""

from __future__ import annotations

from typing import Any

import pytest

from xplane.validate import CelValidator


def cel(rules: list[dict[str, Any]], value: Any, **schema: Any) -> list[str]:
    s = {"type": "object", "x-kubernetes-validations": rules, **schema}
    return [str(e) for e in CelValidator(s).validate(value, "spec")]


def test_message_default_and_message_expression() -> None:
    assert cel([{"rule": "self.a > 1"}], {"a": 1}) == [
        'spec: Invalid value: "object": failed rule: self.a > 1'
    ]
    assert cel([{"rule": "self.a > 1", "message": "a too small"}], {"a": 1}) == [
        'spec: Invalid value: "object": a too small'
    ]
    assert cel(
        [{"rule": "self.a > 1", "message": "m", "messageExpression": "'a is ' + string(self.a)"}], {"a": 1}
    ) == ['spec: Invalid value: "object": a is 1']
    # a messageExpression that yields nothing usable falls back to message
    assert cel([{"rule": "self.a > 1", "message": "m", "messageExpression": "''"}], {"a": 1}) == [
        'spec: Invalid value: "object": m'
    ]
    assert cel([{"rule": "self.a > 1"}], {"a": 2}) == []


def test_field_path_and_reason() -> None:
    rule = {"rule": "self.a > 1", "message": "bad a", "fieldPath": ".a"}
    assert cel([rule], {"a": 1}) == ['spec.a: Invalid value: "object": bad a']
    assert cel([{**rule, "reason": "FieldValueForbidden"}], {"a": 1}) == ["spec.a: Forbidden: bad a"]
    assert cel([{**rule, "reason": "FieldValueRequired"}], {"a": 1}) == ["spec.a: Required value: bad a"]
    assert cel([{**rule, "fieldPath": "['a.b']"}], {"a": 1}) == ['spec.a.b: Invalid value: "object": bad a']


def test_rules_on_nested_nodes_report_their_path_and_type() -> None:
    s = {
        "properties": {
            "items": {
                "type": "array",
                "items": {"type": "string", "x-kubernetes-validations": [{"rule": "self.startsWith('x')"}]},
            }
        }
    }
    assert cel([], {"items": ["xa", "b"]}, **s) == [
        "spec.items[1]: Invalid value: \"string\": failed rule: self.startsWith('x')"
    ]


def test_transition_rules_do_not_run_on_create() -> None:
    assert cel([{"rule": "self.a == oldSelf.a"}], {"a": 1}) == []


def test_evaluation_errors_and_compile_errors() -> None:
    assert cel([{"rule": "self.b == 1"}], {"a": 1}) == [
        'spec: Invalid value: "object": failed rule: self.b == 1: no such key: b'
    ]
    out = cel([{"rule": "self.a +"}], {"a": 1})
    assert len(out) == 1 and out[0].startswith('spec: Invalid value: "object": compilation failed:')


@pytest.mark.parametrize(
    "rule",
    [
        "self.s.lowerAscii() == 'abc' && self.s.upperAscii() == 'ABC' && 'a,b'.split(',').size() == 2",
        "'%s-%d'.format(['x', 1]) == 'x-1' && ['a', 'b'].join('-') == 'a-b' && self.s.indexOf('b') == 1",
        "[1, 2, 3].isSorted() && [1, 2].sum() == 3 && [3, 1].min() == 1 && [3, 1].max() == 3",
        "sets.contains([1, 2], [2]) && sets.equivalent([1, 2], [2, 1]) && sets.intersects([1], [1, 3])",
        "'abc123'.find('[0-9]+') == '123' && 'a1b2'.findAll('[0-9]') == ['1', '2']",
        "quantity('1Gi').isGreaterThan(quantity('1000Mi')) && quantity('500m').asApproximateFloat() == 0.5"
        " && isQuantity('1k') && !isQuantity('x') && quantity('2').add(quantity('3')).asInteger() == 5",
        "isURL('https://a.example:8443/p?q=1') && url('https://a.example:8443/p').getHostname() == 'a.example'"
        " && url('https://a.example:8443/p').getPort() == '8443' && url('https://a.example/p').getScheme() == 'https'",
        "isIP('10.0.0.1') && ip('::1').family() == 6 && ip('127.0.0.1').isLoopback()"
        " && cidr('10.0.0.0/8').containsIP('10.1.2.3') && isCIDR('10.0.0.0/8') && cidr('10.0.0.0/8').prefixLength() == 8",
        "isSemver('1.2.3') && semver('1.2.3').isLessThan(semver('1.10.0')) && semver('2.0.0').major() == 2",
        "self.?missing.orValue('d') == 'd' && !self.?missing.hasValue()",
        "self.l.all(x, x > 0) && self.l.exists(x, x == 2) && self.l.map(x, x * 2) == [2, 4] && self.l.filter(x, x > 1) == [2]",
    ],
)
def test_kubernetes_libraries(rule: str) -> None:
    assert cel([{"rule": rule}], {"s": "abc", "l": [1, 2]}) == []


def test_cost_limit_stops_quadratic_rules_on_large_lists() -> None:
    rule = "self.l.all(x, self.l.all(y, x + y >= 0))"
    assert cel([{"rule": rule}], {"l": list(range(10))}) == []
    assert cel([{"rule": rule}], {"l": list(range(2000))}) == [
        f'spec: Invalid value: "object": call cost exceeds limit for rule: {rule}'
    ]


def ok(rule: str, value: Any = None) -> bool:
    """Whether ``rule`` holds (no error of any kind) for ``self = value``."""
    return cel([{"rule": rule}], {"s": "abc", "l": [1, 2]} if value is None else value) == []


@pytest.mark.parametrize(
    ("rule", "holds"),
    [
        ("[1, 2, 3].sum() == 6", True),
        ("[1, 2, 3].sum() == 7", False),
        ("[0.5, 0.25].sum() == 0.75 && [3, 1, 2].min() == 1 && [3, 1, 2].max() == 3", True),
        ("[3, 1].min() == 3", False),
        ("['a', 'c'].max() == 'a'", False),
        ("[1, 2, 2, 3].isSorted() && ['a', 'b'].isSorted()", True),
        ("[2, 1].isSorted()", False),
        ("self.l.indexOf(2) == 1 && [1, 2, 1].lastIndexOf(1) == 2 && [1].indexOf(9) == -1", True),
        ("['x', 'y'].indexOf('y') == 0", False),
        (
            "[[1], [2]].indexOf([2]) == 1 && [true, 1].indexOf(1) == 1 && [{'a': 1}].lastIndexOf({'a': 1}) == 0",
            True,
        ),
        ("[1, 2, 1].lastIndexOf(1) == 0", False),
        # the strings extension's indexOf keeps working through the same rewrite
        ("self.s.indexOf('c') == 2 && 'abcabc'.indexOf('b', 2) == 4 && 'abcabc'.lastIndexOf('b') == 4", True),
        (
            "'abcabc'.lastIndexOf('b', 3) == 1 && 'abc'.lastIndexOf('') == 3 && 'a.indexOf(x)'.size() == 12",
            True,
        ),
        ("self.s.indexOf('c') == 1", False),
        ("[1, 2, 3, 4].slice(1, 3) == [2, 3] && [1].slice(1, 1) == []", True),
        ("[1, 2].slice(1, 2) == [1]", False),
        ("[[1], [2, [3]]].flatten() == [1, 2, [3]] && [[1], [2, [3]]].flatten(2) == [1, 2, 3]", True),
    ],
)
def test_list_library(rule: str, holds: bool) -> None:
    assert ok(rule) is holds


@pytest.mark.parametrize(
    ("rule", "error"),
    [
        ("[].min() == 0", "min called on empty list"),
        ("[1, 2].slice(1, 3) == []", "cannot slice(1, 3), list is length 2"),
        (
            "[1, 2].slice(2, 1) == []",
            "cannot slice(2, 1), start index must be less than or equal to end index",
        ),
        ("'abc'.indexOf('c', 5) == 2", "index out of range: 5"),
    ],
)
def test_list_library_errors(rule: str, error: str) -> None:
    assert cel([{"rule": rule}], {}) == [f'spec: Invalid value: "object": failed rule: {rule}: {error}']


@pytest.mark.parametrize(
    ("rule", "holds"),
    [
        ("quantity('1Gi') == quantity('1024Mi')", True),
        ("quantity('1Gi') == quantity('1G')", False),
        ("quantity('500m') == quantity('0.5') && quantity('1k') == quantity('1000')", True),
        ("quantity('1Gi') != quantity('1073741824') ", False),
        (
            "quantity('1').add(quantity('500m')) == quantity('1500m') && quantity('2Ki').sub(48) == quantity('2000')",
            True,
        ),
        ("quantity(self.a).compareTo(quantity(self.b)) == 0 && quantity(self.a).isInteger()", True),
        ("quantity(self.a).isGreaterThan(quantity(self.b))", False),
        ("semver('1.2.3+build.1') == semver('1.2.3') && ip('::1') == ip('0:0::1')", True),
        ("semver('1.2.3') == semver('1.2.4')", False),
    ],
)
def test_quantity_equality_compares_amounts(rule: str, holds: bool) -> None:
    assert ok(rule, {"a": "2Gi", "b": "2048Mi"}) is holds


@pytest.mark.parametrize(
    ("rule", "holds"),
    [
        ("!format.dns1123Label().validate(self.name).hasValue()", True),
        ("!format.dns1123Label().validate(self.bad).hasValue()", False),
        (
            "format.named('dns1123Subdomain').value().validate(self.name + '.example.com') == optional.none()",
            True,
        ),
        ("format.named('nope').hasValue()", False),
        ("!format.named('labelValue').hasValue()", False),
        ("format.qualifiedName().validate('example.com/My.Name').orValue([]).size() == 0", True),
        ("format.qualifiedName().validate('a/b/c').hasValue()", True),
        ("!format.dns1123LabelPrefix().validate('my-prefix-').hasValue()", True),
        ("!format.dns1123Label().validate('my-prefix-').hasValue()", False),
        ("!format.dns1035Label().validate('1abc').hasValue()", False),
        ("!format.uuid().validate('123e4567-e89b-12d3-a456-426614174000').hasValue()", True),
        (
            "!format.date().validate('2021-13-01').hasValue() || !format.byte().validate('!!').hasValue()",
            False,
        ),
        (
            "!format.uri().validate('https://example.com/p').hasValue() && format.uri().validate('p').hasValue()",
            True,
        ),
        ("!format.datetime().validate('2021-01-01T00:00:00Z').hasValue()", True),
    ],
)
def test_format_library(rule: str, holds: bool) -> None:
    assert ok(rule, {"name": "my-name", "bad": "My_Name"}) is holds


def test_format_validate_messages_are_kubernetes() -> None:
    rule = {
        "rule": "!format.dns1123Label().validate(self.n).hasValue()",
        "messageExpression": "format.dns1123Label().validate(self.n).value().join('; ')",
    }
    assert cel([rule], {"n": "a.b"}) == ['spec: Invalid value: "object": must not contain dots']
    assert cel([rule], {"n": "A" * 64}) == [
        'spec: Invalid value: "object": must be no more than 63 characters; a lowercase RFC 1123 label must '
        "consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric "
        "character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
    ]
    # a rule text that only mentions the names in a string literal is left alone
    assert ok("'x.validate(1)'.size() > 0 && \"format.named('a')\".size() > 0", {})
