//! Time-driven events: the canister global timer, heartbeats, and the deadlines of bounded-wait
//! calls.
//!
//! IC interface specification, "Global timer": one-shot, deactivated when it fires (and by
//! `install_code`/`uninstall_code`); "Periodic tasks and timers"; `ic0.call_with_best_effort_response`:
//! the caller gets `SYS_UNKNOWN` once the deadline has passed without a response.

use super::errors;
use super::state::{CallContext, CallOrigin, Message};
use super::Sim;
use crate::exec::{CallResponse, ExecKind, SystemEntry};
use crate::types::Principal;
use crate::TraceKind;

impl Sim {
    /// Runs the canister's due global timer and its heartbeat, if it is running and has code.
    pub(crate) fn run_system_tasks(&mut self, canister: Principal) {
        let Some(state) = self.canisters.get(&canister) else {
            return;
        };
        if !state.runs_system_tasks() {
            return;
        }
        let module = state.instance.as_ref().expect("has code").module();
        let exports_timer = module.exports_entry(SystemEntry::GlobalTimer);
        let exports_heartbeat = module.exports_entry(SystemEntry::Heartbeat);
        let timer_due = state.global_timer != 0 && state.global_timer <= self.time_nanos;
        // A canister that cannot prepay a task's instruction limit is frozen: its timer waits.
        if !(timer_due || exports_heartbeat) || !self.can_run_tasks(canister) {
            return;
        }
        if timer_due {
            // One-shot: deactivated as it fires (and a canister without the export loses it too).
            if let Some(state) = self.canisters.get_mut(&canister) {
                state.global_timer = 0;
            }
            if exports_timer {
                self.record(TraceKind::Timer { canister });
                self.run_task(canister, ExecKind::GlobalTimer);
            }
        }
        if exports_heartbeat {
            self.run_task(canister, ExecKind::Heartbeat);
        }
    }

    fn run_task(&mut self, canister: Principal, kind: ExecKind) {
        self.count_message();
        let context = self.open_context(canister, CallContext::new(CallOrigin::System, 0, 0));
        let label = super::execution::entry_label(&kind);
        self.run_in_context(canister, context, kind, label, Vec::new(), 0);
    }

    /// Answers every bounded-wait call whose deadline has passed with `SYS_UNKNOWN`, straight into
    /// the caller's input queue; the real response, if it still comes, is dropped.
    pub(crate) fn expire_bounded_wait_calls(&mut self) {
        while let Some(&(deadline, call_id)) = self.call_deadlines.first() {
            if deadline > self.time_nanos {
                break;
            }
            self.call_deadlines.pop_first();
            let Some(call) = self.calls.get_mut(&call_id) else {
                continue;
            };
            if call.answered {
                continue;
            }
            call.answered = true;
            let (originator, respondent) = (call.originator, call.callee);
            let reject = errors::deadline_expired();
            self.push_input(
                originator,
                Message::Response {
                    originator,
                    respondent,
                    call_id,
                    response: CallResponse::Reject {
                        code: reject.code,
                        message: reject.message,
                    },
                    refund: 0,
                },
            );
        }
    }

    /// True when the timer of a running canister that is not frozen, or a bounded-wait deadline,
    /// falls within the next round.
    pub(crate) fn time_event_due_next_round(&self) -> bool {
        let horizon = self.time_nanos + self.config.round_duration_nanos;
        let timer_due = self.may_have_work().any(|c| {
            c.runs_system_tasks()
                && c.global_timer != 0
                && c.global_timer <= horizon
                && self.can_run_tasks(c.id)
        });
        let deadline_due = self
            .call_deadlines
            .iter()
            .take_while(|(deadline, _)| *deadline <= horizon)
            .any(|(_, call_id)| self.calls.get(call_id).is_some_and(|c| !c.answered));
        timer_due || deadline_due
    }
}
