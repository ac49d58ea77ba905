"""Errors raised while reading, checking and building Crossplane packages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from xplane.errors import XplaneError

if TYPE_CHECKING:
    from xplane.xpkg.lint import Finding


class PackageError(XplaneError):
    """Base class of the errors in ``xplane.xpkg``."""


class SemverError(PackageError):
    """A version or constraint does not parse. ``message`` is Masterminds v3.5's error text."""

    exit_code = 2


class MetaError(PackageError):
    """A ``meta.pkg.crossplane.io`` object (``crossplane.yaml``) is malformed."""


class UnknownKindError(PackageError):
    """A document's apiVersion/kind is not in the package object scheme."""


class LintError(PackageError):
    """A package failed lint. ``findings`` holds every located error (and warning) found."""

    def __init__(self, findings: Sequence[Finding], *, hint: str | None = None) -> None:
        self.findings = tuple(findings)
        errors = [f for f in self.findings if f.severity == "error"]
        shown = errors or list(self.findings)
        lines = [f"package failed lint with {len(errors)} error(s)"]
        explained: set[str] = set()
        for f in shown:  # upstream's message, located; then xplane's explanation, once per text
            lines.append(f"  {f}")
            if f.hint and f.hint not in explained:
                explained.add(f.hint)
                lines.append(f"    {f.hint}")
        super().__init__("\n".join(lines), hint=hint)


class YAMLError(PackageError):
    """YAML that does not parse, or a value Crossplane's decoder rejects; always located.

    ``line`` and ``column`` are 1-based. The message starts with ``file:line:column:``.
    """

    def __init__(
        self,
        problem: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.problem = problem
        self.file = file
        self.line = line
        self.column = column
        where = ":".join(str(p) for p in (file or "<input>", line, column) if p is not None)
        super().__init__(f"{where}: {problem}", hint=hint)
