"""A client for function servers: gRPC ``RunFunction`` over v1 with Crossplane's v1beta1 fallback.

TLS, mTLS or insecure; a configurable max message size (upstream's 4 MiB cap is a known pain, so the
default here is larger and the limit is named when a message exceeds it). Used by the remote kind and
by ``render``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from xplane.fn.errors import FunctionCallError
from xplane.fn.proto import fnv1, from_v1beta1_response, grpcv1, grpcv1beta1, to_v1beta1_request

#: Default send/receive limit (upstream gRPC defaults to 4 MiB receive).
DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024


@dataclass(frozen=True)
class TLSOptions:
    """How to secure a connection. ``insecure`` means plaintext; cert+key make it mTLS."""

    insecure: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    server_name: str | None = None
    insecure_skip_verify: bool = False


def _read(path: Path | None, what: str, target: str) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise FunctionCallError(f"cannot read TLS {what} {path}: {e.strerror or e}", target=target) from e


def normalize_target(address: str) -> str:
    """gRPC target for ``host:port``, ``grpc://host:port``, ``grpcs://...`` or ``unix:///path``."""
    for prefix in ("grpc://", "grpcs://", "dns://"):
        if address.startswith(prefix):
            return address[len(prefix) :]
    return address


#: Words of grpc's connection errors that mean the TLS handshake failed (grpcio 1.6x-1.8x).
_TLS_WORDS = ("handshake", "ssl", "certificate", "tsi_", "verification check")


def _looks_like_tls(details: str) -> bool:
    lowered = details.lower()
    return any(word in lowered for word in _TLS_WORDS)


class FunctionClient:
    """Calls one function server. Reuse it; ``close()`` when done. Safe for concurrent calls."""

    def __init__(
        self,
        address: str,
        *,
        tls: TLSOptions | None = None,
        max_message_size: int | None = None,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.address = address
        self.target = normalize_target(address)
        self.tls = tls or TLSOptions(insecure=True)
        self.max_message_size = max_message_size or DEFAULT_MAX_MESSAGE_SIZE
        self.metadata = tuple(metadata)
        if self.tls.insecure_skip_verify and not self.tls.insecure:
            raise FunctionCallError(
                "insecureSkipVerify is not supported for gRPC",
                target=address,
                hint="give the server's CA in caFile",
            )
        self._creds = None if self.tls.insecure else self._credentials()
        self._channel: grpc.aio.Channel | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._beta_only = False

    def _credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=_read(self.tls.ca_file, "CA file", self.address),
            private_key=_read(self.tls.key_file, "key file", self.address),
            certificate_chain=_read(self.tls.cert_file, "certificate file", self.address),
        )

    def _get_channel(self) -> grpc.aio.Channel:
        loop = asyncio.get_running_loop()
        if self._channel is None or self._loop is not loop:
            options: list[tuple[str, Any]] = [
                ("grpc.max_receive_message_length", self.max_message_size),
                ("grpc.max_send_message_length", self.max_message_size),
            ]
            if self.tls.server_name:
                options.append(("grpc.ssl_target_name_override", self.tls.server_name))
            if self._creds is None:
                self._channel = grpc.aio.insecure_channel(self.target, options=options)
            else:
                self._channel = grpc.aio.secure_channel(self.target, self._creds, options=options)
            self._loop = loop
        return self._channel

    async def run(self, req: fnv1.RunFunctionRequest, *, timeout: float) -> fnv1.RunFunctionResponse:
        """Call RunFunction (v1, then v1beta1 if the server answers UNIMPLEMENTED). Raises FunctionCallError."""
        channel = self._get_channel()
        size = req.ByteSize()
        if size > self.max_message_size:
            raise FunctionCallError(
                f"request is {size} bytes, over the max message size of {self.max_message_size} bytes",
                target=self.address,
                code="RESOURCE_EXHAUSTED",
                hint="raise maxMessageSize",
            )
        md = self.metadata or None
        if not self._beta_only:
            try:
                rsp: fnv1.RunFunctionResponse = await grpcv1.FunctionRunnerServiceStub(channel).RunFunction(
                    req, timeout=timeout, metadata=md
                )
                return rsp
            except grpc.aio.AioRpcError as e:
                if e.code() != grpc.StatusCode.UNIMPLEMENTED:
                    raise self._error(e, timeout) from None
                self._beta_only = True
        try:
            beta = await grpcv1beta1.FunctionRunnerServiceStub(channel).RunFunction(
                to_v1beta1_request(req), timeout=timeout, metadata=md
            )
        except grpc.aio.AioRpcError as e:
            raise self._error(e, timeout) from None
        return from_v1beta1_response(beta)

    def _error(self, e: grpc.aio.AioRpcError, timeout: float) -> FunctionCallError:
        code = e.code()
        details = e.details() or ""
        hint = None
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            details = f"no answer within {timeout:g}s"
        elif code == grpc.StatusCode.RESOURCE_EXHAUSTED:
            hint = f"the max message size is {self.max_message_size} bytes; raise maxMessageSize"
        elif code == grpc.StatusCode.UNAVAILABLE:
            hint = "is the server running, and do TLS settings match (insecure vs TLS, client certificate)?"
        unavailable = code == grpc.StatusCode.UNAVAILABLE
        tls = unavailable and _looks_like_tls(details)
        if tls:
            hint = (
                "the TLS handshake failed: plaintext against a TLS port, or the other way round? otherwise "
                "check the CA, the name the server certificate holds, and the client certificate"
            )
        elif unavailable and self._creds is not None and "socket closed" in details.lower():
            tls = True  # what a client gets when the server rejects its certificate, or the lack of one
            hint = (
                "the server closed the connection during the TLS handshake: it may require a client "
                "certificate (mTLS), or not trust the one given"
            )
        return FunctionCallError(
            f"RunFunction on {self.address} failed: {code.name}: {details}",
            target=self.address,
            code=code.name,
            hint=hint,
            tls=tls,
        )

    async def close(self) -> None:
        """Close the channel."""
        channel, self._channel = self._channel, None
        if channel is not None:
            with contextlib.suppress(RuntimeError):  # created on an event loop that is gone
                await channel.close()

    async def __aenter__(self) -> FunctionClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
