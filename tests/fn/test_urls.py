"""What is shown of a URL that may carry credentials, and what is sent: one row per case."""

from __future__ import annotations

import pytest

from xplane.fn.urls import redact_url, split_credentials


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://127.0.0.1:8080/health", "http://127.0.0.1:8080/health"),
        ("https://me:pw@host/b.tgz", "https://<redacted>@host/b.tgz"),
        ("https://token@host:443/b.tgz", "https://<redacted>@host:443/b.tgz"),
        ("https://host/b.tgz?X-Amz-Signature=abc#frag", "https://host/b.tgz"),
        ("http://u:p%40ss@host/a?b", "http://<redacted>@host/a"),
        ("http://u:p?ss#x@host/a", "http://<redacted>@host/a"),  # unencoded ? and # in a password
        ("http://u:p@ss@host/a", "http://<redacted>@host/a"),
        ("http://host/pkg@v1.tgz", "http://host/pkg@v1.tgz"),  # an @ in the path is no credential
        ("http://[::1]:80/x", "http://[::1]:80/x"),
        ("  me:pw@host:80  ", "<redacted>@host:80"),  # not a URL at all
        ("ftp://me:pw@host/x", "ftp://<redacted>@host/x"),
        ("host:9443", "host:9443"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    ("url", "sent", "auth"),
    [
        ("http://host/b.tgz?x=1", "http://host/b.tgz?x=1", None),
        ("https://me:pw@host:8443/b.tgz?x=1", "https://host:8443/b.tgz?x=1", ("me", "pw")),
        ("https://token@host/b", "https://host/b", ("token", "")),
        ("http://u:p%40ss%3A@host/", "http://host/", ("u", "p@ss:")),
    ],
)
def test_split_credentials(url: str, sent: str, auth: tuple[str, str] | None) -> None:
    assert split_credentials(url) == (sent, auth)
