//! `reconcile`: one pull between two replicas of `n` records that differ in `d` (half on each
//! side), in memory, with every frame metered: our sketch protocol (version 2), the all-shapes
//! protocol (version 1) and the `negentropy` crate (range-based reconciliation, rust-nostr
//! 0.5.3) on the same sets, measured in the same run.
//!
//! `bytes` counts everything but the sealed record payloads: each message with a 4-byte length
//! prefix (ours and all-shapes frame their messages so; negentropy's messages get the same 4
//! bytes). `round_trips` counts requests sent before the requester knows the whole difference.
//! CPU is the thread CPU time each side spends in its own code, one side at a time on one
//! thread.

use std::time::Instant;

use anyhow::{Result, ensure};
use negentropy::{Id, Negentropy, NegentropyStorageVector};
use redoubt_protocol::{
    Mode,
    loopback::{self, Meter, Serving},
};
use redoubt_vault::{
    ClientId, Instance, Location, NodeId, Record, SecretValue, Stamp,
    sketch::{ClientSketch, Element},
};
use serde_json::json;

use crate::{median, ms, record_path, value, vault_path};

const CLIENT: &[u8] = b"alice";

/// Where the differing records sit in time, which matters to range-based reconciliation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Layout {
    /// Spread evenly through the history (edits anywhere): the usual case.
    Spread,
    /// All newer than every common record (only appends since the last sync): negentropy's
    /// best case.
    Recent,
}

/// Record `i` written at wall-clock millisecond `wall`.
fn record(i: usize, wall: u64) -> Result<Record> {
    let stamp = Stamp {
        wall_ms: wall,
        counter: 0,
        node: NodeId::from_bytes([1; 16]),
    };
    let loc = Location::new(vault_path(i), record_path(i))?;
    Ok(Record::live(loc, stamp, SecretValue::new(value(i, 0)))?)
}

/// The records both replicas share: `n - ceil(d/2)` of them, record `i` written at `10 i`.
fn common(n: usize, d: usize) -> Result<Instance> {
    let mut base = Instance::new(NodeId::from_bytes([1; 16]));
    for i in 0..n - d.div_ceil(2) {
        base.restore(CLIENT, record(i, 10 * i as u64 + 10)?)?;
    }
    Ok(base)
}

/// The two replicas of trial `t`: the common part plus `d/2` records of each side's own (the
/// requester gets the odd one out), at times set by `layout`.
fn replicas(
    base: &Instance,
    n: usize,
    d: usize,
    t: usize,
    layout: Layout,
) -> Result<(Instance, Instance)> {
    let (mut a, mut b) = (base.clone(), base.clone());
    for k in 0..d {
        let i = n + t * d + k;
        let wall = match layout {
            Layout::Spread => (k * n / d.max(1)) as u64 * 10 + 15,
            Layout::Recent => 10 * (n + k) as u64 + 10,
        };
        let side = if k % 2 == 0 { &mut a } else { &mut b };
        side.restore(CLIENT, record(i, wall)?)?;
    }
    Ok((a, b))
}

fn mode() -> Mode {
    Mode::Full {
        client: CLIENT.to_vec(),
    }
}

fn emit(scheme: &str, n: usize, d: usize, m: &Meter, extra: serde_json::Value) {
    let mut line = json!({
        "scheme": scheme, "n": n, "d": d, "bytes": m.bytes,
        "round_trips": m.round_trips_to_complement,
        "cpu_ms_requester": ms(m.requester), "cpu_ms_responder": ms(m.responder),
    });
    if let (Some(obj), Some(more)) = (line.as_object_mut(), extra.as_object()) {
        obj.extend(more.clone());
    }
    println!("{line}");
}

/// One pull of `version` from `b` into a copy of `a`; checks that it converged.
fn ours(a: &Instance, b: &Instance, version: u8) -> Result<Meter> {
    let mut into = a.clone();
    let readable = [CLIENT.to_vec()];
    let from = Serving {
        instance: b,
        readable: &readable,
    };
    let mut meter = Meter {
        clock: thread_cpu,
        ..Meter::default()
    };
    loopback::pull(&mut into, &from, mode(), version, &mut meter)?;
    // A pull brings what the requester lacks; the responder's part must now be in.
    let c = ClientId::from_path(CLIENT);
    for rec in b.records(&c) {
        ensure!(
            into.record(&c, rec.location().ids()).map(|r| r.hash()) == Some(rec.hash()),
            "version {version} missed a record"
        );
    }
    Ok(meter)
}

/// CPU time of the calling thread (both sides run on it, one at a time).
fn thread_cpu() -> std::time::Duration {
    cpu_time::ThreadTime::now().as_duration()
}

fn storage(i: &Instance) -> Result<NegentropyStorageVector> {
    let c = ClientId::from_path(CLIENT);
    let mut s = NegentropyStorageVector::with_capacity(i.len());
    for rec in i.records(&c) {
        s.insert(
            rec.stamp().wall_ms,
            Id::from_byte_array(Element::of(&c, &rec.shape()).hash),
        )?;
    }
    s.seal()?;
    Ok(s)
}

/// Negentropy between the same sets, ids being our element hashes and timestamps the records'
/// wall clocks. Storage is built beforehand (as an index kept up to date would be).
fn negentropy(a: &Instance, b: &Instance, d: usize) -> Result<(Meter, f64)> {
    let t = Instant::now();
    let (sa, sb) = (storage(a)?, storage(b)?);
    let setup = ms(t.elapsed());
    let mut meter = Meter::default();
    let t = thread_cpu();
    let mut client = Negentropy::borrowed(&sa, 0)?;
    let mut msg = client.initiate()?;
    meter.requester += thread_cpu() - t;
    let mut server = Negentropy::borrowed(&sb, 0)?;
    let (mut have, mut need) = (Vec::new(), Vec::new());
    loop {
        meter.bytes += 4 + msg.len() as u64;
        meter.round_trips += 1;
        let t = thread_cpu();
        let answer = server.reconcile(&msg)?;
        meter.responder += thread_cpu() - t;
        meter.bytes += 4 + answer.len() as u64;
        let t = thread_cpu();
        let next = client.reconcile_with_ids(&answer, &mut have, &mut need)?;
        meter.requester += thread_cpu() - t;
        match next {
            Some(m) => msg = m,
            None => break,
        }
    }
    meter.round_trips_to_complement = meter.round_trips;
    ensure!(
        have.len() + need.len() == d,
        "negentropy found {} of {d}",
        have.len() + need.len()
    );
    Ok((meter, setup))
}

/// What the kept sketch costs: building it from `a`'s records (element hashes included) is what
/// every load pays once and what a sync would pay without it; also per write.
fn state_cost(a: &Instance, n: usize) {
    let c = ClientId::from_path(CLIENT);
    let t = thread_cpu();
    let built = ClientSketch::from_elements(
        a.records(&c)
            .map(|r| (Element::of(&c, &r.shape()), r.location().ids())),
    );
    let build = ms(thread_cpu() - t);
    println!(
        "{}",
        json!({"scheme": "state", "n": n, "elements": built.len(),
               "build_ms": build, "us_per_write": build * 1000.0 / n as f64})
    );
}

/// `reconcile`: every scheme for every (n, d); with `trials` > 1, our scheme runs on that many
/// independent pairs and a summary line gives the spread of its bytes and round trips.
pub(crate) fn run(
    ns: &[usize],
    ds: &[usize],
    all_shapes: bool,
    trials: usize,
    layout: Layout,
) -> Result<()> {
    for &n in ns {
        for &d in ds {
            ensure!(d <= n, "d ({d}) must not exceed n ({n})");
            let base = common(n, d)?;
            let (a, b) = replicas(&base, n, d, 0, layout)?;
            if d == ds[0] {
                state_cost(&a, n);
            }
            let m = ours(&a, &b, 2)?;
            let fell_back = m.fell_back.clone();
            emit("ours", n, d, &m, json!({"fell_back": fell_back}));
            if all_shapes {
                let m = ours(&a, &b, 1)?;
                emit("all-shapes", n, d, &m, json!({}));
            }
            let (m, setup) = negentropy(&a, &b, d)?;
            emit(
                "negentropy",
                n,
                d,
                &m,
                json!({"storage_build_ms_excluded": setup}),
            );
            drop((a, b));
            if trials > 1 {
                let (mut bytes, mut rts, mut cpu) = (Vec::new(), Vec::new(), Vec::new());
                let mut fell_back = 0;
                let mut cpu_sum = Vec::new();
                for t in 1..=trials {
                    let (a, b) = replicas(&base, n, d, t, layout)?;
                    let m = ours(&a, &b, 2)?;
                    bytes.push(m.bytes as f64);
                    rts.push(f64::from(m.round_trips_to_complement));
                    cpu.push(ms(m.requester.max(m.responder)));
                    cpu_sum.push(ms(m.requester + m.responder));
                    fell_back += usize::from(m.fell_back.is_some());
                }
                let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
                println!(
                    "{}",
                    json!({"scheme": "ours-trials", "n": n, "d": d, "trials": trials,
                           "bytes_median": median(bytes.clone()), "bytes_max": max(&bytes),
                           "round_trips_max": max(&rts),
                           "round_trips_over_2": rts.iter().filter(|&&r| r > 2.0).count(),
                           "cpu_ms_max_side_median": median(cpu.clone()),
                           "cpu_ms_max_side_max": max(&cpu), "fell_back": fell_back})
                );
            }
        }
    }
    Ok(())
}
