#!/usr/bin/env bash
# Every test: builds the canisters, runs all Rust tests (unit, simulator conformance, deployer
# scenarios on the real Wasm, the local network with ic-agent), the icp CLI and JS agent against
# the local network (installed from npm), the dashboard page in headless Chromium (Debian's
# package), checks the committed benchmark report (a test of the bench), and compiles the PocketIC
# backend of the scenario interface.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all -- --check
scripts/build.sh
# Every cargo command below builds the whole workspace with one feature set: a `-p PACKAGE` or
# `cargo run` resolves its dependencies' features apart and compiled them all again (6 minutes on
# 2 cores, each time). The pocket-ic feature compiles the scenario interface's PocketIC backend
# (used only when POCKET_IC_BIN is set), whose crate the simulator's tests already build.
# The bench's check is a test of the `bench` package (`bench/tests/report_is_current.rs`).
test_workspace=(cargo test --workspace --features ic-sim/pocket-ic)
"${test_workspace[@]}"
# The real clients a user would use against the local network: the icp CLI and the JS agent.
if scripts/install-clients.sh; then
    clients="$PWD/target/clients"
    icp="$clients/node_modules/@icp-sdk/icp-cli-linux-x64/bin/icp"
    ICP_BIN="$icp" JS_AGENT_DIR="$clients" \
        "${test_workspace[@]}" --test icp_cli --test js_agent -- --ignored
    # `icp canister snapshot upload` takes the directory `deployer backup child` writes.
    ICP_BIN="$icp" "${test_workspace[@]}" --test backups -- --ignored
else
    echo "!!! SKIPPED: the icp CLI and JS agent tests (npm could not install them, see above) !!!" >&2
fi
# The dashboard page in a real browser, through the local network's gateway.
if chromium="$(scripts/install-chromium.sh)"; then
    CHROMIUM_BIN="$chromium" "${test_workspace[@]}" --test dashboard_page -- --ignored
else
    echo "!!! SKIPPED: the dashboard page test (Chromium could not be installed, see above) !!!" >&2
fi
