//! The protocol crate's error type.

use crate::message::RefusalCode;

/// What went wrong in a sync session. Messages name fields and counts, never secret values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A frame is larger than the protocol allows; nothing was allocated for it.
    #[error("frame too large: {len} bytes (at most {max})")]
    FrameTooLarge {
        /// Its announced or actual length.
        len: usize,
        /// The cap that applies.
        max: usize,
    },
    /// A frame could not be decoded.
    #[error("malformed frame: {0}")]
    Malformed(&'static str),
    /// The peer speaks another protocol version.
    #[error("unsupported protocol version {0} (this node speaks versions 1 to 4)")]
    UnsupportedVersion(u8),
    /// A record carries lineage (a parent or a history) and the session runs version 1, 2 or 3,
    /// whose chunks cannot carry it: sent without it, the peer could not verify the record
    /// against its shape nor converge on it. Both peers must speak `/redoubt/sync/4`.
    #[error(
        "a record with history cannot travel in /redoubt/sync/1 to /3: both peers must speak \
         /redoubt/sync/4 (update the other node)"
    )]
    LineageUnsupported,
    /// A message arrived that the session's state does not expect.
    #[error("unexpected message: {0}")]
    Unexpected(&'static str),
    /// The peer refused the request, with its reason.
    #[error("{}", refusal_text(*.code, .detail))]
    Refused {
        /// Why.
        code: RefusalCode,
        /// The peer's explanation (shown lossily, at most a few hundred bytes).
        detail: String,
    },
    /// The peer's ephemeral key gave an all-zero shared secret (a low-order point).
    #[error("the peer's ephemeral key is invalid (all-zero shared secret)")]
    WeakKey,
    /// A sealed chunk failed authentication: tampered, reordered, replayed from another session,
    /// or sealed under another key.
    #[error("tampered stream: chunk {index} failed authentication")]
    Tampered {
        /// The chunk's index in the stream.
        index: u64,
    },
    /// The stream ended without its final chunk.
    #[error("truncated stream: ended after {chunks} chunks without the final one")]
    Truncated {
        /// Chunks received and verified.
        chunks: u64,
    },
    /// A record did not match the shape the responder claimed for it, or lay outside what was
    /// asked for.
    #[error("record rejected in chunk {index}: {reason}")]
    BadRecord {
        /// The chunk's index.
        index: u64,
        /// What did not match.
        reason: &'static str,
    },
    /// After a version 2 reconciliation, the sets did not add up: the responder's digest is
    /// not ours minus what it lacks plus what it sent (a 64-bit key collision, a false decode,
    /// or a store that changed mid-session). Nothing wrong was accepted: every record was
    /// checked on its own. The caller falls back to sending every shape.
    #[error("sketch reconciliation did not add up ({0}); falling back to sending every shape")]
    SketchMismatch(&'static str),
    /// A record or chunk went beyond what the responder announced in `Ready` or `Decoded`: more
    /// records, or more value bytes than announced plus [`crate::ANNOUNCED_BYTES_SLACK`].
    #[error("chunk {index} goes beyond what the responder announced: {what}")]
    OverAnnounced {
        /// The chunk's index.
        index: u64,
        /// Which count it exceeds.
        what: &'static str,
    },
    /// A chunk that is not the last one carries no record (a responder never sends one, so a
    /// stream of them could only run forever).
    #[error("chunk {index} is empty but not the last")]
    EmptyChunk {
        /// The chunk's index.
        index: u64,
    },
    /// The responder's `Accepted` names a client this pull did not ask for: a requester never
    /// summarizes, sends shapes of or takes records of a client it did not ask for.
    #[error("the responder's scope names a client this pull did not ask for")]
    NotAsked,
    /// An import that names no client: a requester takes records only of clients it names, so
    /// the caller must list the clients it accepts.
    #[error("an import must name the clients it asks for")]
    EmptyImport,
    /// A peer id for a bound session is empty or longer than [`crate::MAX_PEER_ID_LEN`].
    #[error("peer id of {len} bytes (a bound session takes 1 to {max})", max = crate::MAX_PEER_ID_LEN)]
    BadPeerId {
        /// Its length.
        len: usize,
    },
    /// A bound (version 3) opening reached an unbound constructor (which has no peer ids to
    /// bind it to), or a version 1 or 2 opening a bound one.
    #[error("session binding: {0}")]
    Binding(&'static str),
    /// The local shape-fallback policy refused to send every shape on the responder's word.
    #[error("refused to fall back to sending every shape ({shapes} in scope): {why}")]
    FallbackRefused {
        /// Versions in our scope (the shapes a fallback would send).
        shapes: u64,
        /// Which rule refused it.
        why: &'static str,
    },
    /// A pairing code or payload is not in the form `NN-DDDD-DDDD` (or
    /// `redoubt-pair:1:CODE:PEER:ADDRS`).
    #[error("invalid pairing code: {0}")]
    BadCode(&'static str),
    /// The pairing was refused or failed its confirmation.
    #[error("pairing failed: {0}")]
    PairRefused(crate::pairing::PairRefusal),
    /// A vault-model rule was broken (a path or value size).
    #[error(transparent)]
    Vault(#[from] redoubt_vault::Error),
    /// The replica could not be read (an I/O error or a corrupt entry of a store on disk): the
    /// session ends rather than take the unread part as absent.
    #[error("the replica could not be read: {0}")]
    Replica(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    /// The system random number generator failed.
    #[error("random number generator failed")]
    Random,
}

fn refusal_text(code: RefusalCode, detail: &str) -> String {
    if detail.is_empty() {
        format!("refused by peer: {code}")
    } else {
        format!("refused by peer: {code}: {detail}")
    }
}
