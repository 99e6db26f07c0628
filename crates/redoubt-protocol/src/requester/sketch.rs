//! Version 2's exchange on the requester's side (also run bound in version 3): open with a
//! summary of the scope's sketch, send the symbols the responder asks for, and check at the
//! end that the set digests add up. Deleting version 2 means deleting this file and its arm in
//! the requester's state.

use redoubt_vault::sketch::{MAX_SYMBOLS, SetDigest, Symbol};

use super::{Event, Requester, State, accounting::Check};
use crate::{
    Error, FallbackReason, OpenSketch, Received, Request, Response, SessionId, ShapeFallback,
    Summary, fallback_allowed,
};

/// Where the sketch exchange stands.
pub(super) enum Phase {
    /// The opening went out (with a summary unless it is an import).
    OpenSent { summary: bool },
    /// An import: the scope is known; the summary goes next ([`Requester::sketch`]).
    AwaitingSketch { session: SessionId },
    /// Symbols went out (`sent` so far); waiting for the responder's verdict.
    SymbolsSent { session: SessionId, sent: u32 },
    /// The responder asked for symbols up to `want`.
    Sending {
        session: SessionId,
        sent: u32,
        want: u32,
    },
}

/// What a sketched pull keeps beside its state: the final check, and what a fallback weighs.
#[derive(Default)]
pub(super) struct Sketched {
    check: Check,
    /// Elements in the scope our summary covered.
    summarized: Option<u64>,
    /// Why the responder asked to fall back, if it did.
    fallback: Option<FallbackReason>,
}

impl Sketched {
    /// Counts a verified chunk's records into the final check (once the responder's digest is
    /// known), and runs the check after the `last`.
    pub(super) fn receive(&mut self, records: &[Received], last: bool) -> Result<(), Error> {
        if self.check.theirs.is_some() {
            for r in records {
                self.check.receive(r);
            }
        }
        if last {
            self.check.complete = true;
            self.check.verify()?;
        }
        Ok(())
    }
}

impl Requester {
    /// The opening frame of a sketched pull, with our `summary` of the scope and the scope's
    /// set `digest`; an import passes `None` and sends them with [`Self::sketch`] once
    /// [`Event::Accepted`] names the scope.
    pub fn open_sketch(&mut self, summary: Option<(Summary, SetDigest)>) -> Result<Vec<u8>, Error> {
        if !matches!(self.state, State::Fresh) {
            return Err(Error::Unexpected("open after the session started"));
        }
        let mut sketched = Sketched::default();
        if let Some((s, digest)) = summary {
            sketched.check.ours = digest;
            sketched.summarized = Some(s.len);
        }
        let frame = Request::OpenSketch(OpenSketch {
            mode: self.mode.clone(),
            invite: self.invite,
            key: self.secret.public_key(),
            summary: summary.map(|(s, _)| s),
            bound: self.is_bound(),
            lineage: self.carries_lineage(),
        })
        .encode()?;
        self.transcript.absorb(&frame);
        self.sketch = Some(sketched);
        self.state = State::Sketch(Phase::OpenSent {
            summary: summary.is_some(),
        });
        Ok(frame)
    }

    /// An import's summary of the scope [`Event::Accepted`] named, and its set digest.
    pub fn sketch(&mut self, summary: Summary, digest: SetDigest) -> Result<Vec<u8>, Error> {
        let (State::Sketch(Phase::AwaitingSketch { session }), Some(sketched)) =
            (&self.state, &mut self.sketch)
        else {
            return Err(Error::Unexpected("a summary outside an import's opening"));
        };
        let session = *session;
        sketched.check.ours = digest;
        sketched.summarized = Some(summary.len);
        let frame = Request::Sketch { session, summary }.encode()?;
        self.transcript.absorb(&frame);
        self.state = State::Sketch(Phase::SymbolsSent { session, sent: 1 });
        Ok(frame)
    }

    /// The symbols [`Event::More`] asked for, in order.
    pub fn symbols(&mut self, symbols: Vec<Symbol>) -> Result<Vec<u8>, Error> {
        let State::Sketch(Phase::Sending {
            session,
            sent,
            want,
        }) = self.state
        else {
            return Err(Error::Unexpected("symbols nobody asked for"));
        };
        let end = sent as usize + symbols.len();
        if end < want as usize || end > MAX_SYMBOLS {
            return Err(Error::Unexpected(
                "fewer symbols than asked for, or beyond the cap",
            ));
        }
        let frame = Request::Symbols {
            session,
            from: sent,
            symbols,
        }
        .encode()?;
        self.transcript.absorb(&frame);
        self.state = State::Sketch(Phase::SymbolsSent {
            session,
            sent: end as u32,
        });
        Ok(frame)
    }

    /// Sketched pulls: accounts for the versions the responder said it lacks, given the sum of
    /// their element hashes (`None` when a key names none of our versions, which fails the
    /// check). Runs the final check if the complement is already in.
    pub fn account_lacking(&mut self, sum: Option<SetDigest>) -> Result<(), Error> {
        let Some(sketched) = &mut self.sketch else {
            return Err(Error::Unexpected("lacking keys accounted out of turn"));
        };
        let check = &mut sketched.check;
        if check.theirs.is_none() || check.lacking.is_some() {
            return Err(Error::Unexpected("lacking keys accounted out of turn"));
        }
        let sum = sum.ok_or(Error::SketchMismatch("the peer lacks a key we do not hold"))?;
        check.lacking = Some(sum);
        let result = check.verify();
        if result.is_err() {
            self.state = State::Failed;
        }
        result
    }

    /// Elements in the scope its summary covered (the shapes a fallback would send), once a
    /// summary went out.
    pub fn summarized_len(&self) -> Option<u64> {
        self.sketch.as_ref().and_then(|s| s.summarized)
    }

    /// Why the responder asked to fall back to sending every shape, if it did.
    pub fn fallback_reason(&self) -> Option<FallbackReason> {
        self.sketch.as_ref().and_then(|s| s.fallback)
    }

    /// Whether `policy` lets us fall back to sending every shape after this sketched pull
    /// ended in [`Event::Fallback`] or [`Error::SketchMismatch`]: [`fallback_allowed`] over the
    /// summarized scope and the responder's reason (none after a failed final check).
    pub fn may_fall_back(&self, policy: &ShapeFallback) -> Result<(), Error> {
        fallback_allowed(
            policy,
            self.summarized_len().unwrap_or(0),
            self.fallback_reason(),
        )
    }

    /// Takes a response in the sketch exchange's `phase`, whose encoded form is `frame`.
    pub(super) fn handle_sketch(
        &mut self,
        phase: Phase,
        response: Response,
        frame: &[u8],
    ) -> Result<Event, Error> {
        let Some(sketched) = &mut self.sketch else {
            return Err(Error::Unexpected("a sketch answer outside a sketched pull"));
        };
        let decoding = matches!(
            phase,
            Phase::OpenSent { summary: true } | Phase::SymbolsSent { .. }
        );
        let ours = match phase {
            Phase::SymbolsSent { session, .. } => Some(session),
            _ => None,
        };
        match (phase, response) {
            (Phase::OpenSent { summary: false }, Response::Accepted { session, clients }) => {
                let clients = self.accept(clients)?;
                self.transcript.absorb_response(frame);
                self.state = State::Sketch(Phase::AwaitingSketch { session });
                Ok(Event::Accepted { clients })
            }
            (
                Phase::OpenSent { summary: true },
                Response::More {
                    session,
                    want,
                    probes,
                },
            ) => {
                self.transcript.absorb_response(frame);
                self.more(session, 1, want, probes)
            }
            (
                Phase::SymbolsSent { session, sent },
                Response::More {
                    session: s,
                    want,
                    probes,
                },
            ) if s == session => {
                self.transcript.absorb_response(frame);
                self.more(session, sent, want, probes)
            }
            (_, Response::Settled { digest, lacking }) if decoding => {
                sketched.check.theirs = Some(SetDigest::from_bytes(digest));
                sketched.check.complete = true;
                self.state = State::Done;
                Ok(Event::Reconciled {
                    lacking,
                    total: 0,
                    bytes: 0,
                    records: Vec::new(),
                    last: true,
                })
            }
            (
                _,
                Response::Decoded {
                    session,
                    key,
                    records: total,
                    bytes,
                    digest,
                    lacking,
                    sealed,
                },
            ) if decoding => {
                if ours.is_some_and(|s| s != session) {
                    return Err(Error::Unexpected("an answer for another session"));
                }
                sketched.check.theirs = Some(SetDigest::from_bytes(digest));
                // The transcript takes the frame without its sealed chunk: the Decoded
                // encoding with an empty `sealed`.
                self.transcript
                    .absorb_response(&frame[..frame.len() - sealed.len()]);
                self.ready(session, key, total, bytes)?;
                self.expect_first_chunk();
                let (records, last) = self.open_streamed(&sealed)?;
                Ok(Event::Reconciled {
                    lacking,
                    total,
                    bytes,
                    records,
                    last,
                })
            }
            (_, Response::Fallback { reason }) if decoding => {
                sketched.fallback = Some(reason);
                Ok(Event::Fallback { reason })
            }
            _ => Err(Error::Unexpected(
                "response does not fit the session's state",
            )),
        }
    }

    /// Asks for symbols `sent .. want`.
    fn more(
        &mut self,
        session: SessionId,
        sent: u32,
        want: u32,
        probes: Vec<u8>,
    ) -> Result<Event, Error> {
        if want <= sent || want as usize > MAX_SYMBOLS {
            return Err(Error::Unexpected(
                "asked for symbols already sent or beyond the cap",
            ));
        }
        self.state = State::Sketch(Phase::Sending {
            session,
            sent,
            want,
        });
        Ok(Event::More {
            from: sent,
            to: want,
            probes,
        })
    }
}
