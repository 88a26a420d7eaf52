//! Why a command failed, and the exit status that says so: scripts branch on the status, people
//! read the message (for a refusal, the deployer's own sentence saying what to do next).

use deployer_client::CallError;

/// Exit statuses. A rollout's end (`rollout watch`) has its own: see [`crate::rollout::Ended`].
pub mod exit {
    /// Bad input: an unknown flag, a missing or unreadable file, a module that is not Wasm, a
    /// malformed hash or policy.
    pub const BAD_INPUT: u8 = 2;
    /// The deployer ran the method and refused with its typed error (nothing changed).
    pub const REFUSED: u8 = 3;
    /// The IC rejected the message before or while the method ran (the deployer's message
    /// filter, a trap, a stopped or missing canister).
    pub const REJECTED: u8 = 4;
    /// The network could not be reached or answered wrongly (HTTP error, bad certificate).
    pub const TRANSPORT: u8 = 5;
    /// Downloaded bytes do not hash to what the deployer says they are.
    pub const INTEGRITY: u8 = 6;
}

#[derive(Debug)]
pub enum Failure {
    Input(String),
    Refused(deployer::Error),
    Rejected(ic_sim::Reject),
    Transport(String),
    Integrity(String),
}

impl Failure {
    pub fn input(message: impl Into<String>) -> Failure {
        Failure::Input(message.into())
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Input(_) => exit::BAD_INPUT,
            Failure::Refused(_) => exit::REFUSED,
            Failure::Rejected(_) => exit::REJECTED,
            Failure::Transport(_) => exit::TRANSPORT,
            Failure::Integrity(_) => exit::INTEGRITY,
        }
    }

    /// One word for scripts: `input`, `refused`, `rejected`, `transport`, `integrity`.
    pub fn class(&self) -> &'static str {
        match self {
            Failure::Input(_) => "input",
            Failure::Refused(_) => "refused",
            Failure::Rejected(_) => "rejected",
            Failure::Transport(_) => "transport",
            Failure::Integrity(_) => "integrity",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Failure::Input(message) | Failure::Transport(message) | Failure::Integrity(message) => {
                message.clone()
            }
            Failure::Refused(error) => error.message().to_string(),
            Failure::Rejected(reject) => reject.message.clone(),
        }
    }

    /// What `--json` prints: the class, the message, and the deployer's error kind or the IC's
    /// reject code where there is one.
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = serde_json::json!({
            "error": self.class(),
            "message": self.message(),
            "exit_code": self.exit_code(),
        });
        match self {
            Failure::Refused(error) => value["kind"] = crate::json::to_json(&error.kind()),
            Failure::Rejected(reject) => {
                value["reject_code"] = (reject.code as u32).into();
                value["error_code"] = reject.error_code.clone().into();
            }
            _ => {}
        }
        value
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Input(message) => write!(f, "{message}"),
            Failure::Refused(error) => {
                let kind = crate::json::variant_name(&crate::json::to_json(&error.kind()));
                write!(f, "the deployer refused ({kind}): {}", error.message())
            }
            Failure::Rejected(reject) => write!(
                f,
                "the IC rejected the call ({:?}{}): {}",
                reject.code,
                reject
                    .error_code
                    .as_ref()
                    .map(|code| format!(", {code}"))
                    .unwrap_or_default(),
                reject.message
            ),
            Failure::Transport(message) => write!(f, "network: {message}"),
            Failure::Integrity(message) => write!(f, "verification failed: {message}"),
        }
    }
}

impl From<CallError> for Failure {
    fn from(error: CallError) -> Failure {
        match error {
            CallError::Deployer(error) => Failure::Refused(error),
            CallError::Rejected(reject) => Failure::Rejected(reject),
            CallError::Transport(message) => Failure::Transport(message),
        }
    }
}

pub type Outcome<T> = Result<T, Failure>;
