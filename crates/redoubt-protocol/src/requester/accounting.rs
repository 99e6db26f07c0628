//! What a requester checks of the records it receives, beyond each record's own shape: that it
//! asked for them, that the stream stays within what the responder announced, and (version 2
//! and 3) that the set digests add up.

use redoubt_vault::{
    ClientId, RecordId, Selection, VaultId,
    sketch::{Element, SetDigest},
};

use crate::{Error, Mode, Received, limits::ANNOUNCED_BYTES_SLACK};

/// Which records the requester accepts: what it asked for, nothing else.
pub(super) enum Filter {
    One {
        client: Vec<u8>,
        selection: Selection,
    },
    /// An import: the clients it names, narrowed to those `Accepted` named once it has.
    Clients(Vec<Vec<u8>>),
}

impl Filter {
    pub(super) fn from_mode(mode: &Mode) -> Result<Self, Error> {
        Ok(match mode {
            Mode::Full { client } | Mode::Partial { client, .. } => Self::One {
                client: client.clone(),
                selection: mode.selection()?,
            },
            Mode::Import { clients } if clients.is_empty() => return Err(Error::EmptyImport),
            Mode::Import { clients } => Self::Clients(clients.clone()),
        })
    }

    /// Keeps only the clients the responder's scope holds (`accepted` is sorted).
    pub(super) fn narrow(&mut self, accepted: &[ClientId]) {
        if let Self::Clients(list) = self {
            list.retain(|c| accepted.binary_search(&ClientId::from_path(c)).is_ok());
        }
    }

    pub(super) fn admits(&self, r: &Received) -> bool {
        match self {
            Self::One { client, selection } => {
                let (v, rec) = r.record.location().ids();
                *client == r.client && selection.contains(v, rec)
            }
            Self::Clients(list) => list.contains(&r.client),
        }
    }
}

/// The stream against what `Ready` or `Decoded` announced: never more records, never more value
/// bytes than announced plus [`ANNOUNCED_BYTES_SLACK`], never an empty chunk but the last, and
/// records in strictly increasing (client id, vault id, record id) order, as every responder
/// builds its complement, so no location comes twice. Each chunk but the last holds a record,
/// so a stream has at most `records + 1` chunks.
#[derive(Default)]
pub(super) struct Announced {
    records: u64,
    bytes: u64,
    got_records: u64,
    got_bytes: u64,
    /// The last record's key, and its client's path (ids cost a hash).
    last: Option<(Vec<u8>, ClientId, VaultId, RecordId)>,
}

impl Announced {
    pub(super) fn new(records: u64, bytes: u64) -> Self {
        Self {
            records,
            bytes,
            ..Self::default()
        }
    }

    /// Counts chunk `index`'s verified records, failing when they pass what was announced.
    pub(super) fn take(
        &mut self,
        index: u64,
        records: &[Received],
        last: bool,
    ) -> Result<(), Error> {
        if records.is_empty() && !last {
            return Err(Error::EmptyChunk { index });
        }
        let n = self.got_records.saturating_add(records.len() as u64);
        if n > self.records {
            return Err(Error::OverAnnounced {
                index,
                what: "more records than announced",
            });
        }
        let bytes = records.iter().fold(self.got_bytes, |b, r| {
            b.saturating_add(u64::from(r.record.size()))
        });
        if bytes > self.bytes.saturating_add(ANNOUNCED_BYTES_SLACK) {
            return Err(Error::OverAnnounced {
                index,
                what: "more value bytes than announced",
            });
        }
        let mut last = self.last.take();
        for r in records {
            let client = match &last {
                Some((path, id, ..)) if *path == r.client => *id,
                _ => ClientId::from_path(&r.client),
            };
            let (vault, record) = r.record.location().ids();
            if last
                .as_ref()
                .is_some_and(|(_, c, v, rec)| (*c, *v, *rec) >= (client, vault, record))
            {
                return Err(Error::OverAnnounced {
                    index,
                    what: "records out of order or repeated",
                });
            }
            last = Some((r.client.clone(), client, vault, record));
        }
        self.last = last;
        (self.got_records, self.got_bytes) = (n, bytes);
        Ok(())
    }
}

/// Version 2's final check: the responder's digest must equal ours, minus the versions it
/// lacks, plus the versions it sent.
#[derive(Default)]
pub(super) struct Check {
    /// Our set digest when the summary was made.
    pub(super) ours: SetDigest,
    /// The responder's, from its answer.
    pub(super) theirs: Option<SetDigest>,
    /// Sum over the versions it lacks, once the caller has accounted for them.
    pub(super) lacking: Option<SetDigest>,
    /// Sum over the records received.
    received: SetDigest,
    /// The path and id of the last client a record came from (ids cost a hash).
    last_client: Option<(Vec<u8>, ClientId)>,
    /// Whether the last record is in.
    pub(super) complete: bool,
}

impl Check {
    pub(super) fn receive(&mut self, r: &Received) {
        let client = match &self.last_client {
            Some((path, id)) if *path == r.client => *id,
            _ => {
                let id = ClientId::from_path(&r.client);
                self.last_client = Some((r.client.clone(), id));
                id
            }
        };
        self.received
            .add(&Element::of(&client, &r.record.shape()).hash);
    }

    /// Runs once both the lacking sum and the last record are in.
    pub(super) fn verify(&self) -> Result<(), Error> {
        let (Some(theirs), Some(lacking), true) = (self.theirs, self.lacking, self.complete) else {
            return Ok(());
        };
        let mut want = self.ours;
        want.sub_digest(lacking);
        want.add_digest(self.received);
        if want == theirs {
            Ok(())
        } else {
            Err(Error::SketchMismatch("digests differ"))
        }
    }
}
