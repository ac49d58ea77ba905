"""The installed dependency graph of a package, read from the store (``xp tree``, issue 11).

:func:`package_graph` starts at one Configuration, Provider or Function and follows the Lock's
entries (each revision's ``dependencies``: package, constraints, kind) to the packages that
install them. Each node carries the package's health (its ``Installed``/``Healthy`` conditions)
and each edge whether the installed version satisfies the dependent's constraint
(:func:`xplane.pkg.resolver.satisfies`), or that the dependency is missing. Nodes are keyed by
package source, so shared dependencies are one node; :meth:`PackageGraph.tree` unfolds the graph
into a tree that marks repeats (``see_above``) and cycles instead of looping, and
:meth:`PackageGraph.to_dot` writes Graphviz DOT. Reads only; no registry calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from xplane.errors import XplaneError
from xplane.pkg.conditions import HEALTHY, INSTALLED, get_condition
from xplane.pkg.names import (
    LOCK_NAME,
    PACKAGE_KINDS,
    identifier_of,
    kind_named,
    package_name_for,
    source_or_ref,
)
from xplane.pkg.resolver import satisfies
from xplane.store import NotFoundError, Store

HEALTHY_STATE = "Healthy"
UNHEALTHY_STATE = "Unhealthy"
MISSING_STATE = "Missing"
UNKNOWN_STATE = "Unknown"


@dataclass(frozen=True)
class GraphNode:
    """One package: ``name`` is None when no package installs ``source`` (``health`` Missing)."""

    source: str
    kind: str
    name: str | None
    package: str | None  # spec.package
    version: str | None  # the installed tag or digest (the Lock's, else the reference's)
    revision: str | None
    health: str
    reason: str | None = None
    message: str | None = None
    in_lock: bool = False
    skip_resolution: bool = False

    @property
    def label(self) -> str:
        """``Kind/name`` (the would-be name, ``ToDNSLabel(repository)``, when missing)."""
        return f"{self.kind}/{self.name or package_name_for(self.source)}"


@dataclass(frozen=True)
class GraphEdge:
    """A dependency of ``parent`` on ``child`` (sources): ``status`` is satisfied, conflict or missing."""

    parent: str
    child: str
    constraints: str
    kind: str
    status: str

    @property
    def bad(self) -> bool:
        """Whether the edge is a conflict or a missing dependency."""
        return self.status != "satisfied"


@dataclass
class TreeNode:
    """The graph unfolded from the root: a node, the edge it was reached by, and its children."""

    node: GraphNode
    edge: GraphEdge | None
    see_above: bool = False
    cycle: bool = False
    children: list[TreeNode] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON shape (docs/packages.md, "Seeing the graph: xp tree")."""
        n, e = self.node, self.edge
        return {
            "kind": n.kind,
            "name": n.name,
            "source": n.source,
            "package": n.package,
            "version": n.version,
            "revision": n.revision,
            "constraints": e.constraints if e else None,
            "edge": e.status if e else "root",
            "health": n.health,
            "reason": n.reason,
            "message": n.message,
            "seeAbove": self.see_above,
            "cycle": self.cycle,
            "dependencies": [c.to_dict() for c in self.children],
        }


@dataclass(frozen=True)
class PackageGraph:
    """The packages reachable from ``root`` (a source) and their dependency edges."""

    root: str
    nodes: dict[str, GraphNode]
    edges: dict[str, tuple[GraphEdge, ...]]

    def tree(self) -> TreeNode:
        """Unfold depth-first: a node seen before is ``see_above`` (no children), a back edge ``cycle``."""
        expanded: set[str] = set()

        def visit(source: str, edge: GraphEdge | None, path: tuple[str, ...]) -> TreeNode:
            t = TreeNode(self.nodes[source], edge)
            if source in path:
                t.cycle = True
                return t
            if source in expanded:
                t.see_above = True
                return t
            expanded.add(source)
            t.children = [visit(e.child, e, (*path, source)) for e in self.edges.get(source, ())]
            return t

        return visit(self.root, None, ())

    def to_dot(self) -> str:
        """Graphviz DOT: one node per package (name, version, health), edges labelled with constraints;
        unhealthy or missing nodes and conflicting or missing edges red (missing ones dashed)."""
        lines = [
            f"digraph {_q(self.nodes[self.root].label)} {{",
            "  rankdir=TB;",
            '  node [shape=box, style=rounded, fontname="Helvetica"];',
            '  edge [fontname="Helvetica", fontsize=10];',
        ]
        for source, n in self.nodes.items():
            health = n.health + (f" ({n.reason})" if n.reason else "")
            label = "\n".join([n.label, n.version or "not installed", health])
            attrs = {"label": label, "tooltip": n.message or n.source}
            if n.health == MISSING_STATE:
                attrs.update(color="red", fontcolor="red", style="rounded,dashed")
            elif n.health == UNHEALTHY_STATE:
                attrs.update(color="red", fontcolor="red", penwidth="2")
            elif n.health == HEALTHY_STATE:
                attrs.update(color="darkgreen")
            else:
                attrs.update(color="orange")
            lines.append(f"  {_q(source)} [{_attrs(attrs)}];")
        for edges in self.edges.values():
            for e in edges:
                text = e.constraints or "any version"
                attrs = {"label": text}
                if e.status == "conflict":
                    got = self.nodes[e.child].version or "?"
                    attrs.update(
                        label=f"{text}\nconflict: {got}", color="red", fontcolor="red", style="dashed"
                    )
                elif e.status == "missing":
                    attrs.update(label=f"{text}\nmissing", color="red", fontcolor="red", style="dashed")
                lines.append(f"  {_q(e.parent)} -> {_q(e.child)} [{_attrs(attrs)}];")
        lines.append("}")
        return "\n".join(lines) + "\n"


def _q(text: str) -> str:
    """A DOT quoted ID: backslashes and quotes escaped; newlines become DOT's ``\\n`` line breaks."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _attrs(attrs: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={_q(v)}" for k, v in attrs.items())


def _version(ref: str) -> str | None:
    try:
        return identifier_of(ref)
    except XplaneError:
        return None


def health_of(obj: Mapping[str, Any]) -> tuple[str, str | None, str | None]:
    """(Healthy | Unhealthy | Unknown, reason, message) from a package's Installed/Healthy conditions."""
    installed = get_condition(obj, INSTALLED)
    healthy = get_condition(obj, HEALTHY)
    for c in (installed, healthy):
        if c is not None and c.get("status") == "False":
            return UNHEALTHY_STATE, str(c.get("reason") or ""), str(c.get("message") or "") or None
    if installed is None or healthy is None or not installed.get("status") == healthy.get("status") == "True":
        return UNKNOWN_STATE, None, "not reconciled yet"
    return HEALTHY_STATE, None, None


class _Reader:
    """The store's packages indexed by source, and the Lock's entries by revision name and source."""

    def __init__(self, store: Store) -> None:
        self.objects: dict[str, list[dict[str, Any]]] = {}
        for k in PACKAGE_KINDS:
            for o in store.list(kind_named(store, k)):
                src = source_or_ref(str((o.get("spec") or {}).get("package") or ""))
                self.objects.setdefault(src, []).append(o)
        lock = store.try_get(kind_named(store, "Lock"), LOCK_NAME) or {}
        entries = [e for e in lock.get("packages") or () if isinstance(e, Mapping)]
        self.by_revision = {str(e.get("name")): e for e in entries}
        self.by_source: dict[str, Mapping[str, Any]] = {}
        for e in entries:
            self.by_source.setdefault(str(e.get("source")), e)

    def entry_for(self, obj: Mapping[str, Any], source: str) -> Mapping[str, Any] | None:
        current = str((obj.get("status") or {}).get("currentRevision") or "")
        return self.by_revision.get(current) or self.by_source.get(source)

    def pick(self, source: str, kind: str) -> dict[str, Any] | None:
        """The package object installing ``source``: one whose revision is in the Lock, then of ``kind``."""
        found = self.objects.get(source) or []
        return min(
            found,
            key=lambda o: (
                self.entry_for(o, source) is None,
                o.get("kind") != kind,
                o["metadata"]["name"],
            ),
            default=None,
        )

    def node(self, obj: Mapping[str, Any] | None, source: str, kind: str) -> GraphNode:
        if obj is None:
            return GraphNode(source, kind, None, None, None, None, MISSING_STATE, None, "not installed")
        spec = obj.get("spec") or {}
        ref = str(spec.get("package") or "")
        entry = self.entry_for(obj, source)
        version = str(entry.get("version")) if entry and entry.get("version") else _version(ref)
        health, reason, message = health_of(obj)
        return GraphNode(
            source,
            str(obj.get("kind") or kind),
            str(obj["metadata"]["name"]),
            ref or None,
            version,
            str((obj.get("status") or {}).get("currentRevision") or "") or None,
            health,
            reason,
            message,
            in_lock=entry is not None,
            skip_resolution=bool(spec.get("skipDependencyResolution")),
        )


def package_graph(store: Store, kind: str, name: str) -> PackageGraph:
    """The installed dependency graph of package ``kind``/``name`` (``kind`` one of
    Configuration, Provider, Function); raise :class:`~xplane.store.NotFoundError` when it does not exist."""
    if kind not in PACKAGE_KINDS:
        raise ValueError(f"{kind} is not a package kind; want one of {', '.join(PACKAGE_KINDS)}")
    k = kind_named(store, kind)
    root_obj = store.try_get(k, name)
    if root_obj is None:
        raise NotFoundError(k.resource, name)
    reader = _Reader(store)
    root = source_or_ref(str((root_obj.get("spec") or {}).get("package") or ""))
    nodes = {root: reader.node(root_obj, root, kind)}
    edges: dict[str, tuple[GraphEdge, ...]] = {}
    todo = [root]
    while todo:
        source = todo.pop(0)
        obj = root_obj if source == root else reader.pick(source, nodes[source].kind)
        entry = reader.entry_for(obj, source) if obj is not None else None
        out: list[GraphEdge] = []
        for d in (entry or {}).get("dependencies") or ():
            child = str(d.get("package") or "")
            constraints = str(d.get("constraints") or "")
            dkind = str(d.get("kind") or d.get("type") or "Provider")
            if child not in nodes:
                nodes[child] = reader.node(reader.pick(child, dkind), child, dkind)
                todo.append(child)
            target = nodes[child]
            if target.health == MISSING_STATE:
                status = "missing"
            elif satisfies(constraints, target.version or ""):
                status = "satisfied"
            else:
                status = "conflict"
            out.append(GraphEdge(source, child, constraints, dkind, status))
        edges[source] = tuple(out)
    return PackageGraph(root, nodes, edges)


__all__ = [
    "HEALTHY_STATE",
    "MISSING_STATE",
    "UNHEALTHY_STATE",
    "UNKNOWN_STATE",
    "GraphEdge",
    "GraphNode",
    "PackageGraph",
    "TreeNode",
    "health_of",
    "package_graph",
]
