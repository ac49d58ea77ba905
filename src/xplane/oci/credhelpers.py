"""Docker credential helpers: ``docker-credential-<name> get|store|erase`` over stdin/stdout.

The protocol (docker/docker-credential-helpers): ``get`` reads the server URL on stdin and prints
``{"ServerURL": ..., "Username": ..., "Secret": ...}``; a ``Username`` of ``<token>`` means the
secret is an identity token. ``store`` reads that JSON on stdin; ``erase`` reads the server URL.
"Not found" is exit status 1 with ``credentials not found`` on stdout. Errors name the helper and
never quote its stdout (which may hold the secret).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping

from xplane.oci.errors import CredentialsError
from xplane.oci.jsonbound import loads_bounded

HELPER_PREFIX = "docker-credential-"
HELPER_TIMEOUT = 30.0
TOKEN_USERNAME = "<token>"
_NOT_FOUND = "credentials not found"


def helper_binary(name: str, env: Mapping[str, str]) -> str:
    """The full path of ``docker-credential-<name>`` on ``env['PATH']``; CredentialsError if absent."""
    exe = HELPER_PREFIX + name
    path = shutil.which(exe, path=env.get("PATH", ""))
    if path is None:
        raise CredentialsError(
            f"credential helper {exe} is not installed (not found on PATH)",
            hint=f"install {exe}, or remove it from credHelpers/credsStore in your Docker config.json",
        )
    return path


def _run(name: str, action: str, data: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    exe = helper_binary(name, env)
    try:
        return subprocess.run(
            [exe, action],
            input=data,
            capture_output=True,
            text=True,
            timeout=HELPER_TIMEOUT,
            env=dict(env),
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise CredentialsError(
            f"credential helper {HELPER_PREFIX}{name} {action} did not answer within {HELPER_TIMEOUT:.0f}s"
        ) from None
    except OSError as e:
        raise CredentialsError(
            f"cannot run credential helper {HELPER_PREFIX}{name}: {e.strerror or e}"
        ) from None


def _failure(name: str, action: str, proc: subprocess.CompletedProcess[str]) -> CredentialsError:
    # stderr only, first line, capped: stdout may carry a secret.
    detail = (proc.stderr or "").strip().splitlines()
    why = f": {detail[0][:200]}" if detail else ""
    return CredentialsError(
        f"credential helper {HELPER_PREFIX}{name} {action} failed (exit status {proc.returncode}){why}",
        hint=f"run '{HELPER_PREFIX}{name} {action}' by hand to see what it needs",
    )


def helper_get(name: str, server_url: str, env: Mapping[str, str]) -> tuple[str, str] | None:
    """``(username, secret)`` from helper ``name`` for ``server_url``; None when it has none."""
    proc = _run(name, "get", server_url, env)
    if proc.returncode != 0:
        if _NOT_FOUND in (proc.stdout + proc.stderr).lower():
            return None
        raise _failure(name, "get", proc)
    try:
        doc = loads_bounded(proc.stdout, what=f"the output of {HELPER_PREFIX}{name} get")
    except ValueError:  # not JSON, or nested absurdly deep
        raise CredentialsError(
            f"credential helper {HELPER_PREFIX}{name} get printed something that is not a JSON object"
        ) from None
    if not isinstance(doc, dict):
        raise CredentialsError(
            f"credential helper {HELPER_PREFIX}{name} get printed JSON that is not an object"
        )
    username, secret = doc.get("Username"), doc.get("Secret")
    if not isinstance(username, str) or not isinstance(secret, str):
        raise CredentialsError(
            f"credential helper {HELPER_PREFIX}{name} get printed no string Username/Secret fields"
        )
    if not username and not secret:
        return None
    return username, secret


def helper_store(name: str, server_url: str, username: str, secret: str, env: Mapping[str, str]) -> None:
    """Save ``username``/``secret`` for ``server_url`` with helper ``name``."""
    data = json.dumps({"ServerURL": server_url, "Username": username, "Secret": secret})
    proc = _run(name, "store", data, env)
    if proc.returncode != 0:
        raise _failure(name, "store", proc)


def helper_erase(name: str, server_url: str, env: Mapping[str, str]) -> bool:
    """Remove ``server_url`` from helper ``name``; False when it held nothing for it."""
    proc = _run(name, "erase", server_url, env)
    if proc.returncode != 0:
        if _NOT_FOUND in (proc.stdout + proc.stderr).lower():
            return False
        raise _failure(name, "erase", proc)
    return True
