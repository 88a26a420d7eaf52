//! `deployer`: the deployer canister from a terminal. Upload releases (resumable, in parallel,
//! with a progress bar), adopt and label the fleet, plan, start and watch rollouts, on the local
//! network or the IC, with `--json` for scripts and exit statuses that tell a refusal from a
//! network failure (see `deployer_cli::fail::exit`). Every call goes through the one typed client,
//! `deployer_client::Deployer`, over ic-agent.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use deployer_cli::connect::{self, ConnectArgs, Connection};
use deployer_cli::fail::{Failure, Outcome};
use deployer_cli::{backup, fleet, json, release, rollout, text, Context};

#[derive(Parser)]
#[command(
    name = "deployer",
    version,
    about = "Upload releases, manage the fleet and roll out new Wasm with the deployer canister",
    after_help = "Exit status: 0 done; 2 bad input; 3 refused by the deployer (its message says \
                  what to do next); 4 rejected by the IC; 5 network unreachable or failing; 6 a \
                  download did not verify. `rollout watch`: 0 completed, 10 completed with failed \
                  children, 11 paused, 12 aborted, 13 rolled back."
)]
struct Cli {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Print JSON (one document, or one line per event for `rollout watch`) instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Releases: upload, list, show, download, bless, delete.
    #[command(subcommand)]
    Release(release::ReleaseCommand),
    /// The fleet: adopt children, list them, label them.
    #[command(subcommand)]
    Fleet(fleet::FleetCommand),
    /// Rollouts: plan, start, watch, pause, resume, abort, roll back; histories and events.
    #[command(subcommand)]
    Rollout(rollout::RolloutCommand),
    /// Who you are to the deployer: your principal and roles, and the deployer's version.
    Whoami,
    /// Storage used by releases and uploads, and the upload settings.
    Stats,
    /// Before upgrading the deployer to a build whose engine decides differently: holds every
    /// rollout and folds the journal; call until ready, then stop, install, start.
    PrepareUpgrade {
        /// Lift the hold instead (rollouts go on).
        #[arg(long)]
        lift: bool,
    },
    /// Roles: who may do what (Admin, Operator, Viewer).
    #[command(subcommand)]
    Role(RoleCommand),
    /// Backups: the deployer's own state exported and restored; a child's snapshot downloaded
    /// through the deployer, as `icp` lays it out.
    #[command(subcommand)]
    Backup(backup::BackupCommand),
}

#[derive(Subcommand)]
enum RoleCommand {
    /// Every principal holding a role.
    List,
    /// Grants a role (Admin only).
    Add { principal: String, role: RoleName },
    /// Revokes a role (Admin only).
    Remove { principal: String, role: RoleName },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum RoleName {
    Admin,
    Operator,
    Viewer,
}

impl From<RoleName> for deployer::Role {
    fn from(role: RoleName) -> deployer::Role {
        match role {
            RoleName::Admin => deployer::Role::Admin,
            RoleName::Operator => deployer::Role::Operator,
            RoleName::Viewer => deployer::Role::Viewer,
        }
    }
}

fn main() -> ExitCode {
    // A closed pipe ends the program as it ends other Unix tools, instead of a panic.
    // SAFETY: restores the default disposition of one signal before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let json = cli.json;
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            if json {
                println!("{}", failure.to_json());
            }
            eprintln!("error: {failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}

fn run(cli: Cli) -> Outcome<u8> {
    // Input that needs no network is checked before connecting.
    if let Command::Rollout(command) = &cli.command {
        command.check_input()?;
    }
    if let Command::Release(command) = &cli.command {
        command.check_input()?;
    }
    if let Command::Backup(command) = &cli.command {
        command.check_input()?;
    }
    let context = Context {
        connection: Connection::open(&cli.connect)?,
        json: cli.json,
    };
    match cli.command {
        Command::Release(command) => command.run(&context).map(|()| 0),
        Command::Fleet(command) => command.run(&context),
        Command::Rollout(command) => command.run(&context),
        Command::Whoami => whoami(&context).map(|()| 0),
        Command::Role(command) => role(&context, command).map(|()| 0),
        Command::Stats => stats(&context).map(|()| 0),
        Command::PrepareUpgrade { lift } => prepare_upgrade(&context, lift),
        Command::Backup(command) => command.run(&context),
    }
}

fn stats(context: &Context) -> Outcome<()> {
    let me = context.connection.me;
    let mut deployer = context.connection.deployer();
    let stats = deployer.storage_stats(me)?;
    let settings = deployer.upload_settings(me)?;
    let value = serde_json::json!({
        "storage": json::to_json(&stats),
        "upload_settings": json::to_json(&settings),
    });
    context.print(&value, || {
        format!(
            "releases       {} ({})\nopen uploads   {} ({} staged)\nchunks         {} ({})\nstable memory  {}\nupload ttl {}s, at most {} open uploads, {} staged, {} releases",
            stats.releases,
            text::bytes(stats.release_bytes),
            stats.open_uploads,
            text::bytes(stats.staged_bytes),
            stats.chunks,
            text::bytes(stats.chunk_bytes),
            text::bytes(stats.stable_memory_bytes),
            settings.upload_ttl_seconds,
            settings.max_open_uploads,
            text::bytes(settings.max_staged_bytes),
            settings.max_releases
        )
    });
    Ok(())
}

/// Exits 0 once ready (or lifted), 1 while the deployer is still settling.
fn prepare_upgrade(context: &Context, lift: bool) -> Outcome<u8> {
    let me = context.connection.me;
    let readiness = context
        .connection
        .deployer()
        .prepare_upgrade(me, deployer::PrepareUpgradeArg { hold: !lift })?;
    context.print(&json::to_json(&readiness), || {
        if lift {
            "hold lifted: rollouts go on".to_string()
        } else if readiness.ready {
            "ready: stop the deployer, install the new build (upgrade), start it".to_string()
        } else {
            format!(
                "holding; not ready yet: {} calls in flight, {} journal lines; run again",
                readiness.actions_in_flight, readiness.journal_lines
            )
        }
    });
    Ok(if lift || readiness.ready { 0 } else { 1 })
}

fn role(context: &Context, command: RoleCommand) -> Outcome<()> {
    let me = context.connection.me;
    let mut deployer = context.connection.deployer();
    match command {
        RoleCommand::Add { principal, role } => {
            let principal = connect::parse_principal(&principal, "principal")?;
            deployer.add_role(me, principal, role.into())?;
        }
        RoleCommand::Remove { principal, role } => {
            let principal = connect::parse_principal(&principal, "principal")?;
            deployer.remove_role(me, principal, role.into())?;
        }
        RoleCommand::List => {}
    }
    let roles = deployer.list_roles(me)?;
    context.print(&json::to_json(&roles), || {
        roles
            .iter()
            .map(|assignment| format!("{}  {:?}", assignment.principal, assignment.roles))
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

fn whoami(context: &Context) -> Outcome<()> {
    let me = context.connection.me;
    let mut deployer = context.connection.deployer();
    let roles = deployer.my_roles(me).map_err(Failure::from)?;
    let version = deployer.version(me).map_err(Failure::from)?;
    let value = serde_json::json!({
        "principal": me.to_text(),
        "deployer": context.connection.canister.to_text(),
        "roles": json::to_json(&roles),
        "version": json::to_json(&version),
    });
    context.print(&value, || {
        let roles: Vec<String> = roles.iter().map(|role| format!("{role:?}")).collect();
        format!(
            "principal {me}\ndeployer  {} (version {}, schema {})\nroles     {}",
            context.connection.canister,
            version.version,
            version.schema_version,
            if roles.is_empty() {
                "none".to_string()
            } else {
                roles.join(", ")
            }
        )
    });
    Ok(())
}
