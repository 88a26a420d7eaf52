//! Fault injection: a lost response ([`Fault::DropResponse`]). The callee's effect happens, the
//! bounded-wait caller gets `SYS_UNKNOWN` at its deadline (IC interface specification,
//! `ic0.call_with_best_effort_response`); unbounded-wait calls always get their response.

mod replica_support;

use candid::Principal;
use ic_management_canister_types::{CanisterInstallMode, InstallCodeArgs, UpgradeFlags};
use ic_sim::{Fault, FaultCount, FaultEvent, RejectCode, Sim, TraceKind};
use replica_support::*;
use sha2::{Digest, Sha256};

/// An echo canister that `controller` (and the user) control.
fn child_of(sim: &mut Sim, controller: Principal) -> Principal {
    let child = sim.create_canister(0, vec![user(), controller]);
    sim.install_code(
        user(),
        child,
        &echo_wasm(),
        Vec::new(),
        ic_sim::InstallMode::Install,
    )
    .unwrap();
    child
}

fn upgrade_call(child: Principal, wasm: &[u8], timeout_seconds: u32) -> Call {
    let args = InstallCodeArgs {
        mode: CanisterInstallMode::Upgrade(Some(UpgradeFlags::default())),
        canister_id: child,
        wasm_module: wasm.to_vec(),
        arg: Vec::new(),
        sender_canister_version: None,
    };
    let mut call = Call::new(
        management(),
        "install_code",
        candid::encode_one(args).unwrap(),
    );
    call.timeout_seconds = timeout_seconds;
    call
}

fn drop_install_code(child: Principal) -> Fault {
    Fault::DropResponse {
        callee: management(),
        method: Some("install_code".to_string()),
        target: Some(child),
        count: FaultCount::Times(1),
    }
}

fn module_hash(wasm: &[u8]) -> Option<[u8; 32]> {
    Some(Sha256::digest(wasm).into())
}

// The upgrade is applied, but its response is lost: the caller sees SYS_UNKNOWN once the
// 20 s deadline passes, not before.
#[test]
fn install_code_applied_but_the_caller_sees_sys_unknown() {
    let mut sim = new_sim();
    let deployer = forwarder(&mut sim, 0);
    let child = child_of(&mut sim, deployer);
    sim.inject(drop_install_code(child));
    let v2 = echo_wasm_version(2);
    let start = sim.time_nanos();
    let answer = forward(&mut sim, deployer, &upgrade_call(child, &v2, 20));
    match answer {
        Forwarded::Reject { code, message, .. } => {
            assert_eq!(code, RejectCode::SysUnknown as u32);
            assert_eq!(message, "Call deadline has expired.");
        }
        other => panic!("expected SYS_UNKNOWN, got {other:?}"),
    }
    assert!(sim.time_nanos() - start >= 20_000_000_000);
    assert_eq!(sim.canister(child).unwrap().module_hash, module_hash(&v2));
    assert!(sim.trace().iter().any(|e| e.kind
        == TraceKind::Fault {
            source: ic_sim::FaultSource::Rule(ic_sim::FaultId(0)),
            event: FaultEvent::ResponseDropped {
                from: management(),
                to: deployer,
                method: "install_code".to_string(),
            },
        }));
}

// An unbounded-wait call is guaranteed its response: the fault leaves it alone and still waits
// for a bounded-wait call.
#[test]
fn unbounded_wait_calls_are_never_dropped() {
    let mut sim = new_sim();
    let deployer = forwarder(&mut sim, 0);
    let child = child_of(&mut sim, deployer);
    let fault = sim.inject(drop_install_code(child));
    let v2 = echo_wasm_version(2);
    let answer = forward(&mut sim, deployer, &upgrade_call(child, &v2, 0));
    assert!(matches!(answer, Forwarded::Reply { .. }), "{answer:?}");

    let v3 = echo_wasm_version(3);
    let answer = forward(&mut sim, deployer, &upgrade_call(child, &v3, 30));
    assert!(
        matches!(answer, Forwarded::Reject { code, .. } if code == RejectCode::SysUnknown as u32),
        "{answer:?}"
    );
    assert_eq!(sim.canister(child).unwrap().module_hash, module_hash(&v3));
    assert!(!sim.clear_fault(fault), "used up by the bounded-wait call");
}

// Calls to canisters too: the callee ran (its state changed), the caller cannot tell.
#[test]
fn dropped_reply_of_a_canister_method() {
    let mut sim = new_sim();
    let callee = echo(&mut sim);
    let caller = forwarder(&mut sim, 0);
    sim.inject(Fault::DropResponse {
        callee,
        method: None,
        target: None,
        count: FaultCount::Always,
    });
    let mut call = Call::new(callee, "write", b"written".to_vec());
    call.timeout_seconds = 5;
    let answer = forward(&mut sim, caller, &call);
    assert!(
        matches!(answer, Forwarded::Reject { code, .. } if code == RejectCode::SysUnknown as u32),
        "{answer:?}"
    );
    assert_eq!(
        sim.query_call(user(), callee, "read", Vec::new()).unwrap(),
        b"written"
    );
}
