//! Backups of the deployer itself: what an export costs per megabyte of document, how the
//! document grows per child and per finished rollout, and what the restore's commit costs.

use super::{controller, upload, Deployer, Figures};
use deployer::InitArg;
use deployer_client::staged_policy as policy;
use ic_sim::artifacts;
use std::collections::BTreeMap;

const CHILDREN: u64 = 1_000;

/// `start_export`'s instructions and the document's size.
fn export(deployer: &mut Deployer) -> (u64, u64) {
    let manifest = deployer.start_export_ok(controller());
    (
        deployer.env.last_instructions(deployer.canister),
        manifest.document_size,
    )
}

/// 1,000 children on one subnet and a release: exported; then after a rollout of the release
/// to all of them, exported again and restored into a fresh deployer on the same simulator.
pub(super) fn thousand_children() -> Figures {
    let mut deployer = super::rollouts::fleet(1, CHILDREN as usize);
    let release = upload(&mut deployer, &artifacts::wasm("child_v2"));
    let (_, fleet_only) = export(&mut deployer);
    super::rollouts::roll_out(&mut deployer, &release, policy(1, vec![], 100));
    let (instructions, with_rollout) = export(&mut deployer);
    let backup = deployer
        .export_state(controller(), &BTreeMap::new())
        .expect("export");
    deployer.reinstall_fresh(controller(), InitArg::default());
    deployer
        .restore_state(controller(), &backup, |_| {})
        .expect("restore");
    let commit = deployer.env.last_instructions(deployer.canister);
    let per_mb = |instructions: u64| instructions * 1_000_000 / with_rollout;
    BTreeMap::from([
        ("document_bytes".to_string(), with_rollout),
        ("export_bytes_per_child".to_string(), fleet_only / CHILDREN),
        (
            "export_bytes_per_rollout_of_1000_children".to_string(),
            with_rollout - fleet_only,
        ),
        ("start_export_instructions".to_string(), instructions),
        (
            "export_instructions_per_mb".to_string(),
            per_mb(instructions),
        ),
        ("commit_restore_instructions".to_string(), commit),
        ("restore_instructions_per_mb".to_string(), per_mb(commit)),
    ])
}
