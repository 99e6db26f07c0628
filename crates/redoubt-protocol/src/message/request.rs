//! Frames from requester to responder ([`Request`]); each variant's encoder sits directly above
//! its decoder.

use redoubt_vault::sketch::Symbol;

use super::{
    SessionId, TAG_NEXT, TAG_OPEN, TAG_OPEN_SKETCH, TAG_PUSH, TAG_SHAPES, TAG_SKETCH, TAG_SYMBOLS,
    finish, frame, header,
    mode::{Mode, ShapeGroup, decode_groups, decode_invite, decode_mode, encode_groups},
    mode::{encode_invite, encode_mode},
    opening_frame,
    sketch::{Summary, decode_summary, decode_symbols, encode_summary, encode_symbols},
};
use crate::{
    Error,
    codec::{Reader, Writer},
};

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
    /// Whether the bound session's chunks carry each record's lineage (version 4): the frame
    /// then carries version byte 4.
    pub lineage: bool,
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
    /// once [`Response::Accepted`](super::Response::Accepted) has named the scope.
    pub summary: Option<Summary>,
    /// Whether the session is bound (version 3): the frame carries version byte 3. Otherwise
    /// version byte 2.
    pub bound: bool,
    /// Whether the bound session's chunks carry each record's lineage (version 4): the frame
    /// then carries version byte 4.
    pub lineage: bool,
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

impl Request {
    /// Encodes the frame, checking every cap the decoder checks.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let w = match self {
            Self::Open(open) => encode_open(open)?,
            Self::Shapes {
                session,
                groups,
                last,
            } => encode_shapes(session, groups, *last)?,
            Self::Next { session, index } => encode_next(session, *index),
            Self::Push { invite, mode } => encode_push(invite, mode)?,
            Self::OpenSketch(open) => encode_open_sketch(open)?,
            Self::Sketch { session, summary } => encode_sketch(session, summary),
            Self::Symbols {
                session,
                from,
                symbols,
            } => encode_symbols_frame(session, *from, symbols)?,
        };
        finish(w)
    }

    /// Decodes one frame.
    pub fn decode(frame: &[u8]) -> Result<Self, Error> {
        let (mut r, bound, lineage, tag) = header(frame)?;
        let msg = match tag {
            TAG_OPEN => Self::Open(decode_open(&mut r, bound, lineage)?),
            TAG_SHAPES => decode_shapes(&mut r)?,
            TAG_NEXT => decode_next(&mut r)?,
            TAG_PUSH => decode_push(&mut r)?,
            TAG_OPEN_SKETCH => Self::OpenSketch(decode_open_sketch(&mut r, bound, lineage)?),
            TAG_SKETCH => decode_sketch(&mut r)?,
            TAG_SYMBOLS => decode_symbols_frame(&mut r)?,
            _ => return Err(Error::Malformed("unknown request tag")),
        };
        r.finish()?;
        Ok(msg)
    }
}

fn encode_open(open: &Open) -> Result<Writer, Error> {
    let mut w = opening_frame(TAG_OPEN, open.bound, open.lineage)?;
    encode_mode(&mut w, &open.mode)?;
    encode_invite(&mut w, open.invite);
    w.raw(&open.key);
    w.u8(u8::from(open.last));
    encode_groups(&mut w, &open.groups)?;
    Ok(w)
}

fn decode_open(r: &mut Reader<'_>, bound: bool, lineage: bool) -> Result<Open, Error> {
    let mode = decode_mode(r)?;
    let invite = decode_invite(r)?;
    let key = r.array()?;
    let last = r.bool()?;
    let groups = decode_groups(r)?;
    Ok(Open {
        mode,
        invite,
        key,
        groups,
        last,
        bound,
        lineage,
    })
}

fn encode_shapes(session: &SessionId, groups: &[ShapeGroup], last: bool) -> Result<Writer, Error> {
    let mut w = frame(TAG_SHAPES, false);
    w.raw(&session.0);
    w.u8(u8::from(last));
    encode_groups(&mut w, groups)?;
    Ok(w)
}

fn decode_shapes(r: &mut Reader<'_>) -> Result<Request, Error> {
    let session = SessionId(r.array()?);
    let last = r.bool()?;
    let groups = decode_groups(r)?;
    Ok(Request::Shapes {
        session,
        groups,
        last,
    })
}

fn encode_next(session: &SessionId, index: u64) -> Writer {
    let mut w = frame(TAG_NEXT, false);
    w.raw(&session.0);
    w.u64(index);
    w
}

fn decode_next(r: &mut Reader<'_>) -> Result<Request, Error> {
    Ok(Request::Next {
        session: SessionId(r.array()?),
        index: r.u64()?,
    })
}

fn encode_push(invite: &[u8; 16], mode: &Mode) -> Result<Writer, Error> {
    let mut w = frame(TAG_PUSH, false);
    w.raw(invite);
    encode_mode(&mut w, mode)?;
    Ok(w)
}

fn decode_push(r: &mut Reader<'_>) -> Result<Request, Error> {
    Ok(Request::Push {
        invite: r.array()?,
        mode: decode_mode(r)?,
    })
}

fn encode_open_sketch(open: &OpenSketch) -> Result<Writer, Error> {
    let mut w = opening_frame(TAG_OPEN_SKETCH, open.bound, open.lineage)?;
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
    Ok(w)
}

fn decode_open_sketch(r: &mut Reader<'_>, bound: bool, lineage: bool) -> Result<OpenSketch, Error> {
    Ok(OpenSketch {
        mode: decode_mode(r)?,
        invite: decode_invite(r)?,
        key: r.array()?,
        summary: if r.bool()? {
            Some(decode_summary(r)?)
        } else {
            None
        },
        bound,
        lineage,
    })
}

fn encode_sketch(session: &SessionId, summary: &Summary) -> Writer {
    let mut w = frame(TAG_SKETCH, false);
    w.raw(&session.0);
    encode_summary(&mut w, summary);
    w
}

fn decode_sketch(r: &mut Reader<'_>) -> Result<Request, Error> {
    Ok(Request::Sketch {
        session: SessionId(r.array()?),
        summary: decode_summary(r)?,
    })
}

fn encode_symbols_frame(
    session: &SessionId,
    from: u32,
    symbols: &[Symbol],
) -> Result<Writer, Error> {
    let mut w = frame(TAG_SYMBOLS, false);
    w.raw(&session.0);
    encode_symbols(&mut w, from, symbols)?;
    Ok(w)
}

fn decode_symbols_frame(r: &mut Reader<'_>) -> Result<Request, Error> {
    let session = SessionId(r.array()?);
    let (from, symbols) = decode_symbols(r)?;
    Ok(Request::Symbols {
        session,
        from,
        symbols,
    })
}
