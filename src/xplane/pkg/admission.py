"""What the API server does with package objects before storing them (see :mod:`xplane.pkg.schema`).

Pass :func:`package_admission` as ``Store.open(admission=...)``: the CRDs' defaults are written
(``revisionActivationPolicy: Automatic``, ``revisionHistoryLimit: 1`` ...), as ``kubectl get -o
yaml`` shows them on a cluster, and a spec with unknown fields or wrong types is refused.
"""

from __future__ import annotations

from xplane.pkg.schema import admit as package_admission

__all__ = ["package_admission"]
