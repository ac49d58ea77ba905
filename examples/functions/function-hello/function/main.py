"""Serve function-hello with the SDK's own gRPC server, as function-template-python does.

xfn does not need this file; it lets the same code run where the SDK's runtime is expected.
"""

import click
from crossplane.function import logging, runtime

from .fn import FunctionRunner


@click.command()
@click.option("--debug", "-d", is_flag=True, help="Emit debug logs.")
@click.option("--address", default="0.0.0.0:9443", show_default=True, help="Address to listen on.")
@click.option("--tls-certs-dir", envvar="TLS_SERVER_CERTS_DIR", help="Serve using mTLS certificates.")
@click.option("--insecure", is_flag=True, help="Run without mTLS credentials.")
def cli(debug: bool, address: str, tls_certs_dir: str, insecure: bool) -> None:
    """A Crossplane composition function."""
    logging.configure(level=logging.Level.DEBUG if debug else logging.Level.INFO)
    runtime.serve(FunctionRunner(), address, creds=runtime.load_credentials(tls_certs_dir), insecure=insecure)


if __name__ == "__main__":
    cli()
