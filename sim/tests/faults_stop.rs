//! Fault injection: a stop that does not complete ([`Fault::HangStop`]). The canister stays
//! stopping, `stop_canister` fails at its timeout (IC interface specification, "IC method
//! stop_canister"), and the canister stops once the fault is released.

mod replica_support;

use candid::Principal;
use ic_sim::{CanisterRunStatus, Fault, FaultEvent, RejectCode, Sim, SimConfig, TraceKind};
use replica_support::*;

const SECOND: u64 = 1_000_000_000;

fn status(sim: &Sim, canister: Principal) -> CanisterRunStatus {
    sim.canister(canister).unwrap().status
}

fn stop(sim: &mut Sim, canister: Principal) -> ic_sim::MessageId {
    sim.submit_update(
        user(),
        management(),
        "stop_canister",
        candid::encode_one(id_record(canister)).unwrap(),
    )
    .unwrap()
}

// Held until released: the stop call times out (IC0206), the canister stays stopping and
// rejects calls; once released it becomes stopped. The hold is traced once.
#[test]
fn hung_stop_times_out_and_stays_stopping_until_released() {
    let mut sim = Sim::new(SimConfig {
        stop_timeout_nanos: 10 * SECOND,
        ..SimConfig::default()
    });
    let canister = echo(&mut sim);
    let fault = sim.inject(Fault::HangStop {
        canister,
        rounds: None,
    });
    let id = stop(&mut sim, canister);
    let err = sim.await_ingress(id, 30).unwrap_err();
    assert_eq!(err.code, RejectCode::SysTransient);
    assert_eq!(err.error_code.as_deref(), Some("IC0206"));
    assert_eq!(status(&sim, canister), CanisterRunStatus::Stopping);
    let refused = sim
        .submit_update(user(), canister, "write", Vec::new())
        .unwrap_err();
    assert_eq!(refused.error_code.as_deref(), Some("IC0509"));
    for _ in 0..5 {
        sim.tick();
    }
    assert_eq!(status(&sim, canister), CanisterRunStatus::Stopping);

    assert!(sim.clear_fault(fault));
    sim.tick();
    assert_eq!(status(&sim, canister), CanisterRunStatus::Stopped);
    let holds = sim
        .trace()
        .iter()
        .filter(|e| {
            matches!(&e.kind, TraceKind::Fault { event: FaultEvent::StopHeld { canister: c }, .. }
                if *c == canister)
        })
        .count();
    assert_eq!(holds, 1);
}

// With `rounds`, the hold ends by itself; within the stop timeout the stop call succeeds, later
// than it would have.
#[test]
fn hang_for_some_rounds_releases_itself() {
    let mut sim = new_sim();
    let canister = echo(&mut sim);
    sim.inject(Fault::HangStop {
        canister,
        rounds: Some(5),
    });
    let start = sim.round();
    let id = stop(&mut sim, canister);
    sim.await_ingress(id, 30).unwrap();
    assert_eq!(status(&sim, canister), CanisterRunStatus::Stopped);
    assert_eq!(sim.round() - start, 5);
}
