//! The HTTP gateway protocol in front of the network: a browser's request becomes a query to
//! the canister's `http_request`, upgraded to an update to `http_request_update` when the reply
//! sets `upgrade = opt true` (HTTP gateway protocol specification, "Upgrade to update calls").
//! Responses are passed through unverified, as a gateway does for `<id>.raw.<domain>`.

use candid::{CandidType, Deserialize, Principal};
use serde_bytes::ByteBuf;

pub type HeaderField = (String, String);

/// `HttpRequest`, "HTTP Request Encoding".
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<HeaderField>,
    pub body: ByteBuf,
    pub certificate_version: Option<u16>,
}

/// `HttpUpdateRequest`: the request without `certificate_version`.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct HttpUpdateRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<HeaderField>,
    pub body: ByteBuf,
}

impl From<HttpRequest> for HttpUpdateRequest {
    fn from(request: HttpRequest) -> Self {
        HttpUpdateRequest {
            method: request.method,
            url: request.url,
            headers: request.headers,
            body: request.body,
        }
    }
}

/// `HttpResponse`, "HTTP Response Decoding" (streaming strategies are not followed).
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    pub status_code: u16,
    pub headers: Vec<HeaderField>,
    pub body: ByteBuf,
    pub upgrade: Option<bool>,
}

/// The canister a browser's request is for: the first label of `Host` when it is a canister id
/// (`<id>.raw.localhost:<port>`, `<id>.localhost`), else the `canisterId` query parameter.
pub fn resolve_canister(host: Option<&str>, query: Option<&str>) -> Option<Principal> {
    let from_host = host
        .and_then(|host| host.split('.').next())
        .and_then(|label| Principal::from_text(label).ok());
    from_host.or_else(|| {
        query?
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(name, _)| *name == "canisterId")
            .and_then(|(_, id)| Principal::from_text(id).ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "rwlgt-iiaaa-aaaaa-aaaaa-cai";

    #[test]
    fn canisters_are_resolved_from_the_host_or_the_canister_id_parameter() {
        let id = Principal::from_text(ID).unwrap();
        let raw_host = format!("{ID}.raw.localhost:4943");
        assert_eq!(resolve_canister(Some(&raw_host), None), Some(id));
        assert_eq!(
            resolve_canister(Some(&format!("{ID}.localhost")), None),
            Some(id)
        );
        let query = format!("a=1&canisterId={ID}");
        assert_eq!(
            resolve_canister(Some("127.0.0.1:4943"), Some(&query)),
            Some(id)
        );
        assert_eq!(resolve_canister(Some("localhost"), Some("a=1")), None);
    }
}
