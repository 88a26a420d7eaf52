//! The IC's HTTP interface over a simulator, without an HTTP stack: each method takes a request
//! body and answers with a body or an [`ApiError`] (status code and plain-text message). The
//! HTTP layer ([`crate::http`]) only routes and waits.
//!
//! Every subnet certifies its own state tree with its own key, and every certificate carries a
//! delegation from the root key to that subnet (as the IC's application subnets do; IC
//! interface specification, "Delegation"), so any number of subnets can be served.

use crate::cbor;
use crate::envelope::{authenticate, AuthError, AuthenticatedRequest, RequestKind};
use crate::gateway::{HttpRequest, HttpResponse, HttpUpdateRequest};
use crate::keys::NetworkKeys;
use crate::tree::{CanisterInfo, Path, RequestStatus, StateTree, SubnetInfo};
use candid::{CandidType, Deserialize, Principal};
use ic_certification::{Certificate, Delegation, HashTree};
use ic_sim::{IngressStatus, MessageId, Reject, Sim, SimConfig};
use ic_transport_types::{
    EnvelopeContent, NodeSignature, QueryResponse, RejectResponse, ReplyResponse, RequestId,
    TransportCallResponse,
};
use std::collections::{BTreeMap, BTreeSet};

/// Largest HTTP request body the IC's endpoints accept (5 MiB).
pub const MAX_REQUEST_BODY_BYTES: usize = 5 * 1024 * 1024;
/// Largest ingress message (method name and argument) the IC accepts (2 MiB).
pub const MAX_INGRESS_BYTES: usize = 2 * 1024 * 1024;
/// "A list of at most 1000 paths, where a path is itself a sequence of at most 127 blobs."
const MAX_READ_STATE_PATHS: usize = 1000;
const MAX_PATH_LABELS: usize = 127;
/// How long a delegation certificate is reused before it is signed anew (its `/time` ages).
const DELEGATION_REFRESH_NANOS: u64 = 60 * 1_000_000_000;

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
        let mut sim = Sim::new(config.sim);
        sim.set_root_key(keys.root.public_key_der().to_vec());
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
            impl_hash: &'a str,
            replica_health_status: &'a str,
        }
        cbor::to_self_described(&Status {
            root_key: self.root_key(),
            impl_version: concat!("ic-local-network ", env!("CARGO_PKG_VERSION")),
            impl_hash: "",
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

    /// The HTTP gateway's query: `http_request` of `canister`, called by the anonymous
    /// principal. `Ok(None)`: the canister asks for the upgrade to an update call.
    pub fn http_request(
        &mut self,
        canister: Principal,
        request: &HttpRequest,
    ) -> Result<Option<HttpResponse>, ApiError> {
        let arg = candid::encode_one(request).expect("HttpRequest encodes");
        let reply = self
            .sim
            .query_call(Principal::anonymous(), canister, "http_request", arg)
            .map_err(gateway_error)?;
        let response = decode_http_response(&reply)?;
        Ok((response.upgrade != Some(true)).then_some(response))
    }

    /// The upgraded request: `http_request_update` as an ingress message from the anonymous
    /// principal; its answer comes with [`LocalNetwork::http_request_update_result`].
    pub fn submit_http_request_update(
        &mut self,
        canister: Principal,
        request: HttpRequest,
    ) -> Result<MessageId, ApiError> {
        let arg = candid::encode_one(HttpUpdateRequest::from(request))
            .expect("HttpUpdateRequest encodes");
        self.sim
            .submit_update(Principal::anonymous(), canister, "http_request_update", arg)
            .map_err(gateway_error)
    }

    /// The response of an `http_request_update` once it finished.
    pub fn http_request_update_result(
        &self,
        message: MessageId,
    ) -> Option<Result<HttpResponse, ApiError>> {
        match self.sim.ingress_status(message) {
            IngressStatus::Processing => None,
            IngressStatus::Completed(result) => Some(
                result
                    .map_err(gateway_error)
                    .and_then(|reply| decode_http_response(&reply)),
            ),
        }
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

    fn check_read_state_paths(
        &self,
        target: ReadStateTarget,
        sender: Principal,
        paths: &[Path],
    ) -> Result<(), ApiError> {
        if paths.len() > MAX_READ_STATE_PATHS || paths.iter().any(|p| p.len() > MAX_PATH_LABELS) {
            return Err(ApiError::new(
                400,
                format!("At most {MAX_READ_STATE_PATHS} paths of at most {MAX_PATH_LABELS} labels each may be requested"),
            ));
        }
        let invalid = || ApiError::new(404, "Invalid path requested.");
        let mut request_ids = paths
            .iter()
            .filter(|p| p.first().map(Vec::as_slice) == Some(b"request_status"))
            .filter_map(|p| p.get(1));
        if let Some(first) = request_ids.next() {
            if request_ids.any(|other| other != first) {
                return Err(ApiError::new(
                    400,
                    "Can only request a single request ID in request_status paths.",
                ));
            }
        }
        for path in paths {
            let labels: Vec<&[u8]> = path.iter().map(Vec::as_slice).collect();
            match labels.as_slice() {
                [] | [b"time"] => {}
                [b"api_boundary_nodes", ..] => {}
                [b"subnet", rest @ ..] => {
                    if let [subnet, b"metrics"] = rest {
                        if target != ReadStateTarget::Subnet(Principal::from_slice(subnet)) {
                            return Err(invalid());
                        }
                    }
                }
                [b"canister_ranges", ..] => {
                    if !matches!(target, ReadStateTarget::Subnet(_)) {
                        return Err(invalid());
                    }
                }
                [b"request_status", id, rest @ ..] => {
                    if !matches!(
                        rest,
                        [] | [b"status"]
                            | [b"reply"]
                            | [b"reject_code"]
                            | [b"reject_message"]
                            | [b"error_code"]
                    ) {
                        return Err(invalid());
                    }
                    self.check_request_status_access(target, sender, id)?;
                }
                [b"canister", canister, field @ ..] => {
                    let ReadStateTarget::Canister(effective) = target else {
                        return Err(invalid());
                    };
                    if *canister != effective.as_slice() {
                        return Err(ApiError::new(
                            400,
                            format!(
                                "Effective principal id in URL {effective} does not match requested canister id: {}.",
                                Principal::try_from_slice(canister)
                                    .map_or_else(|_| hex::encode(canister), |p| p.to_text())
                            ),
                        ));
                    }
                    match field {
                        [b"module_hash"]
                        | [b"controllers"]
                        | [b"canister_creation_timestamp"]
                        | [b"last_install_timestamp"] => {}
                        [b"metadata", name] => {
                            self.check_metadata_access(effective, sender, name)?
                        }
                        _ => return Err(invalid()),
                    }
                }
                _ => return Err(invalid()),
            }
        }
        Ok(())
    }

    /// "Request: Read state": `/request_status/<id>` may be read by the sender of the request,
    /// at the effective id it was sent to (or by anyone while the id is unknown).
    fn check_request_status_access(
        &self,
        target: ReadStateTarget,
        sender: Principal,
        request_id: &[u8],
    ) -> Result<(), ApiError> {
        let Some(record) = <[u8; 32]>::try_from(request_id)
            .ok()
            .and_then(|id| self.requests.get(&id))
        else {
            return Ok(());
        };
        if record.sender != sender {
            return Err(ApiError::new(
                403,
                "Request IDs must be for requests signed by the caller.",
            ));
        }
        let same_target = match target {
            ReadStateTarget::Canister(id) => id == record.effective_canister_id,
            ReadStateTarget::Subnet(id) => id == self.sim.subnet_id(record.subnet),
        };
        if !same_target {
            return Err(ApiError::new(
                403,
                "Request IDs must be read at the effective canister or subnet id the request was sent to.",
            ));
        }
        Ok(())
    }

    /// "Request: Read state": a private custom section only for the canister's controllers.
    fn check_metadata_access(
        &self,
        canister: Principal,
        sender: Principal,
        name: &[u8],
    ) -> Result<(), ApiError> {
        let name = std::str::from_utf8(name)
            .map_err(|_| ApiError::new(400, "Metadata names must be UTF-8"))?;
        let private = self
            .sim
            .canister_metadata(canister)
            .and_then(|sections| sections.get(name))
            .is_some_and(|(public, _)| !public);
        let controller = self
            .sim
            .canister(canister)
            .is_some_and(|view| view.controllers.contains(&sender));
        if private && !controller {
            return Err(ApiError::new(
                403,
                format!("Custom section {name} can only be requested by the controllers of the canister."),
            ));
        }
        Ok(())
    }

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
    fn certify(&mut self, subnet: usize, paths: &[Path]) -> Vec<u8> {
        self.refresh_tree(subnet);
        let tree = self.subnet_trees[subnet].witness(paths);
        let signature = self.sign_tree(&tree, &self.keys.subnets[subnet].certifying);
        let delegation = Delegation {
            subnet_id: self.sim.subnet_id(subnet).as_slice().to_vec(),
            certificate: self.delegation_certificate(subnet),
        };
        encode_certificate(tree, signature, Some(delegation))
    }

    fn sign_tree(&self, tree: &HashTree, key: &crate::keys::CertifyingKey) -> Vec<u8> {
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

fn subnet_info<'a>(sim: &Sim, keys: &'a NetworkKeys, subnet: usize) -> SubnetInfo<'a> {
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

/// A canister's reject reaches the browser as 502 Bad Gateway with the reject's text.
fn gateway_error(reject: Reject) -> ApiError {
    ApiError::new(502, format!("The canister's answer is a reject: {reject}"))
}

fn decode_http_response(reply: &[u8]) -> Result<HttpResponse, ApiError> {
    candid::decode_one(reply).map_err(|e| {
        ApiError::new(
            502,
            format!("The canister's reply is not an HttpResponse: {e}"),
        )
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

    fn certified_tree(response: &[u8]) -> HashTree {
        #[derive(serde::Deserialize)]
        struct Response {
            #[serde(with = "serde_bytes")]
            certificate: Vec<u8>,
        }
        #[derive(serde::Deserialize)]
        struct Tree {
            tree: HashTree,
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
