"""What an unexpected registry status means: the error for it, with the Distribution error codes
and messages the registry sent (read from a capped prefix of the body)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from xplane.oci.bodies import read_prefix
from xplane.oci.errors import DigestMismatchError, NotFoundError, OCIError, RegistryError
from xplane.oci.jsonbound import loads_bounded
from xplane.oci.limits import MAX_ERROR_BODY


def error_details(resp: httpx.Response) -> tuple[set[str], str]:
    """Distribution error codes and a short ``: CODE: message`` suffix from an error response
    (from at most its first :data:`MAX_ERROR_BODY` bytes; nothing when they are not such JSON)."""
    try:
        if resp.is_stream_consumed:
            data = resp.content[:MAX_ERROR_BODY]
        else:  # a streamed 2xx the caller did not expect: read no more than an error page
            data, _ = read_prefix(resp, MAX_ERROR_BODY)
        doc: Any = loads_bounded(data, what="an error response")
        errors = doc.get("errors") or []
        codes = {str(e.get("code")) for e in errors if isinstance(e, Mapping)}
        parts = [f"{e.get('code')}: {e.get('message')}" for e in errors[:3] if isinstance(e, Mapping)]
    except (ValueError, AttributeError, TypeError, httpx.HTTPError, httpx.StreamError, RegistryError):
        return set(), ""
    text = "; ".join(parts)
    return codes, (f": {text[:300]}" if text else "")


def status_error(resp: httpx.Response, *, registry: str, repository: str | None, what: str) -> OCIError:
    """The error for an unexpected status other than 401/403 (those need the credentials' story)."""
    status = resp.status_code
    codes, detail = error_details(resp)
    where = f"{registry}/{repository}" if repository else registry
    if status == 404:
        return NotFoundError(
            f"{what} not found in {where} (HTTP 404){detail}",
            registry=registry,
            repository=repository,
            status=status,
            hint="check the repository name and the tag or digest",
        )
    if "DIGEST_INVALID" in codes:
        return DigestMismatchError(f"{what} in {where}: the registry rejected the content's digest{detail}")
    return RegistryError(
        f"{what} in {where} failed: HTTP {status}{detail}",
        registry=registry,
        repository=repository,
        status=status,
        hint="retry later" if status >= 500 or status == 429 else None,
    )
