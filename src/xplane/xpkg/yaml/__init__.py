"""YAML the way Crossplane reads and writes it: Kubernetes' dialect (go-yaml v2 via sigs.k8s.io/yaml).

The rest of ``xplane.xpkg`` imports these names from here:

* reading: :func:`load_all`/:func:`loads` (values), :func:`parse_stream`, :func:`read_files` and
  :func:`load_file_documents` (located :class:`Document` objects, in a :class:`DocumentStream`),
  with :class:`YAMLWarning` for what Crossplane accepts silently or will refuse;
* writing: :func:`dump_documents`, YAML that reads back unchanged (:class:`EmitError` otherwise).

Inside: :mod:`.loader` (document splitting and Kubernetes' value rules) builds on :mod:`.composer`
(libyaml's node tree, read go-yaml's way), :mod:`.depth` (the nesting limit) and :mod:`.scalars`
(the scalar rules the :mod:`.emitter` shares); :mod:`.document` and :mod:`.stream` hold the located
documents. This package imports no other part of xpkg but its errors. A change to what any input
decodes to must bump ``xplane.xpkg.parsedcache.LOADER_VERSION``.
"""

from __future__ import annotations

from xplane.xpkg.yaml.depth import MAX_DEPTH
from xplane.xpkg.yaml.document import Document, Located
from xplane.xpkg.yaml.emitter import EmitError, dump_documents
from xplane.xpkg.yaml.loader import Chunk, YAMLWarning, load_all, load_chunk, loads, no_gc, split_documents
from xplane.xpkg.yaml.stream import (
    FILE_SEPARATOR,
    DocumentStream,
    concatenate,
    load_file_documents,
    parse_stream,
    read_files,
)

__all__ = [
    "FILE_SEPARATOR",
    "MAX_DEPTH",
    "Chunk",
    "Document",
    "DocumentStream",
    "EmitError",
    "Located",
    "YAMLWarning",
    "concatenate",
    "dump_documents",
    "load_all",
    "load_chunk",
    "load_file_documents",
    "loads",
    "no_gc",
    "parse_stream",
    "read_files",
    "split_documents",
]
