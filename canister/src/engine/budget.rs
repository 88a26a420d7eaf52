//! What the calls of one dispatch cost in cycles, so the driver can pause a rollout with
//! [`super::Rollout::pause_for_cycles`] before its balance runs dry rather than have calls
//! fail half-way through a child's pipeline.
//!
//! Payload sizes are upper-bound estimates of the Candid request (and, for a health check, of
//! the method name the IC also charges for): a dispatch that fits the balance by this
//! estimate fits it in fact.

use super::action::{Action, ActionKind, ChildFunds};
use super::plan::MAX_CHILD_ID_BYTES;

/// Cycle prices of one call, as the driver reads them (`ic0.cost_call`) or configures them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallCosts {
    /// The fee of a call whatever its size (request and response).
    pub per_call: u128,
    /// The fee per byte of the request (method name and argument).
    pub per_payload_byte: u128,
    /// Cycles that must be at hand per call besides its fee: what the IC holds back for the
    /// largest reply until the reply comes (mostly refunded), plus any margin the driver keeps.
    pub reserved_per_call: u128,
}

/// An inline install carries the whole module, whose size the action does not know: this
/// bounds it by the largest message the IC delivers (2 MiB), so an inline install is never
/// under-estimated.
pub const INLINE_MODULE_ESTIMATE_BYTES: u64 = 2 * 1024 * 1024;

/// Bounds the request of any action other than an install: a health check's method name (at
/// most 256 bytes, a policy bound), a snapshot id (at most 64 bytes), with the call's frame.
/// A rollout paused for cycles issues no install, so this is what each of its calls costs.
pub const NON_INSTALL_ESTIMATE_BYTES: u64 = 1024;

/// Method name, Candid header and type table, field ids, `sender_canister_version` and the
/// target's principal of a management call; the variable parts are added per action.
const CALL_FRAME_BYTES: u64 = 128;
/// `install_chunked_code` lists every chunk's hash: at most 100 chunks (the chunk store's
/// capacity) of a 32-byte hash and its record framing each, plus the store canister's id.
const CHUNKED_INSTALL_EXTRA_BYTES: u64 = 100 * (32 + 8) + MAX_CHILD_ID_BYTES as u64;
/// The empty Candid argument (`DIDL\0\0`) a health check sends.
const EMPTY_ARGUMENT_BYTES: u64 = 6;

/// Cycles needed to issue `actions`: the fee and the reservation of every call they make, and
/// the fee of every payload byte. Saturates rather than overflows.
pub fn cycles_needed(actions: &[Action], costs: &CallCosts) -> u128 {
    actions.iter().fold(0u128, |total, action| {
        let (calls, bytes) = requests(&action.kind);
        let per_call = costs.per_call.saturating_add(costs.reserved_per_call);
        total
            .saturating_add(per_call.saturating_mul(calls))
            .saturating_add(costs.per_payload_byte.saturating_mul(u128::from(bytes)))
    })
}

/// What the IC holds back from a canister before its install runs, on top of its freezing
/// limit: the execution of the install's whole instruction limit (300 B instructions at 1 cycle
/// each, plus the 5 M base fee of an execution, on a 13-node application subnet). A child below
/// it is refused the install.
pub const INSTALL_PREPAYMENT_CYCLES: u128 = 300_000_000_000 + 5_000_000;

const SECONDS_PER_DAY: u128 = 86_400;

/// The balance a child must hold before its upgrade begins, so that it is neither refused its
/// install nor frozen by the snapshot taken before it: the install's prepayment on top of the
/// freezing limit it will have. A snapshot holds a copy of the child's memory, and the idle burn
/// (hence the freezing limit, burn rate x threshold) grows with memory: with a snapshot, the
/// limit is counted twice (an upper bound: the snapshot copies no more than the child holds).
pub fn cycles_for_upgrade(funds: &ChildFunds, snapshot: bool) -> u128 {
    let freezing_limit = funds
        .idle_cycles_burned_per_day
        .saturating_mul(u128::from(funds.freezing_threshold_seconds))
        / SECONDS_PER_DAY;
    let limit_after = if snapshot {
        freezing_limit.saturating_mul(2)
    } else {
        freezing_limit
    };
    limit_after.saturating_add(INSTALL_PREPAYMENT_CYCLES)
}

/// How many calls an action makes and the estimated bytes of their requests together.
fn requests(kind: &ActionKind) -> (u128, u64) {
    let frame = CALL_FRAME_BYTES;
    match kind {
        ActionKind::CheckCycles
        | ActionKind::Stop
        | ActionKind::Start
        | ActionKind::ReadStatus { .. } => (1, frame),
        // `canister_status`, then `list_canister_snapshots` when asked.
        ActionKind::Reconcile { list_snapshots } => match list_snapshots {
            true => (2, 2 * frame),
            false => (1, frame),
        },
        ActionKind::TakeSnapshot { replace } => (
            1,
            frame + replace.as_ref().map_or(0, |id| id.0.len() as u64),
        ),
        ActionKind::LoadSnapshot { snapshot } | ActionKind::DeleteSnapshot { snapshot } => {
            (1, frame + snapshot.0.len() as u64)
        }
        ActionKind::InstallCode { options, .. } => (
            1,
            frame + INLINE_MODULE_ESTIMATE_BYTES + options.arg.len() as u64,
        ),
        ActionKind::InstallChunked { options, .. } => (
            1,
            frame + CHUNKED_INSTALL_EXTRA_BYTES + options.arg.len() as u64,
        ),
        ActionKind::HealthCheck { method } => (1, method.len() as u64 + EMPTY_ARGUMENT_BYTES),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ActionId, ChildId, InstallOptions, ModuleHash, Path, SnapshotId};
    use super::*;

    const COSTS: CallCosts = CallCosts {
        per_call: 1_000,
        per_payload_byte: 10,
        reserved_per_call: 100_000,
    };

    fn action(kind: ActionKind) -> Action {
        Action {
            id: ActionId(0),
            child: ChildId::new([1u8; 10]).unwrap(),
            path: Path::Upgrade,
            attempt: 1,
            kind,
        }
    }

    fn one_call(payload: u64) -> u128 {
        101_000 + 10 * u128::from(payload)
    }

    #[test]
    fn an_upgrade_needs_the_install_prepayment_above_the_freezing_limit_doubled_by_a_snapshot() {
        // 1 T cycles a day with a 30-day threshold: a freezing limit of 30 T.
        let funds = ChildFunds {
            cycles: 0,
            idle_cycles_burned_per_day: 1_000_000_000_000,
            freezing_threshold_seconds: 30 * 86_400,
        };
        let limit = 30_000_000_000_000;
        assert_eq!(
            cycles_for_upgrade(&funds, false),
            limit + INSTALL_PREPAYMENT_CYCLES
        );
        assert_eq!(
            cycles_for_upgrade(&funds, true),
            2 * limit + INSTALL_PREPAYMENT_CYCLES
        );
        let huge = ChildFunds {
            idle_cycles_burned_per_day: u128::MAX,
            ..funds
        };
        // Saturates rather than overflows.
        assert!(cycles_for_upgrade(&huge, true) > u128::MAX / 86_400);
    }

    #[test]
    fn no_actions_need_no_cycles() {
        assert_eq!(cycles_needed(&[], &COSTS), 0);
    }

    #[test]
    fn a_stop_costs_one_call_with_a_small_request() {
        let stop = action(ActionKind::Stop);
        assert_eq!(cycles_needed(&[stop], &COSTS), one_call(CALL_FRAME_BYTES));
    }

    #[test]
    fn an_inline_install_is_charged_for_the_largest_module_and_its_argument() {
        let install = action(ActionKind::InstallCode {
            module_hash: ModuleHash([9; 32]),
            options: InstallOptions {
                arg: vec![0; 1_000],
                ..InstallOptions::default()
            },
        });
        let payload = CALL_FRAME_BYTES + INLINE_MODULE_ESTIMATE_BYTES + 1_000;
        assert_eq!(cycles_needed(&[install], &COSTS), one_call(payload));
    }

    #[test]
    fn a_chunked_install_is_charged_for_its_chunk_list_not_the_module() {
        let install = action(ActionKind::InstallChunked {
            module_hash: ModuleHash([9; 32]),
            subnet: super::super::SubnetIndex(0),
            options: InstallOptions::default(),
        });
        let payload = CALL_FRAME_BYTES + CHUNKED_INSTALL_EXTRA_BYTES;
        assert_eq!(cycles_needed(&[install], &COSTS), one_call(payload));
        assert!(payload < INLINE_MODULE_ESTIMATE_BYTES / 100);
    }

    #[test]
    fn a_reconcile_listing_snapshots_makes_two_calls() {
        let reconcile = |list_snapshots| action(ActionKind::Reconcile { list_snapshots });
        assert_eq!(
            cycles_needed(&[reconcile(true)], &COSTS),
            2 * one_call(CALL_FRAME_BYTES)
        );
        assert_eq!(
            cycles_needed(&[reconcile(false)], &COSTS),
            one_call(CALL_FRAME_BYTES)
        );
    }

    #[test]
    fn snapshot_ids_and_health_method_names_count_as_payload() {
        let snapshot = SnapshotId(vec![7; 20]);
        let take = action(ActionKind::TakeSnapshot {
            replace: Some(snapshot.clone()),
        });
        let load = action(ActionKind::LoadSnapshot { snapshot });
        let health = action(ActionKind::HealthCheck {
            method: "health".into(),
        });
        assert_eq!(
            cycles_needed(&[take], &COSTS),
            one_call(CALL_FRAME_BYTES + 20)
        );
        assert_eq!(
            cycles_needed(&[load], &COSTS),
            one_call(CALL_FRAME_BYTES + 20)
        );
        assert_eq!(cycles_needed(&[health], &COSTS), one_call(6 + 6));
    }

    #[test]
    fn the_actions_of_a_dispatch_add_up() {
        let actions = [action(ActionKind::Stop), action(ActionKind::Start)];
        assert_eq!(
            cycles_needed(&actions, &COSTS),
            2 * one_call(CALL_FRAME_BYTES)
        );
    }

    #[test]
    fn huge_prices_saturate_instead_of_overflowing() {
        let costs = CallCosts {
            per_call: u128::MAX / 2,
            ..COSTS
        };
        let actions = [action(ActionKind::Stop), action(ActionKind::Start)];
        assert_eq!(cycles_needed(&actions, &costs), u128::MAX);
    }
}
