//! What dashboards read: a rollout's info, the page of rollouts, a child's step history, the
//! event log; and which releases active rollouts reference.

use ic_stable_structures::Memory;
use serde_bytes::ByteBuf;

use super::journal::{InstallArgDigest, RolloutOverview};
use super::{
    ChildHistory, ChildHistoryArg, EventPage, ListEventsArg, ListRolloutsArg, RolloutEvent,
    RolloutInfo, RolloutOperation, RolloutPage, Rollouts,
};
use crate::engine::{Child, Operation, StepRecord, TargetRelease};
use crate::error::{Error, ErrorKind};
use crate::fleet;
use crate::hash::Sha256Hash;
use crate::releases::{ReleaseReference, ReleaseReferences};

/// Default and most rollouts per `list_rollouts` page.
pub const MAX_ROLLOUT_PAGE: u32 = 20;
/// Most rollouts one `list_rollouts` page reads (filtering, counting its total).
pub const ROLLOUT_SCAN_BUDGET: usize = 1_000;
/// Default and most steps per `child_history` page.
pub const MAX_HISTORY_PAGE: u32 = 500;
/// Default and most events per `list_events` page.
pub const MAX_EVENT_PAGE: u32 = 500;
/// Most log entries one `list_events` page reads while filtering by rollout.
pub const EVENT_SCAN_BUDGET: u64 = 20_000;

impl<M: Memory> Rollouts<M> {
    /// A rollout on the heap is summed up from its engine; any other from its stored overview,
    /// without decoding its children (one that release 0.1 finished has none: its checkpoint).
    pub fn info(&self, rollout_id: u64) -> Result<RolloutInfo, Error> {
        if let Some(live) = self.live.get(&rollout_id) {
            return Ok(info(
                rollout_id,
                RolloutOverview::of(&live.record, &live.install_arg),
            ));
        }
        match self.overviews.get(&rollout_id) {
            Some(stored) => Ok(info(rollout_id, stored.decode())),
            None => self.with_current(rollout_id, |record| {
                info(
                    rollout_id,
                    RolloutOverview::of(record, &InstallArgDigest::of(record)),
                )
            }),
        }
    }

    /// The ids of the rollouts in progress, oldest first: the active set without the finished
    /// ones still storing their children apart.
    fn in_progress(&self) -> impl Iterator<Item = u64> + '_ {
        self.active.keys().filter(|rollout_id| {
            !self
                .live
                .get(rollout_id)
                .is_some_and(|live| live.is_storing_apart())
        })
    }

    /// The active rollouts, oldest first.
    pub fn active_infos(&self) -> Vec<RolloutInfo> {
        self.in_progress()
            .map(|rollout_id| self.info(rollout_id).expect("an active rollout is stored"))
            .collect()
    }

    /// The id the next rollout takes: after every stored one, every one being planned, and
    /// every one whose runs remain (a refused plan's, removed a slice at a time).
    pub(super) fn next_rollout_id(&self) -> u64 {
        let reserved = self
            .planning
            .last()
            .copied()
            .max(self.checkpoint_children.last_rollout())
            .map_or(0, |id| id + 1);
        self.started().max(reserved)
    }

    /// Rollouts ever started: ids are given in sequence, and the newest is never pruned (it is
    /// checkpointed, or finished and stored apart).
    pub fn started(&self) -> u64 {
        let checkpointed = self.rollouts.keys().next_back();
        checkpointed
            .max(self.finished.last_id())
            .map_or(0, |id| id + 1)
    }

    /// A page of rollouts, newest first, that match the filters, and how many match in all when
    /// that takes at most [`ROLLOUT_SCAN_BUDGET`] reads. Rollouts are read from their overviews,
    /// the oldest finished ones included (their checkpoints pruned), and from the checkpoints
    /// release 0.1 left without overviews.
    pub fn list(&self, arg: &ListRolloutsArg) -> RolloutPage {
        let limit = arg
            .limit
            .unwrap_or(MAX_ROLLOUT_PAGE)
            .clamp(1, MAX_ROLLOUT_PAGE) as usize;
        let end = arg.before.unwrap_or(u64::MAX);
        let mut rollouts: Vec<RolloutInfo> = Vec::new();
        let mut matched = 0;
        let mut next_before = None;
        let mut ids = self.ids_before(end);
        for id in ids.by_ref().take(ROLLOUT_SCAN_BUDGET) {
            let info = self.info(id).expect("a listed rollout is stored");
            let phase = arg.phase.is_none_or(|phase| phase.matches(&info.summary));
            let release = arg
                .release
                .as_ref()
                .is_none_or(|release| *release == info.release_sha256);
            if !(phase && release) {
                continue;
            }
            matched += 1;
            if rollouts.len() < limit {
                rollouts.push(info);
            } else if next_before.is_none() {
                next_before = rollouts.last().map(|last| last.rollout_id);
            }
        }
        let unread = ids.next();
        if let (None, Some(id)) = (next_before, unread) {
            // The budget ran out before the page filled: go on from the first unread.
            next_before = Some(id + 1);
        }
        RolloutPage {
            rollouts,
            next_before,
            total: unread.is_none().then_some(matched),
        }
    }

    /// Every stored rollout's id below `end`, newest first: the overviews' and the checkpoints'
    /// keys merged (a rollout has either or both).
    fn ids_before(&self, end: u64) -> impl Iterator<Item = u64> + '_ {
        let mut overviews = self.overviews.keys_range(..end).rev().peekable();
        let mut checkpoints = self.rollouts.keys_range(..end).rev().peekable();
        std::iter::from_fn(move || {
            let next = match (overviews.peek(), checkpoints.peek()) {
                (Some(&a), Some(&b)) => a.max(b),
                (Some(&a), None) => a,
                (None, Some(&b)) => b,
                (None, None) => return None,
            };
            overviews.next_if_eq(&next);
            checkpoints.next_if_eq(&next);
            Some(next)
        })
    }

    /// A rollout on the heap answers from its engine, a finished one from the child's own entry
    /// (one read); one finished before those existed, from its checkpoint.
    pub fn child_history(&self, arg: &ChildHistoryArg) -> Result<ChildHistory, Error> {
        let child_id = fleet::child_id(&arg.canister_id);
        let not_in_rollout = || ErrorKind::NotInRollout {
            rollout_id: arg.rollout_id,
            canister_id: arg.canister_id,
        };
        let rollout_id = arg.rollout_id;
        if !self.live.contains_key(&rollout_id) && self.finished.contains(rollout_id) {
            let child = self
                .finished
                .child(rollout_id, &child_id)
                .ok_or_else(not_in_rollout)?;
            return Ok(history_page(&child, arg));
        }
        self.with_current(arg.rollout_id, |record| {
            let child = record.engine.child(&child_id).ok_or_else(not_in_rollout)?;
            Ok(history_page(child, arg))
        })?
    }

    pub fn events(&self, arg: &ListEventsArg) -> EventPage {
        let limit = arg.limit.unwrap_or(MAX_EVENT_PAGE).clamp(1, MAX_EVENT_PAGE) as usize;
        let mut events = Vec::new();
        // Events before the first kept were pruned: a page asked to start there starts at it.
        let from = arg.from.unwrap_or(0).max(self.events.first());
        for (scanned, sequence) in (0u64..).zip(from..self.events.end()) {
            if events.len() == limit || scanned == EVENT_SCAN_BUDGET {
                return EventPage {
                    events,
                    next: Some(sequence),
                };
            }
            let event = self.events.get(sequence);
            if arg.rollout_id.is_none_or(|id| id == event.rollout_id) {
                events.push(event);
            }
        }
        EventPage { events, next: None }
    }

    /// The newest `limit` events of the log, newest first: `limit` entries read.
    pub fn newest_events(&self, limit: usize) -> Vec<RolloutEvent> {
        (self.events.first()..self.events.end())
            .rev()
            .take(limit)
            .map(|sequence| self.events.get(sequence))
            .collect()
    }

    /// The release a rollout installs (it never changes, so the overview tells); `None` for a
    /// backup run, or a rollout not known.
    pub fn release_of(&self, rollout_id: u64) -> Option<TargetRelease> {
        let operation = match self.live.get(&rollout_id) {
            Some(live) => Some(live.record.engine.operation().clone()),
            None => self
                .overviews
                .get(&rollout_id)
                .map(|stored| stored.decode().operation)
                .or_else(|| {
                    self.rollouts
                        .get(&rollout_id)
                        .map(|stored| stored.decode().engine.operation().clone())
                }),
        };
        operation?.release().cloned()
    }
}

/// Active rollouts reference the release they install.
impl<M: Memory> ReleaseReferences for Rollouts<M> {
    fn references(&self, sha256: &Sha256Hash) -> Vec<ReleaseReference> {
        self.in_progress()
            .filter(|rollout_id| {
                self.release_of(*rollout_id)
                    .is_some_and(|release| release.module_hash.0 == *sha256)
            })
            .map(|rollout_id| ReleaseReference::Rollout { rollout_id })
            .collect()
    }
}

fn info(rollout_id: u64, overview: RolloutOverview) -> RolloutInfo {
    RolloutInfo {
        rollout_id,
        release_sha256: ByteBuf::from(
            overview
                .operation
                .release()
                .map_or_else(Vec::new, |release| release.module_hash.0.to_vec()),
        ),
        operation: match overview.operation {
            Operation::Upgrade(_) => None,
            Operation::Backup(run) => Some(RolloutOperation::Backup {
                stop_children: run.stop_children,
            }),
            Operation::Restore(run) => Some(RolloutOperation::RestoreChild {
                snapshot_id: ByteBuf::from(run.snapshot.0),
            }),
        },
        created_by: overview.created_by,
        created_at: overview.created_at,
        policy: overview.policy,
        install_arg_sha256: Some(ByteBuf::from(overview.install_arg_sha256.to_vec())),
        install_arg_size: Some(overview.install_arg_size),
        summary: overview.summary,
    }
}

/// A page of the child's steps from `arg.from`.
fn history_page(child: &Child, arg: &ChildHistoryArg) -> ChildHistory {
    let limit = arg
        .limit
        .unwrap_or(MAX_HISTORY_PAGE)
        .clamp(1, MAX_HISTORY_PAGE) as usize;
    let from = arg.from.unwrap_or(0) as usize;
    let history = child.history();
    let steps: Vec<StepRecord> = history.iter().skip(from).take(limit).cloned().collect();
    let end = from + steps.len();
    ChildHistory {
        canister_id: arg.canister_id,
        wave: child.wave(),
        state: child.state(),
        snapshot: child
            .rollout_snapshot()
            .map(|snapshot| ByteBuf::from(snapshot.0.clone())),
        steps,
        next: (end < history.len()).then_some(end as u32),
    }
}
