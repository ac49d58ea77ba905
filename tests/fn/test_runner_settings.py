"""Settings (env beats flag), structured logs with redaction, and the metrics format."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from tests.fn.runner_fixtures import scripted_discover, write_function, xr_request
from xplane.fn import logs
from xplane.fn.metrics import Metrics
from xplane.fn.router import Router, authority_label
from xplane.fn.settings import Address, RunnerConfigError, Settings
from xplane.fn.sources import LocalSource
from xplane.fn.table import FunctionTable

DEFAULTS = Settings()


def test_defaults_match_the_published_table() -> None:
    s = Settings.load({}, {})
    assert s.log_level == "INFO"
    assert str(s.listen_addr) == "0.0.0.0:8080"
    assert s.functions_dir == Path("/functions")
    assert s.debug is False
    assert s.load_mode == "local"
    assert s.timeout == 30.0
    assert str(s.grpc_addr) == "0.0.0.0:9443"
    assert s.insecure is False and s.tls_certs_dir is None
    assert s.max_message_size == 64 * 1024 * 1024
    assert s.event_loop == "auto"


def test_event_loop_choice_makes_real_loops(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    import uvloop

    from xplane.fn.runner import loop_factory

    assert loop_factory("asyncio") == (None, "asyncio")
    for choice in ("auto", "uvloop"):
        factory, name = loop_factory(choice)
        assert name == "uvloop" and factory is not None
        loop = factory()
        try:
            assert isinstance(loop, uvloop.Loop)
        finally:
            loop.close()
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as if it were not installed
    assert loop_factory("auto") == (None, "asyncio")
    with pytest.raises(RunnerConfigError, match="uvloop is not installed"):
        loop_factory("uvloop")


@pytest.mark.parametrize(
    ("setting", "flag_value", "env", "env_value", "expected"),
    [
        ("log_level", "error", "LOG_LEVEL", "WARN", "WARNING"),
        ("listen_addr", "127.0.0.1:1", "LISTEN_ADDR", ":9090", Address("0.0.0.0", 9090)),
        ("functions_dir", "/a", "FUNCTIONS_DIR", "/b", Path("/b")),
        ("debug", False, "DEBUG_MODE", "true", True),
        ("debug", True, "DEBUG_MODE", "false", False),
        ("tls_certs_dir", "/flag", "TLS_SERVER_CERTS_DIR", "/tls/server", Path("/tls/server")),
        ("event_loop", "uvloop", "EVENT_LOOP", "AsyncIO", "asyncio"),
    ],
)
def test_env_beats_flag(setting: str, flag_value: Any, env: str, env_value: str, expected: Any) -> None:
    assert getattr(Settings.load({setting: flag_value}, {env: env_value}), setting) == expected
    assert getattr(Settings.load({setting: flag_value}, {}), setting) != expected or flag_value == expected


@pytest.mark.parametrize(
    ("env", "value", "expected"),
    [
        ("FUNCTION_LOAD_MODE", "secret", ("load_mode", "secret")),
        ("CROSSPLANE_TIMEOUT", "45", ("timeout", 45.0)),
        ("CROSSPLANE_TIMEOUT", "1m30s", ("timeout", 90.0)),
        (
            "CROSSPLANE_API_URL",
            "https://kubernetes.default.svc",
            ("crossplane_api_url", "https://kubernetes.default.svc"),
        ),
    ],
)
def test_env_only_settings(env: str, value: str, expected: tuple[str, Any]) -> None:
    assert getattr(Settings.load({}, {env: value}), expected[0]) == expected[1]


@pytest.mark.parametrize(
    ("flags", "env", "needle"),
    [
        ({}, {"LOG_LEVEL": "loud"}, "LOG_LEVEL: 'loud' is not a log level"),
        ({}, {"FUNCTION_LOAD_MODE": "ftp"}, "FUNCTION_LOAD_MODE"),
        ({}, {"FUNCTION_LOAD_MODE": "http"}, "needs FUNCTION_HTTP_URL"),
        ({}, {"CROSSPLANE_TIMEOUT": "soon"}, "CROSSPLANE_TIMEOUT"),
        ({}, {"CROSSPLANE_TIMEOUT": "0"}, "greater than zero"),
        ({"grpc_addr": "nohost"}, {}, "--grpc-addr"),
        ({"grpc_addr": "0.0.0.0:70000"}, {}, "out of range"),
        ({"max_message_size": "lots"}, {}, "--max-message-size"),
        ({}, {"DEBUG_MODE": "maybe"}, "DEBUG_MODE"),
        ({"event_loop": "trio"}, {}, "--event-loop: 'trio' is not an event loop"),
    ],
)
def test_invalid_values_name_their_flag_or_variable(
    flags: dict[str, Any], env: dict[str, str], needle: str
) -> None:
    with pytest.raises(RunnerConfigError) as err:
        Settings.load(flags, env)
    assert needle in str(err.value)


def test_sizes_and_insecure_wins() -> None:
    assert Settings.load({"max_message_size": "16MiB"}, {}).max_message_size == 16 * 1024 * 1024
    assert Settings.load({"max_message_size": "4194304"}, {}).max_message_size == 4194304
    s = Settings.load({"insecure": True}, {"TLS_SERVER_CERTS_DIR": "/tls"})
    assert s.tls_enabled is False
    assert Settings.load({}, {"TLS_SERVER_CERTS_DIR": "/tls"}).tls_enabled is True


@pytest.mark.parametrize(
    ("authority", "label"),
    [
        ("function-foo.crossplane-system:9443", "function-foo"),
        ("foo", "foo"),
        ("dns:///bar.ns:9443", "bar"),
        ("127.0.0.1:9443", None),
        ("[::1]:9443", None),
        ("localhost:9443", None),
        ("", None),
    ],
)
def test_authority_label(authority: str, label: str | None) -> None:
    assert authority_label(authority) == label


def test_json_logs_and_debug_summaries_redact_credentials(tmp_path: Path) -> None:
    write_function(tmp_path, "f")
    stream = io.StringIO()
    logs.configure_logging("INFO", debug=False, stream=stream)
    try:
        logging.getLogger("xplane.test").info(
            "hello", extra={"fields": {"function": "f", "password": "hunter2"}}
        )
        line = json.loads(stream.getvalue().splitlines()[-1])
        assert line["msg"] == "hello" and line["level"] == "info" and line["function"] == "f"
        assert line["password"] == "<redacted>"

        logs.configure_logging("INFO", debug=True, stream=stream)
        req = xr_request("dbg")
        req.credentials["aws"].credential_data.data["key"] = b"TOPSECRET"
        req.observed.composite.connection_details["pw"] = b"ALSOSECRET"

        async def go() -> None:
            table = FunctionTable(LocalSource(tmp_path), discover=scripted_discover)
            await table.refresh()
            router = Router(table, Metrics(), debug=True)
            await router.run(table.functions["f"], req, transport="test")
            await table.close()

        asyncio.run(go())
        text = stream.getvalue()
        assert "TOPSECRET" not in text and "ALSOSECRET" not in text
        assert "request" in text and '"credentials": "<redacted>"' in text and "my-xr" in text
        assert "hello from f" in text  # the response summary
    finally:
        logging.getLogger().handlers.clear()


def test_metrics_render_is_prometheus_text() -> None:
    m = Metrics(buckets=(0.1, 1.0))
    m.observe_call('we"ird', "grpc-v1", 0.05)
    m.observe_call('we"ird', "grpc-v1", 5.0)
    text = m.render(loaded=["a"])
    assert 'xfn_function_duration_seconds_bucket{function="we\\"ird",le="0.1"} 1' in text
    assert 'xfn_function_duration_seconds_bucket{function="we\\"ird",le="+Inf"} 2' in text
    assert 'xfn_function_duration_seconds_sum{function="we\\"ird"} 5.05' in text
    for line in text.splitlines():
        assert line.startswith("#") or len(line.rsplit(" ", 1)) == 2
