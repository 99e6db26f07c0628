//! The plain records and enums that cross the boundary, and their conversions from the node's
//! types: text for names and ids, bytes for values, numbers for counts.

use redoubt_node::{Cause, Change, Location, MergeReport, Origin, What};

use crate::RedoubtError;

/// What happened to a location.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum ChangeKind {
    /// It holds a new current value (a write, a restore, a version merged in).
    Written,
    /// It was deleted.
    Deleted,
    /// Its value stayed; its history gained versions (a merge).
    History,
}

/// Why a location changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum ChangeCause {
    /// A call on this vault (put, remove, restore).
    Local,
    /// A version merged from a peer (`source` names it) or a remote.
    Merged,
    /// A merge met a concurrent edit and kept one; the other stays in the history.
    ConflictResolved,
}

/// One changed location, as the change listener hears it, after its commit.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct ChangeEvent {
    /// The client (the app's namespace, such as a user).
    pub client: String,
    /// The vault path within the client.
    pub vault: String,
    /// The record path within the vault.
    pub record: String,
    /// What happened.
    pub kind: ChangeKind,
    /// Why.
    pub cause: ChangeCause,
    /// For a merge: `peer:<base58 id>` or `remote:<name>`; `None` for a local change.
    pub source: Option<String>,
}

impl From<Change> for ChangeEvent {
    fn from(c: Change) -> Self {
        let kind = match c.what {
            What::Written => ChangeKind::Written,
            What::Deleted => ChangeKind::Deleted,
            _ => ChangeKind::History,
        };
        let origin = |o: &Origin| match o {
            Origin::Peer(p) => format!("peer:{p}"),
            Origin::Remote(r) => format!("remote:{r}"),
            other => format!("{other:?}"),
        };
        let (cause, source) = match &c.cause {
            Cause::Local => (ChangeCause::Local, None),
            Cause::Merged { from } => (ChangeCause::Merged, Some(origin(from))),
            Cause::ConflictResolved { from } => (ChangeCause::ConflictResolved, Some(origin(from))),
            _ => (ChangeCause::Merged, None),
        };
        Self {
            client: text(&c.client),
            vault: text(c.location.vault_path()),
            record: text(c.location.record_path()),
            kind,
            cause,
            source,
        }
    }
}

/// A live record of a client, as `list` names it.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Entry {
    /// The vault path.
    pub vault: String,
    /// The record path.
    pub record: String,
    /// The value's size in bytes.
    pub size: u32,
}

/// One version of a record, newest first in `history`.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct VersionInfo {
    /// The version's hash, 64 hex digits: what `restore` takes.
    pub hash: String,
    /// When it was written, milliseconds since the Unix epoch (the writer's clock).
    pub written_ms: u64,
    /// Whether it is a deletion.
    pub deleted: bool,
    /// Value size in bytes (0 for a deletion).
    pub size: u32,
    /// Whether it is the record's current version.
    pub current: bool,
}

/// What a merge did.
#[derive(Clone, Debug, Default, PartialEq, Eq, uniffi::Record)]
pub struct MergeCounts {
    /// Records new here.
    pub added: u64,
    /// Records that took a newer value.
    pub updated: u64,
    /// Records deleted.
    pub deleted: u64,
    /// Concurrent edits resolved (the other version kept in history).
    pub conflicts_resolved: u64,
}

impl From<&MergeReport> for MergeCounts {
    fn from(r: &MergeReport) -> Self {
        Self {
            added: r.added,
            updated: r.updated,
            deleted: r.deleted,
            conflicts_resolved: r.conflicts_resolved,
        }
    }
}

/// What a two-way sync with a peer did.
#[derive(Clone, Debug, Default, PartialEq, Eq, uniffi::Record)]
pub struct SyncSummary {
    /// What this vault merged from the peer.
    pub pulled: MergeCounts,
    /// What the peer merged from this vault.
    pub pushed: MergeCounts,
}

/// What a sync with shared storage did.
#[derive(Clone, Debug, Default, PartialEq, Eq, uniffi::Record)]
pub struct RemoteSummary {
    /// What this vault merged from other devices' uploads.
    pub merged: MergeCounts,
    /// Devices whose uploads could not be read this time (each with why).
    pub failed: Vec<String>,
}

/// A grant: what one peer may do with one client.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Grant {
    /// The peer, base58.
    pub peer_id: String,
    /// The client.
    pub client: String,
    /// It may pull the client from us.
    pub read: bool,
    /// Its versions of the client may enter us.
    pub write: bool,
}

/// The vault's state, for a status screen.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Status {
    /// This device's peer id (base58), the same across restarts.
    pub peer_id: String,
    /// Whether the node runs.
    pub running: bool,
    /// Where it listens (each ending with `/p2p/<peer id>`); empty when stopped.
    pub listen_addrs: Vec<String>,
    /// Clients the vault holds.
    pub clients: Vec<String>,
    /// Records, live or deleted, over all clients.
    pub records: u64,
    /// Peers this vault knows addresses of (paired or dialed), base58.
    pub known_peers: Vec<String>,
}

/// An open pairing offer: show `code` (and `qr_payload` as a QR code) to the user.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct PairingOffer {
    /// The one-time code, `NN-DDDD-DDDD`, for the other device's user to type.
    pub code: String,
    /// The QR payload (`redoubt-pair:1:…`): the code, this peer id and its addresses.
    pub qr_payload: String,
    /// Seconds the code stays valid.
    pub expires_in_secs: u64,
}

/// A completed pairing, on the device that joined.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Paired {
    /// The host's peer id, base58.
    pub peer_id: String,
    /// The clients shared (read and write, both ways).
    pub clients: Vec<String>,
    /// What the first import merged here.
    pub imported: MergeCounts,
}

/// Bytes of a path or name as text (paths are UTF-8 when an app made them; anything else shows
/// with replacement characters).
pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A location from the app's vault and record paths.
pub(crate) fn location(vault: &str, record: &str) -> Result<Location, RedoubtError> {
    Ok(Location::new(vault.as_bytes(), record.as_bytes())?)
}

/// A version hash from its 64 hex digits.
pub(crate) fn version_hash(hex: &str) -> Result<[u8; 32], RedoubtError> {
    let hex = hex.trim();
    let bad = || RedoubtError::invalid(format!("a version hash is 64 hex digits, not {hex:?}"));
    if hex.len() != 64 || !hex.is_ascii() {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}
