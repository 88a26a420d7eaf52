//! What the simulator's trace says the deployer did: its management calls, the children's
//! downtime, and the instructions of its replicated executions.

use candid::Principal;
use ic_sim::{Sim, TraceKind};
use std::collections::BTreeMap;

use crate::Deployer;

/// The status reads among the management methods: they change nothing.
fn is_read(method: &str) -> bool {
    matches!(
        method,
        "canister_status" | "list_canister_snapshots" | "stored_chunks"
    )
}

/// A management call the deployer made, as the simulator executed it.
#[derive(Clone, Copy, Debug)]
pub struct ManagementCall<'a> {
    pub round: u64,
    pub method: &'a str,
    pub target: Principal,
    pub ok: bool,
}

impl Deployer<Sim> {
    /// The management calls the deployer made on a canister since trace position `from`, in
    /// the order they ran.
    pub fn management_calls_since(
        &self,
        from: usize,
    ) -> impl Iterator<Item = ManagementCall<'_>> + '_ {
        self.env.trace()[from..]
            .iter()
            .filter_map(|event| match &event.kind {
                TraceKind::Management {
                    caller,
                    method,
                    target: Some(target),
                    ok,
                } if *caller == self.canister => Some(ManagementCall {
                    round: event.round,
                    method,
                    target: *target,
                    ok: *ok,
                }),
                _ => None,
            })
    }

    /// The management calls the deployer made on `target`, in order: the method and whether it
    /// succeeded.
    pub fn management_calls(&self, target: Principal) -> Vec<(String, bool)> {
        self.management_calls_since(0)
            .filter(|call| call.target == target)
            .map(|call| (call.method.to_string(), call.ok))
            .collect()
    }

    /// The successful management calls of the deployer on `target` that change something.
    pub fn effects_on(&self, target: Principal) -> Vec<String> {
        self.management_calls(target)
            .into_iter()
            .filter(|(method, ok)| *ok && !is_read(method))
            .map(|(method, _)| method)
            .collect()
    }

    /// For each child the deployer stopped since trace position `from`: the rounds from its
    /// stop to its start (the time it could not serve its users), sorted.
    pub fn child_downtime_rounds(&self, from: usize) -> Vec<u64> {
        let mut stopped_at: BTreeMap<Principal, u64> = BTreeMap::new();
        let mut downtime = Vec::new();
        for call in self.management_calls_since(from).filter(|call| call.ok) {
            match call.method {
                "stop_canister" => {
                    stopped_at.insert(call.target, call.round);
                }
                "start_canister" => {
                    if let Some(stopped) = stopped_at.remove(&call.target) {
                        downtime.push(call.round - stopped);
                    }
                }
                _ => {}
            }
        }
        downtime.sort_unstable();
        downtime
    }

    /// The entry point (`update:start_rollout`, `timer`, ...) and the instructions of each of
    /// the deployer's replicated executions since trace position `from`. Queries (and
    /// `canister_inspect_message`) run on one node and are their caller's cost, not the
    /// deployer's.
    pub fn replicated_executions(&self, from: usize) -> impl Iterator<Item = (&str, u64)> + '_ {
        self.env.trace()[from..]
            .iter()
            .filter_map(|event| match &event.kind {
                TraceKind::Execution {
                    canister,
                    instructions,
                    entry,
                    ..
                } if *canister == self.canister
                    && !entry.starts_with("query:")
                    && !entry.starts_with("inspect_message:") =>
                {
                    Some((entry.as_str(), *instructions))
                }
                _ => None,
            })
    }
}
