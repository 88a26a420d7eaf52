//! Messages from users: the ingress filter (what the IC refuses before a message enters a block,
//! including `canister_inspect_message`) and non-replicated queries.
//!
//! IC interface specification, "Ingress message inspection", "Effective canister id" and
//! "Query calls"; the replica's ingress filter for management canister methods.

use super::certificate::{self, CertifiedQueryData};
use super::errors::{self, MethodKind};
use super::management::{self, IngressAccess};
use super::state::Message;
use super::trace::Replication;
use super::Sim;
use crate::exec::{
    CallResponse, CanisterInstance, ExecEnv, ExecKind, ExecOutcome, ExecResponse, OutgoingCall,
    SystemEntry,
};
use crate::types::{limits, CanisterRunStatus, Principal, Reject};
use crate::{IngressStatus, MessageId, TraceKind};
use std::collections::VecDeque;

impl Sim {
    /// Checks an ingress message and, when the IC would accept it, puts it in flight for the next
    /// round.
    pub(crate) fn accept_ingress(
        &mut self,
        sender: Principal,
        receiver: Principal,
        method: &str,
        payload: Vec<u8>,
    ) -> Result<MessageId, Reject> {
        if payload.len() > limits::MAX_INGRESS_PAYLOAD {
            return Err(errors::ingress_too_large(
                payload.len(),
                limits::MAX_INGRESS_PAYLOAD,
            ));
        }
        let (subnet, payer) = if receiver == Principal::management_canister() {
            self.management_ingress_filter(sender, method, &payload)?
        } else {
            let subnet = self.canister_ingress_filter(sender, receiver, method, &payload)?;
            (subnet, Some(receiver))
        };
        if let Some(payer) = payer {
            let fee = self.ingress_fee(payer, sender, method, &payload)?;
            self.burn_cycles(payer, fee);
        }
        let id = MessageId(self.next_message_id);
        self.next_message_id += 1;
        self.ingress.insert(id, IngressStatus::Processing);
        self.record(TraceKind::Ingress {
            id,
            sender,
            canister: receiver,
            method: method.to_string(),
            bytes: payload.len(),
        });
        self.count_bytes(payload.len(), false);
        // Ingress enters the next block: one round, wherever the receiver is.
        let message = Message::Ingress {
            id,
            sender,
            receiver,
            method: method.to_string(),
            payload,
        };
        self.send_with_latency(1, subnet, message);
        Ok(id)
    }

    /// The ingress filter for the management canister: which methods users may call, the
    /// controller check on the effective canister id, the subnet that executes the call and the
    /// canister that pays for the message (the effective canister; provisional methods are free).
    fn management_ingress_filter(
        &self,
        sender: Principal,
        method: &str,
        payload: &[u8],
    ) -> Result<(usize, Option<Principal>), Reject> {
        let access = management::find_method(method)
            .map(|m| m.ingress)
            .unwrap_or(IngressAccess::CanistersOnly);
        let target = management::effective_canister_id(method, payload);
        match access {
            IngressAccess::CanistersOnly => Err(errors::only_canisters_can_call(method)),
            IngressAccess::Anyone => Ok((target.and_then(|id| self.route(&id)).unwrap_or(0), None)),
            IngressAccess::ControllersOfTarget => {
                let target = target.ok_or_else(|| {
                    errors::invalid_management_payload(method, "no effective canister id")
                })?;
                let state = self
                    .canisters
                    .get(&target)
                    .ok_or_else(|| errors::canister_not_found(target))?;
                if !state.is_controller(&sender) {
                    return Err(errors::ingress_not_a_controller(target, method));
                }
                Ok((state.subnet, Some(target)))
            }
        }
    }

    /// The ingress filter for canisters: the receiver must exist, run, have code and export the
    /// method; `canister_inspect_message`, if exported, must accept the message.
    fn canister_ingress_filter(
        &mut self,
        sender: Principal,
        receiver: Principal,
        method: &str,
        payload: &[u8],
    ) -> Result<usize, Reject> {
        self.replicated_call_kind(receiver, method)?;
        let state = &self.canisters[&receiver];
        let subnet = state.subnet;
        let module = state.instance.as_ref().expect("checked").module();
        if !module.exports_entry(SystemEntry::InspectMessage) {
            return Ok(subnet);
        }
        let env = self.exec_env(
            state,
            sender,
            payload.to_vec(),
            limits::MAX_INSTRUCTIONS_PER_INSPECT_MESSAGE,
        );
        let kind = ExecKind::InspectMessage {
            method: method.to_string(),
        };
        let outcome = self
            .canisters
            .get_mut(&receiver)
            .and_then(|s| s.instance.as_mut())
            .expect("checked")
            .execute(&kind, &env);
        self.record_execution(
            receiver,
            format!("inspect_message:{method}"),
            &outcome,
            Replication::NonReplicated,
        );
        if let Some(trap) = &outcome.trap {
            return Err(errors::trapped(receiver, trap));
        }
        if !outcome.message_accepted {
            return Err(errors::inspect_message_refused(receiver));
        }
        Ok(subnet)
    }

    /// A non-replicated query, executed at once; its state changes are discarded by the exec
    /// layer. It reads a certificate of its canister's certified data (IC interface
    /// specification, "Certified data"). A composite query's calls to other canisters' queries
    /// run at once too ("Composite query methods").
    pub(crate) fn execute_query(
        &mut self,
        sender: Principal,
        receiver: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, Reject> {
        if receiver == Principal::management_canister() {
            return self.management_query(sender, method, arg);
        }
        let certificate = self.query_certificate(receiver);
        self.query_in_graph(sender, receiver, method, arg, certificate, 0)
    }

    /// The certificate a query to `canister` reads: its certified data and the time.
    fn query_certificate(&self, canister: Principal) -> Option<Vec<u8>> {
        let state = self.canisters.get(&canister)?;
        let data = CertifiedQueryData {
            subnet: state.subnet,
            canister,
            certified_data: state.certified_data.clone(),
            time_nanos: self.time_nanos,
        };
        Some(match &self.data_certifier {
            Some(certifier) => certifier(&data),
            None => certificate::unsigned_certificate(&data),
        })
    }

    /// One query of a query call graph: the one a user sent (`depth` 0, with a certificate) or
    /// one a composite query called.
    pub(crate) fn query_in_graph(
        &mut self,
        sender: Principal,
        receiver: Principal,
        method: &str,
        arg: Vec<u8>,
        certificate: Option<Vec<u8>>,
        depth: usize,
    ) -> Result<Vec<u8>, Reject> {
        let state = self
            .canisters
            .get(&receiver)
            .ok_or_else(|| errors::canister_not_found(receiver))?;
        if state.status == CanisterRunStatus::Stopped {
            return Err(errors::query_to_stopped(receiver));
        }
        if self.is_frozen(state) {
            return Err(errors::query_to_frozen(receiver));
        }
        let module = state
            .instance
            .as_ref()
            .ok_or_else(|| errors::wasm_module_not_found(receiver))?
            .module();
        let kind = if module.has_query(method) {
            ExecKind::Query {
                method: method.to_string(),
                replicated: false,
            }
        } else if module.has_composite_query(method) {
            ExecKind::CompositeQuery {
                method: method.to_string(),
            }
        } else {
            return Err(errors::method_not_found(
                receiver,
                MethodKind::Query,
                method,
            ));
        };
        let mut env = self.exec_env(state, sender, arg, limits::MAX_INSTRUCTIONS_PER_QUERY);
        env.data_certificate = certificate;
        if let ExecKind::CompositeQuery { .. } = kind {
            return self.composite_query(receiver, &kind, env, depth);
        }
        let outcome = self
            .canisters
            .get_mut(&receiver)
            .and_then(|s| s.instance.as_mut())
            .expect("checked")
            .execute(&kind, &env);
        self.record_execution(
            receiver,
            format!("query:{method}"),
            &outcome,
            Replication::NonReplicated,
        );
        if let Some(trap) = &outcome.trap {
            return Err(errors::trapped(receiver, trap));
        }
        match outcome.response {
            Some(ExecResponse::Reply(payload)) => Ok(payload),
            Some(ExecResponse::Reject(message)) => Err(errors::canister_rejected(message)),
            None => Err(errors::did_not_reply(receiver)),
        }
    }

    /// A composite query ("Composite query methods"): it runs on a copy of the canister's
    /// instance, so that its callbacks see the state it left and nothing of it persists; each
    /// call it makes runs at once as a query of a canister on the same subnet (query or
    /// composite query method), and its callback then runs on the copy (in the composite callback
    /// modes CRy/CRt/CC), until the composite query replies. Calls nest at most
    /// [`MAX_QUERY_CALL_DEPTH`] deep (the replica's `QueryCallGraphTooDeep`, IC0525).
    fn composite_query(
        &mut self,
        receiver: Principal,
        kind: &ExecKind,
        env: ExecEnv,
        depth: usize,
    ) -> Result<Vec<u8>, Reject> {
        if depth >= MAX_QUERY_CALL_DEPTH {
            return Err(errors::query_call_graph_too_deep(receiver));
        }
        let live = self.canisters[&receiver]
            .instance
            .as_ref()
            .expect("checked by the caller");
        let mut copy = CanisterInstance::from_snapshot(&live.snapshot())
            .map_err(|e| errors::trapped(receiver, &e))?;
        let label = match kind {
            ExecKind::CompositeQuery { method } => format!("composite_query:{method}"),
            _ => unreachable!("only composite queries"),
        };
        let mut outcome = copy.execute(kind, &env);
        let mut pending: VecDeque<OutgoingCall> = VecDeque::new();
        loop {
            self.record_execution(
                receiver,
                label.clone(),
                &outcome,
                Replication::NonReplicated,
            );
            let ExecOutcome {
                trap,
                response,
                calls,
                ..
            } = outcome;
            match response {
                Some(ExecResponse::Reply(payload)) => return Ok(payload),
                Some(ExecResponse::Reject(message)) => {
                    return Err(errors::canister_rejected(message))
                }
                None => {}
            }
            if let Some(trap) = trap {
                return Err(errors::trapped(receiver, &trap));
            }
            pending.extend(calls);
            let Some(call) = pending.pop_front() else {
                return Err(errors::did_not_reply(receiver));
            };
            let response = match self.composite_callee_answer(receiver, &call, depth) {
                Ok(payload) => CallResponse::Reply(payload),
                Err(reject) => CallResponse::Reject {
                    code: reject.code,
                    message: reject.message,
                },
            };
            let callback_env = ExecEnv {
                arg: Vec::new(),
                data_certificate: None,
                ..env.clone()
            };
            outcome = copy.execute(
                &ExecKind::CompositeResponse {
                    callback: call.callback,
                    response,
                },
                &callback_env,
            );
        }
    }

    /// What a call from a composite query gets back: the callee must be a canister on the
    /// caller's subnet; it runs without a certificate.
    fn composite_callee_answer(
        &mut self,
        caller: Principal,
        call: &OutgoingCall,
        depth: usize,
    ) -> Result<Vec<u8>, Reject> {
        let caller_subnet = self.canisters[&caller].subnet;
        match self.canisters.get(&call.callee) {
            Some(callee) if callee.subnet == caller_subnet => {}
            _ => return Err(errors::canister_not_found(call.callee)),
        }
        self.query_in_graph(
            caller,
            call.callee,
            &call.method,
            call.payload.clone(),
            None,
            depth + 1,
        )
    }
}

/// How deep composite queries may call one another (the replica's `max_query_call_graph_depth`).
const MAX_QUERY_CALL_DEPTH: usize = 6;
