//! The one in-memory driver: whole pulls between two replicas, a [`Pull`] and a [`Serve`]
//! driven in turn, with every frame metered (and recorded, when asked). The tests, the
//! benchmarks, the test vectors and the fuzz targets run sessions through here; behind the
//! `loopback` feature, not a stable API.

use std::{
    sync::OnceLock,
    time::{Duration, Instant},
};

use redoubt_vault::{Instance, MergePolicy, MergeReport};

use crate::{
    Error, Mode, Opening, Peers, Pull, PullConfig, PullEvent, Received, Replica, Request, Response,
    Scope, Serve, SessionId, ShapeFallback, crypto::EphemeralSecret,
};

/// The peer ids of version 3 pulls here: the requester's, then the responder's.
pub const PEERS: (&[u8], &[u8]) = (b"loopback requester", b"loopback responder");

/// The fallback policy here: no limit on the shapes (the loopback measures; a node limits), so
/// only the rule on an implausible "shapes cheaper" applies.
pub const POLICY: ShapeFallback = ShapeFallback {
    max_shapes: u64::MAX,
};

/// Frames in the order they went, each with whether it went from the requester.
pub type Frames = Vec<(bool, Vec<u8>)>;

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
    /// Time spent in the requester's code (building summaries, symbols, verifying, merging).
    pub requester: Duration,
    /// Time spent in the responder's code.
    pub responder: Duration,
    /// Why a sketched pull fell back to the shapes exchange, if it did.
    pub fell_back: Option<String>,
    /// Records received (the complement).
    pub records: u64,
    /// Sketched pulls: keys of our versions the responder said it lacks.
    pub lacking: Vec<u64>,
    /// Every frame both ways, when `Some` (test vectors).
    pub frames: Option<Frames>,
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
            frames: None,
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
        if let Some(frames) = &mut self.frames {
            frames.push((true, frame.to_vec()));
        }
    }

    fn response(&mut self, frame: &[u8]) {
        let sealed = match Response::decode(frame) {
            Ok(Response::Chunk { sealed } | Response::Decoded { sealed, .. }) => sealed.len(),
            _ => 0,
        };
        self.bytes += 4 + (frame.len() - sealed) as u64;
        self.payload += sealed as u64;
        if let Some(frames) = &mut self.frames {
            frames.push((false, frame.to_vec()));
        }
    }

    /// Runs `f`, adding its time to `side`.
    fn time<T>(&mut self, side: fn(&mut Self) -> &mut Duration, f: impl FnOnce() -> T) -> T {
        let t = (self.clock)();
        let out = f();
        let spent = (self.clock)().saturating_sub(t);
        *side(self) += spent;
        out
    }
}

/// The responder's side: a replica and what the requester may read.
pub struct Serving<'a, R: Replica = Instance> {
    /// The replica served.
    pub instance: &'a R,
    /// Client paths the requester may read.
    pub readable: &'a [Vec<u8>],
}

/// The responder's side of one session: opened by the first frame (its scope resolved
/// against `from.readable`, bound to the requester's `peers`), then answering each frame.
/// `fixed` gives the session id and ephemeral key (test vectors).
struct Responding<'a, 'b, R: Replica> {
    from: &'b Serving<'a, R>,
    peers: Option<Peers>,
    fixed: Option<(SessionId, [u8; 32])>,
    session: Option<Serve>,
}

impl<R: Replica> Responding<'_, '_, R> {
    fn answer(&mut self, frame: &[u8]) -> Result<Vec<u8>, Error> {
        let request = Request::decode(frame)?;
        if let Some(serve) = &mut self.session {
            return serve.handle_decoded(frame, request, self.from.instance);
        }
        let opening = Opening::from_request(request)
            .map_err(|_| Error::Unexpected("a session request before any opening"))?;
        let scope = match Scope::resolve(opening.mode(), self.from.instance, self.from.readable) {
            Ok(scope) => scope,
            Err(refusal) => return Ok(refusal.to_frame()),
        };
        let replica = self.from.instance;
        let peers = self.peers.clone();
        let (serve, answer) = match self.fixed {
            Some((session, secret)) => {
                let fixed = (session, EphemeralSecret::from_bytes(secret));
                Serve::open_with(frame, opening, scope, replica, peers, fixed)?
            }
            None => Serve::open(frame, opening, scope, replica, peers)?,
        };
        self.session = Some(serve);
        Ok(answer)
    }
}

/// Runs `pull` over `into` against `from` to its end: each request frame goes to a responder
/// session (opened by the first, with the session id and key `fixed` when given), each answer
/// back to the pull, and each verified batch to `merge`. A fallback reopens a fresh responder
/// session, as a peer would. Every frame is metered. Returns the ended pull (its counts).
pub fn run<S: Replica, R: Replica>(
    mut pull: Pull,
    into: &mut S,
    from: &Serving<'_, R>,
    fixed: Option<(SessionId, [u8; 32])>,
    meter: &mut Meter,
    mut merge: impl FnMut(&mut S, Vec<Received>) -> Result<(), Error>,
) -> Result<Pull, Error> {
    let mut responding = Responding {
        from,
        peers: pull.peers().cloned(),
        fixed,
        session: None,
    };
    let mut complement_at = None;
    loop {
        let frame = pull
            .poll_transmit()
            .ok_or(Error::Unexpected("the pull has nothing to send"))?;
        meter.request(&frame);
        let answer = meter.time(|m| &mut m.responder, || responding.answer(&frame))?;
        meter.response(&answer);
        let t = (meter.clock)();
        // As a node does: a chunk is opened and verified without the replica (a node holds
        // no store lock for it), and only what needs the replica reads it.
        if pull.needs_replica() {
            pull.handle(&answer, into)?;
        } else {
            pull.handle_streamed(&answer)?;
            if pull.needs_replica() {
                pull.resume(into)?;
            }
        }
        let mut done = false;
        while let Some(event) = pull.poll_event() {
            match event {
                PullEvent::Records { records } => {
                    complement_at.get_or_insert(meter.round_trips);
                    meter.records += records.len() as u64;
                    merge(into, records)?;
                }
                PullEvent::Lacking { keys } => meter.lacking = keys,
                PullEvent::FellBack { why, .. } => {
                    meter.fell_back = Some(why);
                    complement_at = None;
                    responding.session = None;
                }
                PullEvent::Announced { .. } => {}
                PullEvent::Done => done = true,
            }
        }
        meter.requester += (meter.clock)().saturating_sub(t);
        if done {
            meter.round_trips_to_complement = complement_at.unwrap_or(meter.round_trips);
            return Ok(pull);
        }
    }
}

/// The requester's side of a loopback pull of `mode` in `version` (1: every shape; 2: sketch,
/// falling back to shapes when the responder asks or the final check fails, as [`POLICY`]
/// allows; 3: version 2 bound to [`PEERS`], its fallback bound too; 4: version 3 carrying
/// lineage).
pub fn config(mode: Mode, version: u8) -> Result<PullConfig, Error> {
    let peers = if version >= 3 {
        Some(Peers::new(PEERS.0, PEERS.1)?)
    } else {
        None
    };
    let mut config = PullConfig::new(mode, peers);
    config.sketch = version >= 2;
    config.lineage = version >= 4;
    config.fallback = POLICY;
    Ok(config)
}

/// Merges a verified batch into `into` with `Newest`, adding to `report`.
pub fn merge_newest(
    into: &mut Instance,
    records: Vec<Received>,
    report: &mut MergeReport,
) -> Result<(), Error> {
    for r in records {
        let one = into.merge_record(&r.client, r.record, MergePolicy::Newest)?;
        report.add(&one);
    }
    Ok(())
}

/// Pulls `mode` from `from` into `into` with `version` (see [`config`]). Merges with `Newest`.
pub fn pull(
    into: &mut Instance,
    from: &Serving<'_>,
    mode: Mode,
    version: u8,
    meter: &mut Meter,
) -> Result<MergeReport, Error> {
    let pull = meter.time(
        |m| &mut m.requester,
        || Pull::new(config(mode, version)?, into),
    )?;
    let mut report = MergeReport::default();
    run(pull, into, from, None, meter, |into, records| {
        merge_newest(into, records, &mut report)
    })?;
    Ok(report)
}
