//! Whole pulls between two instances in memory, both state machines driven in turn, with every
//! frame metered: the tests, the benchmarks and the fuzz targets run sessions through here.
//! Not a stable API.

use std::time::{Duration, Instant};

use std::sync::OnceLock;

use redoubt_vault::{Instance, MergePolicy, MergeReport};

use crate::{
    Error, Event, Mode, Peers, Received, Request, Requester, Responder, Response, Scope,
    ScopeSketch, ShapeFallback,
};

/// The peer ids of version 3 pulls here: the requester's, then the responder's.
pub const PEERS: (&[u8], &[u8]) = (b"loopback requester", b"loopback responder");

/// The fallback policy here: no limit on the shapes (the loopback measures; a node limits), so
/// only the rule on an implausible "shapes cheaper" applies.
const POLICY: ShapeFallback = ShapeFallback {
    max_shapes: u64::MAX,
};

fn peers() -> Result<Peers, Error> {
    Peers::new(PEERS.0, PEERS.1)
}

/// A requester for `mode`: bound to [`PEERS`] from version 3 on.
fn requester(mode: Mode, version: u8) -> Result<Requester, Error> {
    if version >= 3 {
        Requester::bound(mode, None, peers()?)
    } else {
        Requester::new(mode, None)
    }
}

/// What a pull cost.
#[derive(Clone, Debug)]
pub struct Meter {
    /// The clock the two sides' times are read from: wall time by default; a benchmark may
    /// pass the thread's CPU time.
    pub clock: fn() -> Duration,
    /// Bytes of every frame both ways, with its 4-byte length prefix, except sealed chunks.
    pub bytes: u64,
    /// Bytes of sealed chunks (the record payloads).
    pub payload: u64,
    /// Requests sent (each waits for one response).
    pub round_trips: u32,
    /// Round trips before the first record arrived (or the session ended).
    pub round_trips_to_complement: u32,
    /// Time spent in the requester's code (building summaries, symbols, verifying).
    pub requester: Duration,
    /// Time spent in the responder's code.
    pub responder: Duration,
    /// Why a version 2 pull fell back to version 1, if it did.
    pub fell_back: Option<String>,
    /// Records received (the complement).
    pub records: u64,
    /// Version 2: keys of our versions the responder said it lacks.
    pub lacking: Vec<u64>,
}

impl Default for Meter {
    fn default() -> Self {
        Self {
            clock: wall_clock,
            bytes: 0,
            payload: 0,
            round_trips: 0,
            round_trips_to_complement: 0,
            requester: Duration::ZERO,
            responder: Duration::ZERO,
            fell_back: None,
            records: 0,
            lacking: Vec::new(),
        }
    }
}

/// Monotonic time since the first reading.
fn wall_clock() -> Duration {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

impl Meter {
    fn request(&mut self, frame: &[u8]) {
        self.bytes += 4 + frame.len() as u64;
        self.round_trips += 1;
    }

    fn response(&mut self, frame: &[u8], sealed: usize) {
        self.bytes += 4 + (frame.len() - sealed) as u64;
        self.payload += sealed as u64;
    }
}

/// The responder's side: an instance and what the requester may read.
pub struct Serving<'a> {
    /// The instance served.
    pub instance: &'a Instance,
    /// Client paths the requester may read.
    pub readable: &'a [Vec<u8>],
}

/// Pulls `mode` from `from` into `into` with `version` (1: every shape; 2: sketch, falling
/// back to 1 when the responder asks or the final check fails, as the fallback policy allows;
/// 3: version 2 bound to [`PEERS`], its fallback bound too). Merges with `Newest`.
pub fn pull(
    into: &mut Instance,
    from: &Serving<'_>,
    mode: Mode,
    version: u8,
    meter: &mut Meter,
) -> Result<MergeReport, Error> {
    if version >= 2 {
        match pull_v2(into, from, mode.clone(), version, meter) {
            Err(Error::SketchMismatch(why)) => meter.fell_back = Some(why.to_string()),
            Ok(Some(report)) => return Ok(report),
            Ok(None) => {}
            Err(e) => return Err(e),
        }
    }
    pull_v1(into, from, mode, version, meter)
}

fn sealed_len(frame: &[u8]) -> usize {
    match Response::decode(frame) {
        Ok(Response::Chunk { sealed } | Response::Decoded { sealed, .. }) => sealed.len(),
        _ => 0,
    }
}

/// The responder's answer to one request frame, timed.
fn serve(
    responder: &mut Option<Responder>,
    from: &Serving<'_>,
    frame: &[u8],
    meter: &mut Meter,
) -> Result<Vec<u8>, Error> {
    let t = (meter.clock)();
    let answer = match Request::decode(frame)? {
        Request::Open(open) => match Scope::resolve(&open.mode, from.instance, from.readable) {
            Ok(scope) => {
                let (r, answer) = if open.bound {
                    Responder::start_bound(frame, open, scope, from.instance, peers()?)?
                } else {
                    Responder::start(frame, open, scope, from.instance)?
                };
                *responder = Some(r);
                answer.encode()?
            }
            Err(refusal) => refusal.to_frame(),
        },
        Request::OpenSketch(open) => {
            match Scope::resolve(&open.mode, from.instance, from.readable) {
                Ok(scope) => {
                    let (r, answer) = if open.bound {
                        Responder::start_sketch_bound(frame, open, scope, from.instance, peers()?)?
                    } else {
                        Responder::start_sketch(frame, open, scope, from.instance)?
                    };
                    *responder = Some(r);
                    answer.encode()?
                }
                Err(refusal) => refusal.to_frame(),
            }
        }
        request => {
            let r = responder.as_mut().ok_or(Error::Unexpected("no session"))?;
            let answer = match request {
                Request::Shapes { groups, last, .. } => {
                    r.shapes(frame, groups, last, from.instance)
                }
                Request::Next { index, .. } => r.chunk(index, from.instance),
                Request::Sketch { summary, .. } => r.sketch(frame, summary, from.instance),
                Request::Symbols {
                    from: at, symbols, ..
                } => r.symbols(frame, at, symbols, from.instance),
                _ => Err(Error::Unexpected("not a session request")),
            };
            answer?.encode()?
        }
    };
    meter.responder += (meter.clock)().saturating_sub(t);
    let sealed = sealed_len(&answer);
    meter.response(&answer, sealed);
    Ok(answer)
}

fn merge(
    into: &mut Instance,
    records: Vec<Received>,
    report: &mut MergeReport,
    meter: &mut Meter,
) -> Result<(), Error> {
    meter.records += records.len() as u64;
    for r in records {
        let one = into.merge_record(&r.client, r.record, MergePolicy::Newest)?;
        report.add(&one);
    }
    Ok(())
}

/// A sketched pull (version 2 or 3); `Ok(None)` when the responder asked to fall back and the
/// policy allows it.
fn pull_v2(
    into: &mut Instance,
    from: &Serving<'_>,
    mode: Mode,
    version: u8,
    meter: &mut Meter,
) -> Result<Option<MergeReport>, Error> {
    let t = (meter.clock)();
    let mut req = requester(mode, version)?;
    let summary = (!req.waits_for_scope()).then(|| {
        let scope = ScopeSketch::new(into, &req.sketch_scope(None));
        (scope.summary(), scope.digest())
    });
    let mut frame = req.open_sketch(summary)?;
    meter.requester += (meter.clock)().saturating_sub(t);
    let mut responder = None;
    let mut report = MergeReport::default();
    let mut accepted = Vec::new();
    loop {
        meter.request(&frame);
        let answer = serve(&mut responder, from, &frame, meter)?;
        let t = (meter.clock)();
        let event = match req.handle(&answer) {
            Err(e @ Error::SketchMismatch(_)) => {
                req.may_fall_back(&POLICY)?;
                return Err(e);
            }
            other => other?,
        };
        let next = match event {
            Event::Accepted { clients } => {
                accepted = clients;
                let scope = ScopeSketch::new(into, &req.sketch_scope(Some(&accepted)));
                req.sketch(scope.summary(), scope.digest())?
            }
            Event::More {
                from: at,
                to,
                probes,
            } => {
                let scope = ScopeSketch::new(into, &req.sketch_scope(Some(&accepted)));
                req.symbols(scope.answer_more(at, to, &probes))?
            }
            Event::Reconciled {
                lacking,
                records,
                last,
                ..
            } => {
                meter.round_trips_to_complement = meter.round_trips;
                let sum = ScopeSketch::new(into, &req.sketch_scope(Some(&accepted)))
                    .hash_sum(into, &lacking);
                meter.lacking = lacking;
                if let Err(e) = req.account_lacking(sum) {
                    req.may_fall_back(&POLICY)?;
                    return Err(e);
                }
                merge(into, records, &mut report, meter)?;
                if last {
                    meter.requester += (meter.clock)().saturating_sub(t);
                    return Ok(Some(report));
                }
                req.next_chunk()?
            }
            Event::Records { records, last } => {
                merge(into, records, &mut report, meter)?;
                if last {
                    meter.requester += (meter.clock)().saturating_sub(t);
                    return Ok(Some(report));
                }
                req.next_chunk()?
            }
            Event::Fallback { reason } => {
                meter.requester += (meter.clock)().saturating_sub(t);
                req.may_fall_back(&POLICY)?;
                meter.fell_back = Some(reason.to_string());
                return Ok(None);
            }
            Event::Continue | Event::Ready { .. } => {
                return Err(Error::Unexpected("a version 1 answer in a version 2 pull"));
            }
        };
        meter.requester += (meter.clock)().saturating_sub(t);
        frame = next;
    }
}

/// A pull that sends every shape of the scope, in batches: version 1, or version 3's
/// fallback (bound).
fn pull_v1(
    into: &mut Instance,
    from: &Serving<'_>,
    mode: Mode,
    version: u8,
    meter: &mut Meter,
) -> Result<MergeReport, Error> {
    let t = (meter.clock)();
    let mut req = requester(mode, version)?;
    let mut cursor = crate::ShapeCursor::new(&req, into);
    let (groups, last) = if req.waits_for_scope() {
        (Vec::new(), false)
    } else {
        cursor.next_batch(into)
    };
    let mut frame = req.open(groups, last)?;
    meter.requester += (meter.clock)().saturating_sub(t);
    let mut responder = None;
    let mut report = MergeReport::default();
    loop {
        meter.request(&frame);
        let answer = serve(&mut responder, from, &frame, meter)?;
        let t = (meter.clock)();
        let next = match req.handle(&answer)? {
            Event::Accepted { clients } => {
                cursor.keep_only(&clients);
                let (groups, last) = cursor.next_batch(into);
                req.shapes(groups, last)?
            }
            Event::Continue => {
                let (groups, last) = cursor.next_batch(into);
                req.shapes(groups, last)?
            }
            Event::Ready { .. } => {
                meter.round_trips_to_complement = meter.round_trips + 1;
                req.next_chunk()?
            }
            Event::Records { records, last } => {
                merge(into, records, &mut report, meter)?;
                if last {
                    meter.requester += (meter.clock)().saturating_sub(t);
                    return Ok(report);
                }
                req.next_chunk()?
            }
            _ => return Err(Error::Unexpected("a version 2 answer in a version 1 pull")),
        };
        meter.requester += (meter.clock)().saturating_sub(t);
        frame = next;
    }
}
