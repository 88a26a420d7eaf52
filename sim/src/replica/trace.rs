//! The execution trace and the benchmark counters.

use super::state::SnapshotContent;
use super::Sim;
use crate::exec::{ExecOutcome, PAGE_SIZE};
use crate::types::Principal;
use crate::{HostMemory, Stats, TraceEvent, TraceKind};
use std::collections::HashSet;

#[derive(Default)]
pub(crate) struct Recorder {
    pub trace: Vec<TraceEvent>,
    pub stats: Stats,
}

/// Whether an execution is part of the replicated state machine (counted in [`Stats`]) or a
/// non-replicated query / inspect_message (only traced).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replication {
    Replicated,
    NonReplicated,
}

impl Sim {
    pub(crate) fn record(&mut self, kind: TraceKind) {
        self.recorder.trace.push(TraceEvent {
            round: self.round,
            time_nanos: self.time_nanos,
            kind,
        });
    }

    /// Traces one execution of `canister` and its debug prints, keeps the prints as logs, and
    /// counts its instructions.
    pub(crate) fn record_execution(
        &mut self,
        canister: Principal,
        entry: String,
        outcome: &ExecOutcome,
        replication: Replication,
    ) {
        self.record(TraceKind::Execution {
            canister,
            entry,
            instructions: outcome.instructions,
            trapped: outcome.trap.is_some(),
        });
        for text in &outcome.debug_prints {
            self.record(TraceKind::DebugPrint {
                canister,
                text: text.clone(),
            });
        }
        if let Some(state) = self.canisters.get_mut(&canister) {
            state.logs.extend(outcome.debug_prints.iter().cloned());
            state.last_instructions = outcome.instructions;
        }
        if replication == Replication::Replicated {
            self.recorder.stats.instructions += outcome.instructions;
        }
    }

    /// One message (ingress, request, response, timer, heartbeat, management call) executed.
    pub(crate) fn count_message(&mut self) {
        self.recorder.stats.messages += 1;
    }

    /// The host memory canister state takes, counted page by page (see [`HostMemory`]).
    pub fn host_memory(&self) -> HostMemory {
        let mut memory = HostMemory {
            canisters: self.canisters.len() as u64,
            ..HostMemory::default()
        };
        let mut pages = HashSet::new();
        let mut chunks = HashSet::new();
        let mut modules = HashSet::new();
        let mut count_chunks = |held: &mut dyn Iterator<Item = (usize, usize)>, bytes: &mut u64| {
            for (address, len) in held {
                if chunks.insert(address) {
                    *bytes += len as u64;
                }
            }
        };
        for state in self.canisters.values() {
            if let Some(instance) = &state.instance {
                for paged in instance.memories() {
                    memory.page_references += paged.stored_pages() as u64;
                    pages.extend(paged.page_addresses());
                }
                let module = instance.module();
                if modules.insert(module.module_hash()) {
                    memory.module_bytes += module.wasm_binary_size() as u64;
                }
            }
            count_chunks(&mut state.chunk_store.held(), &mut memory.chunk_bytes);
        }
        let canister_pages = pages.len() as u64;
        for state in self.canisters.values() {
            for snapshot in state.snapshots.values() {
                match &snapshot.content {
                    SnapshotContent::Taken(taken) => {
                        memory.page_references += (taken.wasm_memory.stored_pages()
                            + taken.stable_memory.stored_pages())
                            as u64;
                        pages.extend(taken.wasm_memory.page_addresses());
                        pages.extend(taken.stable_memory.page_addresses());
                        if modules.insert(taken.module.module_hash()) {
                            memory.module_bytes += taken.module.wasm_binary_size() as u64;
                        }
                    }
                    SnapshotContent::Uploaded(uploaded) => {
                        memory.uploaded_snapshot_bytes += (uploaded.module.len()
                            + uploaded.wasm_memory.len()
                            + uploaded.stable_memory.len())
                            as u64;
                    }
                }
                count_chunks(&mut snapshot.chunk_store.held(), &mut memory.chunk_bytes);
            }
        }
        memory.memory_bytes = pages.len() as u64 * PAGE_SIZE as u64;
        memory.snapshot_only_bytes = (pages.len() as u64 - canister_pages) * PAGE_SIZE as u64;
        memory
    }

    /// [`HostMemory::total_bytes`] of [`Sim::host_memory`].
    pub fn host_bytes(&self) -> u64 {
        self.host_memory().total_bytes()
    }
}
