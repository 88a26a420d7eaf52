#!/usr/bin/env bash
# Installs the real IC clients the client tests drive into target/clients: the `icp` CLI
# (npm @icp-sdk/icp-cli-linux-x64) and the JS agent (npm @icp-sdk/core), with node and npm
# from the machine or, when missing, from Debian's packages. Fails (exit 1) when a package
# cannot be installed, so that the caller can say loudly what it skips.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/target/clients"

if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
    echo "install-clients: node/npm missing: installing Debian's nodejs and npm" >&2
    as_root=()
    [ "$(id -u)" = 0 ] || as_root=(sudo -n)
    "${as_root[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq nodejs npm >/dev/null
fi

mkdir -p "$dir"
DO_NOT_TRACK=1 npm install --prefix "$dir" --no-audit --no-fund --loglevel=error \
    @icp-sdk/icp-cli-linux-x64@1.5.0 @icp-sdk/core@6.1.0 >&2
icp="$dir/node_modules/@icp-sdk/icp-cli-linux-x64/bin/icp"
DO_NOT_TRACK=1 "$icp" --version >&2
