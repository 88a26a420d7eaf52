//! Cycles: what canisters pay for, and the freezing threshold.
//!
//! Prices are those of a 13-node application subnet (IC docs "Cycle costs"): update execution
//! 5_000_000 per message plus 1 per instruction, ingress reception 1_200_000 plus 2_000 per byte
//! (method name and argument), storage 127_000 per GiB per second, inter-canister calls
//! 260_000 plus 1_000 per request byte ([`crate::exec::call_base_fee`], charged when a call is
//! sent) plus 1_000 per response byte ([`crate::exec::response_transmission_fee`]).
//!
//! Call reservation (interface spec `ic0.cost_call`): `call_perform` also withholds
//! [`crate::exec::MAX_CYCLES_PER_RESPONSE`] (a 2 MiB response plus its callback at the instruction
//! limit) until the response is processed; it then comes back and the response pays its actual
//! bytes and execution (the base fee alone if its callback cannot run).
//!
//! Who pays what, and when:
//! - ingress: the receiver (for a management canister method, the canister it is about) pays the
//!   reception fee when the message is accepted; a canister that cannot pay it without going below
//!   its freezing limit refuses the message (`IC0207`, `SYS_TRANSIENT`);
//! - executions: before a call, timer or heartbeat runs, the canister must hold its freezing limit
//!   plus the cost of the message's whole instruction limit (the replica's prepayment), otherwise
//!   a call is rejected with `IC0207` and a timer or heartbeat does not run; afterwards it pays
//!   the base fee plus the instructions used (trapped executions too). Responses always run (their
//!   execution is covered by the call's reservation). During the execution `canister_cycle_balance`
//!   excludes the prepayment and `call_perform` returns 2 rather than go below the freezing limit;
//! - `install_code`: the same with the install instruction limit (300 B); the error text is the
//!   replica's "Canister installation failed with `...`";
//! - heavy management methods with a fixed instruction count (`upload_chunk`, taking or loading a
//!   snapshot, see [`crate::SchedulingConfig`]) cost their target that execution;
//! - storage and allocation: every round, for the time since its last charge, every canister pays
//!   its idle burn rate: its memory (heap, stable memory, module, chunk store at 1 MiB per chunk,
//!   snapshots; at least `memory_allocation`) at 127_000 per GiB per second, plus 10_000_000 per
//!   percent of `compute_allocation` per second. A canister that cannot pay loses its code, chunk
//!   store and snapshots and is left with 0 cycles (the IC uninstalls a canister that runs out of
//!   cycles).
//!
//! Freezing (IC interface specification, management canister "create_canister",
//! `freezing_threshold`): freezing limit = idle burn rate per second x `freezing_threshold`
//! seconds (default 2_592_000 s = 30 days). A canister whose balance is below it is frozen.

use super::errors;
use super::state::{nat_to_u64, CanisterState};
use super::Sim;
use crate::types::{limits, Principal, Reject};

const GIB: u128 = 1 << 30;
const NANOS_PER_SECOND: u128 = 1_000_000_000;
const SECONDS_PER_DAY: u128 = 86_400;

/// Cycle prices. The default is a 13-node application subnet (IC docs "Cycle costs").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CycleCosts {
    /// Base fee of every replicated execution (update, replicated query, response, timer,
    /// heartbeat, install).
    pub update_message_execution_fee: u128,
    pub cycles_per_instruction: u128,
    pub ingress_message_reception_fee: u128,
    pub ingress_byte_reception_fee: u128,
    pub storage_fee_per_gib_second: u128,
    /// Per percent of `compute_allocation` per second.
    pub compute_allocation_fee_per_percent_second: u128,
}

impl Default for CycleCosts {
    fn default() -> Self {
        CycleCosts {
            update_message_execution_fee: 5_000_000,
            cycles_per_instruction: 1,
            ingress_message_reception_fee: 1_200_000,
            ingress_byte_reception_fee: 2_000,
            storage_fee_per_gib_second: 127_000,
            compute_allocation_fee_per_percent_second: 10_000_000,
        }
    }
}

/// What a canister is billed for while idle: its memory (the larger of usage and
/// `memory_allocation`) and its `compute_allocation`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResourceUse {
    pub memory_bytes: u64,
    pub compute_allocation_percent: u64,
}

impl CycleCosts {
    /// Base fee plus `instructions`.
    pub fn execution_cost(&self, instructions: u64) -> u128 {
        self.update_message_execution_fee + self.cycles_per_instruction * u128::from(instructions)
    }
    /// Reception fee of an ingress message (the replica counts method name and argument bytes).
    pub fn ingress_induction_cost(&self, method_len: usize, payload_len: usize) -> u128 {
        self.ingress_message_reception_fee
            + self.ingress_byte_reception_fee * (method_len + payload_len) as u128
    }
    /// Idle burn per second, in units of 1 / GiB cycles (exact).
    fn idle_burn_per_second_scaled(&self, resources: ResourceUse) -> u128 {
        u128::from(resources.memory_bytes) * self.storage_fee_per_gib_second
            + u128::from(resources.compute_allocation_percent)
                * self.compute_allocation_fee_per_percent_second
                * GIB
    }
    /// `idle_cycles_burned_per_day` of `canister_status`: the idle burn rate x 86_400 s.
    pub fn idle_cycles_burned_per_day(&self, resources: ResourceUse) -> u128 {
        self.idle_burn_per_second_scaled(resources) * SECONDS_PER_DAY / GIB
    }
    /// Freezing limit: the idle burn rate x `freezing_threshold_seconds`.
    pub fn freezing_limit(&self, resources: ResourceUse, freezing_threshold_seconds: u64) -> u128 {
        self.idle_burn_per_second_scaled(resources) * u128::from(freezing_threshold_seconds) / GIB
    }
}

/// What `resources` cost for `nanos`, in units of 1 / (GiB x 1e9) cycles (kept exact: the
/// remainder carries over to the next charge).
fn idle_charge_units(costs: &CycleCosts, resources: ResourceUse, nanos: u64) -> u128 {
    costs.idle_burn_per_second_scaled(resources) * u128::from(nanos)
}

/// What `state`'s idle burn rate is computed from.
fn resource_use(state: &CanisterState) -> ResourceUse {
    ResourceUse {
        memory_bytes: state
            .memory_size()
            .max(nat_to_u64(&state.settings.memory_allocation)),
        compute_allocation_percent: nat_to_u64(&state.settings.compute_allocation),
    }
}

/// The only ways other modules change a balance (besides [`Sim::burn_cycles`]).
impl CanisterState {
    /// Adds `amount` (saturating): refunds, accepted and deposited cycles.
    pub(crate) fn credit_cycles(&mut self, amount: u128) {
        self.cycles = self.cycles.saturating_add(amount);
    }

    /// Takes `amount` (at most the balance) without counting it as burned: cycles attached to a
    /// call or reserved for its response, and what canister code burned itself.
    pub(crate) fn debit_cycles(&mut self, amount: u128) {
        self.cycles = self.cycles.saturating_sub(amount);
    }

    /// Sets the balance: the test control `Sim::set_cycles`, and 0 for a canister that could not
    /// pay for its storage.
    pub(crate) fn set_cycle_balance(&mut self, cycles: u128) {
        self.cycles = cycles;
    }
}

impl Sim {
    /// The cycles below which `state` is frozen (0 when charging is off).
    pub(crate) fn freezing_limit_of(&self, state: &CanisterState) -> u128 {
        if !self.config.charge_cycles {
            return 0;
        }
        let threshold = nat_to_u64(&state.settings.freezing_threshold);
        self.config
            .cycle_costs
            .freezing_limit(resource_use(state), threshold)
    }

    /// `idle_cycles_burned_per_day` of `state` (0 when charging is off).
    pub(crate) fn idle_cycles_burned_per_day_of(&self, state: &CanisterState) -> u128 {
        if !self.config.charge_cycles {
            return 0;
        }
        self.config
            .cycle_costs
            .idle_cycles_burned_per_day(resource_use(state))
    }

    /// True when `state`'s balance is below its freezing limit.
    pub(crate) fn is_frozen(&self, state: &CanisterState) -> bool {
        state.cycles < self.freezing_limit_of(state)
    }

    /// True when `canister` can prepay a timer or heartbeat (a frozen canister cannot).
    pub(crate) fn can_run_tasks(&self, canister: Principal) -> bool {
        self.check_prepayment(canister, limits::MAX_INSTRUCTIONS_PER_UPDATE)
            .is_ok()
    }

    /// What an execution with `instruction_limit` must hold on top of the freezing limit before it
    /// starts (0 when charging is off).
    pub(crate) fn execution_prepayment(&self, instruction_limit: u64) -> u128 {
        if self.config.charge_cycles {
            self.config.cycle_costs.execution_cost(instruction_limit)
        } else {
            0
        }
    }

    /// `Ok(prepayment)` when `canister` can start an execution with `instruction_limit`, else
    /// `Err(missing cycles)`.
    pub(crate) fn check_prepayment(
        &self,
        canister: Principal,
        instruction_limit: u64,
    ) -> Result<u128, u128> {
        let state = &self.canisters[&canister];
        let prepayment = self.execution_prepayment(instruction_limit);
        let required = self.freezing_limit_of(state) + prepayment;
        if state.cycles < required {
            return Err(required - state.cycles);
        }
        Ok(prepayment)
    }

    /// Takes `amount` cycles (at most the balance) from `canister` and counts them as burned.
    pub(crate) fn burn_cycles(&mut self, canister: Principal, amount: u128) {
        let Some(state) = self.canisters.get_mut(&canister) else {
            return;
        };
        let burned = amount.min(state.cycles);
        state.cycles -= burned;
        state.cycles_burned += burned;
        self.recorder.stats.cycles_burned += burned;
    }

    /// Charges the execution of `instructions` (nothing when charging is off).
    pub(crate) fn charge_execution(&mut self, canister: Principal, instructions: u64) {
        if self.config.charge_cycles {
            let cost = self.config.cycle_costs.execution_cost(instructions);
            self.burn_cycles(canister, cost);
        }
    }

    /// The ingress reception fee for a message to `payer`: `Err(IC0207)` when paying it would
    /// take `payer` below its freezing limit. `Ok(0)` when charging is off.
    pub(crate) fn ingress_fee(
        &self,
        payer: Principal,
        sender: Principal,
        method: &str,
        payload: &[u8],
    ) -> Result<u128, Reject> {
        if !self.config.charge_cycles {
            return Ok(0);
        }
        let Some(state) = self.canisters.get(&payer) else {
            return Ok(0);
        };
        let fee = self
            .config
            .cycle_costs
            .ingress_induction_cost(method.len(), payload.len());
        let required = self.freezing_limit_of(state) + fee;
        if state.cycles < required {
            // The replica tells only controllers how much is missing.
            return Err(if state.is_controller(&sender) {
                errors::out_of_cycles(payer, required - state.cycles)
            } else {
                errors::out_of_cycles_hidden(payer)
            });
        }
        Ok(fee)
    }

    /// Charges every canister for its storage and compute allocation since its last charge, once
    /// the charge interval has passed since the last charge (`SimConfig`). A canister that cannot
    /// pay is left with 0 cycles and uninstalled.
    pub(crate) fn charge_storage(&mut self) {
        let now = self.time_nanos;
        if !self.config.charge_cycles
            || now
                < self
                    .last_allocation_charge_nanos
                    .saturating_add(self.config.allocation_charge_interval_nanos)
        {
            return;
        }
        self.last_allocation_charge_nanos = now;
        let unit = GIB * NANOS_PER_SECOND;
        let mut out_of_cycles = Vec::new();
        // Each canister pays in place (`burn_cycles` without looking it up again).
        let stats = &mut self.recorder.stats;
        for (id, state) in self.canisters.iter_mut() {
            let elapsed = now.saturating_sub(state.storage_paid_until_nanos);
            state.storage_paid_until_nanos = now;
            let units = idle_charge_units(&self.config.cycle_costs, resource_use(state), elapsed)
                + state.storage_charge_remainder;
            state.storage_charge_remainder = units % unit;
            let cost = units / unit;
            if cost > state.cycles {
                out_of_cycles.push(*id);
            }
            let burned = cost.min(state.cycles);
            state.cycles -= burned;
            state.cycles_burned += burned;
            stats.cycles_burned += burned;
        }
        for canister in out_of_cycles {
            self.uninstall_out_of_cycles(canister);
            if let Some(state) = self.canisters.get_mut(&canister) {
                state.set_cycle_balance(0);
            }
        }
    }
}
