//! Crash safety of the vault store: `redoubt put`, `redoubt passwd`, `redoubt passwd --rekey`
//! (a new store renamed over the vault) and a merge (`redoubt sync-file` from another vault)
//! killed with SIGKILL. After each kill the vault opens, with the old or the new password, and
//! holds the state before or the state after the command, never anything between (a put
//! changes its one record and nothing else); a command that exited 0 before the kill (an
//! acknowledged change) is never lost; no file is left beside the vault but a killed rekey's
//! `vault.rdb.rekeying`, which one clean rekey at the end must remove.
//!
//! A store commits in place (redb, one durable transaction per change): there is no temporary
//! file to watch, so the commit is found in time first. Each kind runs clean three times
//! (start to exit, the median kept) and once under `strace -f -ttt -e
//! trace=execve,pwrite64,fsync,fdatasync,exit_group`: the commit's first page write to its
//! exit is the window where a kill can leave either state (the open's header writes come
//! before it, the close's after). A quarter of the kills land anywhere in the clean run; the
//! rest in that window (ending at the clean run's exit, widened by a quarter before and a tenth
//! after, and by the spread of the clean runs' times on each side). The full run requires, per kind, at least one kill that left the old state and one
//! that left the new state without an acknowledgement (killed after the commit, before the
//! exit was seen), so a run whose kills all missed the commit fails instead of passing.
//!
//! What this proves and what it cannot: a SIGKILL stops the process but not the kernel, so
//! every write the process made reaches the file through the page cache even without an
//! fsync. This part shows the commit is atomic against a process dying at any point of it
//! (redb's commit protocol, the CLI's single transaction) and that an acknowledgement comes
//! after the commit; it cannot show a missing or misplaced fsync, which only a power cut (or
//! a block-device fault injector) would.

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
    /// `passwd --rekey`: a new store renamed over the vault.
    Rekey,
    Merge,
}

/// Every kind, in the order the runs rotate through them.
const KINDS: [Kind; 4] = [Kind::Put, Kind::Passwd, Kind::Rekey, Kind::Merge];
/// What a rekey killed before its rename may leave; the next rekey removes it.
const REKEYING: &str = "vault.rdb.rekeying";

/// The outcomes seen, for the summary line.
#[derive(Default)]
struct Seen {
    old: usize,
    new: usize,
    /// Kills that left the new state before the command's exit 0 was seen: inside the commit
    /// (after its durable point) or between it and the exit.
    new_unacked: usize,
    /// Kills aimed at the commit's window (the rest land anywhere in the run).
    aimed: usize,
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

/// Opens the vault at `path` with `pw` (it must open), checks that every record row opens
/// and that the kept sketch state agrees with the records, and returns its whole state.
fn open(path: &Path, pw: &str) -> Result<Instance> {
    let mut store = Store::open(path, &password(pw), &KdfLimits::default())?;
    ensure!(store.verify()? == 0, "the vault holds damaged record rows");
    ensure!(
        store.sketches_match_records()?,
        "the kept sketch state disagrees with the records"
    );
    Ok(store.load_instance()?)
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
    Ok((path, store.load_instance()?))
}

/// One command of `kind` on `vault`, spawned: its stdin written and closed.
fn spawn(bin: &Path, vault: &Path, kind: Kind, arg: &Run) -> Result<Child> {
    spawn_with(command(bin), vault, kind, arg)
}

/// [`spawn`] through `c` (the binary itself, or a tracer running it).
fn spawn_with(mut c: Command, vault: &Path, kind: Kind, arg: &Run) -> Result<Child> {
    c.env("REDOUBT_INSECURE_TEST_KDF", "1")
        .env_remove("RUST_LOG")
        .env("REDOUBT_VAULT", vault)
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
        Kind::Rekey => {
            c.args(["passwd", "--rekey"])
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
        .filter(|n| n != "vault.rdb" && n != REKEYING)
        .collect();
    ensure!(
        leftovers.is_empty(),
        "files left beside the vault: {leftovers:?}"
    );
    let (after, pw) = match kind {
        Kind::Passwd | Kind::Rekey => match open(vault, &run.new_password) {
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
        // A password change (rewrap or rekey) changes no record: the same ones either way.
        Kind::Passwd | Kind::Rekey => {
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
                    ensure!(
                        versions(&after, Some(&loc)) == versions(before, None),
                        "the put changed another record"
                    );
                    true
                }
            }
        }
    };
    Ok((new, pw))
}

/// Every version `instance` holds but the one at `except` of client `alice`: client path,
/// vault path, record path, stamp and hash.
type Version = (Vec<u8>, Vec<u8>, Vec<u8>, String, [u8; 32]);
fn versions(instance: &Instance, except: Option<&Location>) -> Vec<Version> {
    let mut out = Vec::with_capacity(instance.len());
    for (id, client) in instance.clients() {
        for r in instance.records(id) {
            let loc = r.location();
            if client == b"alice" && except.is_some_and(|e| e.ids() == loc.ids()) {
                continue;
            }
            out.push((
                client.to_vec(),
                loc.vault_path().to_vec(),
                loc.record_path().to_vec(),
                format!("{:?}", r.stamp()),
                *r.hash(),
            ));
        }
    }
    out.sort();
    out
}

/// Where a kill of one kind is aimed, from process start: the clean run's exit, and the
/// window (its start, its length) where a kill can leave either state.
#[derive(Clone, Copy, Debug)]
struct Aim {
    exit: Duration,
    window: Duration,
    /// How far the three clean runs' times spread (the slowest less the fastest): how far a
    /// run's commit may fall from where the median puts it.
    spread: Duration,
    /// Whether strace measured the window (else it is a guess: a tenth of the run).
    traced: bool,
}

impl Aim {
    /// A kill time: `anywhere` in the whole clean run, or in the window widened by a quarter
    /// before and a tenth after, and by the clean runs' spread on each side.
    fn pick(&self, rng: &mut Rng, anywhere: bool) -> Duration {
        let exit = self.exit.as_micros() as u64;
        if anywhere {
            return Duration::from_micros(rng.below(exit.max(1)));
        }
        let w = (self.window.as_micros() as u64).max(1);
        let spread = self.spread.as_micros() as u64;
        let from = exit.saturating_sub(w + w / 4 + spread);
        let to = exit + w / 10 + spread;
        Duration::from_micros(from + rng.below(to - from + 1))
    }
}

/// The length of the commit-to-exit window of one run of `kind`, under strace: from its
/// first page write (a `pwrite64` at a non-zero offset: the open writes only the header, at
/// offset 0), or for a rekey from its rename over the vault (its new file is written before,
/// a kill there leaves the old vault), to `exit_group`. `None` if strace is not installed or
/// the trace lacks them.
fn traced_window(bin: &Path, vault: &Path, kind: Kind, run: &Run, out: &Path) -> Option<Duration> {
    let strace = which("strace")?;
    let mut c = Command::new(strace);
    c.args(["-f", "-qq", "-ttt", "-o"]).arg(out).args([
        "-e",
        "trace=execve,pwrite64,fsync,fdatasync,rename,renameat,renameat2,exit_group",
        "--",
    ]);
    c.arg(bin);
    let mut child = spawn_with(c, vault, kind, run).ok()?;
    if !child.wait().ok()?.success() {
        return None;
    }
    let text = std::fs::read_to_string(out).ok()?;
    let _ = std::fs::remove_file(out);
    let mut first_page = None;
    let mut renamed = None;
    let mut exit = None;
    for line in text.lines() {
        // `PID TIME CALL`, the pid padded with spaces to a width.
        let Some((_pid, rest)) = line.trim_start().split_once(' ') else {
            continue;
        };
        let Some((t, call)) = rest.trim_start().split_once(' ') else {
            continue;
        };
        let Ok(t) = t.parse::<f64>() else { continue };
        if call.starts_with("pwrite64(") && first_page.is_none() && !call.contains(", 0) =") {
            first_page = Some(t);
        } else if call.starts_with("rename") {
            // A rekey commits by renaming its new store over the vault: that is its point.
            renamed = Some(t);
        } else if call.starts_with("exit_group(") {
            exit = Some(t);
        }
    }
    let from = if kind == Kind::Rekey {
        renamed?
    } else {
        first_page?
    };
    let to = exit?;
    (to > from).then(|| Duration::from_secs_f64(to - from))
}

/// `name` on `PATH`.
fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

pub(crate) fn run(quick: bool) -> Result<Tally> {
    // Today's 200 kills (10 in the quick run), now spread over three commands.
    let runs = if quick { 12 } else { 200 };
    let bin = binary()?;
    let dir = tempfile::tempdir()?;
    let sources = tempfile::tempdir()?;
    let vault = dir.path().join("vault.rdb");
    make_vault(&vault, if quick { 10_000 } else { 50_000 })?;

    // Calibrate each kind: the median of three clean runs, and one under strace for the
    // commit's window.
    let mut current = PASSWORD.to_string();
    let mut aims = Vec::new();
    for kind in KINDS {
        let mut times = Vec::new();
        let mut window = None;
        for c in 0..4 {
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
            if c < 3 {
                times.push(timed(&bin, &vault, kind, &run)?);
            } else {
                let out = sources.path().join("trace");
                window = traced_window(&bin, &vault, kind, &run, &out);
                if window.is_none() && !quick {
                    bail!(
                        "the commit of {kind:?} could not be timed under strace (install \
                         strace; the full run needs it to aim its kills)"
                    );
                }
                if window.is_none() {
                    // Not traced (no strace): make sure the state moved as a clean run's.
                    let _ = timed(&bin, &vault, kind, &run);
                }
            }
            let _ = std::fs::remove_file(&run.source);
            if matches!(kind, Kind::Passwd | Kind::Rekey) {
                // The traced run may have failed; the vault says which password holds.
                if open(&vault, &run.new_password).is_ok() {
                    current = run.new_password.clone();
                }
            }
        }
        times.sort();
        let exit = times[1];
        aims.push((
            kind,
            Aim {
                exit,
                window: window.unwrap_or(exit / 10).min(exit),
                spread: times[2] - times[0],
                traced: window.is_some(),
            },
        ));
    }
    for (kind, aim) in &aims {
        eprintln!(
            "(crash-during-save: {kind:?}: a clean run takes ~{} µs (±{} µs); its commit-to-exit \
             window {} ~{} µs; a quarter of the kills land anywhere in the run, the rest in the \
             window)",
            aim.exit.as_micros(),
            aim.spread.as_micros(),
            if aim.traced {
                "(strace) is"
            } else {
                "(no strace: guessed)"
            },
            aim.window.as_micros()
        );
    }

    let mut rng = Rng::new("crash-during-save");
    let mut tally = Tally::new();
    let mut seen: [Seen; KINDS.len()] = Default::default();
    for i in 0..runs {
        let k = i % KINDS.len();
        let (kind, aim) = aims[k];
        let anywhere = (i / KINDS.len()).is_multiple_of(4);
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
            let at = aim.pick(&mut rng, anywhere);
            let mut child = spawn(&bin, &vault, kind, &run)?;
            std::thread::sleep(at);
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
            if !anywhere {
                s.aimed += 1;
            }
            if new {
                s.new += 1;
                if !acked {
                    s.new_unacked += 1;
                }
            } else {
                s.old += 1;
            }
            Ok(())
        })();
        tally.record(result);
    }
    // A rekey killed before its rename may have left its new file; the next rekey removes it
    // before anything else, so one clean rekey now must leave nothing beside the vault.
    tally.record((|| {
        let run = Run {
            password: current.clone(),
            new_password: format!("{PASSWORD} final"),
            record: String::new(),
            value: String::new(),
            source: PathBuf::new(),
        };
        timed(&bin, &vault, Kind::Rekey, &run)?;
        ensure!(
            !dir.path().join(REKEYING).exists(),
            "a clean rekey left {REKEYING} behind"
        );
        open(&vault, &run.new_password).map(|_| ())
    })());
    for (k, name) in ["put", "passwd", "passwd --rekey", "sync-file"]
        .iter()
        .enumerate()
    {
        let s = &seen[k];
        eprintln!(
            "(crash-during-save: {name}: {} kills checked ({} aimed at the commit), {} left the \
             old state, {} the new one ({} of them before the exit 0 was seen); {} came after \
             an acknowledgement, {} acknowledged changes lost)",
            s.old + s.new,
            s.aimed,
            s.old,
            s.new,
            s.new_unacked,
            s.acked,
            s.lost
        );
        // The full run must have hit both sides of the commit, or it proved little.
        if !quick {
            tally.record(if s.old == 0 || s.new_unacked == 0 {
                Err(anyhow::anyhow!(
                    "{name}: no kill left the {} (the kills missed the commit)",
                    if s.old == 0 {
                        "old state"
                    } else {
                        "new state before the exit"
                    }
                ))
            } else {
                Ok(())
            });
        }
    }
    Ok(tally)
}
