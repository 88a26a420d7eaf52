#!/usr/bin/env bash
# Every test: builds the canisters, runs all Rust tests (unit, simulator conformance, deployer
# scenarios on the real Wasm, the local network with ic-agent), the icp CLI and JS agent against
# the local network (installed from npm), the dashboard page in headless Chromium (Debian's
# package), checks the committed benchmark report, and checks that the PocketIC backend of the
# scenario interface compiles.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all -- --check
scripts/build.sh
# Without the pocket-ic feature: with it, the workspace's dependencies (wasmtime among them) get
# other features than the per-package commands below, which then compile them all again.
cargo test --workspace
# The real clients a user would use against the local network: the icp CLI and the JS agent.
if scripts/install-clients.sh; then
    clients="$PWD/target/clients"
    icp="$clients/node_modules/@icp-sdk/icp-cli-linux-x64/bin/icp"
    ICP_BIN="$icp" JS_AGENT_DIR="$clients" \
        cargo test -p ic-local-network --test icp_cli --test js_agent -- --ignored
    # `icp canister snapshot upload` takes the directory `deployer backup child` writes.
    ICP_BIN="$icp" cargo test -p deployer-cli --test backups -- --ignored
else
    echo "!!! SKIPPED: the icp CLI and JS agent tests (npm could not install them, see above) !!!" >&2
fi
# The dashboard page in a real browser, through the local network's gateway.
if chromium="$(scripts/install-chromium.sh)"; then
    CHROMIUM_BIN="$chromium" cargo test -p deployer-cli --test dashboard_page -- --ignored
else
    echo "!!! SKIPPED: the dashboard page test (Chromium could not be installed, see above) !!!" >&2
fi
cargo run --quiet -p bench -- --check
cargo check --quiet -p ic-sim --features pocket-ic
