//! Property tests: no stamp from elsewhere can pin a location or freeze a clock.
//!
//! Whatever stamps arrive, local writes stay strictly increasing; honest devices whose clocks lie
//! within the drift of each other agree, once they converge, on a write made last in real time,
//! whatever a hostile device sends them and in whatever order records travel.

use std::collections::BTreeMap;

use proptest::prelude::*;
use redoubt_vault::{
    ClientId, DEFAULT_MAX_AHEAD_MS, Error, Instance, Location, MergeBounds, MergePolicy, NodeId,
    Record, SecretValue, Stamp, SyncConfig,
};

/// A plausible real time to start from (November 2023), in milliseconds.
const T0: u64 = 1_700_000_000_000;
/// The drift the bounds allow.
const D: u64 = DEFAULT_MAX_AHEAD_MS;
/// Honest clocks are off real time by at most this, so within `D` of each other.
const SKEW: u64 = D / 2;
/// A hostile stamp at least this far past `T0` lies ahead of every honest clock for the whole
/// run (a run advances real time by far less).
const FAR_AHEAD: u64 = 1_000_000_000_000;

const CLIENT: &[u8] = b"alice";

/// A wall time from anywhere: the extremes, near now, and arbitrary.
fn any_wall() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0),
        Just(u64::MAX),
        (0..16u64).prop_map(|k| u64::MAX - k),
        T0..T0 + 3 * D,
        0..T0,
        any::<u64>(),
    ]
}

fn any_counter() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0),
        Just(u32::MAX),
        (0..16u32).prop_map(|k| u32::MAX - k),
        any::<u32>()
    ]
}

fn record(path: &str, wall_ms: u64, counter: u32, node: u8, live: bool) -> Record {
    let stamp = Stamp {
        wall_ms,
        counter,
        node: NodeId::from_bytes([node; 16]),
    };
    let value = live.then(|| SecretValue::new(format!("{node}@{wall_ms}").into_bytes()));
    Record::from_parts(Location::new("v", path).unwrap(), stamp, value).unwrap()
}

#[derive(Clone, Debug)]
enum Local {
    /// A local write at physical time `now`.
    Write { now: u64, path: u8 },
    /// A received version, merged one at a time (live sync) within `bounds`.
    Merge {
        stamp: (u64, u32),
        path: u8,
        bounds: MergeBounds,
        via_sync: bool,
    },
}

fn local_op() -> impl Strategy<Value = Local> {
    let bounds = (
        any_wall(),
        prop_oneof![Just(D), Just(0), Just(u64::MAX), any::<u64>()],
    )
        .prop_map(|(now_ms, max_ahead_ms)| MergeBounds {
            now_ms,
            max_ahead_ms,
        });
    prop_oneof![
        (any_wall(), 0..3u8).prop_map(|(now, path)| Local::Write { now, path }),
        ((any_wall(), any_counter()), 0..3u8, bounds, any::<bool>()).prop_map(
            |(stamp, path, bounds, via_sync)| Local::Merge {
                stamp,
                path,
                bounds,
                via_sync
            }
        ),
    ]
}

proptest! {
    /// Whatever arrives, local writes are strictly increasing, order after every admitted stamp,
    /// and fail (changing nothing) exactly when the clock is exhausted; refused stamps do not
    /// move the clock.
    #[test]
    fn local_writes_strictly_increase_whatever_arrives(
        ops in prop::collection::vec(local_op(), 1..40),
    ) {
        let mut i = Instance::new(NodeId::from_bytes([1; 16]));
        let mut seen: (u64, u32) = (0, 0);
        let mut written: Vec<Stamp> = Vec::new();
        for op in ops {
            match op {
                Local::Write { now, path } => {
                    let loc = Location::new("v", format!("{path}")).unwrap();
                    let before = i.clock().last();
                    match i.write_at(CLIENT, &loc, SecretValue::new(vec![path]), now) {
                        Ok(stamp) => {
                            prop_assert!((stamp.wall_ms, stamp.counter) > seen);
                            prop_assert_eq!(i.clock().last(), (stamp.wall_ms, stamp.counter));
                            seen = (stamp.wall_ms, stamp.counter);
                            written.push(stamp);
                        }
                        Err(Error::ClockExhausted) => {
                            prop_assert_eq!(before, (u64::MAX, u32::MAX));
                            prop_assert_eq!(i.clock().last(), before);
                        }
                        Err(e) => prop_assert!(false, "unexpected error {e}"),
                    }
                }
                Local::Merge { stamp: (wall, counter), path, bounds, via_sync } => {
                    let before = i.clock().last();
                    let incoming = record(&format!("{path}"), wall, counter, 2, true);
                    let admitted = bounds.admits(incoming.stamp());
                    let report = if via_sync {
                        let mut source = Instance::new(NodeId::from_bytes([2; 16]));
                        source.restore(CLIENT, incoming).unwrap();
                        i.sync_from(&source, &SyncConfig::full().bounds(bounds)).unwrap()
                    } else {
                        i.merge_record_within(CLIENT, incoming, MergePolicy::Newest, &bounds)
                            .unwrap()
                    };
                    prop_assert_eq!(report.refused_ahead, u64::from(!admitted));
                    if admitted {
                        seen = seen.max((wall, counter));
                        prop_assert_eq!(i.clock().last(), seen);
                    } else {
                        prop_assert!(!report.changed());
                        prop_assert_eq!(i.clock().last(), before);
                    }
                }
            }
        }
        prop_assert!(written.windows(2).all(|w| w[0] < w[1]));
    }
}

/// One step of the many-device run. Devices 0, 1 and 2 are honest.
#[derive(Clone, Debug)]
enum Step {
    /// Real time passes.
    Advance(u64),
    /// An honest device writes (or deletes) a shared record at its own clock's time.
    Write { dev: usize, path: u8, delete: bool },
    /// An honest device pulls everything another holds (local sync).
    Pull { into: usize, from: usize },
    /// One record travels between honest devices (live sync, any order).
    Deliver {
        into: usize,
        from: usize,
        pick: usize,
    },
    /// The hostile device sends a version with any stamp. On a shared record the stamp is far in
    /// the past or far ahead (one within the drift is indistinguishable from an honest write);
    /// on its own records, anything.
    Hostile {
        into: usize,
        shared: bool,
        path: u8,
        wall: u64,
        counter: u32,
        node: u8,
        live: bool,
        via_sync: bool,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => prop_oneof![0..3u64, 0..3 * D].prop_map(Step::Advance),
        4 => (0..3usize, 0..3u8, prop::bool::weighted(0.2))
            .prop_map(|(dev, path, delete)| Step::Write { dev, path, delete }),
        2 => (0..3usize, 0..3usize).prop_map(|(into, from)| Step::Pull { into, from }),
        3 => (0..3usize, 0..3usize, any::<usize>())
            .prop_map(|(into, from, pick)| Step::Deliver { into, from, pick }),
        3 => (
            0..3usize,
            any::<bool>(),
            0..3u8,
            any_wall(),
            any_counter(),
            prop_oneof![Just(0xeeu8), 1..4u8],
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(into, shared, path, wall, counter, node, live, via_sync)| {
                // Keep shared stamps out of the honest window [T0 - D, T0 + FAR_AHEAD).
                let wall = if shared && (T0 - D..T0 + FAR_AHEAD).contains(&wall) {
                    if wall % 2 == 0 { wall % (T0 - D) } else { wall.saturating_add(FAR_AHEAD) }
                } else {
                    wall
                };
                Step::Hostile { into, shared, path, wall, counter, node, live, via_sync }
            }),
    ]
}

/// An honest write (or deletion) as the model sees it: when, in real time, and its stamp.
#[derive(Clone, Debug)]
struct Written {
    real_ms: u64,
    stamp: Stamp,
}

struct World {
    devices: [Instance; 3],
    /// Each honest clock's offset from real time, in `[-SKEW, SKEW]`.
    skew: [i64; 3],
    real_ms: u64,
    /// Every honest write or deletion per shared record path.
    history: BTreeMap<u8, Vec<Written>>,
    last_stamp: [Option<Stamp>; 3],
    writes: u64,
}

impl World {
    fn phys(&self, dev: usize) -> u64 {
        self.real_ms.saturating_add_signed(self.skew[dev])
    }

    fn bounds(&self, dev: usize) -> MergeBounds {
        MergeBounds::at(self.phys(dev))
    }

    fn pull(&mut self, into: usize, from: usize) {
        if into == from {
            return;
        }
        let source = self.devices[from].clone();
        let config = SyncConfig::full().bounds(self.bounds(into));
        self.devices[into].sync_from(&source, &config).unwrap();
    }

    fn run(&mut self, step: Step) -> Result<(), TestCaseError> {
        match step {
            Step::Advance(ms) => self.real_ms += ms,
            Step::Write { dev, path, delete } => {
                let loc = shared(path);
                let now = self.phys(dev);
                self.writes += 1;
                let value = format!("{dev}:{}", self.writes).into_bytes();
                let result = if delete {
                    self.devices[dev].delete_at(CLIENT, &loc, now)
                } else {
                    self.devices[dev].write_at(CLIENT, &loc, SecretValue::new(value.clone()), now)
                };
                let stamp = match result {
                    Ok(stamp) => stamp,
                    Err(Error::RecordNotFound { .. }) if delete => return Ok(()),
                    Err(e) => return Err(TestCaseError::fail(format!("write failed: {e}"))),
                };
                // Strictly increasing per device, and never pushed further ahead of its own
                // physical clock than the drift (plus the millisecond a full counter borrows).
                prop_assert!(self.last_stamp[dev] < Some(stamp));
                prop_assert!(stamp.wall_ms <= now + D + 1, "{stamp:?} at {now}");
                self.last_stamp[dev] = Some(stamp);
                self.history.entry(path).or_default().push(Written {
                    real_ms: self.real_ms,
                    stamp,
                });
            }
            Step::Pull { into, from } => self.pull(into, from),
            Step::Deliver { into, from, pick } => {
                let held: Vec<(Vec<u8>, Record)> = self.devices[from]
                    .clients()
                    .flat_map(|(id, path)| {
                        self.devices[from]
                            .records(id)
                            .map(|r| (path.to_vec(), r.clone()))
                    })
                    .collect();
                if into != from && !held.is_empty() {
                    let (client, record) = held[pick % held.len()].clone();
                    let bounds = self.bounds(into);
                    self.devices[into]
                        .merge_record_within(&client, record, MergePolicy::Newest, &bounds)
                        .unwrap();
                }
            }
            Step::Hostile {
                into,
                shared,
                path,
                wall,
                counter,
                node,
                live,
                via_sync,
            } => {
                let path = if shared {
                    format!("s{path}")
                } else {
                    format!("h{path}")
                };
                let forged = record(&path, wall, counter, node, live);
                let bounds = self.bounds(into);
                let report = if via_sync {
                    let mut hostile = Instance::new(NodeId::from_bytes([0xee; 16]));
                    hostile.restore(CLIENT, forged).unwrap();
                    self.devices[into]
                        .sync_from(&hostile, &SyncConfig::full().bounds(bounds))
                        .unwrap()
                } else {
                    self.devices[into]
                        .merge_record_within(CLIENT, forged, MergePolicy::Newest, &bounds)
                        .unwrap()
                };
                prop_assert_eq!(report.refused_ahead, u64::from(wall > bounds.limit_ms()));
            }
        }
        Ok(())
    }
}

/// An honest clock's offset from real time.
fn skew() -> impl Strategy<Value = i64> {
    -(SKEW as i64)..=SKEW as i64
}

fn shared(path: u8) -> Location {
    Location::new("v", format!("s{path}")).unwrap()
}

proptest! {
    /// Honest devices, clocks within the drift of each other, converge on the last write in real
    /// time (up to the clocks' uncertainty), whatever a hostile device sends and in whatever
    /// order records travel.
    #[test]
    fn the_last_real_time_write_wins_among_honest_devices(
        skew in [skew(), skew(), skew()],
        steps in prop::collection::vec(step(), 0..80),
    ) {
        let mut world = World {
            devices: [1u8, 2, 3].map(|n| Instance::new(NodeId::from_bytes([n; 16]))),
            skew,
            real_ms: T0,
            history: BTreeMap::new(),
            last_stamp: [None; 3],
            writes: 0,
        };
        for step in steps {
            world.run(step)?;
        }
        // Converge: once real time has passed every honest stamp, everything honest is in
        // bounds everywhere; device 2 gathers all, then everyone pulls from it.
        world.real_ms += 2 * D + 2 * SKEW + 2;
        for _ in 0..2 {
            for into in 0..3 {
                for from in 0..3 {
                    world.pull(into, from);
                }
            }
        }
        let digest = world.devices[0].state_digest();
        prop_assert!(world.devices.iter().all(|d| d.state_digest() == digest));

        // An honest write at real time t is stamped in [t - SKEW, t + SKEW + D + 1]: the winner
        // is the last write in real time, or one made within that uncertainty of it.
        let uncertainty = 2 * SKEW + D + 1;
        let client = ClientId::from_path(CLIENT);
        for (path, writes) in &world.history {
            let held = world.devices[0].record(&client, shared(*path).ids()).map(Record::stamp);
            let last = writes.iter().map(|w| w.real_ms).max().unwrap_or(0);
            let winner = writes.iter().find(|w| Some(&w.stamp) == held);
            prop_assert!(winner.is_some(), "s{path}: the held version {held:?} is not honest");
            let winner = winner.unwrap();
            prop_assert!(
                winner.real_ms + uncertainty >= last,
                "s{path}: a write at {} beat the one at {last}",
                winner.real_ms
            );
        }
    }
}
