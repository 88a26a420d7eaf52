//! A fleet of Motoko canisters nobody here wrote: actors compiled by the npm `motoko` compiler in
//! its default mode, enhanced orthogonal persistence (a wasm64 module with 64-bit `ic0`
//! signatures and the private section `enhanced-orthogonal-persistence`;
//! `fixtures/motoko/build.sh` made the committed modules), upgraded by the deployer in a staged
//! rollout with `wasm_memory_persistence = opt keep`, their heap state kept.
//! IC interface specification: "WebAssembly module requirements" (`I ∈ {i32, i64}`), "IC
//! Management Canister: Code upgrade" (`wasm_memory_persistence`, the EOP section), "IC method
//! `install_chunked_code`".

mod rollout_support;
mod support;

use candid::{Decode, Encode, Nat, Principal};
use deployer::{InstallOptions, RolloutPhase, Selector, WasmMemoryPersistence};
use ic_sim::{InstallMode, Sim};
use rollout_support::*;
use sha2::{Digest, Sha256};

const EOP_V1: &[u8] = include_bytes!("../../fixtures/motoko/counter-eop-v1.wasm");
const EOP_V2: &[u8] = include_bytes!("../../fixtures/motoko/counter-eop-v2.wasm");

fn no_args() -> Vec<u8> {
    Encode!().unwrap()
}

/// `count` Motoko counters on subnet 0, controlled by the admin and the deployer; child `i` is
/// incremented `i + 1` times.
fn motoko_children(fleet: &mut Fleet, count: usize) -> Vec<Principal> {
    let deployer = fleet.canister;
    (0..count)
        .map(|index| {
            let child = fleet.env.create_canister(0, vec![admin(), deployer]);
            fleet
                .env
                .install_code(admin(), child, EOP_V1, no_args(), InstallMode::Install)
                .expect("install the Motoko counter");
            for _ in 0..=index {
                fleet
                    .env
                    .update_call(admin(), child, "increment", no_args())
                    .expect("increment");
            }
            child
        })
        .collect()
}

fn query<T: candid::CandidType + for<'a> candid::Deserialize<'a>>(
    sim: &mut Sim,
    child: Principal,
    method: &str,
) -> T {
    let reply = sim
        .query_call(admin(), child, method, no_args())
        .unwrap_or_else(|e| panic!("{method}: {e:?}"));
    Decode!(&reply, T).unwrap()
}

fn keep() -> InstallOptions {
    InstallOptions {
        skip_pre_upgrade: false,
        wasm_memory_persistence: Some(WasmMemoryPersistence::Keep),
        arg: no_args(),
    }
}

#[test]
fn a_motoko_eop_fleet_is_upgraded_with_keep_and_keeps_its_state() {
    let mut fleet = fleet(1);
    let children = motoko_children(&mut fleet, 5);
    fleet.adopt_all(admin(), std::slice::from_ref(&children));
    let release = release(&mut fleet, EOP_V2, "2");
    let started = fleet
        .start_rollout_of(
            operator(),
            &release,
            Selector::All,
            deployer::PolicyArg {
                install: Some(keep()),
                ..policy(1, vec![], 2)
            },
        )
        .answer()
        .expect("start");
    let done = fleet.run_to_end(operator(), started.rollout_id, 1_000);

    assert_eq!(done.summary.phase, RolloutPhase::Completed);
    assert_eq!(done.summary.counts.upgraded, 5);
    let v2_hash: [u8; 32] = Sha256::digest(EOP_V2).into();
    for (index, &child) in children.iter().enumerate() {
        assert_eq!(query::<String>(&mut fleet.env, child, "version"), "v2");
        assert_eq!(
            query::<Nat>(&mut fleet.env, child, "get"),
            Nat::from(index + 1),
            "the heap-held counter survived the upgrade"
        );
        assert_eq!(
            query::<Nat>(&mut fleet.env, child, "upgradeCount"),
            Nat::from(1u8)
        );
        assert_eq!(
            fleet.env.canister(child).unwrap().module_hash,
            Some(v2_hash)
        );
        assert_eq!(
            fleet.effects_on(child),
            [
                "stop_canister",
                "take_canister_snapshot",
                INSTALL_METHOD,
                "start_canister"
            ]
        );
    }
}

/// Without the option the IC refuses every install into these children (`Missing upgrade
/// option`, IC0504): no child may end upgraded, and each keeps its module and counter (the
/// deployer either refuses the rollout up front or fails the children and leaves them on v1).
#[test]
fn a_motoko_eop_fleet_rolled_out_without_the_persistence_option_is_not_upgraded() {
    let mut fleet = fleet(1);
    let children = motoko_children(&mut fleet, 3);
    fleet.adopt_all(admin(), std::slice::from_ref(&children));
    let release = release(&mut fleet, EOP_V2, "2");
    let no_option = InstallOptions {
        wasm_memory_persistence: None,
        ..keep()
    };
    let started = fleet
        .start_rollout_of(
            operator(),
            &release,
            Selector::All,
            deployer::PolicyArg {
                install: Some(no_option),
                on_failure: Some(deployer::OnFailure::RollBack),
                ..policy(1, vec![], 3)
            },
        )
        .answer();
    if let Ok(started) = started {
        let id = started.rollout_id;
        let info = fleet.run_until(operator(), id, 1_000, |info| {
            info.summary.finished_at.is_some()
                || (matches!(info.summary.phase, RolloutPhase::Paused(_))
                    && info.summary.in_flight == 0
                    && info.summary.counts.awaiting_rollback == 0)
        });
        assert_eq!(info.summary.counts.upgraded, 0, "{:?}", info.summary);
        let refused = children.iter().any(|&child| {
            fleet
                .management_calls(child)
                .iter()
                .any(|(method, ok)| method == INSTALL_METHOD && !ok)
        });
        assert!(refused, "the management canister refused the installs");
    }
    let v1_hash: [u8; 32] = Sha256::digest(EOP_V1).into();
    for (index, &child) in children.iter().enumerate() {
        let view = fleet.env.canister(child).unwrap();
        assert_eq!(view.module_hash, Some(v1_hash));
        assert_eq!(view.status, ic_sim::CanisterRunStatus::Running, "{child}");
        assert_eq!(
            query::<Nat>(&mut fleet.env, child, "get"),
            Nat::from(index + 1)
        );
    }
}

const CLASSIC_V2: &[u8] = include_bytes!("../../fixtures/motoko/counter-classic-v2.wasm");

fn refusal<T: std::fmt::Debug>(result: Result<T, deployer::Error>) -> String {
    match result.expect_err("refused at planning").kind().clone() {
        deployer::ErrorKind::InvalidRolloutPlan { reason } => reason,
        other => panic!("expected InvalidRolloutPlan, got {other:?}"),
    }
}

/// The children run a release the deployer knows to have enhanced orthogonal persistence, so
/// a rollout without `wasm_memory_persistence` is refused at planning, before any child is
/// stopped, instead of by every child's install (IC0504 "Missing upgrade option").
#[test]
fn leaving_the_persistence_option_out_for_children_on_an_eop_release_is_refused_at_planning() {
    let mut fleet = fleet(1);
    let running = release(&mut fleet, EOP_V1, "1");
    let children = motoko_children(&mut fleet, 2);
    fleet.adopt_all(admin(), std::slice::from_ref(&children));
    let next = release(&mut fleet, EOP_V2, "2");
    assert_eq!(running.summary.enhanced_orthogonal_persistence, Some(true));
    assert_eq!(next.summary.enhanced_orthogonal_persistence, Some(true));

    let no_option = InstallOptions {
        wasm_memory_persistence: None,
        ..keep()
    };
    let reason = refusal(
        fleet
            .start_rollout_of(
                operator(),
                &next,
                Selector::All,
                deployer::PolicyArg {
                    install: Some(no_option),
                    ..policy(1, vec![], 2)
                },
            )
            .answer(),
    );
    assert!(
        reason.contains("enhanced orthogonal persistence") && reason.contains("choose Keep"),
        "{reason}"
    );
    for &child in &children {
        assert_eq!(fleet.effects_on(child), Vec::<String>::new(), "{child}");
    }
    // With the option the same rollout is accepted and completes.
    let started = fleet
        .start_rollout_of(
            operator(),
            &next,
            Selector::All,
            deployer::PolicyArg {
                install: Some(keep()),
                ..policy(1, vec![], 2)
            },
        )
        .answer()
        .expect("start with keep");
    let done = fleet.run_to_end(operator(), started.rollout_id, 1_000);
    assert_eq!(done.summary.counts.upgraded, 2);
}

/// `opt keep` into a module without the section (a classical-persistence Motoko build) is
/// refused at planning, where the IC would refuse every install ("Invalid upgrade option").
#[test]
fn keep_into_a_module_without_enhanced_orthogonal_persistence_is_refused_at_planning() {
    let mut fleet = fleet(1);
    let children = motoko_children(&mut fleet, 1);
    fleet.adopt_all(admin(), std::slice::from_ref(&children));
    let classic = release(&mut fleet, CLASSIC_V2, "classic-2");
    assert_eq!(classic.summary.enhanced_orthogonal_persistence, Some(false));
    let reason = refusal(
        fleet
            .start_rollout_of(
                operator(),
                &classic,
                Selector::All,
                deployer::PolicyArg {
                    install: Some(keep()),
                    ..policy(1, vec![], 1)
                },
            )
            .answer(),
    );
    assert!(reason.contains("choose Replace"), "{reason}");
    assert_eq!(fleet.effects_on(children[0]), Vec::<String>::new());
}
