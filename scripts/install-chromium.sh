#!/usr/bin/env bash
# Prints the path of a Chromium for the browser tests: the machine's, or Debian's `chromium`
# package installed now. Fails (exit 1) when it cannot be installed, so that the caller can say
# loudly what it skips.
set -euo pipefail
for name in chromium chromium-browser; do
    if command -v "$name" >/dev/null; then
        command -v "$name"
        exit 0
    fi
done
echo "install-chromium: installing Debian's chromium" >&2
as_root=()
[ "$(id -u)" = 0 ] || as_root=(sudo -n)
"${as_root[@]}" apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq chromium >/dev/null
command -v chromium
