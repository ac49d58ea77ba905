"""Render's YAML: what the Kubernetes serializer (sigs.k8s.io/yaml over go-yaml v2) prints.

``xplane.xpkg.dump_documents`` does not fit: it single-quotes strings that would read as other
types (``'False'``, ``''``) where go-yaml double-quotes them (``"False"``, ``""``), and it ends the
stream with ``---``. This emitter is PyYAML (libyaml's emitter when present) with go-yaml's quoting: sorted keys, 2-space indent,
list items not indented under their key, ``---`` before every document and none after.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """SafeDumper whose strings that resolve to a non-string are double-quoted, as go-yaml does."""


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    tag = dumper.resolve(yaml.ScalarNode, data, (True, False))  # type: ignore[no-untyped-call]
    if tag != "tag:yaml.org,2002:str" or data == "":
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style='"')
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _represent_str)


def dump_render(docs: Iterable[Any]) -> str:
    """The documents as classic render prints them."""
    parts = []
    for doc in docs:
        text = yaml.dump(
            doc, Dumper=_Dumper, sort_keys=True, default_flow_style=False, allow_unicode=True, width=80
        )
        parts.append("---\n" + text)
    return "".join(parts)
