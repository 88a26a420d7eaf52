//! Conformance tests: who may call which management canister method, and the methods reserved to
//! canisters (IC interface specification, "The IC management canister": `create_canister`,
//! `raw_rand`, `deposit_cycles`, `canister_info`, controller checks; the replica's ingress filter).

mod replica_support;

use candid::{Nat, Principal};
use ic_management_canister_types::{
    CanisterIdRecord, CanisterInfoArgs, CanisterInstallMode, CanisterSettings,
    CanisterStatusResult, CreateCanisterArgs, InstallCodeArgs, UninstallCodeArgs,
    UpdateSettingsArgs,
};
use ic_sim::{CanisterRunStatus, RejectCode, Sim, SimConfig};
use replica_support::*;

const CREATE_FEE: u64 = 500_000_000_000;

fn create_args(controllers: Option<Vec<Principal>>) -> CreateCanisterArgs {
    CreateCanisterArgs {
        settings: controllers.map(|c| CanisterSettings {
            controllers: Some(c),
            ..Default::default()
        }),
        sender_canister_version: None,
    }
}

// `create_canister` is for canisters: ingress is refused by the ingress filter.
#[test]
fn create_canister_via_ingress_is_refused() {
    let mut sim = new_sim();
    let err =
        management_ingress(&mut sim, user(), "create_canister", &create_args(None)).unwrap_err();
    assert_eq!(err.code, RejectCode::CanisterReject);
    assert_eq!(err.error_code.as_deref(), Some("IC0406"));
    assert_eq!(
        err.message,
        "Only canisters can call ic00 method create_canister"
    );
}

// `create_canister` from a canister: the attached cycles (minus the creation fee) fund the new
// canister; the caller is its controller by default; it lives on the caller's subnet.
#[test]
fn create_canister_from_a_canister() {
    let mut sim = two_subnets();
    let creator = forwarder(&mut sim, 1);
    let mut call = Call::new(
        management(),
        "create_canister",
        candid::encode_one(create_args(None)).unwrap(),
    );
    call.cycles = CREATE_FEE + 1_000_000;
    let record: CanisterIdRecord = decode(&forward(&mut sim, creator, &call).reply_data());
    let created = sim.canister(record.canister_id).unwrap();
    assert_eq!(created.controllers, vec![creator]);
    assert_eq!(created.cycles, 1_000_000);
    assert_eq!(created.subnet, 1);
    assert_eq!(created.status, CanisterRunStatus::Running);
    assert_eq!(created.module_hash, None);

    // Explicit controllers replace the default; the caller is then not a controller.
    call.payload = candid::encode_one(create_args(Some(vec![user()]))).unwrap();
    let record: CanisterIdRecord = decode(&forward(&mut sim, creator, &call).reply_data());
    assert_eq!(
        sim.canister(record.canister_id).unwrap().controllers,
        vec![user()]
    );
}

// `create_canister`: at most 10 controllers; the attached cycles come back with the reject. Too
// few cycles for the fee is refused as well.
#[test]
fn create_canister_refusals_refund_the_cycles() {
    let mut sim = new_sim();
    let creator = forwarder(&mut sim, 0);
    let eleven = (0..11u8)
        .map(|i| Principal::self_authenticating([i]))
        .collect();
    let mut call = Call::new(
        management(),
        "create_canister",
        candid::encode_one(create_args(Some(eleven))).unwrap(),
    );
    call.cycles = CREATE_FEE + 5;
    match forward(&mut sim, creator, &call) {
        Forwarded::Reject {
            code,
            refund,
            message,
        } => {
            assert_eq!(code, RejectCode::CanisterError as u32);
            assert_eq!(refund, CREATE_FEE + 5);
            assert!(message.contains("controllers"), "{message}");
        }
        other => panic!("expected a reject, got {other:?}"),
    }
    call.payload = candid::encode_one(create_args(None)).unwrap();
    call.cycles = CREATE_FEE - 1;
    match forward(&mut sim, creator, &call) {
        Forwarded::Reject {
            refund, message, ..
        } => {
            assert_eq!(refund, CREATE_FEE - 1);
            assert!(message.contains("requires a fee"), "{message}");
        }
        other => panic!("expected a reject, got {other:?}"),
    }
    assert_eq!(sim.canister_ids().len(), 1);
}

/// Every controller-only method with an argument naming `canister`.
fn controller_only_calls(canister: Principal) -> Vec<(&'static str, Vec<u8>)> {
    let id = || {
        candid::encode_one(CanisterIdRecord {
            canister_id: canister,
        })
        .unwrap()
    };
    vec![
        (
            "update_settings",
            candid::encode_one(UpdateSettingsArgs {
                canister_id: canister,
                settings: CanisterSettings::default(),
                sender_canister_version: None,
            })
            .unwrap(),
        ),
        (
            "install_code",
            candid::encode_one(InstallCodeArgs {
                mode: CanisterInstallMode::Reinstall,
                canister_id: canister,
                wasm_module: echo_wasm(),
                arg: Vec::new(),
                sender_canister_version: None,
            })
            .unwrap(),
        ),
        (
            "uninstall_code",
            candid::encode_one(UninstallCodeArgs {
                canister_id: canister,
                sender_canister_version: None,
            })
            .unwrap(),
        ),
        ("start_canister", id()),
        ("stop_canister", id()),
        ("canister_status", id()),
        ("delete_canister", id()),
    ]
}

// Controller checks: every controller-only method refuses other users at the ingress filter
// (IC0512) and other canisters with CANISTER_ERROR "Only the controllers ...".
#[test]
fn controller_checks_on_every_method() {
    let mut sim = new_sim();
    let target = echo(&mut sim);
    let stranger = forwarder(&mut sim, 0);
    for (method, payload) in controller_only_calls(target) {
        let err = sim
            .submit_update(other_user(), management(), method, payload.clone())
            .unwrap_err();
        assert_eq!(err.code, RejectCode::CanisterError, "{method}");
        assert_eq!(err.error_code.as_deref(), Some("IC0512"), "{method}");
        assert!(err.message.contains(&target.to_text()), "{method}: {err}");

        match forward(
            &mut sim,
            stranger,
            &Call::new(management(), method, payload),
        ) {
            Forwarded::Reject { code, message, .. } => {
                assert_eq!(code, RejectCode::CanisterError as u32, "{method}");
                assert!(
                    message.starts_with(&format!(
                        "Only the controllers of the canister {target} can control it."
                    )),
                    "{method}: {message}"
                );
                assert!(
                    message.contains(&format!("Sender's ID: {stranger}")),
                    "{message}"
                );
            }
            other => panic!("{method}: expected a reject, got {other:?}"),
        }
    }
    let view = sim.canister(target).unwrap();
    assert_eq!(view.status, CanisterRunStatus::Running);
    assert!(view.module_hash.is_some());
}

// A controller canister may manage its canisters, from another subnet too (the call runs on the
// target's subnet, so it pays the cross-subnet latency both ways).
#[test]
fn management_calls_run_on_the_target_subnet() {
    let mut sim = Sim::new(SimConfig {
        subnets: 2,
        cross_subnet_latency_rounds: 3,
        ..SimConfig::default()
    });
    let controller = forwarder(&mut sim, 0);
    let target = sim.create_canister(1, vec![controller]);
    let call = Call::new(
        management(),
        "canister_status",
        candid::encode_one(id_record(target)).unwrap(),
    );
    let id = sim
        .submit_update(user(), controller, "forward", call.encode())
        .unwrap();
    let start = sim.round();
    let reply = Forwarded::parse(&sim.await_ingress(id, 20).unwrap()).reply_data();
    assert_eq!(sim.round() - start, 1 + 3 + 3);
    let status: CanisterStatusResult = decode(&reply);
    assert_eq!(status.settings.controllers, vec![controller]);
}

// `canister_status`: the canister itself may ask for its own status.
#[test]
fn canister_may_read_its_own_status() {
    let mut sim = new_sim();
    let canister = forwarder(&mut sim, 0);
    let status: CanisterStatusResult = decode(
        &forward_management(&mut sim, canister, "canister_status", &id_record(canister))
            .reply_data(),
    );
    assert_eq!(status.settings.controllers, vec![user()]);
}

// `raw_rand`: 32 bytes for canisters, fresh on every call; never by ingress.
#[test]
fn raw_rand_gives_32_fresh_bytes_to_canisters_only() {
    let mut sim = new_sim();
    let canister = forwarder(&mut sim, 0);
    let first: Vec<u8> =
        decode(&forward_management(&mut sim, canister, "raw_rand", &()).reply_data());
    let second: Vec<u8> =
        decode(&forward_management(&mut sim, canister, "raw_rand", &()).reply_data());
    assert_eq!(first.len(), 32);
    assert_eq!(second.len(), 32);
    assert_ne!(first, second);
    let err = management_ingress(&mut sim, user(), "raw_rand", &()).unwrap_err();
    assert_eq!(err.error_code.as_deref(), Some("IC0406"));
    assert_eq!(err.message, "Only canisters can call ic00 method raw_rand");
}

// `canister_info` and `deposit_cycles` are not available by ingress.
#[test]
fn canister_info_and_deposit_cycles_are_not_ingress_methods() {
    let mut sim = new_sim();
    let canister = echo(&mut sim);
    let info = CanisterInfoArgs {
        canister_id: canister,
        num_requested_changes: None,
    };
    let err = management_ingress(&mut sim, user(), "canister_info", &info).unwrap_err();
    assert_eq!(
        err.message,
        "Only canisters can call ic00 method canister_info"
    );
    let err =
        management_ingress(&mut sim, user(), "deposit_cycles", &id_record(canister)).unwrap_err();
    assert_eq!(
        err.message,
        "Only canisters can call ic00 method deposit_cycles"
    );
    let err = management_ingress(&mut sim, user(), "no_such_method", &()).unwrap_err();
    assert_eq!(err.code, RejectCode::CanisterReject);
}

// `deposit_cycles`: any canister may give its attached cycles to any canister.
#[test]
fn deposit_cycles_moves_the_attached_cycles() {
    let mut sim = new_sim();
    let receiver = echo(&mut sim);
    let giver = forwarder(&mut sim, 0);
    let before = sim.canister(receiver).unwrap().cycles;
    let burned_before = sim.canister(receiver).unwrap().cycles_burned;
    let mut call = Call::new(
        management(),
        "deposit_cycles",
        candid::encode_one(id_record(receiver)).unwrap(),
    );
    call.cycles = 123_456;
    match forward(&mut sim, giver, &call) {
        Forwarded::Reply { refund, .. } => assert_eq!(refund, 0),
        other => panic!("expected a reply, got {other:?}"),
    }
    // Plus the deposit, minus what the receiver paid meanwhile (storage).
    let after = sim.canister(receiver).unwrap();
    assert_eq!(
        after.cycles,
        before + 123_456 - (after.cycles_burned - burned_before)
    );
}

// A method the management canister does not have.
#[test]
fn unknown_management_method_from_a_canister() {
    let mut sim = new_sim();
    let canister = forwarder(&mut sim, 0);
    match forward_management(&mut sim, canister, "start", &id_record(canister)) {
        Forwarded::Reject { code, message, .. } => {
            assert_eq!(code, RejectCode::CanisterError as u32);
            assert_eq!(message, "Management canister has no method 'start'");
        }
        other => panic!("expected a reject, got {other:?}"),
    }
}

// `provisional_create_canister_with_cycles` by ingress: any user, the amount asked for.
#[test]
fn provisional_create_canister_with_cycles_by_ingress() {
    let mut sim = new_sim();
    let args = ic_management_canister_types::ProvisionalCreateCanisterWithCyclesArgs {
        amount: Some(Nat::from(42u32)),
        ..Default::default()
    };
    let record: CanisterIdRecord = decode(
        &management_ingress(
            &mut sim,
            other_user(),
            "provisional_create_canister_with_cycles",
            &args,
        )
        .unwrap(),
    );
    let view = sim.canister(record.canister_id).unwrap();
    assert_eq!(view.cycles, 42);
    assert_eq!(view.controllers, vec![other_user()]);
}

// A call addressed to a subnet's id goes to that subnet's management canister.
#[test]
fn calls_to_a_subnet_id_reach_its_management_canister() {
    let mut sim = Sim::new(SimConfig {
        subnets: 2,
        cross_subnet_latency_rounds: 3,
        ..SimConfig::default()
    });
    let canister = forwarder(&mut sim, 0);
    let call = Call::new(
        sim.subnet_id(1),
        "raw_rand",
        candid::encode_args(()).unwrap(),
    );
    let id = sim
        .submit_update(user(), canister, "forward", call.encode())
        .unwrap();
    let start = sim.round();
    let random: Vec<u8> =
        decode(&Forwarded::parse(&sim.await_ingress(id, 20).unwrap()).reply_data());
    assert_eq!(random.len(), 32);
    assert_eq!(sim.round() - start, 1 + 3 + 3);
}
