//! The calls the HTTP gateway makes for a browser: `http_request` and its upgrade to
//! `http_request_update` (HTTP gateway protocol specification).

use super::{ApiError, LocalNetwork};
use crate::gateway::{HttpRequest, HttpResponse, HttpUpdateRequest};
use candid::Principal;
use ic_sim::{IngressStatus, MessageId, Reject};

impl LocalNetwork {
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
