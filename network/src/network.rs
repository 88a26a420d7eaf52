//! The IC's HTTP interface over a simulator, without an HTTP stack: each method takes a request
//! body and answers with a body or an [`ApiError`] (status code and plain-text message). The
//! HTTP layer ([`crate::http`]) only routes and waits.
//!
//! Every subnet certifies its own state tree with its own key, and every certificate carries a
//! delegation from the root key to that subnet (as the IC's application subnets do; IC
//! interface specification, "Delegation"), so any number of subnets can be served.
//!
//! Parts: `certify` (state trees and certificates), `read_state_rules` (which paths may be
//! read, by whom), `gateway_calls` (the HTTP gateway's `http_request` calls).

use crate::cbor;
use crate::envelope::{authenticate, AuthError, AuthenticatedRequest, RequestKind};
use crate::keys::NetworkKeys;
use crate::tree::{Path, RequestStatus, StateTree};
use candid::{CandidType, Deserialize, Principal};
use ic_sim::{IngressStatus, MessageId, Reject, Sim, SimConfig};
use ic_transport_types::{
    EnvelopeContent, NodeSignature, QueryResponse, RejectResponse, ReplyResponse, RequestId,
    TransportCallResponse,
};
use std::collections::BTreeMap;

mod certify;
use certify::{query_certifier, subnet_info};
mod gateway_calls;
mod read_state_rules;

/// Largest HTTP request body the IC's endpoints accept (5 MiB).
pub const MAX_REQUEST_BODY_BYTES: usize = 5 * 1024 * 1024;
/// Largest ingress message (method name and argument) the IC accepts (2 MiB).
pub const MAX_INGRESS_BYTES: usize = 2 * 1024 * 1024;

/// Configuration of a local network.
#[derive(Clone, Debug)]
pub struct NetworkConfig {
    /// The simulator's configuration; its seed also derives every key of the network.
    pub sim: SimConfig,
    /// Rounds a synchronous call (`/api/v4/.../call`) waits for its answer before the endpoint
    /// answers 202 Accepted and leaves the client to poll.
    pub sync_call_rounds: u64,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            sim: SimConfig::default(),
            sync_call_rounds: 30,
        }
    }
}

/// A request the IC refuses at the HTTP level: a status code (4xx) and a plain-text body.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> ApiError {
        ApiError::new(400, error.to_string())
    }
}

/// What became of a call that passed authentication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallSubmission {
    /// In the simulator (now or by an identical earlier request): poll its request id.
    Accepted { request_id: [u8; 32] },
    /// Refused before it entered the simulator's state (the ingress filter,
    /// `canister_inspect_message`): "non_replicated_rejection".
    Rejected(Reject),
}

/// Where a `read_state` request was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadStateTarget {
    Canister(Principal),
    Subnet(Principal),
}

/// Deliberate faults in what the server signs, for tests that show a client would catch them.
#[cfg(feature = "test-knobs")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Tamper {
    #[default]
    Nothing,
    /// Certificates are signed over another root hash than their tree's.
    CertificateSignature,
    /// Query responses are signed over another request id than the request's.
    QueryRequestId,
}

struct IngressRecord {
    message: MessageId,
    sender: Principal,
    effective_canister_id: Principal,
    subnet: usize,
    ingress_expiry: u64,
    finished: bool,
}

struct CachedDelegation {
    signed_at: u64,
    certificate: Vec<u8>,
}

/// A simulator served as a local IC network.
pub struct LocalNetwork {
    sim: Sim,
    keys: NetworkKeys,
    subnet_trees: Vec<StateTree>,
    requests: BTreeMap<[u8; 32], IngressRecord>,
    delegations: Vec<Option<CachedDelegation>>,
    /// Per subnet: (round, number of canisters) when its canisters were last read.
    canisters_read_at: Vec<Option<(u64, usize)>>,
    sync_call_rounds: u64,
    #[cfg(feature = "test-knobs")]
    tamper: Tamper,
}

impl LocalNetwork {
    pub fn new(config: NetworkConfig) -> LocalNetwork {
        let subnets = config.sim.subnets;
        let keys = NetworkKeys::derive(config.sim.seed, subnets);
        let seed = config.sim.seed;
        let mut sim = Sim::new(config.sim);
        sim.set_root_key(keys.root.public_key_der().to_vec());
        let certifier = query_certifier(seed, &sim);
        sim.set_data_certifier(certifier);
        let mut subnet_trees: Vec<StateTree> = (0..subnets).map(|_| StateTree::default()).collect();
        for (own, tree) in subnet_trees.iter_mut().enumerate() {
            for subnet in 0..subnets {
                let mut info = subnet_info(&sim, &keys, subnet);
                // A subnet's tree lists only its own nodes; /subnet/<id>/canister_ranges of a
                // non-root subnet is not served at v3 ("Request: Read state").
                if subnet != own {
                    info.nodes.clear();
                }
                info.with_subnet_canister_ranges = false;
                tree.add_subnet(&info);
            }
        }
        LocalNetwork {
            sim,
            keys,
            subnet_trees,
            requests: BTreeMap::new(),
            delegations: (0..subnets).map(|_| None).collect(),
            canisters_read_at: vec![None; subnets],
            sync_call_rounds: config.sync_call_rounds,
            #[cfg(feature = "test-knobs")]
            tamper: Tamper::Nothing,
        }
    }

    pub fn sim(&self) -> &Sim {
        &self.sim
    }

    /// For setting up canisters and driving rounds directly.
    pub fn sim_mut(&mut self) -> &mut Sim {
        &mut self.sim
    }

    /// The DER-encoded BLS root key (133 bytes) every certificate chains to.
    pub fn root_key(&self) -> &[u8] {
        self.keys.root.public_key_der()
    }

    pub fn sync_call_rounds(&self) -> u64 {
        self.sync_call_rounds
    }

    #[cfg(feature = "test-knobs")]
    pub fn set_tamper(&mut self, tamper: Tamper) {
        self.tamper = tamper;
        self.delegations.iter_mut().for_each(|d| *d = None);
    }

    /// `GET /api/v2/status` ("Status endpoint").
    pub fn status(&self) -> Vec<u8> {
        #[derive(serde::Serialize)]
        struct Status<'a> {
            #[serde(with = "serde_bytes")]
            root_key: &'a [u8],
            impl_version: &'a str,
            replica_health_status: &'a str,
        }
        cbor::to_self_described(&Status {
            root_key: self.root_key(),
            impl_version: concat!("ic-local-network ", env!("CARGO_PKG_VERSION")),
            replica_health_status: "healthy",
        })
    }

    /// `POST /api/v{2,3,4}/canister/<ecid>/call`: authenticates the call and submits it.
    pub fn submit_call(
        &mut self,
        effective_canister_id: Principal,
        body: &[u8],
    ) -> Result<CallSubmission, ApiError> {
        check_body_size(body)?;
        let subnet = self.subnet_of_effective_id(effective_canister_id)?;
        let request = authenticate(
            body,
            RequestKind::Call,
            Some(effective_canister_id),
            self.sim.time_nanos(),
        )?;
        let EnvelopeContent::Call {
            canister_id,
            method_name,
            arg,
            ingress_expiry,
            sender,
            ..
        } = &request.content
        else {
            unreachable!("authenticate checked the request type")
        };
        check_ingress_size(&request.request_id, method_name, arg)?;
        check_effective_canister_id(effective_canister_id, *canister_id, method_name, arg, true)?;
        if self.requests.contains_key(&request.request_id) {
            return Ok(CallSubmission::Accepted {
                request_id: request.request_id,
            });
        }
        match self
            .sim
            .submit_update(*sender, *canister_id, method_name, arg.clone())
        {
            Ok(message) => {
                self.requests.insert(
                    request.request_id,
                    IngressRecord {
                        message,
                        sender: *sender,
                        effective_canister_id,
                        subnet,
                        ingress_expiry: *ingress_expiry,
                        finished: false,
                    },
                );
                self.subnet_trees[subnet]
                    .set_request_status(&request.request_id, &RequestStatus::Processing);
                Ok(CallSubmission::Accepted {
                    request_id: request.request_id,
                })
            }
            Err(reject) => Ok(CallSubmission::Rejected(reject)),
        }
    }

    /// Whether the call has its answer: replied or rejected.
    pub fn call_finished(&self, request_id: &[u8; 32]) -> bool {
        self.requests.get(request_id).is_some_and(|record| {
            record.finished
                || matches!(
                    self.sim.ingress_status(record.message),
                    IngressStatus::Completed(_)
                )
        })
    }

    /// The body of a synchronous call's answer once it finished: a certificate of
    /// `/request_status/<id>` and `/time` ("Request: Call").
    pub fn sync_call_reply(&mut self, request_id: &[u8; 32]) -> Option<Vec<u8>> {
        if !self.call_finished(request_id) {
            return None;
        }
        let subnet = self.requests[request_id].subnet;
        let path = vec![b"request_status".to_vec(), request_id.to_vec()];
        let certificate = self.certify(subnet, &[path]);
        Some(cbor::to_self_described(&TransportCallResponse::Replied {
            certificate,
        }))
    }

    /// The body of a refused call: the synchronous endpoint's "non_replicated_rejection", or
    /// the asynchronous endpoint's plain reject map.
    pub fn rejection_body(reject: &Reject, synchronous: bool) -> Vec<u8> {
        let reject = reject_response(reject);
        if synchronous {
            cbor::to_self_described(&TransportCallResponse::NonReplicatedRejection(reject))
        } else {
            cbor::to_self_described(&reject)
        }
    }

    /// `POST /api/v3/canister/<ecid>/query`: runs the query and signs the response with the
    /// node key of the subnet ("Request: Query call").
    pub fn query(
        &mut self,
        effective_canister_id: Principal,
        body: &[u8],
    ) -> Result<Vec<u8>, ApiError> {
        check_body_size(body)?;
        let subnet = self.subnet_of_effective_id(effective_canister_id)?;
        let request = authenticate(
            body,
            RequestKind::Query,
            Some(effective_canister_id),
            self.sim.time_nanos(),
        )?;
        let EnvelopeContent::Query {
            canister_id,
            method_name,
            arg,
            sender,
            ..
        } = &request.content
        else {
            unreachable!("authenticate checked the request type")
        };
        check_effective_canister_id(effective_canister_id, *canister_id, method_name, arg, false)?;
        let result = self
            .sim
            .query_call(*sender, *canister_id, method_name, arg.clone());
        let mut response = match result {
            Ok(arg) => QueryResponse::Replied {
                reply: ReplyResponse { arg },
                signatures: vec![],
            },
            Err(reject) => QueryResponse::Rejected {
                reject: reject_response(&reject),
                signatures: vec![],
            },
        };
        let signature = self.sign_query_response(subnet, &request, &response);
        match &mut response {
            QueryResponse::Replied { signatures, .. }
            | QueryResponse::Rejected { signatures, .. } => signatures.push(signature),
        }
        Ok(cbor::to_self_described(&response))
    }

    fn sign_query_response(
        &self,
        subnet: usize,
        request: &AuthenticatedRequest,
        response: &QueryResponse,
    ) -> NodeSignature {
        #[allow(unused_mut)]
        let mut request_id = request.request_id;
        #[cfg(feature = "test-knobs")]
        if self.tamper == Tamper::QueryRequestId {
            request_id[0] ^= 1;
        }
        let timestamp = self.sim.time_nanos();
        let node = &self.keys.subnets[subnet].node;
        NodeSignature {
            timestamp,
            signature: node.sign(&response.signable(RequestId::new(&request_id), timestamp)),
            identity: node.node_id,
        }
    }

    /// `POST /api/v3/{canister,subnet}/<id>/read_state`: checks the paths against the rules of
    /// "Request: Read state" and answers with a certificate revealing them.
    pub fn read_state(
        &mut self,
        target: ReadStateTarget,
        body: &[u8],
    ) -> Result<Vec<u8>, ApiError> {
        check_body_size(body)?;
        let (subnet, effective_canister_id) = match target {
            ReadStateTarget::Canister(id) => (self.subnet_of_effective_id(id)?, Some(id)),
            ReadStateTarget::Subnet(id) => (
                (0..self.subnet_trees.len())
                    .find(|s| self.sim.subnet_id(*s) == id)
                    .ok_or_else(|| ApiError::new(404, format!("Subnet {id} not found")))?,
                None,
            ),
        };
        let request = authenticate(
            body,
            RequestKind::ReadState,
            effective_canister_id,
            self.sim.time_nanos(),
        )?;
        let EnvelopeContent::ReadState { paths, .. } = &request.content else {
            unreachable!("authenticate checked the request type")
        };
        let paths: Vec<Path> = paths
            .iter()
            .map(|path| path.iter().map(|label| label.as_bytes().to_vec()).collect())
            .collect();
        self.check_read_state_paths(target, request.sender(), &paths)?;
        let certificate = self.certify(subnet, &paths);
        Ok(cbor::to_self_described(
            &ic_transport_types::ReadStateResponse { certificate },
        ))
    }

    /// Runs one round of the simulator.
    pub fn tick(&mut self) {
        self.sim.tick();
    }

    /// Moves the simulator's clock forward to one round before `wall_clock_nanos` (never
    /// back), so that the next round ends at the wall clock's time.
    pub fn catch_up_with(&mut self, wall_clock_nanos: u64) {
        let target = wall_clock_nanos.saturating_sub(self.sim.config().round_duration_nanos);
        let now = self.sim.time_nanos();
        if target > now {
            self.sim.advance_time(target - now);
        }
    }

    fn subnet_of_effective_id(&self, id: Principal) -> Result<usize, ApiError> {
        // "Effective canister id": it must be contained in the canister ranges of a subnet.
        self.sim.subnet_of_id(id).ok_or_else(|| {
            ApiError::new(
                400,
                format!("Effective canister id {id} is not in the canister ranges of any subnet"),
            )
        })
    }
}

fn reject_response(reject: &Reject) -> RejectResponse {
    RejectResponse {
        reject_code: ic_transport_types::RejectCode::try_from(reject.code as u64)
            .expect("SYS_UNKNOWN only answers inter-canister calls, never a user's request"),
        reject_message: reject.message.clone(),
        error_code: reject.error_code.clone(),
    }
}

fn check_body_size(body: &[u8]) -> Result<(), ApiError> {
    if body.len() > MAX_REQUEST_BODY_BYTES {
        return Err(ApiError::new(
            413,
            format!(
                "Request body of {} bytes is larger than the maximum of {MAX_REQUEST_BODY_BYTES} bytes.",
                body.len()
            ),
        ));
    }
    Ok(())
}

fn check_ingress_size(request_id: &[u8; 32], method: &str, arg: &[u8]) -> Result<(), ApiError> {
    let size = method.len() + arg.len();
    if size > MAX_INGRESS_BYTES {
        return Err(ApiError::new(
            413,
            format!(
                "Request 0x{} is too large. Message byte size {size} is larger than the max allowed {MAX_INGRESS_BYTES}.",
                hex::encode(request_id)
            ),
        ));
    }
    Ok(())
}

/// "Effective canister id": a canister's own id; for the management canister, the
/// `canister_id` (or `install_chunked_code`'s `target_canister`) of the Candid argument, any id
/// for canister creation and `list_canisters`. An argument without such a field is left to the
/// simulator, which rejects the call.
fn check_effective_canister_id(
    effective: Principal,
    canister_id: Principal,
    method: &str,
    arg: &[u8],
    update: bool,
) -> Result<(), ApiError> {
    let expected = if canister_id != Principal::management_canister() {
        Some(canister_id)
    } else {
        #[derive(CandidType, Deserialize)]
        struct CanisterIdField {
            canister_id: Principal,
        }
        #[derive(CandidType, Deserialize)]
        struct TargetCanisterField {
            target_canister: Principal,
        }
        match method {
            "create_canister" | "provisional_create_canister_with_cycles" if update => None,
            "list_canisters" if !update => None,
            "install_chunked_code" => candid::decode_one::<TargetCanisterField>(arg)
                .ok()
                .map(|f| f.target_canister),
            _ => candid::decode_one::<CanisterIdField>(arg)
                .ok()
                .map(|f| f.canister_id),
        }
    };
    match expected {
        Some(expected) if expected != effective => Err(ApiError::new(
            400,
            format!("Specified CanisterId {expected} does not match effective canister id in URL {effective}"),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn install_code_arg(canister: Principal) -> Vec<u8> {
        ic_sim::InstallMode::Install.install_code_payload(canister, b"\0asm\x01\0\0\0", vec![])
    }

    /// "Effective canister id": management calls name their target in the argument.
    #[test]
    fn management_calls_must_be_sent_to_their_target() {
        let target = Principal::from_slice(&[0, 0, 0, 0, 0, 0, 0, 1, 1, 1]);
        let other = Principal::from_slice(&[0, 0, 0, 0, 0, 0, 0, 2, 1, 1]);
        let mgmt = Principal::management_canister();
        let arg = install_code_arg(target);
        assert!(check_effective_canister_id(target, mgmt, "install_code", &arg, true).is_ok());
        let refused = check_effective_canister_id(other, mgmt, "install_code", &arg, true);
        assert_eq!(refused.unwrap_err().status, 400);
        let create = candid::encode_args(()).unwrap();
        assert!(check_effective_canister_id(other, mgmt, "create_canister", &create, true).is_ok());
        assert!(check_effective_canister_id(other, target, "greet", &[], false).is_err());
        assert!(check_effective_canister_id(target, target, "greet", &[], false).is_ok());
    }

    fn anonymous_read_state(network: &LocalNetwork, paths: Vec<Path>) -> Vec<u8> {
        let content = EnvelopeContent::ReadState {
            ingress_expiry: network.sim().time_nanos() + 60_000_000_000,
            sender: Principal::anonymous(),
            paths: paths
                .into_iter()
                .map(|path| path.iter().map(|label| label.as_slice().into()).collect())
                .collect(),
        };
        ic_transport_types::Envelope {
            content: std::borrow::Cow::Owned(content),
            sender_pubkey: None,
            sender_sig: None,
            sender_delegation: None,
        }
        .encode_bytes()
    }

    fn certified_tree(response: &[u8]) -> ic_certification::HashTree {
        #[derive(serde::Deserialize)]
        struct Response {
            #[serde(with = "serde_bytes")]
            certificate: Vec<u8>,
        }
        #[derive(serde::Deserialize)]
        struct Tree {
            tree: ic_certification::HashTree,
        }
        let response: Response = serde_cbor::from_slice(response).unwrap();
        serde_cbor::from_slice::<Tree>(&response.certificate)
            .unwrap()
            .tree
    }

    /// Canisters read once per round stay current: one created between rounds is certified at
    /// once.
    #[test]
    fn a_canister_created_between_rounds_is_certified_at_once() {
        let mut network = LocalNetwork::new(NetworkConfig::default());
        let first = network
            .sim_mut()
            .create_canister(0, vec![Principal::anonymous()]);
        let controllers = |id: Principal| -> Path {
            vec![
                b"canister".to_vec(),
                id.as_slice().to_vec(),
                b"controllers".to_vec(),
            ]
        };
        let body = anonymous_read_state(&network, vec![controllers(first)]);
        let reply = network
            .read_state(ReadStateTarget::Canister(first), &body)
            .unwrap();
        let path = [b"canister".as_ref(), first.as_slice(), b"controllers"];
        assert!(matches!(
            certified_tree(&reply).lookup_path(path),
            ic_certification::LookupResult::Found(_)
        ));
        let second = network
            .sim_mut()
            .create_canister(0, vec![Principal::anonymous()]);
        let body = anonymous_read_state(&network, vec![controllers(second)]);
        let reply = network
            .read_state(ReadStateTarget::Canister(second), &body)
            .unwrap();
        let path = [b"canister".as_ref(), second.as_slice(), b"controllers"];
        assert!(matches!(
            certified_tree(&reply).lookup_path(path),
            ic_certification::LookupResult::Found(_)
        ));
    }

    /// The server's clock moves the simulator's time up to the wall clock, never back.
    #[test]
    fn the_clock_catches_up_with_the_wall_clock_and_never_goes_back() {
        let mut network = LocalNetwork::new(NetworkConfig::default());
        let start = network.sim().time_nanos();
        let round = network.sim().config().round_duration_nanos;
        network.catch_up_with(start + 10 * round);
        assert_eq!(network.sim().time_nanos(), start + 9 * round);
        network.tick();
        assert_eq!(network.sim().time_nanos(), start + 10 * round);
        network.catch_up_with(start);
        assert_eq!(network.sim().time_nanos(), start + 10 * round);
    }

    #[test]
    fn ingress_messages_over_2_mib_are_refused_with_413() {
        let error = check_ingress_size(&[0; 32], "m", &vec![0; MAX_INGRESS_BYTES]).unwrap_err();
        assert_eq!(error.status, 413);
        assert!(check_ingress_size(&[0; 32], "", &vec![0; MAX_INGRESS_BYTES]).is_ok());
        assert_eq!(
            check_body_size(&vec![0; MAX_REQUEST_BODY_BYTES + 1])
                .unwrap_err()
                .status,
            413
        );
    }

    /// "Status endpoint": CBOR with the self-described tag and the DER root key.
    #[test]
    fn status_reports_the_root_key_and_health() {
        let network = LocalNetwork::new(NetworkConfig::default());
        let body = network.status();
        assert_eq!(&body[..3], &[0xd9, 0xd9, 0xf7]);
        let value: ciborium::Value = ciborium::from_reader(&body[..]).unwrap();
        let ciborium::Value::Tag(55799, map) = value else {
            panic!("untagged")
        };
        let map = map.as_map().unwrap();
        let field = |name: &str| {
            map.iter()
                .find(|(k, _)| k.as_text() == Some(name))
                .map(|(_, v)| v.clone())
        };
        assert_eq!(
            field("root_key").unwrap().as_bytes().unwrap(),
            &network.root_key().to_vec()
        );
        assert_eq!(
            field("replica_health_status").unwrap().as_text(),
            Some("healthy")
        );
        assert!(field("impl_version").is_some());
        assert_eq!(network.sim().root_key(), network.root_key());
    }
}
