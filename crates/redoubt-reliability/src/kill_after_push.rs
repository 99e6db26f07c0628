//! Pushed means durable: a pusher vault writes a few records and pushes them to `redoubt serve`
//! (`redoubt sync ADDR --client alice --push-only`); once the sync has exited 0 and printed its
//! `pushed: ...` report, the server is killed with SIGKILL a random 0 to 50 ms later (at once in
//! half the runs, where the window is widest). Its vault must then hold every record the pusher
//! holds (the push acknowledged them all) in the same version, and `get` must print each pushed
//! value. One server vault and one pusher vault serve every run; `serve` restarts each run.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use anyhow::{Result, bail};

use crate::{
    Tally,
    redoubt::{Server, Vault, binary},
    rng::Rng,
};

const CLIENT: &str = "alice";
const VAULT: &str = "v";

/// The longest wait between the acknowledgement and the kill, in microseconds.
const MAX_DELAY_US: u64 = 50_000;

/// What the runs lost, by when the kill landed after the ack.
#[derive(Default)]
struct Losses {
    /// Acknowledged records lost, over all runs.
    records: usize,
    /// Records the pushes reported as received (added or updated), over all runs. A record
    /// lost in one run is pushed, reported and counted again in the next.
    reported: usize,
    /// Per delay bucket (at once, up to 5 ms, 5 to 50 ms): runs, and runs that lost records.
    by_delay: [(usize, usize); 3],
}

impl Losses {
    fn count(&mut self, delay: Duration, lost: usize) {
        let bucket = match delay.as_micros() {
            0 => 0,
            1..=5_000 => 1,
            _ => 2,
        };
        self.by_delay[bucket].0 += 1;
        self.by_delay[bucket].1 += usize::from(lost > 0);
        self.records += lost;
    }
}

/// The records a `pushed: added A, updated U, ...` report says the peer received (A + U), if the
/// report reads so.
fn received(report: &str) -> Option<usize> {
    let count = |what: &str| -> Option<usize> {
        let at = report.find(what)? + what.len();
        report[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    Some(count("added ")? + count("updated ")?)
}

/// The record path of a `redoubt list` line (`client vault record size stamp`, tab-separated).
fn record_of(line: &str) -> &str {
    line.split('\t').nth(2).unwrap_or(line)
}

pub(crate) fn run(quick: bool) -> Result<Tally> {
    let runs = if quick { 10 } else { 200 };
    let bin = binary()?;
    let dir = tempfile::tempdir()?;
    let server_vault = Vault::init(&bin, dir.path().join("server.rdb"))?;
    let pusher = Vault::init(&bin, dir.path().join("pusher.rdb"))?;
    // The server lets the pusher write the client; the pusher lets the server read it.
    server_vault.allow(&pusher.id()?, CLIENT, false, true)?;
    pusher.allow(&server_vault.id()?, CLIENT, true, false)?;
    let mut rng = Rng::new("kill-after-push");
    let mut tally = Tally::new();
    let mut losses = Losses::default();
    // The last value the pusher wrote to each record, and the records written since the last
    // acknowledged push (a push that fails leaves them to the next).
    let mut values: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut fresh: BTreeSet<String> = BTreeSet::new();
    for _ in 0..runs {
        let result = (|| {
            let server = Server::start(&server_vault)?;
            for _ in 0..1 + rng.below(4) {
                let record = format!("r{}", rng.below(64));
                let value: Vec<u8> = (0..1 + rng.below(64)).map(|_| rng.next() as u8).collect();
                pusher.put(CLIENT, VAULT, &record, &value)?;
                values.insert(record.clone(), value);
                fresh.insert(record);
            }
            let out = pusher
                .cmd()
                .args(["sync", &server.addr, "--client", CLIENT, "--push-only"])
                .output()?;
            let stdout = String::from_utf8_lossy(&out.stdout);
            let report = stdout.lines().find(|l| l.starts_with("pushed: "));
            let Some(report) = report.filter(|_| out.status.success()) else {
                server.kill()?;
                bail!(
                    "the push was not acknowledged ({}): {} {}",
                    out.status,
                    stdout.trim(),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            };
            let delay = if rng.below(2) == 0 {
                Duration::ZERO
            } else {
                Duration::from_micros(rng.below(MAX_DELAY_US + 1))
            };
            std::thread::sleep(delay);
            server.kill()?;
            let pushed = std::mem::take(&mut fresh);
            losses.reported += received(report).unwrap_or(pushed.len());
            // Every record the pusher holds was acknowledged: the server must hold the same
            // version of each (a vault that does not open holds none)...
            let (held, unopened) = match server_vault.list(CLIENT) {
                Ok(lines) => (lines.into_iter().collect::<BTreeSet<_>>(), None),
                Err(e) => (BTreeSet::new(), Some(e)),
            };
            let mut lost: BTreeSet<String> = pusher
                .list(CLIENT)?
                .iter()
                .filter(|line| !held.contains(*line))
                .map(|line| record_of(line).to_string())
                .collect();
            // ...and print the value this push carried.
            for record in &pushed {
                let got = server_vault.get(CLIENT, VAULT, record).ok();
                if got.as_ref() != values.get(record) {
                    lost.insert(record.clone());
                }
            }
            losses.count(delay, lost.len());
            if let Some(e) = unopened {
                bail!("the server's vault does not open after the kill: {e:#}");
            }
            if !lost.is_empty() {
                bail!(
                    "{} acknowledged records lost when the server was killed {} µs after the \
                     ack: {lost:?}",
                    lost.len(),
                    delay.as_micros()
                );
            }
            Ok(())
        })();
        tally.record(result);
    }
    let [now, soon, later] = losses.by_delay;
    eprintln!(
        "(kill-after-push: {} acknowledged records lost in all, of {} the pushes reported as \
         received; runs that lost records: {} of {} killed at once, {} of {} killed within 5 ms, \
         {} of {} killed 5 to 50 ms after the ack)",
        losses.records, losses.reported, now.1, now.0, soon.1, soon.0, later.1, later.0
    );
    Ok(tally)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_push_reports_and_list_lines() {
        let report = "pushed: added 3, updated 12, deleted 0, unchanged 7, conflicts resolved 0";
        assert_eq!(received(report), Some(15));
        assert_eq!(received("pushed: something else"), None);
        let line = "alice\tv\tr12\t33\t2025-01-01T00:00:00.000Z#0@0123abcd";
        assert_eq!(record_of(line), "r12");
    }
}
