#!/usr/bin/env bash
# Every test: builds the canisters, runs all Rust tests (unit, simulator conformance, deployer
# scenarios on the real Wasm), checks the committed benchmark report, and checks that the PocketIC
# backend of the scenario interface compiles.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all -- --check
scripts/build.sh
cargo test --workspace
cargo run --quiet -p bench -- --check
cargo check --quiet -p ic-sim --features pocket-ic
