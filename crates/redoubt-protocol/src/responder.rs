//! The responder's side of a pull, as a state machine: it takes request frames, computes the
//! complement against the replica it is given, and makes response frames. No I/O.
//!
//! Each exchange has its file: version 1's merge-join of shapes in [`shapes`], version 2's
//! sketch decode in [`sketch`]; both end in the one sealed stream of [`stream`]. Either
//! exchange runs bound (version 3) when opened with peers. [`crate::Serve`] drives it.

mod scope;
mod shapes;
mod sketch;
mod stream;

use redoubt_vault::{RecordId, VaultId};

pub use self::scope::{Refusal, Scope, invited_readable};
use crate::{
    Error, Opening, Replica, Response, SessionId, VERSION_3, VERSION_4,
    crypto::{EphemeralSecret, Peers, Transcript, fill_random},
};

/// What the requester lacks: per entry the index of its client in the scope and its location,
/// in (client, location) order; and the value bytes of those records.
#[derive(Default)]
struct Complement {
    entries: Vec<(u32, VaultId, RecordId)>,
    bytes: u64,
}

impl Complement {
    fn push(&mut self, entry: (u32, VaultId, RecordId), size: u32) {
        self.entries.push(entry);
        self.bytes += u64::from(size);
    }
}

enum State {
    /// Version 1's exchange: taking shape batches.
    Shapes(shapes::Join),
    /// Version 2's exchange: waiting for a summary or for symbols.
    Sketch(sketch::Phase),
    /// Either exchange: sealing the complement.
    Streaming(stream::Stream),
    Done,
}

/// One pull, from the responder's side.
///
/// Opened bound (with [`Peers`]) for a version 3 opening: the key is then bound to both peers'
/// ids, the protocol name and every frame of both sides.
pub struct Responder {
    session: SessionId,
    scope: Scope,
    requester_key: [u8; 32],
    secret: EphemeralSecret,
    peers: Option<Peers>,
    /// Whether the session carries lineage (version 4).
    lineage: bool,
    transcript: Transcript,
    complement: Complement,
    state: State,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("session", &self.session)
            .field("complement", &self.complement.entries.len())
            .finish_non_exhaustive()
    }
}

impl Responder {
    /// Starts a session for the admitted `opening`, whose encoded form is `frame`, over
    /// `scope`, with a fresh session id and ephemeral key. `peers` (the requester first, as the
    /// transport authenticated them) must be given exactly when the opening is bound
    /// (version 3), else this fails with [`Error::Binding`]. Returns the session and its first
    /// response.
    pub fn start(
        frame: &[u8],
        opening: Opening,
        scope: Scope,
        replica: &impl Replica,
        peers: Option<Peers>,
    ) -> Result<(Self, Response), Error> {
        Self::start_with(frame, opening, scope, replica, peers, None)
    }

    /// For test vectors and tests only: [`Self::start`] with the session id and ephemeral key
    /// `fixed` when given (fresh ones when `None`). A real session always draws fresh ones.
    #[doc(hidden)]
    pub fn start_with(
        frame: &[u8],
        opening: Opening,
        scope: Scope,
        replica: &impl Replica,
        peers: Option<Peers>,
        fixed: Option<(SessionId, EphemeralSecret)>,
    ) -> Result<(Self, Response), Error> {
        let (session, secret) = match fixed {
            Some(fixed) => fixed,
            None => fresh_session()?,
        };
        let (key, bound, lineage, state) = match &opening {
            Opening::Shapes(o) => (
                o.key,
                o.bound,
                o.lineage,
                State::Shapes(shapes::Join::default()),
            ),
            Opening::Sketch(o) => (
                o.key,
                o.bound,
                o.lineage,
                State::Sketch(sketch::Phase::Opening),
            ),
        };
        let byte = match (bound, lineage) {
            (true, true) => Some(VERSION_4),
            (true, false) => Some(VERSION_3),
            _ => None,
        };
        let framed = frame.first().filter(|b| **b >= VERSION_3).copied();
        if framed != byte || (lineage && !bound) {
            return Err(Error::Binding("the frame and its decoded opening disagree"));
        }
        let mut transcript = match (bound, &peers) {
            (true, Some(_)) => Transcript::bound(),
            (false, None) => Transcript::default(),
            (true, None) => {
                return Err(Error::Binding("a version 3 opening needs both peers' ids"));
            }
            (false, Some(_)) => {
                return Err(Error::Binding(
                    "a version 1 or 2 opening cannot start a bound session",
                ));
            }
        };
        transcript.absorb(frame);
        let mut this = Self {
            session,
            scope,
            requester_key: key,
            secret,
            peers,
            lineage,
            transcript,
            complement: Complement::default(),
            state,
        };
        let response = match opening {
            Opening::Shapes(o) => match this.absorb(o.groups, o.last, replica)? {
                Response::Continue => Response::Accepted {
                    session,
                    clients: this.scope.clients().copied().collect(),
                },
                r => r,
            },
            Opening::Sketch(o) => this.open_sketch(o.summary, replica)?,
        };
        let response = this.answered(response)?;
        Ok((this, response))
    }

    /// The session id.
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// Whether it is a bound (version 3) session.
    pub fn is_bound(&self) -> bool {
        self.peers.is_some()
    }

    /// Records and value bytes in the complement (final once every shape is in).
    pub fn complement_size(&self) -> (u64, u64) {
        (self.complement.entries.len() as u64, self.complement.bytes)
    }

    /// Whether the final chunk has been produced (or nothing needed sending).
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Hands `response` back, after adding it to a bound transcript when it precedes the key
    /// (`Accepted`, `Continue`, `More`; the key-bearing answer is added when the stream
    /// begins).
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
}

/// A random session id and a fresh ephemeral key.
fn fresh_session() -> Result<(SessionId, EphemeralSecret), Error> {
    let mut session = [0u8; 16];
    fill_random(&mut session)?;
    Ok((SessionId(session), EphemeralSecret::generate()?))
}
