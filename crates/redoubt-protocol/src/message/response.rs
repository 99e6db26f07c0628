//! Frames from responder to requester ([`Response`]); each variant's encoder sits directly above
//! its decoder.

use redoubt_vault::{
    ClientId, MergeReport,
    sketch::{FINE_PROBE_COUNT, MAX_SYMBOLS},
};

use super::{
    SessionId, TAG_ACCEPTED, TAG_CHUNK, TAG_CONTINUE, TAG_DECODED, TAG_FALLBACK, TAG_MORE,
    TAG_PUSHED, TAG_READY, TAG_REFUSED, TAG_SETTLED, check_frame_len, finish, frame, header,
    refusal::RefusalCode,
    sketch::{FallbackReason, decode_keys, encode_keys},
};
use crate::{
    Error,
    codec::{Reader, Writer},
    limits::{MAX_DETAIL_LEN, MAX_SHAPES_PER_FRAME},
};

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

impl Response {
    /// Encodes the frame, checking every cap the decoder checks.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let w = match self {
            Self::Accepted { session, clients } => encode_accepted(session, clients)?,
            Self::Continue => frame(TAG_CONTINUE, false),
            Self::Ready {
                session,
                key,
                records,
                bytes,
            } => encode_ready(session, key, *records, *bytes),
            Self::Chunk { sealed } => encode_chunk(sealed)?,
            Self::Pushed { report } => encode_pushed(report),
            Self::Refused { code, detail } => encode_refused(*code, detail),
            Self::More {
                session,
                want,
                probes,
            } => encode_more(session, *want, probes)?,
            Self::Settled { digest, lacking } => encode_settled(digest, lacking)?,
            Self::Decoded {
                session,
                key,
                records,
                bytes,
                digest,
                lacking,
                sealed,
            } => encode_decoded(session, key, (*records, *bytes), digest, lacking, sealed)?,
            Self::Fallback { reason } => encode_fallback(*reason),
        };
        finish(w)
    }

    /// Decodes one frame.
    pub fn decode(frame: &[u8]) -> Result<Self, Error> {
        let (mut r, _, _, tag) = header(frame)?;
        let msg = match tag {
            TAG_ACCEPTED => decode_accepted(&mut r)?,
            TAG_CONTINUE => Self::Continue,
            TAG_READY => decode_ready(&mut r)?,
            TAG_CHUNK => decode_chunk(&mut r)?,
            TAG_PUSHED => decode_pushed(&mut r)?,
            TAG_REFUSED => decode_refused(&mut r)?,
            TAG_MORE => decode_more(&mut r)?,
            TAG_SETTLED => decode_settled(&mut r)?,
            TAG_DECODED => decode_decoded(&mut r)?,
            TAG_FALLBACK => decode_fallback(&mut r)?,
            _ => return Err(Error::Malformed("unknown response tag")),
        };
        r.finish()?;
        Ok(msg)
    }
}

fn encode_accepted(session: &SessionId, clients: &[ClientId]) -> Result<Writer, Error> {
    if clients.len() > MAX_SHAPES_PER_FRAME {
        return Err(Error::Malformed("too many clients in scope"));
    }
    let mut w = frame(TAG_ACCEPTED, false);
    w.raw(&session.0);
    w.count(clients.len());
    for c in clients {
        w.raw(c.as_bytes());
    }
    Ok(w)
}

fn decode_accepted(r: &mut Reader<'_>) -> Result<Response, Error> {
    let session = SessionId(r.array()?);
    let n = r.count(MAX_SHAPES_PER_FRAME, 32, "too many clients in scope")?;
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        clients.push(ClientId::from_bytes(r.array()?));
    }
    Ok(Response::Accepted { session, clients })
}

fn encode_ready(session: &SessionId, key: &[u8; 32], records: u64, bytes: u64) -> Writer {
    let mut w = frame(TAG_READY, false);
    w.raw(&session.0);
    w.raw(key);
    w.u64(records);
    w.u64(bytes);
    w
}

fn decode_ready(r: &mut Reader<'_>) -> Result<Response, Error> {
    Ok(Response::Ready {
        session: SessionId(r.array()?),
        key: r.array()?,
        records: r.u64()?,
        bytes: r.u64()?,
    })
}

fn encode_chunk(sealed: &[u8]) -> Result<Writer, Error> {
    check_frame_len(sealed.len() + 2)?;
    let mut w = frame(TAG_CHUNK, false);
    w.buf.reserve(sealed.len());
    w.raw(sealed);
    Ok(w)
}

fn decode_chunk(r: &mut Reader<'_>) -> Result<Response, Error> {
    Ok(Response::Chunk {
        sealed: r.take(r.remaining())?.to_vec(),
    })
}

fn encode_pushed(report: &MergeReport) -> Writer {
    let mut w = frame(TAG_PUSHED, false);
    for n in [
        report.added,
        report.updated,
        report.deleted,
        report.unchanged,
        report.conflicts_resolved,
    ] {
        w.u64(n);
    }
    w
}

fn decode_pushed(r: &mut Reader<'_>) -> Result<Response, Error> {
    let mut report = MergeReport::default();
    report.added = r.u64()?;
    report.updated = r.u64()?;
    report.deleted = r.u64()?;
    report.unchanged = r.u64()?;
    report.conflicts_resolved = r.u64()?;
    Ok(Response::Pushed { report })
}

/// The detail is cut to [`MAX_DETAIL_LEN`] bytes at a character boundary.
fn encode_refused(code: RefusalCode, detail: &str) -> Writer {
    let mut end = detail.len().min(MAX_DETAIL_LEN);
    while !detail.is_char_boundary(end) {
        end -= 1;
    }
    let mut w = frame(TAG_REFUSED, false);
    w.u8(code.to_byte());
    w.bytes_u16(&detail.as_bytes()[..end]);
    w
}

fn decode_refused(r: &mut Reader<'_>) -> Result<Response, Error> {
    let code = RefusalCode::from_byte(r.u8()?);
    let detail = r.bytes_u16(MAX_DETAIL_LEN, "refusal detail too long")?;
    Ok(Response::Refused {
        code,
        detail: String::from_utf8(detail.to_vec())
            .map_err(|_| Error::Malformed("refusal detail is not UTF-8"))?,
    })
}

fn encode_more(session: &SessionId, want: u32, probes: &[u8]) -> Result<Writer, Error> {
    if probes.len() > FINE_PROBE_COUNT {
        return Err(Error::Malformed("more probes than the fine probes"));
    }
    let mut w = frame(TAG_MORE, false);
    w.raw(&session.0);
    w.varint(u64::from(want));
    w.varint(probes.len() as u64);
    w.raw(probes);
    Ok(w)
}

fn decode_more(r: &mut Reader<'_>) -> Result<Response, Error> {
    Ok(Response::More {
        session: SessionId(r.array()?),
        want: u32::try_from(r.varint()?)
            .ok()
            .filter(|&w| w as usize <= MAX_SYMBOLS)
            .ok_or(Error::Malformed("more symbols asked than the cap"))?,
        probes: {
            let n = r.varint_count(FINE_PROBE_COUNT, 1, "too many probes")?;
            r.take(n)?.to_vec()
        },
    })
}

fn encode_settled(digest: &[u8; 32], lacking: &[u64]) -> Result<Writer, Error> {
    let mut w = frame(TAG_SETTLED, false);
    w.raw(digest);
    encode_keys(&mut w, lacking)?;
    Ok(w)
}

fn decode_settled(r: &mut Reader<'_>) -> Result<Response, Error> {
    Ok(Response::Settled {
        digest: r.array()?,
        lacking: decode_keys(r)?,
    })
}

/// The pair is the complement's records and value bytes, as in [`Response::Decoded`].
fn encode_decoded(
    session: &SessionId,
    key: &[u8; 32],
    (records, bytes): (u64, u64),
    digest: &[u8; 32],
    lacking: &[u64],
    sealed: &[u8],
) -> Result<Writer, Error> {
    let mut w = frame(TAG_DECODED, false);
    w.buf.reserve(sealed.len() + lacking.len() * 8 + 128);
    w.raw(&session.0);
    w.raw(key);
    w.varint(records);
    w.varint(bytes);
    w.raw(digest);
    encode_keys(&mut w, lacking)?;
    w.raw(sealed);
    Ok(w)
}

fn decode_decoded(r: &mut Reader<'_>) -> Result<Response, Error> {
    let session = SessionId(r.array()?);
    let key = r.array()?;
    let records = r.varint()?;
    let bytes = r.varint()?;
    let digest = r.array()?;
    let lacking = decode_keys(r)?;
    let sealed = r.take(r.remaining())?.to_vec();
    Ok(Response::Decoded {
        session,
        key,
        records,
        bytes,
        digest,
        lacking,
        sealed,
    })
}

fn encode_fallback(reason: FallbackReason) -> Writer {
    let mut w = frame(TAG_FALLBACK, false);
    w.u8(reason.to_byte());
    w
}

fn decode_fallback(r: &mut Reader<'_>) -> Result<Response, Error> {
    Ok(Response::Fallback {
        reason: FallbackReason::from_byte(r.u8()?),
    })
}
