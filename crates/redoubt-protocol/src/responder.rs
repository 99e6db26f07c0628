//! The responder's side of a pull, as a state machine: it takes request frames, computes the
//! complement against the instance it is given, and makes response frames. No I/O.
//!
//! Version 1 merge-joins the requester's shapes here; version 2 decodes a sketch difference in
//! [`sketched`]. Either exchange runs bound (version 3) when started with a bound constructor.

mod sketched;

use redoubt_vault::{ClientId, RecordId, Selection, Shape, VaultId, sketch::Symbol};

use crate::{
    Error, Mode, Open, PROTOCOL_NAME_V3, RefusalCode, Replica, Response, SessionId, ShapeGroup,
    VERSION_3,
    chunk::ChunkWriter,
    crypto::{
        EphemeralSecret, Peers, SessionKey, SessionKeys, Transcript, fill_random, seal_chunk,
    },
    limits::CHUNK_TARGET,
};

/// A refusal to answer, sent back as [`Response::Refused`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Why.
    pub code: RefusalCode,
    /// Detail for the requester's error message.
    pub detail: String,
}

impl Refusal {
    /// A refusal with `code` and `detail`.
    pub fn new(code: RefusalCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
        }
    }

    /// The response frame that carries it.
    pub fn to_frame(&self) -> Vec<u8> {
        Response::Refused {
            code: self.code,
            detail: self.detail.clone(),
        }
        .encode()
        .unwrap_or_default()
    }
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Self {
        Self::new(RefusalCode::BadRequest, e.to_string())
    }
}

/// What a pull may see: per client in scope, the selected records.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    clients: Vec<(ClientId, Selection)>,
}

impl Scope {
    /// Resolves `mode` against what we hold and the client paths the peer may read.
    ///
    /// A full or partial pull of a client not in `readable` is refused with permission denied;
    /// of a client we do not hold, with client not found. An import covers the readable clients
    /// (those listed, when it lists any) that we hold, and is refused when none is readable.
    pub fn resolve(
        mode: &Mode,
        replica: &impl Replica,
        readable: &[Vec<u8>],
    ) -> Result<Self, Refusal> {
        let single = |client: &Vec<u8>, selection: Selection| {
            if !readable.contains(client) {
                return Err(Refusal::new(
                    RefusalCode::PermissionDenied,
                    format!(
                        "no read grant on client {:?}",
                        String::from_utf8_lossy(client)
                    ),
                ));
            }
            let id = ClientId::from_path(client);
            if !replica.holds(&id) {
                return Err(Refusal::new(
                    RefusalCode::ClientNotFound,
                    format!("client {:?}", String::from_utf8_lossy(client)),
                ));
            }
            Ok(Self {
                clients: vec![(id, selection)],
            })
        };
        match mode {
            Mode::Full { client } | Mode::Partial { client, .. } => {
                single(client, mode.selection()?)
            }
            Mode::Import { clients } => {
                let candidates: Vec<&Vec<u8>> = readable
                    .iter()
                    .filter(|c| clients.is_empty() || clients.contains(c))
                    .collect();
                if candidates.is_empty() {
                    return Err(Refusal::new(
                        RefusalCode::PermissionDenied,
                        "no client you may read",
                    ));
                }
                let mut ids: Vec<ClientId> = candidates
                    .iter()
                    .map(|c| ClientId::from_path(c))
                    .filter(|id| replica.holds(id))
                    .collect();
                ids.sort();
                ids.dedup();
                Ok(Self {
                    clients: ids.into_iter().map(|id| (id, Selection::all())).collect(),
                })
            }
        }
    }

    /// The clients in scope, by id, in order.
    pub fn clients(&self) -> impl Iterator<Item = &ClientId> {
        self.clients.iter().map(|(id, _)| id)
    }
}

/// Where the merge-join of our records against the requester's shapes has reached.
#[derive(Default)]
struct Cursor {
    /// Index into the scope's clients.
    client: usize,
    /// Last location of that client already classified.
    after: Option<(VaultId, RecordId)>,
}

enum State {
    /// Version 1: taking shape batches.
    Collecting,
    /// Version 2 import: waiting for the requester's summary.
    AwaitingSketch,
    /// Version 2: the requester's symbols so far did not decode.
    Decoding {
        /// The requester's symbols (symbol 0's count is `their_len`; the others' modulo 2^16).
        theirs: Vec<Symbol>,
        /// The requester's set size.
        their_len: u64,
        /// How many symbols we asked for.
        want: u32,
    },
    Streaming {
        key: SessionKey,
        index: u64,
        pos: usize,
    },
    Done,
}

/// One pull, from the responder's side.
///
/// Started bound ([`Self::start_bound`], [`Self::start_sketch_bound`]) for a version 3 opening:
/// the key is then bound to both peers' ids, the protocol name and every frame of both sides.
pub struct Responder {
    session: SessionId,
    scope: Scope,
    requester_key: [u8; 32],
    secret: EphemeralSecret,
    peers: Option<Peers>,
    transcript: Transcript,
    cursor: Cursor,
    last_seen: Option<(ClientId, VaultId, RecordId)>,
    complement: Vec<(u32, VaultId, RecordId)>,
    bytes: u64,
    state: State,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("session", &self.session)
            .field("complement", &self.complement.len())
            .finish_non_exhaustive()
    }
}

impl Responder {
    /// Starts an unbound (version 1) session for an admitted [`Open`] whose encoded form is
    /// `frame`, with a fresh session id and ephemeral key. Returns the session and its first
    /// response. A bound opening fails ([`Error::Binding`]): use [`Self::start_bound`].
    pub fn start(
        frame: &[u8],
        open: Open,
        scope: Scope,
        replica: &impl Replica,
    ) -> Result<(Self, Response), Error> {
        let (session, secret) = fresh_session()?;
        Self::start_with(frame, open, scope, replica, session, secret)
    }

    /// [`Self::start`] with a given session id and ephemeral key (test vectors).
    pub fn start_with(
        frame: &[u8],
        open: Open,
        scope: Scope,
        replica: &impl Replica,
        session: SessionId,
        secret: EphemeralSecret,
    ) -> Result<(Self, Response), Error> {
        Self::start_open(frame, open, scope, replica, (session, secret), None)
    }

    /// Starts a bound (version 3) session for an admitted bound [`Open`] whose encoded form is
    /// `frame`, between `peers`: the peer that opened as the requester, ours as the responder,
    /// as the transport authenticated them. An unbound opening fails ([`Error::Binding`]).
    pub fn start_bound(
        frame: &[u8],
        open: Open,
        scope: Scope,
        replica: &impl Replica,
        peers: Peers,
    ) -> Result<(Self, Response), Error> {
        let (session, secret) = fresh_session()?;
        Self::start_bound_with(frame, open, scope, replica, session, secret, peers)
    }

    /// [`Self::start_bound`] with a given session id and ephemeral key (test vectors).
    pub fn start_bound_with(
        frame: &[u8],
        open: Open,
        scope: Scope,
        replica: &impl Replica,
        session: SessionId,
        secret: EphemeralSecret,
        peers: Peers,
    ) -> Result<(Self, Response), Error> {
        Self::start_open(frame, open, scope, replica, (session, secret), Some(peers))
    }

    fn start_open(
        frame: &[u8],
        open: Open,
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
        let response = this.absorb(open.groups, open.last, replica)?;
        let response = match response {
            Response::Continue => Response::Accepted {
                session,
                clients: this.scope.clients().copied().collect(),
            },
            r => r,
        };
        let response = this.answered(response)?;
        Ok((this, response))
    }

    /// A session over the opening `frame`; `bound` says whether the opening was bound, and
    /// `peers` are given exactly when it was.
    fn new(
        frame: &[u8],
        requester_key: [u8; 32],
        scope: Scope,
        (session, secret): (SessionId, EphemeralSecret),
        (bound, peers): (bool, Option<Peers>),
    ) -> Result<Self, Error> {
        if (frame.first() == Some(&VERSION_3)) != bound {
            return Err(Error::Binding("the frame and its decoded opening disagree"));
        }
        let mut transcript = match (bound, &peers) {
            (true, Some(_)) => Transcript::bound(),
            (false, None) => Transcript::default(),
            (true, None) => {
                return Err(Error::Binding(
                    "a version 3 opening needs both peers' ids (a bound constructor)",
                ));
            }
            (false, Some(_)) => {
                return Err(Error::Binding(
                    "a version 1 or 2 opening cannot start a bound session",
                ));
            }
        };
        transcript.absorb(frame);
        Ok(Self {
            session,
            scope,
            requester_key,
            secret,
            peers,
            transcript,
            cursor: Cursor::default(),
            last_seen: None,
            complement: Vec::new(),
            bytes: 0,
            state: State::Collecting,
        })
    }

    /// The session id.
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// Whether it is a bound (version 3) session.
    pub fn is_bound(&self) -> bool {
        self.peers.is_some()
    }

    /// Hands `response` back, after adding it to a bound transcript when it precedes the key
    /// (`Accepted`, `Continue`, `More`; the key-bearing answer is added by
    /// [`Self::begin_stream`]).
    fn answered(&mut self, response: Response) -> Result<Response, Error> {
        if self.transcript.is_bound()
            && matches!(
                response,
                Response::Accepted { .. } | Response::Continue | Response::More { .. }
            )
        {
            self.transcript.absorb_response(&response.encode()?);
        }
        Ok(response)
    }

    /// Takes a further shape batch whose encoded form is `frame`.
    pub fn shapes(
        &mut self,
        frame: &[u8],
        groups: Vec<ShapeGroup>,
        last: bool,
        replica: &impl Replica,
    ) -> Result<Response, Error> {
        if !matches!(self.state, State::Collecting) {
            return Err(Error::Unexpected("shapes after the last batch"));
        }
        self.transcript.absorb(frame);
        let response = self.absorb(groups, last, replica)?;
        self.answered(response)
    }

    /// Records and value bytes in the complement (final once every shape is in).
    pub fn complement_size(&self) -> (u64, u64) {
        (self.complement.len() as u64, self.bytes)
    }

    /// Whether the final chunk has been produced.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Seals chunk `index`, which must be the next one.
    pub fn chunk(&mut self, index: u64, replica: &impl Replica) -> Result<Response, Error> {
        let State::Streaming {
            ref key,
            index: expected,
            pos,
        } = self.state
        else {
            return Err(Error::Unexpected(
                "chunk requested outside the streaming phase",
            ));
        };
        if index != expected {
            return Err(Error::Unexpected("chunk requested out of order"));
        }
        let mut writer = ChunkWriter::new();
        let mut end = pos;
        while end < self.complement.len() && writer.len() < CHUNK_TARGET {
            let (client_idx, vault, record) = self.complement[end];
            end += 1;
            let Some((client_id, _)) = self.scope.clients.get(client_idx as usize) else {
                continue;
            };
            let (Some(path), Some(rec)) = (
                replica.client_path(client_id),
                replica.record(client_id, (vault, record)),
            ) else {
                continue;
            };
            writer.push(client_id, &path, &rec);
        }
        let last = end == self.complement.len();
        let plaintext = writer.finish();
        let sealed = seal_chunk(key, self.session, index, last, &plaintext)?;
        self.state = if last {
            State::Done
        } else {
            match std::mem::replace(&mut self.state, State::Done) {
                State::Streaming { key, .. } => State::Streaming {
                    key,
                    index: index + 1,
                    pos: end,
                },
                other => other,
            }
        };
        Ok(Response::Chunk { sealed })
    }

    /// Merge-joins a batch of the requester's shapes against our records of the scope, adding
    /// to the complement every record the requester lacks or holds in another version.
    fn absorb(
        &mut self,
        groups: Vec<ShapeGroup>,
        last: bool,
        replica: &impl Replica,
    ) -> Result<Response, Error> {
        for group in groups {
            for shape in &group.shapes {
                let key = (group.client, shape.vault, shape.record);
                if self.last_seen.is_some_and(|seen| seen >= key) {
                    return Err(Error::Malformed("shapes out of order or repeated"));
                }
                self.last_seen = Some(key);
            }
            if group.shapes.is_empty() {
                continue;
            }
            self.finish_clients_before(Some(group.client), replica);
            self.join(group.client, &group.shapes, replica);
        }
        if !last {
            return Ok(Response::Continue);
        }
        self.finish_clients_before(None, replica);
        let ready = Response::Ready {
            session: self.session,
            key: self.secret.public_key(),
            records: self.complement.len() as u64,
            bytes: self.bytes,
        };
        self.begin_stream(&ready)?;
        Ok(ready)
    }

    /// Agrees on the session key and moves to streaming the complement. `answer` is the
    /// key-bearing response (`Ready`, or `Decoded` with an empty `sealed`), which a bound
    /// transcript takes before the key is derived.
    fn begin_stream(&mut self, answer: &Response) -> Result<(), Error> {
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
                    PROTOCOL_NAME_V3,
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
        self.state = State::Streaming {
            key,
            index: 0,
            pos: 0,
        };
        Ok(())
    }

    /// Classifies every remaining record of the scope's clients that come before `until` (all
    /// of them when `None`): the requester sent no shape for those, so it lacks them all.
    fn finish_clients_before(&mut self, until: Option<ClientId>, replica: &impl Replica) {
        while let Some((client, selection)) = self.scope.clients.get(self.cursor.client) {
            if until.is_some_and(|u| *client >= u) {
                return;
            }
            let idx = self.cursor.client as u32;
            for rec in replica.records_after(client, self.cursor.after) {
                let (v, r) = rec.location().ids();
                if selection.contains(v, r) {
                    self.complement.push((idx, v, r));
                    self.bytes += u64::from(rec.size());
                }
            }
            self.cursor.client += 1;
            self.cursor.after = None;
        }
    }

    /// Merge-joins one group of the requester's shapes (sorted, checked) against our records
    /// of that client, up to the group's last shape: one ordered walk per group.
    fn join(&mut self, client: ClientId, shapes: &[Shape], replica: &impl Replica) {
        let Some((ours, selection)) = self.scope.clients.get(self.cursor.client) else {
            return;
        };
        let Some(last) = shapes.last() else {
            return;
        };
        if *ours != client {
            // Not in scope (our next client in scope comes later): nothing of ours to classify.
            return;
        }
        let end = (last.vault, last.record);
        let idx = self.cursor.client as u32;
        let mut i = 0;
        for rec in replica.records_after(ours, self.cursor.after) {
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
                self.complement.push((idx, ids.0, ids.1));
                self.bytes += u64::from(rec.size());
            }
        }
        self.cursor.after = Some(end);
    }
}

/// A random session id and a fresh ephemeral key.
pub(crate) fn fresh_session() -> Result<(SessionId, EphemeralSecret), Error> {
    let mut session = [0u8; 16];
    fill_random(&mut session)?;
    Ok((SessionId(session), EphemeralSecret::generate()?))
}

/// The scope an invited pull may see: the clients we offered in our push.
pub fn invited_readable(offered: &Mode) -> Vec<Vec<u8>> {
    match offered {
        Mode::Full { client } | Mode::Partial { client, .. } => vec![client.clone()],
        Mode::Import { clients } => clients.clone(),
    }
}
