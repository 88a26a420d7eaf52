//! The certificate a non-replicated query reads with `ic0.data_certificate_copy`.
//!
//! Spec: IC interface specification, "Certified data" (System API: in a non-replicated query the
//! certificate's tree reveals `/canister/<id>/certified_data` and `/time`) and "Certification"
//! (encoding: a CBOR map `tree`, `signature`, optional `delegation`; the hash tree as
//! `[0]`, `[1, l, r]`, `[2, label, t]`, `[3, leaf]`, `[4, hash]`; self-describing tag 55799).
//!
//! The simulator holds no BLS key: by default the signature is 48 deterministic bytes derived
//! from the tree's root hash, which a canister can read and parse but not verify against the
//! root key. A network serving the simulator installs a [`DataCertifier`] that signs with its
//! subnet key and adds the root key's delegation, so that certificates verify against the root
//! key canisters read with `ic0.root_key_copy`.

use crate::types::Principal;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// What a certificate for one query reveals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertifiedQueryData {
    pub subnet: usize,
    pub canister: Principal,
    pub certified_data: Vec<u8>,
    pub time_nanos: u64,
}

/// Makes the certificate bytes for a query (see the module doc).
pub type DataCertifier = Arc<dyn Fn(&CertifiedQueryData) -> Vec<u8> + Send + Sync>;

/// A hash tree of the IC's certification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HashTree {
    Empty,
    Fork(Box<HashTree>, Box<HashTree>),
    Labeled(Vec<u8>, Box<HashTree>),
    Leaf(Vec<u8>),
    Pruned([u8; 32]),
}

fn domain_hash(separator: &str, parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update([separator.len() as u8]);
    hasher.update(separator.as_bytes());
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

impl HashTree {
    /// `reconstruct` of the spec: the root hash.
    pub fn digest(&self) -> [u8; 32] {
        match self {
            HashTree::Empty => domain_hash("ic-hashtree-empty", &[]),
            HashTree::Fork(l, r) => domain_hash("ic-hashtree-fork", &[&l.digest(), &r.digest()]),
            HashTree::Labeled(label, t) => {
                domain_hash("ic-hashtree-labeled", &[label, &t.digest()])
            }
            HashTree::Leaf(v) => domain_hash("ic-hashtree-leaf", &[v]),
            HashTree::Pruned(h) => *h,
        }
    }

    fn labeled(label: &[u8], tree: HashTree) -> HashTree {
        HashTree::Labeled(label.to_vec(), Box::new(tree))
    }

    /// `/canister/<id>/certified_data` and `/time`, as a query's certificate reveals them.
    pub fn for_query(data: &CertifiedQueryData) -> HashTree {
        let canister = HashTree::labeled(
            b"canister",
            HashTree::labeled(
                data.canister.as_slice(),
                HashTree::labeled(
                    b"certified_data",
                    HashTree::Leaf(data.certified_data.clone()),
                ),
            ),
        );
        let time = HashTree::labeled(b"time", HashTree::Leaf(leb128(data.time_nanos)));
        HashTree::Fork(Box::new(canister), Box::new(time))
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            HashTree::Empty => {
                cbor_head(out, 4, 1);
                cbor_head(out, 0, 0);
            }
            HashTree::Fork(l, r) => {
                cbor_head(out, 4, 3);
                cbor_head(out, 0, 1);
                l.encode(out);
                r.encode(out);
            }
            HashTree::Labeled(label, t) => {
                cbor_head(out, 4, 3);
                cbor_head(out, 0, 2);
                cbor_bytes(out, label);
                t.encode(out);
            }
            HashTree::Leaf(v) => {
                cbor_head(out, 4, 2);
                cbor_head(out, 0, 3);
                cbor_bytes(out, v);
            }
            HashTree::Pruned(h) => {
                cbor_head(out, 4, 2);
                cbor_head(out, 0, 4);
                cbor_bytes(out, h);
            }
        }
    }
}

/// Unsigned LEB128, the encoding of `/time`.
pub fn leb128(mut value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

fn cbor_head(out: &mut Vec<u8>, major: u8, value: u64) {
    let major = major << 5;
    match value {
        0..=23 => out.push(major | value as u8),
        24..=0xff => out.extend([major | 24, value as u8]),
        0x100..=0xffff => {
            out.push(major | 25);
            out.extend((value as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(major | 26);
            out.extend((value as u32).to_be_bytes());
        }
        _ => {
            out.push(major | 27);
            out.extend(value.to_be_bytes());
        }
    }
}

fn cbor_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    cbor_head(out, 2, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn cbor_text(out: &mut Vec<u8>, text: &str) {
    cbor_head(out, 3, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}

/// A certificate `{ tree, signature }` (with the self-describing tag), no delegation.
pub fn encode_certificate(tree: &HashTree, signature: &[u8]) -> Vec<u8> {
    let mut out = vec![0xd9, 0xd9, 0xf7];
    cbor_head(&mut out, 5, 2);
    cbor_text(&mut out, "tree");
    tree.encode(&mut out);
    cbor_text(&mut out, "signature");
    cbor_bytes(&mut out, signature);
    out
}

/// The simulator's own certificate: the query's tree and 48 bytes standing for a BLS signature
/// (SHA-256 of a domain separator and the root hash, stretched), not verifiable.
pub fn unsigned_certificate(data: &CertifiedQueryData) -> Vec<u8> {
    let tree = HashTree::for_query(data);
    let root = tree.digest();
    let first: [u8; 32] = Sha256::digest([b"ic-sim certificate".as_slice(), &root].concat()).into();
    let second: [u8; 32] = Sha256::digest(first).into();
    let signature = [&first[..], &second[..16]].concat();
    encode_certificate(&tree, &signature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leb128_and_cbor_heads() {
        assert_eq!(leb128(0), [0]);
        assert_eq!(leb128(624_485), [0xe5, 0x8e, 0x26]);
        let mut out = Vec::new();
        cbor_head(&mut out, 2, 500);
        assert_eq!(out, [0x59, 0x01, 0xf4]);
    }

    #[test]
    fn digest_of_a_labeled_leaf_follows_the_spec_separators() {
        // reconstruct(Labeled(l, Leaf(v))) = H(len|"ic-hashtree-labeled" · l · H(len|"ic-hashtree-leaf" · v))
        let leaf = domain_hash("ic-hashtree-leaf", &[b"v"]);
        let expected = domain_hash("ic-hashtree-labeled", &[b"l", &leaf]);
        let tree = HashTree::labeled(b"l", HashTree::Leaf(b"v".to_vec()));
        assert_eq!(tree.digest(), expected);
    }
}
