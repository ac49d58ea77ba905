"""The ``xfn`` console script: ``xfn`` / ``xfn serve`` runs the function runner, ``xfn run`` runs one request.

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
def serve(**flags: Any) -> None:
    """Serve composition functions over gRPC (Crossplane's FunctionRunnerService v1 and v1beta1).

    Environment: FUNCTION_LOAD_MODE (local, http, secret), FUNCTION_HTTP_URL, CROSSPLANE_TIMEOUT
    (default per-call deadline, 30s), CROSSPLANE_API_URL (reported by /ready only).
    """
    from xplane.fn import logs
    from xplane.fn.runner import serve as run_server
    from xplane.fn.settings import Settings

    settings = Settings.load(
        {k: (v or None) if isinstance(v, bool) else v for k, v in flags.items()}, os.environ
    )
    logs.configure(settings.log_level, debug=settings.debug)
    run_server(settings)


@click.command("run")
@click.argument("name")
@click.option(
    "-r",
    "--request",
    "request_file",
    required=True,
    metavar="FILE",
    help="RunFunctionRequest as protobuf JSON or YAML ('-' reads stdin).",
)
@click.option(
    "--functions-dir", default=None, metavar="DIR", help="Directory of functions [env FUNCTIONS_DIR; .]."
)
@click.option("-o", "--output", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True)
@click.option(
    "--timeout", default=None, metavar="SECONDS", help="Deadline for the call [env CROSSPLANE_TIMEOUT; 30]."
)
def run(name: str, request_file: str, functions_dir: str | None, output: str, timeout: str | None) -> None:
    """Run one request through function NAME locally and print the response.

    Exits 1 when the function answers with a FATAL result (the response is still printed).
    """
    import asyncio

    import yaml
    from google.protobuf import json_format

    from xplane.cli.output import print_json, print_yaml
    from xplane.fn.proto import fnv1
    from xplane.fn.runner import run_request
    from xplane.fn.settings import RunnerConfigError, parse_duration

    text = sys.stdin.read() if request_file == "-" else _read(request_file)
    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        req = json_format.ParseDict(data or {}, fnv1.RunFunctionRequest())
    except (yaml.YAMLError, json_format.ParseError, TypeError) as e:
        raise RunnerConfigError(
            f"{request_file} is not a RunFunctionRequest: {e}",
            hint="write the request as protobuf JSON or YAML (fields like observed, desired)",
        ) from None
    env_dir = os.environ.get("FUNCTIONS_DIR")
    directory = Path(functions_dir or env_dir or ".")
    seconds = parse_duration(os.environ.get("CROSSPLANE_TIMEOUT") or timeout or 30, "--timeout")
    rsp = asyncio.run(run_request(directory, name, req, timeout=seconds))
    out = _ints(json_format.MessageToDict(rsp, preserving_proto_field_name=False))
    (print_json if output == "json" else print_yaml)(out)
    if any(r.severity == fnv1.SEVERITY_FATAL for r in rsp.results):
        raise click.exceptions.Exit(1)


def _read(path: str) -> str:
    from xplane.fn.settings import RunnerConfigError

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

    Without a command, `xfn` runs `xfn serve`.
    """


cli.add_command(serve)
cli.add_command(run)


def main(args: list[str] | None = None) -> int:
    """Entry point of the ``xfn`` console script."""
    from xplane.cli.output import run_cli

    return run_cli(cli, args, prog_name="xfn")


if __name__ == "__main__":
    sys.exit(main())
