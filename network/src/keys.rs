//! The network's keys, all derived from the simulator's seed: a BLS12-381 root key that signs
//! subnet delegations, one BLS key per subnet that signs the subnet's certificates, and one
//! Ed25519 node key per subnet that signs query responses.
//!
//! IC interface specification: "Certification" (BLS signatures, DER framing of BLS keys),
//! "Delegation", "Subnet information" (node keys are RFC 8410 DER Ed25519 keys).

use candid::Principal;
use ic_verify_bls_signature::PrivateKey as BlsPrivateKey;
use sha2::{Digest, Sha256};

/// DER prefix of a BLS12-381 G2 public key (OIDs 1.3.6.1.4.1.44668.5.3.1.2.1 and
/// 1.3.6.1.4.1.44668.5.3.2.1), followed by the 96-byte compressed key.
const BLS_DER_PREFIX: [u8; 37] = [
    0x30, 0x81, 0x82, 0x30, 0x1d, 0x06, 0x0d, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0xdc, 0x7c, 0x05,
    0x03, 0x01, 0x02, 0x01, 0x06, 0x0c, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0xdc, 0x7c, 0x05, 0x03,
    0x02, 0x01, 0x03, 0x61, 0x00,
];

/// Domain separator of certificate signatures: `"\x0Dic-state-root" ‖ root hash`.
const STATE_ROOT_DOMAIN: &[u8] = b"\x0Dic-state-root";

/// A BLS key that certifies state trees.
pub struct CertifyingKey {
    secret: BlsPrivateKey,
    public_key_der: Vec<u8>,
}

impl CertifyingKey {
    fn derive(seed: u64, purpose: &str) -> CertifyingKey {
        let mut scalar = derive_bytes(seed, purpose);
        // Big-endian scalar below 2^254 < the group order, so every derived value is valid.
        scalar[0] &= 0x3f;
        let secret = BlsPrivateKey::deserialize(&scalar).expect("scalar below the group order");
        let mut public_key_der = BLS_DER_PREFIX.to_vec();
        public_key_der.extend_from_slice(&secret.public_key().serialize());
        CertifyingKey {
            secret,
            public_key_der,
        }
    }

    pub fn public_key_der(&self) -> &[u8] {
        &self.public_key_der
    }

    /// The signature of a certificate whose tree has `root_hash`.
    pub fn sign_root_hash(&self, root_hash: &[u8; 32]) -> Vec<u8> {
        let mut message = STATE_ROOT_DOMAIN.to_vec();
        message.extend_from_slice(root_hash);
        self.secret.sign(&message).serialize().to_vec()
    }
}

/// The one node of a simulated subnet: its id and the Ed25519 key it signs query responses with.
pub struct NodeKey {
    pub node_id: Principal,
    secret: ic_ed25519::PrivateKey,
    public_key_der: Vec<u8>,
}

impl NodeKey {
    fn derive(seed: u64, subnet: usize) -> NodeKey {
        let secret = ic_ed25519::PrivateKey::generate_from_seed(&derive_bytes(
            seed,
            &format!("node key of subnet {subnet}"),
        ));
        let public_key_der = secret.public_key().serialize_rfc8410_der();
        NodeKey {
            node_id: Principal::self_authenticating(&public_key_der),
            secret,
            public_key_der,
        }
    }

    /// 44 bytes: RFC 8410 DER framing of the 32-byte key.
    pub fn public_key_der(&self) -> &[u8] {
        &self.public_key_der
    }

    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.secret.sign_message(message).to_vec()
    }
}

/// Keys of one subnet.
pub struct SubnetKeys {
    pub certifying: CertifyingKey,
    pub node: NodeKey,
}

/// Every key of the network.
pub struct NetworkKeys {
    pub root: CertifyingKey,
    pub subnets: Vec<SubnetKeys>,
}

impl NetworkKeys {
    /// The same seed always gives the same keys.
    pub fn derive(seed: u64, subnets: usize) -> NetworkKeys {
        NetworkKeys {
            root: CertifyingKey::derive(seed, "root key"),
            subnets: (0..subnets)
                .map(|subnet| SubnetKeys {
                    certifying: CertifyingKey::derive(seed, &format!("key of subnet {subnet}")),
                    node: NodeKey::derive(seed, subnet),
                })
                .collect(),
        }
    }
}

fn derive_bytes(seed: u64, purpose: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"ic-local-network ");
    hasher.update(seed.to_be_bytes());
    hasher.update(purpose.as_bytes());
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_from_the_seed_alone() {
        let a = NetworkKeys::derive(7, 2);
        let b = NetworkKeys::derive(7, 2);
        let c = NetworkKeys::derive(8, 2);
        assert_eq!(a.root.public_key_der(), b.root.public_key_der());
        assert_ne!(a.root.public_key_der(), c.root.public_key_der());
        assert_ne!(
            a.subnets[0].certifying.public_key_der(),
            a.subnets[1].certifying.public_key_der()
        );
        assert_eq!(a.subnets[1].node.node_id, b.subnets[1].node.node_id);
    }

    /// Certification: "verify_bls_signature(bls_key, cert.signature, domain_sep("ic-state-root") · root_hash)"
    /// with the key DER-framed as the agents' `extract_der` expects (37-byte prefix + 96 bytes).
    #[test]
    fn certificate_signatures_verify_under_the_der_framed_key() {
        let key = CertifyingKey::derive(1, "root key");
        let der = key.public_key_der();
        assert_eq!(der.len(), 133);
        assert_eq!(der[..37], BLS_DER_PREFIX);
        let root_hash = [5u8; 32];
        let signature = key.sign_root_hash(&root_hash);
        let mut message = b"\x0Dic-state-root".to_vec();
        message.extend_from_slice(&root_hash);
        assert!(
            ic_verify_bls_signature::verify_bls_signature(&signature, &message, &der[37..]).is_ok()
        );
        message[20] ^= 1;
        assert!(
            ic_verify_bls_signature::verify_bls_signature(&signature, &message, &der[37..])
                .is_err()
        );
    }

    /// "Subnet information": node keys are DER-encoded Ed25519 keys (RFC 8410), 44 bytes with the
    /// 12-byte prefix the agents check.
    #[test]
    fn node_keys_are_rfc8410_der_ed25519_keys() {
        let node = NodeKey::derive(1, 0);
        let der = node.public_key_der();
        assert_eq!(der.len(), 44);
        assert_eq!(der[..12], [48, 42, 48, 5, 6, 3, 43, 101, 112, 3, 33, 0]);
        let key = ic_ed25519::PublicKey::deserialize_rfc8410_der(der).unwrap();
        assert!(key.verify_signature(b"m", &node.sign(b"m")).is_ok());
    }
}
