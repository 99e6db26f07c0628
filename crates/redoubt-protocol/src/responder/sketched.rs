//! Version 2 on the responder's side: take the requester's summary and symbols, subtract them
//! from the scope's own, peel the difference, and answer with the complement (or ask for more
//! symbols, or for a fallback to version 1).

use redoubt_vault::sketch::{Decoded, FINE_PROBES, MAX_SYMBOLS, PROBES, Symbol, decode};

use super::{Responder, State};
use crate::{
    Error, FallbackReason, OpenSketch, Replica, Response, Scope, SessionId, Summary,
    crypto::{EphemeralSecret, Peers},
    sketch::{ScopeSketch, estimate_difference, plan},
};

impl Responder {
    /// Starts an unbound (version 2) session for an admitted [`OpenSketch`] whose encoded form
    /// is `frame`, with a fresh session id and ephemeral key. A bound opening fails
    /// ([`Error::Binding`]): use [`Self::start_sketch_bound`].
    pub fn start_sketch(
        frame: &[u8],
        open: OpenSketch,
        scope: Scope,
        replica: &impl Replica,
    ) -> Result<(Self, Response), Error> {
        let (session, secret) = super::fresh_session()?;
        Self::start_sketch_with(frame, open, scope, replica, session, secret)
    }

    /// [`Self::start_sketch`] with a given session id and ephemeral key (test vectors).
    pub fn start_sketch_with(
        frame: &[u8],
        open: OpenSketch,
        scope: Scope,
        replica: &impl Replica,
        session: SessionId,
        secret: EphemeralSecret,
    ) -> Result<(Self, Response), Error> {
        Self::start_opened_sketch(frame, open, scope, replica, (session, secret), None)
    }

    /// Starts a bound (version 3) session for an admitted bound [`OpenSketch`] whose encoded
    /// form is `frame`, between `peers`: the peer that opened as the requester, ours as the
    /// responder. An unbound opening fails ([`Error::Binding`]).
    pub fn start_sketch_bound(
        frame: &[u8],
        open: OpenSketch,
        scope: Scope,
        replica: &impl Replica,
        peers: Peers,
    ) -> Result<(Self, Response), Error> {
        let (session, secret) = super::fresh_session()?;
        Self::start_sketch_bound_with(frame, open, scope, replica, session, secret, peers)
    }

    /// [`Self::start_sketch_bound`] with a given session id and ephemeral key (test vectors).
    pub fn start_sketch_bound_with(
        frame: &[u8],
        open: OpenSketch,
        scope: Scope,
        replica: &impl Replica,
        session: SessionId,
        secret: EphemeralSecret,
        peers: Peers,
    ) -> Result<(Self, Response), Error> {
        Self::start_opened_sketch(frame, open, scope, replica, (session, secret), Some(peers))
    }

    fn start_opened_sketch(
        frame: &[u8],
        open: OpenSketch,
        scope: Scope,
        replica: &impl Replica,
        (session, secret): (SessionId, EphemeralSecret),
        peers: Option<Peers>,
    ) -> Result<(Self, Response), Error> {
        let mut this = Self::new(
            frame,
            open.key,
            scope,
            (session, secret),
            (open.bound, peers),
        )?;
        let response = match open.summary {
            Some(summary) => this.summary(summary, replica)?,
            None => {
                this.state = State::AwaitingSketch;
                let clients = this.scope.clients().copied().collect();
                Response::Accepted { session, clients }
            }
        };
        let response = this.answered(response)?;
        Ok((this, response))
    }

    /// Takes an import's summary, whose encoded form is `frame`.
    pub fn sketch(
        &mut self,
        frame: &[u8],
        summary: Summary,
        replica: &impl Replica,
    ) -> Result<Response, Error> {
        if !matches!(self.state, State::AwaitingSketch) {
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
        let State::Decoding {
            ref mut theirs,
            their_len,
            want,
        } = self.state
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
        let ours = ScopeSketch::new(replica, &self.scope.clients);
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
        self.state = State::Decoding {
            theirs,
            their_len,
            want,
        };
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
        let ours = ScopeSketch::new(replica, &self.scope.clients);
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
                self.state = State::Decoding {
                    theirs,
                    their_len: summary.len,
                    want,
                };
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
            match ours.locate(*key) {
                Some((client, v, r)) => complement.push((client as u32, v, r)),
                // A key we hold twice, or one that is not ours at all (a false decode): only
                // shapes can settle it.
                None => {
                    self.state = State::Done;
                    return Ok(Response::Fallback {
                        reason: FallbackReason::KeyCollision,
                    });
                }
            }
        }
        complement.sort_unstable();
        let lacking = decoded.theirs;
        if complement.is_empty() {
            self.state = State::Done;
            return Ok(Response::Settled { digest, lacking });
        }
        for (client, v, r) in &complement {
            if let Some(rec) = self
                .scope
                .clients
                .get(*client as usize)
                .and_then(|(id, _)| replica.record(id, (*v, *r)))
            {
                self.bytes += u64::from(rec.size());
            }
        }
        self.complement = complement;
        let mut decoded = Response::Decoded {
            session: self.session,
            key: self.secret.public_key(),
            records: self.complement.len() as u64,
            bytes: self.bytes,
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
