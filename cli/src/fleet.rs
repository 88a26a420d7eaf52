//! `deployer fleet`: adopt children (ids, or `@file` with one id a line), list them by label or
//! module, set and remove labels.

use std::collections::BTreeMap;

use candid::Principal;
use clap::Subcommand;
use deployer::{AdoptChildrenArg, ChildInfo, Label, ListChildrenArg, ReleaseSelector};
use serde_bytes::ByteBuf;

use crate::connect::parse_principal;
use crate::fail::{exit, Failure, Outcome};
use crate::release::{catalogue, get, parse_release};
use crate::{json, text, Context};

/// One adoption call takes at most this many canisters.
const ADOPT_BATCH: usize = 100;

#[derive(Subcommand)]
pub enum FleetCommand {
    /// Adopts canisters the deployer controls as children.
    Adopt {
        /// Canister ids, or `@file` with one id a line (`#` starts a comment).
        #[arg(required = true)]
        children: Vec<String>,
        /// A label every adopted child starts with (repeatable).
        #[arg(long = "label", value_name = "KEY=VALUE")]
        labels: Vec<String>,
        /// The children's subnet (default: the deployer's own).
        #[arg(long)]
        subnet: Option<String>,
    },
    /// The children, by label and module.
    List {
        /// Only children with this label (repeatable: all must match).
        #[arg(long = "label", value_name = "KEY=VALUE")]
        labels: Vec<String>,
        /// Only children running this module: a SHA-256 (hex) or name@version.
        #[arg(long)]
        module: Option<String>,
    },
    /// Forgets a child (refused while a rollout holds it); the canister itself is untouched.
    Forget { child: String },
    /// Registers a chunk store for the children on `subnet`: an empty canister there that the
    /// deployer controls (the deployer serves its own subnet).
    // Not `canister`: that is the global `--canister` (the deployer).
    Store { subnet: String, store: String },
    /// Sets labels on a child (`key=value`), or removes them (`--remove key`).
    Label {
        child: String,
        #[arg(value_name = "KEY=VALUE")]
        labels: Vec<String>,
        #[arg(long = "remove", value_name = "KEY")]
        remove: Vec<String>,
    },
}

pub fn parse_label(text: &str) -> Outcome<Label> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok(Label {
            key: key.to_string(),
            value: value.to_string(),
        }),
        _ => Err(Failure::input(format!(
            "label `{text}`: expected key=value"
        ))),
    }
}

pub fn parse_labels(texts: &[String]) -> Outcome<Vec<Label>> {
    texts.iter().map(|text| parse_label(text)).collect()
}

/// Ids given on the command line, `@file`s expanded.
pub fn parse_ids(items: &[String]) -> Outcome<Vec<Principal>> {
    let mut ids = Vec::new();
    for item in items {
        if let Some(file) = item.strip_prefix('@') {
            let text = std::fs::read_to_string(file)
                .map_err(|error| Failure::input(format!("{file}: {error}")))?;
            for line in text.lines() {
                let line = line.split('#').next().unwrap_or("").trim();
                if !line.is_empty() {
                    ids.push(parse_principal(line, file)?);
                }
            }
        } else {
            for id in item.split(',').filter(|id| !id.is_empty()) {
                ids.push(parse_principal(id, "canister id")?);
            }
        }
    }
    Ok(ids)
}

impl FleetCommand {
    pub fn run(self, context: &Context) -> Outcome<u8> {
        let me = context.connection.me;
        let mut deployer = context.connection.deployer();
        match self {
            FleetCommand::Adopt {
                children,
                labels,
                subnet,
            } => {
                let ids = parse_ids(&children)?;
                let labels = parse_labels(&labels)?;
                let subnet = subnet
                    .map(|subnet| parse_principal(&subnet, "--subnet"))
                    .transpose()?;
                let mut results = Vec::new();
                let mut refused = 0;
                for batch in ids.chunks(ADOPT_BATCH) {
                    let answers = deployer.adopt_children(
                        me,
                        AdoptChildrenArg {
                            canister_ids: batch.to_vec(),
                            labels: labels.clone(),
                            subnet,
                        },
                    )?;
                    for (id, answer) in batch.iter().zip(answers) {
                        match answer {
                            Ok(child) => results.push((
                                *id,
                                serde_json::json!({"adopted": json::to_json(&child)}),
                                "adopted".to_string(),
                            )),
                            Err(error) => {
                                refused += 1;
                                results.push((
                                    *id,
                                    serde_json::json!({"refused": {
                                        "kind": json::to_json(&error.kind()),
                                        "message": error.message(),
                                    }}),
                                    format!("refused: {}", error.message()),
                                ))
                            }
                        }
                    }
                }
                let value = serde_json::Value::Array(
                    results
                        .iter()
                        .map(|(id, result, _)| {
                            let mut result = result.clone();
                            result["canister_id"] = id.to_text().into();
                            result
                        })
                        .collect(),
                );
                context.print(&value, || {
                    let mut out = String::new();
                    for (id, _, line) in &results {
                        out.push_str(&format!("{id}  {line}\n"));
                    }
                    out.push_str(&format!(
                        "{} adopted, {refused} refused\n",
                        results.len() - refused
                    ));
                    out
                });
                Ok(if refused > 0 { exit::REFUSED } else { 0 })
            }
            FleetCommand::List { labels, module } => {
                let labels = parse_labels(&labels)?;
                let module_hash = match module {
                    None => None,
                    Some(module) => Some(match parse_release(&module)? {
                        ReleaseSelector::Sha256(hash) => hash,
                        selector => get(context, &selector)?.summary.sha256,
                    }),
                };
                let children = list_children(context, labels, module_hash)?;
                let names = release_names(context)?;
                context.print(&json::to_json(&children), || {
                    let mut out = format!(
                        "{:<29} {:<24} {:<8} {}\n",
                        "CANISTER", "MODULE", "ROLLOUT", "LABELS"
                    );
                    for child in &children {
                        out.push_str(&format!(
                            "{:<29} {:<24} {:<8} {}\n",
                            child.canister_id.to_text(),
                            module_name(
                                &names,
                                child.module_hash.as_ref().map(|hash| hash.as_slice())
                            ),
                            child
                                .rollout_id
                                .map(|id| id.to_string())
                                .unwrap_or_else(|| "-".into()),
                            child
                                .labels
                                .iter()
                                .map(|label| format!("{}={}", label.key, label.value))
                                .collect::<Vec<_>>()
                                .join(",")
                        ));
                    }
                    out.push_str(&format!("{} children\n", children.len()));
                    out
                });
                Ok(0)
            }
            FleetCommand::Forget { child } => {
                let child = parse_principal(&child, "child")?;
                let info = deployer.release_child(me, child)?;
                context.print(&json::to_json(&info), || format!("forgot {child}"));
                Ok(0)
            }
            FleetCommand::Store { subnet, store } => {
                let subnet = parse_principal(&subnet, "subnet")?;
                let canister = parse_principal(&store, "store")?;
                deployer.register_chunk_store(me, subnet, canister)?;
                let value =
                    serde_json::json!({"subnet": subnet.to_text(), "store": canister.to_text()});
                context.print(&value, || {
                    format!("{canister} holds the chunked releases for subnet {subnet}")
                });
                Ok(0)
            }
            FleetCommand::Label {
                child,
                labels,
                remove,
            } => {
                let child = parse_principal(&child, "child")?;
                let labels = parse_labels(&labels)?;
                if labels.is_empty() && remove.is_empty() {
                    return Err(Failure::input(
                        "fleet label: give key=value labels to set or --remove key",
                    ));
                }
                let mut info = None;
                if !labels.is_empty() {
                    info = Some(deployer.set_labels(me, child, labels)?);
                }
                for key in &remove {
                    deployer.remove_label(me, child, key.clone())?;
                }
                // After removals, the child as it is now.
                let info = match info {
                    Some(info) if remove.is_empty() => info,
                    _ => deployer.get_child(me, child)?,
                };
                context.print(&json::to_json(&info), || {
                    format!(
                        "{}  {}",
                        info.canister_id,
                        info.labels
                            .iter()
                            .map(|label| format!("{}={}", label.key, label.value))
                            .collect::<Vec<_>>()
                            .join(",")
                    )
                });
                Ok(0)
            }
        }
    }
}

/// Every child matching, page after page.
pub fn list_children(
    context: &Context,
    labels: Vec<Label>,
    module_hash: Option<ByteBuf>,
) -> Outcome<Vec<ChildInfo>> {
    let me = context.connection.me;
    let mut deployer = context.connection.deployer();
    let mut children = Vec::new();
    let mut from = None;
    loop {
        let page = deployer.list_children(
            me,
            ListChildrenArg {
                from,
                labels: labels.clone(),
                limit: None,
                module_hash: module_hash.clone(),
            },
        )?;
        children.extend(page.children);
        match page.next {
            Some(next) => from = Some(next),
            None => return Ok(children),
        }
    }
}

/// Module hash to `name@version`, for the releases the deployer holds.
pub fn release_names(context: &Context) -> Outcome<BTreeMap<Vec<u8>, String>> {
    Ok(catalogue(context)?
        .into_iter()
        .map(|release| {
            (
                release.sha256.to_vec(),
                format!("{}@{}", release.name, release.version),
            )
        })
        .collect())
}

pub fn module_name(names: &BTreeMap<Vec<u8>, String>, hash: Option<&[u8]>) -> String {
    match hash {
        None => "(empty)".to_string(),
        Some(hash) => names
            .get(hash)
            .cloned()
            .unwrap_or_else(|| text::short_hash(hash)),
    }
}
