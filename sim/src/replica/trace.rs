//! The execution trace and the benchmark counters.

use super::Sim;
use crate::exec::ExecOutcome;
use crate::types::Principal;
use crate::{Stats, TraceEvent, TraceKind};

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
}
