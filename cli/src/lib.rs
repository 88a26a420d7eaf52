//! The deployer's command line as a library: the binary `deployer` (src/main.rs) parses the
//! command line and runs these commands; the bench runs the upload in-process over loopback.
//! Every call goes through the one typed client, [`deployer_client::Deployer`], over ic-agent
//! ([`connect::AgentTransport`]).

pub mod backup;
pub mod connect;
pub mod fail;
pub mod fleet;
pub mod json;
pub mod policy;
pub mod release;
pub mod rollout;
pub mod text;

use connect::Connection;

/// What every command has: the connection and the output mode.
pub struct Context {
    pub connection: Connection,
    pub json: bool,
}

impl Context {
    /// Prints `value` as JSON, or `text` for people.
    pub fn print(&self, value: &serde_json::Value, text: impl FnOnce() -> String) {
        if self.json {
            println!(
                "{}",
                serde_json::to_string_pretty(value).expect("JSON prints")
            );
        } else {
            let text = text();
            if !text.is_empty() {
                println!("{}", text.trim_end());
            }
        }
    }
}
