"""Errors of the composition engine."""

from __future__ import annotations

import json

from xplane.errors import XplaneError

EXIT_FATAL = 6


class ComposeError(XplaneError):
    """A render or pipeline failed (bad input, a function that could not be called, ...)."""


class PipelineFatalError(ComposeError):
    """A pipeline step returned a FATAL result: ``pipeline step %q returned a fatal result: %s``."""

    exit_code = EXIT_FATAL

    def __init__(self, step: str, message: str) -> None:
        super().__init__(f"pipeline step {q(step)} returned a fatal result: {message}")
        self.step = step
        self.result_message = message


def q(s: str) -> str:
    """Go's ``%q`` for the strings render's messages quote."""
    return json.dumps(s, ensure_ascii=False)
