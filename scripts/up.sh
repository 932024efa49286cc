#!/usr/bin/env bash
# Sets up and starts monostack: installs what it needs, builds the binary
# into /usr/local/bin, and runs `monostack up` in the foreground (Ctrl-C to
# stop). Arguments go to `monostack up`, e.g. --data-dir /tmp/ms.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
export PATH=$PATH:/usr/local/go/bin
CGO_ENABLED=0 go build -trimpath -ldflags "-X main.version=$(git describe --always --dirty 2>/dev/null || echo dev)" \
  -o /usr/local/bin/monostack ./cmd/monostack
exec /usr/local/bin/monostack up "$@"
