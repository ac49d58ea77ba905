"""``x-kubernetes-validations``: CEL rules evaluated as the API server does on create.

The runtime is ``cel-expr-python`` (Google's C++ CEL, with its ``strings`` and ``optional``
extensions); :mod:`.celext` adds Kubernetes' own libraries. Rules are compiled once per schema node
(:class:`RuleSet`), then evaluated for every value that node describes. There is no old object, so
transition rules (those that read ``oldSelf``) do not run, as on create. Error texts follow
``apiextensions-apiserver``'s CEL validator: ``<path>: Invalid value: "<type>": <message>``.

Cost: the C++ runtime does not report CEL's cost units, so every call is bounded by an estimate
(:func:`estimate_cost`: the expression's size times the elements its comprehensions may visit)
against Kubernetes' per-call limit, and the whole resource by its per-resource budget.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from xplane.validate.celext import FUNCTIONS, CelExtError
from xplane.validate.celformat import rewrite
from xplane.validate.errors import DUPLICATE, FORBIDDEN, INVALID, REQUIRED, FieldError
from xplane.validate.schema import child, index, subtree_has

PER_CALL_LIMIT = 1_000_000  # celconfig.PerCallLimit
RUNTIME_BUDGET = 10_000_000  # celconfig.RuntimeCELCostBudget (per resource)
_MACROS = re.compile(r"\.(all|exists|exists_one|map|filter)\s*\(")
_OLD_SELF = re.compile(r"\boldSelf\b")
_REASONS = {
    "FieldValueInvalid": INVALID,
    "FieldValueForbidden": FORBIDDEN,
    "FieldValueRequired": REQUIRED,
    "FieldValueDuplicate": DUPLICATE,
}


class CelCompileError(Exception):
    """A rule that does not compile (the API server would refuse the CRD)."""


@lru_cache(maxsize=1)
def _env() -> Any:
    from cel_expr_python import cel
    from cel_expr_python.ext import ext_optional, ext_strings

    kinds = {
        "s": cel.Type.STRING,
        "i": cel.Type.INT,
        "l": cel.Type.List(cel.Type.DYN),
        "m": cel.Type.MAP,
        "d": cel.Type.DYN,
        "b": cel.Type.BOOL,
        "f": cel.Type.DOUBLE,
    }
    decls = []
    for name, overloads in FUNCTIONS.items():
        ovs = [
            cel.Overload(
                f"k8s_{name}_{i}",
                kinds[ret],
                [kinds[k] for k in params],
                is_member=member,
                impl=_guard(impl),
            )
            for i, (member, params, impl, ret) in enumerate(overloads)
        ]
        decls.append(cel.FunctionDecl(name, ovs))
    return cel.NewEnv(
        variables={"self": cel.Type.DYN},
        extensions=[ext_strings.ExtStrings(), ext_optional.ExtOptional()],
        functions=decls,
    )


def _guard(impl: Any) -> Any:
    def call(*args: Any) -> Any:
        try:
            return impl(*args)
        except (CelExtError, ValueError, TypeError, KeyError, re.error) as e:
            raise RuntimeError(str(e)) from None

    return call


@lru_cache(maxsize=8192)
def compile_expression(expr: str) -> Any:
    """A compiled CEL program (cached by text); :class:`CelCompileError` if it does not compile."""
    try:
        return _env().compile(rewrite(expr))
    except RuntimeError as e:
        raise CelCompileError(str(e).split("\n")[0]) from None


@dataclass(frozen=True)
class Rule:
    """One ``x-kubernetes-validations`` entry, compiled."""

    rule: str
    message: str = ""
    message_expression: str = ""
    field_path: str = ""
    reason: str = ""
    transition: bool = False
    compile_error: str = ""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Rule:
        """Compile a rule; a compile error is kept (reported when a value is checked)."""
        rule = str(d.get("rule", ""))
        transition = bool(_OLD_SELF.search(rule))
        err = ""
        if not transition:
            try:
                compile_expression(rule)
                if d.get("messageExpression"):
                    compile_expression(str(d["messageExpression"]))
            except CelCompileError as e:
                err = str(e)
        return cls(
            rule=rule,
            message=str(d.get("message") or ""),
            message_expression=str(d.get("messageExpression") or ""),
            field_path=str(d.get("fieldPath") or ""),
            reason=str(d.get("reason") or ""),
            transition=transition,
            compile_error=err,
        )

    def default_message(self) -> str:
        """``message``, else ``failed rule: <rule>``."""
        return self.message.strip() if self.message.strip() else f"failed rule: {self.rule.strip()}"


def estimate_cost(expr: str, value: Any) -> int:
    """An upper-bound-style estimate of CEL cost units for one call of ``expr`` on ``value``."""
    depth = _macro_depth(expr)
    if not depth:  # no comprehension: the cost does not grow with the value
        return max(1, len(expr) // 4)
    size = 1 + _elements(value, 3)
    return int(max(1, len(expr) // 4) * size**depth)


@lru_cache(maxsize=4096)
def _macro_depth(expr: str) -> int:
    return len(_MACROS.findall(expr))


def _elements(v: Any, depth: int) -> int:
    if depth <= 0:
        return 0
    if isinstance(v, dict):
        return len(v) + sum(_elements(x, depth - 1) for x in v.values() if isinstance(x, (dict, list)))
    if isinstance(v, list):
        return len(v) + sum(_elements(x, depth - 1) for x in v if isinstance(x, (dict, list)))
    if isinstance(v, str):
        return len(v) // 64
    return 0


def _type_of(schema: Mapping[str, Any], v: Any) -> str:
    t = schema.get("type")
    if t:
        return str(t)
    if schema.get("x-kubernetes-int-or-string"):
        return "integer" if isinstance(v, int) else "string"
    return "object" if isinstance(v, dict) else "array" if isinstance(v, list) else "string"


def _field_path(path: str, fp: str) -> str:
    for m in re.finditer(r"\.([A-Za-z_$][\w$-]*)|\['((?:[^'\\]|\\.)*)'\]|\[(\d+)\]", fp):
        if m.group(3) is not None:
            path = index(path, int(m.group(3)))
        else:
            path = child(path, m.group(1) or m.group(2))
    return path


def _error_text(result: Any) -> str:
    text = str(result.value()) if hasattr(result, "value") else str(result)
    m = re.match(r'NOT_FOUND: Key not found in map : "(.*)"', text)
    if m:
        return f"no such key: {m.group(1)}"
    if "No matching overloads" in text:
        return "no such overload"
    return re.sub(r"^[A-Z_]+: ", "", text)


@dataclass
class Budget:
    """The per-resource runtime cost budget."""

    remaining: int = RUNTIME_BUDGET
    exhausted: bool = False


@dataclass
class CelValidator:
    """Evaluates every rule of a structural schema over a value; rules compiled once per node."""

    schema: Mapping[str, Any]
    _rules: dict[int, tuple[Rule, ...]] = field(default_factory=dict, repr=False)

    def rules_for(self, node: Mapping[str, Any]) -> tuple[Rule, ...]:
        """The compiled rules of one schema node."""
        key = id(node)
        got = self._rules.get(key)
        if got is None:
            got = tuple(Rule.from_dict(r) for r in node.get("x-kubernetes-validations") or ())
            self._rules[key] = got
        return got

    def validate(self, obj: Any, path: str = "") -> list[FieldError]:
        """Every CEL error of ``obj``."""
        out: list[FieldError] = []
        self._walk(self.schema, obj, path, out, Budget())
        return out

    def validate_sites(self, sites: list[tuple[Mapping[str, Any], Any, str]]) -> list[FieldError]:
        """Every CEL error of the values :func:`.schema.check` collected (rules of each site's node)."""
        out: list[FieldError] = []
        budget = Budget()
        for node, v, path in sites:
            if v is None:
                continue
            for r in self.rules_for(node):
                self._check(r, node, v, path, out, budget)
                if budget.exhausted:
                    return out
        return out

    def _walk(self, s: Mapping[str, Any], v: Any, path: str, out: list[FieldError], budget: Budget) -> None:
        if budget.exhausted or v is None or not subtree_has(s, "x-kubernetes-validations"):
            return
        if s.get("x-kubernetes-validations"):
            for r in self.rules_for(s):
                self._check(r, s, v, path, out, budget)
                if budget.exhausted:
                    return
        if isinstance(v, dict):
            props: Mapping[str, Any] = s.get("properties") or {}
            addl = s.get("additionalProperties")
            for k, x in v.items():
                ps = props.get(k)
                if ps is None and isinstance(addl, Mapping):
                    ps = addl
                if ps is not None:
                    self._walk(ps, x, child(path, k), out, budget)
        elif isinstance(v, list):
            items = s.get("items")
            if isinstance(items, Mapping):
                for i, x in enumerate(v):
                    self._walk(items, x, index(path, i), out, budget)

    def _check(
        self, r: Rule, s: Mapping[str, Any], v: Any, path: str, out: list[FieldError], budget: Budget
    ) -> None:
        if r.transition:
            return
        tname = _type_of(s, v)
        if r.compile_error:
            out.append(FieldError(path, INVALID, tname, f"compilation failed: {r.compile_error}", "cel"))
            return
        cost = estimate_cost(r.rule, v)
        if cost > PER_CALL_LIMIT:
            out.append(FieldError(path, INVALID, tname, f"call cost exceeds limit for rule: {r.rule}", "cel"))
            return
        budget.remaining -= cost
        if budget.remaining < 0:
            budget.exhausted = True
            out.append(
                FieldError(
                    path,
                    INVALID,
                    tname,
                    "validation failed due to running out of cost budget, no further validation rules will be run",
                    "cel",
                )
            )
            return
        result = compile_expression(r.rule).eval(data={"self": v})
        kind = result.type().name().upper()
        if kind == "BOOL" and result.value() is True:
            return
        if kind == "BOOL":
            self._fail(r, s, v, path, tname, out)
            return
        detail = _error_text(result) if kind == "ERROR" else f"rule result is not a bool: {kind.lower()}"
        out.append(FieldError(path, INVALID, tname, f"{r.default_message()}: {detail}", "cel"))

    def _fail(
        self, r: Rule, s: Mapping[str, Any], v: Any, path: str, tname: str, out: list[FieldError]
    ) -> None:
        msg = r.default_message()
        if r.message_expression:
            res = compile_expression(r.message_expression).eval(data={"self": v})
            if res.type().name().upper() == "STRING":
                text = str(res.value())
                if text.strip() and "\n" not in text:
                    msg = text
        fpath = _field_path(path, r.field_path) if r.field_path else path
        kind = _REASONS.get(r.reason, INVALID)
        if kind in (REQUIRED, FORBIDDEN):
            out.append(FieldError(fpath, kind, detail=msg, kind="cel"))
        elif kind == DUPLICATE:
            out.append(FieldError(fpath, DUPLICATE, tname, kind="cel"))
        else:
            out.append(FieldError(fpath, INVALID, tname, msg, "cel"))
