//! Messages between canisters, users and the management canister: sending with per-route latency
//! and payload limits, induction into input queues at the delivery round, and answers to callers;
//! and the call contexts those answers come from (opened, answered, closed), with the calls made
//! from them.
//!
//! IC interface specification, "Abstract behavior" (message routing) and the resource limits page:
//! 2 MiB ingress and cross-subnet payloads, 10 MiB same-subnet requests, 2 MiB replies.

use super::errors;
use super::ids;
use super::management::{self, ManagementCall};
use super::state::{nat_to_u128, CallContext, CallOrigin, Message, OutstandingCall};
use super::Sim;
use crate::exec::{call_base_fee, CallResponse, OutgoingCall, MAX_CYCLES_PER_RESPONSE};
use crate::types::{limits, CanisterRunStatus, Principal, Reject};
use crate::{IngressStatus, TraceKind};

/// A message on its way to `subnet`, inducted at the start of round `deliver_round`.
pub(crate) struct InFlight {
    pub subnet: usize,
    pub message: Message,
}

impl Sim {
    pub(crate) fn latency_rounds(&self, from_subnet: usize, to_subnet: usize) -> u64 {
        if from_subnet == to_subnet {
            self.config.same_subnet_latency_rounds.max(1)
        } else {
            self.config.cross_subnet_latency_rounds.max(1)
        }
    }

    /// The subnet whose id range contains `id`.
    pub(crate) fn route(&self, id: &Principal) -> Option<usize> {
        ids::subnet_of_id(id, self.subnets.len())
    }

    /// Puts `message` in flight towards `to_subnet`.
    pub(crate) fn send(&mut self, from_subnet: usize, to_subnet: usize, message: Message) {
        let latency = self.latency_rounds(from_subnet, to_subnet);
        self.send_with_latency(latency, to_subnet, message);
    }

    /// Queues `message` for induction on `subnet` `latency` rounds from now (later if a fault
    /// delays it), after everything already due then (FIFO).
    pub(crate) fn send_with_latency(&mut self, latency: u64, subnet: usize, message: Message) {
        let (from, to) = message.route();
        let deliver_round = self.delivery_round(from, to, latency);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.in_flight
            .insert((deliver_round, seq), InFlight { subnet, message });
    }

    /// Counts payload bytes that crossed a queue (and whether they crossed subnets).
    pub(crate) fn count_bytes(&mut self, bytes: usize, cross_subnet: bool) {
        self.recorder.stats.bytes_moved += bytes as u64;
        if cross_subnet {
            self.recorder.stats.cross_subnet_bytes += bytes as u64;
        }
    }

    /// The canister a call is about: the callee, or for the management canister the call's
    /// effective canister id (if the method names one).
    fn call_target(&self, callee: Principal, method: &str, payload: &[u8]) -> Option<Principal> {
        if callee == Principal::management_canister() {
            management::effective_canister_id(method, payload)
        } else {
            Some(callee)
        }
    }

    /// The subnet that executes a call to `callee` about `target`: the canister's subnet, or for
    /// the management canister the subnet of the call's effective canister id (the caller's own
    /// subnet when the method names no canister or an unknown one).
    fn destination_subnet(
        &self,
        caller_subnet: usize,
        callee: Principal,
        target: Option<Principal>,
    ) -> Option<usize> {
        if callee == Principal::management_canister() {
            Some(
                target
                    .and_then(|id| self.route(&id))
                    .unwrap_or(caller_subnet),
            )
        } else if let Some(subnet) = self.subnet_index(&callee) {
            Some(subnet)
        } else {
            self.route(&callee)
        }
    }

    /// The index of the subnet whose id is `principal`: calls addressed to a subnet id go to
    /// that subnet's management canister.
    pub(crate) fn subnet_index(&self, principal: &Principal) -> Option<usize> {
        self.subnets.iter().position(|s| s.id == *principal)
    }

    /// Registers the calls an execution made from `context` and sends them.
    pub(crate) fn send_calls(&mut self, caller: Principal, context: u64, calls: Vec<OutgoingCall>) {
        for call in calls {
            let call_id = self.next_call_id;
            self.next_call_id += 1;
            let deadline_nanos = call
                .timeout_seconds
                .map(|seconds| self.time_nanos + u64::from(seconds) * 1_000_000_000);
            let canister = self.canisters.get_mut(&caller).expect("caller exists");
            let caller_subnet = canister.subnet;
            // The exec layer withdrew the same: attached cycles, the base fee (burned below) and
            // the response reservation (held in the pending call until the response).
            let fee = call_base_fee(call.method.len() as u64, call.payload.len() as u64);
            canister.debit_cycles(call.cycles);
            let reserved_for_response = MAX_CYCLES_PER_RESPONSE.min(canister.cycles);
            canister.debit_cycles(reserved_for_response);
            *canister
                .outstanding_by_callee
                .entry(call.callee)
                .or_default() += 1;
            canister
                .contexts
                .get_mut(&context)
                .expect("context of a running execution")
                .outstanding_calls += 1;
            self.burn_cycles(caller, fee);
            let target = self.call_target(call.callee, &call.method, &call.payload);
            self.calls.insert(
                call_id,
                OutstandingCall {
                    originator: caller,
                    context,
                    callee: call.callee,
                    method: call.method.clone(),
                    target,
                    bounded_wait: deadline_nanos.is_some(),
                    callback: call.callback,
                    reserved_for_response,
                    answered: false,
                },
            );
            if let Some(deadline) = deadline_nanos {
                self.call_deadlines.insert((deadline, call_id));
            }
            self.record(TraceKind::Request {
                from: caller,
                to: call.callee,
                method: call.method.clone(),
                bytes: call.payload.len(),
            });
            let destination = self.destination_subnet(caller_subnet, call.callee, target);
            let Some(subnet) = destination else {
                let reject = errors::no_route(call.callee);
                self.reject_request(
                    caller,
                    call.callee,
                    call_id,
                    call.cycles,
                    caller_subnet,
                    reject,
                );
                continue;
            };
            // The exec layer already refused oversized requests to canisters; calls to the
            // management canister are only routed here, by their effective canister id.
            let limit = if subnet == caller_subnet {
                limits::MAX_SAME_SUBNET_PAYLOAD
            } else {
                limits::MAX_XNET_PAYLOAD
            };
            if call.payload.len() > limit {
                let reject = errors::request_too_large(call.callee, call.payload.len(), limit);
                self.reject_request(
                    caller,
                    call.callee,
                    call_id,
                    call.cycles,
                    caller_subnet,
                    reject,
                );
                continue;
            }
            self.count_bytes(call.payload.len(), subnet != caller_subnet);
            self.send(
                caller_subnet,
                subnet,
                Message::Request {
                    caller,
                    callee: call.callee,
                    method: call.method,
                    payload: call.payload,
                    cycles: call.cycles,
                    call_id,
                    deadline_nanos: deadline_nanos.unwrap_or(0),
                },
            );
        }
    }

    /// The system answers a request with a reject on behalf of `callee` (the request never ran):
    /// the attached cycles go back with it.
    fn reject_request(
        &mut self,
        caller: Principal,
        callee: Principal,
        call_id: u64,
        cycles: u128,
        from_subnet: usize,
        reject: Reject,
    ) {
        let origin = CallOrigin::Canister { caller, call_id };
        self.answer(callee, from_subnet, &origin, Err(reject), cycles);
    }

    /// Sends the answer of a call to whoever is waiting for it: the ingress history for users, a
    /// response message for canisters, nobody for system tasks.
    pub(crate) fn answer(
        &mut self,
        respondent: Principal,
        respondent_subnet: usize,
        origin: &CallOrigin,
        result: Result<Vec<u8>, Reject>,
        refund: u128,
    ) {
        match origin {
            CallOrigin::Ingress { id, .. } => {
                self.record(TraceKind::IngressDone {
                    id: *id,
                    ok: result.is_ok(),
                });
                self.ingress.insert(*id, IngressStatus::Completed(result));
            }
            CallOrigin::Canister { caller, call_id } => {
                let response = match result {
                    Ok(payload) => CallResponse::Reply(payload),
                    Err(reject) => CallResponse::Reject {
                        code: reject.code,
                        message: reject.message,
                    },
                };
                let bytes = match &response {
                    CallResponse::Reply(payload) => payload.len(),
                    CallResponse::Reject { message, .. } => message.len(),
                };
                self.record(TraceKind::Response {
                    from: respondent,
                    to: *caller,
                    ok: matches!(response, CallResponse::Reply(_)),
                    bytes,
                });
                if self.response_fault(respondent, *call_id) {
                    return; // Lost: the caller's deadline answers it with SYS_UNKNOWN.
                }
                let Some(caller_subnet) = self.canisters.get(caller).map(|c| c.subnet) else {
                    return; // The caller was deleted: nobody is left to receive the answer.
                };
                self.count_bytes(bytes, caller_subnet != respondent_subnet);
                self.send(
                    respondent_subnet,
                    caller_subnet,
                    Message::Response {
                        originator: *caller,
                        respondent,
                        call_id: *call_id,
                        response,
                        refund,
                    },
                );
            }
            CallOrigin::System => {}
        }
    }

    /// Moves every message due this round from flight into input queues (or the management
    /// queue of its subnet), rejecting those whose destination cannot take them.
    pub(crate) fn induct_due_messages(&mut self) {
        while let Some(entry) = self.in_flight.first_entry() {
            if entry.key().0 > self.round {
                break;
            }
            let in_flight = entry.remove();
            self.induct(in_flight);
        }
    }

    fn induct(&mut self, InFlight { subnet, message }: InFlight) {
        match message {
            Message::Ingress {
                id,
                sender,
                receiver,
                method,
                payload,
            } => {
                let origin = CallOrigin::Ingress { id, sender };
                if receiver == Principal::management_canister() {
                    self.enqueue_management(subnet, origin, sender, method, payload, 0);
                    return;
                }
                match self.receiver_refusal(receiver) {
                    Some(reject) => self.answer(receiver, subnet, &origin, Err(reject), 0),
                    None => self.push_input(
                        receiver,
                        Message::Ingress {
                            id,
                            sender,
                            receiver,
                            method,
                            payload,
                        },
                    ),
                }
            }
            Message::Request {
                caller,
                callee,
                method,
                payload,
                cycles,
                call_id,
                deadline_nanos,
            } => {
                let origin = CallOrigin::Canister { caller, call_id };
                if callee == Principal::management_canister()
                    || self.subnet_index(&callee).is_some()
                {
                    self.enqueue_management(subnet, origin, caller, method, payload, cycles);
                    return;
                }
                let expired = deadline_nanos != 0 && self.time_nanos > deadline_nanos;
                let refusal = self
                    .receiver_refusal(callee)
                    .or_else(|| self.too_few_cycles(caller, callee, cycles));
                match refusal {
                    Some(reject) => self.answer(callee, subnet, &origin, Err(reject), cycles),
                    // An expired bounded-wait request is shed; its caller gets SYS_UNKNOWN.
                    None if expired => {}
                    None => self.push_input(
                        callee,
                        Message::Request {
                            caller,
                            callee,
                            method,
                            payload,
                            cycles,
                            call_id,
                            deadline_nanos,
                        },
                    ),
                }
            }
            Message::Response {
                originator,
                respondent,
                call_id,
                response,
                refund,
            } => {
                let Some(call) = self.calls.get_mut(&call_id) else {
                    return;
                };
                if call.answered {
                    return; // Late response to a bounded-wait call that already timed out.
                }
                call.answered = true;
                self.push_input(
                    originator,
                    Message::Response {
                        originator,
                        respondent,
                        call_id,
                        response,
                        refund,
                    },
                );
            }
        }
    }

    fn enqueue_management(
        &mut self,
        subnet: usize,
        origin: CallOrigin,
        caller: Principal,
        method: String,
        payload: Vec<u8>,
        cycles: u128,
    ) {
        let call = ManagementCall::new(origin, caller, method, payload, cycles, subnet);
        self.subnets[subnet].management_queue.push_back(call);
    }

    /// Why `receiver` cannot take a new call right now, if it cannot.
    fn receiver_refusal(&self, receiver: Principal) -> Option<Reject> {
        match self.canisters.get(&receiver) {
            None => Some(errors::canister_not_found(receiver)),
            Some(c) if c.status != CanisterRunStatus::Running => {
                Some(errors::induction_not_running(receiver, c.status))
            }
            Some(_) => None,
        }
    }

    /// IC interface specification, abstract behaviour, "Calls with insufficient cycles are
    /// rejected": a call from another canister attaching fewer cycles than the callee's
    /// `minimum_incoming_canister_call_cycles` is rejected with CANISTER_ERROR and its cycles
    /// refunded; self-calls (and ingress) are not affected.
    fn too_few_cycles(&self, caller: Principal, callee: Principal, cycles: u128) -> Option<Reject> {
        if caller == callee {
            return None;
        }
        let state = self.canisters.get(&callee)?;
        let minimum = nat_to_u128(&state.settings.minimum_incoming_canister_call_cycles);
        (cycles < minimum).then(|| errors::too_few_incoming_cycles(callee, cycles, minimum))
    }

    pub(crate) fn push_input(&mut self, canister: Principal, message: Message) {
        if let Some(c) = self.canisters.get_mut(&canister) {
            c.input.push_back(message);
            self.note_may_have_work(canister);
        }
    }

    /// Takes the next inducted message of `canister`'s input queue.
    pub(crate) fn pop_input(&mut self, canister: Principal) -> Option<Message> {
        self.canisters
            .get_mut(&canister)
            .and_then(|c| c.input.pop_front())
    }

    // ---- Call contexts. ----

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

    /// Counts an execution's instructions against its call context
    /// (`ExecEnv::call_context_instructions` of the context's next execution).
    pub(crate) fn count_context_instructions(
        &mut self,
        canister: Principal,
        context: u64,
        instructions: u64,
    ) {
        if let Some(call_context) = self
            .canisters
            .get_mut(&canister)
            .and_then(|s| s.contexts.get_mut(&context))
        {
            call_context.instructions += instructions;
        }
    }

    /// `ic0.msg_cycles_accept`: `accepted` cycles move from the call context to the balance.
    pub(crate) fn accept_cycles(&mut self, canister: Principal, context: u64, accepted: u128) {
        let state = self.canisters.get_mut(&canister).expect("canister exists");
        state.credit_cycles(accepted);
        if let Some(call_context) = state.contexts.get_mut(&context) {
            call_context.cycles_available = call_context.cycles_available.saturating_sub(accepted);
        }
    }

    /// `uninstall_code`: every open call context of `canister` is rejected and its callbacks
    /// will not run.
    pub(crate) fn reject_open_contexts(&mut self, canister: Principal) {
        let state = self
            .canisters
            .get_mut(&canister)
            .expect("checked by caller");
        let contexts: Vec<u64> = state.contexts.keys().copied().collect();
        for context in &contexts {
            if let Some(c) = state.contexts.get_mut(context) {
                c.deleted = true;
            }
        }
        for context in contexts {
            self.respond_context(canister, context, Err(errors::uninstalled()));
            self.close_context_if_done(canister, context, None);
        }
    }

    /// A response for `canister` is about to execute: its pending call is done, the refund and
    /// the call's response reservation come back, the call no longer counts towards its callee's
    /// queue or its context. Returns the call and whether its callback runs (the canister still
    /// has code and the context was not deleted). `None` for an unknown call or canister.
    pub(crate) fn settle_response(
        &mut self,
        canister: Principal,
        call_id: u64,
        refund: u128,
    ) -> Option<(OutstandingCall, bool)> {
        let call = self.calls.remove(&call_id)?;
        let state = self.canisters.get_mut(&canister)?;
        // Interface spec `ic0.cost_call`: the reservation comes back and the response pays what it
        // actually cost: its transmission, its execution (or, if the callback cannot run, the base
        // fee: dfinity/ic `settle_prepayment_for_unexecuted_response`), both in `execution`.
        state.credit_cycles(refund);
        state.credit_cycles(call.reserved_for_response);
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
        Some((call, callback_runs))
    }
}
