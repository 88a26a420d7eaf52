//! The one error shape every deployer endpoint returns.
//!
//! [`ErrorKind`] carries the meaning: a Candid variant whose cases hold the facts a client needs
//! to react programmatically. [`Error`] pairs it with a human sentence that says what to do next,
//! so a `dfx` user sees the remedy without knowing the variant. The message is derived from the
//! kind and nothing else, which is why `Error` can only be built from an `ErrorKind`.
//!
//! Later features extend `ErrorKind` with their own cases (and a `Display` arm each); they do not
//! add new error types to the interface.

use std::fmt;

use candid::{CandidType, Deserialize, Principal};

use crate::roles::Role;

/// Why a request was refused. Match on this, not on [`Error::message`].
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The caller does not hold a role that grants `required`.
    NotAuthorized { caller: Principal, required: Role },
    /// Removing the role would leave the deployer without any admin.
    LastAdmin { admin: Principal },
    /// Roles cannot be granted to the anonymous principal: anyone could exercise them.
    AnonymousPrincipal,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAuthorized { caller, required } if *caller == Principal::anonymous() => {
                write!(
                    f,
                    "this method requires the {required} role and the call is anonymous: \
                 call with an identity that holds {required}"
                )
            }
            Self::NotAuthorized { caller, required } => write!(
                f,
                "{caller} does not hold the {required} role: an admin can grant it with \
                 add_role(principal \"{caller}\", variant {{ {required} }})"
            ),
            Self::LastAdmin { admin } => write!(
                f,
                "{admin} is the last admin and cannot lose the Admin role: \
                 grant Admin to another principal with add_role first"
            ),
            Self::AnonymousPrincipal => write!(
                f,
                "roles cannot be granted to the anonymous principal {}: \
                 pass the principal of an authenticated identity",
                Principal::anonymous()
            ),
        }
    }
}

/// A refused request: what went wrong ([`ErrorKind`]) and what to do about it (`message`).
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        let message = kind.to_string();
        Self { kind, message }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_is_rendered_from_the_kind() {
        let caller = Principal::from_slice(&[7; 29]);
        let error = Error::from(ErrorKind::NotAuthorized {
            caller,
            required: Role::Admin,
        });
        assert_eq!(
            error.message(),
            format!(
                "{caller} does not hold the Admin role: an admin can grant it with \
                 add_role(principal \"{caller}\", variant {{ Admin }})"
            )
        );
    }

    #[test]
    fn anonymous_caller_is_told_to_use_an_identity() {
        let error = Error::from(ErrorKind::NotAuthorized {
            caller: Principal::anonymous(),
            required: Role::Operator,
        });
        assert!(error.message().contains("the call is anonymous"));
        assert!(error.message().contains("holds Operator"));
    }
}
