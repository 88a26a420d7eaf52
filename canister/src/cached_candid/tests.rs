use candid::Principal;

use super::encode;
use crate::error::{Error, ErrorKind};
use crate::releases::ReleasePage;
use crate::roles::{Role, RoleAssignment};

fn same_as_candid<T: candid::CandidType + 'static>(value: T) {
    let expected = candid::encode_one(&value).unwrap();
    // Twice: the first builds the cached header, the second uses it.
    assert_eq!(encode(&value), expected);
    assert_eq!(encode(&value), expected);
}

#[test]
fn replies_are_the_bytes_candid_encodes() {
    same_as_candid(Ok::<(), Error>(()));
    same_as_candid(Err::<(), Error>(
        ErrorKind::RolloutNotFound { rollout_id: 7 }.into(),
    ));
    same_as_candid(Err::<ReleasePage, Error>(
        ErrorKind::InvalidRolloutPlan {
            reason: "ü".repeat(300),
        }
        .into(),
    ));
    same_as_candid(Ok::<ReleasePage, Error>(ReleasePage {
        releases: vec![],
        next_before: Some(3),
    }));
    same_as_candid(vec![RoleAssignment {
        principal: Principal::from_slice(&[1, 2, 3]),
        roles: vec![Role::Admin, Role::Operator],
    }]);
    same_as_candid(Ok::<Vec<Result<bool, Error>>, Error>(vec![
        Ok(true),
        Err(ErrorKind::RolloutNotFound { rollout_id: 1 }.into()),
    ]));
    same_as_candid(Some(u64::MAX));
}

#[test]
fn types_alternating_keep_their_own_headers() {
    for round in 0..3u64 {
        assert_eq!(encode(&round), candid::encode_one(round).unwrap());
        assert_eq!(
            encode(&Ok::<u64, Error>(round)),
            candid::encode_one(Ok::<u64, Error>(round)).unwrap()
        );
        assert_eq!(
            encode(&vec![round]),
            candid::encode_one(vec![round]).unwrap()
        );
    }
}
