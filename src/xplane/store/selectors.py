"""Label selectors with kubectl's syntax and Kubernetes' matching rules (apimachinery ``labels.Parse``).

Requirements are separated by commas and all must hold::

    a=b  a==b  a!=b  a in (x,y)  a notin (x)  a  !a  a>1  a<5

``!=`` and ``notin`` also match objects without the label; ``in``, ``=``, ``>`` and ``<`` need it.
Keys must be qualified names and values valid label values, as Kubernetes checks them; an error
says where the text stops making sense.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from xplane.store.errors import InvalidSelectorError
from xplane.store.names import label_value, qualified_name

_TOKEN = re.compile(r"\s*(?:(!=|==|[=!(),<>])|([^\s=!(),<>]+))")
_OPERATORS = "in, notin, =, ==, !=, gt, lt"


@dataclass(frozen=True)
class Requirement:
    """One requirement: ``key``, an operator (``in``, ``notin``, ``=``, ``!=``, ``exists``, ``!``,
    ``gt``, ``lt``; ``==`` reads as ``=``) and its values (one for ``=``/``!=``/``gt``/``lt``)."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy this requirement."""
        op = self.operator
        if op == "exists":
            return self.key in labels
        if op == "!":
            return self.key not in labels
        value = labels.get(self.key)
        if op in ("in", "="):
            return value is not None and value in self.values
        if op in ("notin", "!="):
            return value is None or value not in self.values
        if value is None:
            return False
        try:
            have = int(value)
        except ValueError:
            return False
        want = int(self.values[0])
        return have > want if op == "gt" else have < want

    def __str__(self) -> str:
        if self.operator == "exists":
            return self.key
        if self.operator == "!":
            return f"!{self.key}"
        if self.operator in ("in", "notin"):
            return f"{self.key} {self.operator} ({','.join(self.values)})"
        symbol = {"gt": ">", "lt": "<"}.get(self.operator, self.operator)
        return f"{self.key}{symbol}{self.values[0]}"


@dataclass(frozen=True)
class Selector:
    """A parsed label selector: every requirement must hold. The empty selector matches everything."""

    requirements: tuple[Requirement, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Selector:
        """Parse kubectl's ``-l`` syntax. Raises :class:`InvalidSelectorError`."""
        return cls(tuple(_Parser(text).parse()))

    @classmethod
    def from_labels(cls, labels: Mapping[str, str]) -> Selector:
        """The selector ``k1=v1,k2=v2`` for a set of labels (as a ``matchLabels``)."""
        return cls(tuple(Requirement(k, "=", (v,)) for k, v in sorted(labels.items())))

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        """Whether an object with ``labels`` is selected."""
        have = labels or {}
        return all(r.matches(have) for r in self.requirements)

    def equalities(self) -> list[tuple[str, tuple[str, ...]]]:
        """``(key, values)`` of the requirements an object must carry the label for (``=``, ``in``):
        what an index can narrow by before :meth:`matches` decides."""
        return [(r.key, r.values) for r in self.requirements if r.operator in ("=", "in")]

    @property
    def empty(self) -> bool:
        """True when the selector selects everything."""
        return not self.requirements

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []  # (type, value, position)
        pos = 0
        while True:
            m = _TOKEN.match(text, pos)
            if m is None:
                break
            start = m.start(1) if m.group(1) else m.start(2)
            if m.group(1):
                self.tokens.append((m.group(1), m.group(1), start))
            else:
                word = m.group(2)
                self.tokens.append((word if word in ("in", "notin") else "id", word, start))
            pos = m.end()
        self.tokens.append(("end", "", len(text)))
        self.i = 0

    def _peek(self) -> tuple[str, str, int]:
        return self.tokens[self.i]

    def _next(self) -> tuple[str, str, int]:
        token = self.tokens[self.i]
        if token[0] != "end":
            self.i += 1
        return token

    def _fail(self, token: tuple[str, str, int], expected: str) -> InvalidSelectorError:
        return InvalidSelectorError(
            f"unable to parse requirement: found '{token[1]}', expected: {expected} "
            f'(at character {token[2] + 1} of "{self.text}")'
        )

    def parse(self) -> list[Requirement]:
        out: list[Requirement] = []
        if self._peek()[0] == "end":
            return out
        while True:
            out.append(self._requirement())
            token = self._next()
            if token[0] == "end":
                return out
            if token[0] != ",":
                raise self._fail(token, "',' or end of selector")

    def _key(self) -> str:
        token = self._next()
        if token[0] not in ("id", "in", "notin"):
            raise self._fail(token, "identifier")
        self._check(token[1], qualified_name(token[1]))
        return token[1]

    def _check(self, value: str, problems: list[str]) -> None:
        if problems:
            raise InvalidSelectorError(
                f'unable to parse requirement: Invalid value: "{value}": {"; ".join(problems)}'
            )

    def _requirement(self) -> Requirement:
        if self._peek()[0] == "!":
            self._next()
            return Requirement(self._key(), "!")
        key = self._key()
        kind = self._peek()[0]
        if kind in (",", "end"):
            return Requirement(key, "exists")
        token = self._next()
        if token[0] in ("=", "==", "!="):
            op = "!=" if token[0] == "!=" else "="
            return Requirement(key, op, (self._exact_value(),))
        if token[0] in (">", "<"):
            value = self._next()
            if value[0] != "id" or not re.fullmatch(r"-?[0-9]+", value[1]):
                raise self._fail(value, "an integer")
            return Requirement(key, "gt" if token[0] == ">" else "lt", (value[1],))
        if token[0] in ("in", "notin"):
            return Requirement(key, token[0], self._value_set())
        raise self._fail(token, _OPERATORS)

    def _exact_value(self) -> str:
        kind, value, _ = self._peek()
        if kind in (",", "end"):
            return ""
        if kind not in ("id", "in", "notin"):
            raise self._fail(self._peek(), "identifier")
        self._next()
        self._check(value, label_value(value))
        return value

    def _value_set(self) -> tuple[str, ...]:
        token = self._next()
        if token[0] != "(":
            raise self._fail(token, "'('")
        values: list[str] = []
        while True:
            kind, value, _ = self._peek()
            if kind in ("id", "in", "notin"):
                self._next()
                self._check(value, label_value(value))
                values.append(value)
                kind = self._peek()[0]
            elif kind in (",", ")"):
                values.append("")  # "a in (x,)": the empty value, as Kubernetes reads it
            else:
                raise self._fail(self._peek(), "identifier, ',' or ')'")
            token = self._next()
            if token[0] == ")":
                return tuple(dict.fromkeys(values))
            if token[0] != ",":
                raise self._fail(token, "',' or ')'")


__all__ = ["Requirement", "Selector"]
