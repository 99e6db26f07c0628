//! The sealed stream on the responder's side, shared by both exchanges: agree on the session
//! key once the complement is known, then seal it chunk by chunk under counter nonces.

use super::{Responder, State};
use crate::{
    Error, PROTOCOL_NAME_V3, PROTOCOL_NAME_V4, Replica, Response,
    chunk::ChunkWriter,
    crypto::{SessionKey, SessionKeys, seal_chunk},
    limits::CHUNK_TARGET,
    replica::ReplicaExt,
};

/// Where the stream has reached.
pub(super) struct Stream {
    key: SessionKey,
    /// The next chunk's index.
    index: u64,
    /// The complement's first entry not yet sealed.
    pos: usize,
}

impl Responder {
    /// Agrees on the session key and moves to streaming the complement. `answer` is the
    /// key-bearing response (`Ready`, or `Decoded` with an empty `sealed`), which a bound
    /// transcript takes before the key is derived.
    pub(super) fn begin_stream(&mut self, answer: &Response) -> Result<(), Error> {
        let keys = SessionKeys {
            requester: self.requester_key,
            responder: self.secret.public_key(),
        };
        let key = match &self.peers {
            Some(peers) => {
                self.transcript.absorb_response(&answer.encode()?);
                SessionKey::agree_bound(
                    &self.secret,
                    &self.requester_key,
                    keys,
                    self.session,
                    peers,
                    if self.lineage {
                        PROTOCOL_NAME_V4
                    } else {
                        PROTOCOL_NAME_V3
                    },
                    &self.transcript.hash(),
                )?
            }
            None => SessionKey::agree(
                &self.secret,
                &self.requester_key,
                keys,
                self.session,
                &self.transcript.hash(),
            )?,
        };
        self.state = State::Streaming(Stream {
            key,
            index: 0,
            pos: 0,
        });
        Ok(())
    }

    /// Seals chunk `index`, which must be the next one.
    pub fn chunk(&mut self, index: u64, replica: &impl Replica) -> Result<Response, Error> {
        let State::Streaming(Stream {
            ref key,
            index: expected,
            pos,
        }) = self.state
        else {
            return Err(Error::Unexpected(
                "chunk requested outside the streaming phase",
            ));
        };
        if index != expected {
            return Err(Error::Unexpected("chunk requested out of order"));
        }
        let mut writer = ChunkWriter::with_lineage(self.lineage);
        let mut end = pos;
        while end < self.complement.entries.len() && writer.len() < CHUNK_TARGET {
            let (client_idx, vault, record) = self.complement.entries[end];
            end += 1;
            let Some((client_id, _)) = self.scope.clients.get(client_idx as usize) else {
                continue;
            };
            // A read that fails ends the session; only a record gone since the complement was
            // computed (a store that changed mid-session) is skipped, and the requester's
            // count against `Ready` tells it so.
            let (Some(path), Some(rec)) = (
                replica.path_of(client_id)?,
                replica.record_at(client_id, (vault, record))?,
            ) else {
                continue;
            };
            writer.push(client_id, &path, &rec)?;
        }
        let last = end == self.complement.entries.len();
        let plaintext = writer.finish();
        let sealed = seal_chunk(key, self.session, index, last, &plaintext)?;
        if last {
            self.state = State::Done;
        } else if let State::Streaming(stream) = &mut self.state {
            stream.index = index + 1;
            stream.pos = end;
        }
        Ok(Response::Chunk { sealed })
    }
}
