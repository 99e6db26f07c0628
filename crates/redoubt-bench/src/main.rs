//! Redoubt's benchmarks. Each prints one JSON object per line on stdout and measures a baseline
//! in the same run, because the machines it runs on are noisy; ratios go to stderr.
//!
//! `cargo run --release -p redoubt-bench -- local-sync --n 100000 --d 1000`
//! `cargo run --release -p redoubt-bench -- snapshot --n 100000`

#![forbid(unsafe_code)]

mod local_sync;
mod snapshot;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Redoubt benchmarks, each beside a baseline measured in the same run.
#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Local sync of N records, D of them edited at the source, against iota_stronghold 2.1's
    /// `Client::sync_with` on the same data.
    LocalSync {
        /// Records.
        #[arg(long, default_value_t = 100_000)]
        n: usize,
        /// Records that differ.
        #[arg(long, default_value_t = 1_000)]
        d: usize,
        /// Skip Stronghold (it takes tens of seconds at n = 100 000).
        #[arg(long)]
        no_stronghold: bool,
    },
    /// Snapshot save and load of N records, against Stronghold's snapshot commit and load.
    Snapshot {
        /// Records.
        #[arg(long, default_value_t = 100_000)]
        n: usize,
        /// Skip Stronghold.
        #[arg(long)]
        no_stronghold: bool,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Bench::LocalSync {
            n,
            d,
            no_stronghold,
        } => local_sync::run(n, d, !no_stronghold),
        Bench::Snapshot { n, no_stronghold } => snapshot::run(n, !no_stronghold),
    }
}

/// A deterministic 64-byte value for record `i`, version `version`.
pub(crate) fn value(i: usize, version: u8) -> Vec<u8> {
    let mut out = [0u8; 64];
    let mut xof = blake3::Hasher::new();
    xof.update(&(i as u64).to_le_bytes());
    xof.update(&[version]);
    xof.finalize_xof().fill(&mut out);
    out.to_vec()
}

/// Vault path of record `i` (records spread over 10 vaults).
pub(crate) fn vault_path(i: usize) -> String {
    format!("vault-{}", i % 10)
}

/// Record path of record `i`.
pub(crate) fn record_path(i: usize) -> String {
    format!("record-{i}")
}

/// Writes records `range` (at `version`) into a Stronghold client, as the Redoubt side does.
pub(crate) fn stronghold_write(
    client: &iota_stronghold::Client,
    range: std::ops::Range<usize>,
    version: u8,
) -> Result<()> {
    for i in range {
        let loc = iota_stronghold::Location::generic(vault_path(i), record_path(i));
        client
            .vault(vault_path(i))
            .write_secret(loc, zeroize::Zeroizing::new(value(i, version)))?;
    }
    Ok(())
}

/// Milliseconds in a duration, as a float.
pub(crate) fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The median of some samples.
pub(crate) fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}
