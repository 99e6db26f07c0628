//! Sync through shared storage (`redoubt-remote`) on a folder, every request counted by the
//! crate's counting wrapper: bytes uploaded and requests of a sync carrying d changes into a
//! remote holding n records, a sync with nothing new, and the time a device behind by 10 000
//! changes takes to catch up. The baseline, measured in the same run, is the source design's
//! (upload the whole database file at every change): the writer's vault file size.

use std::{sync::Arc, time::Instant};

use anyhow::{Context, Result};
use redoubt_node::store::{KdfLimits, KdfParams, Password, Store};
use redoubt_remote::{
    Backend, Remote, SyncReport,
    faults::{Counts, wrap},
};
use redoubt_vault::{Location, SecretValue};
use serde_json::{Value, json};

use crate::{ms, record_path, value, vault_path};

const CLIENT: &[u8] = b"bench";
const PASSPHRASE: &[u8] = b"bench recovery passphrase";

/// One device: its vault (in a temporary directory), its remote, its request counters.
struct Device {
    store: Store,
    remote: Remote,
    counts: Arc<Counts>,
    _dir: tempfile::TempDir,
}

impl Device {
    /// `store` on the folder remote at `url`, through the counting wrapper: setting it up
    /// (`add`) or joining it.
    async fn on(mut store: Store, dir: tempfile::TempDir, url: &str, add: bool) -> Result<Self> {
        let (backend, counts) = wrap(Backend::from_url(url).context("the folder backend")?);
        let remote = if add {
            Remote::add(
                &mut store,
                "bench",
                url,
                backend,
                None,
                PASSPHRASE,
                KdfParams::insecure_fast(),
            )
            .await?
        } else {
            Remote::join(
                &mut store,
                "bench",
                url,
                backend,
                None,
                PASSPHRASE,
                &KdfLimits::default(),
            )
            .await?
        };
        Ok(Self {
            store,
            remote,
            counts,
            _dir: dir,
        })
    }

    async fn sync(&mut self) -> Result<SyncReport> {
        let report = self.remote.sync(&mut self.store).await?;
        anyhow::ensure!(report.failed.is_empty(), "refused: {:?}", report.failed);
        Ok(report)
    }

    /// Requests `{get, put, list, other}` and bytes `{put, got}` since the last call.
    fn taken(&self) -> (Value, u64, u64) {
        let [get, put, list, other] = self.counts.take();
        let [up, down] = self.counts.take_bytes();
        (
            json!({"get": get, "put": put, "list": list, "other": other}),
            up,
            down,
        )
    }

    fn file_bytes(&self) -> Result<u64> {
        Ok(std::fs::metadata(self.store.path())?.len())
    }
}

fn loc(i: usize) -> Result<Location> {
    Ok(Location::new(vault_path(i), record_path(i))?)
}

/// A vault of `n` records of 64-byte values (migrated from a snapshot, as one big base).
fn seeded(n: usize) -> Result<(Store, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let mut snapshot = redoubt_snapshot::Snapshot::generate()?;
    for i in 0..n {
        snapshot
            .instance
            .write(CLIENT, &loc(i)?, SecretValue::new(value(i, 0)))?;
    }
    let store = Store::create_from_snapshot(
        &dir.path().join("vault.redb"),
        &snapshot,
        &Password::new(b"bench".to_vec()),
        KdfParams::insecure_fast(),
    )?;
    Ok((store, dir))
}

fn empty() -> Result<(Store, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let store = Store::create(
        &dir.path().join("vault.redb"),
        &Password::new(b"bench".to_vec()),
        KdfParams::insecure_fast(),
    )?;
    Ok((store, dir))
}

fn line(v: Value) {
    println!("{v}");
}

/// `redoubt-bench shared-storage`: for each n, seeds a writer, joins a reader, then measures.
pub(crate) fn run(ns: &[usize], ds: &[usize], catch_up: usize) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    for &n in ns {
        runtime.block_on(one(n, ds, catch_up))?;
    }
    Ok(())
}

async fn one(n: usize, ds: &[usize], catch_up: usize) -> Result<()> {
    let shared = tempfile::tempdir()?;
    let url = shared.path().join("remote").display().to_string();

    // Seeding: one base (in parts of 8 MiB) of n records.
    let started = Instant::now();
    let (store, dir) = seeded(n)?;
    let seed_ms = ms(started.elapsed());
    let mut writer = Device::on(store, dir, &url, true).await?;
    writer.taken();
    let started = Instant::now();
    let report = writer.sync().await?;
    let upload_ms = ms(started.elapsed());
    let (requests, up, _) = writer.taken();
    line(
        json!({"bench": "shared-storage", "n": n, "op": "seed", "vault_ms": seed_ms,
        "upload_ms": upload_ms, "segments": report.uploaded.len(), "bytes_uploaded": up,
        "requests": requests}),
    );

    let (store, dir) = empty()?;
    let started = Instant::now();
    let mut reader = Device::on(store, dir, &url, false).await?;
    let report = reader.sync().await?;
    let join_ms = ms(started.elapsed());
    let (requests, _, down) = reader.taken();
    anyhow::ensure!(
        report.merge.added == n as u64,
        "the reader imported everything"
    );
    line(
        json!({"bench": "shared-storage", "n": n, "op": "join", "ms": join_ms,
        "bytes_fetched": down, "requests": requests}),
    );

    let mut version = 1u8;
    for &d in ds {
        for i in 0..d {
            writer.store.put(
                CLIENT,
                &loc(i % n.max(1))?,
                SecretValue::new(value(i, version)),
            )?;
        }
        version = version.wrapping_add(1);
        let whole = writer.file_bytes()?;
        writer.taken();
        let started = Instant::now();
        let report = writer.sync().await?;
        let up_ms = ms(started.elapsed());
        let (requests, up, _) = writer.taken();
        line(
            json!({"bench": "shared-storage", "n": n, "d": d, "op": "upload", "ms": up_ms,
            "bytes_uploaded": up, "segment_bytes": report.uploaded.iter().map(|u| u.bytes).sum::<usize>(),
            "requests": requests, "baseline_whole_database_bytes": whole,
            "ratio_baseline_over_ours": whole as f64 / up.max(1) as f64}),
        );
        let started = Instant::now();
        let report = reader.sync().await?;
        let down_ms = ms(started.elapsed());
        let (requests, _, down) = reader.taken();
        anyhow::ensure!(
            report.merge.updated as usize == d,
            "the reader took the d changes"
        );
        line(
            json!({"bench": "shared-storage", "n": n, "d": d, "op": "download", "ms": down_ms,
            "bytes_fetched": down, "requests": requests}),
        );
    }

    let started = Instant::now();
    let report = reader.sync().await?;
    let idle_ms = ms(started.elapsed());
    let (requests, up, down) = reader.taken();
    anyhow::ensure!(report.segments_fetched == 0 && report.uploaded.is_empty());
    line(
        json!({"bench": "shared-storage", "n": n, "op": "nothing-new", "ms": idle_ms,
        "bytes_uploaded": up, "bytes_fetched": down, "requests": requests}),
    );

    // Catching up: the reader is offline while the writer syncs after each of `catch_up`
    // changes (one segment each; its compaction runs as it would), then while the writer
    // carries `catch_up` changes in one sync.
    for each_synced in [true, false] {
        let started = Instant::now();
        let mut bases = 0;
        for i in 0..catch_up {
            writer.store.put(
                CLIENT,
                &loc(i % n.max(1))?,
                SecretValue::new(value(i, version)),
            )?;
            if each_synced {
                bases += writer
                    .sync()
                    .await?
                    .uploaded
                    .iter()
                    .filter(|u| u.kind == redoubt_remote::format::SegmentKind::Base)
                    .count();
            }
        }
        if !each_synced {
            writer.sync().await?;
        }
        version = version.wrapping_add(1);
        let write_ms = ms(started.elapsed());
        let (w_requests, w_up, _) = writer.taken();
        let started = Instant::now();
        let report = reader.sync().await?;
        let catch_ms = ms(started.elapsed());
        let (requests, _, down) = reader.taken();
        anyhow::ensure!(
            reader.store.state_digest()? == writer.store.state_digest()?,
            "the reader caught up"
        );
        line(
            json!({"bench": "shared-storage", "n": n, "changes": catch_up,
            "op": if each_synced { "catch-up-each-synced" } else { "catch-up-one-sync" },
            "writer_ms": write_ms, "writer_bytes_uploaded": w_up, "writer_requests": w_requests,
            "writer_bases": bases, "ms": catch_ms, "segments_fetched": report.segments_fetched,
            "bytes_fetched": down, "requests": requests}),
        );
    }
    Ok(())
}
