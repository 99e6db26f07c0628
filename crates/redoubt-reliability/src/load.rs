//! Load: one node serves 100 concurrent sync sessions from 100 other nodes on loopback; every
//! session must bring the whole client. Prints the wall time, the p50 and p99 session latency
//! and the process's peak memory (all 101 nodes live in this process).

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use redoubt_protocol::Mode;
use redoubt_tests::TestNode;

use crate::Tally;

const RECORDS: usize = 1_000;

/// Peak resident memory of this process, from /proc (Linux), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

pub(crate) fn run(quick: bool) -> Result<Tally> {
    let clients = if quick { 20 } else { 100 };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let server = TestNode::start(1).await?;
            for i in 0..RECORDS {
                server.put("alice", "v", &format!("r{i}"), &[(i % 251) as u8; 64]);
            }
            let mut nodes = Vec::new();
            for n in 0..clients {
                let node = TestNode::start((n % 250 + 2) as u8).await?;
                server.allow(&node, "alice", true, false);
                node.allow(&server, "alice", false, true);
                nodes.push(node);
            }
            let addr = server.addr();
            let want = server.digest();
            let start = Instant::now();
            let sessions = nodes.iter().map(|node| {
                let addr = addr.clone();
                async move {
                    let t = Instant::now();
                    let out = node
                        .handle
                        .pull(&addr, Mode::Full { client: b"alice".to_vec() })
                        .await;
                    (t.elapsed(), out.map(|o| o.records), node.digest())
                }
            });
            let results = futures::future::join_all(sessions).await;
            let wall = start.elapsed();
            let mut tally = Tally::new();
            let mut latencies: Vec<Duration> = Vec::new();
            for (latency, out, digest) in results {
                latencies.push(latency);
                tally.record((|| {
                    let records = out?;
                    ensure!(records == RECORDS as u64, "got {records} of {RECORDS} records");
                    ensure!(digest == want, "a client's state differs from the server's");
                    Ok(())
                })());
            }
            latencies.sort();
            let pct = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
            eprintln!(
                "(load: {clients} concurrent pulls of {RECORDS} records: wall {:.0} ms, p50 {:.0} ms, p99 {:.0} ms, peak RSS {:.0} MiB for all {} nodes)",
                wall.as_secs_f64() * 1000.0,
                pct(50).as_secs_f64() * 1000.0,
                pct(99).as_secs_f64() * 1000.0,
                peak_rss_mib().unwrap_or(f64::NAN),
                clients + 1
            );
            Ok(tally)
        })
}
