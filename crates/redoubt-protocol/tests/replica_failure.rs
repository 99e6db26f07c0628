//! A replica whose reads fail: the session fails with that error, and never reports a short
//! complement (or a short set of shapes) as a complete pull. And one that changed mid-session:
//! the final check catches it after the last streamed chunk, which the requester opened
//! without its replica, and the fallback it asks for then reads the replica.

use std::{borrow::Cow, cell::Cell, fmt};

use redoubt_protocol::{
    Error, Mode, Pull, Received, Refusal, RefusalCode, Replica,
    loopback::{self, Meter, Serving},
};
use redoubt_vault::{
    ClientId, Instance, Location, NodeId, Record, RecordId, SecretValue, VaultId,
    sketch::{Lookup, SketchSums},
};

/// The failure a store on disk would report.
#[derive(Debug)]
struct DiskError;

impl fmt::Display for DiskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("disk read failed")
    }
}

impl std::error::Error for DiskError {}

/// An instance whose reads (every call, and every item an iterator yields) succeed `budget`
/// times, then fail.
struct Failing<'a> {
    inner: &'a Instance,
    budget: Cell<usize>,
}

impl Failing<'_> {
    fn read(&self) -> Result<(), DiskError> {
        match self.budget.get() {
            0 => Err(DiskError),
            n => {
                self.budget.set(n - 1);
                Ok(())
            }
        }
    }
}

impl Replica for Failing<'_> {
    type Error = DiskError;

    fn client_path(&self, client: &ClientId) -> Result<Option<Cow<'_, [u8]>>, DiskError> {
        self.read()?;
        Ok(self.inner.client_path(client).map(Cow::Borrowed))
    }

    fn sketch(&self, client: &ClientId) -> Result<Option<Cow<'_, SketchSums>>, DiskError> {
        self.read()?;
        Ok(self.inner.sketch(client).map(|s| Cow::Borrowed(s.sums())))
    }

    fn locate(&self, client: &ClientId, key: u64) -> Result<Lookup, DiskError> {
        self.read()?;
        Ok(self
            .inner
            .sketch(client)
            .map_or(Lookup::Absent, |s| s.locate(key)))
    }

    fn records_after(
        &self,
        client: &ClientId,
        after: Option<(VaultId, RecordId)>,
    ) -> impl Iterator<Item = Result<Cow<'_, Record>, DiskError>> {
        self.inner
            .records_after(client, after)
            .map(|r| self.read().map(|()| Cow::Borrowed(r)))
    }

    fn record(
        &self,
        client: &ClientId,
        ids: (VaultId, RecordId),
    ) -> Result<Option<Cow<'_, Record>>, DiskError> {
        self.read()?;
        Ok(self.inner.record(client, ids).map(Cow::Borrowed))
    }
}

fn node(n: u8) -> Instance {
    Instance::new(NodeId::from_bytes([n; 16]))
}

/// A responder with `n` records of client "alice" and a requester holding every other one,
/// stale, so both sides read records and the complement spans several entries.
fn pair(n: usize) -> (Instance, Instance) {
    let (mut a, mut b) = (node(1), node(2));
    for i in 0..n {
        let loc = Location::new("v", format!("r{i:03}")).unwrap();
        let value = SecretValue::new(vec![b'x'; 64]);
        b.write_at(b"alice", &loc, value, 10 + i as u64).unwrap();
        if i % 2 == 0 {
            let old = SecretValue::new(b"old".to_vec());
            a.write_at(b"alice", &loc, old, 1).unwrap();
        }
    }
    (a, b)
}

fn full() -> Mode {
    Mode::Full {
        client: b"alice".to_vec(),
    }
}

/// Whether `e` is the failure of a replica, on our side or (as a refusal) on the peer's.
fn is_replica_failure(e: &Error) -> bool {
    matches!(
        e,
        Error::Replica(_)
            | Error::Refused {
                code: RefusalCode::Internal,
                ..
            }
    )
}

/// The records a pull received, or its error.
fn pull_from(into: &Instance, from: &impl Replica, version: u8) -> Result<Vec<Received>, Error> {
    let readable = vec![b"alice".to_vec()];
    let from = Serving {
        instance: from,
        readable: &readable,
    };
    let mut into = into.clone();
    let pull = Pull::new(loopback::config(full(), version)?, &into)?;
    let mut got = Vec::new();
    loopback::run(
        pull,
        &mut into,
        &from,
        None,
        &mut Meter::default(),
        |_, r| {
            got.extend(r);
            Ok(())
        },
    )?;
    Ok(got)
}

/// The responder's replica fails its Nth read, for every N until the reads suffice: each
/// pull fails with the replica's error; the first that succeeds receives the whole complement.
#[test]
fn a_responder_read_failure_fails_the_pull_never_a_short_complement() {
    let (a, b) = pair(40);
    for version in 1..=3 {
        let whole = pull_from(&a, &b, version).unwrap();
        assert_eq!(whole.len(), 40, "version {version}");
        let mut failures = 0;
        for budget in 0.. {
            let failing = Failing {
                inner: &b,
                budget: Cell::new(budget),
            };
            match pull_from(&a, &failing, version) {
                Ok(got) => {
                    assert_eq!(got.len(), whole.len(), "version {version}, budget {budget}");
                    break;
                }
                Err(e) => {
                    assert!(is_replica_failure(&e), "version {version}: {e}");
                    failures += 1;
                }
            }
        }
        assert!(
            failures > 20,
            "version {version}: only {failures} failing reads"
        );
    }
}

/// The requester's replica fails its Nth read (shapes, sketch, the sum of what the responder
/// lacks): the pull fails with [`Error::Replica`], never sends a short set of shapes.
#[test]
fn a_requester_read_failure_fails_the_pull() {
    let (a, b) = pair(40);
    for version in 1..=3 {
        let mut failures = 0;
        for budget in 0.. {
            let failing = Failing {
                inner: &a,
                budget: Cell::new(budget),
            };
            let readable = vec![b"alice".to_vec()];
            let from = Serving {
                instance: &b,
                readable: &readable,
            };
            let mut into = failing;
            let result =
                Pull::new(loopback::config(full(), version).unwrap(), &into).and_then(|pull| {
                    let mut n = 0;
                    loopback::run(
                        pull,
                        &mut into,
                        &from,
                        None,
                        &mut Meter::default(),
                        |_, r| {
                            n += r.len();
                            Ok(())
                        },
                    )?;
                    Ok(n)
                });
            match result {
                Ok(n) => {
                    assert_eq!(n, 40, "version {version}, budget {budget}");
                    break;
                }
                Err(e) => {
                    assert!(matches!(e, Error::Replica(_)), "version {version}: {e}");
                    failures += 1;
                }
            }
        }
        assert!(failures > 0, "version {version}");
    }
}

/// A responder's failed read is answered as an internal error, without the store's words.
#[test]
fn a_replica_failure_is_refused_as_internal() {
    let refusal = Refusal::from(Error::Replica(Box::new(DiskError)));
    assert_eq!(refusal.code, RefusalCode::Internal);
    assert!(!refusal.detail.contains("disk"));
}

/// A replica whose kept sketches are an older state's (a store that changed between computing
/// its sketch and reading its records).
struct StaleSketch<'a> {
    records: &'a Instance,
    sketches: &'a Instance,
}

impl Replica for StaleSketch<'_> {
    type Error = std::convert::Infallible;

    fn client_path(&self, client: &ClientId) -> Result<Option<Cow<'_, [u8]>>, Self::Error> {
        Replica::client_path(self.records, client)
    }

    fn sketch(&self, client: &ClientId) -> Result<Option<Cow<'_, SketchSums>>, Self::Error> {
        Replica::sketch(self.sketches, client)
    }

    fn locate(&self, client: &ClientId, key: u64) -> Result<Lookup, Self::Error> {
        Replica::locate(self.sketches, client, key)
    }

    fn records_after(
        &self,
        client: &ClientId,
        after: Option<(VaultId, RecordId)>,
    ) -> impl Iterator<Item = Result<Cow<'_, Record>, Self::Error>> {
        Replica::records_after(self.records, client, after)
    }

    fn record(
        &self,
        client: &ClientId,
        ids: (VaultId, RecordId),
    ) -> Result<Option<Cow<'_, Record>>, Self::Error> {
        Replica::record(self.records, client, ids)
    }
}

/// A complement of several chunks from a responder whose sketch is stale: the final check
/// fails only on the last chunk (streamed, opened without the replica); the fallback it asks
/// for waits for the replica, runs by shapes and converges.
#[test]
fn a_final_check_failing_on_a_streamed_chunk_falls_back_with_the_replica() {
    let mut b = node(2);
    for i in 0..50 {
        let loc = Location::new("v", format!("small{i:03}")).unwrap();
        b.write_at(b"alice", &loc, SecretValue::new(b"s".to_vec()), 1)
            .unwrap();
    }
    let mut a = b.clone();
    let big = |b: &mut Instance, i: usize, fill: u8, t: u64| {
        let loc = Location::new("v", format!("big{i:02}")).unwrap();
        let value = SecretValue::new(vec![fill; 100 * 1024]);
        b.write_at(b"alice", &loc, value, t).unwrap();
    };
    for i in 0..16 {
        big(&mut b, i, b'x', 10);
    }
    let old = b.clone();
    big(&mut b, 3, b'y', 11);
    let stale = StaleSketch {
        records: &b,
        sketches: &old,
    };
    let readable = vec![b"alice".to_vec()];
    let from = Serving {
        instance: &stale,
        readable: &readable,
    };
    let mut meter = Meter::default();
    // The edit carries lineage, so the session is version 4 (version 2's exchange, bound).
    let pull = Pull::new(loopback::config(full(), 4).unwrap(), &a).unwrap();
    let pull = loopback::run(pull, &mut a, &from, None, &mut meter, |into, records| {
        loopback::merge_newest(into, records, &mut Default::default())
    })
    .unwrap();
    assert!(
        meter
            .fell_back
            .as_deref()
            .is_some_and(|why| why.contains("did not add up")),
        "{:?}",
        meter.fell_back
    );
    assert!(
        pull.chunks_received() > 2,
        "{} chunks",
        pull.chunks_received()
    );
    assert_eq!(a.state_digest(), b.state_digest());
}
