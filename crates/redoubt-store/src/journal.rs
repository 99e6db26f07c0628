//! The event journal: one event per commit, hash-chained, sealed row by row in table
//! `journal` (the wallet seed's event-sourced state: the `records` table is the folded base
//! state, and the events after it say how it got there).
//!
//! **One frozen module per schema version.** Each version's types, encode, decode, hash and
//! apply live in their own module ([`v1`] today). A released version's module is never edited
//! (pure refactorings aside, which its test vector proves byte for byte): events of every
//! version a store may still hold must keep decoding, hashing and applying exactly as they did.
//! A later version adds `journal/v2.rs`, which reuses v1's functions by importing them (and
//! wraps or replaces only what changes), adds a variant to [`Event`], and becomes what commits
//! write; [`decode`], [`hash`] and [`apply`] dispatch on the version an event carries, so the
//! versions in one journal form a non-decreasing sequence and each is read by its own rules.
//!
//! `docs/journal-format.md` specifies every byte; `tests/vectors/journal-v1-events.txt` pins
//! version 1 and `tests/vectors/journal-v2-events.txt` version 2 (records with lineage).

pub mod v1;
pub mod v2;

use redoubt_vault::{AccessTable, Instance, NodeId};

use crate::Error;

/// The newest schema version commits write: version 2 when a record the commit wrote carries
/// lineage, version 1 otherwise.
pub const SCHEMA_VERSION: u16 = v2::SCHEMA_VERSION;

/// Default retention window of [`Limits`]: 30 days, as the wallet keeps its events.
pub const DEFAULT_RETENTION_MS: u64 = 30 * 24 * 60 * 60 * 1000;
/// Default event count of [`Limits`].
pub const DEFAULT_MAX_EVENTS: u64 = 100_000;

/// A decoded event of any schema version this build reads.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Event {
    /// Schema version 1.
    V1(v1::Event),
    /// Schema version 2: version 1's event whose records carry their lineage.
    V2(v2::Event),
}

impl Event {
    /// The event's schema version.
    pub fn version(&self) -> u16 {
        match self {
            Self::V1(_) => v1::SCHEMA_VERSION,
            Self::V2(_) => v2::SCHEMA_VERSION,
        }
    }

    /// Its sequence number in its journal.
    pub fn seq(&self) -> u64 {
        match self {
            Self::V1(e) | Self::V2(e) => e.seq,
        }
    }

    /// The hash of the event before it (all zero for a journal's first).
    pub fn parent(&self) -> &[u8; 32] {
        match self {
            Self::V1(e) | Self::V2(e) => &e.parent,
        }
    }

    /// The node that made the commit.
    pub fn writer(&self) -> NodeId {
        match self {
            Self::V1(e) | Self::V2(e) => e.writer,
        }
    }

    /// The wall-clock ms of the writer's clock at the commit (what retention is measured by).
    pub fn wall_ms(&self) -> u64 {
        match self {
            Self::V1(e) | Self::V2(e) => e.wall_ms,
        }
    }

    /// The version 1 event, if it is one.
    pub fn as_v1(&self) -> Option<&v1::Event> {
        match self {
            Self::V1(e) => Some(e),
            Self::V2(_) => None,
        }
    }

    /// The event's content, whichever version (version 2 reuses version 1's types; its
    /// records carry their lineage).
    pub fn content(&self) -> &v1::Event {
        match self {
            Self::V1(e) | Self::V2(e) => e,
        }
    }
}

/// One event read from a store's journal, with its hash (the next event's parent).
#[derive(Clone, Debug)]
pub struct Entry {
    /// The event's sequence number (its row key).
    pub seq: u64,
    /// The event's hash, by its version's rule.
    pub hash: [u8; 32],
    /// The event.
    pub event: Event,
}

/// When events are folded away (deleted from the journal; the records table already holds
/// their result): older than `retention_ms` by their wall-clock ms against the `now_ms` given
/// to [`crate::Store::fold`], or beyond the newest `max_events`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The retention window, ms.
    pub retention_ms: u64,
    /// The most events kept. A commit that takes the journal past it folds the oldest
    /// `max_events / 64 + 1` events (so folding costs little per commit); [`crate::Store::fold`]
    /// folds down to exactly `max_events`.
    pub max_events: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            retention_ms: DEFAULT_RETENTION_MS,
            max_events: DEFAULT_MAX_EVENTS,
        }
    }
}

/// The schema version an event's plaintext declares (its first two bytes, u16 LE).
pub fn version_of(plaintext: &[u8]) -> Result<u16, Error> {
    match plaintext {
        [lo, hi, ..] => Ok(u16::from_le_bytes([*lo, *hi])),
        _ => Err(Error::Malformed("journal event shorter than its version")),
    }
}

/// Decodes an event's plaintext by the rules of the version it declares.
pub fn decode(plaintext: &[u8]) -> Result<Event, Error> {
    match version_of(plaintext)? {
        v1::SCHEMA_VERSION => v1::decode(plaintext).map(Event::V1),
        v2::SCHEMA_VERSION => v2::decode(plaintext).map(Event::V2),
        _ => Err(Error::Malformed("unknown journal event schema version")),
    }
}

/// The canonical plaintext of an event, by its version's rules.
pub fn encode(event: &Event) -> Result<zeroize::Zeroizing<Vec<u8>>, Error> {
    match event {
        Event::V1(e) => v1::encode(e),
        Event::V2(e) => v2::encode(e),
    }
}

/// The hash of an event's plaintext, by the rules of the version it declares.
pub fn hash(plaintext: &[u8]) -> Result<[u8; 32], Error> {
    match version_of(plaintext)? {
        v1::SCHEMA_VERSION => Ok(v1::hash(plaintext)),
        v2::SCHEMA_VERSION => Ok(v2::hash(plaintext)),
        _ => Err(Error::Malformed("unknown journal event schema version")),
    }
}

/// Applies an event's record changes onto `state` (the folded base state), by its version's
/// rules.
pub fn apply(state: &mut Instance, event: &Event) -> Result<(), Error> {
    match event {
        Event::V1(e) => v1::apply(state, e),
        Event::V2(e) => v2::apply(state, e),
    }
}

/// Applies an event's grant changes onto `access`, by its version's rules.
pub fn apply_grants(access: &mut AccessTable, event: &Event) -> Result<(), Error> {
    match event {
        Event::V1(e) => v1::apply_grants(access, e),
        Event::V2(e) => v2::apply_grants(access, e),
    }
}
