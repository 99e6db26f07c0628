//! The requester's side of a pull, as a state machine: it makes request frames and takes
//! response frames, and does no I/O.

use redoubt_vault::{ClientId, MergeReport, Selection};

use crate::{
    Error, Mode, Open, Received, Request, Response, SessionId, ShapeGroup, chunk,
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
}

enum State {
    Fresh,
    OpenSent {
        last: bool,
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
        })
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
            (
                State::Streaming {
                    session,
                    key,
                    index,
                    asked: true,
                },
                Response::Chunk { sealed },
            ) => {
                let (plaintext, last) = open_chunk(&key, session, index, &sealed)?;
                let mut records = Vec::new();
                for entry in chunk::decode(&plaintext)? {
                    let received = chunk::verify(entry)
                        .map_err(|reason| Error::BadRecord { index, reason })?;
                    if !self.filter.admits(&received) {
                        return Err(Error::BadRecord {
                            index,
                            reason: "record outside what was asked for",
                        });
                    }
                    records.push(received);
                }
                self.state = if last {
                    State::Done
                } else {
                    State::Streaming {
                        session,
                        key,
                        index: index + 1,
                        asked: false,
                    }
                };
                Ok(Event::Records { records, last })
            }
            _ => Err(Error::Unexpected(
                "response does not fit the session's state",
            )),
        }
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
