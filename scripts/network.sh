#!/usr/bin/env bash
# Starts a local IC network (the simulator behind the IC's HTTP interface) with the deployer and
# its fixtures installed, in the foreground until interrupted. It prints the URL, the root key,
# the deployer's and the fixtures' ids and writes them to .local-network.json at the project
# root. Options go to the server (see `scripts/network.sh --help`), e.g.
#   scripts/network.sh --port 4943 --controller "$(icp identity principal)"
# In the background: `scripts/network.sh > network.log 2>&1 &`, then read .local-network.json
# once it exists; `kill <pid>` stops it and removes the file. Needs the canisters built
# (scripts/build.sh).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cargo build --quiet -p ic-local-network --bin local-network
exec "${CARGO_TARGET_DIR:-$root/target}/debug/local-network" "$@"
