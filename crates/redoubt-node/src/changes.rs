//! The stream of changes a [`crate::Vault`] gives its app: which location changed and why, so
//! a UI refreshes one row instead of re-reading the vault.
//!
//! Each change is sent after the commit that made it, so a read on receiving it sees it. The
//! stream is bounded ([`CHANGE_BUFFER`] changes per subscriber): a subscriber that falls that
//! far behind gets [`ChangeEvent::Lagged`] in place of what it missed, never a silent gap, and
//! should re-read what it shows. Nothing depends on a change being received: it is already
//! durable when it is sent.

use redoubt_vault::{Location, MergeReport};
use tokio::sync::broadcast;

/// How many changes wait for a subscriber before it lags.
pub const CHANGE_BUFFER: usize = 1024;

/// One location that changed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Change {
    /// The client path.
    pub client: Vec<u8>,
    /// The location.
    pub location: Location,
    /// What happened to it.
    pub what: What,
    /// Why.
    pub cause: Cause,
}

impl Change {
    /// A change of `location` of `client` (for an app's own tests; the vault builds its own).
    pub fn new(client: Vec<u8>, location: Location, what: What, cause: Cause) -> Self {
        Self {
            client,
            location,
            what,
            cause,
        }
    }
}

/// What happened to a location.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum What {
    /// It holds a new current value (a write, a restore, or a version merged in).
    Written,
    /// It was deleted (it holds a tombstone).
    Deleted,
    /// Its current version stayed; its history gained versions (a merge).
    History,
}

/// Why a location changed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cause {
    /// A write, delete or restore through this vault.
    Local,
    /// A version merged from elsewhere.
    Merged {
        /// Where it came from.
        from: Origin,
    },
    /// A merge met a concurrent edit with different contents and the policy chose one; the
    /// other version stays in the record's history.
    ConflictResolved {
        /// Where the other edit came from.
        from: Origin,
    },
}

/// Where a merged change came from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// A peer, by its text id (base58 for a libp2p peer).
    Peer(String),
    /// Shared storage, by the remote's name.
    Remote(String),
}

/// What a subscriber receives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeEvent {
    /// A location changed.
    Changed(Change),
    /// The subscriber fell behind and `missed` changes were dropped for it: re-read what it
    /// shows. The changes after it follow as usual.
    Lagged {
        /// How many changes it missed.
        missed: u64,
    },
}

/// A subscription to a vault's changes ([`crate::Vault::changes`], [`crate::Handle::changes`]).
#[derive(Debug)]
pub struct Changes(broadcast::Receiver<Change>);

impl Changes {
    /// The next change, waiting for one; `None` once the vault is gone and every change it
    /// sent was received.
    pub async fn next(&mut self) -> Option<ChangeEvent> {
        match self.0.recv().await {
            Ok(change) => Some(ChangeEvent::Changed(change)),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                Some(ChangeEvent::Lagged { missed })
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// The next change if one waits, without waiting (any thread, no runtime needed); `None`
    /// when none waits or the vault is gone.
    pub fn try_next(&mut self) -> Option<ChangeEvent> {
        match self.0.try_recv() {
            Ok(change) => Some(ChangeEvent::Changed(change)),
            Err(broadcast::error::TryRecvError::Lagged(missed)) => {
                Some(ChangeEvent::Lagged { missed })
            }
            Err(broadcast::error::TryRecvError::Empty | broadcast::error::TryRecvError::Closed) => {
                None
            }
        }
    }
}

/// The sending side, held by the vault.
#[derive(Debug)]
pub(crate) struct Notifier(broadcast::Sender<Change>);

impl Notifier {
    pub(crate) fn new() -> Self {
        Self(broadcast::channel(CHANGE_BUFFER).0)
    }

    pub(crate) fn subscribe(&self) -> Changes {
        Changes(self.0.subscribe())
    }

    /// Whether anyone listens (so a merge of many records builds no change nobody reads).
    pub(crate) fn listened(&self) -> bool {
        self.0.receiver_count() > 0
    }

    /// Sends `change` to every subscriber; with none, it is dropped (it is durable already).
    pub(crate) fn send(&self, change: Change) {
        // An error means no subscriber is left: nobody is missing anything.
        let _ = self.0.send(change);
    }

    /// A local change.
    pub(crate) fn local(&self, client: &[u8], location: &Location, what: What) {
        if self.listened() {
            self.send(Change::new(
                client.to_vec(),
                location.clone(),
                what,
                Cause::Local,
            ));
        }
    }

    /// A change one merged record made, from its one-record report.
    pub(crate) fn merged(
        &self,
        from: &Origin,
        client: &[u8],
        location: &Location,
        one: &MergeReport,
    ) {
        let what = if one.added + one.updated > 0 {
            What::Written
        } else if one.deleted > 0 {
            What::Deleted
        } else {
            What::History
        };
        let from = from.clone();
        let cause = if one.conflicts_resolved > 0 {
            Cause::ConflictResolved { from }
        } else {
            Cause::Merged { from }
        };
        self.send(Change::new(client.to_vec(), location.clone(), what, cause));
    }
}
