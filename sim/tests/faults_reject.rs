//! Fault injection: the management canister rejects a method for chosen canisters
//! ([`Fault::RejectManagement`]), N times or until cleared, without executing it.

mod replica_support;

use ic_sim::{Fault, FaultCount, FaultEvent, FaultSource, InstallMode, RejectCode};
use replica_support::*;

const UPGRADE: InstallMode = InstallMode::Upgrade {
    skip_pre_upgrade: false,
    keep_wasm_memory: false,
};

// Rejected twice for the chosen target only: the code and message are the injected ones, the
// upgrade did not happen; the third attempt succeeds. Each rejection is traced.
#[test]
fn rejects_a_method_for_chosen_targets_n_times() {
    let mut sim = new_sim();
    let target = echo(&mut sim);
    let bystander = echo(&mut sim);
    let fault = sim.inject(Fault::RejectManagement {
        method: "install_code".to_string(),
        targets: vec![target],
        code: RejectCode::SysTransient,
        message: "subnet busy".to_string(),
        count: FaultCount::Times(2),
    });
    let v2 = echo_wasm_version(2);
    let before = sim.canister(target).unwrap();
    for _ in 0..2 {
        let err = sim
            .install_code(user(), target, &v2, Vec::new(), UPGRADE)
            .unwrap_err();
        assert_eq!(err.code, RejectCode::SysTransient);
        assert_eq!(err.message, "subnet busy");
        assert_eq!(err.error_code, None);
        // Unchanged but for the cycles it keeps paying (ingress fee, storage).
        let after = sim.canister(target).unwrap();
        assert_eq!(
            ic_sim::CanisterView {
                cycles: before.cycles,
                cycles_burned: before.cycles_burned,
                ..after
            },
            before
        );
    }
    sim.install_code(user(), bystander, &v2, Vec::new(), UPGRADE)
        .unwrap();
    sim.install_code(user(), target, &v2, Vec::new(), UPGRADE)
        .unwrap();

    let expected = FaultEvent::ManagementRejected {
        caller: user(),
        method: "install_code".to_string(),
        target: Some(target),
    };
    assert_eq!(
        faults(&sim),
        vec![
            (FaultSource::Rule(fault), expected.clone()),
            (FaultSource::Rule(fault), expected)
        ]
    );
    assert!(!sim.clear_fault(fault), "used up");
}

// `Always` applies to calls from canisters too, until the fault is cleared.
#[test]
fn rejects_always_until_cleared() {
    let mut sim = new_sim();
    let target = echo(&mut sim);
    let controller = forwarder(&mut sim, 0);
    let settings = ic_management_canister_types::UpdateSettingsArgs {
        canister_id: target,
        settings: ic_management_canister_types::CanisterSettings {
            controllers: Some(vec![user(), controller]),
            ..Default::default()
        },
        sender_canister_version: None,
    };
    management_ingress(&mut sim, user(), "update_settings", &settings).unwrap();
    let fault = sim.inject(Fault::RejectManagement {
        method: "stop_canister".to_string(),
        targets: Vec::new(),
        code: RejectCode::CanisterError,
        message: "injected".to_string(),
        count: FaultCount::Always,
    });
    for _ in 0..3 {
        let answer = forward_management(&mut sim, controller, "stop_canister", &id_record(target));
        assert_eq!(
            answer,
            Forwarded::Reject {
                code: RejectCode::CanisterError as u32,
                refund: 0,
                message: "injected".to_string()
            }
        );
    }
    assert_eq!(
        sim.canister(target).unwrap().status,
        ic_sim::CanisterRunStatus::Running
    );
    assert!(sim.clear_fault(fault));
    forward_management(&mut sim, controller, "stop_canister", &id_record(target)).reply_data();
    assert_eq!(
        sim.canister(target).unwrap().status,
        ic_sim::CanisterRunStatus::Stopped
    );
    assert_eq!(faults(&sim).len(), 3);
}
