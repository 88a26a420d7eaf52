//! `deployer release`: upload (hash, open or resume, send the missing chunks in parallel,
//! commit), list, show, download (verified), bless or unbless for rollouts, and delete.

use std::collections::VecDeque;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use candid::Principal;
use clap::Subcommand;
use deployer::{
    ListReleasesArg, Release, ReleaseChunkArg, ReleaseSelector, ReleaseSummary,
    SetReleaseBlessingArg,
};
use deployer_client::{chunk_arg, open_arg, CallError, MIB};
use indicatif::{ProgressBar, ProgressStyle};
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

use crate::fail::{Failure, Outcome};
use crate::{json, text, Context};

#[derive(Subcommand)]
pub enum ReleaseCommand {
    /// Uploads a module (Wasm or gzipped Wasm) as a release; run it again after an
    /// interruption and it sends only the chunks the deployer is missing.
    Upload {
        file: PathBuf,
        #[arg(long)]
        name: String,
        #[arg(long)]
        version: String,
        #[arg(long)]
        notes: Option<String>,
        /// Chunks in flight at once.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=32))]
        parallel: u32,
    },
    /// The releases, newest first.
    List {
        /// At most this many.
        #[arg(long)]
        limit: Option<u32>,
    },
    /// One release: by SHA-256 (hex) or name@version.
    Show { release: String },
    /// Downloads a release's module and verifies its SHA-256.
    Download {
        release: String,
        #[arg(long, short = 'o')]
        output: PathBuf,
    },
    /// Deletes a release no rollout references.
    Delete { release: String },
    /// Blesses a release for rollouts (Admin): a deployer with require_blessed_releases rolls
    /// out blessed releases only.
    Bless { release: String },
    /// Withdraws a release's blessing (Admin); rollouts already started go on.
    Unbless { release: String },
}

impl ReleaseCommand {
    /// What can be refused without the network.
    pub fn check_input(&self) -> Outcome<()> {
        match self {
            ReleaseCommand::Upload { file, .. } => read_module(file).map(|_| ()),
            ReleaseCommand::Show { release }
            | ReleaseCommand::Download { release, .. }
            | ReleaseCommand::Delete { release }
            | ReleaseCommand::Bless { release }
            | ReleaseCommand::Unbless { release } => parse_release(release).map(|_| ()),
            ReleaseCommand::List { .. } => Ok(()),
        }
    }

    pub fn run(self, context: &Context) -> Outcome<()> {
        match self {
            ReleaseCommand::Upload {
                file,
                name,
                version,
                notes,
                parallel,
            } => upload(context, &file, &name, &version, notes, parallel as usize),
            ReleaseCommand::List { limit } => list(context, limit),
            ReleaseCommand::Show { release } => {
                let release = get(context, &parse_release(&release)?)?;
                context.print(&json::to_json(&release), || describe(&release));
                Ok(())
            }
            ReleaseCommand::Download { release, output } => download(context, &release, &output),
            ReleaseCommand::Delete { release } => {
                let release = get(context, &parse_release(&release)?)?;
                let me = context.connection.me;
                context
                    .connection
                    .deployer()
                    .delete_release(me, release.summary.sha256.clone())?;
                let summary = &release.summary;
                context.print(&json::to_json(summary), || {
                    format!(
                        "deleted {}@{} ({})",
                        summary.name,
                        summary.version,
                        hex::encode(&summary.sha256)
                    )
                });
                Ok(())
            }
            ReleaseCommand::Bless { release } => set_blessing(context, &release, true),
            ReleaseCommand::Unbless { release } => set_blessing(context, &release, false),
        }
    }
}

fn set_blessing(context: &Context, release: &str, blessed: bool) -> Outcome<()> {
    let selector = parse_release(release)?;
    let sha256 = get(context, &selector)?.summary.sha256;
    let me = context.connection.me;
    context
        .connection
        .deployer()
        .set_release_blessing(me, SetReleaseBlessingArg { sha256, blessed })?;
    let release = get(context, &selector)?;
    context.print(&json::to_json(&release), || describe(&release));
    Ok(())
}

/// `<64 hex digits>` or `name@version`.
pub fn parse_release(text: &str) -> Outcome<ReleaseSelector> {
    if let Some((name, version)) = text.split_once('@') {
        if !name.is_empty() && !version.is_empty() {
            return Ok(ReleaseSelector::NameVersion {
                name: name.to_string(),
                version: version.to_string(),
            });
        }
    }
    match hex::decode(text) {
        Ok(hash) if hash.len() == 32 => Ok(ReleaseSelector::Sha256(ByteBuf::from(hash))),
        _ => Err(Failure::input(format!(
            "release `{text}`: expected a SHA-256 (64 hex digits) or name@version"
        ))),
    }
}

pub fn get(context: &Context, selector: &ReleaseSelector) -> Outcome<Release> {
    let me = context.connection.me;
    Ok(context
        .connection
        .deployer()
        .get_release(me, selector.clone())?)
}

/// The file's bytes, refused unless they are Wasm or gzipped Wasm.
fn read_module(file: &Path) -> Outcome<Vec<u8>> {
    let module = std::fs::read(file)
        .map_err(|error| Failure::input(format!("{}: {error}", file.display())))?;
    let wasm = |bytes: &[u8]| bytes.starts_with(b"\0asm");
    let is_wasm = wasm(&module)
        || (module.starts_with(&[0x1f, 0x8b]) && {
            let mut head = [0u8; 4];
            flate2::read::GzDecoder::new(&module[..])
                .read_exact(&mut head)
                .is_ok()
                && wasm(&head)
        });
    if !is_wasm {
        return Err(Failure::input(format!(
            "{}: not a Wasm module (it starts neither with \\0asm nor with gzipped \\0asm)",
            file.display()
        )));
    }
    Ok(module)
}

/// What an upload did: the release, and how many chunks it sent (the others were received
/// before: a resumed upload).
pub struct Uploaded {
    pub release: Release,
    pub upload_id: u64,
    pub chunks: u32,
    pub chunks_sent: usize,
    pub elapsed: std::time::Duration,
}

fn upload(
    context: &Context,
    file: &Path,
    name: &str,
    version: &str,
    notes: Option<String>,
    parallel: usize,
) -> Outcome<()> {
    let module = read_module(file)?;
    let uploaded = upload_module(context, &module, name, version, notes, parallel)?;
    let Uploaded {
        release,
        upload_id,
        chunks,
        chunks_sent,
        elapsed,
    } = &uploaded;
    let mut value = json::to_json(&release.summary);
    value["upload"] = serde_json::json!({
        "upload_id": upload_id,
        "chunks": chunks,
        "chunks_sent": chunks_sent,
        "chunks_resumed": *chunks as usize - chunks_sent,
        "seconds": elapsed.as_secs_f64(),
    });
    context.print(&value, || {
        format!(
            "uploaded {} in {:.1}s ({chunks_sent} of {chunks} chunks sent)\n{}",
            text::bytes(module.len() as u64),
            elapsed.as_secs_f64(),
            describe(release)
        )
    });
    Ok(())
}

/// Opens the upload of `module` (or resumes the open upload of the same module), sends the
/// chunks the deployer is missing, `parallel` at a time, each on its own client, with a progress
/// bar on a terminal (a line per chunk on a pipe, nothing with `--json`), and commits.
pub fn upload_module(
    context: &Context,
    module: &[u8],
    name: &str,
    version: &str,
    notes: Option<String>,
    parallel: usize,
) -> Outcome<Uploaded> {
    let me = context.connection.me;
    let mut deployer = context.connection.deployer();
    let mut arg = open_arg(module, Some(MIB), name, version);
    arg.notes = notes;
    // Releases are content-addressed: a module released before is not sent again (a commit
    // would answer with that release anyway).
    let started = Instant::now();
    if let Ok(release) = deployer.get_release(me, ReleaseSelector::Sha256(arg.sha256.clone())) {
        if !context.json && (release.summary.name != name || release.summary.version != version) {
            eprintln!(
                "this module is already released as {}@{}",
                release.summary.name, release.summary.version
            );
        }
        return Ok(Uploaded {
            chunks: release.summary.chunk_count,
            release,
            upload_id: 0,
            chunks_sent: 0,
            elapsed: started.elapsed(),
        });
    }
    let status = deployer.upload_open(me, arg)?;
    let chunk_size = status.chunk_size as usize;
    let missing: VecDeque<u32> = status.missing_chunks.iter().copied().collect();
    let to_send = missing.len();
    let log = !context.json && !std::io::stderr().is_terminal();
    let bar = if context.json || log {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(status.size).with_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("a valid template"),
        )
    };
    bar.set_position(status.bytes_received);
    if !context.json && status.bytes_received > 0 {
        eprintln!(
            "resuming upload {}: {} of {} chunks already received, sending {to_send}",
            status.upload_id,
            status.chunk_count as usize - to_send,
            status.chunk_count
        );
    }
    let queue = Mutex::new(missing);
    let failure: Mutex<Option<CallError>> = Mutex::new(None);
    let sent = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..parallel.min(to_send) {
            scope.spawn(|| {
                let mut deployer = context.connection.deployer();
                loop {
                    let Some(index) = queue.lock().expect("queue").pop_front() else {
                        return;
                    };
                    let start = index as usize * chunk_size;
                    let bytes = &module[start..(start + chunk_size).min(module.len())];
                    let arg = chunk_arg(status.upload_id, index, bytes);
                    let mut attempt = 0;
                    let result = loop {
                        attempt += 1;
                        match deployer.upload_chunk(me, arg.clone()) {
                            Err(CallError::Transport(_)) if attempt < 3 => continue,
                            result => break result,
                        }
                    };
                    if let Err(error) = result {
                        queue.lock().expect("queue").clear();
                        failure.lock().expect("failure").get_or_insert(error);
                        return;
                    }
                    bar.inc(bytes.len() as u64);
                    let done = sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    if log {
                        eprintln!(
                            "sent chunk {index} ({done}/{to_send}, {})",
                            text::bytes(bar.position())
                        );
                    }
                }
            });
        }
    });
    if let Some(error) = failure.into_inner().expect("failure") {
        bar.abandon();
        return Err(error.into());
    }
    bar.finish_and_clear();
    let release = deployer.upload_commit(me, status.upload_id)?;
    Ok(Uploaded {
        release,
        upload_id: status.upload_id,
        chunks: status.chunk_count,
        chunks_sent: to_send,
        elapsed: started.elapsed(),
    })
}

fn list(context: &Context, limit: Option<u32>) -> Outcome<()> {
    let me = context.connection.me;
    let mut deployer = context.connection.deployer();
    let mut releases: Vec<ReleaseSummary> = Vec::new();
    let mut before = None;
    loop {
        let page = deployer.list_releases(
            me,
            ListReleasesArg {
                before,
                limit: Some(100),
            },
        )?;
        releases.extend(page.releases);
        if limit.is_some_and(|limit| releases.len() >= limit as usize) {
            releases.truncate(limit.unwrap_or_default() as usize);
            break;
        }
        match page.next_before {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    context.print(&json::to_json(&releases), || {
        let mut out = format!(
            "{:<24} {:<12} {:>10} {:<16} {}\n",
            "NAME", "VERSION", "SIZE", "SHA-256", "CREATED"
        );
        for release in &releases {
            out.push_str(&format!(
                "{:<24} {:<12} {:>10} {:<16} {}\n",
                release.name,
                release.version,
                text::bytes(release.size),
                text::short_hash(&release.sha256),
                text::time(release.created_at)
            ));
        }
        if releases.is_empty() {
            out.push_str("(no releases)\n");
        }
        out
    });
    Ok(())
}

pub fn describe(release: &Release) -> String {
    let summary = &release.summary;
    format!(
        "release  {}@{}\nsha256   {}\nsize     {} ({} uncompressed, {:?}), {} chunks\ncreated  {} by {}\nblessed  {}{}",
        summary.name,
        summary.version,
        hex::encode(&summary.sha256),
        text::bytes(summary.size),
        text::bytes(summary.uncompressed_size),
        summary.encoding,
        summary.chunk_count,
        text::time(summary.created_at),
        summary.created_by,
        release.blessing.map_or("no".to_string(), |blessing| format!(
            "{} by {}",
            text::time(blessing.blessed_at),
            blessing.blessed_by
        )),
        summary
            .notes
            .as_ref()
            .map(|notes| format!("\nnotes    {notes}"))
            .unwrap_or_default()
    )
}

fn download(context: &Context, release: &str, output: &Path) -> Outcome<()> {
    let release = get(context, &parse_release(release)?)?;
    let me = context.connection.me;
    let mut deployer = context.connection.deployer();
    let summary = &release.summary;
    let mut module = Vec::with_capacity(summary.size as usize);
    for index in 0..summary.chunk_count {
        let chunk = deployer.release_chunk(
            me,
            ReleaseChunkArg {
                sha256: summary.sha256.clone(),
                index,
            },
        )?;
        let expected = release.chunk_sha256.get(index as usize);
        if expected.map(|hash| hash.as_ref()) != Some(&Sha256::digest(&chunk)[..]) {
            return Err(Failure::Integrity(format!(
                "chunk {index} does not hash to the release's chunk hash"
            )));
        }
        module.extend_from_slice(&chunk);
    }
    let actual = Sha256::digest(&module);
    if actual[..] != summary.sha256[..] {
        return Err(Failure::Integrity(format!(
            "the module hashes to {}, not {}",
            hex::encode(actual),
            hex::encode(&summary.sha256)
        )));
    }
    let partial = output.with_extension("partial");
    std::fs::write(&partial, &module)
        .and_then(|()| std::fs::rename(&partial, output))
        .map_err(|error| Failure::input(format!("{}: {error}", output.display())))?;
    let value = serde_json::json!({
        "sha256": hex::encode(&summary.sha256),
        "size": module.len(),
        "file": output.display().to_string(),
        "verified": true,
    });
    context.print(&value, || {
        format!(
            "{}@{} written to {} ({}, SHA-256 verified)",
            summary.name,
            summary.version,
            output.display(),
            text::bytes(module.len() as u64)
        )
    });
    Ok(())
}

/// The releases by module hash, for naming what children run.
pub fn catalogue(context: &Context) -> Outcome<Vec<ReleaseSummary>> {
    let me: Principal = context.connection.me;
    let mut deployer = context.connection.deployer();
    let mut releases = Vec::new();
    let mut before = None;
    loop {
        let page = deployer.list_releases(
            me,
            ListReleasesArg {
                before,
                limit: Some(100),
            },
        )?;
        releases.extend(page.releases);
        match page.next_before {
            Some(next) => before = Some(next),
            None => return Ok(releases),
        }
    }
}
