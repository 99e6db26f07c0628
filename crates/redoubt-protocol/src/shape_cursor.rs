//! The requester's shapes for version 1, walked in bounded batches.

use redoubt_vault::{ClientId, RecordId, Selection, VaultId};

use crate::{Error, MAX_SHAPES_PER_FRAME, Replica, Requester, ShapeGroup, replica::ReplicaExt};

/// The next shapes to send: walks the wanted clients in id order, in batches of at most
/// [`MAX_SHAPES_PER_FRAME`] (or fewer, [`Self::with_batch`]).
#[derive(Debug)]
pub struct ShapeCursor {
    clients: Vec<ClientId>,
    selection: Selection,
    idx: usize,
    after: Option<(VaultId, RecordId)>,
    /// Most shapes per batch.
    batch: usize,
}

impl ShapeCursor {
    /// A cursor over the clients and selection `requester` wants (only the clients it asked
    /// for), as `replica` holds them. A failed read fails it ([`Error::Replica`]).
    pub fn new(requester: &Requester, replica: &impl Replica) -> Result<Self, Error> {
        let mut clients = Vec::new();
        for c in requester.wanted_clients() {
            if replica.has(&c)? {
                clients.push(c);
            }
        }
        Ok(Self {
            clients,
            selection: requester.selection(),
            idx: 0,
            after: None,
            batch: MAX_SHAPES_PER_FRAME,
        })
    }

    /// Sends at most `batch` shapes per frame (from 1 up to [`MAX_SHAPES_PER_FRAME`]).
    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch.clamp(1, MAX_SHAPES_PER_FRAME);
        self
    }

    /// Keeps only the clients the responder will serve (`Accepted` named them) among those asked
    /// for, before the first batch goes out; ignored once shapes have been sent. It never adds
    /// a client.
    pub fn keep_only(&mut self, accepted: &[ClientId]) {
        if self.idx == 0 && self.after.is_none() {
            let mut accepted = accepted.to_vec();
            accepted.sort();
            self.clients.retain(|c| accepted.binary_search(c).is_ok());
        }
    }

    /// The next batch, and whether it is the last. A failed read fails it
    /// ([`Error::Replica`]): a batch is never cut short and sent as if complete.
    pub fn next_batch(&mut self, replica: &impl Replica) -> Result<(Vec<ShapeGroup>, bool), Error> {
        let mut groups = Vec::new();
        let mut n = 0;
        while let Some(client) = self.clients.get(self.idx) {
            let mut shapes = Vec::new();
            let mut full = false;
            for rec in replica.walk(client, self.after) {
                let rec = rec?;
                if n == self.batch {
                    full = true;
                    break;
                }
                let (v, r) = rec.location().ids();
                self.after = Some((v, r));
                if self.selection.contains(v, r) {
                    shapes.push(rec.shape());
                    n += 1;
                }
            }
            if !shapes.is_empty() {
                groups.push(ShapeGroup {
                    client: *client,
                    shapes,
                });
            }
            if full {
                return Ok((groups, false));
            }
            self.idx += 1;
            self.after = None;
        }
        Ok((groups, true))
    }
}
