//! Which paths a `read_state` request may name, and who may read them (IC interface
//! specification, "Request: Read state").

use super::{ApiError, LocalNetwork, ReadStateTarget};
use crate::tree::Path;
use candid::Principal;

/// "A list of at most 1000 paths, where a path is itself a sequence of at most 127 blobs."
const MAX_READ_STATE_PATHS: usize = 1000;
const MAX_PATH_LABELS: usize = 127;

impl LocalNetwork {
    pub(super) fn check_read_state_paths(
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
}
