//! Conformance tests: code installation and canister status (IC interface specification, "The IC
//! management canister": `install_code`, `uninstall_code`, `update_settings`, `canister_status`,
//! `canister_info`; "Canister interface": "Canister upgrades").

mod replica_support;

use candid::{Nat, Principal};
use ic_management_canister_types::{
    CanisterInfoArgs, CanisterInfoResult, CanisterSettings, CanisterStatusResult,
    CanisterStatusType, ChangeDetails, ChangeOrigin, CodeDeploymentMode, UpdateSettingsArgs,
};
use ic_sim::{InstallMode, RejectCode, Sim};
use replica_support::*;
use sha2::{Digest, Sha256};

const UPGRADE: InstallMode = InstallMode::Upgrade {
    skip_pre_upgrade: false,
    keep_wasm_memory: false,
};

fn query(sim: &mut Sim, canister: Principal, method: &str) -> Vec<u8> {
    sim.query_call(user(), canister, method, Vec::new())
        .unwrap()
}

fn update(sim: &mut Sim, canister: Principal, method: &str, arg: &[u8]) {
    sim.update_call(user(), canister, method, arg.to_vec())
        .unwrap();
}

fn module_hash(wasm: &[u8]) -> [u8; 32] {
    Sha256::digest(wasm).into()
}

// `install_code`: install runs `canister_init(arg)`; upgrade keeps stable memory and replaces the
// heap; reinstall wipes both and runs `canister_init` again.
#[test]
fn install_upgrade_reinstall_semantics() {
    let mut sim = new_sim();
    let canister = install_on(&mut sim, 0, &echo_wasm(), b"init arg".to_vec());
    assert_eq!(query(&mut sim, canister, "read"), b"init arg");
    update(&mut sim, canister, "stable_write", b"persisted");
    update(&mut sim, canister, "write", b"heap state");

    let v2 = echo_wasm_version(2);
    sim.install_code(user(), canister, &v2, Vec::new(), UPGRADE)
        .unwrap();
    assert_eq!(query(&mut sim, canister, "stable_read"), b"persisted");
    assert_eq!(
        query(&mut sim, canister, "read"),
        b"",
        "fresh heap after upgrade"
    );
    assert_eq!(
        sim.canister(canister).unwrap().module_hash,
        Some(module_hash(&v2))
    );

    sim.install_code(
        user(),
        canister,
        &echo_wasm(),
        b"again".to_vec(),
        InstallMode::Reinstall,
    )
    .unwrap();
    assert_eq!(
        query(&mut sim, canister, "stable_read"),
        b"",
        "stable memory wiped"
    );
    assert_eq!(query(&mut sim, canister, "read"), b"again");
    assert_eq!(sim.canister(canister).unwrap().stable_memory_size, 0);
}

// `install_code`: atomic; a trap in `canister_post_upgrade` leaves module, heap and stable memory
// as they were, and fails with the trap.
#[test]
fn upgrade_is_atomic_when_post_upgrade_traps() {
    let mut sim = new_sim();
    let canister = install_on(&mut sim, 0, &echo_wasm(), b"v1 state".to_vec());
    update(&mut sim, canister, "stable_write", b"stable v1");
    let before = sim.canister(canister).unwrap();

    let err = sim
        .install_code(
            user(),
            canister,
            &echo_wasm_version(2),
            b"trap".to_vec(),
            UPGRADE,
        )
        .unwrap_err();
    assert_eq!(err.code, RejectCode::CanisterError);
    assert_eq!(err.error_code.as_deref(), Some("IC0503"));
    assert!(err.message.contains("post_upgrade trap"), "{err}");

    let after = sim.canister(canister).unwrap();
    assert_eq!(after.module_hash, Some(module_hash(&echo_wasm())));
    assert_eq!(after.version, before.version);
    assert_eq!(query(&mut sim, canister, "read"), b"v1 state");
    assert_eq!(query(&mut sim, canister, "stable_read"), b"stable v1");
    // Still fully working.
    update(&mut sim, canister, "write", b"still alive");
    assert_eq!(query(&mut sim, canister, "read"), b"still alive");
}

// `install_code` upgrade: a trapping `canister_pre_upgrade` fails the upgrade;
// `skip_pre_upgrade = opt true` is the way out.
#[test]
fn skip_pre_upgrade_recovers_from_a_trapping_pre_upgrade() {
    let mut sim = new_sim();
    let canister = echo(&mut sim);
    update(&mut sim, canister, "break_pre_upgrade", b"");
    let err = sim
        .install_code(user(), canister, &echo_wasm_version(2), Vec::new(), UPGRADE)
        .unwrap_err();
    assert!(err.message.contains("pre_upgrade trap"), "{err}");
    sim.install_code(
        user(),
        canister,
        &echo_wasm_version(2),
        Vec::new(),
        InstallMode::Upgrade {
            skip_pre_upgrade: true,
            keep_wasm_memory: false,
        },
    )
    .unwrap();
    assert_eq!(
        sim.canister(canister).unwrap().module_hash,
        Some(module_hash(&echo_wasm_version(2)))
    );
}

// `install_code`: `install` needs an empty canister; `upgrade` needs code.
#[test]
fn install_mode_preconditions() {
    let mut sim = new_sim();
    let canister = echo(&mut sim);
    let err = sim
        .install_code(
            user(),
            canister,
            &echo_wasm(),
            Vec::new(),
            InstallMode::Install,
        )
        .unwrap_err();
    assert_eq!(err.error_code.as_deref(), Some("IC0514"));
    assert!(err.message.contains("not empty"), "{err}");

    let empty = sim.create_canister(0, vec![user()]);
    let err = sim
        .install_code(user(), empty, &echo_wasm(), Vec::new(), UPGRADE)
        .unwrap_err();
    assert_eq!(err.error_code.as_deref(), Some("IC0537"));

    let err = sim
        .install_code(user(), empty, b"not wasm", Vec::new(), InstallMode::Install)
        .unwrap_err();
    assert_eq!(err.code, RejectCode::CanisterError);
    assert_eq!(err.error_code.as_deref(), Some("IC0505"));
    assert_eq!(sim.canister(empty).unwrap().module_hash, None);
}

// A trap in `canister_init` leaves the canister empty.
#[test]
fn failed_install_leaves_the_canister_empty() {
    let mut sim = new_sim();
    let canister = sim.create_canister(0, vec![user()]);
    let trapping_init = wat::parse_str(
        r#"(module
  (import "ic0" "trap" (func $trap (param i32 i32)))
  (memory 1)
  (data (i32.const 0) "init failed")
  (func (export "canister_init") (call $trap (i32.const 0) (i32.const 11))))"#,
    )
    .unwrap();
    let err = sim
        .install_code(
            user(),
            canister,
            &trapping_init,
            Vec::new(),
            InstallMode::Install,
        )
        .unwrap_err();
    assert!(err.message.contains("init failed"), "{err}");
    let view = sim.canister(canister).unwrap();
    assert_eq!((view.module_hash, view.version), (None, 0));
}

// `uninstall_code`: code and state are dropped, open call contexts are rejected with
// "Canister has been uninstalled.", later calls find no Wasm module.
#[test]
fn uninstall_code_rejects_open_calls_and_empties_the_canister() {
    let mut sim = ic_sim::Sim::new(ic_sim::SimConfig {
        subnets: 2,
        cross_subnet_latency_rounds: 5,
        ..ic_sim::SimConfig::default()
    });
    let far = install_on(&mut sim, 1, &echo_wasm(), Vec::new());
    let caller = forwarder(&mut sim, 0);
    let open = sim
        .submit_update(
            user(),
            caller,
            "forward",
            Call::new(far, "reply_arg", Vec::new()).encode(),
        )
        .unwrap();
    sim.tick();
    assert_eq!(sim.canister(caller).unwrap().open_call_contexts, 1);
    management_ingress(
        &mut sim,
        user(),
        "uninstall_code",
        &ic_management_canister_types::UninstallCodeArgs {
            canister_id: caller,
            sender_canister_version: None,
        },
    )
    .unwrap();
    let err = sim.await_ingress(open, 20).unwrap_err();
    assert_eq!(err.code, RejectCode::CanisterReject);
    assert_eq!(err.message, "Canister has been uninstalled.");
    assert_eq!(sim.canister(caller).unwrap().module_hash, None);
    // The callback does not run when the response comes back; the context then closes.
    sim.run_until_idle(50);
    assert_eq!(sim.canister(caller).unwrap().open_call_contexts, 0);
    let err = sim
        .submit_update(user(), caller, "forward", Vec::new())
        .unwrap_err();
    assert_eq!(err.error_code.as_deref(), Some("IC0537"));
}

fn status(sim: &mut Sim, canister: Principal) -> CanisterStatusResult {
    decode(&management_ingress(sim, user(), "canister_status", &id_record(canister)).unwrap())
}

// `canister_status`: status, module hash, controllers, settings, cycles, memory, version.
#[test]
fn canister_status_reports_the_canister() {
    let mut sim = new_sim();
    let canister = sim.create_canister(0, vec![user(), other_user()]);
    let empty = status(&mut sim, canister);
    assert_eq!(empty.status, CanisterStatusType::Running);
    assert_eq!(empty.module_hash, None);
    assert_eq!(empty.version, 0);
    assert_eq!(empty.settings.controllers, vec![user(), other_user()]);
    assert_eq!(empty.settings.freezing_threshold, Nat::from(2_592_000u64));
    // The default cycles minus what the canister paid (the `canister_status` ingress fee).
    let burned = sim.canister(canister).unwrap().cycles_burned;
    assert!(burned > 0);
    assert_eq!(
        empty.cycles,
        Nat::from(sim.config().default_cycles - burned)
    );

    sim.install_code(
        user(),
        canister,
        &echo_wasm(),
        Vec::new(),
        InstallMode::Install,
    )
    .unwrap();
    update(&mut sim, canister, "stable_write", b"x");
    let installed = status(&mut sim, canister);
    assert_eq!(
        installed.module_hash,
        Some(module_hash(&echo_wasm()).to_vec())
    );
    assert!(installed.version > empty.version);
    assert_eq!(
        installed.memory_metrics.stable_memory_size,
        Nat::from(65536u32)
    );
    assert_eq!(
        installed.memory_metrics.wasm_memory_size,
        Nat::from(64u32 * 65536)
    );
    assert_eq!(
        installed.memory_metrics.wasm_binary_size,
        Nat::from(echo_wasm().len())
    );
    assert!(installed.memory_size >= 65 * 65536u32);
    // Memory x 127_000 cycles per GiB per second x one day.
    let memory = u128::try_from(installed.memory_size.0.clone()).unwrap();
    assert_eq!(
        installed.idle_cycles_burned_per_day,
        Nat::from(memory * 127_000 * 86_400 / (1 << 30))
    );
    // The query form (users may call `canister_status` as a query) gives the same answer.
    let queried: CanisterStatusResult = decode(
        &sim.query_call(
            user(),
            management(),
            "canister_status",
            candid::encode_one(id_record(canister)).unwrap(),
        )
        .unwrap(),
    );
    assert_eq!(queried, installed);
}

// Canister version: increments with every successful update execution, code change, settings
// change and status change, never with a query.
#[test]
fn canister_version_increments() {
    let mut sim = new_sim();
    let canister = sim.create_canister(0, vec![user()]);
    let version = |sim: &Sim| sim.canister(canister).unwrap().version;
    assert_eq!(version(&sim), 0);
    sim.install_code(
        user(),
        canister,
        &echo_wasm(),
        Vec::new(),
        InstallMode::Install,
    )
    .unwrap();
    assert_eq!(version(&sim), 1);
    update(&mut sim, canister, "write", b"a");
    assert_eq!(version(&sim), 2);
    sim.query_call(user(), canister, "read", Vec::new())
        .unwrap();
    assert_eq!(version(&sim), 2);
    management_ingress(&mut sim, user(), "stop_canister", &id_record(canister)).unwrap();
    assert_eq!(version(&sim), 4, "running -> stopping -> stopped");
    management_ingress(&mut sim, user(), "start_canister", &id_record(canister)).unwrap();
    assert_eq!(version(&sim), 5);
}

// `update_settings`: only the fields given change; controllers are limited to 10.
#[test]
fn update_settings_changes_only_given_fields() {
    let mut sim = new_sim();
    let canister = echo(&mut sim);
    let args = UpdateSettingsArgs {
        canister_id: canister,
        settings: CanisterSettings {
            freezing_threshold: Some(Nat::from(1000u32)),
            ..Default::default()
        },
        sender_canister_version: None,
    };
    management_ingress(&mut sim, user(), "update_settings", &args).unwrap();
    let after = status(&mut sim, canister);
    assert_eq!(after.settings.freezing_threshold, Nat::from(1000u32));
    assert_eq!(after.settings.controllers, vec![user()]);

    let too_many: Vec<Principal> = (0..11u8)
        .map(|i| Principal::self_authenticating([i]))
        .collect();
    let args = UpdateSettingsArgs {
        canister_id: canister,
        settings: CanisterSettings {
            controllers: Some(too_many),
            ..Default::default()
        },
        sender_canister_version: None,
    };
    let err = management_ingress(&mut sim, user(), "update_settings", &args).unwrap_err();
    assert_eq!(err.code, RejectCode::CanisterError);
    assert!(err.message.contains("controllers"), "{err}");
    assert_eq!(sim.canister(canister).unwrap().controllers, vec![user()]);
}

// `canister_info`: any canister may read any canister's history; `num_requested_changes` limits
// `recent_changes`, `total_num_changes` counts all.
#[test]
fn canister_info_returns_the_history() {
    let mut sim = new_sim();
    let observer = forwarder(&mut sim, 0);
    let canister = echo(&mut sim);
    sim.install_code(user(), canister, &echo_wasm_version(2), Vec::new(), UPGRADE)
        .unwrap();
    let args = UpdateSettingsArgs {
        canister_id: canister,
        settings: CanisterSettings {
            controllers: Some(vec![user(), observer]),
            ..Default::default()
        },
        sender_canister_version: None,
    };
    management_ingress(&mut sim, user(), "update_settings", &args).unwrap();

    let info_args = |n| CanisterInfoArgs {
        canister_id: canister,
        num_requested_changes: n,
    };
    let none: CanisterInfoResult = decode(
        &forward_management(&mut sim, observer, "canister_info", &info_args(None)).reply_data(),
    );
    assert_eq!(none.total_num_changes, 4);
    assert!(none.recent_changes.is_empty());
    assert_eq!(none.controllers, vec![user(), observer]);
    assert_eq!(
        none.module_hash,
        Some(module_hash(&echo_wasm_version(2)).to_vec())
    );

    let info: CanisterInfoResult = decode(
        &forward_management(&mut sim, observer, "canister_info", &info_args(Some(3))).reply_data(),
    );
    let details: Vec<_> = info
        .recent_changes
        .iter()
        .map(|c| c.details.clone().unwrap())
        .collect();
    assert!(
        matches!(&details[0], ChangeDetails::CodeDeployment(d) if d.mode == CodeDeploymentMode::Install)
    );
    assert!(matches!(&details[1], ChangeDetails::CodeDeployment(d)
        if d.mode == CodeDeploymentMode::Upgrade && d.module_hash == module_hash(&echo_wasm_version(2))));
    assert!(
        matches!(&details[2], ChangeDetails::ControllersChange(c) if c.controllers == vec![user(), observer])
    );
    assert!(
        matches!(&info.recent_changes[2].origin, ChangeOrigin::FromUser(u) if u.user_id == user())
    );
    let versions: Vec<u64> = info
        .recent_changes
        .iter()
        .map(|c| c.canister_version)
        .collect();
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
}
