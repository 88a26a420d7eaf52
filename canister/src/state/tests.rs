use ic_stable_structures::VectorMemory;

use super::*;
use crate::error::ErrorKind;
use crate::roles::RoleAssignment;

fn principal(n: u8) -> Principal {
    Principal::from_slice(&[n; 29])
}

fn admins(state: &State<VectorMemory>) -> Vec<RoleAssignment> {
    state.roles.list()
}

#[test]
fn without_listed_admins_the_installer_is_the_only_admin() {
    let state = State::init(VectorMemory::default(), InitArg::default(), principal(1)).unwrap();
    assert_eq!(
        admins(&state),
        vec![RoleAssignment {
            principal: principal(1),
            roles: vec![Role::Admin],
        }]
    );
}

#[test]
fn listed_admins_replace_the_installer() {
    let arg = InitArg {
        admins: Some(vec![principal(2), principal(3)]),
        ..Default::default()
    };
    let state = State::init(VectorMemory::default(), arg, principal(1)).unwrap();
    assert_eq!(state.roles.roles_of(principal(1)), vec![]);
    assert_eq!(state.roles.roles_of(principal(2)), vec![Role::Admin]);
    assert_eq!(state.roles.roles_of(principal(3)), vec![Role::Admin]);
}

#[test]
fn an_empty_admin_list_is_refused() {
    let arg = InitArg {
        admins: Some(vec![]),
        ..Default::default()
    };
    let error = State::init(VectorMemory::default(), arg, principal(1)).err();
    assert_eq!(error, Some(InitError::NoAdmins));
}

#[test]
fn an_anonymous_installer_cannot_become_admin() {
    let error = State::init(
        VectorMemory::default(),
        InitArg::default(),
        Principal::anonymous(),
    )
    .err()
    .expect("refused");
    let InitError::Admin(error) = error else {
        panic!("expected InitError::Admin, got {error:?}");
    };
    assert_eq!(error.kind(), &ErrorKind::AnonymousPrincipal);
}

#[test]
fn upgrade_keeps_the_roles() {
    let memory = VectorMemory::default();
    let mut state = State::init(memory.clone(), InitArg::default(), principal(1)).unwrap();
    state.roles.grant(principal(2), Role::Operator).unwrap();
    let before = admins(&state);
    drop(state);

    let upgraded = State::post_upgrade(memory, UpgradeArg::default()).unwrap();
    assert_eq!(admins(&upgraded), before);
}

#[test]
fn the_upgrade_argument_adds_admins_and_keeps_the_others() {
    let memory = VectorMemory::default();
    let state = State::init(memory.clone(), InitArg::default(), principal(1)).unwrap();
    drop(state);
    let arg = UpgradeArg {
        add_admins: Some(vec![principal(3), principal(1)]),
        ..UpgradeArg::default()
    };
    let upgraded = State::post_upgrade(memory, arg).unwrap();
    let principals: Vec<Principal> = admins(&upgraded)
        .into_iter()
        .map(|assignment| assignment.principal)
        .collect();
    assert_eq!(principals, vec![principal(1), principal(3)]);
}

#[test]
fn the_upgrade_argument_cannot_make_the_anonymous_principal_an_admin() {
    let memory = VectorMemory::default();
    drop(State::init(memory.clone(), InitArg::default(), principal(1)).unwrap());
    let arg = UpgradeArg {
        add_admins: Some(vec![Principal::anonymous()]),
        ..UpgradeArg::default()
    };
    assert!(matches!(
        State::post_upgrade(memory, arg).err(),
        Some(UpgradeError::Admin(_))
    ));
}

#[test]
fn an_upgrade_is_refused_while_calls_are_outstanding_unless_the_deployer_is_stopped() {
    assert_eq!(upgrade_refusal(false, 0), None);
    assert_eq!(upgrade_refusal(true, 0), None);
    // A stopped deployer has no open call context: a count left by a trapped callback (it
    // cannot be decremented, a trap undoes the callback's changes) must not block it.
    assert_eq!(upgrade_refusal(true, 3), None);
    let refusal = upgrade_refusal(false, 2).expect("refused");
    assert!(refusal.contains("2 of its calls are still outstanding"));
    assert!(refusal.contains("Stop the deployer first"));
}

#[test]
fn upgrade_of_a_canister_without_deployer_state_is_refused() {
    assert_eq!(
        State::post_upgrade(VectorMemory::default(), UpgradeArg::default()).err(),
        Some(UpgradeError::Layout(LayoutError::Empty))
    );
}

#[test]
fn upgrade_keeps_releases_and_open_uploads() {
    use crate::releases::ListReleasesArg;
    use crate::uploads::{UploadChunkArg, UploadOpenArg};
    use serde_bytes::ByteBuf;

    let open_arg = |module: &[u8], version: &str| UploadOpenArg {
        sha256: ByteBuf::from(crate::hash::sha256(module).to_vec()),
        size: module.len() as u64,
        chunk_size: Some(4),
        name: "app".to_string(),
        version: version.to_string(),
        notes: None,
    };
    let chunk = |upload_id, index: usize, module: &[u8]| UploadChunkArg {
        upload_id,
        index: index as u32,
        bytes: ByteBuf::from(module[4 * index..(4 * index + 4).min(module.len())].to_vec()),
    };
    let memory = VectorMemory::default();
    let mut state = State::init(memory.clone(), InitArg::default(), principal(1)).unwrap();
    let released = b"\0asm\x01\x00\x00\x00".to_vec();
    let first = state
        .release_store
        .open_upload(open_arg(&released, "1"), principal(1), 0)
        .unwrap();
    for index in 0..2 {
        let arg = chunk(first.upload_id, index, &released);
        state.release_store.put_chunk(arg, 0).unwrap();
    }
    state
        .release_store
        .commit_upload(first.upload_id, principal(1), 0)
        .unwrap();
    let pending = b"\0asm\x01\x00\x00\x00\x00\x01\x00".to_vec();
    let second = state
        .release_store
        .open_upload(open_arg(&pending, "2"), principal(1), 0)
        .unwrap();
    let arg = chunk(second.upload_id, 1, &pending);
    state.release_store.put_chunk(arg, 1).unwrap();
    let releases = state
        .release_store
        .list_releases(&ListReleasesArg::default());
    let status = state
        .release_store
        .upload_status(second.upload_id, 2)
        .unwrap();
    let stats = state.storage_stats(2);
    assert_eq!((stats.releases, stats.open_uploads), (1, 1));
    drop(state);

    let upgraded = State::post_upgrade(memory, UpgradeArg::default()).unwrap();
    assert_eq!(
        upgraded
            .release_store
            .list_releases(&ListReleasesArg::default()),
        releases
    );
    assert_eq!(
        upgraded.release_store.upload_status(second.upload_id, 2),
        Ok(status)
    );
    assert_eq!(upgraded.storage_stats(2), stats);
}

#[test]
fn governance_is_made_an_admin_and_governance_only_is_set_at_install_and_lifted_at_upgrade() {
    let governance = principal(7);
    let memory = VectorMemory::default();
    let init = InitArg {
        governance: Some(governance),
        governance_only: Some(true),
        ..InitArg::default()
    };
    let state = State::init(memory.clone(), init, principal(1)).unwrap();
    assert_eq!(state.roles.roles_of(governance), vec![Role::Admin]);
    let refused = state
        .authorize(principal(1), Method::StartRollout)
        .unwrap_err();
    assert_eq!(*refused.kind(), ErrorKind::GovernanceOnly { governance });
    assert_eq!(state.authorize(governance, Method::StartRollout), Ok(()));
    assert_eq!(state.authorize(principal(1), Method::ListRollouts), Ok(()));
    drop(state);
    let lift = UpgradeArg {
        governance_only: Some(false),
        ..UpgradeArg::default()
    };
    let upgraded = State::post_upgrade(memory, lift).unwrap();
    assert_eq!(
        upgraded.authorize(principal(1), Method::StartRollout),
        Ok(())
    );
    assert_eq!(upgraded.governance().governance, Some(governance));

    let without_governance = InitArg {
        governance_only: Some(true),
        ..InitArg::default()
    };
    let refused = State::init(VectorMemory::default(), without_governance, principal(1));
    assert!(matches!(refused.err(), Some(InitError::Governance(_))));
}

#[test]
fn an_export_whose_freeze_is_gone_is_no_longer_held() {
    let mut state = State::init(VectorMemory::default(), InitArg::default(), principal(1)).unwrap();
    // More roles than a slice takes, so that the export is taken in two messages.
    for n in 0..2_500u32 {
        let operator = Principal::from_slice(&n.to_be_bytes());
        state.roles.grant(operator, Role::Operator).unwrap();
    }
    state.start_export(7);
    assert_eq!(state.continue_export(7).unwrap(), None);
    // As when more was written than a freeze keeps.
    state.memories.thaw();
    assert_eq!(
        state.continue_export(7).unwrap_err().kind(),
        &ErrorKind::ExportNotHeld { exported_at: 7 }
    );
    assert!(state.backup.export.is_none());
    // A new export is taken whole.
    state.start_export(8);
    let manifest = loop {
        if let Some(manifest) = state.continue_export(8).unwrap() {
            break manifest;
        }
    };
    let document: Vec<u8> = (0..manifest.document_pieces.len() as u32)
        .flat_map(|index| {
            let arg = crate::backup::ReadExportArg {
                exported_at: 8,
                stream: crate::backup::ExportStream::DocumentPiece(index),
            };
            state.read_export(&arg).unwrap()
        })
        .collect();
    let document: crate::backup::Document = ciborium::from_reader(document.as_slice()).unwrap();
    assert_eq!(document.sections.values::<Vec<u8>>("roles").count(), 2_501);
}
