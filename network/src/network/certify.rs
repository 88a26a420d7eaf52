//! Certificates: each subnet's state tree brought up to the simulator's state, pruned to the
//! requested paths, signed by the subnet's key, with the root key's delegation to the subnet
//! (IC interface specification, "Certification", "Delegation").

#[cfg(feature = "test-knobs")]
use super::Tamper;
use super::{CachedDelegation, LocalNetwork};
use crate::cbor;
use crate::keys::{CertifyingKey, NetworkKeys};
use crate::tree::{CanisterInfo, Path, RequestStatus, StateTree, SubnetInfo};
use candid::Principal;
use ic_certification::{Certificate, Delegation, HashTree};
use ic_sim::{IngressStatus, Reject, Sim};
use std::collections::BTreeSet;

/// How long a delegation certificate is reused before it is signed anew (its `/time` ages).
const DELEGATION_REFRESH_NANOS: u64 = 60 * 1_000_000_000;

impl LocalNetwork {
    /// Brings the subnet's tree up to the simulator's state: time, canisters, call answers.
    /// Canisters change only in rounds or by being created, so their part is read again only
    /// after either (reading 1,000 canisters costs milliseconds).
    fn refresh_tree(&mut self, subnet: usize) {
        let now = self.sim.time_nanos();
        self.subnet_trees[subnet].set_time(now);
        let stamp = (self.sim.round(), self.sim.canister_ids().len());
        if self.canisters_read_at[subnet] != Some(stamp) {
            self.refresh_canisters(subnet);
            self.canisters_read_at[subnet] = Some(stamp);
        }
        let tree = &mut self.subnet_trees[subnet];
        let mut expired = Vec::new();
        for (request_id, record) in self.requests.iter_mut().filter(|(_, r)| r.subnet == subnet) {
            if !record.finished {
                if let IngressStatus::Completed(result) = self.sim.ingress_status(record.message) {
                    tree.set_request_status(request_id, &request_status(&result));
                    record.finished = true;
                }
            }
            // "the transition from done or received to pruned must happen no earlier than the
            // call's ingress_expiry field".
            if record.finished && record.ingress_expiry < now {
                expired.push(*request_id);
            }
        }
        for request_id in expired {
            tree.remove_request(&request_id);
            self.requests.remove(&request_id);
        }
    }

    fn refresh_canisters(&mut self, subnet: usize) {
        let tree = &mut self.subnet_trees[subnet];
        let hosted: BTreeSet<Principal> = self
            .sim
            .canister_ids()
            .into_iter()
            .filter(|id| self.sim.subnet_of(*id) == Some(subnet))
            .collect();
        let gone: Vec<Principal> = tree.canisters().filter(|id| !hosted.contains(id)).collect();
        for id in gone {
            tree.remove_canister(id);
        }
        for id in hosted {
            let view = self.sim.canister(id).expect("listed by the simulator");
            let metadata = self
                .sim
                .canister_metadata(id)
                .map(|sections| {
                    sections
                        .iter()
                        .map(|(name, (_, content))| (name.clone(), content.clone()))
                        .collect()
                })
                .unwrap_or_default();
            tree.set_canister(
                id,
                CanisterInfo {
                    module_hash: view.module_hash,
                    controllers: view.controllers,
                    metadata,
                },
            );
        }
    }

    /// A certificate revealing `paths` (and `/time`) of the subnet's tree, signed by the
    /// subnet's key, with the root key's delegation to that subnet.
    pub(super) fn certify(&mut self, subnet: usize, paths: &[Path]) -> Vec<u8> {
        self.refresh_tree(subnet);
        let tree = self.subnet_trees[subnet].witness(paths);
        let signature = self.sign_tree(&tree, &self.keys.subnets[subnet].certifying);
        let delegation = Delegation {
            subnet_id: self.sim.subnet_id(subnet).as_slice().to_vec(),
            certificate: self.delegation_certificate(subnet),
        };
        encode_certificate(tree, signature, Some(delegation))
    }

    fn sign_tree(&self, tree: &HashTree, key: &CertifyingKey) -> Vec<u8> {
        #[allow(unused_mut)]
        let mut root_hash = tree.digest();
        #[cfg(feature = "test-knobs")]
        if self.tamper == Tamper::CertificateSignature {
            root_hash[0] ^= 1;
        }
        key.sign_root_hash(&root_hash)
    }

    /// The root-signed certificate of the subnet's key and canister ranges ("Delegation"),
    /// reused for a minute of simulated time.
    fn delegation_certificate(&mut self, subnet: usize) -> Vec<u8> {
        let now = self.sim.time_nanos();
        if let Some(cached) = &self.delegations[subnet] {
            if now.saturating_sub(cached.signed_at) < DELEGATION_REFRESH_NANOS {
                return cached.certificate.clone();
            }
        }
        let mut info = subnet_info(&self.sim, &self.keys, subnet);
        info.nodes.clear();
        let mut tree = StateTree::default();
        tree.set_time(now);
        tree.add_subnet(&info);
        let full = tree.full();
        let signature = self.sign_tree(&full, &self.keys.root);
        let certificate = encode_certificate(full, signature, None);
        self.delegations[subnet] = Some(CachedDelegation {
            signed_at: now,
            certificate: certificate.clone(),
        });
        certificate
    }
}

/// What makes the certificates non-replicated queries read with `ic0.data_certificate_copy`
/// (IC interface specification, "Certified data"): the tree revealing the canister's
/// `certified_data` and `/time`, signed by the subnet's key, with the root key's delegation to
/// the subnet, so that a canister (or its client) verifies it against the root key it reads
/// with `ic0.root_key_copy`. The keys follow from the seed, as the network's own do; the
/// delegations are signed once, at the simulator's time when the network starts.
pub(super) fn query_certifier(seed: u64, sim: &Sim) -> ic_sim::certificate::DataCertifier {
    let subnets = sim.config().subnets;
    let keys = NetworkKeys::derive(seed, subnets);
    let now = sim.time_nanos();
    let delegations: Vec<Delegation> = (0..subnets)
        .map(|subnet| {
            let mut info = subnet_info(sim, &keys, subnet);
            info.nodes.clear();
            let mut tree = StateTree::default();
            tree.set_time(now);
            tree.add_subnet(&info);
            let full = tree.full();
            let signature = keys.root.sign_root_hash(&full.digest());
            Delegation {
                subnet_id: sim.subnet_id(subnet).as_slice().to_vec(),
                certificate: encode_certificate(full, signature, None),
            }
        })
        .collect();
    std::sync::Arc::new(move |data: &ic_sim::certificate::CertifiedQueryData| {
        use ic_certification::{fork, label, leaf};
        let tree: HashTree = fork(
            label(
                "canister",
                label(
                    data.canister.as_slice(),
                    label("certified_data", leaf(data.certified_data.clone())),
                ),
            ),
            label("time", leaf(ic_sim::certificate::leb128(data.time_nanos))),
        );
        let signature = keys.subnets[data.subnet]
            .certifying
            .sign_root_hash(&tree.digest());
        encode_certificate(tree, signature, Some(delegations[data.subnet].clone()))
    })
}

pub(super) fn subnet_info<'a>(sim: &Sim, keys: &'a NetworkKeys, subnet: usize) -> SubnetInfo<'a> {
    let subnet_keys = &keys.subnets[subnet];
    SubnetInfo {
        id: sim.subnet_id(subnet),
        public_key_der: subnet_keys.certifying.public_key_der(),
        canister_ranges: vec![sim.canister_id_range(subnet)],
        nodes: vec![(subnet_keys.node.node_id, subnet_keys.node.public_key_der())],
        with_subnet_canister_ranges: true,
    }
}

fn encode_certificate(
    tree: HashTree,
    signature: Vec<u8>,
    delegation: Option<Delegation>,
) -> Vec<u8> {
    cbor::to_self_described(&Certificate {
        tree,
        signature,
        delegation,
    })
}

fn request_status(result: &Result<Vec<u8>, Reject>) -> RequestStatus {
    match result {
        Ok(reply) => RequestStatus::Replied(reply.clone()),
        Err(reject) => RequestStatus::Rejected {
            code: reject.code as u64,
            message: reject.message.clone(),
            error_code: reject.error_code.clone(),
        },
    }
}
