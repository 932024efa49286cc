#!/usr/bin/env bash
# The test command: installs what the tests need, runs vet and the Go tests
# (unit, API and acceptance with gophercloud), then starts a real monostack on
# a temporary data dir and runs the book's walkthrough with the stock
# openstack CLI against it. Cleans up after itself.
#
#   SECTIONS="identity compute volume object containers"  walkthrough sections to run (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
scripts/deps.sh
export PATH=$PATH:/usr/local/go/bin

echo "== go vet"
go vet ./...
echo "== go test"
go test -count=1 -timeout 15m ./...
# The race detector on the packages where goroutines share the most (a
# minute here; the whole tree takes ten).
echo "== go test -race (store, object store, identity, api, bus, agent, lockmap)"
CGO_ENABLED=1 go test -race -count=1 -timeout 10m ./internal/store/ ./internal/objectstore/ ./internal/identity/ \
  ./internal/api/ ./internal/bus/ ./internal/agent/ ./internal/lockmap/

echo "== walkthrough with the stock openstack CLI"
tmp=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid"; wait "$pid" || true; fi
  # What the agent made on the host (bridges, namespaces, tables) outlives
  # the daemon by design; the test removes it.
  [ -x "$tmp/monostack" ] && "$tmp/monostack" purge --data-dir "$tmp/data" || true
  rm -rf "$tmp"
}
trap cleanup EXIT
CGO_ENABLED=0 go build -o "$tmp/monostack" ./cmd/monostack
port=${MONOSTACK_TEST_PORT:-18800}
"$tmp/monostack" up --data-dir "$tmp/data" --listen "127.0.0.1:$port" \
  --public-cidr 198.18.250.0/24 --private-cidr 198.18.251.0/24 >"$tmp/monostack.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/healthcheck" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { cat "$tmp/monostack.log"; echo "monostack exited"; exit 1; }
  sleep 0.1
done
set +u
# shellcheck disable=SC1091
source "$tmp/data/openrc.admin"
set -u
walkthrough=${WALKTHROUGH:-$root/../shared/acceptance/walkthrough.sh}
status=0
SECTIONS=${SECTIONS:-"identity compute volume object containers"} bash "$walkthrough" || status=$?
if [ $status -ne 0 ]; then echo "--- monostack log"; tail -n 50 "$tmp/monostack.log"; fi
exit $status
