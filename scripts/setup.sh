#!/usr/bin/env bash
# Prepare a fresh Debian machine for xplane development and its test suite:
#  - Debian packages the tests use as real peers: docker-registry (the registry under test), skopeo and
#    podman (interop), apache2-utils (htpasswd), openssl, bubblewrap (function sandbox),
#    gcc, clang + lld + wasi-libc + wabt (functions compiled by the tests);
#  - a virtualenv in .venv with xplane and its dev/test dependencies.
# Idempotent: re-running it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

DEB_REQUIRED=(docker-registry skopeo apache2-utils openssl bubblewrap gcc clang lld wasi-libc wabt)
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
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'
echo "setup: done. Run the tests with: .venv/bin/pytest"
