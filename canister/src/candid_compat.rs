//! Whether a release's Candid service can replace the one a child runs: every call a client of
//! the old service makes is still understood and every reply still decodes, which is Candid's
//! subtyping (the new service a subtype of the old). Both services come from the modules'
//! `candid:service` metadata, kept with each release at commit.
//!
//! The special opt rule (an `opt` whose type changed incompatibly decodes as `null` for old
//! clients) counts as an incompatibility here: a gate is where a voter should hear of it.

use candid::types::subtype::{subtype_check_all, subtype_with_config, OptReport};
use candid::types::Type;
use candid::TypeEnv;
use candid_parser::{check_prog, IDLProg};

/// The longest report of incompatibilities kept (in bytes): an error text and a render carry
/// it, both bounded.
pub const MAX_REPORT_BYTES: usize = 480;

/// Why `new` cannot replace `old`, as a short text naming each incompatible method and type
/// (the first ones, up to [`MAX_REPORT_BYTES`]); `Ok` when it can.
pub fn check_service_compatible(new: &str, old: &str) -> Result<(), String> {
    let (mut env, new_service) =
        main_service(new).map_err(|reason| format!("the release's {reason}"))?;
    let (old_env, old_service) =
        main_service(old).map_err(|reason| format!("the running release's {reason}"))?;
    let old_service = env.merge_type(old_env, old_service);
    let mut assumed = Default::default();
    let strict = subtype_with_config(
        OptReport::Error,
        &mut assumed,
        &env,
        &new_service,
        &old_service,
    );
    let Err(first) = strict else {
        return Ok(());
    };
    // The full report names every incompatible place (not only the first); when subtyping
    // holds but for the special opt rule, the strict check's message is the report.
    let all = subtype_check_all(&mut Default::default(), &env, &new_service, &old_service);
    let report = if all.is_empty() {
        first.to_string()
    } else {
        all.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    };
    Err(bounded(
        report.split_whitespace().collect::<Vec<_>>().join(" "),
    ))
}

/// The parsed service. Parsed and checked without `candid_parser`'s pretty printer, which
/// writes a report to stderr: a canister has none, and the error's text is enough.
fn main_service(text: &str) -> Result<(TypeEnv, Type), String> {
    let does_not_parse = |error: candid_parser::Error| {
        bounded(format!("candid:service metadata does not parse: {error}"))
    };
    let program: IDLProg = text.parse().map_err(does_not_parse)?;
    let mut env = TypeEnv::new();
    let service = check_prog(&mut env, &program).map_err(does_not_parse)?;
    let service =
        service.ok_or_else(|| "candid:service metadata has no main service".to_string())?;
    Ok((env, service))
}

fn bounded(text: String) -> String {
    crate::text::cut_with_ellipsis(text, MAX_REPORT_BYTES)
}

#[cfg(test)]
mod tests;
