//! Rounds: what runs when, and what an execution's outcome does to the replicated state.
//!
//! One round, on every subnet in order: the management canister's queue first, then the canisters
//! (its due global timer, its heartbeat, then its inducted messages FIFO) within the round's
//! instruction budgets (the `schedule` module), then the checks of canisters that are stopping.
//! Every message runs in exactly one execution.

use super::errors::{self, MethodKind};
use super::messaging::Message;
use super::state::{CallContext, CallOrigin, CanisterState};
use super::trace::Replication;
use super::Sim;
use crate::exec::{
    response_transmission_fee, CallResponse, ExecEnv, ExecKind, ExecOutcome, ExecResponse,
};
use crate::types::{limits, CanisterRunStatus, Principal, Reject};
use candid::Nat;
use sha2::{Digest, Sha256};

/// DER prefix of a BLS12-381 G2 public key, as in the IC's root key.
const ROOT_KEY_DER_PREFIX: [u8; 37] = [
    0x30, 0x81, 0x82, 0x30, 0x1d, 0x06, 0x0d, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0xdc, 0x7c, 0x05,
    0x03, 0x01, 0x02, 0x01, 0x06, 0x0c, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0xdc, 0x7c, 0x05, 0x03,
    0x02, 0x01, 0x03, 0x61, 0x00,
];

/// The simulated IC's root key: the IC's DER framing around 96 deterministic bytes (nothing is
/// signed with it; canisters only read it).
pub(crate) fn root_key() -> Vec<u8> {
    let mut key = ROOT_KEY_DER_PREFIX.to_vec();
    let mut block = Sha256::digest(b"ic-sim root key").to_vec();
    while key.len() < ROOT_KEY_DER_PREFIX.len() + 96 {
        key.extend_from_slice(&block);
        block = Sha256::digest(&block).to_vec();
    }
    key.truncate(ROOT_KEY_DER_PREFIX.len() + 96);
    key
}

pub(crate) fn nat_to_u64(n: &Nat) -> u64 {
    u64::try_from(&n.0).unwrap_or(u64::MAX)
}

pub(crate) fn nat_to_u128(n: &Nat) -> u128 {
    u128::try_from(&n.0).unwrap_or(u128::MAX)
}

/// Burned cycles, timer and certified data: what a successful execution, or the cleanup closure
/// of a trapped callback, leaves behind.
fn apply_persistent_effects(state: &mut CanisterState, outcome: &ExecOutcome) {
    state.cycles = state.cycles.saturating_sub(outcome.cycles_burned);
    if let Some(timer) = outcome.global_timer {
        state.global_timer = timer;
    }
    if let Some(data) = &outcome.certified_data {
        state.certified_data = data.clone();
    }
}

fn entry_label(kind: &ExecKind) -> String {
    match kind {
        ExecKind::Update { method } => format!("update:{method}"),
        ExecKind::Query { method, .. } => format!("query:{method}"),
        ExecKind::CompositeQuery { method } => format!("composite_query:{method}"),
        ExecKind::InspectMessage { method } => format!("inspect_message:{method}"),
        ExecKind::Response { .. } => "response".to_string(),
        ExecKind::GlobalTimer => "global_timer".to_string(),
        ExecKind::Heartbeat => "heartbeat".to_string(),
    }
}

impl Sim {
    /// One round: storage charges, expiries, induction, then on every subnet its management
    /// messages and its canisters within the round's budgets (see the `schedule` module), then its
    /// stopping canisters and the answers of long installs that finished.
    pub(crate) fn execute_round(&mut self) {
        self.round += 1;
        self.time_nanos += self.config.round_duration_nanos;
        self.recorder.stats.rounds += 1;
        self.charge_storage();
        self.expire_faults();
        self.expire_bounded_wait_calls();
        self.induct_due_messages();
        for subnet in 0..self.subnets.len() {
            self.run_management_queue(subnet);
            self.run_canisters(subnet);
            self.advance_stopping_canisters(subnet);
            self.release_held_answers(subnet);
            self.pay_off_install_debits(subnet);
        }
    }

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
                self.run_in_context(canister, context, kind, payload, 0);
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
        let Some(call) = self.calls.remove(&call_id) else {
            return;
        };
        let Some(state) = self.canisters.get_mut(&canister) else {
            return;
        };
        // Interface spec `ic0.cost_call`: the reservation comes back and the response pays what it
        // actually cost: its transmission here, its execution (or, if the callback cannot run,
        // the base fee: dfinity/ic `settle_prepayment_for_unexecuted_response`) below.
        state.cycles = state
            .cycles
            .saturating_add(refund)
            .saturating_add(call.reserved_for_response);
        if let Some(n) = state.outstanding_by_callee.get_mut(&call.callee) {
            *n -= 1;
            if *n == 0 {
                state.outstanding_by_callee.remove(&call.callee);
            }
        }
        let installed = state.instance.is_some();
        let callback_runs = match state.contexts.get_mut(&call.context) {
            Some(context) => {
                context.outstanding_calls -= 1;
                installed && !context.deleted
            }
            None => false,
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
        let kind = ExecKind::Response {
            callback: call.callback,
            response,
        };
        self.run_in_context(canister, call.context, kind, arg, refund);
    }

    pub(crate) fn open_context(&mut self, canister: Principal, context: CallContext) -> u64 {
        let id = self.next_context_id;
        self.next_context_id += 1;
        self.canisters
            .get_mut(&canister)
            .expect("canister exists")
            .contexts
            .insert(id, context);
        id
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
            same_subnet: self.subnets[state.subnet].same_subnet_callees.clone(),
            wasm_memory_limit: nat_to_u64(&state.settings.wasm_memory_limit),
        }
    }

    /// Runs `kind` on `canister` within call context `context` and applies the outcome.
    pub(crate) fn run_in_context(
        &mut self,
        canister: Principal,
        context: u64,
        kind: ExecKind,
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
        let outcome = self
            .canisters
            .get_mut(&canister)
            .and_then(|s| s.instance.as_mut())
            .expect("executions run on installed canisters")
            .execute(&kind, &env);
        self.record_execution(
            canister,
            entry_label(&kind),
            &outcome,
            Replication::Replicated,
        );
        // A replicated query's changes are discarded: it does not count as a state change.
        let changes_state = !matches!(kind, ExecKind::Query { .. });
        let instructions = outcome.instructions;
        self.apply_outcome(canister, context, outcome, changes_state);
        self.charge_execution(canister, instructions);
    }

    /// Applies what a finished execution did: cycles, timer, certified data, version, calls and
    /// the answer; then closes the call context if nothing is left to do in it. A trapped
    /// execution changes nothing, except what a cleanup closure did after a callback trapped.
    fn apply_outcome(
        &mut self,
        canister: Principal,
        context: u64,
        outcome: ExecOutcome,
        changes_state: bool,
    ) {
        let state = self.canisters.get_mut(&canister).expect("canister exists");
        if let Some(call_context) = state.contexts.get_mut(&context) {
            call_context.instructions += outcome.instructions;
        }
        if outcome.trap.is_some() {
            if outcome.cleanup.is_some() {
                apply_persistent_effects(state, &outcome);
            }
            self.close_context_if_done(canister, context, outcome.trap.as_deref());
            return;
        }
        apply_persistent_effects(state, &outcome);
        state.cycles = state.cycles.saturating_add(outcome.cycles_accepted);
        if let Some(call_context) = state.contexts.get_mut(&context) {
            call_context.cycles_available = call_context
                .cycles_available
                .saturating_sub(outcome.cycles_accepted);
        }
        if changes_state {
            state.version += 1;
        }
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

    /// Answers call context `context` of `canister` (once) and refunds its unaccepted cycles.
    pub(crate) fn respond_context(
        &mut self,
        canister: Principal,
        context: u64,
        result: Result<Vec<u8>, Reject>,
    ) {
        let Some(state) = self.canisters.get_mut(&canister) else {
            return;
        };
        let subnet = state.subnet;
        let Some(call_context) = state.contexts.get_mut(&context) else {
            return;
        };
        if call_context.responded {
            return;
        }
        call_context.responded = true;
        let refund = std::mem::take(&mut call_context.cycles_available);
        let origin = call_context.origin.clone();
        self.answer(canister, subnet, &origin, result, refund);
    }

    /// A context with no outstanding calls is closed; if it was never answered the system
    /// answers it: with the trap of its last execution, or "did not reply".
    pub(crate) fn close_context_if_done(
        &mut self,
        canister: Principal,
        context: u64,
        trap: Option<&str>,
    ) {
        let Some(call_context) = self
            .canisters
            .get(&canister)
            .and_then(|s| s.contexts.get(&context))
        else {
            return;
        };
        if call_context.outstanding_calls > 0 {
            return;
        }
        if !call_context.responded && call_context.origin != CallOrigin::System {
            let reject = match trap {
                Some(trap) => errors::trapped(canister, trap),
                None => errors::did_not_reply(canister),
            };
            self.respond_context(canister, context, Err(reject));
        }
        if let Some(state) = self.canisters.get_mut(&canister) {
            state.contexts.remove(&context);
        }
    }
}
