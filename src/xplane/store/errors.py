"""Errors raised by the embedded object store, shaped like the Kubernetes API server's.

Messages follow what ``kubectl`` prints after ``Error from server (<reason>):`` so users read the
words they know (``configurations.pkg.crossplane.io "foo" not found``). ``reason`` carries that
Kubernetes ``StatusReason``. No message ever contains object data (spec, status, Secret ``data``):
only kinds, names, namespaces, field paths and resource versions.

Exit codes (docs/cli.md): not found is 3; a bad argument (an unknown resource type, a selector
that does not parse) is 2; everything else is 1.
"""

from __future__ import annotations

from xplane.errors import XplaneError

EXIT_USAGE = 2
EXIT_NOT_FOUND = 3


def _qualified(resource: str, name: str, namespace: str | None) -> str:
    del namespace  # kubectl names the namespace only in the command, never in the message
    return f'{resource} "{name}"'


class StoreError(XplaneError):
    """Base class of the errors in ``xplane.store``."""

    reason: str = "InternalError"


class NotFoundError(StoreError):
    """The object does not exist: ``configurations.pkg.crossplane.io "foo" not found``."""

    exit_code = EXIT_NOT_FOUND
    reason = "NotFound"

    def __init__(self, resource: str, name: str, namespace: str | None = None, *, hint: str | None = None):
        super().__init__(f"{_qualified(resource, name, namespace)} not found", hint=hint)
        self.resource = resource
        self.name = name
        self.namespace = namespace


class AlreadyExistsError(StoreError):
    """``create`` of a name that is taken: ``configurations.pkg.crossplane.io "foo" already exists``."""

    reason = "AlreadyExists"

    def __init__(self, resource: str, name: str, namespace: str | None = None, *, hint: str | None = None):
        super().__init__(f"{_qualified(resource, name, namespace)} already exists", hint=hint)
        self.resource = resource
        self.name = name
        self.namespace = namespace


class ConflictError(StoreError):
    """A write carried a stale ``resourceVersion`` (or a ``uid`` of an object since replaced).

    Read the object again, re-apply the change and retry; never retry with the same object.
    """

    reason = "Conflict"

    def __init__(
        self,
        resource: str,
        name: str,
        namespace: str | None = None,
        *,
        detail: str = "the object has been modified; please apply your changes to the latest version and try again",
        hint: str | None = None,
    ) -> None:
        super().__init__(
            f"Operation cannot be fulfilled on {_qualified(resource, name, namespace)}: {detail}", hint=hint
        )
        self.resource = resource
        self.name = name
        self.namespace = namespace


class InvalidError(StoreError):
    """An object the store refuses: ``Secret "x" is invalid: data[.dockerconfigjson]: Required value``.

    ``causes`` holds each ``field: problem`` separately. Values are quoted only for names and labels,
    never for data.
    """

    reason = "Invalid"

    def __init__(self, kind: str, name: str, causes: list[str], *, hint: str | None = None) -> None:
        joined = causes[0] if len(causes) == 1 else "[" + ", ".join(causes) + "]"
        subject = f'{kind} "{name}"' if name else kind
        super().__init__(f"{subject} is invalid: {joined}", hint=hint)
        self.kind = kind
        self.name = name
        self.causes = tuple(causes)


class BadRequestError(StoreError):
    """A request the store cannot act on as asked (a bad argument): exit code 2."""

    exit_code = EXIT_USAGE
    reason = "BadRequest"


class InvalidSelectorError(BadRequestError):
    """A label selector that does not parse (``-l 'a in ('``)."""


class UnknownKindError(StoreError):
    """No registered kind answers to a name, or to an ``apiVersion``/``kind`` pair (exit code 2).

    By name: ``the server doesn't have a resource type "foo"``. For an object: ``no matches for kind
    "Foo" in version "example.org/v1"`` with kubectl's hint to install the CRDs first.
    """

    exit_code = EXIT_USAGE
    reason = "NotFound"


class GoneError(StoreError):
    """A watch asked for changes older than the bounded change log keeps (Kubernetes' 410 Gone).

    The caller lists again and watches from the list's ``resource_version``.
    """

    reason = "Expired"

    def __init__(self, requested: int, oldest: int, *, message: str | None = None) -> None:
        super().__init__(
            message or f"too old resource version: {requested} ({oldest})",
            hint="list the objects again and watch from the list's resourceVersion",
        )
        self.requested = requested
        self.oldest = oldest


class SchemaVersionError(StoreError):
    """``state.db`` has a schema this xplane cannot read (written by a newer xplane). Nothing was changed."""

    def __init__(self, path: str, found: int, supported: int) -> None:
        super().__init__(
            f"{path} was written by a newer xplane (schema {found}); this xplane reads up to {supported}",
            hint="upgrade xplane, or point XPLANE_HOME (--home) at another directory",
        )
        self.path = path
        self.found = found
        self.supported = supported


class StoreCorruptError(StoreError):
    """The file at the state path is not an xplane state database, or SQLite reports it damaged.

    The file is left exactly as found.
    """


class StoreMissingError(StoreError):
    """``Store.open(..., create=False)`` found no state database: nothing was ever applied there."""

    exit_code = EXIT_NOT_FOUND


class StoreBusyError(StoreError):
    """Another process held the write lock longer than the busy timeout."""


__all__ = [
    "AlreadyExistsError",
    "BadRequestError",
    "ConflictError",
    "GoneError",
    "InvalidError",
    "InvalidSelectorError",
    "NotFoundError",
    "SchemaVersionError",
    "StoreBusyError",
    "StoreCorruptError",
    "StoreError",
    "StoreMissingError",
    "UnknownKindError",
]
