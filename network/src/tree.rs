//! One subnet's certified state tree: what clients read with `read_state` and what call
//! certificates prove, kept up to date incrementally (`ic_certification::NestedTree` caches the
//! hashes of unchanged subtrees) and revealed as pruned witnesses of the requested paths.
//!
//! IC interface specification, "The system state tree": `/time`, `/subnet/<id>/{public_key,type,
//! node/<id>/public_key}`, `/canister_ranges/<id>/<shard>`, `/request_status/<id>/...`,
//! `/canister/<id>/{module_hash,controllers,metadata/<name>}`; values are leb128 naturals, UTF-8
//! text or blobs.

use candid::Principal;
use ic_certification::{merge_hash_trees, AsHashTree, HashTree, NestedTree};
use std::collections::BTreeMap;

pub type Label = Vec<u8>;
pub type Path = Vec<Label>;

/// The status of a call as the state tree records it ("Request status").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestStatus {
    Processing,
    Replied(Vec<u8>),
    Rejected {
        code: u64,
        message: String,
        error_code: Option<String>,
    },
}

/// What the state tree holds about one canister ("Canister information").
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CanisterInfo {
    pub module_hash: Option<[u8; 32]>,
    pub controllers: Vec<Principal>,
    /// `icp:public` and `icp:private` sections alike, by name.
    pub metadata: BTreeMap<String, Vec<u8>>,
}

/// What the state tree holds about one subnet ("Subnet information", "Canister ranges").
pub struct SubnetInfo<'a> {
    pub id: Principal,
    pub public_key_der: &'a [u8],
    pub canister_ranges: Vec<(Principal, Principal)>,
    /// (node id, DER public key) of the nodes: only in the tree of the subnet itself.
    pub nodes: Vec<(Principal, &'a [u8])>,
    /// Also the unsharded `/subnet/<id>/canister_ranges` (the root's tree; older agents read it).
    pub with_subnet_canister_ranges: bool,
}

#[derive(Default)]
pub struct StateTree {
    tree: NestedTree<Label, Vec<u8>>,
    canisters: BTreeMap<Principal, CanisterInfo>,
}

impl StateTree {
    pub fn set_time(&mut self, nanos: u64) {
        self.tree.insert(&[b"time".to_vec()], leb128(nanos));
    }

    /// Records a subnet's key, type, ranges (as one shard, keyed by its first id) and nodes.
    pub fn add_subnet(&mut self, subnet: &SubnetInfo) {
        let id = subnet.id.as_slice().to_vec();
        let at = |rest: &[&[u8]]| -> Path {
            let mut path = vec![b"subnet".to_vec(), id.clone()];
            path.extend(rest.iter().map(|label| label.to_vec()));
            path
        };
        self.tree
            .insert(&at(&[b"public_key"]), subnet.public_key_der.to_vec());
        self.tree.insert(&at(&[b"type"]), b"application".to_vec());
        for (node_id, key) in &subnet.nodes {
            self.tree.insert(
                &at(&[b"node", node_id.as_slice(), b"public_key"]),
                key.to_vec(),
            );
        }
        if subnet.with_subnet_canister_ranges {
            self.tree.insert(
                &at(&[b"canister_ranges"]),
                encode_canister_ranges(&subnet.canister_ranges),
            );
        }
        if let Some((first, _)) = subnet.canister_ranges.first() {
            self.tree.insert(
                &[
                    b"canister_ranges".to_vec(),
                    id.clone(),
                    first.as_slice().to_vec(),
                ],
                encode_canister_ranges(&subnet.canister_ranges),
            );
        }
    }

    pub fn set_request_status(&mut self, request_id: &[u8; 32], status: &RequestStatus) {
        self.remove_request(request_id);
        let at = |field: &str| -> Path {
            vec![
                b"request_status".to_vec(),
                request_id.to_vec(),
                field.as_bytes().to_vec(),
            ]
        };
        let text = |s: &str| s.as_bytes().to_vec();
        match status {
            RequestStatus::Processing => self.tree.insert(&at("status"), text("processing")),
            RequestStatus::Replied(reply) => {
                self.tree.insert(&at("status"), text("replied"));
                self.tree.insert(&at("reply"), reply.clone());
            }
            RequestStatus::Rejected {
                code,
                message,
                error_code,
            } => {
                self.tree.insert(&at("status"), text("rejected"));
                self.tree.insert(&at("reject_code"), leb128(*code));
                self.tree.insert(&at("reject_message"), text(message));
                if let Some(error_code) = error_code {
                    self.tree.insert(&at("error_code"), text(error_code));
                }
            }
        }
    }

    /// Forgets a request ("pruned": allowed once its `ingress_expiry` has passed).
    pub fn remove_request(&mut self, request_id: &[u8; 32]) {
        self.tree
            .delete(&[b"request_status".to_vec(), request_id.to_vec()]);
    }

    /// Sets what the tree holds about `canister`; unchanged information costs no hashing.
    pub fn set_canister(&mut self, canister: Principal, info: CanisterInfo) {
        if self.canisters.get(&canister) == Some(&info) {
            return;
        }
        self.remove_canister(canister);
        let at = |rest: &[&[u8]]| -> Path {
            let mut path = vec![b"canister".to_vec(), canister.as_slice().to_vec()];
            path.extend(rest.iter().map(|label| label.to_vec()));
            path
        };
        if let Some(hash) = info.module_hash {
            self.tree.insert(&at(&[b"module_hash"]), hash.to_vec());
        }
        self.tree
            .insert(&at(&[b"controllers"]), encode_principals(&info.controllers));
        for (name, content) in &info.metadata {
            self.tree
                .insert(&at(&[b"metadata", name.as_bytes()]), content.clone());
        }
        self.canisters.insert(canister, info);
    }

    pub fn remove_canister(&mut self, canister: Principal) {
        if self.canisters.remove(&canister).is_some() {
            self.tree
                .delete(&[b"canister".to_vec(), canister.as_slice().to_vec()]);
        }
    }

    pub fn canisters(&self) -> impl Iterator<Item = Principal> + '_ {
        self.canisters.keys().copied()
    }

    pub fn root_hash(&self) -> [u8; 32] {
        self.tree.root_hash()
    }

    /// The tree pruned to the requested paths plus `/time`: everything under a requested path
    /// is revealed, an absent path comes with a proof of its absence, all else is pruned
    /// ("Request: Read state": "The returned certificate also always reveals `/time`").
    pub fn witness(&self, paths: &[Path]) -> HashTree {
        paths
            .iter()
            .map(|path| self.tree.witness(path))
            .fold(self.tree.witness(&[b"time".to_vec()]), merge_hash_trees)
    }

    /// The whole tree, nothing pruned.
    pub fn full(&self) -> HashTree {
        self.tree.as_hash_tree()
    }
}

/// Naturals in the state tree are leb128-encoded ("Encoding of certificates").
pub fn leb128(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// `#6.55799([* bytes])` ("Canister information": controllers).
fn encode_principals(principals: &[Principal]) -> Vec<u8> {
    let blobs: Vec<serde_bytes::ByteBuf> = principals
        .iter()
        .map(|p| serde_bytes::ByteBuf::from(p.as_slice()))
        .collect();
    crate::cbor::to_self_described(&blobs)
}

/// `#6.55799([* [principal principal]])` ("Subnet information": canister_ranges).
fn encode_canister_ranges(ranges: &[(Principal, Principal)]) -> Vec<u8> {
    let pairs: Vec<(serde_bytes::ByteBuf, serde_bytes::ByteBuf)> = ranges
        .iter()
        .map(|(low, high)| {
            (
                serde_bytes::ByteBuf::from(low.as_slice()),
                serde_bytes::ByteBuf::from(high.as_slice()),
            )
        })
        .collect();
    crate::cbor::to_self_described(&pairs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ic_certification::LookupResult;

    fn path(labels: &[&[u8]]) -> Path {
        labels.iter().map(|l| l.to_vec()).collect()
    }

    fn canister(n: u8) -> Principal {
        Principal::from_slice(&[0, 0, 0, 0, 0, 0, 0, n, 1, 1])
    }

    fn tree_with_a_canister() -> StateTree {
        let mut tree = StateTree::default();
        tree.set_time(1_000);
        let mut metadata = BTreeMap::new();
        metadata.insert("candid:service".to_string(), b"service : {}".to_vec());
        tree.set_canister(
            canister(1),
            CanisterInfo {
                module_hash: Some([9; 32]),
                controllers: vec![Principal::anonymous()],
                metadata,
            },
        );
        tree
    }

    /// "Time": all partial state trees include `/time`, a leb128 natural.
    #[test]
    fn every_witness_reveals_the_time() {
        let tree = tree_with_a_canister();
        let witness = tree.witness(&[]);
        assert_eq!(
            witness.lookup_path([b"time"]),
            LookupResult::Found(&leb128(1_000)[..])
        );
        assert_eq!(witness.digest(), tree.root_hash());
    }

    /// A witness has the full tree's root hash (what the certificate signs), reveals the
    /// requested leaf and nothing else.
    #[test]
    fn witnesses_reveal_requested_paths_only() {
        let tree = tree_with_a_canister();
        let id = canister(1);
        let witness = tree.witness(&[path(&[b"canister", id.as_slice(), b"module_hash"])]);
        assert_eq!(witness.digest(), tree.root_hash());
        assert_eq!(
            witness.lookup_path([b"canister", id.as_slice(), b"module_hash"]),
            LookupResult::Found(&[9; 32])
        );
        assert!(matches!(
            witness.lookup_path([b"canister".as_ref(), id.as_slice(), b"controllers"]),
            LookupResult::Unknown
        ));
    }

    /// "Lookup": a path not in the tree is proven `Absent`, not left `Unknown`; agents read an
    /// unknown request id's status this way.
    #[test]
    fn absent_paths_come_with_an_absence_proof() {
        let mut tree = tree_with_a_canister();
        tree.set_request_status(&[1; 32], &RequestStatus::Processing);
        tree.set_request_status(&[3; 32], &RequestStatus::Processing);
        let unknown = [2u8; 32];
        let witness = tree.witness(&[path(&[b"request_status", &unknown])]);
        assert_eq!(
            witness.lookup_path([b"request_status".as_ref(), &unknown, b"status"]),
            LookupResult::Absent
        );
        let id = canister(1);
        let witness = tree.witness(&[path(&[b"canister", id.as_slice(), b"metadata", b"nope"])]);
        assert_eq!(
            witness.lookup_path([b"canister".as_ref(), id.as_slice(), b"metadata", b"nope"]),
            LookupResult::Absent
        );
    }

    /// "Request status": `replied` carries `reply`; `rejected` carries `reject_code` (leb128),
    /// `reject_message` and `error_code`; a new status replaces every field of the old one.
    #[test]
    fn request_status_fields_follow_the_status() {
        let mut tree = StateTree::default();
        let id = [7u8; 32];
        tree.set_request_status(&id, &RequestStatus::Replied(b"DIDL".to_vec()));
        tree.set_request_status(
            &id,
            &RequestStatus::Rejected {
                code: 5,
                message: "trapped".into(),
                error_code: Some("IC0503".into()),
            },
        );
        let witness = tree.witness(&[path(&[b"request_status", &id])]);
        let at = |field: &[u8]| witness.lookup_path([b"request_status".as_ref(), &id, field]);
        assert_eq!(at(b"status"), LookupResult::Found(b"rejected"));
        assert_eq!(at(b"reject_code"), LookupResult::Found(&[5]));
        assert_eq!(at(b"reject_message"), LookupResult::Found(b"trapped"));
        assert_eq!(at(b"error_code"), LookupResult::Found(b"IC0503"));
        assert_eq!(at(b"reply"), LookupResult::Absent);
        tree.remove_request(&id);
        let witness = tree.witness(&[path(&[b"request_status", &id])]);
        assert_eq!(
            witness.lookup_path([b"request_status".as_ref(), &id, b"status"]),
            LookupResult::Absent
        );
    }

    /// "Canister information": controllers are `#6.55799([* bytes])`.
    #[test]
    fn controllers_are_a_self_described_cbor_list_of_principals() {
        let encoded = encode_principals(&[Principal::anonymous(), canister(1)]);
        assert_eq!(&encoded[..3], &[0xd9, 0xd9, 0xf7]);
        let value: ciborium::Value = ciborium::from_reader(&encoded[..]).unwrap();
        let ciborium::Value::Tag(55799, list) = value else {
            panic!("not tagged: {value:?}")
        };
        assert_eq!(
            *list,
            ciborium::Value::Array(vec![
                ciborium::Value::Bytes(vec![4]),
                ciborium::Value::Bytes(canister(1).as_slice().to_vec()),
            ])
        );
    }

    #[test]
    fn leb128_matches_the_spec_encoding() {
        assert_eq!(leb128(0), [0]);
        assert_eq!(leb128(127), [127]);
        assert_eq!(leb128(624485), [0xe5, 0x8e, 0x26]);
    }
}
