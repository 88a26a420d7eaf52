//! What a dispatch may issue: the room left in the management canister's queue, and the cycles
//! the deployer can spend ([`Funds`]). A rollout that cannot pay for its next step is paused for
//! cycles rather than failing half-way.

use crate::engine::{CallCosts, Nanos, INLINE_MODULE_ESTIMATE_BYTES, NON_INSTALL_ESTIMATE_BYTES};

/// The IC queues at most 500 messages from one canister to another (the management canister
/// included) before refusing calls. Rollouts keep this many calls in flight at most, leaving
/// [`MAX_UPLOADS_IN_FLIGHT`] for chunk uploads.
pub const MAX_ROLLOUT_CALLS_IN_FLIGHT: u32 = 400;
/// When a rollout's actions were all held back for other rollouts' calls, it asks again after
/// this long.
pub const HELD_BACK_RETRY_NANOS: Nanos = 1_000_000_000;
/// How often the driver's watchdog looks for rollouts whose timer was spent without driving
/// them (a timer body that trapped).
pub const WATCHDOG_INTERVAL_NANOS: Nanos = 60_000_000_000;
/// Chunk uploads into stores in flight at once, all stores together; at least a release's
/// chunks, so that any release can be uploaded.
pub const MAX_UPLOADS_IN_FLIGHT: u32 = crate::uploads::MAX_CHUNKS;
/// Cycles the deployer keeps beyond its freezing threshold for its own operation (operator
/// calls, its upgrade) when deciding what a rollout can spend.
pub const CYCLES_KEPT_BACK: u128 = 100_000_000_000;

/// What the deployer can spend on a dispatch: its liquid cycle balance (above the freezing
/// threshold) and the price of a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Funds {
    pub liquid_balance: u128,
    pub costs: CallCosts,
}

impl Funds {
    /// The most one action can cost: an inline install at the largest message size, or, when
    /// no install can be among them, the largest other request.
    fn per_action(&self, installs: bool) -> u128 {
        let payload = u128::from(match installs {
            true => INLINE_MODULE_ESTIMATE_BYTES,
            false => NON_INSTALL_ESTIMATE_BYTES,
        });
        self.costs
            .per_call
            .saturating_add(self.costs.reserved_per_call)
            .saturating_add(self.costs.per_payload_byte.saturating_mul(payload))
    }

    /// The liquid balance that pays for `actions` and keeps [`CYCLES_KEPT_BACK`].
    pub(super) fn balance_needed(&self, actions: u32) -> u128 {
        self.per_action(true)
            .saturating_mul(u128::from(actions))
            .saturating_add(CYCLES_KEPT_BACK)
    }

    /// How many actions the balance pays for, at the most one can cost. `installs`: whether an
    /// install may be among them. Without installs (a rollout paused for cycles bringing its
    /// stopped children back to running) the calls may spend [`CYCLES_KEPT_BACK`] too: a child
    /// left stopped costs more than the deployer's own reserve.
    pub(super) fn affordable_actions(&self, installs: bool) -> u32 {
        let kept_back = if installs { CYCLES_KEPT_BACK } else { 0 };
        let spendable = self.liquid_balance.saturating_sub(kept_back);
        let actions = spendable / self.per_action(installs).max(1);
        u32::try_from(actions).unwrap_or(u32::MAX)
    }
}
