//! The HTTP layer: routes a request to its endpoint in [`LocalNetwork`], waits for the rounds a
//! synchronous call needs, and serves it all on a socket (axum). Handlers only parse and
//! delegate.

use crate::gateway::{resolve_canister, HttpRequest};
use crate::network::{
    ApiError, CallSubmission, LocalNetwork, ReadStateTarget, MAX_REQUEST_BODY_BYTES,
};
use bytes::Bytes;
use candid::Principal;
use http::{Method, Request, Response, StatusCode};
use serde_bytes::ByteBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// An endpoint of the IC's HTTP interface ("HTTPS Interface").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Status,
    Call {
        effective_canister_id: Principal,
        /// v3 and v4 answer with a certificate; v2 answers 202 at once.
        synchronous: bool,
    },
    Query(Principal),
    ReadState(ReadStateTarget),
    /// Any path outside `/api/`: a browser's request for a canister (HTTP gateway protocol).
    Gateway,
}

/// Maps a method and path to its endpoint: 404 for `/api/` paths the interface does not have
/// (or this network does not serve), 405 for the wrong method, 400 for a malformed id.
pub fn route(method: &Method, path: &str) -> Result<Endpoint, ApiError> {
    if !path.starts_with("/api/") {
        return Ok(Endpoint::Gateway);
    }
    let not_found = || ApiError::new(404, format!("{path} is not an endpoint of this network"));
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let id = |text: &str| {
        Principal::from_text(text)
            .map_err(|e| ApiError::new(400, format!("Invalid principal {text} in the URL: {e}")))
    };
    let (endpoint, expected_method) = match segments.as_slice() {
        ["api", "v2", "status"] => (Endpoint::Status, Method::GET),
        ["api", version @ ("v2" | "v3" | "v4"), "canister", ecid, "call"] => (
            Endpoint::Call {
                effective_canister_id: id(ecid)?,
                synchronous: *version != "v2",
            },
            Method::POST,
        ),
        ["api", "v2" | "v3", "canister", ecid, "query"] => {
            (Endpoint::Query(id(ecid)?), Method::POST)
        }
        ["api", "v2" | "v3", "canister", ecid, "read_state"] => (
            Endpoint::ReadState(ReadStateTarget::Canister(id(ecid)?)),
            Method::POST,
        ),
        ["api", "v2" | "v3", "subnet", sid, "read_state"] => (
            Endpoint::ReadState(ReadStateTarget::Subnet(id(sid)?)),
            Method::POST,
        ),
        _ => return Err(not_found()),
    };
    if *method != expected_method {
        return Err(ApiError::new(
            405,
            format!("{path} takes {expected_method} requests"),
        ));
    }
    Ok(endpoint)
}

/// Who runs the simulator's rounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoundDriver {
    /// A synchronous call runs the rounds it waits for itself, and nothing else does: the same
    /// requests in the same order give the same trace (in-process tests).
    Requests,
    /// A clock ([`SharedNetwork::spawn_clock`]) runs rounds at a real-time pace; synchronous
    /// calls wait for them (the server).
    Clock,
}

/// A network shared by the HTTP handlers (and the clock).
pub struct SharedNetwork {
    network: Mutex<LocalNetwork>,
    driver: RoundDriver,
    rounds: watch::Sender<u64>,
}

impl SharedNetwork {
    pub fn new(network: LocalNetwork, driver: RoundDriver) -> Arc<SharedNetwork> {
        let round = network.sim().round();
        Arc::new(SharedNetwork {
            network: Mutex::new(network),
            driver,
            rounds: watch::Sender::new(round),
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, LocalNetwork> {
        self.network
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs one round and wakes the calls waiting for it.
    pub fn tick(&self) {
        let round = {
            let mut network = self.lock();
            network.tick();
            network.sim().round()
        };
        self.rounds.send_replace(round);
    }

    /// Runs a round every `interval` on a thread of its own; before each, the simulator's
    /// clock catches up with the wall clock, so certified times stay current for the agents
    /// (they refuse certificates older than their ingress expiry).
    pub fn spawn_clock(self: &Arc<Self>, interval: Duration) -> std::thread::JoinHandle<()> {
        let shared = Arc::downgrade(self);
        std::thread::spawn(move || {
            while let Some(shared) = shared.upgrade() {
                shared.lock().catch_up_with(wall_clock_nanos());
                shared.tick();
                drop(shared);
                std::thread::sleep(interval);
            }
        })
    }

    /// Answers one HTTP request.
    pub async fn handle(&self, request: Request<Bytes>) -> Response<Bytes> {
        let api = request.uri().path().starts_with("/api/");
        let mut response = if api && request.method() == Method::OPTIONS {
            Response::builder()
                .status(StatusCode::NO_CONTENT)
                .body(Bytes::new())
                .expect("valid response")
        } else {
            self.answer(request).await
        };
        if api {
            allow_cross_origin(response.headers_mut());
        }
        response
    }

    async fn answer(&self, request: Request<Bytes>) -> Response<Bytes> {
        let endpoint = match route(request.method(), request.uri().path()) {
            Ok(endpoint) => endpoint,
            Err(error) => return error_response(&error),
        };
        let body = request.body();
        let result = match endpoint {
            Endpoint::Gateway => self.gateway(&request).await,
            Endpoint::Status => Ok(cbor_response(StatusCode::OK, self.lock().status())),
            Endpoint::Query(ecid) => self
                .lock()
                .query(ecid, body)
                .map(|reply| cbor_response(StatusCode::OK, reply)),
            Endpoint::ReadState(target) => self
                .lock()
                .read_state(target, body)
                .map(|reply| cbor_response(StatusCode::OK, reply)),
            Endpoint::Call {
                effective_canister_id,
                synchronous,
            } => {
                let submission = self.lock().submit_call(effective_canister_id, body);
                match submission {
                    Ok(CallSubmission::Rejected(reject)) => Ok(cbor_response(
                        StatusCode::OK,
                        LocalNetwork::rejection_body(&reject, synchronous),
                    )),
                    Ok(CallSubmission::Accepted { request_id }) if synchronous => {
                        Ok(self.await_call(request_id).await)
                    }
                    Ok(CallSubmission::Accepted { .. }) => Ok(accepted()),
                    Err(error) => Err(error),
                }
            }
        };
        result.unwrap_or_else(|error| error_response(&error))
    }

    /// "Synchronous canister calling": the certificate once the call finished, or 202 when it
    /// did not within `sync_call_rounds` rounds.
    async fn await_call(&self, request_id: [u8; 32]) -> Response<Bytes> {
        self.await_rounds(|network| network.sync_call_reply(&request_id))
            .await
            .map_or_else(accepted, |reply| cbor_response(StatusCode::OK, reply))
    }

    /// Polls `answer` after every round for at most `sync_call_rounds` rounds, running them
    /// itself or waiting for the clock's.
    async fn await_rounds<T>(
        &self,
        mut answer: impl FnMut(&mut LocalNetwork) -> Option<T>,
    ) -> Option<T> {
        let mut rounds = self.rounds.subscribe();
        let max_rounds = self.lock().sync_call_rounds();
        for waited in 0..=max_rounds {
            if let Some(answer) = answer(&mut self.lock()) {
                return Some(answer);
            }
            if waited == max_rounds {
                break;
            }
            match self.driver {
                RoundDriver::Requests => self.tick(),
                RoundDriver::Clock => {
                    if rounds.changed().await.is_err() {
                        break;
                    }
                }
            }
        }
        None
    }

    /// The HTTP gateway protocol: `http_request`, upgraded to `http_request_update` when the
    /// canister asks.
    async fn gateway(&self, request: &Request<Bytes>) -> Result<Response<Bytes>, ApiError> {
        let host = request
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or(request.uri().host());
        let canister = resolve_canister(host, request.uri().query()).ok_or_else(|| {
            ApiError::new(
                400,
                "No canister id: use the host <id>.raw.localhost:<port> or the query parameter ?canisterId=<id>",
            )
        })?;
        let http_request = HttpRequest {
            method: request.method().as_str().to_string(),
            url: request
                .uri()
                .path_and_query()
                .map_or("/".to_string(), |p| p.as_str().to_string()),
            headers: request
                .headers()
                .iter()
                .map(|(name, value)| {
                    (
                        name.to_string(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: ByteBuf::from(request.body().to_vec()),
            certificate_version: Some(2),
        };
        let queried = self.lock().http_request(canister, &http_request)?;
        let response = match queried {
            Some(response) => response,
            None => {
                let message = self
                    .lock()
                    .submit_http_request_update(canister, http_request)?;
                self.await_rounds(|network| network.http_request_update_result(message))
                    .await
                    .ok_or_else(|| {
                        ApiError::new(504, "http_request_update did not finish in time")
                    })??
            }
        };
        let mut builder = Response::builder().status(response.status_code);
        for (name, value) in &response.headers {
            builder = builder.header(name, value);
        }
        builder
            .body(Bytes::from(response.body.into_vec()))
            .map_err(|e| {
                ApiError::new(
                    502,
                    format!("The canister's response is not valid HTTP: {e}"),
                )
            })
    }
}

/// Pages served by canisters call the API from another origin (as dashboards served through
/// the gateway do); like the IC's boundary nodes, the API allows any origin.
fn allow_cross_origin(headers: &mut http::HeaderMap) {
    use http::header::{
        ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    };
    headers.insert(
        ACCESS_CONTROL_ALLOW_ORIGIN,
        http::HeaderValue::from_static("*"),
    );
    headers.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        http::HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    headers.insert(
        ACCESS_CONTROL_ALLOW_HEADERS,
        http::HeaderValue::from_static("Content-Type"),
    );
}

fn wall_clock_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_nanos() as u64
}

fn cbor_response(status: StatusCode, body: Vec<u8>) -> Response<Bytes> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/cbor")
        .body(Bytes::from(body))
        .expect("valid response")
}

fn accepted() -> Response<Bytes> {
    Response::builder()
        .status(StatusCode::ACCEPTED)
        .body(Bytes::new())
        .expect("valid response")
}

fn error_response(error: &ApiError) -> Response<Bytes> {
    Response::builder()
        .status(error.status)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Bytes::from(error.message.clone()))
        .expect("valid response")
}

/// Serves the network on `listener` until the future is dropped.
pub async fn serve(
    shared: Arc<SharedNetwork>,
    listener: tokio::net::TcpListener,
) -> std::io::Result<()> {
    let app = axum::Router::new()
        .fallback(handle_axum)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_REQUEST_BODY_BYTES))
        .with_state(shared);
    axum::serve(listener, app).await
}

async fn handle_axum(
    axum::extract::State(shared): axum::extract::State<Arc<SharedNetwork>>,
    request: axum::extract::Request,
) -> axum::response::Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_REQUEST_BODY_BYTES).await {
        Ok(body) => body,
        Err(_) => {
            let error = ApiError::new(
                413,
                format!(
                    "Request body is larger than the maximum of {MAX_REQUEST_BODY_BYTES} bytes."
                ),
            );
            return error_response(&error).map(axum::body::Body::from);
        }
    };
    shared
        .handle(Request::from_parts(parts, body))
        .await
        .map(axum::body::Body::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "rwlgt-iiaaa-aaaaa-aaaaa-cai";

    #[test]
    fn endpoints_of_the_https_interface_are_routed() {
        let id = Principal::from_text(ID).unwrap();
        let post = Method::POST;
        assert_eq!(
            route(&Method::GET, "/api/v2/status").unwrap(),
            Endpoint::Status
        );
        assert_eq!(
            route(&post, &format!("/api/v4/canister/{ID}/call")).unwrap(),
            Endpoint::Call {
                effective_canister_id: id,
                synchronous: true
            }
        );
        assert_eq!(
            route(&post, &format!("/api/v2/canister/{ID}/call")).unwrap(),
            Endpoint::Call {
                effective_canister_id: id,
                synchronous: false
            }
        );
        assert_eq!(
            route(&post, &format!("/api/v3/canister/{ID}/query")).unwrap(),
            Endpoint::Query(id)
        );
        assert_eq!(
            route(&post, &format!("/api/v3/subnet/{ID}/read_state")).unwrap(),
            Endpoint::ReadState(ReadStateTarget::Subnet(id))
        );
    }

    /// Browsers preflight cross-origin API calls; every API answer allows any origin.
    #[tokio::test]
    async fn the_api_allows_cross_origin_calls() {
        let shared = SharedNetwork::new(
            LocalNetwork::new(crate::NetworkConfig::default()),
            RoundDriver::Requests,
        );
        let preflight = Request::builder()
            .method(Method::OPTIONS)
            .uri(format!("/api/v4/canister/{ID}/call"))
            .body(Bytes::new())
            .unwrap();
        let response = shared.handle(preflight).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_eq!(response.headers()["access-control-allow-origin"], "*");
        assert!(response.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST"));
        let status = Request::get("/api/v2/status").body(Bytes::new()).unwrap();
        let response = shared.handle(status).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["access-control-allow-origin"], "*");
    }

    #[test]
    fn unknown_paths_wrong_methods_and_bad_ids_are_client_errors() {
        assert_eq!(
            route(&Method::GET, "/api/v9/status").unwrap_err().status,
            404
        );
        assert_eq!(
            route(&Method::POST, "/api/v2/status").unwrap_err().status,
            405
        );
        assert_eq!(
            route(&Method::POST, "/api/v4/canister/not-a-principal/call")
                .unwrap_err()
                .status,
            400
        );
    }
}
