"""Registry credentials: one chain over explicit flags, pull secrets, Podman and Docker login files.

Order (first source with a match wins; see docs/registries.md)::

    explicit (--username/--password-stdin) > pull secrets > $REGISTRY_AUTH_FILE
    > $XDG_RUNTIME_DIR/containers/auth.json (else /run/containers/$UID/auth.json)
    > $XDG_CONFIG_HOME/containers/auth.json > $DOCKER_CONFIG/config.json (else ~/.docker/config.json)

Inside one file, as in containers/image: ``credHelpers[host]``, then ``auths`` keys from the longest
repository path down to the bare host (``host/a/b``, ``host/a``, ``host``; URL keys such as
``https://host/v1/`` count as the host), then ``credsStore``. Every environment lookup goes
through an ``env`` mapping so callers (and tests) control it. Secrets never reach a ``repr``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from xplane.oci.credhelpers import TOKEN_USERNAME, helper_erase, helper_get, helper_store
from xplane.oci.errors import CredentialsError
from xplane.oci.jsonbound import DEFAULT_MAX_DEPTH, json_depth

log = logging.getLogger(__name__)

DOCKER_HUB = "index.docker.io"
DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
DOCKERCONFIGJSON = "kubernetes.io/dockerconfigjson"
DOCKERCFG = "kubernetes.io/dockercfg"


@dataclass(frozen=True, repr=False)
class Credentials:
    """A username/password or token for one registry. ``repr``/``str`` never show a secret."""

    username: str | None = None
    password: str | None = None
    identity_token: str | None = None
    registry_token: str | None = None

    def __repr__(self) -> str:
        parts = [f"username={self.username!r}"]
        for name in ("password", "identity_token", "registry_token"):
            if getattr(self, name) is not None:
                parts.append(f"{name}=<redacted>")
        return f"Credentials({', '.join(parts)})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return format(repr(self), spec)

    @property
    def empty(self) -> bool:
        """True when this holds nothing usable."""
        return not (self.username or self.password or self.identity_token or self.registry_token)


@dataclass(frozen=True)
class CredentialMatch:
    """Credentials and where they came from (``source`` names a file/key, secret or helper)."""

    credentials: Credentials
    source: str
    given: bool = False
    """True for credentials given to this command (``--username``, ``xp registry login``), not found."""


# -- keys ---------------------------------------------------------------------------------------


def normalize_key(key: str) -> str:
    """An auth-file key in canonical form: ``host`` or ``host/repo/path``.

    URL keys (``https://host``, ``https://host/v1/``) become the bare host; Docker Hub aliases
    (``docker.io``, ``https://index.docker.io/v1/``...) become ``index.docker.io``.
    """
    k = key.strip()
    if "://" in k:
        k = k.split("://", 1)[1].split("/", 1)[0]
    k = k.strip("/")
    host, _, path = k.partition("/")
    host = host.lower()
    if host in _HUB_ALIASES:
        host = DOCKER_HUB
    return f"{host}/{path}" if path else host


def candidate_keys(registry: str, repository: str) -> list[str]:
    """Keys to try for ``registry/repository``, most specific first (``host/a/b``, ``host/a``, ``host``)."""
    host = normalize_key(registry)
    parts = [p for p in repository.split("/") if p] if repository else []
    keys = [f"{host}/{'/'.join(parts[:i])}" for i in range(len(parts), 0, -1)]
    keys.append(host)
    return keys


def login_key(target: str) -> str:
    """The key ``xp registry login TARGET`` writes (Docker Hub uses Docker's legacy URL key)."""
    k = normalize_key(target)
    return DOCKER_HUB_KEY if k == DOCKER_HUB else k


def _helper_server(host: str) -> str:
    return DOCKER_HUB_KEY if host == DOCKER_HUB else host


# -- parsing auth documents ---------------------------------------------------------------------


def _parse_entry(entry: Any, where: str, key: str) -> Credentials:
    if not isinstance(entry, dict):
        raise CredentialsError(f"{where}: auths[{key!r}] is not an object")
    username = entry.get("username") or None
    password = entry.get("password") or None
    auth = entry.get("auth")
    if auth:
        try:
            decoded = base64.b64decode(str(auth), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise CredentialsError(
                f"{where}: auths[{key!r}].auth is not base64 of 'username:password'"
            ) from None
        user, sep, pw = decoded.partition(":")
        if not sep:
            raise CredentialsError(f"{where}: auths[{key!r}].auth decodes to no 'username:password' pair")
        username, password = user or None, pw
    for name in ("username", "password", "identitytoken", "registrytoken"):
        value = entry.get(name)
        if value is not None and not isinstance(value, str):
            raise CredentialsError(f"{where}: auths[{key!r}].{name} is not a string")
    return Credentials(
        username=username,
        password=password,
        identity_token=entry.get("identitytoken") or None,
        registry_token=entry.get("registrytoken") or None,
    )


@dataclass(frozen=True)
class _AuthDoc:
    entries: Mapping[str, tuple[str, Credentials]]  # normalized key -> (key as written, credentials)
    cred_helpers: Mapping[str, str]  # normalized host -> helper name
    creds_store: str | None


def _parse_doc(doc: Any, where: str, *, legacy: bool = False) -> _AuthDoc:
    if not isinstance(doc, dict):
        raise CredentialsError(f"{where}: not a JSON object")
    auths = doc if legacy else doc.get("auths", {})
    if not isinstance(auths, dict):
        raise CredentialsError(f"{where}: 'auths' is not an object")
    entries: dict[str, tuple[str, Credentials]] = {}
    for key, entry in auths.items():
        creds = _parse_entry(entry, where, str(key))
        norm = normalize_key(str(key))
        # A key already in canonical form beats an alias (https://host, .../v1/) of the same host.
        if norm in entries and entries[norm][0] == norm:
            continue
        if not creds.empty or norm not in entries:
            entries[norm] = (str(key), creds)
    helpers: dict[str, str] = {}
    if not legacy:
        raw = doc.get("credHelpers", {})
        if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
            raise CredentialsError(f"{where}: 'credHelpers' must map registry hosts to helper names")
        helpers = {normalize_key(str(k)): v for k, v in raw.items()}
    store = None if legacy else doc.get("credsStore")
    if store is not None and not isinstance(store, str):
        raise CredentialsError(f"{where}: 'credsStore' must be a helper name")
    return _AuthDoc(entries, helpers, store or None)


def _lookup_entries(doc: _AuthDoc, registry: str, repository: str, where: str) -> CredentialMatch | None:
    for key in candidate_keys(registry, repository):
        hit = doc.entries.get(key)
        if hit is not None and not hit[1].empty:
            return CredentialMatch(hit[1], f"{where} (key {hit[0]})")
    return None


# -- sources ------------------------------------------------------------------------------------


class CredentialSource(Protocol):
    """One place credentials can come from; ``describe()`` is a path or name, never a secret."""

    def describe(self) -> str: ...

    def find(self, registry: str, repository: str) -> CredentialMatch | None: ...


class ExplicitSource:
    """Credentials given for this command (``--username`` + ``--password-stdin``): match every registry."""

    def __init__(self, credentials: Credentials, label: str = "--username/--password-stdin") -> None:
        self._credentials = credentials
        self.label = label

    def describe(self) -> str:
        """The flags the credentials came from."""
        return self.label

    def find(self, registry: str, repository: str) -> CredentialMatch | None:
        """The explicit credentials, for any registry."""
        return CredentialMatch(self._credentials, self.label, given=True)

    def __repr__(self) -> str:
        return f"ExplicitSource({self.label!r})"


class PullSecretSource:
    """A Kubernetes ``kubernetes.io/dockerconfigjson`` (or legacy ``dockercfg``) Secret object."""

    def __init__(self, secret: Mapping[str, Any]) -> None:
        meta = secret.get("metadata") or {}
        name = meta.get("name", "<unnamed>") if isinstance(meta, Mapping) else "<unnamed>"
        ns = meta.get("namespace") if isinstance(meta, Mapping) else None
        self.name = f"{ns}/{name}" if ns else str(name)
        where = f"pull secret {self.name}"
        kind = secret.get("type", DOCKERCONFIGJSON)
        if kind not in (DOCKERCONFIGJSON, DOCKERCFG):
            raise CredentialsError(
                f"{where} has type {kind!r}; only {DOCKERCONFIGJSON} and {DOCKERCFG} hold registry logins"
            )
        field = ".dockerconfigjson" if kind == DOCKERCONFIGJSON else ".dockercfg"
        text = self._payload(secret, field, where)
        _check_depth(text, f"{where}: {field}")
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise CredentialsError(f"{where}: {field} is not JSON (line {e.lineno}: {e.msg})") from None
        self._doc = _parse_doc(doc, where, legacy=kind == DOCKERCFG)
        self._where = where

    @staticmethod
    def _payload(secret: Mapping[str, Any], field: str, where: str) -> str:
        string_data = secret.get("stringData") or {}
        if isinstance(string_data, Mapping) and isinstance(string_data.get(field), str):
            return str(string_data[field])
        data = secret.get("data") or {}
        raw = data.get(field) if isinstance(data, Mapping) else None
        if not isinstance(raw, str):
            raise CredentialsError(f"{where} has no data[{field!r}] or stringData[{field!r}]")
        try:
            return base64.b64decode(raw, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise CredentialsError(f"{where}: data[{field!r}] is not valid base64") from None

    def describe(self) -> str:
        """``pull secret NAMESPACE/NAME``."""
        return self._where

    def find(self, registry: str, repository: str) -> CredentialMatch | None:
        """The most specific ``auths`` entry of the secret for ``registry/repository``."""
        return _lookup_entries(self._doc, registry, repository, self._where)

    def __repr__(self) -> str:
        return f"PullSecretSource({self.name!r})"


class AuthFileSource:
    """A Docker ``config.json`` or Podman ``auth.json``, read once, with credential helpers."""

    def __init__(self, path: Path, env: Mapping[str, str], *, note: str = "") -> None:
        self.path = path
        self.note = note
        self._env = env
        self._doc: _AuthDoc | None = None
        self._loaded = False
        # a push looks credentials up from several threads at once: one reads, the others wait
        self._lock = threading.Lock()
        self.helpers_used: list[str] = []

    def describe(self) -> str:
        """The file's path (with how it was chosen, and whether it exists)."""
        extra = f" ({self.note})" if self.note else ""
        return f"{self.path}{extra}" + ("" if self.path.is_file() else " [not found]")

    def _load(self) -> _AuthDoc | None:
        """The parsed file (None: absent, unreadable or empty), read once; a malformed file raises
        on every lookup, not just the first."""
        with self._lock:
            if not self._loaded:
                self._doc = self._read()
                self._loaded = True
            return self._doc

    def _read(self) -> _AuthDoc | None:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            raise CredentialsError(f"{self.path} is a directory, not an auth file") from None
        except PermissionError:
            log.warning("cannot read %s (permission denied); skipping it", self.path)
            return None
        if not text.strip():
            return None
        _check_depth(text, str(self.path))
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise CredentialsError(
                f"{self.path}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}",
                hint="fix or remove the file (podman/docker login rewrite it)",
            ) from None
        return _parse_doc(doc, str(self.path))

    def _helper(self, name: str, host: str, how: str) -> CredentialMatch | None:
        label = f"docker-credential-{name} ({how} in {self.path})"
        if label not in self.helpers_used:
            self.helpers_used.append(label)
        got = helper_get(name, _helper_server(host), self._env)
        if got is None:
            return None
        user, secret = got
        if user == TOKEN_USERNAME:
            return CredentialMatch(Credentials(identity_token=secret), label)
        return CredentialMatch(Credentials(username=user, password=secret), label)

    def find(self, registry: str, repository: str) -> CredentialMatch | None:
        """credHelpers for the host, then the most specific ``auths`` key, then credsStore."""
        doc = self._load()
        if doc is None:
            return None
        host = normalize_key(registry)
        helper = doc.cred_helpers.get(host)
        if helper:
            match = self._helper(helper, host, "credHelpers")
            if match is not None:
                return match
        match = _lookup_entries(doc, registry, repository, str(self.path))
        if match is None and doc.creds_store:
            match = self._helper(doc.creds_store, host, "credsStore")
        return match

    def __repr__(self) -> str:
        return f"AuthFileSource({str(self.path)!r})"


class Keychain:
    """An ordered chain of credential sources: the first one with a match wins."""

    def __init__(self, sources: Sequence[CredentialSource] = ()) -> None:
        self.sources = list(sources)

    def lookup(self, registry: str, repository: str) -> CredentialMatch | None:
        """Credentials for ``registry/repository``, or None for anonymous access."""
        for source in self.sources:
            match = source.find(registry, repository)
            if match is not None:
                return match
        return None

    @property
    def searched(self) -> list[str]:
        """Where the chain looks (files, secrets, helpers used so far): paths and names only."""
        out: list[str] = []
        for source in self.sources:
            out.append(source.describe())
            if isinstance(source, AuthFileSource):
                out.extend(source.helpers_used)
        return out

    def __repr__(self) -> str:
        return f"Keychain({self.sources!r})"


# -- the default chain --------------------------------------------------------------------------


def _home(env: Mapping[str, str]) -> Path | None:
    home = env.get("HOME")
    return Path(home) if home else None


def _config_home(env: Mapping[str, str]) -> Path | None:
    if env.get("XDG_CONFIG_HOME"):
        return Path(env["XDG_CONFIG_HOME"])
    home = _home(env)
    return home / ".config" if home else None


def docker_config_path(env: Mapping[str, str]) -> Path | None:
    """``$DOCKER_CONFIG/config.json``, else ``$HOME/.docker/config.json`` (None without either)."""
    if env.get("DOCKER_CONFIG"):
        return Path(env["DOCKER_CONFIG"]) / "config.json"
    home = _home(env)
    return home / ".docker" / "config.json" if home else None


def auth_file_paths(env: Mapping[str, str], *, system_root: Path = Path("/")) -> list[tuple[Path, str]]:
    """The login files the chain reads, in order, each with how it was chosen."""
    paths: list[tuple[Path, str]] = []
    if env.get("REGISTRY_AUTH_FILE"):
        paths.append((Path(env["REGISTRY_AUTH_FILE"]), "REGISTRY_AUTH_FILE"))
    if env.get("XDG_RUNTIME_DIR"):
        paths.append((Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json", "podman"))
    else:
        paths.append((system_root / "run" / "containers" / str(os.getuid()) / "auth.json", "podman"))
    config_home = _config_home(env)
    if config_home is not None:
        paths.append((config_home / "containers" / "auth.json", "podman"))
    docker = docker_config_path(env)
    if docker is not None:
        paths.append((docker, "docker"))
    seen: set[Path] = set()
    unique = []
    for path, note in paths:
        if path not in seen:
            seen.add(path)
            unique.append((path, note))
    return unique


def default_keychain(
    *,
    explicit: Credentials | None = None,
    pull_secrets: Sequence[Mapping[str, Any]] = (),
    env: Mapping[str, str] | None = None,
    system_root: Path = Path("/"),
) -> Keychain:
    """The standard chain (module docstring). ``env`` defaults to ``os.environ``; paths derived
    from ``HOME`` are used only when it is set. Malformed pull secrets raise CredentialsError now;
    malformed files raise on the first lookup that reads them."""
    env = os.environ if env is None else env
    sources: list[CredentialSource] = []
    if explicit is not None:
        sources.append(ExplicitSource(explicit))
    sources.extend(PullSecretSource(s) for s in pull_secrets)
    sources.extend(AuthFileSource(p, env, note=n) for p, n in auth_file_paths(env, system_root=system_root))
    return Keychain(sources)


# -- writing Docker's config.json (xp registry login/logout) ------------------------------------


def _read_json_object(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    if not text.strip():
        return {}
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise CredentialsError(
            f"{path}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}; not overwriting it",
            hint="fix the file by hand, or move it away and log in again",
        ) from None
    if not isinstance(doc, dict):
        raise CredentialsError(f"{path}: not a JSON object; not overwriting it")
    return doc


def write_private_json(path: Path, doc: Mapping[str, Any]) -> None:
    """Write ``doc`` to ``path`` atomically (temp file + rename), mode 0600, parent dir 0700 if new."""
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent="\t")
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _need_docker_config(env: Mapping[str, str]) -> Path:
    path = docker_config_path(env)
    if path is None:
        raise CredentialsError(
            "cannot tell where Docker's config.json lives: neither DOCKER_CONFIG nor HOME is set",
            hint="set DOCKER_CONFIG to a directory",
        )
    return path


def _helper_for(doc: Mapping[str, Any], host: str) -> str | None:
    helpers = doc.get("credHelpers")
    if isinstance(helpers, dict):
        for k, v in helpers.items():
            if normalize_key(str(k)) == host and isinstance(v, str) and v:
                return v
    store = doc.get("credsStore")
    return store if isinstance(store, str) and store else None


def store_login(target: str, credentials: Credentials, *, env: Mapping[str, str] | None = None) -> str:
    """Save a username/password login for ``target`` (``host`` or ``host/repo``) in Docker's config.json.

    Other keys and entries are kept. When the file names a credential helper for the host
    (``credHelpers``/``credsStore``), the secret goes to the helper, as ``docker login`` does.
    Returns where it was saved (a path or helper name).
    """
    env = os.environ if env is None else env
    if not credentials.username or credentials.password is None:
        raise CredentialsError("a login needs a username and a password")
    path = _need_docker_config(env)
    doc = _read_json_object(path)
    auths = doc.get("auths")
    if auths is None:
        auths = doc["auths"] = {}
    if not isinstance(auths, dict):
        raise CredentialsError(f"{path}: 'auths' is not an object; not overwriting it")
    key = login_key(target)
    norm = normalize_key(target)
    for old in [k for k in auths if normalize_key(str(k)) == norm]:
        del auths[old]
    helper = _helper_for(doc, norm.split("/", 1)[0]) if "/" not in norm else None
    if helper:
        helper_store(helper, key, credentials.username, credentials.password, env)
        auths[key] = {}
        where = f"docker-credential-{helper} (via {path})"
    else:
        token = base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode()
        auths[key] = {"auth": token}
        where = str(path)
    write_private_json(path, doc)
    return where


def remove_login(target: str, *, env: Mapping[str, str] | None = None) -> bool:
    """Remove the login for ``target`` from Docker's config.json (and its helper); False if none."""
    env = os.environ if env is None else env
    path = _need_docker_config(env)
    doc = _read_json_object(path)
    auths = doc.get("auths")
    norm = normalize_key(target)
    removed = False
    if isinstance(auths, dict):
        for old in [k for k in auths if normalize_key(str(k)) == norm]:
            del auths[old]
            removed = True
    helper = _helper_for(doc, norm) if "/" not in norm else None
    if helper and helper_erase(helper, _helper_server(norm), env):
        removed = True
    if removed:
        write_private_json(path, doc)
    return removed


def _check_depth(text: str, where: str) -> None:
    """Refuse JSON nested deeper than any auth file is (it would make ``json.loads`` recurse away)."""
    if json_depth(text, DEFAULT_MAX_DEPTH) > DEFAULT_MAX_DEPTH:
        raise CredentialsError(
            f"{where} is JSON nested deeper than {DEFAULT_MAX_DEPTH} levels",
            hint="fix or remove it (podman/docker login rewrite auth files)",
        )
