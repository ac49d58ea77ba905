#!/usr/bin/env bash
# A throwaway OCI registry for the examples: Debian's docker-registry (installed by
# scripts/setup.sh) on 127.0.0.1:5050, plain HTTP, no auth, storage under examples/.registry/.
#   ./registry.sh start    start it in the background and wait until it answers
#   ./registry.sh stop     stop it and delete what was pushed
# Port 5050, not 5000: Debian's docker-registry service, when it runs, already listens on :5000.
set -euo pipefail
cd "$(dirname "$0")"
ADDR=127.0.0.1:5050
DIR=.registry
PIDFILE=$DIR/registry.pid

running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

case "${1:-}" in
start)
  if running; then echo "registry: already running on $ADDR"; exit 0; fi
  command -v docker-registry >/dev/null || { echo "registry: docker-registry is not installed (run ./scripts/setup.sh)" >&2; exit 1; }
  mkdir -p "$DIR/storage"
  cat >"$DIR/config.yml" <<CFG
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $PWD/$DIR/storage}
  delete: {enabled: true}
http:
  addr: $ADDR
  secret: examples-only-not-a-secret
CFG
  docker-registry serve "$DIR/config.yml" >"$DIR/registry.log" 2>&1 &
  echo $! >"$PIDFILE"
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/${ADDR%:*}/${ADDR#*:}") 2>/dev/null; then echo "registry: serving on $ADDR"; exit 0; fi
    running || break
    sleep 0.05
  done
  echo "registry: did not start on $ADDR; its log:" >&2
  cat "$DIR/registry.log" >&2
  exit 1
  ;;
stop)
  if running; then kill "$(cat "$PIDFILE")"; fi
  rm -rf "$DIR"
  echo "registry: stopped"
  ;;
*)
  echo "usage: $0 start|stop" >&2
  exit 2
  ;;
esac
