//! Rounds: what one round runs on every subnet and in which order, within the instruction budgets
//! of the scheduling model; and the lower bound on rounds that model implies. (Running one message
//! is the `execution` module's.)
//!
//! Figures from the replica's `subnet_config.rs` and scheduler (ic-interface-notes §4.2); every one
//! is a [`SchedulingConfig`] field.
//!
//! Every round, on every subnet:
//! 1. **Management canister messages** ("subnet messages") run first, FIFO. Methods that do real
//!    work count against a budget of `round_instruction_limit / subnet_message_fraction` (4 B / 16
//!    = 250 M): `install_code` and `install_chunked_code` count the instructions of their first
//!    slice, `upload_chunk` counts `upload_chunk_instructions` (200 M), taking or loading a
//!    snapshot `snapshot_instructions` (2 B). Such a message starts only while the budget is
//!    positive, so one snapshot uses up a round. The other methods (`canister_status`, start,
//!    stop, settings...) do not count and always run. A message whose canister is busy with a
//!    long execution waits, and so does any install while a long install runs on the subnet.
//! 2. **Canister messages**: the subnet has `execution_threads` x `round_instruction_limit`
//!    instructions (4 x 4 B); one canister runs on one thread, so it gets at most
//!    `round_instruction_limit` per round. Canisters take turns in id order starting at a position
//!    that rotates every round (round-robin). A canister runs its due timer, its heartbeat, then its
//!    inbox FIFO; a message starts only while both the canister and the subnet have budget left, the
//!    rest waits for the next round. Every execution costs `execution_overhead_instructions` (2 M)
//!    on top of its instructions, every canister that runs `canister_round_overhead_instructions`
//!    (8 M).
//! 3. **Install rate**: a canister pays off `install_code_rate_limit` (2 B) install instructions
//!    per round; while earlier installs are not paid off, `install_code` to it is refused with
//!    `IC0209` (`SYS_TRANSIENT`), as the replica does.
//! 4. **Long executions** (deterministic time slicing): an execution of I instructions above the
//!    slice limit (2 B) occupies its canister for ceil(I / 2 B) rounds: the canister runs nothing
//!    else meanwhile. The engine runs it at once, so its effects show in the first round, but a long
//!    install's answer is held until its last round, and only one long install runs per subnet at a
//!    time.
//!
//! [`SchedulingConfig::lower_bound_rounds`] turns this model into a lower bound on the rounds a
//! batch of independent operations needs, for benchmarks to compare measured rounds against.

use super::errors;
use super::management::ManagementCall;
use super::Sim;
use crate::exec::SystemEntry;
use crate::types::{Principal, Reject};
use std::collections::VecDeque;

/// Per-round instruction budgets. Defaults: an application subnet (replica `subnet_config.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchedulingConfig {
    /// Threads executing canister messages in parallel (`scheduler_cores`).
    pub execution_threads: u64,
    /// Instructions per thread per round (`MAX_INSTRUCTIONS_PER_ROUND`, 4 B).
    pub round_instruction_limit: u64,
    /// Deterministic time slicing: instructions per slice of an update (2 B).
    pub slice_instruction_limit: u64,
    /// Instructions per slice of `install_code` (2 B).
    pub install_slice_instruction_limit: u64,
    /// Management messages get `round_instruction_limit / subnet_message_fraction` (16).
    pub subnet_message_fraction: u64,
    /// Counted for every execution (2 M).
    pub execution_overhead_instructions: u64,
    /// Counted for every canister that runs in a round (8 M).
    pub canister_round_overhead_instructions: u64,
    /// What `upload_chunk` counts (200 M).
    pub upload_chunk_instructions: u64,
    /// What taking or loading a snapshot counts (2 B baseline).
    pub snapshot_instructions: u64,
    /// Install instructions a canister pays off per round (`install_code_rate_limit`, 2 B); while
    /// its earlier installs are not paid off, `install_code` is refused (IC0209).
    pub install_code_rate_limit: u64,
}

impl Default for SchedulingConfig {
    fn default() -> Self {
        SchedulingConfig {
            execution_threads: 4,
            round_instruction_limit: 4_000_000_000,
            slice_instruction_limit: 2_000_000_000,
            install_slice_instruction_limit: 2_000_000_000,
            subnet_message_fraction: 16,
            execution_overhead_instructions: 2_000_000,
            canister_round_overhead_instructions: 8_000_000,
            upload_chunk_instructions: 200_000_000,
            snapshot_instructions: 2_000_000_000,
            install_code_rate_limit: 2_000_000_000,
        }
    }
}

/// A batch of independent operations (say, child upgrades), for [`SchedulingConfig::lower_bound_rounds`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Workload {
    /// Operations in the batch, spread as evenly as possible over `subnets`.
    pub operations: u64,
    pub subnets: u64,
    /// At most this many operations are in progress at once.
    pub concurrency: u64,
    /// Rounds one operation takes at least on its own (its chain of dependent calls, each a round
    /// trip of at least 2 rounds on one subnet).
    pub rounds_per_operation: u64,
    /// Instructions of each management message of one operation that counts against the subnet
    /// message budget (install: instructions run; `upload_chunk`, snapshots: their fixed counts).
    pub management_instructions_per_operation: Vec<u64>,
    /// Instructions one coordinating canister (the deployer) runs per operation, and in how many
    /// executions.
    pub coordinator_instructions_per_operation: u64,
    pub coordinator_executions_per_operation: u64,
    /// The coordinator's round trip to each subnet (request and answer), for the pipeline term;
    /// empty: no such term.
    pub round_trip_rounds: Vec<u64>,
    /// Calls of an operation's chain answered before its first message that counts against the
    /// subnet budget is sent (a stop before a snapshot), and sent after its last one is answered
    /// (a start, a verification after an install).
    pub round_trips_before_counted: u64,
    pub round_trips_after_counted: u64,
}

/// The lower bounds of the scheduling model; the batch needs at least [`RoundsLowerBound::rounds`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoundsLowerBound {
    /// ceil(operations / concurrency) x rounds_per_operation.
    pub latency: u64,
    /// The busiest subnet's management messages against its per-round budget.
    pub subnet_messages: u64,
    /// Long installs run one at a time per subnet, ceil(I / slice) rounds each.
    pub long_installs: u64,
    /// The coordinator's instructions (with execution overheads) against one thread per round.
    pub coordinator: u64,
    /// A subnet's counted messages in a row, after the round trips an operation needs before
    /// its first one can run and before the answer of the one after its last one (see
    /// [`Workload::round_trips_before_counted`]): the pipeline's fill and drain, on the subnet
    /// where they take longest.
    pub pipeline: u64,
}

impl RoundsLowerBound {
    pub fn rounds(&self) -> u64 {
        self.latency
            .max(self.subnet_messages)
            .max(self.long_installs)
            .max(self.coordinator)
            .max(self.pipeline)
    }

    /// The bound of `self` then `next`, which cannot begin before `self` ends (a canary wave
    /// and the waves after it).
    pub fn then(&self, next: &RoundsLowerBound) -> u64 {
        self.rounds() + next.rounds()
    }
}

fn gcd(a: u128, b: u128) -> u128 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl SchedulingConfig {
    /// Instructions management messages may use per subnet per round.
    pub fn subnet_message_budget(&self) -> u64 {
        self.round_instruction_limit / self.subnet_message_fraction.max(1)
    }

    /// Whether the management method `method` counts against the subnet message budget (does
    /// real work: installs, chunk uploads, snapshots).
    pub fn counts_against_subnet_budget(&self, method: &str) -> bool {
        subnet_message_cost(method, self) != SubnetMessageCost::Free
    }

    /// How many messages that count `instructions` against the subnet message budget start in one
    /// round: a message starts while the budget is positive.
    fn subnet_messages_per_round(&self, instructions: u64) -> u64 {
        let counted = instructions
            .min(self.install_slice_instruction_limit)
            .max(1);
        self.subnet_message_budget().div_ceil(counted).max(1)
    }

    /// The fewest rounds `workload` can take under this model.
    pub fn lower_bound_rounds(&self, workload: &Workload) -> RoundsLowerBound {
        let operations = u128::from(workload.operations);
        let busiest_subnet = operations.div_ceil(u128::from(workload.subnets.max(1)));
        // Sum of 1 / per_round over the busiest subnet's messages, as an exact fraction.
        let (mut numerator, mut denominator) = (0u128, 1u128);
        let mut long_install_rounds = 0u128;
        for &instructions in &workload.management_instructions_per_operation {
            let per_round = u128::from(self.subnet_messages_per_round(instructions));
            numerator = numerator * per_round + denominator;
            denominator *= per_round;
            let divisor = gcd(numerator, denominator);
            (numerator, denominator) = (numerator / divisor, denominator / divisor);
            if instructions > self.install_slice_instruction_limit {
                long_install_rounds +=
                    u128::from(instructions.div_ceil(self.install_slice_instruction_limit.max(1)));
            }
        }
        let coordinator_instructions = operations
            * u128::from(
                workload.coordinator_instructions_per_operation
                    + workload.coordinator_executions_per_operation
                        * self.execution_overhead_instructions,
            );
        let to_u64 = |rounds: u128| u64::try_from(rounds).unwrap_or(u64::MAX);
        // Every subnet has at least floor(operations / subnets) operations. Its first counted
        // message runs no earlier than the round trips answered before it plus its own
        // request's trip; its last one no later than its own answer's trip plus the round trips
        // after it before the end; in between, its counted messages at the budget's rate.
        let fewest_per_subnet = operations / u128::from(workload.subnets.max(1));
        let counted_rounds = (fewest_per_subnet * numerator).div_ceil(denominator);
        let outside = u128::from(workload.round_trips_before_counted)
            + u128::from(workload.round_trips_after_counted)
            + 1;
        let slowest_round_trip = workload.round_trip_rounds.iter().copied().max();
        let pipeline = match slowest_round_trip {
            Some(round_trip) if counted_rounds > 0 => {
                outside * u128::from(round_trip) + counted_rounds - 1
            }
            _ => 0,
        };
        RoundsLowerBound {
            latency: to_u64(
                operations.div_ceil(u128::from(workload.concurrency.max(1)))
                    * u128::from(workload.rounds_per_operation),
            ),
            subnet_messages: to_u64((busiest_subnet * numerator).div_ceil(denominator)),
            long_installs: to_u64(busiest_subnet * long_install_rounds),
            coordinator: to_u64(
                coordinator_instructions.div_ceil(u128::from(self.round_instruction_limit.max(1))),
            ),
            pipeline: to_u64(pipeline),
        }
    }
}

/// How a management method counts against the subnet message budget.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SubnetMessageCost {
    /// Does not count; always runs.
    Free,
    /// Counts a fixed number of instructions, charged to the target as an execution.
    Fixed(u64),
    /// Counts the instructions its execution ran (its first slice); long ones run one at a time.
    Install,
}

fn subnet_message_cost(method: &str, config: &SchedulingConfig) -> SubnetMessageCost {
    match method {
        "install_code" | "install_chunked_code" => SubnetMessageCost::Install,
        "upload_chunk" => SubnetMessageCost::Fixed(config.upload_chunk_instructions),
        "take_canister_snapshot" | "load_canister_snapshot" => {
            SubnetMessageCost::Fixed(config.snapshot_instructions)
        }
        _ => SubnetMessageCost::Free,
    }
}

/// The answer of a long install, sent at the end of round `due_round`.
pub(crate) struct HeldAnswer {
    due_round: u64,
    call: ManagementCall,
    result: Result<Vec<u8>, Reject>,
}

/// Rounds an execution of `instructions` occupies with slices of `slice` (at least 1).
fn slices(instructions: u64, slice: u64) -> u64 {
    instructions.div_ceil(slice.max(1)).max(1)
}

impl Sim {
    /// The scheduling model in force (see the `rounds` module documentation).
    pub fn scheduling_model(&self) -> &SchedulingConfig {
        &self.config.scheduling
    }

    /// Rounds from sending a call from `from_subnet` to a canister (or the management canister)
    /// on `to_subnet` until its response can execute: the request's and the response's latency.
    /// A chain of dependent calls takes at least the sum of its round trips.
    pub fn round_trip_rounds(&self, from_subnet: usize, to_subnet: usize) -> u64 {
        self.latency_rounds(from_subnet, to_subnet) + self.latency_rounds(to_subnet, from_subnet)
    }

    /// One round: storage charges, expiries, induction, then on every subnet its management
    /// messages and its canisters within the round's budgets (see the module documentation), then its
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

    fn busy(&self, canister: Option<Principal>) -> bool {
        canister
            .and_then(|id| self.canisters.get(&id))
            .is_some_and(|c| c.busy_until_round >= self.round)
    }

    /// Step 1 of a round: the management messages of `subnet` that fit its budget; the others
    /// keep their place in the queue.
    pub(crate) fn run_management_queue(&mut self, subnet: usize) {
        let config = self.config.scheduling;
        let mut budget = i128::from(config.subnet_message_budget());
        let queued = std::mem::take(&mut self.subnets[subnet].management_queue);
        let mut waiting = VecDeque::new();
        for mut call in queued {
            let cost = subnet_message_cost(&call.method, &config);
            let install_blocked = cost == SubnetMessageCost::Install
                && self.subnets[subnet].long_install_until_round >= self.round;
            if self.busy(call.target)
                || install_blocked
                || (cost != SubnetMessageCost::Free && budget <= 0)
            {
                waiting.push_back(call);
                continue;
            }
            self.count_message();
            let instructions_before = self.recorder.stats.instructions;
            let result = match call.target {
                Some(target)
                    if cost == SubnetMessageCost::Install && self.install_rate_limited(target) =>
                {
                    Some(Err(errors::install_rate_limited(target)))
                }
                _ => self.execute_management(&mut call),
            };
            let instructions = self.recorder.stats.instructions - instructions_before;
            match cost {
                SubnetMessageCost::Free => {}
                SubnetMessageCost::Fixed(counted) => {
                    budget -= i128::from(counted);
                    if let (Some(Ok(_)), Some(target)) = (&result, call.target) {
                        self.charge_execution(target, counted);
                    }
                }
                SubnetMessageCost::Install => {
                    if let Some(target) = call.target {
                        if let Some(state) = self.canisters.get_mut(&target) {
                            state.install_debit += instructions;
                            if state.install_debit > 0 {
                                self.subnets[subnet].install_debtors.insert(target);
                            }
                        }
                    }
                    let slice = config.install_slice_instruction_limit;
                    budget -= i128::from(instructions.min(slice));
                    if instructions > slice {
                        let until = self.round + slices(instructions, slice) - 1;
                        self.subnets[subnet].long_install_until_round = until;
                        if let Some(state) = call.target.and_then(|t| self.canisters.get_mut(&t)) {
                            state.busy_until_round = until;
                        }
                        if let Some(result) = result {
                            self.subnets[subnet].held_answers.push(HeldAnswer {
                                due_round: until,
                                call,
                                result,
                            });
                            continue;
                        }
                    }
                }
            }
            if let Some(result) = result {
                self.finish_management(&call, result);
            }
        }
        let queue = &mut self.subnets[subnet].management_queue;
        waiting.append(queue);
        *queue = waiting;
    }

    fn install_rate_limited(&self, canister: Principal) -> bool {
        self.canisters
            .get(&canister)
            .is_some_and(|c| c.install_debit > 0)
    }

    /// End of a round: every canister of `subnet` pays off one round of install rate.
    pub(crate) fn pay_off_install_debits(&mut self, subnet: usize) {
        let rate = self.config.scheduling.install_code_rate_limit;
        let canisters = &mut self.canisters;
        self.subnets[subnet].install_debtors.retain(|id| {
            let Some(state) = canisters.get_mut(id) else {
                return false;
            };
            state.install_debit = state.install_debit.saturating_sub(rate);
            state.install_debit > 0
        });
    }

    /// `canister` may have work for a round to find: an input message, a timer set by an
    /// execution, a module (with a heartbeat) installed, or it runs again.
    pub(crate) fn note_may_have_work(&mut self, canister: Principal) {
        if let Some(state) = self.canisters.get(&canister) {
            self.subnets[state.subnet].may_have_work.insert(canister);
        }
    }

    /// Sends the answers of long installs that finish this round.
    pub(crate) fn release_held_answers(&mut self, subnet: usize) {
        let round = self.round;
        let (due, held): (Vec<HeldAnswer>, Vec<HeldAnswer>) =
            std::mem::take(&mut self.subnets[subnet].held_answers)
                .into_iter()
                .partition(|held| held.due_round <= round);
        self.subnets[subnet].held_answers = held;
        for answer in due {
            self.finish_management(&answer.call, answer.result);
        }
    }

    /// Step 2 of a round: `subnet`'s canisters in rotating order within the subnet's budget.
    ///
    /// Only canisters with work are visited: an input message, or a due timer or a heartbeat
    /// (running, with code), and not busy. The others would use nothing and change nothing, and
    /// none gains work while the subnet's canisters run (messages are inducted at the start of
    /// a round), so skipping them changes no outcome. They are looked for among the members that
    /// may have work (`SubnetState::may_have_work`), not among all: a round costs its work, not
    /// its subnet's size.
    pub(crate) fn run_canisters(&mut self, subnet: usize) {
        let members = self.subnets[subnet].members.len();
        if members == 0 {
            return;
        }
        let start = (self.round % members as u64) as usize;
        let (round, now) = (self.round, self.time_nanos);
        let canisters = &self.canisters;
        // In id order (the members' order, which the rotation counts in).
        let mut with_work = Vec::new();
        self.subnets[subnet].may_have_work.retain(|id| {
            let Some(state) = canisters.get(id) else {
                return false;
            };
            debug_assert_eq!(state.subnet, subnet);
            let heartbeat = state
                .instance
                .as_ref()
                .is_some_and(|instance| instance.module().exports_entry(SystemEntry::Heartbeat));
            let tasks = state.runs_system_tasks()
                && ((state.global_timer != 0 && state.global_timer <= now) || heartbeat);
            if state.busy_until_round < round && (tasks || !state.input.is_empty()) {
                with_work.push(*id);
            }
            // Kept while work may still come from what the canister holds.
            !state.input.is_empty() || state.global_timer != 0 || heartbeat
        });
        // Rotating order: from the member at position `start` to the end, then from the beginning.
        let first = *self.subnets[subnet]
            .members
            .iter()
            .nth(start)
            .expect("start is below the members' count");
        let split = with_work.partition_point(|id| *id < first);
        with_work.rotate_left(split);
        let config = &self.config.scheduling;
        // At least one thread and one instruction, so every round makes progress.
        let mut subnet_budget = i128::from(config.execution_threads.max(1))
            * i128::from(config.round_instruction_limit.max(1));
        for canister in with_work {
            if subnet_budget <= 0 {
                break;
            }
            subnet_budget -= i128::from(self.run_canister(canister, subnet_budget));
        }
    }

    /// Runs `canister`'s due timer, heartbeat and inbox within its budget (the rest waits);
    /// returns the instructions it used, overheads included.
    fn run_canister(&mut self, canister: Principal, subnet_budget: i128) -> u64 {
        if self.busy(Some(canister)) {
            return 0;
        }
        let config = self.config.scheduling;
        let canister_budget = i128::from(config.round_instruction_limit.max(1)).min(subnet_budget);
        let (instructions_before, messages_before) = (
            self.recorder.stats.instructions,
            self.recorder.stats.messages,
        );
        let used = |sim: &Sim| {
            let executions = sim.recorder.stats.messages - messages_before;
            let instructions = sim.recorder.stats.instructions - instructions_before;
            let overhead = if executions > 0 {
                config.canister_round_overhead_instructions
                    + executions * config.execution_overhead_instructions
            } else {
                0
            };
            instructions + overhead
        };
        self.run_system_tasks(canister);
        let waiting = self.canisters.get(&canister).map_or(0, |c| c.input.len());
        for _ in 0..waiting {
            if i128::from(used(self)) >= canister_budget || self.busy(Some(canister)) {
                break;
            }
            let Some(message) = self.pop_input(canister) else {
                break;
            };
            let before = self.recorder.stats.instructions;
            self.count_message();
            self.execute_message(canister, message);
            let instructions = self.recorder.stats.instructions - before;
            if instructions > config.slice_instruction_limit {
                let until = self.round + slices(instructions, config.slice_instruction_limit) - 1;
                if let Some(state) = self.canisters.get_mut(&canister) {
                    state.busy_until_round = until;
                }
            }
        }
        used(self)
    }
}
