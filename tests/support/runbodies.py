"""Request bodies for xfn's HTTP ``:run`` endpoint, as the limit tests and the soak send them."""

from __future__ import annotations

import json


def wrap(items: bytes) -> bytes:
    """A request whose observed composite holds ``items`` (a JSON array's contents) in one list."""
    return b'{"observed":{"composite":{"resource":{"items":[' + items + b"]}}}}"


def kubernetes_request(resources: int) -> bytes:
    """Observed resources shaped like ``kubectl get -o json`` output (about 16 bytes per JSON value)."""
    observed = {}
    for i in range(resources):
        observed[f"cm-{i}"] = {
            "resource": {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": f"cm-{i}",
                    "labels": {"app": "web", "tier": "frontend"},
                    "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:data": {".": {}, "f:a": {}}}}],
                },
                "data": {"a": "x" * 20, "b": str(i)},
            }
        }
    return json.dumps({"observed": {"resources": observed}}).encode()
