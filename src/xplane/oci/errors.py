"""Errors raised by the registry client, the credential chain and the image cache.

Each message names the registry, the repository and (where there was one) the HTTP status, and
says what to try. None ever contains a password, token or ``Authorization`` header.
"""

from __future__ import annotations

from xplane.errors import XplaneError

EXIT_NOT_FOUND = 3
EXIT_AUTH = 4
EXIT_TLS = 5


class OCIError(XplaneError):
    """Base class of the errors in ``xplane.oci``."""


class InvalidReferenceError(OCIError):
    """A string is not a valid image reference (or digest)."""

    exit_code = 2


class RegistryError(OCIError):
    """A registry answered with an error, or could not be reached."""

    def __init__(
        self,
        message: str,
        *,
        registry: str,
        repository: str | None = None,
        status: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.registry = registry
        self.repository = repository
        self.status = status


class RegistryUnavailableError(RegistryError):
    """Connection refused, reset or timed out, after the bounded retries."""


class AuthenticationError(RegistryError):
    """HTTP 401: no credentials, or the registry refused them."""

    exit_code = EXIT_AUTH


class AuthorizationError(RegistryError):
    """HTTP 403: the credentials are valid but may not do this."""

    exit_code = EXIT_AUTH


class NotFoundError(RegistryError):
    """HTTP 404: the repository, tag, manifest or blob does not exist."""

    exit_code = EXIT_NOT_FOUND


class BlockedRegistryError(RegistryError):
    """registries.conf blocks the registry (``blocked = true``): xplane refuses to pull from or push to it."""

    exit_code = EXIT_AUTH


class PullTimeoutError(RegistryError):
    """A pull did not finish within its deadline (``--pull-timeout`` / ``pullTimeout``), retries included."""


class TransferTooSlowError(RegistryUnavailableError):
    """A response arrived more slowly than the minimum transfer rate (``minTransferRate``)."""


class ResponseTooLargeError(RegistryError):
    """A registry or token server sent a response larger than xplane accepts for it."""


class TLSError(RegistryError):
    """The TLS handshake failed (unknown CA, wrong host name, plain HTTP on a TLS port...)."""

    exit_code = EXIT_TLS


class DigestMismatchError(OCIError):
    """Content did not hash to the digest it was fetched or stored under. Nothing was kept."""


class BlobSizeError(DigestMismatchError):
    """A registry sent more (or fewer) bytes for a blob than its descriptor says. Nothing was kept."""


class ManifestError(OCIError):
    """A manifest or index is malformed, of an unknown media type, or has no matching platform."""


class InvalidJSONError(ManifestError, ValueError):
    """A JSON document (from a registry, an archive or the cache) is not valid or is nested too deep.

    Also a :class:`ValueError`, so code that treated ``json.loads`` failures as "not JSON" still does.
    """


class CacheMissError(OCIError):
    """The image is not in the cache and the pull policy forbids contacting the registry."""

    exit_code = EXIT_NOT_FOUND


class ArchiveError(OCIError):
    """A tarball, OCI layout or OCI archive is malformed or unsafe (path traversal, links, size)."""


class CredentialsError(OCIError):
    """A credential source (auth file, credential helper, pull secret) is malformed or failed."""

    exit_code = EXIT_AUTH


class ConfigError(OCIError):
    """xplane's config file, a registries.conf or a certs.d directory is malformed."""
