"""Test PKI: a throw-away CA, a server cert for loopback, a client cert and a token-signing cert.

Everything is written as PEM files into one directory, plus a containers-style ``certs.d``
directory (``ca.crt``; ``client.cert`` + ``client.key``) that skopeo/podman take with
``--cert-dir``. Keys are ECDSA P-256 (fast to generate) except the token-signing key, which is
RSA 2048 because the registry's token auth was measured with RS256 (spec machine-tools §1d).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_HOSTS: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")

_PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class TLSCerts:
    """Paths of a generated test PKI (all PEM). ``certs_d`` is a skopeo/podman ``--cert-dir``."""

    directory: Path
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    token_cert: Path
    token_key: Path
    certs_d: Path
    hosts: tuple[str, ...]

    @property
    def ca_pem(self) -> bytes:
        """The CA certificate as PEM bytes."""
        return self.ca_cert.read_bytes()

    def client_context(self, *, with_client_cert: bool = False) -> ssl.SSLContext:
        """An ``ssl.SSLContext`` that trusts only the test CA (optionally presenting the client cert)."""
        ctx = ssl.create_default_context(cafile=str(self.ca_cert))
        if with_client_cert:
            ctx.load_cert_chain(str(self.client_cert), str(self.client_key))
        return ctx

    def certs_d_for(self, root: Path, host: str, *, with_client_cert: bool = True) -> Path:
        """Write ``root/<host>/`` in the containers ``certs.d`` layout and return that directory.

        ``root`` can then be used as containers' ``certs.d`` root (``/etc/containers/certs.d``
        equivalent) where directories are named ``host:port``.
        """
        d = root / host
        d.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.ca_cert, d / "ca.crt")
        if with_client_cert:
            shutil.copyfile(self.client_cert, d / "client.cert")
            shutil.copyfile(self.client_key, d / "client.key")
        return d


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _key_pem(key: _PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _write(path: Path, data: bytes, mode: int = 0o644) -> Path:
    path.write_bytes(data)
    path.chmod(mode)
    return path


def _san(hosts: Sequence[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for h in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            names.append(x509.DNSName(h))
    return x509.SubjectAlternativeName(names)


def _issue(
    *,
    subject_cn: str,
    key: _PrivateKey,
    ca_cert: x509.Certificate | None,
    ca_key: _PrivateKey,
    is_ca: bool = False,
    hosts: Sequence[str] = (),
    eku: Sequence[x509.ObjectIdentifier] = (),
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)])
    issuer = ca_cert.subject if ca_cert is not None else subject
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if is_ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        assert ca_cert is not None
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=isinstance(key, rsa.RSAPrivateKey),
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
    if hosts:
        builder = builder.add_extension(_san(hosts), critical=False)
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def _ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def make_test_certs(directory: Path, *, hosts: Sequence[str] = DEFAULT_HOSTS) -> TLSCerts:
    """Generate a CA plus server, client and token-signing certs under ``directory``.

    The server cert has SANs for ``hosts`` (default localhost, 127.0.0.1, ::1). Takes ~0.1 s.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = _ec_key()
    ca_cert = _issue(subject_cn="xplane Test CA", key=ca_key, ca_cert=None, ca_key=ca_key, is_ca=True)

    server_key = _ec_key()
    server_cert = _issue(
        subject_cn=hosts[0] if hosts else "localhost",
        key=server_key,
        ca_cert=ca_cert,
        ca_key=ca_key,
        hosts=hosts,
        eku=[ExtendedKeyUsageOID.SERVER_AUTH],
    )
    client_key = _ec_key()
    client_cert = _issue(
        subject_cn="xplane-test-client",
        key=client_key,
        ca_cert=ca_cert,
        ca_key=ca_key,
        eku=[ExtendedKeyUsageOID.CLIENT_AUTH],
    )
    token_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token_cert = _issue(subject_cn="xplane-test-token-signer", key=token_key, ca_cert=ca_cert, ca_key=ca_key)

    d = directory
    paths = {
        "ca_cert": _write(d / "ca.crt", _cert_pem(ca_cert)),
        "ca_key": _write(d / "ca.key", _key_pem(ca_key), 0o600),
        "server_cert": _write(d / "server.crt", _cert_pem(server_cert)),
        "server_key": _write(d / "server.key", _key_pem(server_key), 0o600),
        "client_cert": _write(d / "client.crt", _cert_pem(client_cert)),
        "client_key": _write(d / "client.key", _key_pem(client_key), 0o600),
        "token_cert": _write(d / "token.crt", _cert_pem(token_cert)),
        "token_key": _write(d / "token.key", _key_pem(token_key), 0o600),
    }
    certs_d = d / "certs.d"
    certs_d.mkdir(exist_ok=True)
    shutil.copyfile(paths["ca_cert"], certs_d / "ca.crt")
    shutil.copyfile(paths["client_cert"], certs_d / "client.cert")
    shutil.copyfile(paths["client_key"], certs_d / "client.key")
    return TLSCerts(directory=d, certs_d=certs_d, hosts=tuple(hosts), **paths)


def ca_only_dir(certs: TLSCerts, directory: Path) -> Path:
    """A ``--cert-dir`` holding only ``ca.crt`` (no client cert)."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(certs.ca_cert, directory / "ca.crt")
    return directory
