use super::*;

#[test]
fn every_method_name_maps_back_to_its_method() {
    for method in Method::ALL {
        assert_eq!(Method::from_name(method.name()), Some(method));
    }
    assert_eq!(Method::from_name("upload_everything"), None);
}

#[test]
fn a_role_gated_method_refuses_callers_without_the_role() {
    assert_eq!(
        inspect("upload_chunk", 10, &[]),
        Err(InspectRefusal::NotAuthorized {
            method: Method::UploadChunk,
            required: Role::Operator,
        })
    );
    assert_eq!(
        inspect("add_role", 10, &[Role::Operator]),
        Err(InspectRefusal::NotAuthorized {
            method: Method::AddRole,
            required: Role::Admin,
        })
    );
    assert_eq!(inspect("upload_chunk", 10, &[Role::Admin]), Ok(()));
}

#[test]
fn public_reads_accept_anyone_holding_a_role_as_updates() {
    assert_eq!(inspect("list_releases", 10, &[Role::Operator]), Ok(()));
    assert_eq!(inspect("release_chunk", 10, &[Role::Admin]), Ok(()));
}

#[test]
fn a_chunk_argument_may_be_as_large_as_ingress_allows_and_the_method_judges_it() {
    let max = MAX_INGRESS_ARG_BYTES;
    assert_eq!(inspect("upload_chunk", max, &[Role::Operator]), Ok(()));
    assert_eq!(
        inspect("upload_chunk", max + 1, &[Role::Operator]),
        Err(InspectRefusal::ArgumentTooLarge {
            method: Method::UploadChunk,
            size: max + 1,
            max,
        })
    );
}

#[test]
fn other_methods_take_small_arguments_only() {
    let refusal = inspect("upload_open", MAX_SMALL_ARG_BYTES + 1, &[Role::Operator]);
    assert!(matches!(
        refusal,
        Err(InspectRefusal::ArgumentTooLarge {
            method: Method::UploadOpen,
            ..
        })
    ));
    assert!(inspect("get_release", MAX_SMALL_ARG_BYTES + 1, &[Role::Operator]).is_err());
}

#[test]
fn an_unknown_method_is_refused() {
    assert_eq!(
        inspect("canister_update", 0, &[Role::Admin]),
        Err(InspectRefusal::UnknownMethod {
            method: "canister_update".to_string()
        })
    );
}

#[test]
fn refusals_name_the_method_and_the_remedy() {
    let refusal = InspectRefusal::NotAuthorized {
        method: Method::DeleteRelease,
        required: Role::Operator,
    };
    assert_eq!(
        refusal.to_string(),
        "delete_release requires the Operator role, which the caller does not hold: \
         an admin can grant it with add_role"
    );
}

#[test]
fn a_query_runs_replicated_only_for_callers_holding_a_role() {
    let queries = Method::ALL.into_iter().filter(|method| method.is_query());
    for method in queries.filter(|method| *method != Method::HttpRequest) {
        assert_eq!(
            replicated_execution(method, &[]),
            Err(InspectRefusal::PaidQuery { method })
        );
        assert_eq!(replicated_execution(method, &[Role::Operator]), Ok(()));
        if method.required_role().is_none() {
            assert_eq!(
                inspect(method.name(), 10, &[]),
                Err(InspectRefusal::PaidQuery { method })
            );
        }
    }
    assert_eq!(replicated_execution(Method::UploadOpen, &[]), Ok(()));
    // A scrape never runs at the deployer's cost, whoever asks.
    let http = Method::HttpRequest;
    for roles in [&[][..], &[Role::Admin][..]] {
        let refusal = Err(InspectRefusal::QueryOnly { method: http });
        assert_eq!(replicated_execution(http, roles), refusal);
        assert_eq!(inspect("http_request", 100, roles), refusal);
    }
    let refusal = InspectRefusal::PaidQuery {
        method: Method::GetRollout,
    };
    assert!(refusal
        .to_string()
        .starts_with("get_rollout is a query: call it as a query"));
}

/// The fleet, the rollouts (install arguments included), histories and events are read by role
/// holders only; the release catalogue and the version stay public.
#[test]
fn sensitive_reads_need_the_viewer_role_and_the_catalogue_stays_public() {
    for method in [
        Method::GetChild,
        Method::ListChildren,
        Method::GetRollout,
        Method::ListRollouts,
        Method::ChildHistory,
        Method::ListEvents,
    ] {
        assert_eq!(method.required_role(), Some(Role::Viewer), "{method:?}");
    }
    for method in [
        Method::Version,
        Method::ListReleases,
        Method::GetRelease,
        Method::ReleaseChunk,
        Method::StorageStats,
    ] {
        assert_eq!(method.required_role(), None, "{method:?}");
    }
    // A viewer reads (replicated too, as a dashboard canister would) but changes nothing.
    assert_eq!(inspect("list_rollouts", 10, &[Role::Viewer]), Ok(()));
    assert_eq!(
        inspect("pause_rollout", 10, &[Role::Viewer]),
        Err(InspectRefusal::NotAuthorized {
            method: Method::PauseRollout,
            required: Role::Operator,
        })
    );
}
