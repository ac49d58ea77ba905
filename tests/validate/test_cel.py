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
