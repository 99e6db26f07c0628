//! Local sync: the target imported the source earlier; the source then edited `d` records; the
//! timed step is the target pulling from the source again.

use std::time::Instant;

use anyhow::{Result, ensure};
use iota_stronghold::{
    Location as StrongholdLocation, Stronghold,
    sync::{MergePolicy as StrongholdPolicy, SyncClientsConfig},
};
use redoubt_vault::{Instance, Location, NodeId, SecretValue, SyncConfig};
use serde_json::json;

use crate::{median, ms, record_path, stronghold_write, value, vault_path};

pub(crate) fn run(n: usize, d: usize, with_stronghold: bool) -> Result<()> {
    ensure!(d <= n, "--d must not exceed --n");
    let ours = redoubt(n, d)?;
    println!(
        "{}",
        json!({"scheme": "redoubt", "n": n, "d": d, "ms": ours})
    );
    if with_stronghold {
        let theirs = stronghold(n, d)?;
        println!(
            "{}",
            json!({"scheme": "stronghold", "n": n, "d": d, "ms": theirs})
        );
        eprintln!(
            "local-sync n={n} d={d}: redoubt is {:.0}x faster than stronghold",
            theirs / ours
        );
    }
    Ok(())
}

/// Median of 5 timed pulls, each into a fresh copy of the stale target.
fn redoubt(n: usize, d: usize) -> Result<f64> {
    let mut source = Instance::new(NodeId::from_bytes([1; 16]));
    let locations: Vec<Location> = (0..n)
        .map(|i| Location::new(vault_path(i), record_path(i)))
        .collect::<Result<_, _>>()?;
    for (i, loc) in locations.iter().enumerate() {
        source.write(b"client", loc, SecretValue::new(value(i, 0)))?;
    }
    let mut stale = Instance::new(NodeId::from_bytes([2; 16]));
    stale.sync_from(&source, &SyncConfig::full())?;
    for (i, loc) in locations.iter().enumerate().take(d) {
        source.write(b"client", loc, SecretValue::new(value(i, 1)))?;
    }
    let mut samples = Vec::new();
    for _ in 0..5 {
        let mut target = stale.clone();
        let start = Instant::now();
        let report = target.sync_from(&source, &SyncConfig::full())?;
        samples.push(ms(start.elapsed()));
        ensure!(
            report.updated == d as u64,
            "expected {d} updates, got {report}"
        );
        ensure!(
            target.state_digest() == source.state_digest(),
            "did not converge"
        );
    }
    Ok(median(samples))
}

/// One timed `sync_with` (Stronghold's writes and sync take tens of seconds at n = 100 000).
fn stronghold(n: usize, d: usize) -> Result<f64> {
    let stronghold = Stronghold::default();
    let source = stronghold.create_client(b"source")?;
    let target = stronghold.create_client(b"target")?;
    stronghold_write(&source, 0..n, 0)?;
    target.sync_with(&source, SyncClientsConfig::new(StrongholdPolicy::Replace))?;
    stronghold_write(&source, 0..d, 1)?;
    let start = Instant::now();
    target.sync_with(&source, SyncClientsConfig::new(StrongholdPolicy::Replace))?;
    let elapsed = ms(start.elapsed());
    let last = StrongholdLocation::generic(vault_path(n - 1), record_path(n - 1));
    ensure!(
        target.record_exists(&last)?,
        "stronghold target lacks a record"
    );
    Ok(elapsed)
}
