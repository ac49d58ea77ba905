"""The ``xfn`` console script: ``xfn`` / ``xfn serve`` runs the function runner, ``xfn run`` runs one
request through a local function, ``xfn call`` sends one to a running runner (or any function server).

Flags take environment overrides and the environment wins (see ``xplane.fn.settings``). Heavy
imports (grpc, protobuf) happen inside the commands so ``xfn --help`` stays fast and the runner's
idle memory stays small.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from xplane._version import __version__

_HELP = {"-h", "--help", "--version"}


class DefaultServeGroup(click.Group):
    """A group where a missing subcommand means ``serve`` (``xfn --insecure`` = ``xfn serve --insecure``)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in _HELP):
            args = ["serve", *args]
        return super().parse_args(ctx, args)


@click.command("serve")
@click.option(
    "--log-level", default=None, metavar="LEVEL", help="DEBUG, INFO, WARN or ERROR [env LOG_LEVEL; info]."
)
@click.option(
    "--listen-addr",
    default=None,
    metavar="HOST:PORT",
    help="HTTP address for /health, /ready, /metrics, /functions [env LISTEN_ADDR; 0.0.0.0:8080].",
)
@click.option(
    "--functions-dir",
    default=None,
    metavar="DIR",
    help="Directory of functions (or the mounted Secret) [env FUNCTIONS_DIR; /functions].",
)
@click.option(
    "-d",
    "--debug",
    is_flag=True,
    default=None,
    help="Readable console logs with request/response summaries [env DEBUG_MODE].",
)
@click.option("--grpc-addr", default=None, metavar="HOST:PORT", help="gRPC address [0.0.0.0:9443].")
@click.option(
    "--tls-certs-dir",
    default=None,
    metavar="DIR",
    help="Directory with tls.crt, tls.key, ca.crt for mTLS [env TLS_SERVER_CERTS_DIR].",
)
@click.option(
    "--insecure", is_flag=True, default=None, help="Serve gRPC without TLS (wins over TLS settings)."
)
@click.option(
    "--max-message-size",
    default=None,
    metavar="SIZE",
    help="Largest gRPC/HTTP message in either direction, e.g. 16MiB [64MiB].",
)
@click.option(
    "--function-ports",
    default=None,
    metavar="NAME=PORT,...",
    help="Give functions their own gRPC port (a Service targetPort routes to one function).",
)
@click.option(
    "--reload-interval",
    default=None,
    metavar="SECONDS",
    help="How often to look for changed functions; 0 turns reloading off [2].",
)
@click.option(
    "--event-loop",
    default=None,
    type=click.Choice(["auto", "uvloop", "asyncio"], case_sensitive=False),
    help="asyncio event loop: uvloop is ~4% less CPU per call [env EVENT_LOOP; auto = uvloop if installed].",
)
@click.option(
    "--http-run",
    default=None,
    type=click.Choice(["loopback", "any", "off"], case_sensitive=False),
    help="Who may POST /functions/NAME:run (no authentication) [env HTTP_RUN; loopback].",
)
@click.option(
    "--http-max-body", default=None, metavar="SIZE", help="Largest :run body [env HTTP_MAX_BODY; 8MiB]."
)
@click.option(
    "--http-max-json-values",
    default=None,
    metavar="N",
    help="Most JSON values in a :run body [env HTTP_MAX_JSON_VALUES; 1000000].",
)
@click.option(
    "--http-max-concurrent-runs",
    default=None,
    metavar="N",
    help=":run calls served at once; more wait [env HTTP_MAX_CONCURRENT_RUNS; 2].",
)
def serve(**flags: Any) -> None:
    """Serve composition functions over gRPC (Crossplane's FunctionRunnerService v1 and v1beta1).

    Environment: FUNCTION_LOAD_MODE (local, http, secret), FUNCTION_HTTP_URL, CROSSPLANE_TIMEOUT
    (default per-call deadline, 30s), CROSSPLANE_API_URL (reported by /ready only).
    """
    from xplane.fn import Settings, configure_logging
    from xplane.fn import serve as run_server

    settings = Settings.load(
        {k: (v or None) if isinstance(v, bool) else v for k, v in flags.items()}, os.environ
    )
    configure_logging(settings.log_level, debug=settings.debug)
    run_server(settings)


def _request_option(f: Any) -> Any:
    return click.option(
        "-r",
        "--request",
        "request_file",
        required=True,
        metavar="FILE",
        help="RunFunctionRequest as protobuf JSON or YAML ('-' reads stdin).",
    )(f)


def _output_option(f: Any) -> Any:
    return click.option(
        "-o", "--output", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True
    )(f)


@click.command("run")
@click.argument("name")
@_request_option
@click.option(
    "--functions-dir", default=None, metavar="DIR", help="Directory of functions [env FUNCTIONS_DIR; .]."
)
@_output_option
@click.option(
    "--timeout", default=None, metavar="SECONDS", help="Deadline for the call [env CROSSPLANE_TIMEOUT; 30]."
)
@click.option(
    "--log-level", default=None, metavar="LEVEL", help="DEBUG, INFO, WARN or ERROR [env LOG_LEVEL; warn]."
)
@click.option(
    "-d", "--debug", is_flag=True, help="Readable logs at DEBUG (also why other entries are skipped)."
)
def run(
    name: str,
    request_file: str,
    functions_dir: str | None,
    output: str,
    timeout: str | None,
    log_level: str | None,
    debug: bool,
) -> None:
    """Run one request through function NAME locally and print the response.

    Only NAME is loaded; other entries of the functions directory are not imported or run. Logs
    (the function's too) go to stderr. Exits 1 when the function answers with a FATAL result (the
    response is still printed) or fails to load, 3 when there is no function NAME.
    """
    import asyncio

    from xplane.fn import configure_logging, parse_duration, parse_log_level, run_request

    env_level = os.environ.get("LOG_LEVEL")
    level = parse_log_level(env_level or log_level or "warn", "LOG_LEVEL" if env_level else "--log-level")
    configure_logging(level, debug=debug)
    req = _load_request(request_file)
    env_dir = os.environ.get("FUNCTIONS_DIR")
    directory = Path(functions_dir or env_dir or ".")
    seconds = parse_duration(os.environ.get("CROSSPLANE_TIMEOUT") or timeout or 30, "--timeout")
    rsp = asyncio.run(run_request(directory, name, req, timeout=seconds))
    _print_response(rsp, output)
    _check_fatal(name, rsp)


@click.command("call")
@click.argument("target", metavar="TARGET")
@click.argument("name")
@_request_option
@_output_option
@click.option("--insecure", is_flag=True, help="Plaintext gRPC (a runner started with --insecure).")
@click.option(
    "--ca", "ca_file", default=None, metavar="FILE", help="CA certificate to verify the server with."
)
@click.option("--cert", "cert_file", default=None, metavar="FILE", help="Client certificate (mTLS).")
@click.option(
    "--key", "key_file", default=None, metavar="FILE", help="Client certificate's private key (mTLS)."
)
@click.option(
    "--server-name",
    default=None,
    metavar="NAME",
    help="Name the server certificate must have [TARGET's host].",
)
@click.option("--timeout", default="30", metavar="SECONDS", show_default=True, help="Deadline for the call.")
@click.option(
    "--wait",
    default="0",
    metavar="SECONDS",
    show_default=True,
    help="Keep trying this long while TARGET does not answer (a runner that is starting).",
)
@click.option(
    "--max-message-size", default="64MiB", metavar="SIZE", show_default=True, help="Largest message."
)
def call(
    target: str,
    name: str,
    request_file: str,
    output: str,
    insecure: bool,
    ca_file: str | None,
    cert_file: str | None,
    key_file: str | None,
    server_name: str | None,
    timeout: str,
    wait: str,
    max_message_size: str,
) -> None:
    """Send one request to function NAME served at TARGET (host:port) and print the response.

    The call is RunFunction over gRPC (v1, else v1beta1) with the metadata x-xplane-function: NAME,
    which picks NAME on a runner's main port when it serves several functions (on a function's own
    port every call goes to that function). Without --insecure the call uses TLS: --ca to verify the
    server, --cert and --key for mTLS (the runner requires a client certificate).

    Exits 1 when the function answers with a FATAL result (the response is still printed) or the
    call fails, 3 when TARGET has no function NAME, 5 on a TLS failure.
    """
    import asyncio

    # grpc's own INFO lines about each failed handshake; the error below says what happened.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    from xplane.fn import TLSOptions, parse_duration, parse_size

    if insecure and (ca_file or cert_file or key_file or server_name):
        raise click.UsageError(
            "--insecure is plaintext: it cannot be given with --ca, --cert, --key or --server-name"
        )
    if bool(cert_file) != bool(key_file):
        raise click.UsageError("--cert and --key go together (the client certificate and its key)")
    tls = TLSOptions(
        insecure=insecure,
        ca_file=Path(ca_file) if ca_file else None,
        cert_file=Path(cert_file) if cert_file else None,
        key_file=Path(key_file) if key_file else None,
        server_name=server_name,
    )
    req = _load_request(request_file)
    seconds = parse_duration(timeout, "--timeout")
    patience = parse_duration(wait, "--wait")
    limit = parse_size(max_message_size, "--max-message-size")
    rsp = asyncio.run(
        _call(target, name, req, tls=tls, timeout=seconds, wait=patience, max_message_size=limit)
    )
    _print_response(rsp, output)
    _check_fatal(name, rsp)


async def _call(
    target: str, name: str, req: Any, *, tls: Any, timeout: float, wait: float, max_message_size: int
) -> Any:
    """One RunFunction call; retried while TARGET is UNAVAILABLE (not up yet) for ``wait`` seconds."""
    import asyncio
    import time

    from xplane.fn import FUNCTION_METADATA_KEY, FunctionCallError, FunctionClient

    give_up = time.monotonic() + wait
    while True:
        # A fresh channel each try: a failed one waits out gRPC's reconnect backoff (1 s and up).
        client = FunctionClient(
            target, tls=tls, max_message_size=max_message_size, metadata=[(FUNCTION_METADATA_KEY, name)]
        )
        try:
            return await client.run(req, timeout=timeout)
        except FunctionCallError as e:
            if e.code != "UNAVAILABLE" or e.tls or time.monotonic() >= give_up:
                raise
        finally:
            await client.close()
        await asyncio.sleep(0.2)


def _load_request(request_file: str) -> Any:
    """The ``RunFunctionRequest`` in a YAML or protobuf-JSON file (``-``: stdin)."""
    from google.protobuf import json_format

    from xplane.errors import a_json_type
    from xplane.fn import RunnerConfigError, fnv1
    from xplane.xpkg import YAMLError, loads

    text = sys.stdin.read() if request_file == "-" else _read(request_file)
    hint = "write the request as protobuf JSON or YAML (fields like observed, desired)"
    try:
        # xplane's loader: located errors, bounded depth, and only what JSON can hold (no NaN)
        data = loads(text, file=None if request_file == "-" else request_file)
    except YAMLError as e:
        raise RunnerConfigError(
            f"{request_file} is not a RunFunctionRequest: {e.message}", hint=hint
        ) from None
    if data is not None and not isinstance(data, dict):
        raise RunnerConfigError(
            f"{request_file} is not a RunFunctionRequest: it is {a_json_type(data)}, not an object", hint=hint
        )
    try:
        return json_format.ParseDict(data or {}, fnv1.RunFunctionRequest())
    except (json_format.ParseError, TypeError) as e:
        raise RunnerConfigError(f"{request_file} is not a RunFunctionRequest: {e}", hint=hint) from None


def _check_fatal(name: str, rsp: Any) -> None:
    """Exit 1 (after the response was printed) when the function answered FATAL, saying so on stderr."""
    from xplane.fn import FatalResultError, fnv1

    fatal = [r.message for r in rsp.results if r.severity == fnv1.SEVERITY_FATAL]
    if fatal:
        raise FatalResultError(f"function {name!r} answered with a FATAL result: {fatal[0]}")


def _print_response(rsp: Any, output: str) -> None:
    from google.protobuf import json_format

    from xplane.cli.output import print_json, print_yaml

    out = _ints(json_format.MessageToDict(rsp, preserving_proto_field_name=False))
    (print_json if output == "json" else print_yaml)(out)


def _read(path: str) -> str:
    from xplane.fn import RunnerConfigError

    try:
        return Path(path).read_text()
    except OSError as e:
        raise RunnerConfigError(f"cannot read request file {path}: {e.strerror or e}") from None


def _ints(value: Any) -> Any:
    """protobuf Struct numbers are doubles; print integral ones as integers, as Go does."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    return value


@click.group(cls=DefaultServeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="xfn")
def cli() -> None:
    """xfn: serve Crossplane composition functions (Python, executables, Wasm, remote).

    Without a command, `xfn` runs `xfn serve`. `xfn run` runs one request through a local function;
    `xfn call` sends one to a running runner.
    """


cli.add_command(serve)
cli.add_command(run)
cli.add_command(call)


def main(args: list[str] | None = None) -> int:
    """Entry point of the ``xfn`` console script."""
    from xplane.cli.output import run_cli

    return run_cli(cli, args, prog_name="xfn")


if __name__ == "__main__":
    sys.exit(main())
