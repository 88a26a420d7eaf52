//! Sender authentication of requests as the IC does it: the CBOR envelope, the request id, the
//! envelope signature (Ed25519, ECDSA secp256k1 and P-256 keys), delegation chains, the anonymous
//! principal and `ingress_expiry`. P-256 is what the JS agent's `ECDSAKeyIdentity` and
//! ic-agent's `Prime256v1Identity` sign with.
//!
//! IC interface specification, https-interface: "Authentication", "Request ids",
//! "Representation-independent hashing"; index: "Signatures", "Principals" (self-authenticating
//! ids). Canister signatures and WebAuthn keys are not supported (refused as unsupported keys).

use crate::cbor;
use candid::Principal;
use ic_transport_types::{DelegationPermissions, Envelope, EnvelopeContent, SignedDelegation};

/// How far in the future `ingress_expiry` may lie: the IC's maximum ingress time to live
/// (5 minutes) plus the drift it tolerates between clocks (30 s).
pub const MAX_INGRESS_TTL_NANOS: u64 = (5 * 60 + 30) * 1_000_000_000;
/// "The delegation field, if present, must not contain more than 20 delegations."
const MAX_DELEGATIONS: usize = 20;
/// "The list must contain no more than 1000 elements."
const MAX_DELEGATION_TARGETS: usize = 1000;

/// Which endpoint a request came to: its `request_type` must match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind {
    Call,
    Query,
    ReadState,
}

impl RequestKind {
    fn name(self) -> &'static str {
        match self {
            RequestKind::Call => "call",
            RequestKind::Query => "query",
            RequestKind::ReadState => "read_state",
        }
    }
}

/// A request whose sender is authenticated.
#[derive(Debug)]
pub struct AuthenticatedRequest {
    pub content: EnvelopeContent,
    pub request_id: [u8; 32],
}

impl AuthenticatedRequest {
    pub fn sender(&self) -> Principal {
        *self.content.sender()
    }
}

/// Why a request is refused before it reaches the simulator; the IC answers each with 400 and
/// the text as a plain-text body.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("Could not parse body as {kind} request: {reason}")]
    Malformed { kind: &'static str, reason: String },
    #[error("Invalid request expiry: Specified ingress_expiry not within expected range: Minimum allowed expiry: {min}, Maximum allowed expiry: {max}, Provided expiry: {provided}")]
    Expiry { min: u64, max: u64, provided: u64 },
    #[error("Request is missing the signature or the public key of its non-anonymous sender {0}")]
    MissingSignature(Principal),
    #[error(
        "Request from the anonymous principal must not carry a public key, signature or delegation"
    )]
    AnonymousWithSignature,
    #[error("Sender {sender} is not the self-authenticating principal of the sender_pubkey (expected {derived})")]
    SenderMismatch {
        sender: Principal,
        derived: Principal,
    },
    #[error("Invalid signature: unsupported public key (only Ed25519, ECDSA secp256k1 and ECDSA P-256 DER keys are accepted): {0}")]
    UnsupportedKey(String),
    #[error("Invalid signature: {0} signature could not be verified")]
    BadSignature(&'static str),
    #[error("Invalid delegation: {0}")]
    BadDelegation(String),
}

/// Decodes and authenticates a request body at time `now_nanos` (the simulator's time).
/// `effective_canister_id`: the canister in the URL, which delegation targets must allow.
pub fn authenticate(
    body: &[u8],
    kind: RequestKind,
    effective_canister_id: Option<Principal>,
    now_nanos: u64,
) -> Result<AuthenticatedRequest, AuthError> {
    let malformed = |reason: String| AuthError::Malformed {
        kind: kind.name(),
        reason,
    };
    let envelope: Envelope = cbor::from_slice(body).map_err(malformed)?;
    let content = envelope.content.as_ref();
    let request_type = match content {
        EnvelopeContent::Call { .. } => RequestKind::Call,
        EnvelopeContent::Query { .. } => RequestKind::Query,
        EnvelopeContent::ReadState { .. } => RequestKind::ReadState,
    };
    if request_type != kind {
        return Err(malformed(format!(
            "request_type is {}, this endpoint takes {}",
            request_type.name(),
            kind.name()
        )));
    }
    let request_id = *content.to_request_id();
    let sender = *content.sender();
    check_expiry(content, sender, now_nanos)?;
    if sender == Principal::anonymous() {
        // "The fields sender_pubkey, sender_sig, and sender_delegation must be omitted if the
        // sender field is the anonymous principal."
        if envelope.sender_pubkey.is_some()
            || envelope.sender_sig.is_some()
            || envelope.sender_delegation.is_some()
        {
            return Err(AuthError::AnonymousWithSignature);
        }
    } else {
        let (Some(public_key), Some(signature)) = (&envelope.sender_pubkey, &envelope.sender_sig)
        else {
            return Err(AuthError::MissingSignature(sender));
        };
        let derived = Principal::self_authenticating(public_key);
        if derived != sender {
            return Err(AuthError::SenderMismatch { sender, derived });
        }
        let target = match content {
            EnvelopeContent::Call { canister_id, .. }
            | EnvelopeContent::Query { canister_id, .. } => Some(*canister_id),
            EnvelopeContent::ReadState { .. } => effective_canister_id,
        };
        let delegations = envelope.sender_delegation.as_deref().unwrap_or_default();
        let signing_key = check_delegations(public_key, delegations, kind, target, now_nanos)?;
        let mut signed = b"\x0Aic-request".to_vec();
        signed.extend_from_slice(&request_id);
        verify_signature(signing_key, &signed, signature)?;
    }
    Ok(AuthenticatedRequest {
        content: envelope.content.into_owned(),
        request_id,
    })
}

/// "Authentication": the IC refuses requests whose `ingress_expiry` is past or too far ahead,
/// "except for anonymous query and anonymous read_state requests for which the IC may accept
/// any provided expiry timestamp".
fn check_expiry(content: &EnvelopeContent, sender: Principal, now: u64) -> Result<(), AuthError> {
    let exempt =
        sender == Principal::anonymous() && !matches!(content, EnvelopeContent::Call { .. });
    let provided = content.ingress_expiry();
    let max = now.saturating_add(MAX_INGRESS_TTL_NANOS);
    if !exempt && !(now..=max).contains(&provided) {
        return Err(AuthError::Expiry {
            min: now,
            max,
            provided,
        });
    }
    Ok(())
}

/// Checks the chain from `sender_pubkey` and returns the key that must sign the request.
fn check_delegations<'a>(
    sender_pubkey: &'a [u8],
    delegations: &'a [SignedDelegation],
    kind: RequestKind,
    target: Option<Principal>,
    now: u64,
) -> Result<&'a [u8], AuthError> {
    if delegations.len() > MAX_DELEGATIONS {
        return Err(AuthError::BadDelegation(format!(
            "{} delegations, at most {MAX_DELEGATIONS} are allowed",
            delegations.len()
        )));
    }
    let mut seen_keys = vec![sender_pubkey];
    let mut key = sender_pubkey;
    for signed in delegations {
        let delegation = &signed.delegation;
        verify_signature(key, &delegation.signable(), &signed.signature)?;
        if delegation.expiration < now {
            return Err(AuthError::BadDelegation(format!(
                "delegation expired at {}, the time is {now}",
                delegation.expiration
            )));
        }
        if let Some(targets) = &delegation.targets {
            if targets.len() > MAX_DELEGATION_TARGETS {
                return Err(AuthError::BadDelegation(format!(
                    "{} targets, at most {MAX_DELEGATION_TARGETS} are allowed",
                    targets.len()
                )));
            }
            if let Some(target) = target.filter(|t| !targets.contains(t)) {
                return Err(AuthError::BadDelegation(format!(
                    "canister {target} is not one of the delegation's targets"
                )));
            }
        }
        if delegation.permissions == Some(DelegationPermissions::Queries)
            && kind == RequestKind::Call
        {
            return Err(AuthError::BadDelegation(
                "the delegation permits queries and read_state requests only".into(),
            ));
        }
        if seen_keys.contains(&delegation.pubkey.as_slice()) {
            return Err(AuthError::BadDelegation(
                "a public key appears twice in the delegation chain".into(),
            ));
        }
        seen_keys.push(&delegation.pubkey);
        key = &delegation.pubkey;
    }
    Ok(key)
}

/// "Ed25519 and ECDSA signatures": the DER key names the scheme; ECDSA signatures are r ‖ s.
fn verify_signature(
    public_key_der: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), AuthError> {
    if let Ok(key) = ic_ed25519::PublicKey::deserialize_rfc8410_der(public_key_der) {
        return key
            .verify_signature(message, signature)
            .map_err(|_| AuthError::BadSignature("Ed25519"));
    }
    if let Ok(key) = ic_secp256k1::PublicKey::deserialize_der(public_key_der) {
        return key
            .verify_ecdsa_signature_with_malleability(message, signature)
            .then_some(())
            .ok_or(AuthError::BadSignature("ECDSA secp256k1"));
    }
    if let Ok(key) = ic_secp256r1::PublicKey::deserialize_der(public_key_der) {
        return key
            .verify_signature(message, signature)
            .then_some(())
            .ok_or(AuthError::BadSignature("ECDSA P-256"));
    }
    Err(AuthError::UnsupportedKey(hex::encode(public_key_der)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ic_transport_types::Delegation;

    const NOW: u64 = 1_800_000_000_000_000_000;

    fn ed25519_key(seed: u8) -> ic_ed25519::PrivateKey {
        ic_ed25519::PrivateKey::generate_from_seed(&[seed; 32])
    }

    fn der(key: &ic_ed25519::PrivateKey) -> Vec<u8> {
        key.public_key().serialize_rfc8410_der()
    }

    fn call(sender: Principal, ingress_expiry: u64) -> EnvelopeContent {
        EnvelopeContent::Call {
            nonce: None,
            ingress_expiry,
            sender,
            canister_id: Principal::from_slice(&[1, 1]),
            method_name: "m".into(),
            arg: vec![],
            sender_info: None,
        }
    }

    fn request_signable(content: &EnvelopeContent) -> Vec<u8> {
        content.to_request_id().signable()
    }

    fn encode(
        content: EnvelopeContent,
        key: Option<Vec<u8>>,
        sig: Option<Vec<u8>>,
        delegations: Option<Vec<SignedDelegation>>,
    ) -> Vec<u8> {
        Envelope {
            content: std::borrow::Cow::Owned(content),
            sender_pubkey: key,
            sender_sig: sig,
            sender_delegation: delegations,
        }
        .encode_bytes()
    }

    fn signed_by(key: &ic_ed25519::PrivateKey, content: EnvelopeContent) -> Vec<u8> {
        let sig = key.sign_message(&request_signable(&content)).to_vec();
        encode(content, Some(der(key)), Some(sig), None)
    }

    fn check(body: &[u8]) -> Result<AuthenticatedRequest, AuthError> {
        authenticate(body, RequestKind::Call, None, NOW)
    }

    /// "Request ids": the id is the representation-independent hash of `content`; the spec's
    /// worked example hashes to 1d1091…b101.
    #[test]
    fn request_id_is_the_spec_example_hash() {
        let content = EnvelopeContent::Call {
            nonce: None,
            ingress_expiry: 1_685_570_400_000_000_000,
            sender: Principal::from_slice(&[4]),
            canister_id: Principal::from_slice(&[0, 0, 0, 0, 0, 0, 4, 0xd2]),
            method_name: "hello".into(),
            arg: b"DIDL\x00\xfd*".to_vec(),
            sender_info: None,
        };
        let request = authenticate(
            &encode(content, None, None, None),
            RequestKind::Call,
            None,
            1_685_570_300_000_000_000,
        );
        // Sender 0x04 is the anonymous principal: no signature is needed.
        assert_eq!(
            hex::encode(request.unwrap().request_id),
            "1d1091364d6bb8a6c16b203ee75467d59ead468f523eb058880ae8ec80e2b101"
        );
    }

    /// "Authentication": sender_sig signs `"\x0Aic-request" ‖ request id` and the sender must be
    /// the self-authenticating principal of sender_pubkey.
    #[test]
    fn ed25519_signed_requests_authenticate_their_sender() {
        let key = ed25519_key(1);
        let sender = Principal::self_authenticating(der(&key));
        let request = check(&signed_by(&key, call(sender, NOW + 60_000_000_000))).unwrap();
        assert_eq!(request.sender(), sender);

        let other = Principal::self_authenticating(der(&ed25519_key(2)));
        assert!(matches!(
            check(&signed_by(&key, call(other, NOW + 1))),
            Err(AuthError::SenderMismatch { .. })
        ));
    }

    #[test]
    fn a_tampered_signature_is_refused() {
        let key = ed25519_key(1);
        let content = call(Principal::self_authenticating(der(&key)), NOW + 1);
        let mut sig = key.sign_message(&request_signable(&content)).to_vec();
        sig[0] ^= 1;
        assert_eq!(
            check(&encode(content, Some(der(&key)), Some(sig), None)).unwrap_err(),
            AuthError::BadSignature("Ed25519")
        );
    }

    #[test]
    fn secp256k1_signed_requests_authenticate_their_sender() {
        let key = ic_secp256k1::PrivateKey::generate_from_seed(&[3; 32]);
        let der = key.public_key().serialize_der();
        let sender = Principal::self_authenticating(&der);
        let content = call(sender, NOW + 1);
        let sig = key
            .sign_message_with_ecdsa(&request_signable(&content))
            .to_vec();
        let request = check(&encode(content.clone(), Some(der.clone()), Some(sig), None)).unwrap();
        assert_eq!(request.sender(), sender);
        let wrong = key.sign_message_with_ecdsa(b"something else").to_vec();
        assert_eq!(
            check(&encode(content, Some(der), Some(wrong), None)).unwrap_err(),
            AuthError::BadSignature("ECDSA secp256k1")
        );
    }

    #[test]
    fn p256_signed_requests_authenticate_their_sender() {
        let key = ic_secp256r1::PrivateKey::generate_insecure_key_for_testing(4);
        let der = key.public_key().serialize_der();
        let sender = Principal::self_authenticating(&der);
        let content = call(sender, NOW + 1);
        let sig = key.sign_message(&request_signable(&content)).to_vec();
        let request = check(&encode(content.clone(), Some(der.clone()), Some(sig), None)).unwrap();
        assert_eq!(request.sender(), sender);
        let wrong = key.sign_message(b"something else").to_vec();
        assert_eq!(
            check(&encode(content, Some(der), Some(wrong), None)).unwrap_err(),
            AuthError::BadSignature("ECDSA P-256")
        );
    }

    /// "Authentication": not expired, and not further ahead than the IC accepts; anonymous
    /// queries and read_state requests are exempt.
    #[test]
    fn ingress_expiry_must_lie_between_now_and_the_maximum_ttl() {
        let anonymous = Principal::anonymous();
        let body = |expiry| encode(call(anonymous, expiry), None, None, None);
        assert!(check(&body(NOW)).is_ok());
        assert!(check(&body(NOW + MAX_INGRESS_TTL_NANOS)).is_ok());
        assert!(matches!(
            check(&body(NOW - 1)),
            Err(AuthError::Expiry { .. })
        ));
        assert!(matches!(
            check(&body(NOW + MAX_INGRESS_TTL_NANOS + 1)),
            Err(AuthError::Expiry { .. })
        ));
        let old_query = EnvelopeContent::Query {
            ingress_expiry: 1,
            sender: anonymous,
            canister_id: Principal::from_slice(&[1, 1]),
            method_name: "m".into(),
            arg: vec![],
            nonce: None,
            sender_info: None,
        };
        let body = encode(old_query, None, None, None);
        assert!(authenticate(&body, RequestKind::Query, None, NOW).is_ok());
    }

    #[test]
    fn anonymous_requests_carry_no_signature_and_others_must() {
        let key = ed25519_key(1);
        let anonymous = call(Principal::anonymous(), NOW + 1);
        let sig = key.sign_message(&request_signable(&anonymous)).to_vec();
        assert_eq!(
            check(&encode(anonymous, Some(der(&key)), Some(sig), None)).unwrap_err(),
            AuthError::AnonymousWithSignature
        );
        let sender = Principal::self_authenticating(der(&key));
        assert_eq!(
            check(&encode(call(sender, NOW + 1), None, None, None)).unwrap_err(),
            AuthError::MissingSignature(sender)
        );
    }

    #[test]
    fn malformed_cbor_and_a_wrong_request_type_are_refused() {
        assert!(matches!(
            check(b"not cbor"),
            Err(AuthError::Malformed { kind: "call", .. })
        ));
        let body = encode(call(Principal::anonymous(), NOW + 1), None, None, None);
        assert!(matches!(
            authenticate(&body, RequestKind::Query, None, NOW),
            Err(AuthError::Malformed { kind: "query", .. })
        ));
    }

    fn delegate(
        from: &ic_ed25519::PrivateKey,
        to: &ic_ed25519::PrivateKey,
        expiration: u64,
        targets: Option<Vec<Principal>>,
    ) -> SignedDelegation {
        let delegation = Delegation {
            pubkey: der(to),
            expiration,
            targets,
            permissions: None,
        };
        SignedDelegation {
            signature: from.sign_message(&delegation.signable()).to_vec(),
            delegation,
        }
    }

    /// "Authentication": a delegation chain from sender_pubkey to the key that signs; each
    /// delegation signed by the previous key over `"\x1Aic-request-auth-delegation" ‖ hash`,
    /// unexpired, and with the request's canister among its targets when it names targets.
    #[test]
    fn delegation_chains_are_checked_link_by_link() {
        let identity = ed25519_key(1);
        let session = ed25519_key(2);
        let sender = Principal::self_authenticating(der(&identity));
        let content = call(sender, NOW + 1);
        let body = |delegation: SignedDelegation| {
            let sig = session.sign_message(&request_signable(&content)).to_vec();
            encode(
                content.clone(),
                Some(der(&identity)),
                Some(sig),
                Some(vec![delegation]),
            )
        };
        let canister = Principal::from_slice(&[1, 1]);
        assert!(check(&body(delegate(&identity, &session, NOW + 1, None))).is_ok());
        assert!(check(&body(delegate(
            &identity,
            &session,
            NOW + 1,
            Some(vec![canister])
        )))
        .is_ok());
        assert!(matches!(
            check(&body(delegate(&identity, &session, NOW - 1, None))),
            Err(AuthError::BadDelegation(_))
        ));
        assert!(matches!(
            check(&body(delegate(
                &identity,
                &session,
                NOW + 1,
                Some(vec![Principal::anonymous()])
            ))),
            Err(AuthError::BadDelegation(_))
        ));
        // Signed by a key that is not the sender's.
        assert!(matches!(
            check(&body(delegate(&ed25519_key(3), &session, NOW + 1, None))),
            Err(AuthError::BadSignature(_))
        ));
    }
}
