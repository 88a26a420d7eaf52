//! Cycles: what canisters pay and the freezing threshold (IC interface specification,
//! canister-interface "Cycles", management-canister "create_canister" `freezing_threshold` and
//! "install_code"; prices from the IC docs "Cycle costs", 13-node subnet).

mod replica_support;

use candid::Nat;
use ic_management_canister_types::{CanisterSettings, CanisterStatusResult, UpdateSettingsArgs};
use ic_sim::exec::CallResponse;
use ic_sim::{CycleCosts, InstallMode, RejectCode, Sim, SimConfig, TraceKind};
use replica_support::*;

const GIB: u128 = 1 << 30;
const UPDATE_BASE_FEE: u128 = 5_000_000;
const UPDATE_INSTRUCTION_LIMIT: u128 = 40_000_000_000;

fn sim_with(default_cycles: u128, costs: CycleCosts) -> Sim {
    Sim::new(SimConfig {
        default_cycles,
        cycle_costs: costs,
        ..SimConfig::default()
    })
}

fn no_storage_fee() -> CycleCosts {
    CycleCosts {
        storage_fee_per_gib_second: 0,
        ..CycleCosts::default()
    }
}

fn ingress_fee(method: &str, arg_len: usize) -> u128 {
    1_200_000 + 2_000 * (method.len() + arg_len) as u128
}

/// Instructions of `canister`'s replicated executions traced since `from` (inspect_message and
/// queries are not charged).
fn charged_executions(sim: &Sim, canister: ic_sim::Principal, from: usize) -> Vec<u64> {
    sim.trace()[from..]
        .iter()
        .filter_map(|event| match &event.kind {
            TraceKind::Execution {
                canister: c,
                entry,
                instructions,
                ..
            } if *c == canister
                && !entry.starts_with("inspect_message:")
                && !entry.starts_with("query:") =>
            {
                Some(*instructions)
            }
            _ => None,
        })
        .collect()
}

fn status_query(sim: &mut Sim, canister: ic_sim::Principal) -> CanisterStatusResult {
    decode(
        &sim.query_call(
            user(),
            management(),
            "canister_status",
            candid::encode_one(id_record(canister)).unwrap(),
        )
        .unwrap(),
    )
}

// Cycle costs: an ingress update costs its receiver the reception fee (1_200_000 + 2_000 per
// byte of method name and argument) plus the execution (5_000_000 + 1 per instruction).
#[test]
fn an_update_costs_ingress_reception_plus_base_fee_plus_instructions() {
    let mut sim = sim_with(100_000_000_000_000, no_storage_fee());
    let canister = echo(&mut sim);
    let before = sim.canister(canister).unwrap();
    let stats_before = sim.stats().cycles_burned;
    let trace_from = sim.trace().len();
    sim.update_call(user(), canister, "reply_arg", b"hello".to_vec())
        .unwrap();
    let executions = charged_executions(&sim, canister, trace_from);
    assert_eq!(executions.len(), 1);
    let expected = ingress_fee("reply_arg", 5) + UPDATE_BASE_FEE + u128::from(executions[0]);
    let after = sim.canister(canister).unwrap();
    assert_eq!(after.cycles, before.cycles - expected);
    assert_eq!(after.cycles_burned - before.cycles_burned, expected);
    assert_eq!(sim.stats().cycles_burned - stats_before, expected);
}

// Canister-interface "Cycles": the caller pays the call's base fee when the call is sent, the
// transmission of the response and each of its executions (the request's and the response's).
// `ic0.cost_call` also reserves the largest response at `call_perform`; that reservation is
// settled when the response arrives, so the net charge uses the actual 4-byte reply.
#[test]
fn a_call_costs_the_caller_the_call_fee_and_both_executions() {
    let mut sim = sim_with(100_000_000_000_000, no_storage_fee());
    let callee = echo(&mut sim);
    let caller = forwarder(&mut sim, 0);
    let before = sim.canister(caller).unwrap();
    let trace_from = sim.trace().len();
    let call = Call::new(callee, "reply_arg", b"ping".to_vec());
    let arg_len = call.encode().len();
    assert!(matches!(
        forward(&mut sim, caller, &call),
        Forwarded::Reply { .. }
    ));
    let executions = charged_executions(&sim, caller, trace_from);
    assert_eq!(executions.len(), 2, "the call and its response callback");
    let expected = ingress_fee("forward", arg_len)
        + ic_sim::exec::call_base_fee("reply_arg".len() as u64, 4)
        + ic_sim::exec::response_transmission_fee(&CallResponse::Reply(b"ping".to_vec()))
        + executions
            .iter()
            .map(|i| UPDATE_BASE_FEE + u128::from(*i))
            .sum::<u128>();
    assert_eq!(
        sim.canister(caller).unwrap().cycles,
        before.cycles - expected
    );
}

// Freezing threshold: freezing limit = memory x 127_000 cycles per GiB per second x threshold.
// A frozen canister rejects ingress and calls with SYS_TRANSIENT (IC0207); `deposit_cycles`
// unfreezes it.
#[test]
fn a_frozen_canister_rejects_calls_until_cycles_are_deposited() {
    let mut sim = sim_with(1_000_000_000_000, CycleCosts::default());
    let canister = echo(&mut sim);
    let giver = forwarder(&mut sim, 0);
    let threshold = 3_000_000_000u64;
    set_freezing_threshold(&mut sim, canister, threshold);
    let view = sim.canister(canister).unwrap();
    let memory = u128::try_from(status_query(&mut sim, canister).memory_size.0).unwrap();
    assert_eq!(
        view.freezing_limit,
        memory * 127_000 * u128::from(threshold) / GIB
    );
    assert!(view.cycles < view.freezing_limit, "frozen");

    let ingress = sim
        .submit_update(user(), canister, "reply_arg", b"x".to_vec())
        .unwrap_err();
    assert_eq!(ingress.code, RejectCode::SysTransient);
    assert_eq!(ingress.error_code.as_deref(), Some("IC0207"));
    assert!(
        ingress
            .message
            .starts_with(&format!("Canister {canister} is out of cycles")),
        "{}",
        ingress.message
    );
    match forward(
        &mut sim,
        giver,
        &Call::new(canister, "reply_arg", b"x".to_vec()),
    ) {
        Forwarded::Reject { code, message, .. } => {
            assert_eq!(code, RejectCode::SysTransient as u32);
            assert!(message.contains("is out of cycles"), "{message}");
        }
        other => panic!("expected SYS_TRANSIENT, got {other:?}"),
    }

    // Enough for the freezing limit plus one update's prepaid instruction limit.
    let view = sim.canister(canister).unwrap();
    let deposit = view.freezing_limit - view.cycles + UPDATE_INSTRUCTION_LIMIT + 1_000_000_000;
    let mut call = Call::new(
        management(),
        "deposit_cycles",
        candid::encode_one(id_record(canister)).unwrap(),
    );
    call.cycles = u64::try_from(deposit).unwrap();
    assert!(matches!(
        forward(&mut sim, giver, &call),
        Forwarded::Reply { .. }
    ));
    assert_eq!(
        sim.update_call(user(), canister, "reply_arg", b"back".to_vec())
            .unwrap(),
        b"back"
    );
}

// Canister-interface `ic0.call_perform`: a call whose fee would take the caller below its
// freezing limit is not made: `call_perform` returns 2 and the attached cycles stay.
#[test]
fn call_perform_fails_rather_than_cross_the_freezing_limit() {
    let mut sim = sim_with(1_000_000_000_000, CycleCosts::default());
    let callee = echo(&mut sim);
    let caller = forwarder(&mut sim, 0);
    let view = sim.canister(caller).unwrap();
    let mut call = Call::new(callee, "reply_arg", b"x".to_vec());
    let fee = ic_sim::exec::cost_call("reply_arg".len() as u64, 1);
    // What the execution may spend: the balance after the ingress fee and one round of storage,
    // minus the prepaid instruction limit and the freezing limit.
    let memory = u128::from(view.wasm_memory_size) + forwarder_wasm().len() as u128;
    let storage_one_round = memory * 127_000 / GIB + 1;
    let liquid = view.cycles
        - ingress_fee("forward", call.encode().len())
        - storage_one_round
        - (UPDATE_BASE_FEE + UPDATE_INSTRUCTION_LIMIT)
        - view.freezing_limit;
    call.cycles = u64::try_from(liquid - fee / 2).unwrap();
    assert_eq!(
        forward(&mut sim, caller, &call),
        Forwarded::PerformFailed(2)
    );
    assert!(sim.canister(caller).unwrap().cycles > view.freezing_limit);

    call.cycles = 1_000;
    assert!(matches!(
        forward(&mut sim, caller, &call),
        Forwarded::Reply { .. }
    ));
}

// Management canister `install_code`: the canister must be able to prepay the install
// instruction limit (300 B) above its freezing limit, otherwise nothing is installed (IC0207,
// "Canister installation failed with ...").
#[test]
fn install_fails_below_the_freezing_limit_and_succeeds_after_a_top_up() {
    let mut sim = sim_with(200_000_000_000, CycleCosts::default());
    let canister = sim.create_canister(0, vec![user()]);
    let err = sim
        .install_code(
            user(),
            canister,
            &echo_wasm(),
            Vec::new(),
            InstallMode::Install,
        )
        .unwrap_err();
    assert_eq!(err.code, RejectCode::SysTransient);
    assert_eq!(err.error_code.as_deref(), Some("IC0207"));
    assert!(
        err.message.starts_with(&format!(
            "Canister installation failed with `Canister {canister} is out of cycles: please top up the canister with at least "
        )),
        "{}",
        err.message
    );
    assert_eq!(sim.canister(canister).unwrap().module_hash, None);

    sim.add_cycles(canister, 200_000_000_000);
    sim.install_code(
        user(),
        canister,
        &echo_wasm(),
        Vec::new(),
        InstallMode::Install,
    )
    .unwrap();
    assert!(sim.canister(canister).unwrap().module_hash.is_some());
}

// Storage: 127_000 cycles per GiB per second of memory, charged as time passes; the rate per day
// is `idle_cycles_burned_per_day`.
#[test]
fn storage_burns_cycles_over_time() {
    let mut sim = sim_with(100_000_000_000_000, CycleCosts::default());
    let canister = echo(&mut sim);
    settle_to_a_charge(&mut sim);
    let before = sim.canister(canister).unwrap();
    let memory = u128::try_from(status_query(&mut sim, canister).memory_size.0).unwrap();
    assert_eq!(
        before.idle_cycles_burned_per_day,
        memory * 127_000 * 86_400 / GIB
    );
    let day = 86_400_000_000_000;
    sim.advance_time(day);
    sim.tick();
    // One day plus the round's second; a fraction of a cycle carried from earlier charges.
    let expected = memory * 127_000 * (86_400 + 1) / GIB;
    let burned = sim.canister(canister).unwrap().cycles_burned - before.cycles_burned;
    assert!(
        burned == expected || burned == expected + 1,
        "{burned} vs {expected}"
    );
}

/// Runs rounds until one charges storage, so that the next charge covers exactly the time after.
fn settle_to_a_charge(sim: &mut Sim) {
    sim.advance_time(10_000_000_000);
    sim.tick();
}

// Storage is charged in the first round at least 10 s after the last charge, for all the time
// since (the replica's `duration_between_allocation_charges`), not in every round.
#[test]
fn storage_is_charged_every_ten_seconds() {
    let mut sim = sim_with(100_000_000_000_000, CycleCosts::default());
    let canister = echo(&mut sim);
    settle_to_a_charge(&mut sim);
    let burned = |sim: &Sim| sim.canister(canister).unwrap().cycles_burned;
    let before = burned(&sim);
    let per_day = sim.canister(canister).unwrap().idle_cycles_burned_per_day;
    // Rounds of 1 s: the next 9 charge nothing, the tenth charges 10 s.
    for _ in 0..9 {
        sim.tick();
    }
    assert_eq!(burned(&sim), before);
    sim.tick();
    let ten_seconds = per_day * 10 / 86_400;
    let charged = burned(&sim) - before;
    assert!(
        charged == ten_seconds || charged == ten_seconds + 1,
        "{charged} vs {ten_seconds}"
    );
}

// A canister that cannot pay for its storage runs out of cycles and is uninstalled.
#[test]
fn a_canister_out_of_cycles_is_uninstalled() {
    let mut sim = sim_with(400_000_000_000, CycleCosts::default());
    let canister = echo(&mut sim);
    let per_day = sim.canister(canister).unwrap().idle_cycles_burned_per_day;
    let days = 400_000_000_000 / per_day + 1;
    sim.advance_time(u64::try_from(days).unwrap() * 86_400_000_000_000);
    sim.tick();
    let view = sim.canister(canister).unwrap();
    assert_eq!(view.cycles, 0);
    assert_eq!(view.module_hash, None);
}

// `canister_status` reports the balance, the idle burn rate, the freezing threshold and no
// reserved cycles.
#[test]
fn canister_status_reports_cycles_and_freezing_threshold() {
    let mut sim = sim_with(100_000_000_000_000, CycleCosts::default());
    let canister = echo(&mut sim);
    set_freezing_threshold(&mut sim, canister, 86_400);
    let status = status_query(&mut sim, canister);
    let view = sim.canister(canister).unwrap();
    assert_eq!(status.cycles, Nat::from(view.cycles));
    assert_eq!(status.settings.freezing_threshold, Nat::from(86_400u32));
    assert_eq!(status.reserved_cycles, Nat::from(0u8));
    let memory = u128::try_from(status.memory_size.0).unwrap();
    assert_eq!(
        status.idle_cycles_burned_per_day,
        Nat::from(memory * 127_000 * 86_400 / GIB)
    );
    assert_eq!(view.freezing_limit, memory * 127_000 * 86_400 / GIB);
}

// `SimConfig::charge_cycles = false`: executions, ingress and storage are free and nothing
// freezes.
#[test]
fn charging_can_be_switched_off() {
    let mut sim = Sim::new(SimConfig {
        charge_cycles: false,
        ..SimConfig::default()
    });
    let canister = echo(&mut sim);
    let before = sim.canister(canister).unwrap();
    assert_eq!(before.cycles, sim.config().default_cycles);
    assert_eq!(before.freezing_limit, 0);
    sim.advance_time(86_400_000_000_000);
    sim.update_call(user(), canister, "reply_arg", b"free".to_vec())
        .unwrap();
    assert_eq!(sim.canister(canister).unwrap().cycles, before.cycles);
    assert_eq!(sim.stats().cycles_burned, 0);
}

// A frozen canister's global timer does not fire (the simulation still goes idle) and its
// queries are refused with SYS_TRANSIENT; once topped up, the timer fires.
#[test]
fn a_frozen_canister_runs_no_timer_and_answers_no_query() {
    let mut sim = sim_with(1_000_000_000_000, CycleCosts::default());
    let canister = echo(&mut sim);
    let at = sim.time_nanos() + 10_000_000_000;
    sim.update_call(user(), canister, "set_timer", at.to_le_bytes().to_vec())
        .unwrap();
    set_freezing_threshold(&mut sim, canister, 3_000_000_000);
    sim.advance_time(20_000_000_000);
    sim.run_until_idle(5);
    let fired = |sim: &Sim| sim.logs(canister).contains(&"timer fired".to_string());
    assert!(!fired(&sim));
    let err = sim
        .query_call(user(), canister, "timer_count", Vec::new())
        .unwrap_err();
    assert_eq!(err.code, RejectCode::SysTransient);
    assert_eq!(err.error_code.as_deref(), Some("IC0207"));

    sim.add_cycles(canister, 1_000_000_000_000);
    sim.run_until_idle(5);
    assert!(fired(&sim));
}

// Idle burn rate (cycle costs "Compute allocation", "Storage"): `memory_allocation` bills at
// least that much memory, `compute_allocation` costs 10_000_000 per percent per second.
#[test]
fn allocations_count_in_the_idle_burn_rate() {
    let mut sim = sim_with(100_000_000_000_000, CycleCosts::default());
    let canister = echo(&mut sim);
    let args = UpdateSettingsArgs {
        canister_id: canister,
        settings: CanisterSettings {
            compute_allocation: Some(Nat::from(1u8)),
            memory_allocation: Some(Nat::from(GIB)),
            ..CanisterSettings::default()
        },
        sender_canister_version: None,
    };
    management_ingress(&mut sim, user(), "update_settings", &args).unwrap();
    let per_day = (127_000 + 10_000_000) * 86_400;
    assert_eq!(
        status_query(&mut sim, canister).idle_cycles_burned_per_day,
        Nat::from(per_day)
    );
    let view = sim.canister(canister).unwrap();
    assert_eq!(view.freezing_limit, per_day * 30);
}
