"""Random wrong-type mutations of JSON-shaped documents, for tests that bad input never escapes as a
Python error (render's inputs, validate's CRDs and XRDs, xp apply's manifests)."""

from __future__ import annotations

import copy
import random
from typing import Any

#: values of every JSON type, empty and not, put where a field's value was
ODD_VALUES: tuple[Any, ...] = (None, 0, 7, 2.5, True, "", "x", [], [1, "a"], {}, {"a": 1}, [{"b": None}])


def json_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path in ``value`` (keys and indexes), the empty path (the value itself) first."""
    out = [path]
    if isinstance(value, dict):
        for k, v in value.items():
            out.extend(json_paths(v, (*path, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(json_paths(v, (*path, i)))
    return out


def mutate(rng: random.Random, docs: list[Any]) -> tuple[Any, ...]:
    """Change one field of one of ``docs`` in place: removed (a fifth of the time, when in an object)
    or replaced by one of :data:`ODD_VALUES`. Returns the document's index and the field's path."""
    i = rng.randrange(len(docs))
    path = rng.choice(json_paths(docs[i])[1:])
    parent = docs[i]
    for p in path[:-1]:
        parent = parent[p]
    if isinstance(parent, dict) and rng.random() < 0.2:
        del parent[path[-1]]
    else:
        parent[path[-1]] = copy.deepcopy(rng.choice(ODD_VALUES))
    return (i, *path)
