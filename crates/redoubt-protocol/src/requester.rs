//! The requester's side of a pull, as a state machine: it makes request frames and takes
//! response frames, and does no I/O. [`crate::Pull`] drives it.
//!
//! Each exchange has its file: version 1's shape batches in [`shapes`], version 2's sketch in
//! [`sketch`]; both end in the one sealed stream of [`stream`], checked by [`accounting`].

mod accounting;
mod shapes;
mod sketch;
mod stream;

use redoubt_vault::{ClientId, MergeReport, Selection};

use self::accounting::Filter;
use crate::{
    Error, FallbackReason, Mode, Received, Request, Response, ShapeGroup,
    crypto::{EphemeralSecret, Peers, Transcript},
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
    /// Version 1's exchange.
    Shapes(shapes::Phase),
    /// Version 2's exchange.
    Sketch(sketch::Phase),
    /// Either exchange: the complement streams.
    Streaming(stream::Stream),
    Done,
    Failed,
}

/// One pull, from the requester's side.
///
/// Call [`Self::open`], then [`Self::shapes`] until a batch marked last is sent, feeding every
/// response to [`Self::handle`]; after [`Event::Ready`], alternate [`Self::next_chunk`] and
/// [`Self::handle`] until [`Event::Records`] says `last`. Any error ends the session.
///
/// A pull made with peers is a version 3 session: its opening carries version byte 3
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
    /// Whether the bound session carries lineage (version 4).
    lineage: bool,
    transcript: Transcript,
    state: State,
    /// What a sketched pull (version 2's exchange) keeps: `None` for the shapes exchange.
    sketch: Option<sketch::Sketched>,
    /// Chunks received and verified.
    chunks: u64,
}

impl Requester {
    /// A pull of `mode`; `invite` when the responder asked for it (a push). With `peers`
    /// (ours as the requester, the peer we dial as the responder, as the transport
    /// authenticated them) it is a bound (version 3) session, otherwise an unbound one
    /// (version 1 or 2). `secret` fixes the ephemeral key (test vectors); a fresh one
    /// otherwise. An import must name its clients ([`Error::EmptyImport`]): the requester takes
    /// records only of clients it asked for.
    pub fn new(
        mode: Mode,
        invite: Option<[u8; 16]>,
        peers: Option<Peers>,
        secret: Option<EphemeralSecret>,
    ) -> Result<Self, Error> {
        let secret = match secret {
            Some(s) => s,
            None => EphemeralSecret::generate()?,
        };
        Self::build(mode, invite, secret, peers)
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
            lineage: false,
            state: State::Fresh,
            sketch: None,
            chunks: 0,
        })
    }

    /// Makes the bound session a version 4 one, whose chunks carry each record's lineage (its
    /// parent and history). Fails with [`Error::Binding`] for an unbound session.
    pub fn with_lineage(mut self) -> Result<Self, Error> {
        if self.peers.is_none() {
            return Err(Error::Binding(
                "a session carrying lineage (version 4) must be bound",
            ));
        }
        self.lineage = true;
        Ok(self)
    }

    /// Whether it is a version 4 session: chunks carry each record's lineage.
    pub fn carries_lineage(&self) -> bool {
        self.lineage
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
        self.sketch.is_some()
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

    /// Whether the complement is streaming: the next response is a chunk, which needs nothing
    /// of the replica.
    pub fn is_streaming(&self) -> bool {
        matches!(self.state, State::Streaming(_))
    }

    /// Whether the final chunk has been received and verified.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
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
        match std::mem::replace(&mut self.state, State::Failed) {
            State::Shapes(phase) => self.handle_shapes(phase, response, frame),
            State::Sketch(phase) => self.handle_sketch(phase, response, frame),
            State::Streaming(stream) => {
                let (records, last) = self.handle_streaming(stream, response)?;
                Ok(Event::Records { records, last })
            }
            State::Fresh | State::Done | State::Failed => Err(Error::Unexpected(
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
