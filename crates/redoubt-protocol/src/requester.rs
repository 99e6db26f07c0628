//! The requester's side of a pull, as a state machine: it makes request frames and takes
//! response frames, and does no I/O.

mod accounting;

use redoubt_vault::{
    ClientId, MergeReport, Selection,
    sketch::{MAX_SYMBOLS, SetDigest, Symbol},
};

use self::accounting::{Announced, Check, Filter};
use crate::{
    Error, FallbackReason, Mode, Open, OpenSketch, PROTOCOL_NAME_V3, Received, Request, Response,
    SessionId, ShapeFallback, ShapeGroup, Summary, chunk,
    crypto::{EphemeralSecret, Peers, SessionKey, SessionKeys, Transcript, open_chunk},
    fallback_allowed,
};

/// What a response frame meant.
#[derive(Debug)]
pub enum Event {
    /// The pull was admitted; send further shape batches with [`Requester::shapes`] (or, in a
    /// sketched pull, the summary with [`Requester::sketch`]), for these clients only (the
    /// responder's scope, every one of them asked for: [`Error::NotAsked`] otherwise).
    Accepted {
        /// The clients in scope, in id order, without repeats.
        clients: Vec<ClientId>,
    },
    /// The batch was taken; send the next.
    Continue,
    /// The complement is ready: ask for chunks with [`Requester::next_chunk`].
    Ready {
        /// Records the responder will send.
        records: u64,
        /// Value bytes the responder will send.
        bytes: u64,
    },
    /// A chunk opened and every record in it matched its claimed shape and the request.
    Records {
        /// The verified records, ready to merge.
        records: Vec<Received>,
        /// Whether this was the final chunk.
        last: bool,
    },
    /// Version 2: the responder needs symbols `from .. to` at least; send them with
    /// [`Requester::symbols`] ([`crate::ScopeSketch::answer_more`] sizes the batch).
    More {
        /// First index to send.
        from: u32,
        /// One past the last, at least.
        to: u32,
        /// The responder's fine probes (after the summary only).
        probes: Vec<u8>,
    },
    /// Version 2: the difference decoded. Give [`Requester::account_lacking`] the hashes of
    /// `lacking` before anything else; then, unless `last`, ask for chunks as in
    /// [`Event::Ready`].
    Reconciled {
        /// Keys of our versions the responder lacks.
        lacking: Vec<u64>,
        /// Records in the complement.
        total: u64,
        /// Value bytes in the complement.
        bytes: u64,
        /// Chunk 0's verified records (none when there is no complement).
        records: Vec<Received>,
        /// Whether nothing more follows.
        last: bool,
    },
    /// Version 2 or 3: the responder asks to reconcile by shapes: run a pull by shapes instead
    /// (bound, for a bound pull), if [`Requester::may_fall_back`] allows it.
    Fallback {
        /// Why.
        reason: FallbackReason,
    },
}

enum State {
    Fresh,
    OpenSent {
        last: bool,
    },
    /// Version 2: the opening went out (with a summary unless it is an import).
    SketchOpenSent {
        summary: bool,
    },
    /// Version 2 import: the scope is known; send the summary with [`Requester::sketch`].
    AwaitingSketch {
        session: SessionId,
    },
    /// Version 2: symbols went out; waiting for the responder's verdict.
    SymbolsSent {
        session: SessionId,
        sent: u32,
    },
    /// Version 2: the responder asked for symbols up to `want`.
    Sending {
        session: SessionId,
        sent: u32,
        want: u32,
    },
    Collecting {
        session: SessionId,
    },
    ShapesSent {
        session: SessionId,
        last: bool,
    },
    Streaming {
        session: SessionId,
        key: SessionKey,
        index: u64,
        asked: bool,
    },
    Done,
    Failed,
}

/// One pull, from the requester's side.
///
/// Call [`Self::open`], then [`Self::shapes`] until a batch marked last is sent, feeding every
/// response to [`Self::handle`]; after [`Event::Ready`], alternate [`Self::next_chunk`] and
/// [`Self::handle`] until [`Event::Records`] says `last`. Any error ends the session.
///
/// A pull made with [`Self::bound`] is a version 3 session: its opening carries version byte 3
/// and its key is bound to both peers' ids, the protocol name and every frame of both sides.
pub struct Requester {
    mode: Mode,
    invite: Option<[u8; 16]>,
    /// The clients asked for, by id, sorted.
    asked: Vec<ClientId>,
    /// The clients `Accepted` named (sorted), once it has.
    accepted: Option<Vec<ClientId>>,
    filter: Filter,
    secret: EphemeralSecret,
    peers: Option<Peers>,
    transcript: Transcript,
    state: State,
    check: Check,
    announced: Announced,
    /// Elements in the scope our summary covered.
    summarized: Option<u64>,
    /// Why the responder asked to fall back, if it did.
    fallback: Option<FallbackReason>,
}

impl Requester {
    /// An unbound (version 1 or 2) pull of `mode` with a fresh ephemeral key; `invite` when the
    /// responder asked for it. An import must name its clients ([`Error::EmptyImport`]): the
    /// requester takes records only of clients it asked for.
    pub fn new(mode: Mode, invite: Option<[u8; 16]>) -> Result<Self, Error> {
        Self::with_secret(mode, invite, EphemeralSecret::generate()?)
    }

    /// An unbound pull with a given ephemeral key (test vectors).
    pub fn with_secret(
        mode: Mode,
        invite: Option<[u8; 16]>,
        secret: EphemeralSecret,
    ) -> Result<Self, Error> {
        Self::build(mode, invite, secret, None)
    }

    /// A bound (version 3) pull of `mode` between `peers`: ours as the requester, the peer we
    /// dial as the responder, as the transport authenticated them.
    pub fn bound(mode: Mode, invite: Option<[u8; 16]>, peers: Peers) -> Result<Self, Error> {
        Self::with_secret_bound(mode, invite, EphemeralSecret::generate()?, peers)
    }

    /// A bound pull with a given ephemeral key (test vectors).
    pub fn with_secret_bound(
        mode: Mode,
        invite: Option<[u8; 16]>,
        secret: EphemeralSecret,
        peers: Peers,
    ) -> Result<Self, Error> {
        Self::build(mode, invite, secret, Some(peers))
    }

    fn build(
        mode: Mode,
        invite: Option<[u8; 16]>,
        secret: EphemeralSecret,
        peers: Option<Peers>,
    ) -> Result<Self, Error> {
        let filter = Filter::from_mode(&mode)?;
        let mut asked: Vec<ClientId> = match &mode {
            Mode::Full { client } | Mode::Partial { client, .. } => {
                vec![ClientId::from_path(client)]
            }
            Mode::Import { clients } => clients.iter().map(|c| ClientId::from_path(c)).collect(),
        };
        asked.sort();
        asked.dedup();
        Ok(Self {
            filter,
            asked,
            accepted: None,
            mode,
            invite,
            secret,
            transcript: if peers.is_some() {
                Transcript::bound()
            } else {
                Transcript::default()
            },
            peers,
            state: State::Fresh,
            check: Check::default(),
            announced: Announced::default(),
            summarized: None,
            fallback: None,
        })
    }

    /// What this pull asks for.
    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    /// The invitation it answers, if any.
    pub fn invite(&self) -> Option<[u8; 16]> {
        self.invite
    }

    /// The peers a bound (version 3) pull is bound to; `None` for versions 1 and 2.
    pub fn peers(&self) -> Option<&Peers> {
        self.peers.as_ref()
    }

    /// Whether it is a bound (version 3) session.
    pub fn is_bound(&self) -> bool {
        self.peers.is_some()
    }

    /// Whether it runs the sketch exchange (it opened with [`Self::open_sketch`]).
    pub fn is_sketched(&self) -> bool {
        self.check.sketched
    }

    /// Elements in the scope its summary covered (the shapes a fallback would send), once a
    /// summary went out.
    pub fn summarized_len(&self) -> Option<u64> {
        self.summarized
    }

    /// Why the responder asked to fall back to sending every shape, if it did.
    pub fn fallback_reason(&self) -> Option<FallbackReason> {
        self.fallback
    }

    /// Whether `policy` lets us fall back to sending every shape after this sketched pull
    /// ended in [`Event::Fallback`] or [`Error::SketchMismatch`]: [`fallback_allowed`] over the
    /// summarized scope and the responder's reason (none after a failed final check).
    pub fn may_fall_back(&self, policy: &ShapeFallback) -> Result<(), Error> {
        fallback_allowed(policy, self.summarized.unwrap_or(0), self.fallback)
    }

    /// Whether the opening frame should carry no shapes and wait for [`Event::Accepted`] to
    /// name the clients in scope: true for imports, so that shapes of clients the responder
    /// will not serve never leave this node.
    pub fn waits_for_scope(&self) -> bool {
        matches!(self.mode, Mode::Import { .. })
    }

    /// The clients whose shapes this pull may send, by id, sorted: the ones it asked for.
    pub fn wanted_clients(&self) -> Vec<ClientId> {
        self.asked.clone()
    }

    /// The scope a sketch summary covers: the wanted client with its selection, or, for an
    /// import, the clients [`Event::Accepted`] named (`accepted`), whole. Never a client this
    /// pull did not ask for, whatever `accepted` holds.
    pub fn sketch_scope(&self, accepted: Option<&[ClientId]>) -> Vec<(ClientId, Selection)> {
        match (&self.filter, accepted) {
            (Filter::One { client, selection }, _) => {
                vec![(ClientId::from_path(client), selection.clone())]
            }
            (Filter::Clients(_), Some(list)) => {
                let mut list = list.to_vec();
                list.sort();
                list.dedup();
                list.retain(|c| self.asked.binary_search(c).is_ok());
                if let Some(named) = &self.accepted {
                    list.retain(|c| named.binary_search(c).is_ok());
                }
                list.into_iter().map(|c| (c, Selection::all())).collect()
            }
            (Filter::Clients(_), None) => Vec::new(),
        }
    }

    /// The selection inside the wanted client (everything for an import).
    pub fn selection(&self) -> Selection {
        match &self.filter {
            Filter::One { selection, .. } => selection.clone(),
            Filter::Clients(_) => Selection::all(),
        }
    }

    /// The opening frame, carrying the first batch of shapes.
    pub fn open(&mut self, groups: Vec<ShapeGroup>, last: bool) -> Result<Vec<u8>, Error> {
        if !matches!(self.state, State::Fresh) {
            return Err(Error::Unexpected("open after the session started"));
        }
        self.check_asked(&groups)?;
        let frame = Request::Open(Open {
            mode: self.mode.clone(),
            invite: self.invite,
            key: self.secret.public_key(),
            groups,
            last,
            bound: self.is_bound(),
        })
        .encode()?;
        self.transcript.absorb(&frame);
        self.state = State::OpenSent { last };
        Ok(frame)
    }

    /// The opening frame of a sketched pull, with our `summary` of the scope and the scope's
    /// set `digest`; an import passes `None` and sends them with [`Self::sketch`] once
    /// [`Event::Accepted`] names the scope.
    pub fn open_sketch(&mut self, summary: Option<(Summary, SetDigest)>) -> Result<Vec<u8>, Error> {
        if !matches!(self.state, State::Fresh) {
            return Err(Error::Unexpected("open after the session started"));
        }
        if let Some((s, digest)) = summary {
            self.check.ours = digest;
            self.summarized = Some(s.len);
        }
        self.check.sketched = true;
        let frame = Request::OpenSketch(OpenSketch {
            mode: self.mode.clone(),
            invite: self.invite,
            key: self.secret.public_key(),
            summary: summary.map(|(s, _)| s),
            bound: self.is_bound(),
        })
        .encode()?;
        self.transcript.absorb(&frame);
        self.state = State::SketchOpenSent {
            summary: summary.is_some(),
        };
        Ok(frame)
    }

    /// An import's summary of the scope [`Event::Accepted`] named, and its set digest.
    pub fn sketch(&mut self, summary: Summary, digest: SetDigest) -> Result<Vec<u8>, Error> {
        let State::AwaitingSketch { session } = self.state else {
            return Err(Error::Unexpected("a summary outside an import's opening"));
        };
        self.check.ours = digest;
        self.summarized = Some(summary.len);
        let frame = Request::Sketch { session, summary }.encode()?;
        self.transcript.absorb(&frame);
        self.state = State::SymbolsSent { session, sent: 1 };
        Ok(frame)
    }

    /// The symbols [`Event::More`] asked for, in order.
    pub fn symbols(&mut self, symbols: Vec<Symbol>) -> Result<Vec<u8>, Error> {
        let State::Sending {
            session,
            sent,
            want,
        } = self.state
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
        self.state = State::SymbolsSent {
            session,
            sent: end as u32,
        };
        Ok(frame)
    }

    /// Sketched pulls: accounts for the versions the responder said it lacks, given the sum of
    /// their element hashes (`None` when a key names none of our versions, which fails the
    /// check). Runs the final check if the complement is already in.
    pub fn account_lacking(&mut self, sum: Option<SetDigest>) -> Result<(), Error> {
        if self.check.theirs.is_none() || self.check.lacking.is_some() {
            return Err(Error::Unexpected("lacking keys accounted out of turn"));
        }
        let sum = sum.ok_or(Error::SketchMismatch("the peer lacks a key we do not hold"))?;
        self.check.lacking = Some(sum);
        let result = self.check.verify();
        if result.is_err() {
            self.state = State::Failed;
        }
        result
    }

    /// A further batch of shapes, of clients this pull asked for ([`ShapeCursor`] sends only
    /// those `Accepted` named).
    ///
    /// [`ShapeCursor`]: crate::ShapeCursor
    pub fn shapes(&mut self, groups: Vec<ShapeGroup>, last: bool) -> Result<Vec<u8>, Error> {
        let State::Collecting { session } = self.state else {
            return Err(Error::Unexpected("shapes outside the collecting phase"));
        };
        self.check_asked(&groups)?;
        let frame = Request::Shapes {
            session,
            groups,
            last,
        }
        .encode()?;
        self.transcript.absorb(&frame);
        self.state = State::ShapesSent { session, last };
        Ok(frame)
    }

    /// The request for the next chunk.
    pub fn next_chunk(&mut self) -> Result<Vec<u8>, Error> {
        let State::Streaming {
            session,
            index,
            ref mut asked,
            ..
        } = self.state
        else {
            return Err(Error::Unexpected(
                "chunk request outside the streaming phase",
            ));
        };
        *asked = true;
        Request::Next { session, index }.encode()
    }

    /// Whether the final chunk has been received and verified.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Chunks received and verified so far.
    pub fn chunks_received(&self) -> u64 {
        match self.state {
            State::Streaming { index, .. } => index,
            _ => 0,
        }
    }

    /// Takes one response frame.
    pub fn handle(&mut self, frame: &[u8]) -> Result<Event, Error> {
        let result = self.handle_inner(frame);
        if result.is_err() {
            self.state = State::Failed;
        }
        result
    }

    fn handle_inner(&mut self, frame: &[u8]) -> Result<Event, Error> {
        let response = Response::decode(frame)?;
        if let Response::Refused { code, detail } = response {
            return Err(Error::Refused { code, detail });
        }
        match (std::mem::replace(&mut self.state, State::Failed), response) {
            (State::OpenSent { last: false }, Response::Accepted { session, clients }) => {
                let clients = self.accept(clients)?;
                self.transcript.absorb_response(frame);
                self.state = State::Collecting { session };
                Ok(Event::Accepted { clients })
            }
            (
                State::ShapesSent {
                    session,
                    last: false,
                },
                Response::Continue,
            ) => {
                self.transcript.absorb_response(frame);
                self.state = State::Collecting { session };
                Ok(Event::Continue)
            }
            (
                State::OpenSent { last: true },
                Response::Ready {
                    session,
                    key,
                    records,
                    bytes,
                },
            ) => {
                self.transcript.absorb_response(frame);
                self.ready(session, key, records, bytes)
            }
            (
                State::ShapesSent {
                    session,
                    last: true,
                },
                Response::Ready {
                    session: s,
                    key,
                    records,
                    bytes,
                },
            ) if s == session => {
                self.transcript.absorb_response(frame);
                self.ready(session, key, records, bytes)
            }
            (State::SketchOpenSent { summary: false }, Response::Accepted { session, clients }) => {
                let clients = self.accept(clients)?;
                self.transcript.absorb_response(frame);
                self.state = State::AwaitingSketch { session };
                Ok(Event::Accepted { clients })
            }
            (
                State::SketchOpenSent { summary: true },
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
                State::SymbolsSent { session, sent },
                Response::More {
                    session: s,
                    want,
                    probes,
                },
            ) if s == session => {
                self.transcript.absorb_response(frame);
                self.more(session, sent, want, probes)
            }
            (
                State::SketchOpenSent { summary: true } | State::SymbolsSent { .. },
                Response::Settled { digest, lacking },
            ) => {
                self.check.theirs = Some(SetDigest::from_bytes(digest));
                self.check.complete = true;
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
                previous @ (State::SketchOpenSent { summary: true } | State::SymbolsSent { .. }),
                Response::Decoded {
                    session,
                    key,
                    records: total,
                    bytes,
                    digest,
                    lacking,
                    sealed,
                },
            ) => {
                if matches!(previous, State::SymbolsSent { session: s, .. } if s != session) {
                    return Err(Error::Unexpected("an answer for another session"));
                }
                // The transcript takes the frame without its sealed chunk: the Decoded
                // encoding with an empty `sealed`.
                self.transcript
                    .absorb_response(&frame[..frame.len() - sealed.len()]);
                self.check.theirs = Some(SetDigest::from_bytes(digest));
                self.ready(session, key, total, bytes)?;
                if let State::Streaming { ref mut asked, .. } = self.state {
                    *asked = true;
                }
                let (records, last) = self.open_streamed(&sealed)?;
                Ok(Event::Reconciled {
                    lacking,
                    total,
                    bytes,
                    records,
                    last,
                })
            }
            (
                State::SketchOpenSent { summary: true } | State::SymbolsSent { .. },
                Response::Fallback { reason },
            ) => {
                self.fallback = Some(reason);
                Ok(Event::Fallback { reason })
            }
            (
                State::Streaming {
                    session,
                    key,
                    index,
                    asked: true,
                },
                Response::Chunk { sealed },
            ) => {
                self.state = State::Streaming {
                    session,
                    key,
                    index,
                    asked: true,
                };
                let (records, last) = self.open_streamed(&sealed)?;
                Ok(Event::Records { records, last })
            }
            _ => Err(Error::Unexpected(
                "response does not fit the session's state",
            )),
        }
    }

    /// Fails unless every group is of a client this pull asked for.
    fn check_asked(&self, groups: &[ShapeGroup]) -> Result<(), Error> {
        if groups
            .iter()
            .any(|g| self.asked.binary_search(&g.client).is_err())
        {
            return Err(Error::Unexpected(
                "shapes of a client this pull did not ask for",
            ));
        }
        Ok(())
    }

    /// Checks the scope `Accepted` named against what we asked for, and keeps it (sorted,
    /// without repeats): a client we did not ask for fails the session.
    fn accept(&mut self, mut clients: Vec<ClientId>) -> Result<Vec<ClientId>, Error> {
        clients.sort();
        clients.dedup();
        if clients.iter().any(|c| self.asked.binary_search(c).is_err()) {
            return Err(Error::NotAsked);
        }
        self.filter.narrow(&clients);
        self.accepted = Some(clients.clone());
        Ok(clients)
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
        self.state = State::Sending {
            session,
            sent,
            want,
        };
        Ok(Event::More {
            from: sent,
            to: want,
            probes,
        })
    }

    /// Opens the chunk the streaming state expects, verifies every record in it and the counts
    /// against what was announced, and moves on (running the sketch's final check after the
    /// last chunk).
    fn open_streamed(&mut self, sealed: &[u8]) -> Result<(Vec<Received>, bool), Error> {
        let State::Streaming {
            session,
            ref key,
            index,
            asked: true,
        } = self.state
        else {
            return Err(Error::Unexpected("a chunk nobody asked for"));
        };
        let (plaintext, last) = open_chunk(key, session, index, sealed)?;
        let mut records = Vec::new();
        for entry in chunk::decode(&plaintext)? {
            let received =
                chunk::verify(entry).map_err(|reason| Error::BadRecord { index, reason })?;
            if !self.filter.admits(&received) {
                return Err(Error::BadRecord {
                    index,
                    reason: "record outside what was asked for",
                });
            }
            records.push(received);
        }
        self.announced.take(index, &records, last)?;
        if self.check.theirs.is_some() {
            for r in &records {
                self.check.receive(r);
            }
        }
        if last {
            self.state = State::Done;
            self.check.complete = true;
            self.check.verify()?;
        } else if let State::Streaming {
            ref mut index,
            ref mut asked,
            ..
        } = self.state
        {
            *index += 1;
            *asked = false;
        }
        Ok((records, last))
    }

    /// Agrees on the key (the transcript now holds the key-bearing answer) and starts
    /// streaming.
    fn ready(
        &mut self,
        session: SessionId,
        key: [u8; 32],
        records: u64,
        bytes: u64,
    ) -> Result<Event, Error> {
        let keys = SessionKeys {
            requester: self.secret.public_key(),
            responder: key,
        };
        let transcript = self.transcript.hash();
        let key = match &self.peers {
            Some(peers) => SessionKey::agree_bound(
                &self.secret,
                &key,
                keys,
                session,
                peers,
                PROTOCOL_NAME_V3,
                &transcript,
            )?,
            None => SessionKey::agree(&self.secret, &key, keys, session, &transcript)?,
        };
        self.announced = Announced::new(records, bytes);
        self.state = State::Streaming {
            session,
            key,
            index: 0,
            asked: false,
        };
        Ok(Event::Ready { records, bytes })
    }
}

/// The frame that asks a peer to pull `mode` from us, quoting `invite`. Its answer is read with
/// [`read_push_answer`].
pub fn push_request(invite: [u8; 16], mode: Mode) -> Result<Vec<u8>, Error> {
    Request::Push { invite, mode }.encode()
}

/// Reads the answer to a push: the peer's merge report, or its refusal.
pub fn read_push_answer(frame: &[u8]) -> Result<MergeReport, Error> {
    match Response::decode(frame)? {
        Response::Pushed { report } => Ok(report),
        Response::Refused { code, detail } => Err(Error::Refused { code, detail }),
        _ => Err(Error::Unexpected("a push is answered by Pushed or Refused")),
    }
}

#[cfg(test)]
mod tests;
