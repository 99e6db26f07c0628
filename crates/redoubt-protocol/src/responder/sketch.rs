//! Version 2's exchange on the responder's side (also run bound in version 3): take the
//! requester's summary and symbols, subtract them from the scope's own, peel the difference,
//! and answer with the complement (or ask for more symbols, or for a fallback to shapes).

use redoubt_vault::{
    RecordId, VaultId,
    sketch::{Decoded, FINE_PROBES, MAX_SYMBOLS, PROBES, Symbol, decode},
};

use super::{Responder, State};
use crate::{
    Error, FallbackReason, Replica, Response, Summary,
    replica::ReplicaExt,
    sketch::{ScopeSketch, estimate_difference, plan},
};

/// Where the sketch exchange stands.
pub(super) enum Phase {
    /// The opening is being answered.
    Opening,
    /// An import: waiting for the requester's summary.
    AwaitingSketch,
    /// The requester's symbols so far did not decode.
    Decoding {
        /// The requester's symbols (symbol 0's count is `their_len`; the others' modulo 2^16).
        theirs: Vec<Symbol>,
        /// The requester's set size.
        their_len: u64,
        /// How many symbols we asked for.
        want: u32,
    },
}

impl Responder {
    /// Opens the exchange: answers the opening's `summary`, or, for an import (none), names
    /// the scope and waits for it.
    pub(super) fn open_sketch(
        &mut self,
        summary: Option<Summary>,
        replica: &impl Replica,
    ) -> Result<Response, Error> {
        match summary {
            Some(summary) => self.summary(summary, replica),
            None => {
                self.state = State::Sketch(Phase::AwaitingSketch);
                Ok(Response::Accepted {
                    session: self.session,
                    clients: self.scope.clients().copied().collect(),
                })
            }
        }
    }

    /// Takes an import's summary, whose encoded form is `frame`.
    pub fn sketch(
        &mut self,
        frame: &[u8],
        summary: Summary,
        replica: &impl Replica,
    ) -> Result<Response, Error> {
        if !matches!(self.state, State::Sketch(Phase::AwaitingSketch)) {
            return Err(Error::Unexpected("a summary outside an import's opening"));
        }
        self.transcript.absorb(frame);
        let response = self.summary(summary, replica)?;
        self.answered(response)
    }

    /// Takes further symbols, whose encoded form is `frame`.
    pub fn symbols(
        &mut self,
        frame: &[u8],
        from: u32,
        symbols: Vec<Symbol>,
        replica: &impl Replica,
    ) -> Result<Response, Error> {
        let State::Sketch(Phase::Decoding {
            ref mut theirs,
            their_len,
            want,
        }) = self.state
        else {
            return Err(Error::Unexpected("symbols outside the decoding phase"));
        };
        if from as usize != theirs.len()
            || (from as usize + symbols.len()) < want as usize
            || from as usize + symbols.len() > MAX_SYMBOLS
        {
            return Err(Error::Malformed("symbols out of the range asked for"));
        }
        self.transcript.absorb(frame);
        theirs.extend(symbols);
        let theirs = std::mem::take(theirs);
        let m = theirs.len();
        let ours = ScopeSketch::new(replica, &self.scope.clients)?;
        if let Some(decoded) = attempt(&ours, &theirs, their_len) {
            return self.answer(decoded, &ours, replica);
        }
        if m >= MAX_SYMBOLS {
            self.state = State::Done;
            return Ok(Response::Fallback {
                reason: FallbackReason::TooLarge,
            });
        }
        let want = (2 * m).min(MAX_SYMBOLS) as u32;
        self.state = State::Sketch(Phase::Decoding {
            theirs,
            their_len,
            want,
        });
        self.answered(Response::More {
            session: self.session,
            want,
            probes: Vec::new(),
        })
    }

    fn summary(&mut self, summary: Summary, replica: &impl Replica) -> Result<Response, Error> {
        let theirs = vec![summary.first];
        // One sketch of our scope per request: for a partial selection it is built from the
        // records.
        let ours = ScopeSketch::new(replica, &self.scope.clients)?;
        if let Some(decoded) = attempt(&ours, &theirs, summary.len) {
            return self.answer(decoded, &ours, replica);
        }
        let mut probes = [0u8; PROBES.len()];
        for (p, s) in probes.iter_mut().zip(ours.symbols_at(&PROBES)) {
            *p = s.fingerprint();
        }
        let d = estimate_difference(&probes, &summary.probes, ours.len().abs_diff(summary.len));
        match plan(d, summary.len) {
            Ok(_) => {
                // The requester sizes its batch from the fine probes; two symbols is the
                // least that adds anything.
                let want = 2;
                self.state = State::Sketch(Phase::Decoding {
                    theirs,
                    their_len: summary.len,
                    want,
                });
                let probes = ours
                    .symbols_at(&FINE_PROBES)
                    .iter()
                    .map(Symbol::fingerprint)
                    .collect();
                Ok(Response::More {
                    session: self.session,
                    want,
                    probes,
                })
            }
            Err(reason) => {
                self.state = State::Done;
                Ok(Response::Fallback { reason })
            }
        }
    }

    /// Answers a decoded difference: what the requester lacks streams back, what we lack is
    /// named.
    fn answer(
        &mut self,
        decoded: Decoded,
        ours: &ScopeSketch<'_>,
        replica: &impl Replica,
    ) -> Result<Response, Error> {
        let digest = ours.digest().to_bytes();
        let mut complement = Vec::with_capacity(decoded.ours.len());
        for key in &decoded.ours {
            // A key we hold twice, or one that is not ours at all (a false decode): only
            // shapes can settle it. (A record read back in another version than the key's is
            // streamed; the requester's final check catches it.)
            let Some(found) = self.held(ours, replica, *key)? else {
                self.state = State::Done;
                return Ok(Response::Fallback {
                    reason: FallbackReason::KeyCollision,
                });
            };
            complement.push(found);
        }
        complement.sort_unstable();
        let lacking = decoded.theirs;
        if complement.is_empty() {
            self.state = State::Done;
            return Ok(Response::Settled { digest, lacking });
        }
        for (client, v, r, size) in complement {
            self.complement.push((client, v, r), size);
        }
        let mut decoded = Response::Decoded {
            session: self.session,
            key: self.secret.public_key(),
            records: self.complement.entries.len() as u64,
            bytes: self.complement.bytes,
            digest,
            lacking,
            sealed: Vec::new(),
        };
        self.begin_stream(&decoded)?;
        let Response::Chunk { sealed } = self.chunk(0, replica)? else {
            return Err(Error::Unexpected("chunk 0 was not a chunk"));
        };
        if let Response::Decoded {
            sealed: ref mut s, ..
        } = decoded
        {
            *s = sealed;
        }
        Ok(decoded)
    }
}

/// Subtracts the requester's symbols from `ours` and peels the difference.
impl Responder {
    /// Our version with element key `key`: its client's index in the scope, its location ids
    /// and its size; `None` when we hold no such version (or several).
    fn held(
        &self,
        ours: &ScopeSketch<'_>,
        replica: &impl Replica,
        key: u64,
    ) -> Result<Option<(u32, VaultId, RecordId, u32)>, Error> {
        let Some((client, v, r)) = ours.locate(replica, key)? else {
            return Ok(None);
        };
        let Some((id, _)) = self.scope.clients.get(client) else {
            return Ok(None);
        };
        let size = replica.record_at(id, (v, r))?.map_or(0, |rec| rec.size());
        Ok(Some((client as u32, v, r, size)))
    }
}

fn attempt(ours: &ScopeSketch<'_>, theirs: &[Symbol], their_len: u64) -> Option<Decoded> {
    let mut diff = ours.symbols(0, theirs.len());
    for (i, (d, t)) in diff.iter_mut().zip(theirs).enumerate() {
        let count = if i == 0 {
            // Symbol 0 holds every element: its count is the exact set size.
            i32::try_from(i128::from(ours.len()) - i128::from(their_len)).unwrap_or(i32::MAX)
        } else {
            i32::from((d.count as u16).wrapping_sub(t.count as u16) as i16)
        };
        *d = Symbol {
            key: d.key ^ t.key,
            check: d.check ^ t.check,
            count,
        };
    }
    decode(&mut diff)
}
