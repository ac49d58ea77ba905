"""The root of xplane's error hierarchy.

Every package raises subclasses of :class:`XplaneError` (see ``xplane.oci.errors`` and friends).
Messages say what happened, to which object, and what to try. They never carry secrets: credential
types redact themselves, so an error can format any object it holds.
"""

from __future__ import annotations


class XplaneError(Exception):
    """Base class of every error xplane raises on purpose.

    ``exit_code`` is what the CLI exits with when this error reaches it (see docs/cli.md).
    Code that catches an error on its way up adds context with :meth:`add_note` (PEP 678) rather
    than rewriting ``message``; ``str()`` shows the message, then each note, then the hint.
    """

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        lines = [self.message, *(f"  {note}" for note in getattr(self, "__notes__", ()))]
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


def json_type(value: object) -> str:
    """The JSON type of a decoded value as messages name it (OpenAPI's names): ``null``,
    ``boolean``, ``integer``, ``number``, ``string``, ``array`` or ``object``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    return "object"


def a_json_type(value: object) -> str:
    """:func:`json_type` with its article, for ``x is an array; want an object``: ``null`` has none."""
    name = json_type(value)
    return name if name == "null" else f"{'an' if name[0] in 'aio' else 'a'} {name}"
