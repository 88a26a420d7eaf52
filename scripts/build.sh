#!/usr/bin/env bash
# Builds the canisters to gzipped Wasm in artifacts/<name>.wasm.gz at the workspace root.
#
#   scripts/build.sh            every artifact
#   scripts/build.sh NAME...    only these (e.g. `scripts/build.sh child_v1 probe`; dfx.json builds one each)
#
# Names: deployer, deployer_alternate_engine (an engine that decides differently, for the
# cross-version upgrade tests), child_v1, child_v2, child_v3, child_trap_post_upgrade, child_trap_pre_upgrade,
# child_hold_call, child_large, probe. Each is `cargo build --release --target wasm32-unknown-unknown`
# (child variants via `--no-default-features --features <variant>`), then packaged by scripts/package
# (Candid metadata, shrink, deterministic gzip), which fails unless the module's exports are the
# `.did`'s methods plus the lifecycle entry points its `.hidden` file lists.
#
# Installs the toolchain's wasm32 target first when it is missing (a toolchain installed from
# rust-toolchain.toml by an older rustup, or by hand, may lack it).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

readonly WASM_TARGET=wasm32-unknown-unknown
readonly ALL_NAMES=(deployer deployer_alternate_engine child_v1 child_v2 child_v3 child_trap_post_upgrade child_trap_pre_upgrade
    child_hold_call child_large probe)

if (($# > 0)); then
    names=("$@")
else
    names=("${ALL_NAMES[@]}")
fi

if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$WASM_TARGET"; then
    echo "build.sh: installing the $WASM_TARGET target of the pinned toolchain" >&2
    rustup target add "$WASM_TARGET"
fi

# Shared target dir (honours CARGO_TARGET_DIR and cargo config).
target_dir="$(cargo metadata --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
mkdir -p artifacts

# Paths of this machine stay out of the Wasm (panic locations name source files): the same
# commit then builds the same bytes in any checkout and cargo home, so a voter can rebuild a
# release and compare its hash. Only the wasm32 builds get the flags (`--target` keeps them off
# build scripts), so native builds are not invalidated.
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
wasm_rustflags="$(printf '%s\x1f' \
    "--remap-path-prefix=$cargo_home=/cargo" \
    "--remap-path-prefix=$target_dir=/target" \
    "--remap-path-prefix=$root=/workspace")"
wasm_rustflags="${wasm_rustflags%$'\x1f'}"

# The packager is a small native tool: the dev profile is enough (dependencies are optimized by
# [profile.dev.package."*"]). `--workspace` resolves its dependencies' features as the test
# command's `cargo test --workspace` does, which then reuses most of their build: with `-p` they were
# compiled twice (4 minutes of a fresh clone's CI on 2 cores).
cargo build --quiet --workspace --bin wasm-package
packager="$target_dir/debug/wasm-package"

# build_canister NAME CRATE DID HIDDEN [CARGO_FEATURE_ARGS...]
# Packages right after its own cargo build, before the next child variant overwrites <crate>.wasm.
build_canister() {
    local name="$1" crate="$2" did="$3" hidden="$4"
    shift 4
    CARGO_ENCODED_RUSTFLAGS="$wasm_rustflags" \
        cargo build --quiet --release --target "$WASM_TARGET" -p "$crate" "$@"
    "$packager" "$target_dir/$WASM_TARGET/release/$crate.wasm" "$did" "$hidden" "artifacts/$name.wasm.gz"
}

for name in "${names[@]}"; do
    case "$name" in
        deployer) build_canister deployer deployer candid/deployer.did candid/deployer.hidden ;;
        deployer_alternate_engine)
            build_canister "$name" deployer candid/deployer.did candid/deployer.hidden \
                --features alternate-dispatch-order
            ;;
        probe) build_canister probe probe fixtures/probe/probe.did fixtures/probe/probe.hidden ;;
        child_trap_pre_upgrade)
            build_canister "$name" child fixtures/child/child.did fixtures/child/child_trap_pre_upgrade.hidden \
                --no-default-features --features trap_pre_upgrade
            ;;
        child_v1 | child_v2 | child_v3 | child_trap_post_upgrade | child_hold_call | child_large)
            build_canister "$name" child fixtures/child/child.did fixtures/child/child.hidden \
                --no-default-features --features "${name#child_}"
            ;;
        *)
            echo "build.sh: unknown artifact '$name' (known: ${ALL_NAMES[*]})" >&2
            exit 2
            ;;
    esac
done

# One line per artifact; every artifact must be a distinct module (tests tell releases apart by module hash).
declare -A artifact_by_hash=()
for name in "${names[@]}"; do
    file="artifacts/$name.wasm.gz"
    hash="$(sha256sum "$file" | cut -d' ' -f1)"
    printf '%-42s %9d bytes  sha256 %s\n' "$file" "$(stat -c %s "$file")" "$hash"
    if [[ -n "${artifact_by_hash[$hash]:-}" && "${artifact_by_hash[$hash]}" != "$name" ]]; then
        echo "build.sh: $name and ${artifact_by_hash[$hash]} are the same module" >&2
        exit 1
    fi
    artifact_by_hash[$hash]="$name"
done
