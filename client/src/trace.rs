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

impl Deployer<Sim> {
    /// The management calls the deployer made on `target`, in order: the method and whether it
    /// succeeded.
    pub fn management_calls(&self, target: Principal) -> Vec<(String, bool)> {
        self.env
            .trace()
            .iter()
            .filter_map(|event| match &event.kind {
                TraceKind::Management {
                    caller,
                    method,
                    target: Some(called),
                    ok,
                } if *caller == self.canister && *called == target => Some((method.clone(), *ok)),
                _ => None,
            })
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
        for event in &self.env.trace()[from..] {
            let TraceKind::Management {
                caller,
                method,
                target: Some(child),
                ok: true,
            } = &event.kind
            else {
                continue;
            };
            if *caller != self.canister {
                continue;
            }
            match method.as_str() {
                "stop_canister" => {
                    stopped_at.insert(*child, event.round);
                }
                "start_canister" => {
                    if let Some(stopped) = stopped_at.remove(child) {
                        downtime.push(event.round - stopped);
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
