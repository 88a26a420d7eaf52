//! `/events`: the newest events of the log as a page reads them (child ids as principal text,
//! each event told in one line), and the failures among the newest events with their reasons.
//! `/events?child=<principal>`: the newest events about one child.

use candid::Principal;
use serde::Serialize;

use crate::engine::{EventKind, Failure, FailureKind, PauseReason, Verdict};
use crate::fleet::canister_id;
use crate::rollouts::RolloutEvent;

pub const CONTENT_TYPE: &str = "application/json";

/// Events shown, newest first.
pub const SHOWN_EVENTS: usize = 50;
/// The newest events searched for failures: a bounded read, whatever the log holds.
pub const FAILURE_WINDOW: usize = 1_000;

#[derive(Serialize)]
struct EventsView {
    events: Vec<EventView>,
    /// `ChildFailed` events among the newest [`FAILURE_WINDOW`], newest first.
    failures: Vec<EventView>,
    failure_window: usize,
}

#[derive(Clone, Serialize)]
struct EventView {
    sequence: u64,
    rollout_id: u64,
    at: u64,
    event: &'static str,
    child: Option<String>,
    text: String,
}

/// `newest`: the newest events of the log, newest first, at most [`FAILURE_WINDOW`]; shown
/// are the newest of them, or of those about `child`.
pub fn render(newest: &[RolloutEvent], child: Option<Principal>) -> Vec<u8> {
    let views: Vec<EventView> = newest.iter().map(view).collect();
    let child = child.map(|child| child.to_text());
    let failures = views
        .iter()
        .filter(|view| view.event == "ChildFailed")
        .cloned()
        .collect();
    let events = views
        .into_iter()
        .filter(|view| child.is_none() || view.child == child)
        .take(SHOWN_EVENTS)
        .collect();
    let page = EventsView {
        events,
        failures,
        failure_window: FAILURE_WINDOW,
    };
    serde_json::to_vec(&page).expect("events are always JSON")
}

fn view(event: &RolloutEvent) -> EventView {
    let (name, child, text) = describe(&event.kind);
    EventView {
        sequence: event.sequence,
        rollout_id: event.rollout_id,
        at: event.at,
        event: name,
        child: child.map(|child| canister_id(child).to_text()),
        text,
    }
}

/// The event's name, the child it is about, and what happened in words.
fn describe(kind: &EventKind) -> (&'static str, Option<&crate::engine::ChildId>, String) {
    match kind {
        EventKind::Created {
            children,
            skipped,
            waves,
        } => (
            "Created",
            None,
            format!(
                "{children} children selected, {skipped} already on the release, {waves} waves"
            ),
        ),
        EventKind::WaveStarted { wave } => ("WaveStarted", None, format!("wave {wave} started")),
        EventKind::WaveFinished { wave } => ("WaveFinished", None, format!("wave {wave} finished")),
        EventKind::ChildStarted { child, wave } => (
            "ChildStarted",
            Some(child),
            format!("upgrade began in wave {wave}"),
        ),
        EventKind::SnapshotDeleted { child, deleted, .. } => (
            "SnapshotDeleted",
            Some(child),
            match deleted {
                true => "an older snapshot of the deployer's deleted (retention)".to_string(),
                false => "an older snapshot could not be deleted: left to the child".to_string(),
            },
        ),
        EventKind::SnapshotTaken {
            child, replaced, ..
        } => (
            "SnapshotTaken",
            Some(child),
            match replaced {
                Some(_) => "snapshot taken, replacing the deployer's previous one".to_string(),
                None => "snapshot taken".to_string(),
            },
        ),
        EventKind::RetryScheduled {
            child,
            step,
            attempt,
            ..
        } => (
            "RetryScheduled",
            Some(child),
            format!("{step:?} failed transiently: attempt {attempt} scheduled"),
        ),
        EventKind::Reconciling { child, step } => (
            "Reconciling",
            Some(child),
            format!("the outcome of {step:?} is unknown: reading the child"),
        ),
        EventKind::StopStuck { child } => (
            "StopStuck",
            Some(child),
            "the stop timed out: starting the child again".to_string(),
        ),
        EventKind::ChildFailed { child, failure } => {
            ("ChildFailed", Some(child), failure_text(failure))
        }
        EventKind::PathChanged { child, path } => (
            "PathChanged",
            Some(child),
            format!("now on the {path:?} path"),
        ),
        EventKind::ChildFinished { child, verdict } => {
            ("ChildFinished", Some(child), verdict_text(verdict))
        }
        EventKind::ChildRequeued { child } => (
            "ChildRequeued",
            Some(child),
            "requeued: the rollout paused for cycles before its install".to_string(),
        ),
        EventKind::Paused { reason } => ("Paused", None, pause_text(reason)),
        EventKind::Resumed => ("Resumed", None, "resumed".to_string()),
        EventKind::Aborted => ("Aborted", None, "aborted".to_string()),
        EventKind::RollbackRequested { children } => (
            "RollbackRequested",
            None,
            format!("rollback of {children} children requested"),
        ),
        EventKind::Completed => ("Completed", None, "completed".to_string()),
        EventKind::RolledBack => ("RolledBack", None, "rolled back".to_string()),
        EventKind::AbortSettled => (
            "AbortSettled",
            None,
            "the abort's last started child settled".to_string(),
        ),
    }
}

fn failure_text(failure: &Failure) -> String {
    let attempts = match failure.attempts {
        1 => "1 attempt".to_string(),
        n => format!("{n} attempts"),
    };
    let reason = match &failure.kind {
        FailureKind::Rejected { code, message } => format!("rejected (code {code}): {message}"),
        FailureKind::RetriesExhausted { code, message } => {
            format!("retries exhausted (code {code}): {message}")
        }
        FailureKind::StartRefused { code, message } => {
            format!("start refused (code {code}): {message}")
        }
        FailureKind::StopStuck => "the stop timed out".to_string(),
        other => format!("{other:?}"),
    };
    format!("{:?} failed after {attempts}: {reason}", failure.step)
}

fn verdict_text(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Upgraded => "upgraded".to_string(),
        Verdict::BackedUp => "backed up".to_string(),
        Verdict::Failed(failure) => format!("failed: {}", failure_text(failure)),
        Verdict::LeftStopped(failure) => format!("left stopped: {}", failure_text(failure)),
        Verdict::NeedsAttention { problem, .. } => {
            format!("needs attention: {}", failure_text(problem))
        }
        other => format!("{other:?}"),
    }
}

fn pause_text(reason: &PauseReason) -> String {
    match reason {
        PauseReason::Operator => "by an operator".to_string(),
        PauseReason::FailureBudgetExceeded {
            wave,
            failures,
            tolerated,
        } => format!("{failures} failed in wave {wave}, {tolerated} tolerated"),
        other => format!("{other:?}"),
    }
}
