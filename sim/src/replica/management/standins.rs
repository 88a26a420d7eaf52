//! Management methods whose real service lives outside a replica: threshold signatures, vetKD,
//! HTTPS outcalls, bitcoin, and the subnet reads. Each is a deterministic stand-in, documented
//! as such, behind the IC's argument checks, fees and errors (IC interface specification, "IC
//! method ecdsa_public_key", "sign_with_ecdsa", "schnorr_public_key", "sign_with_schnorr",
//! "vetkd_public_key", "vetkd_derive_key", "http_request", the bitcoin methods, "subnet_info",
//! "node_metrics_history").
//!
//! Stand-ins: public keys, signatures and vetKD keys are SHA-256 expansions of the key, the
//! caller and the arguments, with the real lengths (a 33-byte SEC1 compressed key, 64-byte
//! signatures, 96-byte vetKD public keys, 192-byte encrypted keys); they are stable across runs
//! and differ per input, but they are not valid curve points or signatures. `http_request`
//! never leaves the machine: it answers with what `Sim::set_http_outcall_responder` returns
//! (by default 200, no headers, empty body), passed through the canister's transform. The
//! bitcoin methods answer an empty chain.

use super::{decode, empty_reply, encode, Answer, ManagementCall};
use crate::exec::{cost_http_request, cost_threshold_key};
use crate::replica::errors;
use crate::replica::Sim;
use crate::types::{Principal, Reject};
use candid::{CandidType, Deserialize, Nat};
use ic_management_canister_types::{
    EcdsaCurve, EcdsaPublicKeyArgs, EcdsaPublicKeyResult, HttpRequestArgs, HttpRequestResult,
    NodeMetrics, NodeMetricsHistoryArgs, NodeMetricsHistoryRecord, SchnorrAlgorithm,
    SchnorrPublicKeyArgs, SchnorrPublicKeyResult, SignWithEcdsaArgs, SignWithEcdsaResult,
    SignWithSchnorrArgs, SignWithSchnorrResult, SubnetInfoArgs, SubnetInfoResult, TransformArgs,
    VetKDDeriveKeyArgs, VetKDDeriveKeyResult, VetKDPublicKeyArgs, VetKDPublicKeyResult,
};
use sha2::{Digest, Sha256};

/// The threshold keys every simulated subnet holds (as a local replica has them).
const KEY_NAMES: [&str; 3] = ["dfx_test_key", "key_1", "test_key_1"];
/// Elements a derivation path may have.
const MAX_DERIVATION_PATH_ELEMENTS: usize = 255;
/// `http_request` limits (IC interface specification, "IC method http_request").
const MAX_HTTP_URL_BYTES: usize = 8192;
const MAX_HTTP_RESPONSE_BYTES: u64 = 2_000_000;
const MAX_HTTP_HEADERS: usize = 64;

/// The answer `http_request` gets from "the Internet".
pub type HttpOutcallResponder =
    std::sync::Arc<dyn Fn(&HttpRequestArgs) -> HttpRequestResult + Send + Sync>;

fn expand(parts: &[&[u8]], len: usize) -> Vec<u8> {
    let mut seed = Sha256::new();
    for part in parts {
        seed.update((part.len() as u64).to_be_bytes());
        seed.update(part);
    }
    let mut block: [u8; 32] = seed.finalize().into();
    let mut out = Vec::with_capacity(len + 32);
    while out.len() < len {
        out.extend_from_slice(&block);
        block = Sha256::digest(block).into();
    }
    out.truncate(len);
    out
}

fn existing_keys() -> String {
    let mut keys = Vec::new();
    for name in KEY_NAMES {
        keys.push(format!("ecdsa:Secp256k1:{name}"));
    }
    for algorithm in ["Bip340Secp256k1", "Ed25519"] {
        for name in KEY_NAMES {
            keys.push(format!("schnorr:{algorithm}:{name}"));
        }
    }
    for name in KEY_NAMES {
        keys.push(format!("vetkd:Bls12_381_G2:{name}"));
    }
    format!("[{}]", keys.join(", "))
}

/// IC0406 (CANISTER_REJECT), the replica's wording for a key no subnet holds.
fn unknown_key(key: &str) -> Reject {
    errors::unknown_threshold_key(key, &existing_keys())
}

fn check_key(kind: &str, curve: &str, name: &str, curve_known: bool) -> Result<(), Reject> {
    if !curve_known || !KEY_NAMES.contains(&name) {
        return Err(unknown_key(&format!("{kind}:{curve}:{name}")));
    }
    Ok(())
}

fn check_path(method: &str, path: &[Vec<u8>]) -> Result<(), Reject> {
    if path.len() > MAX_DERIVATION_PATH_ELEMENTS {
        return Err(errors::invalid_management_argument(
            method,
            &format!(
                "The derivation path has {} elements, at most {MAX_DERIVATION_PATH_ELEMENTS} are allowed",
                path.len()
            ),
        ));
    }
    Ok(())
}

/// Takes the signing fee out of the attached cycles (the rest is refunded with the answer).
fn take_fee(call: &mut ManagementCall, fee: u128) -> Result<(), Reject> {
    if call.cycles < fee {
        return Err(errors::fee_not_attached(&call.method, call.cycles, fee));
    }
    call.cycles -= fee;
    Ok(())
}

fn key_fee(name: &str) -> u128 {
    cost_threshold_key(name, 0, 1).expect("a known key")
}

fn path_bytes(path: &[Vec<u8>]) -> Vec<u8> {
    path.iter().flat_map(|p| expand(&[p], 32)).collect()
}

pub(super) fn ecdsa_public_key(sim: &mut Sim, call: &mut ManagementCall) -> Result<Answer, Reject> {
    let args: EcdsaPublicKeyArgs = decode(call)?;
    let _ = sim;
    check_key(
        "ecdsa",
        "Secp256k1",
        &args.key_id.name,
        args.key_id.curve == EcdsaCurve::Secp256k1,
    )?;
    check_path(&call.method, &args.derivation_path)?;
    let owner = args.canister_id.unwrap_or(call.caller);
    let seed = [
        b"ecdsa".as_slice(),
        args.key_id.name.as_bytes(),
        owner.as_slice(),
        &path_bytes(&args.derivation_path),
    ];
    let mut public_key = vec![0x02];
    public_key.extend(expand(&seed, 32));
    let chain_code = expand(&[&seed[..], &[b"chain code".as_slice()]].concat(), 32);
    Ok(Answer::Now(encode(&EcdsaPublicKeyResult {
        public_key,
        chain_code,
    })))
}

pub(super) fn sign_with_ecdsa(_sim: &mut Sim, call: &mut ManagementCall) -> Result<Answer, Reject> {
    let args: SignWithEcdsaArgs = decode(call)?;
    check_key(
        "ecdsa",
        "Secp256k1",
        &args.key_id.name,
        args.key_id.curve == EcdsaCurve::Secp256k1,
    )?;
    check_path(&call.method, &args.derivation_path)?;
    if args.message_hash.len() != 32 {
        return Err(errors::invalid_management_argument(
            &call.method,
            &format!(
                "message_hash must be 32 bytes, but it is {} bytes",
                args.message_hash.len()
            ),
        ));
    }
    take_fee(call, key_fee(&args.key_id.name))?;
    let signature = expand(
        &[
            b"sign_with_ecdsa",
            args.key_id.name.as_bytes(),
            call.caller.as_slice(),
            &path_bytes(&args.derivation_path),
            &args.message_hash,
        ],
        64,
    );
    Ok(Answer::Now(encode(&SignWithEcdsaResult { signature })))
}

fn schnorr_name(algorithm: &SchnorrAlgorithm) -> &'static str {
    match algorithm {
        SchnorrAlgorithm::Bip340secp256k1 => "Bip340Secp256k1",
        SchnorrAlgorithm::Ed25519 => "Ed25519",
    }
}

pub(super) fn schnorr_public_key(
    _sim: &mut Sim,
    call: &mut ManagementCall,
) -> Result<Answer, Reject> {
    let args: SchnorrPublicKeyArgs = decode(call)?;
    let algorithm = schnorr_name(&args.key_id.algorithm);
    check_key("schnorr", algorithm, &args.key_id.name, true)?;
    check_path(&call.method, &args.derivation_path)?;
    let owner = args.canister_id.unwrap_or(call.caller);
    let seed = [
        b"schnorr".as_slice(),
        algorithm.as_bytes(),
        args.key_id.name.as_bytes(),
        owner.as_slice(),
        &path_bytes(&args.derivation_path),
    ];
    let public_key = match args.key_id.algorithm {
        SchnorrAlgorithm::Bip340secp256k1 => [vec![0x02], expand(&seed, 32)].concat(),
        SchnorrAlgorithm::Ed25519 => expand(&seed, 32),
    };
    let chain_code = expand(&[&seed[..], &[b"chain code".as_slice()]].concat(), 32);
    Ok(Answer::Now(encode(&SchnorrPublicKeyResult {
        public_key,
        chain_code,
    })))
}

pub(super) fn sign_with_schnorr(
    _sim: &mut Sim,
    call: &mut ManagementCall,
) -> Result<Answer, Reject> {
    let args: SignWithSchnorrArgs = decode(call)?;
    let algorithm = schnorr_name(&args.key_id.algorithm);
    check_key("schnorr", algorithm, &args.key_id.name, true)?;
    check_path(&call.method, &args.derivation_path)?;
    if args.aux.is_some() && args.key_id.algorithm != SchnorrAlgorithm::Bip340secp256k1 {
        return Err(errors::invalid_management_argument(
            &call.method,
            "auxiliary inputs are only allowed for bip340secp256k1",
        ));
    }
    take_fee(call, key_fee(&args.key_id.name))?;
    let signature = expand(
        &[
            b"sign_with_schnorr",
            algorithm.as_bytes(),
            args.key_id.name.as_bytes(),
            call.caller.as_slice(),
            &path_bytes(&args.derivation_path),
            &args.message,
        ],
        64,
    );
    Ok(Answer::Now(encode(&SignWithSchnorrResult { signature })))
}

pub(super) fn vetkd_public_key(
    _sim: &mut Sim,
    call: &mut ManagementCall,
) -> Result<Answer, Reject> {
    let args: VetKDPublicKeyArgs = decode(call)?;
    check_key("vetkd", "Bls12_381_G2", &args.key_id.name, true)?;
    let owner = args.canister_id.unwrap_or(call.caller);
    let public_key = expand(
        &[
            b"vetkd_public_key",
            args.key_id.name.as_bytes(),
            owner.as_slice(),
            &args.context,
        ],
        96,
    );
    Ok(Answer::Now(encode(&VetKDPublicKeyResult { public_key })))
}

pub(super) fn vetkd_derive_key(
    _sim: &mut Sim,
    call: &mut ManagementCall,
) -> Result<Answer, Reject> {
    let args: VetKDDeriveKeyArgs = decode(call)?;
    check_key("vetkd", "Bls12_381_G2", &args.key_id.name, true)?;
    if args.transport_public_key.len() != 48 {
        return Err(errors::invalid_management_argument(
            &call.method,
            &format!(
                "transport_public_key must be a 48-byte G1 point, but it is {} bytes",
                args.transport_public_key.len()
            ),
        ));
    }
    take_fee(call, key_fee(&args.key_id.name))?;
    let encrypted_key = expand(
        &[
            b"vetkd_derive_key",
            args.key_id.name.as_bytes(),
            call.caller.as_slice(),
            &args.context,
            &args.input,
            &args.transport_public_key,
        ],
        192,
    );
    Ok(Answer::Now(encode(&VetKDDeriveKeyResult { encrypted_key })))
}

/// The stand-in answer of "the Internet".
pub(crate) fn default_http_response(_args: &HttpRequestArgs) -> HttpRequestResult {
    HttpRequestResult {
        status: Nat::from(200u16),
        headers: Vec::new(),
        body: Vec::new(),
    }
}

pub(super) fn http_request(sim: &mut Sim, call: &mut ManagementCall) -> Result<Answer, Reject> {
    let args: HttpRequestArgs = decode(call)?;
    let invalid = |message: String| errors::invalid_management_argument("http_request", &message);
    if args.url.len() > MAX_HTTP_URL_BYTES {
        return Err(invalid(format!(
            "url length {} exceeds the maximum of {MAX_HTTP_URL_BYTES} bytes",
            args.url.len()
        )));
    }
    let max_response_bytes = args.max_response_bytes.unwrap_or(MAX_HTTP_RESPONSE_BYTES);
    if max_response_bytes > MAX_HTTP_RESPONSE_BYTES {
        return Err(invalid(format!(
            "max_response_bytes expected to be in the range [0..{MAX_HTTP_RESPONSE_BYTES}], got {max_response_bytes}"
        )));
    }
    if args.headers.len() > MAX_HTTP_HEADERS {
        return Err(invalid(format!(
            "number of headers {} exceeds the maximum of {MAX_HTTP_HEADERS}",
            args.headers.len()
        )));
    }
    let request_size = args.url.len()
        + args.body.as_ref().map_or(0, Vec::len)
        + args
            .headers
            .iter()
            .map(|h| h.name.len() + h.value.len())
            .sum::<usize>()
        + args
            .transform
            .as_ref()
            .map_or(0, |t| t.context.len() + t.function.0.method.len());
    let fee = cost_http_request(request_size as u64, max_response_bytes);
    take_fee(call, fee)?;
    let mut response = match &sim.http_outcall_responder {
        Some(responder) => responder(&args),
        None => default_http_response(&args),
    };
    if let Some(transform) = &args.transform {
        let arg = candid::encode_one(TransformArgs {
            response,
            context: transform.context.clone(),
        })
        .expect("transform arguments encode");
        let transformed = sim
            .query_in_graph(
                Principal::management_canister(),
                transform.function.0.principal,
                &transform.function.0.method,
                arg,
                None,
                1,
            )
            .map_err(|e| {
                errors::http_outcall_failed(format!("Transform function failed: {}", e.message))
            })?;
        response = candid::decode_one(&transformed)
            .map_err(|e| invalid(format!("the transform's reply does not decode: {e}")))?;
    }
    let size = response.body.len()
        + response
            .headers
            .iter()
            .map(|h| h.name.len() + h.value.len())
            .sum::<usize>();
    if size as u64 > max_response_bytes {
        return Err(errors::http_outcall_failed(format!(
            "Http body exceeds size limit of {max_response_bytes} bytes."
        )));
    }
    Ok(Answer::Now(encode(&response)))
}

pub(super) fn subnet_info(sim: &mut Sim, call: &mut ManagementCall) -> Result<Answer, Reject> {
    let args: SubnetInfoArgs = decode(call)?;
    sim.subnet_index(&args.subnet_id)
        .ok_or_else(|| errors::subnet_not_found(args.subnet_id))?;
    Ok(Answer::Now(encode(&SubnetInfoResult {
        replica_version: "ic-sim".to_string(),
        registry_version: 1,
    })))
}

const DAY_NANOS: u64 = 24 * 3600 * 1_000_000_000;

/// One record per UTC day boundary since `start_at_timestamp_nanos`, with the subnet's 13 nodes
/// (ids derived from the subnet id) each proposing a block per round and failing none.
pub(super) fn node_metrics_history(
    sim: &mut Sim,
    call: &mut ManagementCall,
) -> Result<Answer, Reject> {
    let args: NodeMetricsHistoryArgs = decode(call)?;
    sim.subnet_index(&args.subnet_id)
        .ok_or_else(|| errors::subnet_not_found(args.subnet_id))?;
    let now = sim.time_nanos;
    let nodes: Vec<Principal> = (0u8..13)
        .map(|i| Principal::self_authenticating(expand(&[args.subnet_id.as_slice(), &[i]], 32)))
        .collect();
    let last_day = now / DAY_NANOS;
    // At most the 30 most recent days.
    let first_day = args
        .start_at_timestamp_nanos
        .div_ceil(DAY_NANOS)
        .max(last_day.saturating_sub(29));
    let records: Vec<NodeMetricsHistoryRecord> = (first_day..=last_day)
        .map(|day| NodeMetricsHistoryRecord {
            timestamp_nanos: day * DAY_NANOS,
            node_metrics: nodes
                .iter()
                .map(|&node_id| NodeMetrics {
                    node_id,
                    num_blocks_proposed_total: sim.round / 13,
                    num_block_failures_total: 0,
                })
                .collect(),
        })
        .collect();
    Ok(Answer::Now(encode(&records)))
}

#[derive(CandidType, Deserialize)]
enum BitcoinNetwork {
    #[serde(rename = "mainnet")]
    Mainnet,
    #[serde(rename = "testnet")]
    Testnet,
    #[serde(rename = "regtest")]
    Regtest,
}

#[derive(CandidType, Deserialize)]
struct NetworkArg {
    network: BitcoinNetwork,
}

#[derive(CandidType, Deserialize)]
struct AddressArg {
    address: String,
    network: BitcoinNetwork,
}

#[derive(CandidType, Deserialize)]
struct SendTransactionArg {
    transaction: serde_bytes::ByteBuf,
    network: BitcoinNetwork,
}

#[derive(CandidType)]
struct Outpoint {
    txid: serde_bytes::ByteBuf,
    vout: u32,
}

#[derive(CandidType)]
struct Utxo {
    outpoint: Outpoint,
    value: u64,
    height: u32,
}

#[derive(CandidType)]
struct GetUtxosResult {
    utxos: Vec<Utxo>,
    tip_block_hash: serde_bytes::ByteBuf,
    tip_height: u32,
    next_page: Option<serde_bytes::ByteBuf>,
}

#[derive(CandidType)]
struct BlockHeadersResult {
    tip_height: u32,
    block_headers: Vec<serde_bytes::ByteBuf>,
}

/// The bitcoin API's fees (IC interface specification, bitcoin API fees for mainnet; testnet and
/// regtest cost 40 % of them).
fn bitcoin_fee(method: &str, network: &BitcoinNetwork) -> u128 {
    let mainnet: u128 = match method {
        "bitcoin_get_balance" => 100_000_000,
        "bitcoin_get_utxos" => 10_000_000_000,
        "bitcoin_get_current_fee_percentiles" => 100_000_000,
        "bitcoin_get_block_headers" => 10_000_000_000,
        _ => 5_000_000_000,
    };
    match network {
        BitcoinNetwork::Mainnet => mainnet,
        _ => mainnet * 2 / 5,
    }
}

fn check_address(method: &str, address: &str) -> Result<(), Reject> {
    let valid =
        (14..=90).contains(&address.len()) && address.chars().all(|c| c.is_ascii_alphanumeric());
    if valid {
        Ok(())
    } else {
        Err(errors::invalid_management_argument(
            method,
            &format!("bitcoin address '{address}' is malformed"),
        ))
    }
}

/// The bitcoin methods on an empty chain: balance 0, no UTXOs, no fee percentiles, no headers;
/// `bitcoin_send_transaction` accepts any non-empty transaction.
pub(super) fn bitcoin(_sim: &mut Sim, call: &mut ManagementCall) -> Result<Answer, Reject> {
    let method = call.method.clone();
    let reply = match method.as_str() {
        "bitcoin_get_balance" => {
            let args: AddressArg = decode(call)?;
            check_address(&method, &args.address)?;
            take_fee(call, bitcoin_fee(&method, &args.network))?;
            encode(&0u64)
        }
        "bitcoin_get_utxos" => {
            let args: AddressArg = decode(call)?;
            check_address(&method, &args.address)?;
            take_fee(call, bitcoin_fee(&method, &args.network))?;
            encode(&GetUtxosResult {
                utxos: Vec::new(),
                tip_block_hash: serde_bytes::ByteBuf::from(vec![0; 32]),
                tip_height: 0,
                next_page: None,
            })
        }
        "bitcoin_get_current_fee_percentiles" => {
            let args: NetworkArg = decode(call)?;
            take_fee(call, bitcoin_fee(&method, &args.network))?;
            encode(&Vec::<u64>::new())
        }
        "bitcoin_get_block_headers" => {
            let args: NetworkArg = decode(call)?;
            take_fee(call, bitcoin_fee(&method, &args.network))?;
            encode(&BlockHeadersResult {
                tip_height: 0,
                block_headers: Vec::new(),
            })
        }
        _ => {
            let args: SendTransactionArg = decode(call)?;
            if args.transaction.is_empty() {
                return Err(errors::invalid_management_argument(
                    &method,
                    "the transaction is empty",
                ));
            }
            let per_byte: u128 = match args.network {
                BitcoinNetwork::Mainnet => 20_000_000,
                _ => 8_000_000,
            };
            let fee =
                bitcoin_fee(&method, &args.network) + per_byte * args.transaction.len() as u128;
            take_fee(call, fee)?;
            return Ok(empty_reply());
        }
    };
    Ok(Answer::Now(reply))
}
