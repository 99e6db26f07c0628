//! Wire messages of `/redoubt/sync/1`, `/2` and `/3`: one frame per request or response.
//!
//! Every frame starts with the protocol version byte and a message tag; `docs/protocol.md`
//! specifies every field. Decoders check the frame cap first and every count against the bytes
//! that remain, so a hostile frame cannot make them allocate more than its own length.

use std::fmt;

use redoubt_vault::{
    ClientId, Location, MergeReport, RecordId, Selection, Shape, VaultId,
    sketch::{FINE_PROBE_COUNT, MAX_SYMBOLS, PROBES, Symbol},
};

use crate::{
    Error,
    codec::{Reader, Writer},
    limits::{MAX_DETAIL_LEN, MAX_FRAME_LEN, MAX_SELECTION_ITEMS, MAX_SHAPES_PER_FRAME, SHAPE_LEN},
};

/// The libp2p protocol name of version 1: the requester sends every shape.
pub const PROTOCOL_NAME: &str = "/redoubt/sync/1";
/// The libp2p protocol name of version 2: sketch reconciliation, then version 1's stream.
pub const PROTOCOL_NAME_V2: &str = "/redoubt/sync/2";
/// The libp2p protocol name of version 3: version 2's messages, every session bound to both
/// peers' ids and the transcript of both sides' frames. It is also part of the session key.
pub const PROTOCOL_NAME_V3: &str = "/redoubt/sync/3";
/// The version byte of messages defined by version 1 (they keep it inside later sessions).
pub const VERSION: u8 = 1;
/// The version byte of messages version 2 added.
pub const VERSION_2: u8 = 2;
/// The version byte of a bound session's opening ([`Open`] or [`OpenSketch`] with `bound`);
/// version 3 adds no other message.
pub const VERSION_3: u8 = 3;

const TAG_OPEN: u8 = 0x01;
const TAG_SHAPES: u8 = 0x02;
const TAG_NEXT: u8 = 0x03;
const TAG_PUSH: u8 = 0x04;
const TAG_OPEN_SKETCH: u8 = 0x05;
const TAG_SKETCH: u8 = 0x06;
const TAG_SYMBOLS: u8 = 0x07;
const TAG_ACCEPTED: u8 = 0x81;
const TAG_CONTINUE: u8 = 0x82;
const TAG_READY: u8 = 0x83;
const TAG_CHUNK: u8 = 0x84;
const TAG_PUSHED: u8 = 0x85;
const TAG_REFUSED: u8 = 0x86;
const TAG_MORE: u8 = 0x87;
const TAG_SETTLED: u8 = 0x88;
const TAG_DECODED: u8 = 0x89;
const TAG_FALLBACK: u8 = 0x8a;

/// Encoded size of one coded symbol in a [`Request::Symbols`] frame: key, checksum, count
/// modulo 2^16.
pub const SYMBOL_LEN: usize = 8 + 4 + 2;

/// A session's identifier, chosen at random by the responder.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub [u8; 16]);

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redoubt_vault::hex(&self.0[..4]))
    }
}

/// What a requester asks to pull.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Every record of one client.
    Full {
        /// The client's path.
        client: Vec<u8>,
    },
    /// Selected vaults and records of one client.
    Partial {
        /// The client's path.
        client: Vec<u8>,
        /// Whole vaults, by path.
        vaults: Vec<Vec<u8>>,
        /// Single records.
        records: Vec<Location>,
    },
    /// Several clients at once: the listed ones, or every client the responder lets us read
    /// when the list is empty.
    Import {
        /// Client paths; empty means "every client I may read".
        clients: Vec<Vec<u8>>,
    },
}

impl Mode {
    /// The records asked for inside each client: the partial selection, or everything.
    pub fn selection(&self) -> Result<Selection, Error> {
        let mut selection = Selection::all();
        if let Self::Partial {
            vaults, records, ..
        } = self
        {
            for v in vaults {
                selection = selection.with_vault(v)?;
            }
            for l in records {
                selection = selection.with_record(l);
            }
        }
        Ok(selection)
    }
}

/// The shapes of one client, in location order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShapeGroup {
    /// Whose shapes.
    pub client: ClientId,
    /// The shapes, ordered by (vault id, record id).
    pub shapes: Vec<Shape>,
}

/// The first request of a pull.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Open {
    /// What to pull.
    pub mode: Mode,
    /// The invitation this pull answers, when the responder asked us to pull (a push).
    pub invite: Option<[u8; 16]>,
    /// The requester's ephemeral x25519 public key.
    pub key: [u8; 32],
    /// The first batch of the requester's shapes.
    pub groups: Vec<ShapeGroup>,
    /// Whether this batch is the last.
    pub last: bool,
    /// Whether the session is bound (version 3): the frame carries version byte 3 and the key
    /// is bound to both peers and to both sides' frames. Otherwise version byte 1.
    pub bound: bool,
}

/// What a version 2 requester first tells of its set: its size, coded symbol 0 and the
/// fingerprints of its probe symbols (which let the responder estimate the difference).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Elements in the requester's scope (symbol 0's count).
    pub len: u64,
    /// Symbol 0's key and checksum sums (its count is `len`).
    pub first: Symbol,
    /// [`Symbol::fingerprint`] of symbols at [`PROBES`].
    pub probes: [u8; PROBES.len()],
}

/// The first request of a version 2 pull.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenSketch {
    /// What to pull.
    pub mode: Mode,
    /// The invitation this pull answers, when the responder asked us to pull (a push).
    pub invite: Option<[u8; 16]>,
    /// The requester's ephemeral x25519 public key.
    pub key: [u8; 32],
    /// The requester's summary; absent for an import, which sends it in [`Request::Sketch`]
    /// once [`Response::Accepted`] has named the scope.
    pub summary: Option<Summary>,
    /// Whether the session is bound (version 3): the frame carries version byte 3. Otherwise
    /// version byte 2.
    pub bound: bool,
}

/// Why a version 2 responder asks to fall back to sending every shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FallbackReason {
    /// The difference is too large for [`MAX_SYMBOLS`] symbols to decode.
    TooLarge,
    /// Sending every shape costs fewer bytes than the symbols would.
    ShapesCheaper,
    /// Two versions share a 64-bit key: only full shapes can tell them apart.
    KeyCollision,
    /// A code this version does not know.
    Other(u8),
}

impl FallbackReason {
    fn to_byte(self) -> u8 {
        match self {
            Self::TooLarge => 1,
            Self::ShapesCheaper => 2,
            Self::KeyCollision => 3,
            Self::Other(b) => b,
        }
    }

    fn from_byte(b: u8) -> Self {
        match b {
            1 => Self::TooLarge,
            2 => Self::ShapesCheaper,
            3 => Self::KeyCollision,
            b => Self::Other(b),
        }
    }
}

impl fmt::Display for FallbackReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge => f.write_str("difference too large for the sketch"),
            Self::ShapesCheaper => f.write_str("shapes are cheaper than symbols"),
            Self::KeyCollision => f.write_str("two versions share a short key"),
            Self::Other(b) => write!(f, "fallback reason {b}"),
        }
    }
}

/// A frame from requester to responder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Opens a pull.
    Open(Open),
    /// A further batch of the requester's shapes.
    Shapes {
        /// The session.
        session: SessionId,
        /// The shapes, continuing the order of the earlier batches.
        groups: Vec<ShapeGroup>,
        /// Whether this batch is the last.
        last: bool,
    },
    /// Asks for the next sealed chunk of the complement.
    Next {
        /// The session.
        session: SessionId,
        /// The chunk's index, counting from 0.
        index: u64,
    },
    /// Asks the responder to pull from us, quoting `invite` in its [`Open`].
    Push {
        /// A random token that admits the pull it invites.
        invite: [u8; 16],
        /// What we offer.
        mode: Mode,
    },
    /// Opens a version 2 pull.
    OpenSketch(OpenSketch),
    /// The requester's summary, for an import once its scope is known (version 2).
    Sketch {
        /// The session.
        session: SessionId,
        /// The summary.
        summary: Summary,
    },
    /// Further coded symbols, `from` onwards (version 2).
    Symbols {
        /// The session.
        session: SessionId,
        /// Index of the first symbol carried.
        from: u32,
        /// The symbols; counts are modulo 2^16.
        symbols: Vec<Symbol>,
    },
}

/// Why a peer refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefusalCode {
    /// No grant allows it.
    PermissionDenied,
    /// The responder holds no such client.
    ClientNotFound,
    /// The request broke a protocol rule.
    BadRequest,
    /// No such session (expired, finished or never opened).
    UnknownSession,
    /// Too many sessions at once; try later.
    Busy,
    /// A failure on the peer's side.
    Internal,
    /// A code this version does not know.
    Other(u8),
}

impl RefusalCode {
    fn to_byte(self) -> u8 {
        match self {
            Self::PermissionDenied => 1,
            Self::ClientNotFound => 2,
            Self::BadRequest => 3,
            Self::UnknownSession => 4,
            Self::Busy => 5,
            Self::Internal => 6,
            Self::Other(b) => b,
        }
    }

    fn from_byte(b: u8) -> Self {
        match b {
            1 => Self::PermissionDenied,
            2 => Self::ClientNotFound,
            3 => Self::BadRequest,
            4 => Self::UnknownSession,
            5 => Self::Busy,
            6 => Self::Internal,
            b => Self::Other(b),
        }
    }
}

impl fmt::Display for RefusalCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PermissionDenied => f.write_str("permission denied"),
            Self::ClientNotFound => f.write_str("client not found"),
            Self::BadRequest => f.write_str("bad request"),
            Self::UnknownSession => f.write_str("unknown or expired session"),
            Self::Busy => f.write_str("busy"),
            Self::Internal => f.write_str("internal error"),
            Self::Other(b) => write!(f, "refusal code {b}"),
        }
    }
}

/// A frame from responder to requester.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// The pull is admitted; send the remaining shapes under `session`, for `clients` only.
    Accepted {
        /// The new session.
        session: SessionId,
        /// The clients in scope, in order: shapes of any other client are useless to send.
        clients: Vec<ClientId>,
    },
    /// The shape batch was taken; send the next.
    Continue,
    /// Every shape is in; the complement is ready to stream.
    Ready {
        /// The session.
        session: SessionId,
        /// The responder's ephemeral x25519 public key.
        key: [u8; 32],
        /// Records in the complement.
        records: u64,
        /// Total value bytes in the complement (for progress).
        bytes: u64,
    },
    /// One sealed chunk of the complement.
    Chunk {
        /// Ciphertext and tag.
        sealed: Vec<u8>,
    },
    /// The invited pull finished; what it merged on the responder's side.
    Pushed {
        /// The merge report of the peer that pulled.
        report: MergeReport,
    },
    /// The request is refused; nothing else follows.
    Refused {
        /// Why.
        code: RefusalCode,
        /// Human-readable detail, at most [`MAX_DETAIL_LEN`] bytes.
        detail: String,
    },
    /// The symbols so far did not decode: send at least up to index `want` (version 2).
    More {
        /// The session.
        session: SessionId,
        /// One past the last symbol to send, at least.
        want: u32,
        /// After the summary only: fingerprints of our symbols at
        /// [`redoubt_vault::sketch::FINE_PROBES`], from which the requester estimates the
        /// difference and sends enough symbols to decode in one more round trip.
        probes: Vec<u8>,
    },
    /// Nothing to send: the requester holds every version of the scope we hold. The session
    /// is over (version 2).
    Settled {
        /// Our set digest, for the requester's final check.
        digest: [u8; 32],
        /// Keys of the requester's versions we lack.
        lacking: Vec<u64>,
    },
    /// The difference decoded; the complement follows, its first sealed chunk inside
    /// (version 2).
    Decoded {
        /// The session.
        session: SessionId,
        /// The responder's ephemeral x25519 public key.
        key: [u8; 32],
        /// Records in the complement.
        records: u64,
        /// Total value bytes in the complement (for progress).
        bytes: u64,
        /// Our set digest, for the requester's final check.
        digest: [u8; 32],
        /// Keys of the requester's versions we lack.
        lacking: Vec<u64>,
        /// Chunk 0, sealed as [`Response::Chunk`] carries it.
        sealed: Vec<u8>,
    },
    /// Reconcile by sending every shape instead: open a version 1 pull (version 2).
    Fallback {
        /// Why.
        reason: FallbackReason,
    },
}

impl Request {
    /// Encodes the frame, checking every cap the decoder checks.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut w = Writer::with_capacity(64);
        w.u8(VERSION);
        match self {
            Self::Open(open) => {
                if open.bound {
                    w.buf[0] = VERSION_3;
                }
                w.u8(TAG_OPEN);
                encode_mode(&mut w, &open.mode)?;
                encode_invite(&mut w, open.invite);
                w.raw(&open.key);
                w.u8(u8::from(open.last));
                encode_groups(&mut w, &open.groups)?;
            }
            Self::Shapes {
                session,
                groups,
                last,
            } => {
                w.u8(TAG_SHAPES);
                w.raw(&session.0);
                w.u8(u8::from(*last));
                encode_groups(&mut w, groups)?;
            }
            Self::Next { session, index } => {
                w.u8(TAG_NEXT);
                w.raw(&session.0);
                w.u64(*index);
            }
            Self::Push { invite, mode } => {
                w.u8(TAG_PUSH);
                w.raw(invite);
                encode_mode(&mut w, mode)?;
            }
            Self::OpenSketch(open) => {
                w.buf[0] = if open.bound { VERSION_3 } else { VERSION_2 };
                w.u8(TAG_OPEN_SKETCH);
                encode_mode(&mut w, &open.mode)?;
                encode_invite(&mut w, open.invite);
                w.raw(&open.key);
                match &open.summary {
                    Some(summary) => {
                        w.u8(1);
                        encode_summary(&mut w, summary);
                    }
                    None => w.u8(0),
                }
            }
            Self::Sketch { session, summary } => {
                w.buf[0] = VERSION_2;
                w.u8(TAG_SKETCH);
                w.raw(&session.0);
                encode_summary(&mut w, summary);
            }
            Self::Symbols {
                session,
                from,
                symbols,
            } => {
                if symbols.len() > MAX_SYMBOLS || *from as usize + symbols.len() > MAX_SYMBOLS {
                    return Err(Error::Malformed("symbols beyond the sketch's cap"));
                }
                w.buf[0] = VERSION_2;
                w.buf.reserve(symbols.len() * SYMBOL_LEN + 32);
                w.u8(TAG_SYMBOLS);
                w.raw(&session.0);
                w.varint(u64::from(*from));
                w.varint(symbols.len() as u64);
                for sym in symbols {
                    w.u64(sym.key);
                    w.u32(sym.check);
                    w.raw(&(sym.count as u16).to_le_bytes());
                }
            }
        }
        check_frame_len(w.buf.len())?;
        Ok(w.buf)
    }

    /// Decodes one frame.
    pub fn decode(frame: &[u8]) -> Result<Self, Error> {
        check_frame_len(frame.len())?;
        let mut r = Reader::new(frame);
        let (version, tag) = header(&mut r)?;
        let bound = version == VERSION_3;
        let msg = match tag {
            TAG_OPEN => {
                let mode = decode_mode(&mut r)?;
                let invite = decode_invite(&mut r)?;
                let key = r.array()?;
                let last = r.bool()?;
                let groups = decode_groups(&mut r)?;
                Self::Open(Open {
                    mode,
                    invite,
                    key,
                    groups,
                    last,
                    bound,
                })
            }
            TAG_SHAPES => {
                let session = SessionId(r.array()?);
                let last = r.bool()?;
                let groups = decode_groups(&mut r)?;
                Self::Shapes {
                    session,
                    groups,
                    last,
                }
            }
            TAG_NEXT => Self::Next {
                session: SessionId(r.array()?),
                index: r.u64()?,
            },
            TAG_PUSH => Self::Push {
                invite: r.array()?,
                mode: decode_mode(&mut r)?,
            },
            TAG_OPEN_SKETCH => Self::OpenSketch(OpenSketch {
                mode: decode_mode(&mut r)?,
                invite: decode_invite(&mut r)?,
                key: r.array()?,
                summary: if r.bool()? {
                    Some(decode_summary(&mut r)?)
                } else {
                    None
                },
                bound,
            }),
            TAG_SKETCH => Self::Sketch {
                session: SessionId(r.array()?),
                summary: decode_summary(&mut r)?,
            },
            TAG_SYMBOLS => {
                let session = SessionId(r.array()?);
                let from = u32::try_from(r.varint()?)
                    .ok()
                    .filter(|&f| f as usize <= MAX_SYMBOLS)
                    .ok_or(Error::Malformed("first symbol index beyond the cap"))?;
                let n =
                    r.varint_count(MAX_SYMBOLS - from as usize, SYMBOL_LEN, "too many symbols")?;
                let mut symbols = Vec::with_capacity(n);
                for _ in 0..n {
                    symbols.push(Symbol {
                        key: r.u64()?,
                        check: r.u32()?,
                        count: i32::from(r.u16()?),
                    });
                }
                Self::Symbols {
                    session,
                    from,
                    symbols,
                }
            }
            _ => return Err(Error::Malformed("unknown request tag")),
        };
        r.finish()?;
        Ok(msg)
    }
}

impl Response {
    /// Encodes the frame, checking every cap the decoder checks.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut w = Writer::with_capacity(64);
        w.u8(VERSION);
        match self {
            Self::Accepted { session, clients } => {
                if clients.len() > MAX_SHAPES_PER_FRAME {
                    return Err(Error::Malformed("too many clients in scope"));
                }
                w.u8(TAG_ACCEPTED);
                w.raw(&session.0);
                w.count(clients.len());
                for c in clients {
                    w.raw(c.as_bytes());
                }
            }
            Self::Continue => w.u8(TAG_CONTINUE),
            Self::Ready {
                session,
                key,
                records,
                bytes,
            } => {
                w.u8(TAG_READY);
                w.raw(&session.0);
                w.raw(key);
                w.u64(*records);
                w.u64(*bytes);
            }
            Self::Chunk { sealed } => {
                check_frame_len(sealed.len() + 2)?;
                w.buf.reserve(sealed.len() + 1);
                w.u8(TAG_CHUNK);
                w.raw(sealed);
            }
            Self::Pushed { report } => {
                w.u8(TAG_PUSHED);
                for n in [
                    report.added,
                    report.updated,
                    report.deleted,
                    report.unchanged,
                    report.conflicts_resolved,
                ] {
                    w.u64(n);
                }
            }
            Self::Refused { code, detail } => {
                w.u8(TAG_REFUSED);
                w.u8(code.to_byte());
                w.bytes_u16(truncate_utf8(detail, MAX_DETAIL_LEN).as_bytes());
            }
            Self::More {
                session,
                want,
                probes,
            } => {
                if probes.len() > FINE_PROBE_COUNT {
                    return Err(Error::Malformed("more probes than the fine probes"));
                }
                w.buf[0] = VERSION_2;
                w.u8(TAG_MORE);
                w.raw(&session.0);
                w.varint(u64::from(*want));
                w.varint(probes.len() as u64);
                w.raw(probes);
            }
            Self::Settled { digest, lacking } => {
                w.buf[0] = VERSION_2;
                w.u8(TAG_SETTLED);
                w.raw(digest);
                encode_keys(&mut w, lacking)?;
            }
            Self::Decoded {
                session,
                key,
                records,
                bytes,
                digest,
                lacking,
                sealed,
            } => {
                w.buf[0] = VERSION_2;
                w.buf.reserve(sealed.len() + lacking.len() * 8 + 128);
                w.u8(TAG_DECODED);
                w.raw(&session.0);
                w.raw(key);
                w.varint(*records);
                w.varint(*bytes);
                w.raw(digest);
                encode_keys(&mut w, lacking)?;
                w.raw(sealed);
            }
            Self::Fallback { reason } => {
                w.buf[0] = VERSION_2;
                w.u8(TAG_FALLBACK);
                w.u8(reason.to_byte());
            }
        }
        check_frame_len(w.buf.len())?;
        Ok(w.buf)
    }

    /// Decodes one frame.
    pub fn decode(frame: &[u8]) -> Result<Self, Error> {
        check_frame_len(frame.len())?;
        let mut r = Reader::new(frame);
        let (_, tag) = header(&mut r)?;
        let msg = match tag {
            TAG_ACCEPTED => {
                let session = SessionId(r.array()?);
                let n = r.count(MAX_SHAPES_PER_FRAME, 32, "too many clients in scope")?;
                let mut clients = Vec::with_capacity(n);
                for _ in 0..n {
                    clients.push(ClientId::from_bytes(r.array()?));
                }
                Self::Accepted { session, clients }
            }
            TAG_CONTINUE => Self::Continue,
            TAG_READY => Self::Ready {
                session: SessionId(r.array()?),
                key: r.array()?,
                records: r.u64()?,
                bytes: r.u64()?,
            },
            TAG_CHUNK => {
                let sealed = r.take(r.remaining())?.to_vec();
                Self::Chunk { sealed }
            }
            TAG_PUSHED => {
                let mut report = MergeReport::default();
                report.added = r.u64()?;
                report.updated = r.u64()?;
                report.deleted = r.u64()?;
                report.unchanged = r.u64()?;
                report.conflicts_resolved = r.u64()?;
                Self::Pushed { report }
            }
            TAG_REFUSED => {
                let code = RefusalCode::from_byte(r.u8()?);
                let detail = r.bytes_u16(MAX_DETAIL_LEN, "refusal detail too long")?;
                Self::Refused {
                    code,
                    detail: String::from_utf8_lossy(detail).into_owned(),
                }
            }
            TAG_MORE => Self::More {
                session: SessionId(r.array()?),
                want: u32::try_from(r.varint()?)
                    .ok()
                    .filter(|&w| w as usize <= MAX_SYMBOLS)
                    .ok_or(Error::Malformed("more symbols asked than the cap"))?,
                probes: {
                    let n = r.varint_count(FINE_PROBE_COUNT, 1, "too many probes")?;
                    r.take(n)?.to_vec()
                },
            },
            TAG_SETTLED => Self::Settled {
                digest: r.array()?,
                lacking: decode_keys(&mut r)?,
            },
            TAG_DECODED => {
                let session = SessionId(r.array()?);
                let key = r.array()?;
                let records = r.varint()?;
                let bytes = r.varint()?;
                let digest = r.array()?;
                let lacking = decode_keys(&mut r)?;
                let sealed = r.take(r.remaining())?.to_vec();
                Self::Decoded {
                    session,
                    key,
                    records,
                    bytes,
                    digest,
                    lacking,
                    sealed,
                }
            }
            TAG_FALLBACK => Self::Fallback {
                reason: FallbackReason::from_byte(r.u8()?),
            },
            _ => return Err(Error::Malformed("unknown response tag")),
        };
        r.finish()?;
        Ok(msg)
    }
}

/// Fails with [`Error::FrameTooLarge`] if `len` exceeds [`MAX_FRAME_LEN`]. Transports call this
/// with the announced length before they read a frame.
pub fn check_frame_len(len: usize) -> Result<(), Error> {
    if len > MAX_FRAME_LEN {
        return Err(Error::FrameTooLarge {
            len,
            max: MAX_FRAME_LEN,
        });
    }
    Ok(())
}

/// Reads the version byte and the tag, and checks that the tag belongs to that version: a
/// message keeps the version byte of the version that defined it, except that a bound
/// session's opening (`Open` or `OpenSketch`) carries version byte 3. Returns both.
fn header(r: &mut Reader<'_>) -> Result<(u8, u8), Error> {
    let version = r.u8()?;
    if !(VERSION..=VERSION_3).contains(&version) {
        return Err(Error::UnsupportedVersion(version));
    }
    let tag = r.u8()?;
    let defined_in = match tag {
        TAG_OPEN | TAG_OPEN_SKETCH if version == VERSION_3 => VERSION_3,
        TAG_OPEN_SKETCH | TAG_SKETCH | TAG_SYMBOLS | TAG_MORE | TAG_SETTLED | TAG_DECODED
        | TAG_FALLBACK => VERSION_2,
        _ => VERSION,
    };
    if version != defined_in {
        return Err(Error::Malformed("message tag and version byte disagree"));
    }
    Ok((version, tag))
}

fn encode_invite(w: &mut Writer, invite: Option<[u8; 16]>) {
    match invite {
        Some(invite) => {
            w.u8(1);
            w.raw(&invite);
        }
        None => w.u8(0),
    }
}

fn decode_invite(r: &mut Reader<'_>) -> Result<Option<[u8; 16]>, Error> {
    match r.u8()? {
        0 => Ok(None),
        1 => Ok(Some(r.array()?)),
        _ => Err(Error::Malformed("invite flag is neither 0 nor 1")),
    }
}

fn encode_summary(w: &mut Writer, s: &Summary) {
    w.varint(s.len);
    w.u64(s.first.key);
    w.u32(s.first.check);
    w.raw(&s.probes);
}

fn decode_summary(r: &mut Reader<'_>) -> Result<Summary, Error> {
    let len = r.varint()?;
    let key = r.u64()?;
    let check = r.u32()?;
    Ok(Summary {
        len,
        first: Symbol {
            key,
            check,
            count: 0,
        },
        probes: r.array()?,
    })
}

fn encode_keys(w: &mut Writer, keys: &[u64]) -> Result<(), Error> {
    if keys.len() > MAX_SYMBOLS {
        return Err(Error::Malformed("more lacking keys than the sketch's cap"));
    }
    w.varint(keys.len() as u64);
    for k in keys {
        w.u64(*k);
    }
    Ok(())
}

fn decode_keys(r: &mut Reader<'_>) -> Result<Vec<u64>, Error> {
    let n = r.varint_count(MAX_SYMBOLS, 8, "too many lacking keys")?;
    let mut keys = Vec::with_capacity(n);
    for _ in 0..n {
        keys.push(r.u64()?);
    }
    Ok(keys)
}

fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn check_path(p: &[u8]) -> Result<(), Error> {
    if p.is_empty() || p.len() > redoubt_vault::MAX_PATH_LEN {
        return Err(Error::Malformed("path must be 1 to 1024 bytes"));
    }
    Ok(())
}

fn check_items(n: usize) -> Result<(), Error> {
    if n > MAX_SELECTION_ITEMS {
        return Err(Error::Malformed("too many items in a selection"));
    }
    Ok(())
}

const MODE_FULL: u8 = 0;
const MODE_PARTIAL: u8 = 1;
const MODE_IMPORT: u8 = 2;

fn encode_mode(w: &mut Writer, mode: &Mode) -> Result<(), Error> {
    match mode {
        Mode::Full { client } => {
            check_path(client)?;
            w.u8(MODE_FULL);
            w.bytes_u16(client);
        }
        Mode::Partial {
            client,
            vaults,
            records,
        } => {
            check_path(client)?;
            check_items(vaults.len())?;
            check_items(records.len())?;
            w.u8(MODE_PARTIAL);
            w.bytes_u16(client);
            w.count(vaults.len());
            for v in vaults {
                check_path(v)?;
                w.bytes_u16(v);
            }
            w.count(records.len());
            for l in records {
                w.bytes_u16(l.vault_path());
                w.bytes_u16(l.record_path());
            }
        }
        Mode::Import { clients } => {
            check_items(clients.len())?;
            w.u8(MODE_IMPORT);
            w.count(clients.len());
            for c in clients {
                check_path(c)?;
                w.bytes_u16(c);
            }
        }
    }
    Ok(())
}

fn decode_mode(r: &mut Reader<'_>) -> Result<Mode, Error> {
    Ok(match r.u8()? {
        MODE_FULL => Mode::Full {
            client: r.path()?.to_vec(),
        },
        MODE_PARTIAL => {
            let client = r.path()?.to_vec();
            let n = r.count(MAX_SELECTION_ITEMS, 3, "too many vault paths")?;
            let mut vaults = Vec::with_capacity(n);
            for _ in 0..n {
                vaults.push(r.path()?.to_vec());
            }
            let n = r.count(MAX_SELECTION_ITEMS, 6, "too many record locations")?;
            let mut records = Vec::with_capacity(n);
            for _ in 0..n {
                let vault = r.path()?.to_vec();
                let record = r.path()?.to_vec();
                records.push(Location::new(vault, record)?);
            }
            Mode::Partial {
                client,
                vaults,
                records,
            }
        }
        MODE_IMPORT => {
            let n = r.count(MAX_SELECTION_ITEMS, 3, "too many clients")?;
            let mut clients = Vec::with_capacity(n);
            for _ in 0..n {
                clients.push(r.path()?.to_vec());
            }
            Mode::Import { clients }
        }
        _ => return Err(Error::Malformed("unknown mode")),
    })
}

fn encode_groups(w: &mut Writer, groups: &[ShapeGroup]) -> Result<(), Error> {
    let total: usize = groups.iter().map(|g| g.shapes.len()).sum();
    if total > MAX_SHAPES_PER_FRAME || groups.len() > MAX_SHAPES_PER_FRAME {
        return Err(Error::Malformed("too many shapes in one frame"));
    }
    w.buf.reserve(groups.len() * 36 + total * SHAPE_LEN + 4);
    w.count(groups.len());
    for g in groups {
        w.raw(g.client.as_bytes());
        w.count(g.shapes.len());
        for s in &g.shapes {
            w.raw(s.vault.as_bytes());
            w.raw(s.record.as_bytes());
            w.u32(s.size);
            w.raw(&s.hash);
        }
    }
    Ok(())
}

fn decode_groups(r: &mut Reader<'_>) -> Result<Vec<ShapeGroup>, Error> {
    let n = r.count(MAX_SHAPES_PER_FRAME, 36, "too many shape groups")?;
    let mut groups = Vec::with_capacity(n);
    let mut total = 0usize;
    for _ in 0..n {
        let client = ClientId::from_bytes(r.array()?);
        let m = r.count(MAX_SHAPES_PER_FRAME, SHAPE_LEN, "too many shapes")?;
        total += m;
        if total > MAX_SHAPES_PER_FRAME {
            return Err(Error::Malformed("too many shapes in one frame"));
        }
        let mut shapes = Vec::with_capacity(m);
        for _ in 0..m {
            shapes.push(Shape {
                vault: VaultId::from_bytes(r.array()?),
                record: RecordId::from_bytes(r.array()?),
                size: r.u32()?,
                hash: r.array()?,
            });
        }
        groups.push(ShapeGroup { client, shapes });
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn shape(n: u8) -> Shape {
        Shape {
            vault: VaultId::from_bytes([n; 32]),
            record: RecordId::from_bytes([n.wrapping_add(1); 32]),
            size: u32::from(n),
            hash: [n.wrapping_add(2); 32],
        }
    }

    #[test]
    fn golden_bytes() {
        assert_eq!(Response::Continue.encode().unwrap(), [1, 0x82]);
        let next = Request::Next {
            session: SessionId([0xaa; 16]),
            index: 258,
        };
        let mut want = vec![1, 0x03];
        want.extend([0xaa; 16]);
        want.extend([2, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(next.encode().unwrap(), want);
        let refused = Response::Refused {
            code: RefusalCode::PermissionDenied,
            detail: "no".into(),
        };
        assert_eq!(refused.encode().unwrap(), [1, 0x86, 1, 2, 0, b'n', b'o']);
    }

    #[test]
    fn encoded_lengths() {
        let groups = vec![ShapeGroup {
            client: ClientId::from_bytes([1; 32]),
            shapes: vec![shape(1), shape(2)],
        }];
        let open = Request::Open(Open {
            mode: Mode::Full {
                client: b"alice".to_vec(),
            },
            invite: None,
            key: [3; 32],
            groups,
            last: true,
            bound: false,
        });
        // version, tag, mode (1 + 2 + 5), invite flag, key, last, group count, client, count,
        // two shapes.
        let len = 2 + 8 + 1 + 32 + 1 + 4 + 32 + 4 + 2 * SHAPE_LEN;
        assert_eq!(open.encode().unwrap().len(), len);
        // A bound opening changes the version byte only.
        let Request::Open(mut bound) = open.clone() else {
            unreachable!()
        };
        bound.bound = true;
        let (plain, bound) = (
            open.encode().unwrap(),
            Request::Open(bound).encode().unwrap(),
        );
        assert_eq!((plain[0], bound[0]), (VERSION, VERSION_3));
        assert_eq!(plain[1..], bound[1..]);
    }

    #[test]
    fn golden_bytes_of_bound_openings() {
        let open = Request::Open(Open {
            mode: Mode::Full {
                client: b"a".to_vec(),
            },
            invite: None,
            key: [0x11; 32],
            groups: Vec::new(),
            last: true,
            bound: true,
        });
        let mut want = vec![3, 0x01, 0, 1, 0, b'a', 0];
        want.extend([0x11; 32]);
        want.extend([1, 0, 0, 0, 0]);
        assert_eq!(open.encode().unwrap(), want);
        let sketch = Request::OpenSketch(OpenSketch {
            mode: Mode::Import {
                clients: vec![b"a".to_vec()],
            },
            invite: Some([0x22; 16]),
            key: [0x11; 32],
            summary: None,
            bound: true,
        });
        let mut want = vec![3, 0x05, 2, 1, 0, 0, 0, 1, 0, b'a', 1];
        want.extend([0x22; 16]);
        want.extend([0x11; 32]);
        want.push(0);
        assert_eq!(sketch.encode().unwrap(), want);
        for m in [open, sketch] {
            assert_eq!(Request::decode(&m.encode().unwrap()).unwrap(), m);
        }
    }

    /// Version byte 3 is only for the two openings; nothing else carries it, and a version
    /// beyond 3 is unsupported.
    #[test]
    fn version_3_is_for_openings_only() {
        let next = Request::Next {
            session: SessionId([0; 16]),
            index: 0,
        };
        let mut frame = next.encode().unwrap();
        frame[0] = VERSION_3;
        assert!(matches!(Request::decode(&frame), Err(Error::Malformed(_))));
        assert!(matches!(
            Response::decode(&[3, 0x82]),
            Err(Error::Malformed(_))
        ));
        assert!(matches!(
            Response::decode(&[3, 0x8a, 1]),
            Err(Error::Malformed(_))
        ));
        assert!(matches!(
            Request::decode(&[4, 0x01]),
            Err(Error::UnsupportedVersion(4))
        ));
    }

    #[test]
    fn caps_are_checked_before_allocation() {
        // A group count far beyond the bytes present.
        let mut frame = vec![1, 0x02];
        frame.extend([0; 16]);
        frame.push(1);
        frame.extend(u32::MAX.to_le_bytes());
        assert!(matches!(Request::decode(&frame), Err(Error::Malformed(_))));
        assert!(matches!(
            Request::decode(&vec![1; MAX_FRAME_LEN + 1]),
            Err(Error::FrameTooLarge { .. })
        ));
        assert!(matches!(
            Response::decode(&[4, 0x82]),
            Err(Error::UnsupportedVersion(4))
        ));
        // A version 1 message under version byte 2, and a version 2 one under byte 1.
        assert!(matches!(
            Response::decode(&[2, 0x82]),
            Err(Error::Malformed(_))
        ));
        assert!(matches!(
            Response::decode(&[1, 0x8a, 1]),
            Err(Error::Malformed(_))
        ));
        assert!(matches!(
            Response::decode(&[2, 0x8a, 1]),
            Ok(Response::Fallback {
                reason: FallbackReason::TooLarge
            })
        ));
        assert!(matches!(
            Response::decode(&[1, 0x82, 0]),
            Err(Error::Malformed(_))
        ));
        let too_many = ShapeGroup {
            client: ClientId::from_bytes([0; 32]),
            shapes: vec![shape(0); MAX_SHAPES_PER_FRAME + 1],
        };
        let shapes = Request::Shapes {
            session: SessionId([0; 16]),
            groups: vec![too_many],
            last: true,
        };
        assert!(shapes.encode().is_err());
    }

    fn mode() -> impl Strategy<Value = Mode> {
        let path = proptest::collection::vec(any::<u8>(), 1..20);
        prop_oneof![
            path.clone().prop_map(|client| Mode::Full { client }),
            (
                path.clone(),
                proptest::collection::vec(path.clone(), 0..4),
                proptest::collection::vec((path.clone(), path.clone()), 0..4)
            )
                .prop_map(|(client, vaults, recs)| Mode::Partial {
                    client,
                    vaults,
                    records: recs
                        .into_iter()
                        .map(|(v, r)| Location::new(v, r).unwrap())
                        .collect(),
                }),
            proptest::collection::vec(path, 0..4).prop_map(|clients| Mode::Import { clients }),
        ]
    }

    fn groups() -> impl Strategy<Value = Vec<ShapeGroup>> {
        proptest::collection::vec(
            (
                any::<[u8; 32]>(),
                proptest::collection::vec(any::<u8>().prop_map(shape), 0..5),
            ),
            0..4,
        )
        .prop_map(|g| {
            g.into_iter()
                .map(|(c, shapes)| ShapeGroup {
                    client: ClientId::from_bytes(c),
                    shapes,
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn requests_round_trip(
            mode in mode(),
            invite in proptest::option::of(any::<[u8; 16]>()),
            key in any::<[u8; 32]>(),
            groups in groups(),
            last in any::<bool>(),
            bound in any::<bool>(),
            index in any::<u64>(),
        ) {
            let msgs = [
                Request::Open(Open { mode: mode.clone(), invite, key, groups: groups.clone(), last, bound }),
                Request::Shapes { session: SessionId([7; 16]), groups, last },
                Request::Next { session: SessionId([8; 16]), index },
                Request::Push { invite: [9; 16], mode },
            ];
            for m in msgs {
                prop_assert_eq!(Request::decode(&m.encode().unwrap()).unwrap(), m);
            }
        }

        #[test]
        fn sketch_openings_round_trip_in_both_versions(
            mode in mode(),
            invite in proptest::option::of(any::<[u8; 16]>()),
            key in any::<[u8; 32]>(),
            summary in proptest::option::of((any::<u64>(), any::<u64>(), any::<u32>(), any::<[u8; 15]>())),
            bound in any::<bool>(),
        ) {
            let summary = summary.map(|(len, key, check, probes)| Summary {
                len,
                first: Symbol { key, check, count: 0 },
                probes,
            });
            let m = Request::OpenSketch(OpenSketch { mode, invite, key, summary, bound });
            let frame = m.encode().unwrap();
            prop_assert_eq!(frame[0], if bound { VERSION_3 } else { VERSION_2 });
            prop_assert_eq!(Request::decode(&frame).unwrap(), m);
        }

        #[test]
        fn responses_round_trip(
            key in any::<[u8; 32]>(),
            records in any::<u64>(),
            sealed in proptest::collection::vec(any::<u8>(), 0..64),
            code in any::<u8>(),
            detail in "[a-z ]{0,40}",
        ) {
            let mut report = MergeReport::default();
            report.added = records;
            report.deleted = 3;
            let code = RefusalCode::from_byte(code);
            let msgs = [
                Response::Accepted { session: SessionId([1; 16]), clients: vec![ClientId::from_bytes(key)] },
                Response::Continue,
                Response::Ready { session: SessionId([2; 16]), key, records, bytes: records / 2 },
                Response::Chunk { sealed },
                Response::Pushed { report },
                Response::Refused { code, detail },
            ];
            for m in msgs {
                prop_assert_eq!(Response::decode(&m.encode().unwrap()).unwrap(), m);
            }
        }

        #[test]
        fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Request::decode(&data);
            let _ = Response::decode(&data);
        }
    }
}
