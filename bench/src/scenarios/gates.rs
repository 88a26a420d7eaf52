//! The upgrade gates at planning: what the Candid-compatibility check costs the deployer, on
//! the largest interface at hand (the deployer's own, about 600 lines of Candid), compared with
//! itself (a subtype check walks every type of both services when they are compatible).

use super::{controller, Deployer, Figures, MIB};
use deployer::{GateOverride, PolicyArg, ReleaseSelector, Selector, StartRolloutArg, UpgradeGate};
use deployer_client::modules::with_candid_service;
use deployer_client::staged_policy as policy;
use ic_sim::artifacts;
use std::collections::BTreeMap;

const CHILDREN: usize = 10;

/// Ten children on child 2.0.0, whose interface is the deployer's; `preview_rollout` of child
/// 3.0.0 (the same interface) with every gate, then with the Candid gate overridden: the
/// difference is one check, done once per distinct module the children run.
pub(super) fn candid_check() -> Figures {
    let mut deployer: Deployer = super::rollouts::fleet(1, CHILDREN);
    let service = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../candid/deployer.did"),
    )
    .expect("the deployer's .did");
    let v2 = with_candid_service(&artifacts::wasm("child_v2"), &service);
    let v3 = with_candid_service(&artifacts::wasm("child_v3"), &service);
    let v2 = deployer.upload_ok(controller(), &v2, MIB, "child", "2.0.0");
    let v3 = deployer.upload_ok(controller(), &v3, MIB, "child", "3.0.0");
    let first = deployer
        .start_rollout_of(controller(), &v2, Selector::All, policy(1, vec![], 10))
        .expect("the children run child_v1, installed by the bench")
        .rollout_id;
    deployer.run_to_end(controller(), first, 1_000);

    let mut preview = |overrides: Option<Vec<GateOverride>>| {
        let arg = StartRolloutArg {
            plan_sha256: None,
            release: ReleaseSelector::Sha256(v3.summary.sha256.clone()),
            selector: Selector::All,
            policy: Some(PolicyArg {
                gate_overrides: overrides,
                ..policy(1, vec![], 10)
            }),
        };
        deployer.preview_rollout_ok(controller(), arg);
        deployer.env.last_instructions(deployer.canister)
    };
    let all_gates = preview(None);
    let without_candid = preview(Some(vec![GateOverride {
        gate: UpgradeGate::CandidCompatible,
        reason: "measuring the check".into(),
    }]));
    BTreeMap::from([
        ("preview_all_gates_instructions".to_string(), all_gates),
        (
            "preview_candid_gate_overridden_instructions".to_string(),
            without_candid,
        ),
        (
            "candid_check_instructions".to_string(),
            all_gates.saturating_sub(without_candid),
        ),
        ("service_bytes".to_string(), service.len() as u64),
    ])
}
