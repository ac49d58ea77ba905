"""Errors of the function runtime: loading a function, finding one, and calling one remotely."""

from __future__ import annotations

from pathlib import Path

from xplane.errors import XplaneError


class FunctionError(XplaneError):
    """Root of the function runtime's errors."""


class FunctionLoadError(FunctionError):
    """A function could not be loaded: bad ``function.yaml``, missing entrypoint, import error, ...

    ``path`` is the file at fault and ``field`` the ``function.yaml`` field, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        where = ""
        if path is not None:
            where = str(path)
            if field:
                where += f" (field {field!r})"
            where += ": "
        super().__init__(f"{where}{message}", hint=hint)
        self.path = Path(path) if path is not None else None
        self.field = field


#: Exit codes of call failures by gRPC status (docs/cli.md); any other status exits 1.
CALL_EXIT_CODES = {"NOT_FOUND": 3, "UNAUTHENTICATED": 4, "PERMISSION_DENIED": 4}
#: Exit code of a TLS failure (handshake, unknown CA, plaintext on a TLS port).
TLS_EXIT_CODE = 5


class FunctionCallError(FunctionError):
    """Calling a remote function failed at the transport level (connection, TLS, gRPC status).

    ``code`` is the gRPC status name (``"UNAVAILABLE"``) or ``"HTTP <status>"`` when known; the CLI
    exits with :data:`CALL_EXIT_CODES` of it, or :data:`TLS_EXIT_CODE` when ``tls`` says the TLS
    handshake failed.
    """

    def __init__(
        self,
        message: str,
        *,
        target: str,
        code: str | None = None,
        hint: str | None = None,
        tls: bool = False,
    ) -> None:
        super().__init__(message, hint=hint)
        self.target = target
        self.code = code
        self.tls = tls
        self.exit_code = TLS_EXIT_CODE if tls else CALL_EXIT_CODES.get(code or "", 1)


class FunctionNotFoundError(FunctionError):
    """No loaded function matches a call (or ``xfn run``'s name); ``loaded`` lists those there are."""

    exit_code = 3

    def __init__(
        self, message: str, *, requested: str | None, loaded: list[str], hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.requested = requested
        self.loaded = loaded


class FatalResultError(FunctionError):
    """A function answered with a FATAL result (``xfn run``/``call`` print the response, then exit 1)."""
