//! Crash safety of the vault store: `redoubt put`, `redoubt passwd` and a merge
//! (`redoubt sync-file` from another vault) killed with SIGKILL at a random moment. After each
//! kill the vault opens, and holds the state before or the state after the command, never
//! anything between; a command that exited 0 before the kill (an acknowledged change) is never
//! lost; no file is left beside the vault.
//!
//! A store commits in place (redb, one durable transaction per change): there is no temporary
//! file to watch, so each kind is timed first (the median of three clean runs, start to exit),
//! and each kill lands at a random moment of that span: half of them anywhere in it (process
//! start, KDF, opening and checking the file, the commit), half from 75 % to 120 % of it,
//! around the commit and the exit.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail, ensure};
use redoubt_snapshot::{KdfParams, Snapshot};
use redoubt_store::{KdfLimits, Password, Store};
use redoubt_vault::{Instance, Location, NodeId, SecretValue, SyncConfig};

use crate::{
    Tally,
    redoubt::{PASSWORD, binary, command},
    rng::Rng,
};

/// What a killed command was doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Put,
    Passwd,
    Merge,
}

/// The outcomes seen, for the summary line.
#[derive(Default)]
struct Seen {
    old: usize,
    new: usize,
    /// Kills that came after the command had exited 0: its change was acknowledged.
    acked: usize,
    /// Acknowledged changes missing after the kill.
    lost: usize,
}

/// A vault of `n` records of 64 bytes, made with [`Store::create_from_snapshot`] in one commit.
fn make_vault(path: &Path, n: usize) -> Result<()> {
    let mut snapshot = Snapshot::generate()?;
    for i in 0..n {
        let loc = Location::new(format!("v{}", i % 16), format!("r{i}"))?;
        snapshot
            .instance
            .write(b"alice", &loc, SecretValue::new(vec![(i % 251) as u8; 64]))?;
    }
    Store::create_from_snapshot(
        path,
        &snapshot,
        &password(PASSWORD),
        KdfParams::insecure_fast(),
    )?;
    Ok(())
}

fn password(text: &str) -> Password {
    Password::new(text.as_bytes().to_vec())
}

/// Opens the vault at `path` with `pw` (it must open) and returns its live instance.
fn open(path: &Path, pw: &str) -> Result<Instance> {
    let store = Store::open(path, &password(pw), &KdfLimits::default())?;
    ensure!(
        store.damaged_rows().next().is_none(),
        "the vault opens with damaged record rows"
    );
    Ok(store.instance().clone())
}

/// The other vault of merge run `i`: 64 new records in each of two clients (so the merge is
/// one commit across clients), in a store of its own under `dir`.
fn make_source(dir: &Path, i: usize) -> Result<(PathBuf, Instance)> {
    let path = dir.join(format!("source-{i}.rdb"));
    let mut source = Instance::new(NodeId::from_bytes([0x5a; 16]));
    for client in [&b"alice"[..], b"bob"] {
        for r in 0..64 {
            let loc = Location::new(format!("merge{i}"), format!("r{r}"))?;
            source.write(
                client,
                &loc,
                SecretValue::new(format!("m{i}.{r}").into_bytes()),
            )?;
        }
    }
    let mut store = Store::create(&path, &password(PASSWORD), KdfParams::insecure_fast())?;
    store.sync_from(&source, &SyncConfig::full())?;
    Ok((path, store.instance().clone()))
}

/// One command of `kind` on `vault`, spawned: its stdin written and closed.
fn spawn(bin: &Path, vault: &Path, kind: Kind, arg: &Run) -> Result<Child> {
    let mut c: Command = command(bin);
    c.env("REDOUBT_VAULT", vault)
        .env("REDOUBT_PASSWORD", &arg.password)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    match kind {
        Kind::Put => {
            c.args(["put", "--force", "alice", "crash", &arg.record]);
        }
        Kind::Passwd => {
            c.arg("passwd")
                .env("REDOUBT_NEW_PASSWORD", &arg.new_password);
        }
        Kind::Merge => {
            c.arg("sync-file")
                .arg(&arg.source)
                .env("REDOUBT_OTHER_PASSWORD", PASSWORD);
        }
    }
    let mut child = c.spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(arg.value.as_bytes())?;
    }
    Ok(child)
}

/// What one run asks of its command.
struct Run {
    password: String,
    new_password: String,
    record: String,
    value: String,
    source: PathBuf,
}

/// Runs one command of `kind` to its end; returns how long it took.
fn timed(bin: &Path, vault: &Path, kind: Kind, run: &Run) -> Result<Duration> {
    let start = Instant::now();
    let mut child = spawn(bin, vault, kind, run)?;
    ensure!(child.wait()?.success(), "a clean {kind:?} failed");
    Ok(start.elapsed())
}

/// Checks the vault after a kill of `kind`: it opens with the old or the new password, holds
/// the old or the new state, and nothing is beside it. Returns whether it holds the new state,
/// and the password it opens with now.
fn check(
    dir: &Path,
    vault: &Path,
    kind: Kind,
    run: &Run,
    before: &Instance,
    expected: Option<&Instance>,
) -> Result<(bool, String)> {
    let leftovers: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "vault.rdb")
        .collect();
    ensure!(
        leftovers.is_empty(),
        "files left beside the vault: {leftovers:?}"
    );
    let (after, pw) = match kind {
        Kind::Passwd => match open(vault, &run.new_password) {
            Ok(after) => (after, run.new_password.clone()),
            Err(new_err) => {
                let after = open(vault, &run.password).with_context(|| {
                    format!("neither password opens the vault (the new one: {new_err:#})")
                })?;
                (after, run.password.clone())
            }
        },
        _ => (open(vault, &run.password)?, run.password.clone()),
    };
    let digest = after.state_digest();
    let new = match kind {
        // A password change rewrites no record: the records are the old ones either way.
        Kind::Passwd => {
            ensure!(
                digest == before.state_digest(),
                "passwd changed the records"
            );
            pw == run.new_password
        }
        Kind::Merge => {
            let expected = expected.context("a merge run has its expected state")?;
            if digest == expected.state_digest() {
                true
            } else if digest == before.state_digest() {
                false
            } else {
                bail!("the vault holds neither the state before the merge nor the one after")
            }
        }
        Kind::Put => {
            let loc = Location::new("crash", run.record.as_str())?;
            match after.read(b"alice", &loc) {
                None => {
                    ensure!(
                        digest == before.state_digest(),
                        "no new record, yet not the old state"
                    );
                    false
                }
                Some(value) => {
                    ensure!(
                        value.expose() == run.value.as_bytes(),
                        "a new state without the whole write"
                    );
                    ensure!(
                        after.len() == before.len() + 1,
                        "the put changed more than its record"
                    );
                    true
                }
            }
        }
    };
    Ok((new, pw))
}

pub(crate) fn run(quick: bool) -> Result<Tally> {
    // Today's 200 kills (10 in the quick run), now spread over three commands.
    let runs = if quick { 12 } else { 200 };
    let bin = binary()?;
    let dir = tempfile::tempdir()?;
    let sources = tempfile::tempdir()?;
    let vault = dir.path().join("vault.rdb");
    make_vault(&vault, if quick { 10_000 } else { 50_000 })?;

    // Calibrate each kind: the median of three clean runs.
    let mut current = PASSWORD.to_string();
    let mut spans = Vec::new();
    for kind in [Kind::Put, Kind::Passwd, Kind::Merge] {
        let mut times = Vec::new();
        for c in 0..3 {
            let source = if kind == Kind::Merge {
                make_source(sources.path(), usize::MAX - c)?.0
            } else {
                PathBuf::new()
            };
            let run = Run {
                password: current.clone(),
                new_password: format!("{PASSWORD} calibrated {c}"),
                record: format!("calibrate{c}"),
                value: "calibrate".into(),
                source,
            };
            times.push(timed(&bin, &vault, kind, &run)?);
            if kind == Kind::Passwd {
                current = run.new_password.clone();
            }
        }
        times.sort();
        spans.push((kind, times[1]));
    }
    eprintln!(
        "(crash-during-save: clean runs take put ~{} ms, passwd ~{} ms, sync-file ~{} ms; half \
         the kills land anywhere in that span, half from 75 % to 120 % of it)",
        spans[0].1.as_millis(),
        spans[1].1.as_millis(),
        spans[2].1.as_millis()
    );

    let mut rng = Rng::new("crash-during-save");
    let mut tally = Tally::new();
    let mut seen = [Seen::default(), Seen::default(), Seen::default()];
    for i in 0..runs {
        let k = i % 3;
        let (kind, span) = spans[k];
        let result = (|| {
            let before = open(&vault, &current)?;
            let (source, expected) = if kind == Kind::Merge {
                let (path, source) = make_source(sources.path(), i)?;
                let mut expected = before.clone();
                expected.sync_from(&source, &SyncConfig::full())?;
                (path, Some(expected))
            } else {
                (PathBuf::new(), None)
            };
            let run = Run {
                password: current.clone(),
                new_password: format!("{PASSWORD} {i}"),
                record: format!("r{i}"),
                value: format!("value {i}"),
                source,
            };
            let micros = span.as_micros() as u64;
            let at = if i % 2 == 0 {
                rng.below(micros)
            } else {
                micros * 3 / 4 + rng.below(micros * 45 / 100)
            };
            let mut child = spawn(&bin, &vault, kind, &run)?;
            std::thread::sleep(Duration::from_micros(at));
            // Exited already (and with 0): its change was acknowledged before the kill.
            let acked = match child.try_wait()? {
                Some(status) => {
                    ensure!(status.success(), "{kind:?} failed on its own ({status})");
                    true
                }
                None => {
                    let _ = child.kill(); // SIGKILL on Unix
                    // It may have exited between the look and the kill.
                    child.wait()?.success()
                }
            };
            let (new, pw) = check(dir.path(), &vault, kind, &run, &before, expected.as_ref())?;
            current = pw;
            let s = &mut seen[k];
            if acked && !new {
                s.lost += 1;
                bail!("an acknowledged {kind:?} was lost: the vault holds the state before it");
            }
            let _ = std::fs::remove_file(&run.source);
            if acked {
                s.acked += 1;
            }
            if new {
                s.new += 1;
            } else {
                s.old += 1;
            }
            Ok(())
        })();
        tally.record(result);
    }
    for (k, name) in ["put", "passwd", "sync-file"].iter().enumerate() {
        let s = &seen[k];
        eprintln!(
            "(crash-during-save: {name}: {} kills checked, {} left the old state, {} the new one; \
             {} came after an acknowledgement, {} acknowledged changes lost)",
            s.old + s.new,
            s.old,
            s.new,
            s.acked,
            s.lost
        );
    }
    Ok(tally)
}
