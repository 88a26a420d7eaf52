//! Random faults ([`RandomFaults`]) drawn from the seeded fault stream: the same seed and the same
//! fault configuration give the same faults and so the same trace.

mod replica_support;

use ic_sim::{FaultSource, RandomFaults, RejectCode, Sim, SimConfig, TraceKind};
use replica_support::*;

fn random_faults() -> RandomFaults {
    RandomFaults {
        reject_management: 0.3,
        reject_methods: Vec::new(),
        drop_response: 0.3,
        delay: 0.3,
        max_delay_rounds: 4,
        hang_stop: 0.5,
        hang_stop_rounds: 3,
        // The forwarder replies in its callback and registers no cleanup.
        trap_response: 0.0,
        trap_methods: Vec::new(),
    }
}

/// Bounded- and unbounded-wait calls within and across subnets, management calls from users and
/// canisters, stops and starts, all under random faults; returns the serialized trace.
fn scenario(seed: u64, faults: RandomFaults) -> (String, Vec<u8>) {
    let mut sim = Sim::new(SimConfig {
        seed,
        subnets: 2,
        ..SimConfig::default()
    });
    let near = echo(&mut sim);
    let far = install_on(&mut sim, 1, &echo_wasm(), Vec::new());
    let caller = forwarder(&mut sim, 0);
    let random = forward_management(&mut sim, caller, "raw_rand", &());
    sim.set_random_faults(faults);
    for round in 0..6u32 {
        for callee in [near, far] {
            let mut call = Call::new(callee, "reply_arg", round.to_le_bytes().to_vec());
            call.timeout_seconds = if round % 2 == 0 { 0 } else { 10 };
            forward(&mut sim, caller, &call);
        }
        forward_management(&mut sim, caller, "canister_status", &id_record(caller));
        for method in ["stop_canister", "start_canister"] {
            let _ = management_ingress(&mut sim, user(), method, &id_record(far));
        }
    }
    sim.run_until_idle(1000);
    let raw_rand = match random {
        Forwarded::Reply { data, .. } => data,
        other => panic!("raw_rand before any fault: {other:?}"),
    };
    (serde_json::to_string(sim.trace()).unwrap(), raw_rand)
}

fn random_fault_count(trace_json: &str) -> usize {
    let trace: Vec<ic_sim::TraceEvent> = serde_json::from_str(trace_json).unwrap();
    trace
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                TraceKind::Fault {
                    source: FaultSource::Random,
                    ..
                }
            )
        })
        .count()
}

#[test]
fn same_seed_and_fault_config_give_the_same_trace() {
    let (first, _) = scenario(11, random_faults());
    let (second, _) = scenario(11, random_faults());
    assert!(random_fault_count(&first) > 5, "faults were drawn");
    assert_eq!(first, second);
    let (other_seed, _) = scenario(12, random_faults());
    assert_ne!(first, other_seed);
}

// The fault stream is separate from `raw_rand`'s: configuring faults changes no random bytes.
#[test]
fn fault_draws_leave_raw_rand_alone() {
    let (quiet, quiet_rand) = scenario(5, RandomFaults::default());
    let (faulty, faulty_rand) = scenario(5, random_faults());
    assert_eq!(random_fault_count(&quiet), 0);
    assert!(random_fault_count(&faulty) > 0);
    assert_eq!(quiet_rand, faulty_rand);
}

// A probability of 1 rejects every call to the listed methods with SYS_TRANSIENT, and others
// not at all.
#[test]
fn certain_rejection_of_listed_methods() {
    let mut sim = new_sim();
    let caller = forwarder(&mut sim, 0);
    sim.set_random_faults(RandomFaults {
        reject_management: 1.0,
        reject_methods: vec!["raw_rand".to_string()],
        ..RandomFaults::default()
    });
    for _ in 0..3 {
        match forward_management(&mut sim, caller, "raw_rand", &()) {
            Forwarded::Reject { code, message, .. } => {
                assert_eq!(code, RejectCode::SysTransient as u32);
                assert_eq!(message, "ic-sim random fault: raw_rand rejected");
            }
            other => panic!("expected a reject, got {other:?}"),
        }
    }
    forward_management(&mut sim, caller, "canister_status", &id_record(caller)).reply_data();
}
