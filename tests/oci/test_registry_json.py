"""Registry responses parsed with bounds: depth-bounded JSON, duration and rate values, and a
property test feeding random and hostile bodies to every parser of registry responses.

The property test puts an ``httpx.MockTransport`` in the client's transport seam (the hostile
server in tests/support/hostile.py runs the same attacks over real sockets, in
test_hostile_registry.py): whatever the body, status or ``Content-Encoding``, the client returns
or raises one of xplane's own errors, never ``RecursionError``, ``TypeError`` or an httpx error.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xplane.errors import XplaneError
from xplane.oci.client import RegistryClient
from xplane.oci.credentials import AuthFileSource, Credentials, ExplicitSource, Keychain
from xplane.oci.errors import ConfigError, CredentialsError, InvalidJSONError, ManifestError
from xplane.oci.jsonbound import DEFAULT_MAX_DEPTH, json_depth, loads_bounded
from xplane.oci.limits import parse_duration, parse_rate
from xplane.oci.reference import Reference
from xplane.oci.settings import RegistryConfig, RegistrySettings
from xplane.oci.transport import RetryPolicy

# -- depth-bounded JSON -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "limit", "depth"),
    [
        (b"{}", 64, 1),  # few brackets: their count bounds the depth, no scan
        (b'{"a": [1, {"b": 2}]}', 2, 3),
        (b'{"a": "[[[[[[[[", "b": [1]}', 1, 2),  # brackets inside strings do not count
        (b'{"a": "\\"[[[[", "b": []}', 1, 2),  # nor after an escaped quote
        (b"[" * 100 + b"]" * 100, 64, 65),  # stops once past the limit
        ("[[[]]]", 2, 3),  # str too
    ],
)
def test_json_depth(doc: bytes | str, limit: int, depth: int) -> None:
    assert json_depth(doc, limit) == depth


def test_loads_bounded_refuses_deep_and_invalid_json_as_xplane_errors() -> None:
    with pytest.raises(InvalidJSONError) as deep:
        loads_bounded(b"[" * 100_000 + b"]" * 100_000, what="manifest x")
    assert "manifest x" in str(deep.value) and f"deeper than {DEFAULT_MAX_DEPTH}" in str(deep.value)
    with pytest.raises(ValueError):  # InvalidJSONError is a ValueError too
        loads_bounded(b"{nope", what="tag list")
    assert isinstance(deep.value, ManifestError) and deep.value.exit_code == 1
    assert loads_bounded(b'{"a": [[1]]}', what="x", max_depth=3) == {"a": [[1]]}


# -- limit values, as flags and config keys take them ---------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("600", 600.0), ("90s", 90.0), ("10m", 600.0), ("1.5h", 5400.0), ("500ms", 0.5), ("0", 0.0), (30, 30.0)],
)
def test_parse_duration(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "rate"),
    [("1024", 1024), ("64K", 65536), ("1M", 1 << 20), ("1MiB/s", 1 << 20), ("2kb", 2048), ("0", 0), (5, 5)],
)
def test_parse_rate(text: str | int, rate: int) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("bad", ["soon", "-1", "10 minutes", "1e9999", "", "nan"])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(bad)


@pytest.mark.parametrize(("key", "value"), [("pullTimeout", "soon"), ("minTransferRate", "fast")])
def test_bad_limit_values_in_the_config_file_name_the_line(tmp_path: Path, key: str, value: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(f'registries:\n  "h:1":\n    plainHTTP: true\n    {key}: {value}\n')
    with pytest.raises(ConfigError) as info:
        RegistryConfig.load(env={"XPLANE_CONFIG": str(path)}, system_root=tmp_path)
    assert f"{path}:4: {key}:" in str(info.value)


def test_limit_keys_reach_the_settings(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text('registries:\n  "h:1": {pullTimeout: 45m, minTransferRate: 10K}\n')
    s = RegistryConfig.load(env={"XPLANE_CONFIG": str(path)}, system_root=tmp_path).for_registry("h:1")
    assert (s.pull_timeout, s.min_transfer_rate) == (2700.0, 10240)
    assert RegistrySettings(host="x").pull_timeout == 600.0  # the documented defaults
    assert RegistrySettings(host="x").min_transfer_rate == 1024


def test_a_deep_auth_file_is_a_credentials_error(tmp_path: Path) -> None:
    path = tmp_path / "auth.json"
    path.write_text('{"auths": ' + "[" * 50_000 + "]" * 50_000 + "}")
    with pytest.raises(CredentialsError) as info:
        Keychain([AuthFileSource(path, {})]).lookup("h:1", "a/b")
    assert str(path) in str(info.value) and info.value.exit_code == 4


# -- random and hostile bodies for every parser of registry responses ------------------------


class _Config:
    def for_registry(self, host: str) -> RegistrySettings:
        return RegistrySettings(host=host)

    def plain_http_by_name(self, host: str) -> bool:
        return False


_keys = st.sampled_from(
    ["tags", "token", "access_token", "expires_in", "errors", "code", "message", "mediaType", "manifests"]
)
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(_keys | st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=16,
)
_deep = st.integers(DEFAULT_MAX_DEPTH, 20_000)
bodies = st.one_of(
    st.binary(max_size=256),
    _json_values.map(lambda v: json.dumps(v).encode()),
    _deep.map(lambda n: b"[" * n + b"]" * n),
    st.tuples(st.sampled_from([b'{"tags":', b'{"token":', b'{"errors":', b'{"manifests":']), _deep).map(
        lambda t: t[0] + b"[" * t[1] + b"]" * t[1] + b"}"
    ),
)
statuses = st.sampled_from([200, 201, 206, 307, 400, 401, 403, 404, 429, 500])
encodings = st.sampled_from([None, "gzip", "deflate", "br", "identity"])
locations = st.one_of(
    st.just("/elsewhere"),
    st.sampled_from(["ftp://x/y", "http://[::1", "//", "https://other.test/blob", "http://a:99999/"]),
    st.text(alphabet=st.characters(codec="latin-1"), max_size=30),
)


def _client(answer: Any) -> RegistryClient:
    keychain = Keychain([ExplicitSource(Credentials(username="u", password="p"))])
    return RegistryClient(
        keychain=keychain,
        config=_Config(),  # type: ignore[arg-type]
        transport=httpx.MockTransport(answer),
        retry=RetryPolicy(max_attempts=1),
    )


def _respond(status: int, body: bytes, encoding: str | None, location: str = "/elsewhere") -> httpx.Response:
    headers: dict[str, str | bytes] = {"Content-Type": "application/json"}
    if encoding:
        headers["Content-Encoding"] = encoding
    if status in (301, 302, 307):
        headers["Location"] = location.encode("latin-1")  # as raw header bytes arrive
    return httpx.Response(status, headers=headers, stream=httpx.ByteStream(body))  # unread, as on the wire


CALLS = {
    "manifest": lambda c, ref: c.get_manifest(ref),
    "head": lambda c, ref: c.head_manifest(ref),
    "tags": lambda c, ref: c.list_tags(ref),
    "blob": lambda c, ref: c.fetch_blob(ref, "sha256:" + "0" * 64, io.BytesIO(), size=10),
}


@pytest.mark.parametrize("call", CALLS)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(status=statuses, body=bodies, encoding=encodings, location=locations)
def test_any_registry_answer_is_an_xplane_error_or_a_result(
    call: str, status: int, body: bytes, encoding: str | None, location: str
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/":
            return httpx.Response(200)
        return _respond(status, body, encoding, location)

    with _client(answer) as client, contextlib.suppress(XplaneError):  # anything else fails the test
        CALLS[call](client, Reference.parse("reg.test/org/pkg:v1"))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(status=statuses, body=bodies, encoding=encodings)
def test_any_token_answer_is_an_xplane_error_or_a_token(
    status: int, body: bytes, encoding: str | None
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/":
            challenge = 'Bearer realm="https://auth.reg.test/token",service="reg.test"'
            return httpx.Response(401, headers={"WWW-Authenticate": challenge})
        if request.url.path == "/token":
            return _respond(status, body, encoding)
        return httpx.Response(200, content=b"{}", headers={"Content-Type": "application/json"})

    with _client(answer) as client, contextlib.suppress(XplaneError):  # anything else fails the test
        client.get_manifest(Reference.parse("reg.test/org/pkg:v1"))
