#!/usr/bin/env bash
# Prepare a fresh Debian machine for xplane development and its test suite:
#  - Debian packages the tests use as real peers: docker-registry (the registry under test), skopeo and
#    podman (interop), apache2-utils (htpasswd), openssl, bubblewrap (function sandbox),
#    gcc, clang + lld + wasi-libc + wabt (functions compiled by the tests), graphviz (xp tree --svg);
#  - a virtualenv in .venv with xplane and its dev/test dependencies, installed from requirements-dev.lock.
# Idempotent: re-running it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

DEB_REQUIRED=(docker-registry skopeo apache2-utils openssl bubblewrap gcc clang lld wasi-libc wabt graphviz)
DEB_OPTIONAL=(podman)

missing=()
for p in "${DEB_REQUIRED[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
for p in "${DEB_OPTIONAL[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "$p" \
    || echo "setup: optional package $p did not install; the tests that need it will be skipped" >&2
done

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# Every dependency, direct and transitive, at the version and hash the lock names (scripts/lock.sh
# refreshes it); then xplane itself, built by the locked backend, with nothing resolved on the side.
# --no-deps with --require-hashes: a pin missing from the lock is an error, not a silent download.
.venv/bin/python -m pip install -q --require-hashes --no-deps -r requirements-dev.lock
.venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
# A venv made by an older lock may hold packages the lock no longer names: remove them.
stale=$(.venv/bin/python - <<'PY'
import re
from importlib.metadata import distributions
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
locked = {norm(m[1]) for m in re.finditer(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", open("requirements-dev.lock").read(), re.M)}
keep = locked | {"pip", "setuptools", "xplane"}
print(" ".join(sorted({d.metadata["Name"] for d in distributions() if norm(d.metadata["Name"]) not in keep})))
PY
)
[ -z "$stale" ] || .venv/bin/python -m pip uninstall -q -y $stale
.venv/bin/python -m pip check
echo "setup: done. Run the tests with: .venv/bin/pytest"
