//! wasm64 canisters and enhanced orthogonal persistence, with actors compiled by the Motoko
//! compiler from npm (`fixtures/motoko/build.sh`; the modules are committed).
//!
//! Spec: IC interface specification, "Canister interface (System API)", "WebAssembly module
//! requirements" (`I ∈ {i32, i64}`: a module with a 64-bit memory imports the System API with
//! `i64` addresses and sizes; the legacy functions exist for `I = i32` only) and "Overview of
//! imports"; abstract behaviour, "IC Management Canister: Code upgrade" (`wasm_memory_persistence`
//! and the private custom section `enhanced-orthogonal-persistence`); resource limits (Wasm heap:
//! 4 GiB for wasm32, 6 GiB for wasm64).

mod replica_support;
use candid::{Decode, Encode, Nat};
use ic_management_canister_types::{
    CanisterInstallMode, InstallCodeArgs, UpgradeFlags, WasmMemoryPersistence,
};
use ic_sim::{InstallMode, RejectCode};
use replica_support::*;

const EOP_V1: &[u8] = include_bytes!("../../fixtures/motoko/counter-eop-v1.wasm");
const EOP_V2: &[u8] = include_bytes!("../../fixtures/motoko/counter-eop-v2.wasm");
const CLASSIC_V1: &[u8] = include_bytes!("../../fixtures/motoko/counter-classic-v1.wasm");
const CLASSIC_V2: &[u8] = include_bytes!("../../fixtures/motoko/counter-classic-v2.wasm");

fn no_args() -> Vec<u8> {
    Encode!().unwrap()
}

fn increment(sim: &mut ic_sim::Sim, canister: candid::Principal) -> Nat {
    let reply = sim
        .update_call(user(), canister, "increment", no_args())
        .expect("increment");
    Decode!(&reply, Nat).unwrap()
}

fn query_nat(sim: &mut ic_sim::Sim, canister: candid::Principal, method: &str) -> Nat {
    let reply = sim
        .query_call(user(), canister, method, no_args())
        .unwrap_or_else(|e| panic!("{method}: {e:?}"));
    Decode!(&reply, Nat).unwrap()
}

fn version_text(sim: &mut ic_sim::Sim, canister: candid::Principal) -> String {
    let reply = sim
        .query_call(user(), canister, "version", no_args())
        .expect("version");
    Decode!(&reply, String).unwrap()
}

/// `install_code` upgrade with `wasm_memory_persistence` as given (`None` = `null`).
fn upgrade_with(
    sim: &mut ic_sim::Sim,
    canister: candid::Principal,
    wasm: &[u8],
    persistence: Option<WasmMemoryPersistence>,
) -> Result<Vec<u8>, ic_sim::Reject> {
    let args = InstallCodeArgs {
        mode: CanisterInstallMode::Upgrade(Some(UpgradeFlags {
            skip_pre_upgrade: None,
            wasm_memory_persistence: persistence,
        })),
        canister_id: canister,
        wasm_module: wasm.to_vec(),
        arg: no_args(),
        sender_canister_version: None,
    };
    sim.update_call(
        user(),
        management(),
        "install_code",
        candid::encode_one(&args).unwrap(),
    )
}

fn is_wasm64(wasm: &[u8]) -> bool {
    wasmparser::Parser::new(0).parse_all(wasm).any(|payload| {
        matches!(payload, Ok(wasmparser::Payload::MemorySection(reader))
            if reader.clone().into_iter().any(|m| m.unwrap().memory64))
    })
}

#[test]
fn fixtures_are_what_the_motoko_compiler_made() {
    // The default (enhanced orthogonal persistence) output is wasm64 with the private section;
    // the classic output is wasm32 without it.
    assert!(is_wasm64(EOP_V1) && is_wasm64(EOP_V2));
    assert!(!is_wasm64(CLASSIC_V1) && !is_wasm64(CLASSIC_V2));
    let has_eop = |wasm: &[u8]| {
        wasmparser::Parser::new(0).parse_all(wasm).any(|p| {
            matches!(p, Ok(wasmparser::Payload::CustomSection(r))
                if r.name() == "icp:private enhanced-orthogonal-persistence")
        })
    };
    assert!(has_eop(EOP_V1) && !has_eop(CLASSIC_V1));
}

/// "WebAssembly module requirements": a wasm64 Motoko actor installs and runs; its state lives
/// in the 64-bit heap; `upgrade` with `wasm_memory_persistence = opt keep` keeps it, and the
/// upgrade hooks run.
#[test]
fn motoko_eop_wasm64_actor_runs_and_keeps_its_heap_across_an_upgrade_with_keep() {
    let mut sim = new_sim();
    let canister = install_on(&mut sim, 0, EOP_V1, no_args());
    assert_eq!(version_text(&mut sim, canister), "v1");
    for expected in 1..=3u32 {
        assert_eq!(increment(&mut sim, canister), Nat::from(expected));
    }
    assert_eq!(query_nat(&mut sim, canister, "get"), Nat::from(3u32));
    sim.install_code(
        user(),
        canister,
        EOP_V2,
        no_args(),
        InstallMode::Upgrade {
            skip_pre_upgrade: false,
            keep_wasm_memory: true,
        },
    )
    .expect("upgrade with keep");
    assert_eq!(version_text(&mut sim, canister), "v2");
    assert_eq!(query_nat(&mut sim, canister, "get"), Nat::from(3u32));
    assert_eq!(
        query_nat(&mut sim, canister, "upgradeCount"),
        Nat::from(1u32)
    );
    assert_eq!(increment(&mut sim, canister), Nat::from(4u32));
    assert!(sim
        .logs(canister)
        .iter()
        .any(|line| line.contains("counter postupgrade: count=3")));
}

/// Classic persistence (wasm32): stable variables go through stable memory, so an upgrade with
/// `replace` keeps them.
#[test]
fn motoko_classic_wasm32_actor_keeps_stable_variables_across_an_upgrade() {
    let mut sim = new_sim();
    let canister = install_on(&mut sim, 0, CLASSIC_V1, no_args());
    increment(&mut sim, canister);
    increment(&mut sim, canister);
    sim.install_code(
        user(),
        canister,
        CLASSIC_V2,
        no_args(),
        InstallMode::Upgrade {
            skip_pre_upgrade: false,
            keep_wasm_memory: false,
        },
    )
    .expect("classic upgrade");
    assert_eq!(version_text(&mut sim, canister), "v2");
    assert_eq!(query_nat(&mut sim, canister, "get"), Nat::from(2u32));
}

/// "Code upgrade": `opt keep` requires the new module to export the private section
/// `enhanced-orthogonal-persistence`; the replica refuses with `InvalidUpgradeOptionError`
/// (IC0504, CANISTER_ERROR) and the canister keeps its module and state.
#[test]
fn keep_into_a_module_without_the_eop_section_is_refused() {
    let mut sim = new_sim();
    let canister = install_on(&mut sim, 0, CLASSIC_V1, no_args());
    increment(&mut sim, canister);
    let reject = upgrade_with(
        &mut sim,
        canister,
        CLASSIC_V2,
        Some(WasmMemoryPersistence::Keep),
    )
    .expect_err("keep into a classic module");
    assert_eq!(reject.code, RejectCode::CanisterError);
    assert_eq!(reject.error_code.as_deref(), Some("IC0504"));
    assert_eq!(
        reject.message,
        "Invalid upgrade option: The `wasm_memory_persistence: opt Keep` upgrade option requires that the new canister module supports enhanced orthogonal persistence."
    );
    assert_eq!(version_text(&mut sim, canister), "v1");
    assert_eq!(query_nat(&mut sim, canister, "get"), Nat::from(1u32));
    // The same from an EOP canister into a classic module.
    let eop = install_on(&mut sim, 0, EOP_V1, no_args());
    let reject = upgrade_with(&mut sim, eop, CLASSIC_V2, Some(WasmMemoryPersistence::Keep))
        .expect_err("keep into a classic module");
    assert_eq!(reject.error_code.as_deref(), Some("IC0504"));
}

/// "Code upgrade": when the installed module exports `enhanced-orthogonal-persistence`, the
/// option must not be `null` (`MissingUpgradeOptionError`, IC0504); `opt replace` is allowed.
#[test]
fn upgrading_an_eop_canister_without_the_persistence_option_is_refused() {
    let mut sim = new_sim();
    let canister = install_on(&mut sim, 0, EOP_V1, no_args());
    increment(&mut sim, canister);
    let reject = upgrade_with(&mut sim, canister, EOP_V2, None).expect_err("null option refused");
    assert_eq!(reject.code, RejectCode::CanisterError);
    assert_eq!(reject.error_code.as_deref(), Some("IC0504"));
    assert_eq!(
        reject.message,
        "Missing upgrade option: Enhanced orthogonal persistence requires the `wasm_memory_persistence` upgrade option."
    );
    assert_eq!(version_text(&mut sim, canister), "v1");
    assert_eq!(query_nat(&mut sim, canister, "get"), Nat::from(1u32));
    // A classic canister may still be upgraded with the option left null.
    let classic = install_on(&mut sim, 0, CLASSIC_V1, no_args());
    upgrade_with(&mut sim, classic, CLASSIC_V2, None).expect("classic, null option");
    // And an EOP canister with `opt keep`.
    upgrade_with(
        &mut sim,
        canister,
        EOP_V2,
        Some(WasmMemoryPersistence::Keep),
    )
    .expect("keep");
    assert_eq!(query_nat(&mut sim, canister, "get"), Nat::from(1u32));
}
