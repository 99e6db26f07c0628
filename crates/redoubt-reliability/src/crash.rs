//! Crash safety: `redoubt put` killed with SIGKILL at a random moment of its snapshot save.
//! After each kill the snapshot opens, holds either the state before or the state after the
//! write, and at most the one fixed temporary file remains (the next save overwrites it).

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail, ensure};
use redoubt_snapshot::{KdfParams, Password, Snapshot, VaultFile};
use redoubt_vault::{Location, SecretValue};

use crate::{
    Tally,
    redoubt::{PASSWORD, binary, command},
    rng::Rng,
};

/// A vault of `n` records, so that a save takes long enough to be hit at many moments.
fn make_vault(path: &Path, n: usize) -> Result<()> {
    let mut snapshot = Snapshot::generate()?;
    for i in 0..n {
        let loc = Location::new(format!("v{}", i % 16), format!("r{i}"))?;
        snapshot
            .instance
            .write(b"alice", &loc, SecretValue::new(vec![(i % 251) as u8; 64]))?;
    }
    let file = VaultFile::lock_exclusive(path)?;
    file.create(
        &snapshot,
        &Password::new(PASSWORD.as_bytes().to_vec()),
        KdfParams::insecure_fast(),
    )?;
    Ok(())
}

/// The state digest of the snapshot at `path` (it must open).
fn digest(path: &Path) -> Result<[u8; 32]> {
    let file = VaultFile::lock_shared(path)?;
    let (snapshot, _) = file
        .load(&Password::new(PASSWORD.as_bytes().to_vec()))
        .context("the snapshot does not open")?;
    Ok(snapshot.instance.state_digest())
}

fn put(bin: &Path, vault: &Path, record: &str) -> Command {
    let mut c = command(bin);
    c.args(["put", "--force", "--allow-empty", "alice", "crash", record])
        .env("REDOUBT_VAULT", vault)
        .env("REDOUBT_PASSWORD", PASSWORD)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

/// Runs one `put` to its end; returns how long it took.
fn timed_put(bin: &Path, vault: &Path, record: &str) -> Result<Duration> {
    let start = Instant::now();
    let mut child = put(bin, vault, record).spawn()?;
    drop(child.stdin.take());
    ensure!(child.wait()?.success(), "a clean put failed");
    Ok(start.elapsed())
}

/// How long one save of the vault at `path` takes here (seal, write, fsync, rename): the
/// window the kills aim at, at the end of a put.
fn timed_save(path: &Path) -> Result<Duration> {
    let file = VaultFile::lock_exclusive(path)?;
    let (snapshot, key) = file.load(&Password::new(PASSWORD.as_bytes().to_vec()))?;
    let start = Instant::now();
    file.save(&snapshot, &key)?;
    Ok(start.elapsed())
}

pub(crate) fn run(quick: bool) -> Result<Tally> {
    let runs = if quick { 10 } else { 200 };
    let bin = binary()?;
    let dir = tempfile::tempdir()?;
    let vault = dir.path().join("vault.rdb");
    make_vault(&vault, if quick { 10_000 } else { 50_000 })?;
    // Calibrate: a put is load, write, save; the save is its last stretch.
    let save = timed_save(&vault)?.max(Duration::from_millis(1));
    let whole = timed_put(&bin, &vault, "calibrate")?;
    let load = whole.saturating_sub(save);
    eprintln!(
        "(crash-during-save: a put takes ~{} ms, of which the save ~{} ms; each kill lands a \
         random time after the save's temporary file appears, up to 120 % of a save)",
        whole.as_millis(),
        save.as_millis()
    );
    let mut rng = Rng::new("crash-during-save");
    let mut tally = Tally::new();
    let (mut old_seen, mut new_seen) = (0, 0);
    for i in 0..runs {
        let result = (|| {
            let before = digest(&vault)?;
            // The save starts when its temporary file appears; the kill lands a random time
            // into it (up to 20 % past its usual length, so some kills follow the rename).
            // Temporary files are `vault.rdb.tmp.<random>`: clear the last kill's leftover (a
            // writer taking the lock would too), then watch for the new one.
            let temps = || -> std::io::Result<Vec<std::path::PathBuf>> {
                Ok(std::fs::read_dir(dir.path())?
                    .filter_map(|e| e.ok())
                    .filter(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .starts_with("vault.rdb.tmp.")
                    })
                    .map(|e| e.path())
                    .collect())
            };
            for leftover in temps()? {
                let _ = std::fs::remove_file(leftover);
            }
            let into = Duration::from_micros(rng.below(save.as_micros() as u64 * 12 / 10));
            let mut child = put(&bin, &vault, &format!("r{i}")).spawn()?;
            if let Some(mut stdin) = child.stdin.take() {
                use std::io::Write;
                stdin.write_all(format!("value {i}").as_bytes())?;
            }
            let deadline = Instant::now() + load * 4 + Duration::from_secs(2);
            while temps()?.is_empty() && Instant::now() < deadline && child.try_wait()?.is_none() {
                std::thread::sleep(Duration::from_micros(50));
            }
            std::thread::sleep(into);
            let _ = child.kill(); // SIGKILL on Unix
            let status = child.wait()?;
            let after = digest(&vault)?;
            let leftovers: Vec<_> = std::fs::read_dir(dir.path())?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != "vault.rdb" && n != "vault.rdb.lock")
                .collect();
            // A kill during the save may leave its one temporary file, never anything else.
            if leftovers.len() > 1 || leftovers.iter().any(|n| !n.starts_with("vault.rdb.tmp.")) {
                bail!("files left behind: {leftovers:?}");
            }
            if after == before {
                old_seen += 1;
            } else {
                // Not the old state: it must be exactly the new one, which a clean run of the
                // same put on the old state would make; check the value landed whole.
                let file = VaultFile::lock_shared(&vault)?;
                let (s, _) = file.load(&Password::new(PASSWORD.as_bytes().to_vec()))?;
                let loc = Location::new("crash", format!("r{i}"))?;
                let value = s.instance.read(b"alice", &loc).map(|v| v.expose().to_vec());
                ensure!(
                    value.as_deref() == Some(format!("value {i}").as_bytes()),
                    "a new state without the whole write (exit {status})"
                );
                new_seen += 1;
            }
            Ok(())
        })();
        tally.record(result);
    }
    eprintln!("(crash-during-save: {old_seen} kills left the old state, {new_seen} the new one)");
    Ok(tally)
}
