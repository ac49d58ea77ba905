"""The package manager's errors, and how an error becomes a one-line condition message."""

from __future__ import annotations

from xplane.errors import XplaneError


class PackageManagerError(XplaneError):
    """A package or revision could not be reconciled (the message goes into its condition)."""


class PullSecretError(PackageManagerError):
    """A ``packagePullSecrets`` or ImageConfig pull Secret is missing or unusable."""


class EstablishError(PackageManagerError):
    """A revision could not install or take control of an object (e.g. another package controls it)."""


class DependencyError(PackageManagerError):
    """The revision's dependencies are missing or incompatible (``missing dependencies: …``)."""


def describe(e: BaseException) -> str:
    """One line for a condition or event: the message, its notes, then the hint in parentheses."""
    if isinstance(e, XplaneError):
        parts = [e.message, *(str(n).strip() for n in getattr(e, "__notes__", ()))]
        text = "; ".join(p for p in parts if p)
        return f"{text} (hint: {e.hint})" if e.hint else text
    return str(e) or type(e).__name__
