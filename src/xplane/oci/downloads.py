"""What a download from a registry may be: a blob no larger or smaller than its descriptor, a
well-formed page of a tag list, and, after a body broke off, whether another attempt may start.

The registry client (:mod:`xplane.oci.client`) calls these while it streams; they read nothing.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import httpx

from xplane.oci.errors import BlobSizeError, ManifestError, RegistryUnavailableError
from xplane.oci.jsonbound import loads_bounded
from xplane.oci.limits import current_deadline

if TYPE_CHECKING:
    from xplane.oci.reference import Reference

log = logging.getLogger(__name__)

_MISMATCH_HINT = (
    "the registry is serving content that does not match the image's manifest; report it to its operator"
)


def tag_page(resp: httpx.Response, ref: Reference) -> list[Any]:
    """The ``tags`` of one page of a tag list; :class:`ManifestError` when it is not such JSON."""
    what = f"the tag list of {ref.registry}/{ref.repository}"
    doc = loads_bounded(resp.content, what=what)
    page = doc.get("tags") if isinstance(doc, dict) else None
    if page is None and isinstance(doc, dict):
        return []
    if not isinstance(page, list) or any(isinstance(t, dict | list) for t in page):
        raise ManifestError(f"registry {ref.registry} sent an invalid tag list for {ref.repository}")
    return page


def check_declared_size(resp: httpx.Response, ref: Reference, digest: str, size: int | None) -> None:
    """Refuse, unread, a blob whose ``Content-Length`` exceeds its descriptor's ``size``.

    Only for unencoded bodies: a proxy's ``Content-Encoding`` makes the length the encoded one.
    """
    declared = resp.headers.get("Content-Length", "")
    encoded = resp.headers.get("Content-Encoding", "identity").strip().lower() not in ("", "identity")
    if size is None or encoded or not declared.isdigit() or int(declared) <= size:
        return
    raise BlobSizeError(
        f"blob {digest} from {ref.registry}/{ref.repository} is {declared} bytes (Content-Length), but its "
        f"descriptor says {size}; refused without reading it",
        hint=_MISMATCH_HINT,
    )


def blob_too_large(ref: Reference, digest: str, size: int) -> BlobSizeError:
    return BlobSizeError(
        f"blob {digest} from {ref.registry}/{ref.repository} is larger than the {size} bytes its "
        f"descriptor says; stopped after {size} bytes and discarded them",
        hint=_MISMATCH_HINT,
    )


def blob_too_short(ref: Reference, digest: str, size: int, written: int) -> BlobSizeError:
    return BlobSizeError(
        f"blob {digest} from {ref.registry}/{ref.repository} ended after {written} bytes, but its "
        f"descriptor says {size}; discarded",
        hint="the registry or a proxy cut the content short; retry, or report it to the registry operator",
    )


def broke_off(
    ref: Reference, what: str, exc: httpx.TransportError, attempt: int, attempts: int, written: int = 0
) -> None:
    """After ``what``'s body broke off: raise unless another attempt fits ``attempts`` and the deadline."""
    deadline = current_deadline()
    if deadline is not None and deadline.expired():
        raise deadline.error(f"the download of {what}", ref.repository) from exc
    if attempt >= attempts:
        raise RegistryUnavailableError(
            f"download of {what} from {ref.registry}/{ref.repository} broke off after {written} bytes: "
            f"{exc or type(exc).__name__}",
            registry=ref.registry,
            repository=ref.repository,
            hint="retry; if it persists, check the network path to the registry",
        ) from None
    log.debug("%s: %s after %d bytes; retrying", what, type(exc).__name__, written)


__all__ = ["blob_too_large", "blob_too_short", "broke_off", "check_declared_size", "tag_page"]
