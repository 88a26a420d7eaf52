//! Fault injection: rules a test sets up ([`Fault`]), seeded random faults ([`RandomFaults`]) and
//! closures run before a chosen round ([`Sim::at_round`]).
//!
//! Every fault stays within what the IC may do: the management canister may reject a call; a
//! bounded-wait call may end in `SYS_UNKNOWN` although the callee executed it (IC interface
//! specification, `ic0.call_with_best_effort_response`); messages may be slow (in order per
//! route); a stop may not complete before `stop_canister` times out. An unbounded-wait call is
//! guaranteed a response, so its response is never dropped. Random draws come from their own
//! stream seeded by `SimConfig::seed`, so the same seed and configuration give the same faults, and
//! `raw_rand` values do not depend on them. Each fault that takes effect is traced as
//! [`TraceKind::Fault`](crate::TraceKind::Fault).

use super::management::ManagementCall;
use super::Sim;
use crate::types::{Principal, Reject, RejectCode};
use crate::TraceKind;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Identifies a fault set up with [`Sim::inject`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FaultId(pub u64);

/// How often a fault applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FaultCount {
    /// To the next `n` (> 0) matching events, then it is gone.
    Times(u32),
    /// Until [`Sim::clear_fault`].
    Always,
}

/// A fault rule. The first matching rule, in injection order, applies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fault {
    /// The management canister rejects `method` with `code` and `message` without executing it,
    /// for calls whose effective canister id is in `targets` (any call when empty).
    RejectManagement {
        method: String,
        targets: Vec<Principal>,
        code: RejectCode,
        message: String,
        count: FaultCount,
    },
    /// The response to a matching bounded-wait call is lost after the callee executed it: the
    /// caller gets `SYS_UNKNOWN` at the call's deadline. Matches calls to `callee` (the
    /// management canister for management calls), to `method` and about `target` (a management
    /// call's effective canister id) where given. Unbounded-wait calls never match.
    DropResponse {
        callee: Principal,
        method: Option<String>,
        target: Option<Principal>,
        count: FaultCount,
    },
    /// Messages to or from `canister` (ingress, requests, responses) arrive `rounds` rounds
    /// later; later messages on the same route arrive after them.
    Delay {
        canister: Principal,
        rounds: u64,
        count: FaultCount,
    },
    /// `canister` stays stopping, even once no call context is open, until the fault is cleared
    /// or, with `rounds`, until that many rounds after injection. A `stop_canister` call still
    /// times out as usual.
    HangStop {
        canister: Principal,
        rounds: Option<u64>,
    },
    /// `canister`'s next execution of `entry` (its traced entry label: `update:<method>`,
    /// `global_timer`, `heartbeat`, `response:<method called>`) traps before running any of its
    /// code, as a trap in the canister's own code would (out of instructions, stable memory that
    /// cannot grow, a bug): the IC keeps nothing the execution did and rejects its call with
    /// `CANISTER_ERROR`. A response's trap runs the call's cleanup closure, whose changes persist
    /// (IC interface specification, "Callback invocation": the cleanup runs when the reply or
    /// reject callback traps).
    TrapExecution {
        canister: Principal,
        entry: String,
        count: FaultCount,
    },
}

/// Probabilities of faults drawn from the seeded fault stream. All zero by default.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RandomFaults {
    /// Probability that a management call to one of `reject_methods` (any method when empty) is
    /// rejected with `SYS_TRANSIENT` without being executed.
    pub reject_management: f64,
    pub reject_methods: Vec<String>,
    /// Probability that the response to a bounded-wait call is dropped.
    pub drop_response: f64,
    /// Probability that a message is delayed, by 1 to `max_delay_rounds` rounds.
    pub delay: f64,
    pub max_delay_rounds: u64,
    /// Probability that a canister that begins stopping stays stopping for `hang_stop_rounds`
    /// rounds.
    pub hang_stop: f64,
    pub hang_stop_rounds: u64,
    /// Probability that a canister's execution of the response to a call to one of
    /// `trap_methods` (any method when empty) traps, as with [`Fault::TrapExecution`]: its
    /// changes are rolled back and the call's cleanup runs.
    pub trap_response: f64,
    pub trap_methods: Vec<String>,
}

/// Where a traced fault came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FaultSource {
    Rule(FaultId),
    Random,
}

/// What an injected fault did (see [`TraceKind::Fault`](crate::TraceKind::Fault)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FaultEvent {
    ManagementRejected {
        caller: Principal,
        method: String,
        target: Option<Principal>,
    },
    ResponseDropped {
        from: Principal,
        to: Principal,
        method: String,
    },
    MessageDelayed {
        from: Principal,
        to: Principal,
        rounds: u64,
    },
    /// Traced once per stop: when the canister would have become stopped.
    StopHeld {
        canister: Principal,
    },
    ExecutionTrapped {
        canister: Principal,
        entry: String,
    },
}

type Hook = Box<dyn FnOnce(&mut Sim) + Send>;

struct Rule {
    fault: Fault,
    remaining: FaultCount,
    /// Rules are gone at the start of this round.
    until_round: Option<u64>,
    source: FaultSource,
    /// `HangStop`: the canister version (it changes with every status change) at which the hold
    /// was traced, so each stop is traced once.
    held_at_version: Option<u64>,
}

/// The fault state of a [`Sim`].
#[derive(Default)]
pub(crate) struct Faults {
    rules: BTreeMap<FaultId, Rule>,
    next_id: u64,
    random: RandomFaults,
    draws: u64,
    /// Hooks by (round, order of scheduling).
    hooks: BTreeMap<(u64, u64), Hook>,
    next_hook: u64,
    /// For routes (from, to) with a delayed message in flight: its delivery round, before which no
    /// later message on the route may arrive.
    route_holdback: BTreeMap<(Principal, Principal), u64>,
}

impl Faults {
    /// The first rule `matches` accepts, with one application used up.
    fn take(&mut self, matches: impl Fn(&Fault) -> bool) -> Option<(FaultSource, Fault)> {
        let (&id, rule) = self
            .rules
            .iter_mut()
            .find(|(_, rule)| matches(&rule.fault))?;
        let applied = (rule.source, rule.fault.clone());
        match &mut rule.remaining {
            FaultCount::Times(1) => {
                self.rules.remove(&id);
            }
            FaultCount::Times(n) => *n -= 1,
            FaultCount::Always => {}
        }
        Some(applied)
    }
}

impl Sim {
    /// Sets up `fault`; it applies until it is used up or cleared. Panics on `Times(0)`.
    pub fn inject(&mut self, fault: Fault) -> FaultId {
        let remaining = match &fault {
            Fault::RejectManagement { count, .. }
            | Fault::DropResponse { count, .. }
            | Fault::Delay { count, .. }
            | Fault::TrapExecution { count, .. } => *count,
            Fault::HangStop { .. } => FaultCount::Always,
        };
        assert_ne!(
            remaining,
            FaultCount::Times(0),
            "a fault must apply at least once"
        );
        let until_round = match &fault {
            Fault::HangStop {
                rounds: Some(rounds),
                ..
            } => Some(self.round + rounds),
            _ => None,
        };
        self.add_rule(fault, remaining, until_round, false)
    }

    /// Removes a fault (releases a hung stop, for example). False if it was already gone.
    pub fn clear_fault(&mut self, id: FaultId) -> bool {
        self.faults.rules.remove(&id).is_some()
    }

    /// Replaces the probabilities of random faults.
    pub fn set_random_faults(&mut self, random: RandomFaults) {
        self.faults.random = random;
    }

    /// Runs `hook` just before round `round` executes (before the next round if `round` has
    /// passed). The hook may submit messages, which are inducted in that round, or run calls to
    /// completion, whose rounds then come first: e.g. a controller's own upgrade of a canister at
    /// any point of a scenario. Traced as [`TraceKind::Hook`](crate::TraceKind::Hook).
    pub fn at_round(&mut self, round: u64, hook: impl FnOnce(&mut Sim) + Send + 'static) {
        let order = self.faults.next_hook;
        self.faults.next_hook += 1;
        self.faults.hooks.insert((round, order), Box::new(hook));
    }

    fn add_rule(
        &mut self,
        fault: Fault,
        remaining: FaultCount,
        until_round: Option<u64>,
        random: bool,
    ) -> FaultId {
        let id = FaultId(self.faults.next_id);
        self.faults.next_id += 1;
        let source = if random {
            FaultSource::Random
        } else {
            FaultSource::Rule(id)
        };
        self.faults.rules.insert(
            id,
            Rule {
                fault,
                remaining,
                until_round,
                source,
                held_at_version: None,
            },
        );
        id
    }

    fn record_fault(&mut self, source: FaultSource, event: FaultEvent) {
        self.record(TraceKind::Fault { source, event });
    }

    /// True with probability `probability`, from the seeded fault stream (drawn only when the
    /// probability is positive).
    fn draw(&mut self, probability: f64) -> bool {
        // 53 random bits: a uniform f64 in [0, 1).
        let uniform = |bits: u64| (bits >> 11) as f64 / (1u64 << 53) as f64;
        probability > 0.0 && uniform(self.next_fault_random()) < probability
    }

    fn next_fault_random(&mut self) -> u64 {
        let mut hasher = Sha256::new();
        hasher.update(b"ic-sim faults");
        hasher.update(self.config.seed.to_le_bytes());
        hasher.update(self.faults.draws.to_le_bytes());
        self.faults.draws += 1;
        u64::from_le_bytes(hasher.finalize()[..8].try_into().expect("8 bytes"))
    }

    /// Start of a round: rules whose time is up are gone.
    pub(crate) fn expire_faults(&mut self) {
        let round = self.round;
        self.faults
            .rules
            .retain(|_, rule| rule.until_round.is_none_or(|until| until > round));
    }

    /// Runs the hooks due before the next round.
    pub(crate) fn run_due_hooks(&mut self) {
        let next_round = self.round + 1;
        while let Some(entry) = self.faults.hooks.first_entry() {
            let round = entry.key().0;
            if round > next_round {
                break;
            }
            let hook = entry.remove();
            self.record(TraceKind::Hook { round });
            hook(self);
        }
    }

    pub(crate) fn hook_due_next_round(&self) -> bool {
        self.faults
            .hooks
            .first_key_value()
            .is_some_and(|((round, _), _)| *round <= self.round + 1)
    }

    /// The reject an injected fault gives `call` instead of executing it, if any.
    pub(crate) fn management_fault(&mut self, call: &ManagementCall) -> Option<Reject> {
        let target = call.target;
        let rule = self.faults.take(|fault| {
            matches!(fault, Fault::RejectManagement { method, targets, .. }
                if *method == call.method
                    && (targets.is_empty() || target.is_some_and(|t| targets.contains(&t))))
        });
        let (source, code, message) = match rule {
            Some((source, Fault::RejectManagement { code, message, .. })) => {
                (source, code, message)
            }
            _ => {
                let random = &self.faults.random;
                let eligible = random.reject_methods.is_empty()
                    || random.reject_methods.contains(&call.method);
                if !(eligible && self.draw(self.faults.random.reject_management)) {
                    return None;
                }
                let message = format!("ic-sim random fault: {} rejected", call.method);
                (FaultSource::Random, RejectCode::SysTransient, message)
            }
        };
        self.record_fault(
            source,
            FaultEvent::ManagementRejected {
                caller: call.caller,
                method: call.method.clone(),
                target,
            },
        );
        Some(Reject {
            code,
            message,
            error_code: None,
        })
    }

    /// The trap message an injected fault gives `canister`'s execution of `entry` instead of
    /// running it, if any.
    pub(crate) fn execution_fault(&mut self, canister: Principal, entry: &str) -> Option<String> {
        let rule = self.faults.take(|fault| {
            matches!(fault, Fault::TrapExecution { canister: c, entry: e, .. }
                if *c == canister && e == entry)
        });
        let source = match rule {
            Some((source, _)) => source,
            None if entry.strip_prefix("response:").is_some_and(|method| {
                let methods = &self.faults.random.trap_methods;
                methods.is_empty() || methods.iter().any(|listed| listed == method)
            }) && self.draw(self.faults.random.trap_response) =>
            {
                FaultSource::Random
            }
            None => return None,
        };
        self.record_fault(
            source,
            FaultEvent::ExecutionTrapped {
                canister,
                entry: entry.to_string(),
            },
        );
        Some(format!("ic-sim injected fault: {entry} trapped"))
    }

    /// Whether an injected fault drops the response `respondent` sends for `call_id`.
    pub(crate) fn response_fault(&mut self, respondent: Principal, call_id: u64) -> bool {
        let Some(call) = self.calls.get(&call_id) else {
            return false;
        };
        if !call.bounded_wait || call.answered {
            return false;
        }
        let (caller, callee, method, call_target) = (
            call.originator,
            call.callee,
            call.method.clone(),
            call.target,
        );
        let rule = self.faults.take(|fault| {
            matches!(fault, Fault::DropResponse { callee: c, method: m, target: t, .. }
                if *c == callee
                    && m.as_ref().is_none_or(|m| *m == method)
                    && t.is_none_or(|t| Some(t) == call_target))
        });
        let source = match rule {
            Some((source, _)) => source,
            None if self.draw(self.faults.random.drop_response) => FaultSource::Random,
            None => return false,
        };
        self.record_fault(
            source,
            FaultEvent::ResponseDropped {
                from: respondent,
                to: caller,
                method,
            },
        );
        true
    }

    /// The round a message from `from` to `to` sent now with `latency` rounds is inducted: later
    /// by an injected delay, and never before an earlier delayed message on the same route.
    pub(crate) fn delivery_round(&mut self, from: Principal, to: Principal, latency: u64) -> u64 {
        let rule = self.faults.take(|fault| {
            matches!(fault, Fault::Delay { canister, .. } if *canister == from || *canister == to)
        });
        let delay = match rule {
            Some((source, Fault::Delay { rounds, .. })) => Some((source, rounds)),
            _ if self.draw(self.faults.random.delay) => {
                let max = self.faults.random.max_delay_rounds.max(1);
                Some((FaultSource::Random, 1 + self.next_fault_random() % max))
            }
            _ => None,
        };
        let mut round = self.round + latency;
        if let Some((source, rounds)) = delay {
            self.record_fault(source, FaultEvent::MessageDelayed { from, to, rounds });
            round += rounds;
        }
        let route = (from, to);
        match self.faults.route_holdback.get(&route) {
            Some(&held) if held > self.round => round = round.max(held),
            Some(_) => {
                self.faults.route_holdback.remove(&route);
            }
            None => {}
        }
        if delay.is_some() {
            self.faults.route_holdback.insert(route, round);
        }
        round
    }

    /// Whether a fault keeps `canister`, which has no open call context left, stopping.
    pub(crate) fn stop_held(&mut self, canister: Principal) -> bool {
        let version = self.canisters[&canister].version;
        let Some(rule) = self.faults.rules.values_mut().find(
            |rule| matches!(rule.fault, Fault::HangStop { canister: c, .. } if c == canister),
        ) else {
            return false;
        };
        if rule.held_at_version != Some(version) {
            rule.held_at_version = Some(version);
            let source = rule.source;
            self.record_fault(source, FaultEvent::StopHeld { canister });
        }
        true
    }

    /// A canister began stopping: a random fault may hang its stop.
    pub(crate) fn maybe_hang_stop(&mut self, canister: Principal) {
        if self.draw(self.faults.random.hang_stop) {
            let rounds = self.faults.random.hang_stop_rounds;
            let fault = Fault::HangStop {
                canister,
                rounds: Some(rounds),
            };
            let until_round = Some(self.round + rounds);
            self.add_rule(fault, FaultCount::Always, until_round, true);
        }
    }
}
