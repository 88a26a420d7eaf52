//! `deployer rollout`: plan (computed here from the fleet, the release and the policy: the
//! deployer has no preview endpoint), start, watch (a bar per wave, the children in flight,
//! failures with their reasons, an exit status saying how it ended), pause, resume, abort,
//! rollback, reconcile, list, a child's history and the event log.

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use candid::Principal;
use clap::{Args, Subcommand, ValueEnum};
use deployer::{
    ChildHistoryArg, ChildInfo, ListEventsArg, ListRolloutsArg, PolicyArg, RolloutEvent,
    RolloutInfo, RolloutOperation, RolloutPhase, RolloutPhaseFilter, Selector, StartRolloutArg,
    StateCounts,
};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use crate::connect::parse_principal;
use crate::fail::{Failure, Outcome};
use crate::fleet::{list_children, module_name, parse_ids, parse_labels, release_names};
use crate::release::{get, parse_release};
use crate::{json, policy, text, Context};

/// How a watched rollout ended: `rollout watch` exits with this status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    Completed = 0,
    CompletedWithFailures = 10,
    Paused = 11,
    Aborted = 12,
    RolledBack = 13,
}

/// Which children, and with what.
#[derive(Args, Clone)]
pub struct Target {
    /// The release: SHA-256 (hex) or name@version.
    release: String,
    #[command(flatten)]
    selection: Selection,
}

impl Target {
    fn check(&self) -> Outcome<()> {
        parse_release(&self.release)?;
        self.selection.check()
    }

    fn selector(&self) -> Outcome<Selector> {
        self.selection.selector()
    }

    fn policy(&self) -> Outcome<PolicyArg> {
        self.selection.policy()
    }
}

/// Which children, and the policy to treat them with: a rollout's or a backup run's.
#[derive(Args, Clone)]
pub struct Selection {
    /// Only the children with this label (repeatable: all must match).
    #[arg(long = "label", value_name = "KEY=VALUE", conflicts_with = "children")]
    labels: Vec<String>,
    /// Exactly these children, in this order: ids or `@file` (default: every child).
    #[arg(long, value_name = "IDS")]
    children: Vec<String>,
    /// The policy, TOML with human units (see `deployer rollout plan --help`); default: the
    /// deployer's.
    #[arg(long)]
    policy: Option<PathBuf>,
}

impl Selection {
    pub fn check(&self) -> Outcome<()> {
        parse_labels(&self.labels)?;
        parse_ids(&self.children)?;
        if let Some(path) = &self.policy {
            policy::load(path)?;
        }
        Ok(())
    }

    pub fn selector(&self) -> Outcome<Selector> {
        Ok(if !self.children.is_empty() {
            Selector::Explicit(parse_ids(&self.children)?)
        } else if !self.labels.is_empty() {
            Selector::Labels(parse_labels(&self.labels)?)
        } else {
            Selector::All
        })
    }

    pub fn policy(&self) -> Outcome<PolicyArg> {
        match &self.policy {
            Some(path) => policy::load(path),
            None => Ok(PolicyArg::default()),
        }
    }
}

/// A phase to list rollouts by (`deployer::RolloutPhaseFilter`).
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum PhaseFilter {
    Active,
    Finished,
    Running,
    Paused,
    RollingBack,
    Aborted,
    Completed,
    RolledBack,
}

impl PhaseFilter {
    fn into_filter(self) -> RolloutPhaseFilter {
        match self {
            PhaseFilter::Active => RolloutPhaseFilter::Active,
            PhaseFilter::Finished => RolloutPhaseFilter::Finished,
            PhaseFilter::Running => RolloutPhaseFilter::Running,
            PhaseFilter::Paused => RolloutPhaseFilter::Paused,
            PhaseFilter::RollingBack => RolloutPhaseFilter::RollingBack,
            PhaseFilter::Aborted => RolloutPhaseFilter::Aborted,
            PhaseFilter::Completed => RolloutPhaseFilter::Completed,
            PhaseFilter::RolledBack => RolloutPhaseFilter::RolledBack,
        }
    }
}

#[derive(Subcommand)]
pub enum RolloutCommand {
    /// What a rollout would do: the children it targets and skips, its waves, from which
    /// versions to which. Changes nothing.
    ///
    /// Policy file keys (all optional): canary = 1, waves = ["25%", 100], concurrency = 50,
    /// max_stopped_per_subnet = 10, bake = "10m" (ms, s, m, h, d), on_failure = "rollback" |
    /// "leave-stopped", snapshot = true, keep_snapshots = 2, failure_budget = "10%" | 2, health_method = "health",
    /// [retry] attempts, base_backoff, max_backoff; [install] arg (hex) | arg_file,
    /// skip_pre_upgrade, wasm_memory_persistence = "keep" | "replace".
    Plan(Target),
    /// What a DAO needs to run the rollout by proposal: the deployer's render of it for voters
    /// (its plan pinned by hash), the `ExecuteGenericNervousSystemFunction` payload, and the
    /// methods to register with `AddGenericNervousSystemFunction` (SNS) or to call (Orbit).
    /// Changes nothing.
    Propose(Target),
    /// Starts a rollout.
    Start {
        #[command(flatten)]
        target: Target,
        /// Watch it once started (and exit as `rollout watch` does).
        #[arg(long)]
        watch: bool,
        /// Seconds between reads while watching.
        #[arg(long, default_value_t = 1.0)]
        interval: f64,
    },
    /// Follows a rollout live until it ends or pauses; the exit status says how it ended.
    Watch {
        id: u64,
        /// Seconds between reads.
        #[arg(long, default_value_t = 1.0)]
        interval: f64,
    },
    /// The rollout now.
    Show {
        id: u64,
    },
    /// The rollouts, newest first (the newest 20 that match).
    List {
        /// Only rollouts in this phase.
        #[arg(long, value_enum)]
        phase: Option<PhaseFilter>,
    },
    /// No new child starts until resumed.
    Pause {
        id: u64,
    },
    Resume {
        id: u64,
    },
    /// No new child starts; children in flight are brought to a running state. Final.
    Abort {
        id: u64,
    },
    /// Every child the rollout upgraded goes back to its pre-install snapshot.
    Rollback {
        id: u64,
    },
    /// Settles the steps in flight by reading their children (for a lost answer).
    Reconcile {
        id: u64,
    },
    /// A child's steps in a rollout.
    History {
        child: String,
        /// The rollout (default: the one holding the child, else the newest).
        #[arg(long)]
        rollout: Option<u64>,
    },
    /// The event log, oldest first.
    Events {
        /// Only this rollout's events.
        #[arg(long)]
        rollout: Option<u64>,
        /// The first sequence number.
        #[arg(long)]
        from: Option<u64>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

impl RolloutCommand {
    pub fn check_input(&self) -> Outcome<()> {
        match self {
            RolloutCommand::Plan(target)
            | RolloutCommand::Propose(target)
            | RolloutCommand::Start { target, .. } => target.check(),
            RolloutCommand::History { child, .. } => parse_principal(child, "child").map(|_| ()),
            _ => Ok(()),
        }
    }

    pub fn run(self, context: &Context) -> Outcome<u8> {
        let me = context.connection.me;
        let mut deployer = context.connection.deployer();
        let command = |info: RolloutInfo, verb: &str| {
            context.print(&json::to_json(&info), || {
                format!("rollout {} {verb}\n{}", info.rollout_id, describe(&info))
            });
            Ok(0)
        };
        match self {
            RolloutCommand::Plan(target) => plan(context, &target).map(|()| 0),
            RolloutCommand::Propose(target) => propose(context, &target).map(|()| 0),
            RolloutCommand::Start {
                target,
                watch: follow,
                interval,
            } => {
                let release = parse_release(&target.release)?;
                let info = deployer.start_rollout(
                    me,
                    StartRolloutArg {
                        plan_sha256: None,
                        release,
                        selector: target.selector()?,
                        policy: Some(target.policy()?),
                    },
                )?;
                if follow {
                    if !context.json {
                        println!("rollout {} started", info.rollout_id);
                    }
                    watch(context, info.rollout_id, interval)
                } else {
                    command(info, "started")
                }
            }
            RolloutCommand::Watch { id, interval } => watch(context, id, interval),
            RolloutCommand::Show { id } => command(deployer.get_rollout(me, id)?, "now"),
            RolloutCommand::List { phase } => {
                let arg = ListRolloutsArg {
                    phase: phase.map(PhaseFilter::into_filter),
                    ..ListRolloutsArg::default()
                };
                let page = deployer.list_rollouts(me, arg)?;
                context.print(&json::to_json(&page.rollouts), || {
                    let mut out = String::new();
                    for info in &page.rollouts {
                        out.push_str(&format!(
                            "{:>4}  {:<12} {}  {} children, release {}\n",
                            info.rollout_id,
                            phase_name(&info.summary.phase),
                            text::time(info.created_at),
                            total(&info.summary.counts),
                            text::short_hash(&info.release_sha256)
                        ));
                    }
                    out
                });
                Ok(0)
            }
            RolloutCommand::Pause { id } => command(deployer.pause_rollout(me, id)?, "paused"),
            RolloutCommand::Resume { id } => command(deployer.resume_rollout(me, id)?, "resumed"),
            RolloutCommand::Abort { id } => command(deployer.abort_rollout(me, id)?, "aborted"),
            RolloutCommand::Rollback { id } => {
                command(deployer.rollback_rollout(me, id)?, "rolling back")
            }
            RolloutCommand::Reconcile { id } => {
                command(deployer.reconcile_rollout(me, id)?, "reconciling")
            }
            RolloutCommand::History { child, rollout } => {
                history(context, parse_principal(&child, "child")?, rollout).map(|()| 0)
            }
            RolloutCommand::Events {
                rollout,
                from,
                limit,
            } => {
                let page = deployer.list_events(
                    me,
                    ListEventsArg {
                        rollout_id: rollout,
                        from,
                        limit: Some(limit),
                    },
                )?;
                context.print(&json::to_json(&page), || {
                    page.events
                        .iter()
                        .map(event_line)
                        .collect::<Vec<_>>()
                        .join("\n")
                });
                Ok(0)
            }
        }
    }
}

fn total(counts: &StateCounts) -> u32 {
    counts.queued + counts.active + counts.awaiting_rollback + settled(counts)
}

/// Children that reached a final state.
fn settled(counts: &StateCounts) -> u32 {
    counts.upgraded
        + counts.backed_up.unwrap_or(0)
        + counts.skipped
        + counts.failed
        + counts.rolled_back
        + counts.left_stopped
        + counts.needs_attention
        + counts.cancelled
        + counts.not_started
}

/// Children whose operation failed: a rolled-back child is one, except in a restore, whose
/// success is to be rolled back to the chosen snapshot.
fn failed(info: &RolloutInfo) -> u32 {
    let counts = &info.summary.counts;
    let restore = matches!(info.operation, Some(RolloutOperation::RestoreChild { .. }));
    let rolled_back = if restore { 0 } else { counts.rolled_back };
    counts.failed + rolled_back + counts.left_stopped + counts.needs_attention
}

fn phase_name(phase: &RolloutPhase) -> String {
    json::variant_name(&json::to_json(phase))
}

fn counts_line(counts: &StateCounts) -> String {
    // A backup run upgrades nothing: it leads with the children it backed up.
    let backed_up = counts.backed_up.unwrap_or(0);
    let mut parts = vec![if backed_up > 0 {
        format!("{backed_up} backed up")
    } else {
        format!("{} upgraded", counts.upgraded)
    }];
    for (count, name) in [
        (counts.active, "in flight"),
        (counts.queued, "queued"),
        (counts.skipped, "skipped"),
        (counts.failed, "failed"),
        (counts.rolled_back, "rolled back"),
        (counts.left_stopped, "left stopped"),
        (counts.needs_attention, "need attention"),
        (counts.cancelled, "cancelled"),
        (counts.not_started, "not started"),
        (counts.awaiting_rollback, "awaiting rollback"),
    ] {
        if count > 0 {
            parts.push(format!("{count} {name}"));
        }
    }
    parts.join(", ")
}

pub(crate) fn describe(info: &RolloutInfo) -> String {
    let summary = &info.summary;
    let release = match &info.operation {
        Some(RolloutOperation::Backup {
            stop_children: true,
        }) => "none: a backup run (children stopped for it)".into(),
        Some(RolloutOperation::Backup { .. }) => {
            "none: a backup run (children snapshotted running)".into()
        }
        Some(RolloutOperation::RestoreChild { snapshot_id }) => {
            format!("none: a restore to snapshot {}", hex::encode(snapshot_id))
        }
        None => hex::encode(&info.release_sha256),
    };
    let mut out = format!(
        "phase    {}\nrelease  {}\nchildren {} ({})\n",
        json::brief(&json::to_json(&summary.phase)),
        release,
        total(&summary.counts),
        counts_line(&summary.counts)
    );
    let failures: Vec<String> = summary
        .failures_by_kind
        .iter()
        .flatten()
        .map(|failure| format!("{} {}", failure.children, failure.kind))
        .collect();
    if !failures.is_empty() {
        out.push_str(&format!("failures {}\n", failures.join(", ")));
    }
    for (index, wave) in summary.waves.iter().enumerate() {
        out.push_str(&format!(
            "wave {index}  {}/{}: {}\n",
            settled(&wave.counts),
            wave.size,
            counts_line(&wave.counts)
        ));
    }
    out
}

/// The SNS topic a rollout proposal belongs to: it upgrades the DAO's canisters.
const PROPOSAL_TOPIC: &str = "CriticalDappOperations";

fn propose(context: &Context, target: &Target) -> Outcome<()> {
    let me = context.connection.me;
    let mut deployer = context.connection.deployer();
    let mut rollout = StartRolloutArg {
        plan_sha256: None,
        release: parse_release(&target.release)?,
        selector: target.selector()?,
        policy: Some(target.policy()?),
    };
    let preview = deployer.preview_or_prepare(me, rollout.clone())?;
    rollout.plan_sha256 = Some(preview.plan_sha256.clone());
    let render = deployer
        .start_rollout_by_proposal_validate(me, rollout.clone())?
        .map_err(Failure::input)?;
    let payload = candid::encode_one(&rollout).expect("a rollout encodes");
    let deployer_id = context.connection.canister.to_text();
    let value = json!({
        "render": render,
        "plan_sha256": hex::encode(&preview.plan_sha256),
        "payload_hex": hex::encode(&payload),
        "target_canister_id": deployer_id,
        "target_method_name": "start_rollout_by_proposal",
        "validator_canister_id": deployer_id,
        "validator_method_name": "start_rollout_by_proposal_validate",
        "topic": PROPOSAL_TOPIC,
    });
    context.print(&value, || {
        format!(
            "What voters will see (the deployer's render):\n\n{render}\n\n\
             Register once (AddGenericNervousSystemFunction; Orbit: CallExternalCanister):\n\
             \x20 target    {deployer_id} start_rollout_by_proposal\n\
             \x20 validator {deployer_id} start_rollout_by_proposal_validate\n\
             \x20 topic     {PROPOSAL_TOPIC}\n\
             and grant governance the Operator role (deployer role add <governance> operator).\n\n\
             ExecuteGenericNervousSystemFunction payload ({} bytes, Candid, hex):\n{}",
            payload.len(),
            hex::encode(&payload)
        )
    });
    Ok(())
}

fn plan(context: &Context, target: &Target) -> Outcome<()> {
    let policy_arg = target.policy()?;
    let policy = policy_arg.clone().into_policy().map_err(Failure::input)?;
    // What the deployer itself would refuse (its upgrade gates among them) is refused here too.
    let me = context.connection.me;
    let rollout = StartRolloutArg {
        plan_sha256: None,
        release: parse_release(&target.release)?,
        selector: target.selector()?,
        policy: Some(policy_arg.clone()),
    };
    context
        .connection
        .deployer()
        .preview_or_prepare(me, rollout)?;
    let release = get(context, &parse_release(&target.release)?)?;
    let selected: Vec<ChildInfo> = match target.selector()? {
        Selector::All => list_children(context, vec![], None)?,
        Selector::Labels(labels) => list_children(context, labels, None)?,
        Selector::Explicit(ids) => {
            let me = context.connection.me;
            let mut deployer = context.connection.deployer();
            let mut children = Vec::new();
            for id in ids {
                children.push(deployer.get_child(me, id)?);
            }
            children
        }
    };
    // The deployer spreads the children over their subnets, one subnet after another.
    let selected = if target.selection.children.is_empty() {
        let mut queues: BTreeMap<Principal, std::collections::VecDeque<ChildInfo>> =
            BTreeMap::new();
        for child in selected {
            queues.entry(child.subnet).or_default().push_back(child);
        }
        let mut order = Vec::new();
        while !queues.is_empty() {
            queues.retain(|_, queue| {
                order.extend(queue.pop_front());
                !queue.is_empty()
            });
        }
        order
    } else {
        selected
    };
    let sha = release.summary.sha256.to_vec();
    let (skipped, targets): (Vec<_>, Vec<_>) = selected.iter().partition(|child| {
        child.module_hash.as_ref().map(|hash| hash.as_slice()) == Some(&sha[..])
    });
    let held: Vec<_> = targets
        .iter()
        .filter_map(|child| child.rollout_id.map(|id| (child.canister_id, id)))
        .collect();
    let sizes = policy.waves.sizes(targets.len() as u32);
    let names = release_names(context)?;
    let mut from: BTreeMap<String, u32> = BTreeMap::new();
    for child in &targets {
        *from
            .entry(module_name(
                &names,
                child.module_hash.as_ref().map(|hash| hash.as_slice()),
            ))
            .or_default() += 1;
    }
    let to = format!("{}@{}", release.summary.name, release.summary.version);
    let mut waves = Vec::new();
    let mut next = 0;
    for size in &sizes {
        let children: Vec<String> = targets[next..next + *size as usize]
            .iter()
            .map(|child| child.canister_id.to_text())
            .collect();
        next += *size as usize;
        waves.push(children);
    }
    let value = json!({
        "release": json::to_json(&release.summary),
        "targets": targets.len(),
        "skipped": skipped.iter().map(|c| c.canister_id.to_text()).collect::<Vec<_>>(),
        "from": from,
        "to": to,
        "waves": waves,
        "held_by_other_rollouts": held.iter().map(|(c, id)| json!({"canister_id": c.to_text(), "rollout_id": id})).collect::<Vec<_>>(),
        "policy": json::to_json(&policy),
    });
    context.print(&value, || {
        let mut out = format!(
            "release  {to} ({})\ntargets  {} children; {} skipped (already on the release)\n",
            text::short_hash(&sha),
            targets.len(),
            skipped.len()
        );
        for (name, count) in &from {
            out.push_str(&format!("from     {name} -> {to}: {count} children\n"));
        }
        for (index, children) in waves.iter().enumerate() {
            let shown: Vec<&str> = children.iter().take(5).map(String::as_str).collect();
            let more = if children.len() > 5 {
                format!(" and {} more", children.len() - 5)
            } else {
                String::new()
            };
            out.push_str(&format!(
                "wave {index}   {} children: {}{more}\n",
                children.len(),
                shown.join(", ")
            ));
        }
        out.push_str(&format!(
            "policy   concurrency {}, bake {}, on failure {:?}, snapshots {}, failure budget {:?}{}\n",
            policy.max_concurrency,
            text::duration(policy.bake_nanos),
            policy.on_failure,
            match (policy.snapshot_before_install, policy.keep_snapshots) {
                (false, _) => "off".to_string(),
                (true, None) => "on".to_string(),
                (true, Some(keep)) => format!("on (keep {keep})"),
            },
            policy.failure_budget,
            policy
                .max_stopped_per_subnet
                .map(|max| format!(", at most {max} stopped per subnet"))
                .unwrap_or_default()
        ));
        for (child, rollout) in &held {
            out.push_str(&format!(
                "conflict {child} is held by rollout {rollout}: the start would be refused\n"
            ));
        }
        out
    });
    Ok(())
}

/// A child id inside an engine record (its principal's bytes, hex in JSON).
/// A child id in an event: the principal's text.
fn child_text(value: &Value) -> String {
    json::brief(value)
}

fn event_line(event: &RolloutEvent) -> String {
    let kind = json::to_json(&event.kind);
    format!(
        "{:>6}  {}  rollout {}  {}",
        event.sequence,
        text::time(event.at),
        event.rollout_id,
        event_text(&kind)
    )
}

/// An event in words: children by principal, failures by reason.
fn event_text(kind: &Value) -> String {
    let name = json::variant_name(kind);
    let body = kind.get(&name).cloned().unwrap_or(Value::Null);
    let child = body.get("child").map(child_text).unwrap_or_default();
    match name.as_str() {
        "ChildStarted" => format!("{child} started (wave {})", body["wave"]),
        "ChildFinished" => format!("{child} finished: {}", json::brief(&body["verdict"])),
        "ChildFailed" => format!(
            "{child} FAILED at {}: {}",
            json::brief(&body["failure"]["step"]),
            json::brief(&body["failure"]["kind"])
        ),
        "WaveStarted" => format!("wave {} started", body["wave"]),
        "WaveFinished" => format!("wave {} finished", body["wave"]),
        "Paused" => format!("paused: {}", json::brief(&body["reason"])),
        "SnapshotTaken" => format!(
            "{child} snapshot {} taken",
            body["snapshot"].as_str().unwrap_or_default()
        ),
        "RetryScheduled" => format!(
            "{child} {} retry {} at {}",
            json::brief(&body["step"]),
            body["attempt"],
            body["at"].as_u64().map(text::time).unwrap_or_default()
        ),
        "PathChanged" => format!("{child} now on path {}", json::brief(&body["path"])),
        "Reconciling" => format!(
            "{child} {}: outcome unknown, reading the child",
            json::brief(&body["step"])
        ),
        "ChildRequeued" => format!("{child} requeued (the rollout paused for cycles)"),
        "StopStuck" => format!("{child} stop timed out; starting it again"),
        "RollbackRequested" => format!("rollback of {} children requested", body["children"]),
        "Created" => format!(
            "created: {} children ({} skipped) in {} waves",
            body["children"], body["skipped"], body["waves"]
        ),
        _ if !child.is_empty() => format!("{child} {name} {body}"),
        _ if body.is_null() => name,
        _ => format!("{name} {body}"),
    }
}

pub(crate) fn watch(context: &Context, id: u64, interval: f64) -> Outcome<u8> {
    let me = context.connection.me;
    let mut deployer = context.connection.deployer();
    let interval = Duration::from_secs_f64(interval.max(0.05));
    let live = !context.json && std::io::stderr().is_terminal();
    let multi = MultiProgress::new();
    if !live {
        multi.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let header = multi.add(ProgressBar::new_spinner());
    let style = ProgressStyle::with_template("wave {prefix:>2} {bar:40} {pos:>5}/{len:<5} {msg}")
        .expect("a valid template");
    let mut bars: Vec<ProgressBar> = Vec::new();
    let mut in_flight: BTreeSet<String> = BTreeSet::new();
    let mut failures: Vec<Value> = Vec::new();
    let mut from = None;
    let say = |line: String| {
        if live {
            multi.println(line).ok();
        } else if !context.json {
            println!("{line}");
        }
    };
    let info = loop {
        let info = deployer.get_rollout(me, id)?;
        loop {
            let page = deployer.list_events(
                me,
                ListEventsArg {
                    rollout_id: Some(id),
                    from,
                    limit: Some(500),
                },
            )?;
            for event in &page.events {
                let kind = json::to_json(&event.kind);
                let name = json::variant_name(&kind);
                let body = kind.get(&name).cloned().unwrap_or(Value::Null);
                match name.as_str() {
                    "ChildStarted" => {
                        in_flight.insert(child_text(&body["child"]));
                    }
                    "ChildFinished" => {
                        in_flight.remove(&child_text(&body["child"]));
                    }
                    "ChildFailed" => failures.push(json!({
                        "child": child_text(&body["child"]),
                        "step": body["failure"]["step"],
                        "reason": body["failure"]["kind"],
                    })),
                    _ => {}
                }
                if context.json {
                    let mut line = json::to_json(event);
                    if let Some(child) = body.get("child") {
                        line["child"] = child_text(child).into();
                    }
                    println!("{line}");
                } else {
                    say(event_line(event));
                }
                from = Some(event.sequence + 1);
            }
            if page.events.is_empty() || page.next.is_none() {
                break;
            }
        }
        let summary = &info.summary;
        while bars.len() < summary.waves.len() {
            let size = u64::from(summary.waves[bars.len()].size);
            let bar = multi.add(ProgressBar::new(size).with_style(style.clone()));
            bar.set_prefix(bars.len().to_string());
            bars.push(bar);
        }
        for (bar, wave) in bars.iter().zip(&summary.waves) {
            bar.set_length(u64::from(wave.size));
            bar.set_position(u64::from(settled(&wave.counts)));
            bar.set_message(counts_line(&wave.counts));
        }
        let shown: Vec<&str> = in_flight.iter().take(4).map(String::as_str).collect();
        header.set_message(format!(
            "rollout {id} {}: {} in flight{}{}",
            phase_name(&summary.phase),
            summary.in_flight,
            if shown.is_empty() { "" } else { ": " },
            shown.join(", ")
        ));
        header.tick();
        let paused = matches!(summary.phase, RolloutPhase::Paused(_)) && summary.in_flight == 0;
        if summary.finished_at.is_some() || paused {
            break info;
        }
        std::thread::sleep(interval);
    };
    for bar in &bars {
        bar.finish();
    }
    header.finish_and_clear();
    let summary = &info.summary;
    let ended = match &summary.phase {
        RolloutPhase::Completed if failed(&info) > 0 => Ended::CompletedWithFailures,
        RolloutPhase::Completed => Ended::Completed,
        RolloutPhase::Paused(_) => Ended::Paused,
        RolloutPhase::Aborted => Ended::Aborted,
        RolloutPhase::RolledBack => Ended::RolledBack,
        // Not final and not paused: cannot end the loop; kept for completeness.
        _ => Ended::Paused,
    };
    let next_step = match ended {
        Ended::Completed => String::new(),
        Ended::CompletedWithFailures => format!(
            "completed with failed children: `deployer rollout history <child> --rollout {id}` shows why"
        ),
        Ended::Paused => format!(
            "paused ({}): `deployer rollout resume {id}` goes on, `rollback {id}` or `abort {id}` stop",
            json::brief(&json::to_json(&summary.phase))
        ),
        Ended::Aborted => "aborted".to_string(),
        Ended::RolledBack => "rolled back".to_string(),
    };
    let value = json!({
        "rollout_id": id,
        "ended": format!("{ended:?}"),
        "exit_code": ended as u8,
        "phase": json::to_json(&summary.phase),
        "counts": json::to_json(&summary.counts),
        "failures": failures,
    });
    if context.json {
        println!("{value}");
    } else {
        println!(
            "rollout {id} ended: {ended:?}\n{}",
            describe(&info).trim_end()
        );
        for failure in &failures {
            println!(
                "failed   {} at {}: {}",
                failure["child"].as_str().unwrap_or_default(),
                json::brief(&failure["step"]),
                json::brief(&failure["reason"])
            );
        }
        if !next_step.is_empty() {
            println!("{next_step}");
        }
    }
    Ok(ended as u8)
}

fn history(context: &Context, child: Principal, rollout: Option<u64>) -> Outcome<()> {
    let me = context.connection.me;
    let mut deployer = context.connection.deployer();
    let rollout_id = match rollout {
        Some(id) => id,
        None => match deployer.get_child(me, child)?.rollout_id {
            Some(id) => id,
            None => deployer
                .list_rollouts(
                    me,
                    ListRolloutsArg {
                        limit: Some(1),
                        ..ListRolloutsArg::default()
                    },
                )?
                .rollouts
                .first()
                .map(|info| info.rollout_id)
                .ok_or_else(|| Failure::input("no rollout yet: nothing to show"))?,
        },
    };
    let mut steps = Vec::new();
    let mut from = None;
    let history = loop {
        let page = deployer.child_history(
            me,
            ChildHistoryArg {
                rollout_id,
                canister_id: child,
                from,
                limit: None,
            },
        )?;
        steps.extend(page.steps.clone());
        match page.next {
            Some(next) => from = Some(next),
            None => break page,
        }
    };
    let mut value = json::to_json(&history);
    value["steps"] = json::to_json(&steps);
    value["rollout_id"] = rollout_id.into();
    context.print(&value, || {
        let mut out = format!(
            "child    {child}\nrollout  {rollout_id}, wave {}\nstate    {}\n",
            history
                .wave
                .map(|wave| wave.to_string())
                .unwrap_or_else(|| "-".into()),
            json::brief(&json::to_json(&history.state))
        );
        for step in &steps {
            out.push_str(&format!(
                "  {}  {:<12} {:<10} try {}  {}\n",
                text::time(step.issued_at),
                json::brief(&json::to_json(&step.path)),
                json::brief(&json::to_json(&step.step)),
                step.attempt,
                step.result
                    .as_ref()
                    .map(|result| json::brief(&json::to_json(result)))
                    .unwrap_or_else(|| "in flight".into())
            ));
        }
        out
    });
    Ok(())
}
