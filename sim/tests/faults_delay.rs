//! Fault injection: slow messages ([`Fault::Delay`]). Messages to and from a canister arrive
//! later; messages on one route still arrive in the order they were sent.

mod replica_support;

use candid::Principal;
use ic_sim::{Fault, FaultCount, FaultEvent, Sim, TraceKind};
use replica_support::*;

/// Rounds a forwarded `reply_arg` call takes, ingress included.
fn rounds_for_forward(sim: &mut Sim, caller: Principal, callee: Principal) -> u64 {
    let id = sim
        .submit_update(
            user(),
            caller,
            "forward",
            Call::new(callee, "reply_arg", b"x".to_vec()).encode(),
        )
        .unwrap();
    let start = sim.round();
    sim.await_ingress(id, 100).unwrap();
    sim.round() - start
}

// A delay of 5 rounds on the callee applies to the request and to the response.
#[test]
fn delay_applies_to_messages_to_and_from_the_canister() {
    let mut sim = new_sim();
    let callee = echo(&mut sim);
    let caller = forwarder(&mut sim, 0);
    let normal = rounds_for_forward(&mut sim, caller, callee);
    let fault = sim.inject(Fault::Delay {
        canister: callee,
        rounds: 5,
        count: FaultCount::Always,
    });
    assert_eq!(rounds_for_forward(&mut sim, caller, callee), normal + 10);
    let delays: Vec<(Principal, Principal, u64)> = sim
        .trace()
        .iter()
        .filter_map(|e| match &e.kind {
            TraceKind::Fault {
                event: FaultEvent::MessageDelayed { from, to, rounds },
                ..
            } => Some((*from, *to, *rounds)),
            _ => None,
        })
        .collect();
    assert_eq!(delays, vec![(caller, callee, 5), (callee, caller, 5)]);
    assert!(sim.clear_fault(fault));
    assert_eq!(rounds_for_forward(&mut sim, caller, callee), normal);
}

// Only the first of three requests sent together is delayed, yet the others do not overtake it.
#[test]
fn later_messages_on_the_route_wait_for_a_delayed_one() {
    let mut sim = new_sim();
    let callee = echo(&mut sim);
    let caller = forwarder(&mut sim, 0);
    sim.inject(Fault::Delay {
        canister: callee,
        rounds: 4,
        count: FaultCount::Times(1),
    });
    sim.update_call(user(), caller, "burst", burst_arg(callee, "reply_arg", 3))
        .unwrap();
    let sent_in = sim.round();
    sim.run_until_idle(50);
    let executed_in: Vec<u64> = sim
        .trace()
        .iter()
        .filter(|e| {
            matches!(&e.kind, TraceKind::Execution { canister, entry, .. }
                if *canister == callee && entry == "update:reply_arg")
        })
        .map(|e| e.round)
        .collect();
    assert_eq!(executed_in, vec![sent_in + 5; 3]);
}
