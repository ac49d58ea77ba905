"""ImageConfig (``pkg.crossplane.io/v1beta1``): pull secrets and rewrites by longest prefix (spec §5.6).

Each purpose (a pull secret, a rewrite) picks its ImageConfig independently: among the configs
that have that section, the one with the longest ``matchImages`` prefix of the image wins. Unlike
upstream, a prefix is also matched against the *normalised* reference (``docker.io/x`` written
as ``x``; landscape P11), and a prefix with a URL scheme is refused with a clear error (P12).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from xplane.errors import XplaneError
from xplane.oci import InvalidReferenceError, Reference

SET_PULL_SECRET = "SetImagePullSecret"
REWRITE_IMAGE = "RewriteImage"


class ImageConfigError(XplaneError):
    """An ImageConfig that cannot be applied (a scheme in a prefix, a rewrite without a prefix)."""


@dataclass(frozen=True)
class Match:
    """The ImageConfig chosen for one purpose and the prefix that matched."""

    name: str
    prefix: str
    spec: Mapping[str, Any]
    normalized: bool  # the prefix matched the normalised reference, not the string as written


@dataclass(frozen=True)
class Applied:
    """What the ImageConfigs did to one reference."""

    resolved: str  # the reference to pull (rewritten, or the original)
    pull_secret: str | None
    refs: tuple[dict[str, str], ...]  # appliedImageConfigRefs: [{name, reason}]


def _normalized(image: str) -> str | None:
    try:
        return str(Reference.parse(image))
    except InvalidReferenceError:
        return None


def best_match(configs: Iterable[Mapping[str, Any]], image: str, purpose: str) -> Match | None:
    """The config with the longest prefix of ``image`` among those having ``purpose``'s section."""
    norm = _normalized(image)
    best: Match | None = None
    for cfg in configs:
        spec = cfg.get("spec") or {}
        if not _has(spec, purpose):
            continue
        name = str((cfg.get("metadata") or {}).get("name", ""))
        for m in spec.get("matchImages") or ():
            prefix = str((m or {}).get("prefix") or "")
            if (m or {}).get("type", "Prefix") != "Prefix" or not prefix:
                continue
            if "://" in prefix:
                raise ImageConfigError(
                    f"ImageConfig {name}: matchImages prefix {prefix!r} has a URL scheme; images never do",
                    hint=f"write the prefix without the scheme, e.g. {prefix.split('://', 1)[1]!r}",
                )
            for candidate, normalized in ((image, False), (norm, True)):
                if candidate is None or not candidate.startswith(prefix):
                    continue
                if best is None or len(prefix) > len(best.prefix):
                    best = Match(name, prefix, spec, normalized)
                break
    return best


def _has(spec: Mapping[str, Any], purpose: str) -> bool:
    if purpose == SET_PULL_SECRET:
        ref = ((spec.get("registry") or {}).get("authentication") or {}).get("pullSecretRef") or {}
        return bool(ref.get("name"))
    if purpose == REWRITE_IMAGE:
        return spec.get("rewriteImage") is not None
    return False


def apply(configs: list[Mapping[str, Any]], image: str) -> Applied:
    """Rewrite ``image`` (on the original reference), then choose the pull secret (on the rewritten one)."""
    refs: list[dict[str, str]] = []
    resolved = image
    rw = best_match(configs, image, REWRITE_IMAGE)
    if rw is not None:
        new_prefix = str((rw.spec.get("rewriteImage") or {}).get("prefix") or "")
        if not new_prefix:
            raise ImageConfigError(f"ImageConfig {rw.name}: rewrite prefix is missing")
        base = _normalized(image) if rw.normalized else image
        resolved = new_prefix + str(base)[len(rw.prefix) :]
        refs.append({"name": rw.name, "reason": REWRITE_IMAGE})
    secret = None
    ps = best_match(configs, resolved, SET_PULL_SECRET)
    if ps is not None:
        secret = str(ps.spec["registry"]["authentication"]["pullSecretRef"]["name"])
        refs.append({"name": ps.name, "reason": SET_PULL_SECRET})
    return Applied(resolved, secret, tuple(refs))
