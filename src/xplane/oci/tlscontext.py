"""TLS contexts for registry sessions: the one a host's settings ask for, and the deferred-trust
context of plain-HTTP sessions (used only when a registry redirects to ``https://``)."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from xplane.oci.transport import SettingsLike


class DeferredTrustContext(ssl.SSLContext):
    """The TLS context of a plain-HTTP session, verifying, with the system trust store loaded late.

    Such a session uses TLS only when the registry redirects to an ``https://`` URL (blob storage
    elsewhere). httpx would otherwise build a context with a CA bundle for every client, which
    costs ~15 ms of each plain-HTTP pull for a case that rarely happens; here the system store is
    loaded on the first TLS connection instead. Hostname checks and verification stay on.
    """

    _trust_lock = threading.Lock()
    _trust_loaded = False

    def __new__(
        cls, protocol: int = ssl.PROTOCOL_TLS_CLIENT, *args: Any, **kwargs: Any
    ) -> DeferredTrustContext:
        # PROTOCOL_TLS_CLIENT: certificate and hostname verification on (SSLContext()'s default is off)
        return super().__new__(cls, protocol, *args, **kwargs)

    def load_trust(self) -> None:
        """Load the system trust store once (done before the first TLS connection)."""
        with self._trust_lock:
            if not self._trust_loaded:
                self.load_default_certs(ssl.Purpose.SERVER_AUTH)
                self._trust_loaded = True

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        self.load_trust()
        return super().wrap_socket(*args, **kwargs)

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        self.load_trust()
        return super().wrap_bio(*args, **kwargs)


def make_ssl_context(
    settings: SettingsLike, factory: Callable[[SettingsLike], ssl.SSLContext] | None
) -> ssl.SSLContext:
    """The verifying context ``settings`` ask for (``factory`` replaces the default builder)."""
    if factory is None:
        from xplane.oci.settings import ssl_context_for

        ctx: ssl.SSLContext = ssl_context_for(cast(Any, settings))
        return ctx
    return factory(settings)
