"""Errors of the function runtime: loading a function, and calling one remotely."""

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


class FunctionCallError(FunctionError):
    """Calling a remote function failed at the transport level (connection, TLS, gRPC status).

    ``code`` is the gRPC status name (``"UNAVAILABLE"``) or ``"HTTP <status>"`` when known.
    """

    def __init__(
        self, message: str, *, target: str, code: str | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.target = target
        self.code = code
