"""Remote functions: another gRPC function server, or an HTTP endpoint taking the request JSON in a POST.

Transport failures (refused, TLS, deadline, HTTP errors, garbage) become FATAL results naming the
address, so a pipeline stops with a clear message instead of the runner failing. An HTTP address is
named without its credentials (:func:`~xplane.fn.urls.redact_url`); ``user:password@`` in it is sent
as HTTP basic auth.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from pathlib import Path
from typing import Any

import httpx
from google.protobuf import json_format

from xplane.fn.base import Function, FunctionSpec, ensure_tag, fatal_response, trim
from xplane.fn.client import FunctionClient, TLSOptions
from xplane.fn.errors import FunctionCallError, FunctionLoadError
from xplane.fn.proto import fnv1, request_to_json, response_from_json
from xplane.fn.urls import redact_url, split_credentials


def _tls(opts: dict[str, Any]) -> TLSOptions:
    return TLSOptions(
        insecure=opts.get("insecure", False),
        ca_file=opts.get("ca_file"),
        cert_file=opts.get("cert_file"),
        key_file=opts.get("key_file"),
        server_name=opts.get("server_name"),
        insecure_skip_verify=opts.get("insecure_skip_verify", False),
    )


def http_ssl_context(tls: TLSOptions) -> ssl.SSLContext | bool:
    """An SSL context (or ``False`` for no verification) for an https endpoint."""
    if tls.insecure_skip_verify:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
    if tls.cert_file is not None and tls.key_file is not None:
        ctx.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    return ctx


class RemoteFunction(Function):
    """A function served elsewhere: ``remote.address`` is ``host:port`` (gRPC) or ``http(s)://...``."""

    def __init__(self, spec: FunctionSpec) -> None:
        super().__init__(spec)
        opts = dict(spec.options.get("remote") or {})
        if not opts.get("address"):
            raise FunctionLoadError(
                "kind remote needs remote.address", path=spec.path, field="remote.address"
            )
        self.address: str = opts["address"]
        #: The address as messages show it (no credentials, query or fragment).
        self.shown_address = redact_url(self.address)
        self.tls = _tls(opts)
        self.transport = "http" if self.address.startswith(("http://", "https://")) else "grpc"
        if spec.protocol and spec.protocol != self.transport:
            raise FunctionLoadError(
                f"protocol {spec.protocol} does not match address {self.shown_address}",
                path=spec.path,
                field="protocol",
            )
        for f in (self.tls.ca_file, self.tls.cert_file, self.tls.key_file):
            if f is not None and not Path(f).is_file():
                raise FunctionLoadError(f"TLS file {f} does not exist", path=spec.path, field="remote.tls")
        self.headers: dict[str, str] = opts.get("headers") or {}
        self._grpc: FunctionClient | None = None
        self._http: httpx.AsyncClient | None = None
        self._http_loop: asyncio.AbstractEventLoop | None = None
        if self.transport == "grpc":
            try:
                self._grpc = FunctionClient(
                    self.address,
                    tls=self.tls,
                    max_message_size=opts.get("max_message_size"),
                    metadata=[(k.lower(), v) for k, v in self.headers.items()],
                )
            except FunctionCallError as e:
                raise FunctionLoadError(e.message, path=spec.path, field="remote.tls", hint=e.hint) from e
        else:
            try:
                self._url, self._auth = split_credentials(self.address)
            except ValueError as e:
                raise FunctionLoadError(
                    f"remote.address {self.shown_address} is not a valid URL: {e}",
                    path=spec.path,
                    field="remote.address",
                ) from e
            try:
                self._verify = http_ssl_context(self.tls) if self.address.startswith("https://") else True
            except (OSError, ssl.SSLError) as e:
                raise FunctionLoadError(
                    f"cannot load TLS files: {e}", path=spec.path, field="remote.tls"
                ) from e

    async def run(self, req: fnv1.RunFunctionRequest, *, timeout: float) -> fnv1.RunFunctionResponse:
        """Forward the request; transport failures become FATAL results."""
        if self._grpc is not None:
            try:
                return ensure_tag(req, await self._grpc.run(req, timeout=timeout))
            except FunctionCallError as e:
                return fatal_response(req, f"remote function {self.name!r}: {e}")
        return await self._run_http(req, timeout)

    def _http_client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._http is None or self._http_loop is not loop:
            self._http = httpx.AsyncClient(verify=self._verify, headers=self.headers, auth=self._auth)
            self._http_loop = loop
        return self._http

    async def _run_http(self, req: fnv1.RunFunctionRequest, timeout: float) -> fnv1.RunFunctionResponse:
        client = self._http_client()
        try:
            r = await client.post(
                self._url,
                content=request_to_json(req),
                headers={"Content-Type": "application/json", "Accept": "application/json"},
                timeout=timeout,
            )
        except httpx.TimeoutException:
            return fatal_response(
                req,
                f"remote function {self.name!r} at {self.shown_address} did not answer within {timeout:g}s",
            )
        except httpx.HTTPError as e:
            return fatal_response(
                req, f"remote function {self.name!r} at {self.shown_address}: {type(e).__name__}: {e}"
            )
        if r.status_code != 200:
            return fatal_response(
                req,
                f"remote function {self.name!r} at {self.shown_address} answered HTTP {r.status_code}: {trim(r.text, 500)}",
            )
        try:
            rsp = response_from_json(r.content)
        except (ValueError, json_format.ParseError) as e:
            return fatal_response(
                req, f"remote function {self.name!r} at {self.shown_address} answered invalid JSON: {e}"
            )
        return ensure_tag(req, rsp)

    async def close(self) -> None:
        """Close channels and connection pools."""
        if self._grpc is not None:
            await self._grpc.close()
        if self._http is not None:
            http, self._http = self._http, None
            with contextlib.suppress(RuntimeError):
                await http.aclose()
