"""Label selectors: kubectl's syntax, Kubernetes' matching, clear errors. Tables: add a row to add a case."""

from __future__ import annotations

import pytest

from xplane.store import InvalidSelectorError, Selector

LABELS = {"app": "web", "tier": "front", "n": "5", "empty": ""}

# selector, selects LABELS?
MATCHES = [
    ("", True),
    ("app=web", True),
    ("app==web", True),
    ("app=db", False),
    ("app!=db", True),
    ("app!=web", False),
    ("missing!=x", True),  # != also selects objects without the label
    ("app in (web,db)", True),
    ("app in (db)", False),
    ("missing in (x)", False),
    ("app notin (db)", True),
    ("app notin (web)", False),
    ("missing notin (x)", True),
    ("app", True),
    ("missing", False),
    ("!missing", True),
    ("!app", False),
    ("app=web,tier=front", True),
    ("app=web,tier=back", False),
    ("  app = web ,  tier in ( front , back )  ", True),
    ("n>4", True),
    ("n>5", False),
    ("n<6", True),
    ("app>1", False),  # not an integer: never matches
    ("empty=", True),
    ("empty in (x,)", True),
    ("pkg.crossplane.io/package=web", False),
    ("example.com/a-b_c.d", False),
]


@pytest.mark.parametrize(("text", "selected"), MATCHES)
def test_matching(text: str, selected: bool) -> None:
    assert Selector.parse(text).matches(LABELS) is selected


# selector, a phrase the error must contain
ERRORS = [
    ("app in (", "found '', expected: identifier, ',' or ')'"),
    ("app in web", "found 'web', expected: '('"),
    ("app=web x", "found 'x', expected: ',' or end of selector"),
    ("=web", "found '=', expected: identifier"),
    ("app=web,", "found '', expected: identifier"),
    ("app>x", "found 'x', expected: an integer"),
    ("app=(x)", "found '(', expected: identifier"),
    ("bad key=x", "found 'key', expected: in, notin, =, ==, !=, gt, lt"),
    ("-app=x", 'Invalid value: "-app": name part must consist of alphanumeric characters'),
    ("app=" + "x" * 64, "must be no more than 63 characters"),
    ("Example.com/app=x", 'Invalid value: "Example.com/app": prefix part a lowercase RFC 1123 subdomain'),
]


@pytest.mark.parametrize(("text", "phrase"), ERRORS)
def test_errors_say_where(text: str, phrase: str) -> None:
    with pytest.raises(InvalidSelectorError) as e:
        Selector.parse(text)
    assert phrase in str(e.value)
    assert str(e.value).startswith("unable to parse requirement: ")
    assert e.value.exit_code == 2


def test_round_trip_and_equalities() -> None:
    s = Selector.parse("a=b, c in (x,y),!d,e,f notin (z),g>1")
    assert str(s) == "a=b,c in (x,y),!d,e,f notin (z),g>1"
    assert Selector.parse(str(s)) == s
    assert s.equalities() == [("a", ("b",)), ("c", ("x", "y"))]
    assert Selector.from_labels({"b": "2", "a": "1"}) == Selector.parse("a=1,b=2")
    assert Selector.parse("").empty and Selector().matches(None)
