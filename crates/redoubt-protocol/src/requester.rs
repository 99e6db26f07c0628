//! The requester's side of a pull, as a state machine: it makes request frames and takes
//! response frames, and does no I/O.

use redoubt_vault::{
    ClientId, MergeReport, Selection,
    sketch::{Element, MAX_SYMBOLS, SetDigest, Symbol},
};

use crate::{
    Error, FallbackReason, Mode, Open, OpenSketch, Received, Request, Response, SessionId,
    ShapeGroup, Summary, chunk,
    crypto::{EphemeralSecret, SessionKey, SessionKeys, Transcript, open_chunk},
};

/// What a response frame meant.
#[derive(Debug)]
pub enum Event {
    /// The pull was admitted; send further shape batches with [`Requester::shapes`], for
    /// these clients only (the responder's scope).
    Accepted {
        /// The clients in scope, in order.
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
    /// Version 2: the responder asks to reconcile by shapes: run a version 1 pull instead.
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

/// Which records the requester accepts: what it asked for, nothing else.
enum Filter {
    One {
        client: Vec<u8>,
        selection: Selection,
    },
    Clients(Vec<Vec<u8>>),
}

impl Filter {
    fn from_mode(mode: &Mode) -> Result<Self, Error> {
        Ok(match mode {
            Mode::Full { client } | Mode::Partial { client, .. } => Self::One {
                client: client.clone(),
                selection: mode.selection()?,
            },
            Mode::Import { clients } => Self::Clients(clients.clone()),
        })
    }

    fn admits(&self, r: &Received) -> bool {
        match self {
            Self::One { client, selection } => {
                let (v, rec) = r.record.location().ids();
                *client == r.client && selection.contains(v, rec)
            }
            Self::Clients(list) => list.is_empty() || list.contains(&r.client),
        }
    }
}

/// One pull, from the requester's side.
///
/// Call [`Self::open`], then [`Self::shapes`] until a batch marked last is sent, feeding every
/// response to [`Self::handle`]; after [`Event::Ready`], alternate [`Self::next_chunk`] and
/// [`Self::handle`] until [`Event::Records`] says `last`. Any error ends the session.
pub struct Requester {
    mode: Mode,
    invite: Option<[u8; 16]>,
    filter: Filter,
    secret: EphemeralSecret,
    transcript: Transcript,
    state: State,
    check: Check,
}

/// Version 2's final check: the responder's digest must equal ours, minus the versions it
/// lacks, plus the versions it sent.
#[derive(Default)]
struct Check {
    /// Our set digest when the summary was made.
    ours: SetDigest,
    /// The responder's, from its answer.
    theirs: Option<SetDigest>,
    /// Sum over the versions it lacks, once the caller has accounted for them.
    lacking: Option<SetDigest>,
    /// Sum over the records received.
    received: SetDigest,
    /// The path and id of the last client a record came from (ids cost a hash).
    last_client: Option<(Vec<u8>, ClientId)>,
    /// Whether the last record is in.
    complete: bool,
    /// Whether the pull opened with a sketch (version 2).
    sketched: bool,
}

impl Check {
    fn receive(&mut self, r: &Received) {
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
    fn verify(&self) -> Result<(), Error> {
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

impl Requester {
    /// A pull of `mode` with a fresh ephemeral key; `invite` when the responder asked for it.
    pub fn new(mode: Mode, invite: Option<[u8; 16]>) -> Result<Self, Error> {
        Self::with_secret(mode, invite, EphemeralSecret::generate()?)
    }

    /// A pull with a given ephemeral key (test vectors).
    pub fn with_secret(
        mode: Mode,
        invite: Option<[u8; 16]>,
        secret: EphemeralSecret,
    ) -> Result<Self, Error> {
        Ok(Self {
            filter: Filter::from_mode(&mode)?,
            mode,
            invite,
            secret,
            transcript: Transcript::default(),
            state: State::Fresh,
            check: Check::default(),
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

    /// Whether it runs version 2 (it opened with [`Self::open_sketch`]).
    pub fn is_sketched(&self) -> bool {
        self.check.sketched
    }

    /// Whether the opening frame should carry no shapes and wait for [`Event::Accepted`] to
    /// name the clients in scope: true for imports, so that shapes of clients the responder
    /// will not serve never leave this node.
    pub fn waits_for_scope(&self) -> bool {
        matches!(self.mode, Mode::Import { .. })
    }

    /// The clients whose shapes this pull must send, or `None` for every client we hold.
    pub fn wanted_clients(&self) -> Option<Vec<ClientId>> {
        match &self.mode {
            Mode::Full { client } | Mode::Partial { client, .. } => {
                Some(vec![ClientId::from_path(client)])
            }
            Mode::Import { clients } if clients.is_empty() => None,
            Mode::Import { clients } => {
                Some(clients.iter().map(|c| ClientId::from_path(c)).collect())
            }
        }
    }

    /// The scope a version 2 summary covers: the wanted client with its selection, or, for an
    /// import, the clients [`Event::Accepted`] named (`accepted`), whole.
    pub fn sketch_scope(&self, accepted: Option<&[ClientId]>) -> Vec<(ClientId, Selection)> {
        match (&self.filter, accepted) {
            (Filter::One { client, selection }, _) => {
                vec![(ClientId::from_path(client), selection.clone())]
            }
            (Filter::Clients(_), Some(list)) => {
                let mut list = list.to_vec();
                list.sort();
                list.dedup();
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
        let frame = Request::Open(Open {
            mode: self.mode.clone(),
            invite: self.invite,
            key: self.secret.public_key(),
            groups,
            last,
        })
        .encode()?;
        self.transcript.absorb(&frame);
        self.state = State::OpenSent { last };
        Ok(frame)
    }

    /// The opening frame of a version 2 pull, with our `summary` of the scope and the
    /// scope's set `digest`; an import passes `None` and sends them with [`Self::sketch`] once
    /// [`Event::Accepted`] names the scope.
    pub fn open_sketch(&mut self, summary: Option<(Summary, SetDigest)>) -> Result<Vec<u8>, Error> {
        if !matches!(self.state, State::Fresh) {
            return Err(Error::Unexpected("open after the session started"));
        }
        if let Some((_, digest)) = summary {
            self.check.ours = digest;
        }
        self.check.sketched = true;
        let frame = Request::OpenSketch(OpenSketch {
            mode: self.mode.clone(),
            invite: self.invite,
            key: self.secret.public_key(),
            summary: summary.map(|(s, _)| s),
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

    /// Version 2: accounts for the versions the responder said it lacks, given the sum of
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

    /// A further batch of shapes.
    pub fn shapes(&mut self, groups: Vec<ShapeGroup>, last: bool) -> Result<Vec<u8>, Error> {
        let State::Collecting { session } = self.state else {
            return Err(Error::Unexpected("shapes outside the collecting phase"));
        };
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
            ) => self.ready(session, key, records, bytes),
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
            ) if s == session => self.ready(session, key, records, bytes),
            (State::SketchOpenSent { summary: false }, Response::Accepted { session, clients }) => {
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
            ) => self.more(session, 1, want, probes),
            (
                State::SymbolsSent { session, sent },
                Response::More {
                    session: s,
                    want,
                    probes,
                },
            ) if s == session => self.more(session, sent, want, probes),
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
            ) => Ok(Event::Fallback { reason }),
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

    /// Opens the chunk the streaming state expects, verifies every record in it, and moves on
    /// (running version 2's final check after the last chunk).
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
            if self.check.theirs.is_some() {
                self.check.receive(&received);
            }
            records.push(received);
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
        let key = SessionKey::agree(&self.secret, &key, keys, session, &self.transcript.hash())?;
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
mod tests {
    use redoubt_vault::{Instance, Location, NodeId, SecretValue};

    use super::*;
    use crate::{
        Request, Scope,
        chunk::ChunkWriter,
        crypto::{SessionKey, SessionKeys, seal_chunk},
    };

    /// A responder that knows the session key but lies about a record's shape, or sends a
    /// record of a client that was not asked for, is caught before anything is merged.
    #[test]
    fn lying_shapes_and_unasked_records_are_rejected() {
        let mut src = Instance::new(NodeId::from_bytes([2; 16]));
        let loc = Location::new("v", "r").unwrap();
        src.write_at(b"alice", &loc, SecretValue::new(b"x".to_vec()), 1)
            .unwrap();
        src.write_at(b"bob", &loc, SecretValue::new(b"y".to_vec()), 1)
            .unwrap();
        let alice = ClientId::from_path(b"alice");
        let bob = ClientId::from_path(b"bob");
        // offsets inside an entry: count (4), client id, vault id, record id, size, hash
        let cases: [(&ClientId, &[u8], Option<usize>, &str); 4] = [
            (&alice, b"alice", Some(4 + 96 + 4), "hash differs"),
            (&alice, b"alice", Some(4 + 96), "size differs"),
            (&alice, b"alice", Some(4 + 40), "location ids"),
            (&bob, b"bob", None, "outside what was asked"),
        ];
        for (client_id, path, flip, want) in cases {
            let secret = EphemeralSecret::from_bytes([5; 32]);
            let mut req = Requester::with_secret(
                Mode::Full {
                    client: b"alice".to_vec(),
                },
                None,
                secret,
            )
            .unwrap();
            let frame = req.open(Vec::new(), true).unwrap();
            let Request::Open(open) = Request::decode(&frame).unwrap() else {
                panic!()
            };
            let scope = Scope::resolve(&open.mode, &src, &[b"alice".to_vec()]).unwrap();
            let theirs = EphemeralSecret::from_bytes([6; 32]);
            let session = SessionId([1; 16]);
            let (_, ready) =
                crate::Responder::start_with(&frame, open, scope, &src, session, theirs).unwrap();
            req.handle(&ready.encode().unwrap()).unwrap();
            // The malicious responder's own view of the key.
            let mut t = Transcript::default();
            t.absorb(&frame);
            let theirs = EphemeralSecret::from_bytes([6; 32]);
            let keys = SessionKeys {
                requester: EphemeralSecret::from_bytes([5; 32]).public_key(),
                responder: theirs.public_key(),
            };
            let key =
                SessionKey::agree(&theirs, &keys.requester, keys, session, &t.hash()).unwrap();
            let mut w = ChunkWriter::new();
            w.push(client_id, path, src.record(client_id, loc.ids()).unwrap());
            let mut pt = w.finish();
            if let Some(at) = flip {
                pt[at] ^= 1;
            }
            let sealed = seal_chunk(&key, session, 0, true, &pt).unwrap();
            req.next_chunk().unwrap();
            let err = req
                .handle(&Response::Chunk { sealed }.encode().unwrap())
                .unwrap_err();
            assert!(err.to_string().contains(want), "{err} / {want}");
        }
    }
}
