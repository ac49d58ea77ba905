"""URLs that may carry credentials (``FUNCTION_HTTP_URL``, ``CROSSPLANE_API_URL``, a remote function's address).

What is shown of such a URL (logs, ``/functions``, ``/ready``, error messages and FATAL results) is
:func:`redact_url`'s form; what is sent is :func:`split_credentials`'s: the URL without its
``user:password@`` and the pair for HTTP basic auth, so the HTTP client never holds the password in
a URL it might log.
"""

from __future__ import annotations

import re
import urllib.parse

__all__ = ["REDACTED_USERINFO", "redact_url", "split_credentials"]

#: What stands for the ``user:password@`` of a URL that is shown.
REDACTED_USERINFO = "<redacted>"
#: The scheme (if any) and the user information of a URL: everything before an ``@`` up to the first
#: ``/`` after the scheme. Broader than RFC 3986 (a ``?`` or ``#`` there is taken as part of a
#: password), so a badly encoded password is hidden too.
_USERINFO = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://|//)?[^/]*@")
_QUERY_OR_FRAGMENT = re.compile(r"[?#]")


def redact_url(url: str) -> str:
    """``url`` as it may be shown: credentials replaced, query and fragment (a signed URL's token) cut.

    ``https://me:pw@host/b.tgz?sig=x`` -> ``https://<redacted>@host/b.tgz``; text that is no URL
    (``me:pw@host``) is treated the same way.
    """
    text = _USERINFO.sub(lambda m: (m.group("head") or "") + REDACTED_USERINFO + "@", url.strip(), count=1)
    return _QUERY_OR_FRAGMENT.split(text, maxsplit=1)[0]


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """``url`` without ``user:password@``, and that pair (percent-decoded) for basic auth, if it had one."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    host = parts.netloc.rpartition("@")[2]
    bare = urllib.parse.urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return bare, (urllib.parse.unquote(parts.username or ""), urllib.parse.unquote(parts.password or ""))
