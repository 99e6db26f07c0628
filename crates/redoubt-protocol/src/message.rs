//! Wire messages of `/redoubt/sync/1`, `/2`, `/3` and `/4`: one frame per request or response.
//!
//! Every frame starts with a version byte and a message tag; `docs/protocol.md` specifies every
//! field. A message keeps the version byte of the version that defined it, whichever session
//! carries it ([`TAGS`] is the one table of tags and versions):
//!
//! - **Version 1** (`/redoubt/sync/1`, byte 1): the requester sends every shape. [`Open`],
//!   [`Request::Shapes`], [`Request::Next`] and [`Request::Push`]; [`Response::Accepted`],
//!   `Continue`, `Ready`, `Chunk`, `Pushed` and `Refused`.
//! - **Version 2** (`/redoubt/sync/2`, byte 2): sketch reconciliation before version 1's sealed
//!   stream. [`OpenSketch`], [`Request::Sketch`] and [`Request::Symbols`];
//!   [`Response::More`], `Settled`, `Decoded` and `Fallback`.
//! - **Version 3** (`/redoubt/sync/3`, byte 3): version 2's messages in a session bound to both
//!   peers and the transcript. It adds no message: only a bound opening ([`Open`] or
//!   [`OpenSketch`] with `bound`) carries byte 3.
//! - **Version 4** (`/redoubt/sync/4`, byte 4): version 3 whose chunk entries carry each
//!   record's lineage (its parent and history). It adds no message either: only a bound
//!   opening with `lineage` carries byte 4.
//!
//! Decoders check the frame cap first and every count against the bytes that remain, so a
//! hostile frame cannot make them allocate more than its own length. Encoders check the same
//! caps. One file per family keeps each type's encoder directly above its decoder: `mode`
//! (what a request selects, shape groups, invitations), `request`, `response`, `refusal` and
//! `sketch` (version 2's summary, symbols, lacking keys and fallback reasons); a new message
//! needs its tag in [`TAGS`], a variant, and an encoder and decoder pair in its family's file.

use std::fmt;

use crate::{
    Error,
    codec::{Reader, Writer},
    limits::MAX_FRAME_LEN,
};

mod mode;
mod refusal;
mod request;
mod response;
mod sketch;
#[cfg(test)]
mod tests;

pub use mode::{Mode, ShapeGroup};
pub use refusal::RefusalCode;
pub use request::{Open, OpenSketch, Request};
pub use response::Response;
pub use sketch::{FallbackReason, SYMBOL_LEN, Summary};

/// The libp2p protocol name of version 1: the requester sends every shape.
pub const PROTOCOL_NAME: &str = "/redoubt/sync/1";
/// The libp2p protocol name of version 2: sketch reconciliation, then version 1's stream.
pub const PROTOCOL_NAME_V2: &str = "/redoubt/sync/2";
/// The libp2p protocol name of version 3: version 2's messages, every session bound to both
/// peers' ids and the transcript of both sides' frames. It is also part of the session key.
pub const PROTOCOL_NAME_V3: &str = "/redoubt/sync/3";
/// The libp2p protocol name of version 4: version 3, its chunk entries carrying each record's
/// lineage (parent and history). It is also part of the session key.
pub const PROTOCOL_NAME_V4: &str = "/redoubt/sync/4";
/// The version byte of messages defined by version 1 (they keep it inside later sessions).
pub const VERSION: u8 = 1;
/// The version byte of messages version 2 added.
pub const VERSION_2: u8 = 2;
/// The version byte of a bound session's opening ([`Open`] or [`OpenSketch`] with `bound`);
/// version 3 adds no other message.
pub const VERSION_3: u8 = 3;
/// The version byte of a bound opening whose session carries lineage ([`Open`] or
/// [`OpenSketch`] with `lineage`); version 4 adds no other message.
pub const VERSION_4: u8 = 4;

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

/// Every message tag with the version byte of the version that defines it. Encoders write the
/// byte from here and [`header`] checks it against here; a bound opening ([`TAG_OPEN`] or
/// [`TAG_OPEN_SKETCH`]) carries [`VERSION_3`] instead.
const TAGS: [(u8, u8); 17] = [
    (TAG_OPEN, VERSION),
    (TAG_SHAPES, VERSION),
    (TAG_NEXT, VERSION),
    (TAG_PUSH, VERSION),
    (TAG_OPEN_SKETCH, VERSION_2),
    (TAG_SKETCH, VERSION_2),
    (TAG_SYMBOLS, VERSION_2),
    (TAG_ACCEPTED, VERSION),
    (TAG_CONTINUE, VERSION),
    (TAG_READY, VERSION),
    (TAG_CHUNK, VERSION),
    (TAG_PUSHED, VERSION),
    (TAG_REFUSED, VERSION),
    (TAG_MORE, VERSION_2),
    (TAG_SETTLED, VERSION_2),
    (TAG_DECODED, VERSION_2),
    (TAG_FALLBACK, VERSION_2),
];

/// The version byte a message with `tag` carries: [`VERSION_4`] for a bound opening with
/// lineage, [`VERSION_3`] for one without, else the one [`TAGS`] gives (an unknown tag counts
/// as version 1 and fails in the decoder's match).
fn version_of(tag: u8, bound: bool, lineage: bool) -> u8 {
    if bound && matches!(tag, TAG_OPEN | TAG_OPEN_SKETCH) {
        return if lineage { VERSION_4 } else { VERSION_3 };
    }
    TAGS.iter()
        .find(|&&(t, _)| t == tag)
        .map_or(VERSION, |&(_, v)| v)
}

/// A writer holding a frame's version byte and `tag`; `bound` only matters for the openings.
fn frame(tag: u8, bound: bool) -> Writer {
    let mut w = Writer::with_capacity(64);
    w.u8(version_of(tag, bound, false));
    w.u8(tag);
    w
}

/// A writer holding an opening's version byte and `tag`; lineage (version 4) needs `bound`.
fn opening_frame(tag: u8, bound: bool, lineage: bool) -> Result<Writer, Error> {
    if lineage && !bound {
        return Err(Error::Binding(
            "a session carrying lineage (version 4) must be bound",
        ));
    }
    let mut w = Writer::with_capacity(64);
    w.u8(version_of(tag, bound, lineage));
    w.u8(tag);
    Ok(w)
}

/// The encoded frame, once its length is within the cap.
fn finish(w: Writer) -> Result<Vec<u8>, Error> {
    check_frame_len(w.buf.len())?;
    Ok(w.into_bytes())
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

/// Checks the frame cap, reads the version byte and the tag, and checks that the tag belongs to
/// that version ([`version_of`]). Returns the reader after the tag, whether the frame is bound
/// (version byte 3 or 4), whether it carries lineage (version byte 4) and the tag.
fn header(frame: &[u8]) -> Result<(Reader<'_>, bool, bool, u8), Error> {
    check_frame_len(frame.len())?;
    let mut r = Reader::new(frame);
    let version = r.u8()?;
    if !(VERSION..=VERSION_4).contains(&version) {
        return Err(Error::UnsupportedVersion(version));
    }
    let tag = r.u8()?;
    let bound = version >= VERSION_3;
    let lineage = version == VERSION_4;
    if version != version_of(tag, bound, lineage) {
        return Err(Error::Malformed("message tag and version byte disagree"));
    }
    Ok((r, bound, lineage, tag))
}

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
