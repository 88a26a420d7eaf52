//! Executions: running one message (ingress, request, response, timer, heartbeat) in its call
//! context, and applying what the execution did to the replicated state.
//!
//! What runs when is decided by the `rounds` module; call contexts, calls and answers belong to
//! the `messaging` module; fees to the `cycles` module.

use super::errors::{self, MethodKind};
use super::state::{nat_to_u64, CallContext, CallOrigin, CanisterState, Message};
use super::trace::Replication;
use super::Sim;
use crate::exec::{
    response_transmission_fee, CallResponse, ExecEnv, ExecKind, ExecOutcome, ExecResponse,
};
use crate::types::{limits, CanisterRunStatus, Principal, Reject};

/// Burned cycles, timer and certified data: what a successful execution, or the cleanup closure
/// of a trapped callback, leaves behind.
fn apply_persistent_effects(state: &mut CanisterState, outcome: &ExecOutcome) {
    state.debit_cycles(outcome.cycles_burned);
    if let Some(timer) = outcome.global_timer {
        state.global_timer = timer;
    }
    if let Some(data) = &outcome.certified_data {
        state.certified_data = data.clone();
    }
}

pub(crate) fn entry_label(kind: &ExecKind) -> String {
    match kind {
        ExecKind::Update { method } => format!("update:{method}"),
        ExecKind::Query { method, .. } => format!("query:{method}"),
        ExecKind::CompositeQuery { method } => format!("composite_query:{method}"),
        ExecKind::InspectMessage { method } => format!("inspect_message:{method}"),
        // `execute_response` names the method answered instead.
        ExecKind::Response { .. } => "response".to_string(),
        ExecKind::CompositeResponse { .. } => "composite_response".to_string(),
        ExecKind::GlobalTimer => "global_timer".to_string(),
        ExecKind::Heartbeat => "heartbeat".to_string(),
    }
}

impl Sim {
    pub(crate) fn execute_message(&mut self, canister: Principal, message: Message) {
        match message {
            Message::Ingress {
                id,
                sender,
                method,
                payload,
                ..
            } => self.execute_call(
                canister,
                CallOrigin::Ingress { id, sender },
                &method,
                payload,
                0,
                0,
            ),
            Message::Request {
                caller,
                method,
                payload,
                cycles,
                call_id,
                deadline_nanos,
                ..
            } => self.execute_call(
                canister,
                CallOrigin::Canister { caller, call_id },
                &method,
                payload,
                cycles,
                deadline_nanos,
            ),
            Message::Response {
                call_id,
                response,
                refund,
                ..
            } => self.execute_response(canister, call_id, response, refund),
        }
    }

    /// What an update call or an inter-canister call to `method` runs: the update method, or the
    /// query method as a replicated query.
    pub(crate) fn replicated_call_kind(
        &self,
        canister: Principal,
        method: &str,
    ) -> Result<ExecKind, Reject> {
        let state = self
            .canisters
            .get(&canister)
            .ok_or_else(|| errors::canister_not_found(canister))?;
        if state.status != CanisterRunStatus::Running {
            return Err(errors::not_running(canister, state.status));
        }
        let instance = state
            .instance
            .as_ref()
            .ok_or_else(|| errors::wasm_module_not_found(canister))?;
        let module = instance.module();
        let method_name = method.to_string();
        if module.has_update(method) {
            Ok(ExecKind::Update {
                method: method_name,
            })
        } else if module.has_query(method) {
            Ok(ExecKind::Query {
                method: method_name,
                replicated: true,
            })
        } else if module.has_composite_query(method) {
            Err(errors::composite_query_in_replicated_mode(canister, method))
        } else {
            Err(errors::method_not_found(
                canister,
                MethodKind::Update,
                method,
            ))
        }
    }

    fn execute_call(
        &mut self,
        canister: Principal,
        origin: CallOrigin,
        method: &str,
        payload: Vec<u8>,
        cycles: u128,
        deadline_nanos: u64,
    ) {
        let runnable = self
            .replicated_call_kind(canister, method)
            .and_then(|kind| {
                self.check_prepayment(canister, limits::MAX_INSTRUCTIONS_PER_UPDATE)
                    .map(|_| kind)
                    .map_err(|missing| errors::out_of_cycles(canister, missing))
            });
        match runnable {
            Ok(kind) => {
                let context =
                    self.open_context(canister, CallContext::new(origin, cycles, deadline_nanos));
                let label = entry_label(&kind);
                self.run_in_context(canister, context, kind, label, payload, 0);
            }
            Err(reject) => {
                let subnet = self.canisters[&canister].subnet;
                self.answer(canister, subnet, &origin, Err(reject), cycles);
            }
        }
    }

    fn execute_response(
        &mut self,
        canister: Principal,
        call_id: u64,
        response: CallResponse,
        refund: u128,
    ) {
        let Some((call, callback_runs)) = self.settle_response(canister, call_id, refund) else {
            return;
        };
        self.burn_cycles(canister, response_transmission_fee(&response));
        if !callback_runs {
            // Uninstalled: the refund is credited, the callback does not run.
            self.charge_execution(canister, 0);
            self.close_context_if_done(canister, call.context, None);
            return;
        }
        let arg = match &response {
            CallResponse::Reply(payload) => payload.clone(),
            CallResponse::Reject { .. } => Vec::new(),
        };
        // The trace names the method the response answers: a callback's cost is read per call.
        let label = format!("response:{}", call.method);
        let kind = ExecKind::Response {
            callback: call.callback,
            response,
            injected_trap: self.execution_fault(canister, &label),
        };
        self.run_in_context(canister, call.context, kind, label, arg, refund);
    }

    /// The parts of an execution's environment that come from the canister's state.
    pub(crate) fn exec_env(
        &self,
        state: &CanisterState,
        caller: Principal,
        arg: Vec<u8>,
        instruction_limit: u64,
    ) -> ExecEnv {
        ExecEnv {
            canister_id: state.id,
            subnet_id: self.subnets[state.subnet].id,
            caller,
            arg,
            time_nanos: self.time_nanos,
            canister_version: state.version,
            status: state.status as u32,
            controllers: state.settings.controllers.clone(),
            cycle_balance: state.cycles,
            freezing_limit: self.freezing_limit_of(state),
            cycles_available: 0,
            cycles_refunded: 0,
            already_replied: false,
            deadline_nanos: 0,
            global_timer: state.global_timer,
            certified_data: state.certified_data.clone(),
            data_certificate: None,
            root_key: self.root_key.clone(),
            env_vars: state.environment_variables(),
            instruction_limit,
            call_context_instructions: 0,
            free_slots: state.free_slots(),
            default_free_slots: limits::QUEUE_CAPACITY,
            same_subnet: std::sync::Arc::clone(&self.subnets[state.subnet].same_subnet_callees),
            wasm_memory_limit: nat_to_u64(&state.settings.wasm_memory_limit),
        }
    }

    /// Runs `kind` on `canister` within call context `context` and applies the outcome; the
    /// trace names the execution `label`.
    pub(crate) fn run_in_context(
        &mut self,
        canister: Principal,
        context: u64,
        kind: ExecKind,
        label: String,
        arg: Vec<u8>,
        cycles_refunded: u128,
    ) {
        // Every execution prepays its instruction limit, which `canister_cycle_balance` does not
        // show (a response's prepayment comes out of the reservation its call made).
        let prepayment = self.execution_prepayment(limits::MAX_INSTRUCTIONS_PER_UPDATE);
        let state = &self.canisters[&canister];
        let call_context = &state.contexts[&context];
        let mut env = self.exec_env(
            state,
            call_context.origin.caller(),
            arg,
            limits::MAX_INSTRUCTIONS_PER_UPDATE,
        );
        env.cycle_balance = env.cycle_balance.saturating_sub(prepayment);
        env.cycles_available = call_context.cycles_available;
        env.cycles_refunded = cycles_refunded;
        env.already_replied = call_context.responded;
        env.deadline_nanos = call_context.deadline_nanos;
        env.call_context_instructions = call_context.instructions;
        // A response's injected trap is part of its kind: its cleanup closure still runs.
        let injected_trap = match kind {
            ExecKind::Response { .. } => None,
            _ => self.execution_fault(canister, &label),
        };
        let outcome = match injected_trap {
            Some(trap) => ExecOutcome {
                trap: Some(trap),
                ..ExecOutcome::default()
            },
            None => self
                .canisters
                .get_mut(&canister)
                .and_then(|s| s.instance.as_mut())
                .expect("executions run on installed canisters")
                .execute(&kind, &env),
        };
        self.record_execution(canister, label, &outcome, Replication::Replicated);
        // A replicated query's heap changes are discarded, but it is a successful execution
        // like any other: it increments the canister version (IC interface specification,
        // abstract behaviour, "Query call" executed as an update).
        let instructions = outcome.instructions;
        self.apply_outcome(canister, context, outcome);
        self.charge_execution(canister, instructions);
    }

    /// Applies what a finished execution did: cycles, timer, certified data, version, calls and
    /// the answer; then closes the call context if nothing is left to do in it. A trapped
    /// execution changes nothing, except what a cleanup closure did after a callback trapped.
    fn apply_outcome(&mut self, canister: Principal, context: u64, outcome: ExecOutcome) {
        self.count_context_instructions(canister, context, outcome.instructions);
        // It may have set its timer.
        self.note_may_have_work(canister);
        let state = self.canisters.get_mut(&canister).expect("canister exists");
        if outcome.trap.is_some() {
            if outcome.cleanup.is_some() {
                apply_persistent_effects(state, &outcome);
            }
            self.close_context_if_done(canister, context, outcome.trap.as_deref());
            return;
        }
        apply_persistent_effects(state, &outcome);
        state.version += 1;
        self.accept_cycles(canister, context, outcome.cycles_accepted);
        self.send_calls(canister, context, outcome.calls);
        if let Some(response) = outcome.response {
            // The exec layer enforces the 2 MiB reply limit (`msg_reply_data_append` traps).
            let result = match response {
                ExecResponse::Reply(payload) => Ok(payload),
                ExecResponse::Reject(message) => Err(errors::canister_rejected(message)),
            };
            self.respond_context(canister, context, result);
        }
        self.close_context_if_done(canister, context, None);
    }
}
