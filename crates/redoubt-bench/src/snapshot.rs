//! Snapshot save and load of `n` records, beside Stronghold's snapshot commit and load.

use std::time::Instant;

use anyhow::{Result, ensure};
use iota_stronghold::{KeyProvider, Location as StrongholdLocation, SnapshotPath, Stronghold};
use redoubt_snapshot::{KdfParams, Password, SealKey, Snapshot, VaultFile};
use redoubt_vault::{Location, SecretValue};
use serde_json::json;
use zeroize::Zeroizing;

use crate::{median, ms, record_path, stronghold_write, value, vault_path};

pub(crate) fn run(n: usize, with_stronghold: bool) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("vault.rdb");
    let mut snapshot = Snapshot::generate()?;
    for i in 0..n {
        let loc = Location::new(vault_path(i), record_path(i))?;
        snapshot
            .instance
            .write(b"client", &loc, SecretValue::new(value(i, 0)))?;
    }
    let password = Password::new(b"benchmark password".to_vec());

    let start = Instant::now();
    let key = SealKey::generate(&password, KdfParams::default())?;
    let kdf = ms(start.elapsed());

    let file = VaultFile::lock_exclusive(&path)?;
    let mut saves = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        file.save(&snapshot, &key)?;
        saves.push(ms(start.elapsed()));
    }
    let bytes = std::fs::metadata(&path)?.len();
    let mut loads = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        let (loaded, _) = file.load(&password)?;
        loads.push(ms(start.elapsed()));
        ensure!(
            loaded.instance.len() == n,
            "loaded {} records",
            loaded.instance.len()
        );
    }
    let (save, load) = (median(saves), median(loads));
    emit("redoubt", "kdf", n, kdf, None);
    emit("redoubt", "save", n, save, Some(bytes));
    emit("redoubt", "load", n, load, Some(bytes));

    if with_stronghold {
        let (s_save, s_load, s_bytes) = stronghold(n, dir.path())?;
        emit("stronghold", "save", n, s_save, Some(s_bytes));
        emit("stronghold", "load", n, s_load, Some(s_bytes));
        eprintln!(
            "snapshot n={n}: save {:.1}x, load {:.1}x (ours includes {kdf:.0} ms of Argon2id; \
             Stronghold takes a raw key)",
            s_save / save,
            s_load / load
        );
    }
    Ok(())
}

/// Prints one result line.
fn emit(scheme: &str, op: &str, n: usize, ms: f64, bytes: Option<u64>) {
    let mut line = json!({"scheme": scheme, "op": op, "n": n, "ms": ms});
    if let Some(bytes) = bytes {
        line["bytes"] = json!(bytes);
    }
    println!("{line}");
}

fn stronghold(n: usize, dir: &std::path::Path) -> Result<(f64, f64, u64)> {
    let stronghold = Stronghold::default();
    let client = stronghold.create_client(b"client")?;
    stronghold_write(&client, 0..n, 0)?;
    let path = SnapshotPath::from_path(dir.join("stronghold.snapshot"));
    let key = || KeyProvider::try_from(Zeroizing::new(vec![7u8; 32]));
    let start = Instant::now();
    stronghold.commit_with_keyprovider(&path, &key()?)?;
    let save = ms(start.elapsed());
    let bytes = std::fs::metadata(path.as_path())?.len();
    let start = Instant::now();
    let fresh = Stronghold::default();
    let loaded = fresh.load_client_from_snapshot(b"client", &key()?, &path)?;
    let load = ms(start.elapsed());
    let last = StrongholdLocation::generic(vault_path(n - 1), record_path(n - 1));
    ensure!(loaded.record_exists(&last)?, "stronghold lost a record");
    Ok((save, load, bytes))
}
