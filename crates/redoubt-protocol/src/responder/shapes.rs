//! Version 1's exchange on the responder's side (also run bound in version 3): merge-join the
//! requester's shape batches against our records of the scope, one ordered walk per batch.
//! Deleting version 1 means deleting this file and its arm in the responder's state.

use redoubt_vault::{ClientId, RecordId, Selection, Shape, VaultId};

use super::{Complement, Responder, State};
use crate::{Error, Replica, Response, ShapeGroup, replica::ReplicaExt};

/// Where the merge-join of our records against the requester's shapes has reached.
#[derive(Default)]
pub(super) struct Join {
    /// Index into the scope's clients.
    client: usize,
    /// Last location of that client already classified.
    after: Option<(VaultId, RecordId)>,
    /// The last shape taken, to refuse shapes out of order or repeated.
    last_seen: Option<(ClientId, VaultId, RecordId)>,
}

impl Responder {
    /// Takes a further shape batch whose encoded form is `frame`.
    pub fn shapes(
        &mut self,
        frame: &[u8],
        groups: Vec<ShapeGroup>,
        last: bool,
        replica: &impl Replica,
    ) -> Result<Response, Error> {
        if !matches!(self.state, State::Shapes(_)) {
            return Err(Error::Unexpected("shapes after the last batch"));
        }
        self.transcript.absorb(frame);
        let response = self.absorb(groups, last, replica)?;
        self.answered(response)
    }

    /// Merge-joins a batch of the requester's shapes against our records of the scope, adding
    /// to the complement every record the requester lacks or holds in another version; after
    /// the last batch, announces the complement and starts the stream.
    pub(super) fn absorb(
        &mut self,
        groups: Vec<ShapeGroup>,
        last: bool,
        replica: &impl Replica,
    ) -> Result<Response, Error> {
        let State::Shapes(join) = &mut self.state else {
            return Err(Error::Unexpected("shapes after the last batch"));
        };
        let scope = &self.scope.clients;
        for group in groups {
            for shape in &group.shapes {
                let key = (group.client, shape.vault, shape.record);
                if join.last_seen.is_some_and(|seen| seen >= key) {
                    return Err(Error::Malformed("shapes out of order or repeated"));
                }
                join.last_seen = Some(key);
            }
            if group.shapes.is_empty() {
                continue;
            }
            join.finish_before(Some(group.client), scope, replica, &mut self.complement)?;
            join.join(
                group.client,
                &group.shapes,
                scope,
                replica,
                &mut self.complement,
            )?;
        }
        if !last {
            return Ok(Response::Continue);
        }
        join.finish_before(None, scope, replica, &mut self.complement)?;
        let ready = Response::Ready {
            session: self.session,
            key: self.secret.public_key(),
            records: self.complement.entries.len() as u64,
            bytes: self.complement.bytes,
        };
        self.begin_stream(&ready)?;
        Ok(ready)
    }
}

impl Join {
    /// Classifies every remaining record of the scope's clients that come before `until` (all
    /// of them when `None`): the requester sent no shape for those, so it lacks them all.
    fn finish_before(
        &mut self,
        until: Option<ClientId>,
        scope: &[(ClientId, Selection)],
        replica: &impl Replica,
        out: &mut Complement,
    ) -> Result<(), Error> {
        while let Some((client, selection)) = scope.get(self.client) {
            if until.is_some_and(|u| *client >= u) {
                return Ok(());
            }
            let idx = self.client as u32;
            for rec in replica.walk(client, self.after) {
                let rec = rec?;
                let (v, r) = rec.location().ids();
                if selection.contains(v, r) {
                    out.push((idx, v, r), rec.size());
                }
            }
            self.client += 1;
            self.after = None;
        }
        Ok(())
    }

    /// Merge-joins one group of the requester's shapes (sorted, checked) against our records
    /// of that client, up to the group's last shape: one ordered walk per group.
    fn join(
        &mut self,
        client: ClientId,
        shapes: &[Shape],
        scope: &[(ClientId, Selection)],
        replica: &impl Replica,
        out: &mut Complement,
    ) -> Result<(), Error> {
        let Some((ours, selection)) = scope.get(self.client) else {
            return Ok(());
        };
        let Some(last) = shapes.last() else {
            return Ok(());
        };
        if *ours != client {
            // Not in scope (our next client in scope comes later): nothing of ours to classify.
            return Ok(());
        }
        let end = (last.vault, last.record);
        let idx = self.client as u32;
        let mut i = 0;
        for rec in replica.walk(ours, self.after) {
            let rec = rec?;
            let ids = rec.location().ids();
            if ids > end {
                break;
            }
            while shapes.get(i).is_some_and(|s| (s.vault, s.record) < ids) {
                i += 1;
            }
            let theirs_same = shapes
                .get(i)
                .is_some_and(|s| (s.vault, s.record) == ids && s.hash == *rec.hash());
            if !theirs_same && selection.contains(ids.0, ids.1) {
                out.push((idx, ids.0, ids.1), rec.size());
            }
        }
        self.after = Some(end);
        Ok(())
    }
}
