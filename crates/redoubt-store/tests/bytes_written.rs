//! Bytes one `put` writes into a store of 10^4 and 10^5 records: a measurement, not an
//! assertion. Run it in release:
//!
//! ```text
//! cargo test --release -p redoubt-store --test bytes_written -- --ignored --nocapture
//! ```
//!
//! `STORE_BENCH_N=10000,100000` (the default) chooses the sizes. Figures per put: the file's
//! growth, and the process's `/proc/self/io` counters (`wchar`: bytes handed to `write`-like
//! calls; `write_bytes`: bytes sent to the block layer; both include fsync'd metadata).

use std::time::Instant;

use redoubt_store::{KdfParams, Password, Store};
use redoubt_vault::{Location, MergeBounds, MergePolicy, NodeId, Record, SecretValue, Stamp};

fn io_counters() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (field("wchar:"), field("write_bytes:"))
}

#[test]
#[ignore = "a measurement; run in release with --ignored --nocapture"]
fn bytes_written_by_one_put() {
    let sizes = std::env::var("STORE_BENCH_N").unwrap_or_else(|_| "10000,100000".into());
    // On disk (not tmpfs), so that write_bytes means something.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    for n in sizes.split(',').map(|s| s.trim().parse::<usize>().unwrap()) {
        let path = dir.path().join(format!("bench-{n}.redb"));
        let mut store = Store::create(
            &path,
            &Password::new(b"bench".to_vec()),
            KdfParams::insecure_fast(),
        )
        .unwrap();
        let start = Instant::now();
        let node = NodeId::from_bytes([7; 16]);
        let bounds = MergeBounds {
            now_ms: u64::MAX,
            max_ahead_ms: 0,
        };
        for chunk in (0..n).collect::<Vec<_>>().chunks(10_000) {
            let batch = chunk
                .iter()
                .map(|&k| {
                    let stamp = Stamp {
                        wall_ms: 1_700_000_000_000,
                        counter: k as u32,
                        node,
                    };
                    let l = Location::new("vault", format!("record-{k:08}")).unwrap();
                    Record::live(l, stamp, SecretValue::new(vec![(k % 251) as u8; 64])).unwrap()
                })
                .collect();
            store
                .merge_records(b"bench", batch, MergePolicy::Newest, &bounds)
                .unwrap();
        }
        let fill = start.elapsed();
        let file_size = || std::fs::metadata(&path).unwrap().len();
        let mut figures = Vec::new();
        for i in 0..5 {
            let l = Location::new("vault", format!("record-{:08}", (i * 7919) % n)).unwrap();
            let (size0, (wchar0, disk0)) = (file_size(), io_counters());
            let t = Instant::now();
            store
                .put(b"bench", &l, SecretValue::new(vec![0xab; 64]))
                .unwrap();
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            let (size1, (wchar1, disk1)) = (file_size(), io_counters());
            figures.push((size1 - size0, wchar1 - wchar0, disk1 - disk0, ms));
        }
        println!(
            "n={n} file={} bytes (filled in {:.1}s, batches of 10^4)",
            file_size(),
            fill.as_secs_f64()
        );
        for (growth, wchar, disk, ms) in figures {
            println!(
                "  put: file growth {growth} B, wchar {wchar} B, write_bytes {disk} B, {ms:.2} ms"
            );
        }
        let t = Instant::now();
        drop(store);
        let store = Store::open(
            &path,
            &Password::new(b"bench".to_vec()),
            &redoubt_store::KdfLimits::default(),
        )
        .unwrap();
        println!(
            "  open (integrity check, opening every record): {:.0} ms, {} records",
            t.elapsed().as_secs_f64() * 1000.0,
            store.len()
        );
    }
}
