#!/usr/bin/env bash
# The demo: builds the canisters, then runs the deployer and a small fleet on the simulator and
# narrates what happens.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/build.sh >/dev/null
cargo run --quiet -p demo
