#!/usr/bin/env bash
# Installs what monostack and its tests need on Debian 12 / Ubuntu, as root:
# the Debian packages (only those missing) and the Go modules. Go itself must
# be installed (1.26 or newer, at /usr/local/go or on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(python3-openstackclient python3-zunclient python3-swiftclient runc busybox-static iproute2 nftables e2fsprogs xfsprogs util-linux curl ca-certificates
  gcc libc6-dev) # the race detector (go test -race) needs cgo
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then echo "deps: run as root to install packages" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

export PATH=$PATH:/usr/local/go/bin
if ! command -v go >/dev/null; then
  echo "deps: Go is not installed; install Go 1.26 or newer (https://go.dev/dl) to /usr/local/go" >&2
  exit 1
fi
go mod download
