#!/usr/bin/env bash
# Refresh the lock files from pyproject.toml's ranges. Run on purpose, then run the tests and commit:
#   ./scripts/lock.sh              keep every pin that still fits the ranges (adds and drops only)
#   ./scripts/lock.sh --upgrade    move every pin to the newest version the ranges allow
#   ./scripts/lock.sh --upgrade-package PyYAML   move one
#
# requirements-dev.lock: xplane's dependencies with the test and dev extras, plus the build backend
#   (so `pip install --no-build-isolation` builds xplane itself from hashed pins too). scripts/setup.sh
#   installs it with --require-hashes.
# requirements.lock: the runtime dependencies only, at the same versions as the dev lock (it is
#   constrained by it). deploy/Dockerfile installs it.
# requirements-build.lock: the build backend alone, likewise; deploy/Dockerfile builds the wheel with it.
# Both carry every wheel's hash for all platforms (--universal), for Python 3.11 and newer.
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-.venv/bin/uv}
[ -x "$UV" ] || UV=$(command -v uv) || { echo "lock: uv not found; run ./scripts/setup.sh first" >&2; exit 2; }

build_in=$(mktemp --suffix=.in)
trap 'rm -f "$build_in"' EXIT
# The build backend, as pyproject.toml's [build-system] names it (one source of truth).
.venv/bin/python - "$build_in" <<'PY'
import sys, tomllib
with open("pyproject.toml", "rb") as f:
    reqs = tomllib.load(f)["build-system"]["requires"]
open(sys.argv[1], "w").write("".join(r + "\n" for r in reqs))
PY

common=(--generate-hashes --universal --python-version 3.11 --quiet --custom-compile-command ./scripts/lock.sh "$@")
# pip's own site configuration (find-links, extra indexes) must not leak into the lock.
export UV_NO_CONFIG=1 PIP_FIND_LINKS= PIP_EXTRA_INDEX_URL=
"$UV" pip compile pyproject.toml "$build_in" --extra dev -o requirements-dev.lock "${common[@]}"
"$UV" pip compile pyproject.toml -c requirements-dev.lock -o requirements.lock "${common[@]}"
"$UV" pip compile "$build_in" -c requirements-dev.lock -o requirements-build.lock "${common[@]}"
# uv names the temporary input in its "via" notes; give it a stable name.
sed -i "s#${build_in}#pyproject.toml (build-system)#" requirements-dev.lock requirements-build.lock
echo "lock: wrote requirements-dev.lock, requirements.lock and requirements-build.lock"
