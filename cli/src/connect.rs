//! Where the deployer is and who calls it: the network (`local` from the file the local network
//! writes, `ic`, or a URL with its root key), the deployer's canister id, and the identity (a
//! PEM file as dfx and `icp` store them, Ed25519 or secp256k1, or anonymous). The typed client
//! ([`deployer_client::Deployer`]) reaches the deployer through [`AgentTransport`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candid::Principal;
use clap::Args;
use deployer_client::{CallError, Deployer, Transport};
use ic_agent::identity::{AnonymousIdentity, BasicIdentity, Prime256v1Identity, Secp256k1Identity};
use ic_agent::{Agent, AgentError, Identity};
use ic_sim::{Reject, RejectCode};

use crate::fail::{Failure, Outcome};

const IC_URL: &str = "https://icp-api.io";

#[derive(Args, Clone, Debug)]
pub struct ConnectArgs {
    /// `local` (URL, root key and deployer id from the file the local network writes), `ic`,
    /// or the URL of a network.
    #[arg(
        long,
        short = 'n',
        global = true,
        env = "DEPLOYER_NETWORK",
        default_value = "local"
    )]
    pub network: String,
    /// The network's root key: hex (DER), a file holding it, or `fetch` to trust what the
    /// network itself serves. Not needed for `local` or `ic`.
    #[arg(long, short = 'k', global = true, env = "DEPLOYER_ROOT_KEY")]
    pub root_key: Option<String>,
    /// The deployer's canister id (default for `local`: the network's deployer).
    #[arg(long, short = 'c', global = true, env = "DEPLOYER_CANISTER")]
    pub canister: Option<String>,
    /// A PEM file (Ed25519 or secp256k1, as `dfx identity export` and `icp` write them) or
    /// the name of a dfx identity; anonymous when left out.
    #[arg(long, short = 'i', global = true, env = "DEPLOYER_IDENTITY")]
    pub identity: Option<String>,
    /// The file `local` reads (what `scripts/network.sh` writes).
    #[arg(long, global = true, default_value = ".local-network.json")]
    pub local_file: PathBuf,
}

/// A connection to the deployer: the agent, the runtime its calls run on, the deployer's id
/// and the caller's principal.
pub struct Connection {
    runtime: Arc<tokio::runtime::Runtime>,
    agent: Agent,
    pub canister: Principal,
    pub me: Principal,
}

impl Connection {
    pub fn open(args: &ConnectArgs) -> Outcome<Connection> {
        let identity = load_identity(args.identity.as_deref())?;
        let (url, root_key, local_deployer) = match args.network.as_str() {
            "local" => {
                let local = read_local(&args.local_file)?;
                (local.0, RootKey::Key(local.1), Some(local.2))
            }
            "ic" => (IC_URL.to_string(), RootKey::Mainnet, None),
            url if url.starts_with("http://") || url.starts_with("https://") => {
                let key = match args.root_key.as_deref() {
                    Some("fetch") => RootKey::Fetch,
                    Some(key) => RootKey::Key(parse_root_key(key)?),
                    None => {
                        return Err(Failure::input(format!(
                            "--network {url} needs --root-key: the network's key in hex (a local \
                             network prints it), a file holding it, or `fetch` to trust the \
                             network's own"
                        )))
                    }
                };
                (url.to_string(), key, None)
            }
            other => {
                return Err(Failure::input(format!(
                    "--network {other}: expected `local`, `ic` or an http(s) URL"
                )))
            }
        };
        let root_key = match (&args.root_key, root_key) {
            (Some(key), RootKey::Key(_)) if args.network == "local" => {
                RootKey::Key(parse_root_key(key)?)
            }
            (_, key) => key,
        };
        let canister = match (&args.canister, local_deployer) {
            (Some(text), _) => parse_principal(text, "--canister")?,
            (None, Some(deployer)) => deployer,
            (None, None) => {
                return Err(Failure::input(
                    "--canister <id>: which deployer (only `local` knows its own)",
                ))
            }
        };
        Connection::new(&url, root_key, canister, identity)
    }

    /// A connection to `canister` on the network at `url` as `identity`.
    pub fn new(
        url: &str,
        root_key: RootKey,
        canister: Principal,
        identity: Box<dyn Identity>,
    ) -> Outcome<Connection> {
        let me = identity
            .sender()
            .map_err(|error| Failure::input(format!("identity: {error}")))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|error| Failure::Transport(format!("starting the runtime: {error}")))?;
        let agent = Agent::builder()
            .with_url(url)
            .with_boxed_identity(identity)
            .with_max_tcp_error_retries(1)
            .build()
            .map_err(|error| Failure::input(format!("--network {url}: {error}")))?;
        match root_key {
            RootKey::Mainnet => {}
            RootKey::Key(key) => agent.set_root_key(key),
            RootKey::Fetch => runtime
                .block_on(agent.fetch_root_key())
                .map_err(|error| Failure::Transport(format!("{url}: {error}")))?,
        }
        Ok(Connection {
            runtime: Arc::new(runtime),
            agent,
            canister,
            me,
        })
    }

    /// The typed client of the deployer over this connection. Each is independent: parallel
    /// work takes one per thread.
    pub fn deployer(&self) -> Deployer<AgentTransport> {
        Deployer {
            env: AgentTransport {
                agent: self.agent.clone(),
                runtime: self.runtime.clone(),
            },
            canister: self.canister,
        }
    }
}

/// How the agent trusts the network's certificates.
pub enum RootKey {
    /// The IC's built-in key.
    Mainnet,
    /// This key (DER).
    Key(Vec<u8>),
    /// The key the network serves (trust on first use).
    Fetch,
}

/// `{"url", "root_key", "deployer"}` from the local network's description.
fn read_local(file: &Path) -> Outcome<(String, Vec<u8>, Principal)> {
    let text = std::fs::read_to_string(file).map_err(|error| {
        Failure::input(format!(
            "--network local reads {}: {error}. Start the local network (scripts/network.sh) \
             here, or pass --network <url> --root-key <hex> --canister <id>",
            file.display()
        ))
    })?;
    let description: serde_json::Value = serde_json::from_str(&text)
        .map_err(|error| Failure::input(format!("{}: {error}", file.display())))?;
    let field = |name: &str| {
        description[name]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| Failure::input(format!("{}: no `{name}` field", file.display())))
    };
    Ok((
        field("url")?,
        parse_root_key(&field("root_key")?)?,
        parse_principal(&field("deployer")?, "deployer")?,
    ))
}

fn parse_root_key(text: &str) -> Outcome<Vec<u8>> {
    if let Ok(key) = hex::decode(text.trim()) {
        return Ok(key);
    }
    let bytes = std::fs::read(text).map_err(|error| {
        Failure::input(format!(
            "--root-key {text}: neither hex nor a readable file ({error})"
        ))
    })?;
    match std::str::from_utf8(&bytes)
        .ok()
        .map(|s| hex::decode(s.trim()))
    {
        Some(Ok(key)) => Ok(key),
        _ => Ok(bytes),
    }
}

pub fn parse_principal(text: &str, what: &str) -> Outcome<Principal> {
    Principal::from_text(text.trim())
        .map_err(|error| Failure::input(format!("{what} `{text}`: not a principal ({error})")))
}

/// A PEM file, or a dfx identity by name (`~/.config/dfx/identity/<name>/identity.pem`).
fn load_identity(identity: Option<&str>) -> Outcome<Box<dyn Identity>> {
    let Some(identity) = identity else {
        return Ok(Box::new(AnonymousIdentity));
    };
    if identity == "anonymous" {
        return Ok(Box::new(AnonymousIdentity));
    }
    let mut path = PathBuf::from(identity);
    if !path.exists() && !identity.contains('/') {
        if let Some(home) = std::env::var_os("HOME") {
            let dfx = PathBuf::from(home)
                .join(".config/dfx/identity")
                .join(identity)
                .join("identity.pem");
            if dfx.exists() {
                path = dfx;
            }
        }
    }
    let pem = std::fs::read(&path).map_err(|error| {
        Failure::input(format!(
            "--identity {identity}: cannot read {} ({error})",
            path.display()
        ))
    })?;
    let text = String::from_utf8_lossy(&pem);
    if text.contains("ENCRYPTED") {
        return Err(Failure::input(format!(
            "--identity {}: the key is encrypted; export it unencrypted (e.g. `dfx identity export`)",
            path.display()
        )));
    }
    let identity: Option<Box<dyn Identity>> = if text.contains("BEGIN EC PRIVATE KEY") {
        Secp256k1Identity::from_pem(&pem[..])
            .map(|id| Box::new(id) as Box<dyn Identity>)
            .or_else(|_| Prime256v1Identity::from_pem(&pem[..]).map(|id| Box::new(id) as _))
            .ok()
    } else {
        BasicIdentity::from_pem(&pem[..])
            .map(|id| Box::new(id) as Box<dyn Identity>)
            .or_else(|_| Secp256k1Identity::from_pem(&pem[..]).map(|id| Box::new(id) as _))
            .ok()
    };
    identity.ok_or_else(|| {
        Failure::input(format!(
            "--identity {}: not an Ed25519, secp256k1 or P-256 private key in PEM",
            path.display()
        ))
    })
}

/// The client's transport over ic-agent: each call blocks on the connection's runtime (the
/// client is synchronous). The agent signs as its identity: the client's `sender` is that
/// identity's principal.
#[derive(Clone)]
pub struct AgentTransport {
    agent: Agent,
    runtime: Arc<tokio::runtime::Runtime>,
}

impl Transport for AgentTransport {
    fn update_raw(
        &mut self,
        _sender: Principal,
        canister: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, CallError> {
        self.runtime
            .block_on(
                self.agent
                    .update(&canister, method)
                    .with_arg(arg)
                    .call_and_wait(),
            )
            .map_err(call_error)
    }

    fn query_raw(
        &mut self,
        _sender: Principal,
        canister: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, CallError> {
        self.runtime
            .block_on(self.agent.query(&canister, method).with_arg(arg).call())
            .map_err(call_error)
    }
}

fn call_error(error: AgentError) -> CallError {
    match error {
        AgentError::CertifiedReject { reject, .. }
        | AgentError::UncertifiedReject { reject, .. } => CallError::Rejected(Reject {
            code: RejectCode::from_u32(reject.reject_code as u32).unwrap_or(RejectCode::SysFatal),
            message: reject.reject_message,
            error_code: reject.error_code,
        }),
        other => CallError::Transport(other.to_string()),
    }
}
