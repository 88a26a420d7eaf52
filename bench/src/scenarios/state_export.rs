//! Backups of the deployer itself: what an export costs per megabyte of document, how the
//! document grows per child and per finished rollout, and what the restore's commit costs, in
//! all and in its largest message (it checks, then writes, a slice per message).

use super::{controller, upload, Deployer, Figures};
use deployer::InitArg;
use deployer_client::staged_policy as policy;
use ic_sim::artifacts;
use std::collections::BTreeMap;

const CHILDREN: u64 = 1_000;

/// What `start_export` cost: the document is taken a slice per message, then its pieces are
/// hashed a message each (the last messages, one per piece).
struct ExportCost {
    instructions: u64,
    largest_message: u64,
    take_messages: u64,
    largest_take_message: u64,
    document_bytes: u64,
}

fn export(deployer: &mut Deployer) -> ExportCost {
    let trace_from = deployer.env.trace().len();
    let manifest = deployer.start_export_ok(controller());
    let messages: Vec<u64> = deployer
        .replicated_executions(trace_from)
        .map(|(_, instructions)| instructions)
        .collect();
    let taking = &messages[..messages.len() - manifest.document_pieces.len()];
    ExportCost {
        instructions: messages.iter().sum(),
        largest_message: messages.iter().copied().max().unwrap_or(0),
        take_messages: taking.len() as u64,
        largest_take_message: taking.iter().copied().max().unwrap_or(0),
        document_bytes: manifest.document_size,
    }
}

/// 1,000 children on one subnet and a release: exported; then after a rollout of the release
/// to all of them, exported again and restored into a fresh deployer on the same simulator.
pub(super) fn thousand_children() -> Figures {
    let mut deployer = super::rollouts::fleet(1, CHILDREN as usize);
    let release = upload(&mut deployer, &artifacts::wasm("child_v2"));
    let fleet_only = export(&mut deployer).document_bytes;
    super::rollouts::roll_out(&mut deployer, &release, policy(1, vec![], 100));
    let cost = export(&mut deployer);
    let with_rollout = cost.document_bytes;
    let backup = deployer
        .export_state(controller(), &BTreeMap::new())
        .expect("export");
    deployer.reinstall_fresh(controller(), InitArg::default());
    let trace_from = deployer.env.trace().len();
    deployer
        .restore_state(controller(), &backup, |_| {})
        .expect("restore");
    // The commit's messages: its slices, each the callback of the deployer's call to itself.
    let commit: Vec<u64> = deployer
        .replicated_executions(trace_from)
        .filter(|(entry, _)| !entry.contains("begin_restore") && !entry.contains("restore_piece"))
        .map(|(_, instructions)| instructions)
        .collect();
    let largest = commit.iter().copied().max().unwrap_or(0);
    let commit_messages = commit.len() as u64;
    let commit: u64 = commit.iter().sum();
    let per_mb = |instructions: u64| instructions * 1_000_000 / with_rollout;
    BTreeMap::from([
        ("document_bytes".to_string(), with_rollout),
        ("export_bytes_per_child".to_string(), fleet_only / CHILDREN),
        (
            "export_bytes_per_rollout_of_1000_children".to_string(),
            with_rollout - fleet_only,
        ),
        ("start_export_instructions".to_string(), cost.instructions),
        (
            "start_export_largest_message_instructions".to_string(),
            cost.largest_message,
        ),
        (
            "start_export_take_largest_message_instructions".to_string(),
            cost.largest_take_message,
        ),
        ("start_export_take_messages".to_string(), cost.take_messages),
        (
            "export_instructions_per_mb".to_string(),
            per_mb(cost.instructions),
        ),
        ("commit_restore_instructions".to_string(), commit),
        ("restore_instructions_per_mb".to_string(), per_mb(commit)),
        (
            "commit_restore_largest_message_instructions".to_string(),
            largest,
        ),
        ("commit_restore_messages".to_string(), commit_messages),
    ])
}
