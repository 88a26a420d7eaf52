//! Canister and subnet identifiers.
//!
//! IC-style canister ids: the canister's 8-byte big-endian index followed by `0x01 0x01` (the
//! "opaque id" class). Subnet `k` owns indices `[k * 2^20, (k + 1) * 2^20)`, so the subnet hosting
//! any canister id follows from the id alone, as with the IC's routing table.

use crate::types::Principal;

/// Canister ids each subnet owns.
pub(crate) const CANISTER_IDS_PER_SUBNET: u64 = 1 << 20;

pub(crate) fn canister_id(index: u64) -> Principal {
    let mut bytes = index.to_be_bytes().to_vec();
    bytes.extend_from_slice(&[0x01, 0x01]);
    Principal::from_slice(&bytes)
}

/// The index encoded in an IC-style canister id, if `id` is one.
pub(crate) fn canister_index(id: &Principal) -> Option<u64> {
    match id.as_slice() {
        [index @ .., 0x01, 0x01] if index.len() == 8 => {
            Some(u64::from_be_bytes(index.try_into().ok()?))
        }
        _ => None,
    }
}

/// The subnet whose range contains `id` (whether or not such a canister exists).
pub(crate) fn subnet_of_id(id: &Principal, subnets: usize) -> Option<usize> {
    let subnet = canister_index(id)? / CANISTER_IDS_PER_SUBNET;
    usize::try_from(subnet).ok().filter(|s| *s < subnets)
}

/// A deterministic, self-authenticating principal per subnet (the IC derives subnet ids from the
/// subnet's public key the same way).
pub(crate) fn subnet_id(index: usize) -> Principal {
    Principal::self_authenticating(format!("ic-sim subnet {index}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canister_ids_round_trip_and_route_by_range() {
        let first_of_subnet_1 = canister_id(CANISTER_IDS_PER_SUBNET);
        assert_eq!(
            canister_index(&first_of_subnet_1),
            Some(CANISTER_IDS_PER_SUBNET)
        );
        assert_eq!(subnet_of_id(&first_of_subnet_1, 2), Some(1));
        assert_eq!(subnet_of_id(&first_of_subnet_1, 1), None);
        assert_eq!(subnet_of_id(&canister_id(0), 1), Some(0));
        // The IC's first canister id.
        assert_eq!(canister_id(0).to_text(), "rwlgt-iiaaa-aaaaa-aaaaa-cai");
        assert_eq!(canister_index(&Principal::anonymous()), None);
        assert_ne!(subnet_id(0), subnet_id(1));
    }
}
