//! A whole pull from the responder's side, poll-style: open it from the first frame once the
//! caller has resolved the scope, then answer each further frame with [`Serve::handle`]. It
//! dispatches every request kind itself (shapes, a summary, symbols, the next chunk), reading
//! the replica it is handed.

use crate::{
    Error, FallbackReason, Mode, Open, OpenSketch, Peers, Replica, Request, Responder, Response,
    Scope, SessionId, crypto::EphemeralSecret,
};

/// The first request of a pull, of either exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Opening {
    /// Every shape, in batches (version 1's exchange; bound in version 3).
    Shapes(Open),
    /// A sketch summary (versions 2 and 3).
    Sketch(OpenSketch),
}

impl Opening {
    /// The opening `request` is, or `request` itself when it opens nothing.
    // The `Err` hands the caller's own request back by move: not an error to keep small.
    #[allow(clippy::result_large_err)]
    pub fn from_request(request: Request) -> Result<Self, Request> {
        match request {
            Request::Open(o) => Ok(Self::Shapes(o)),
            Request::OpenSketch(o) => Ok(Self::Sketch(o)),
            other => Err(other),
        }
    }

    /// The request it came as.
    fn into_request(self) -> Request {
        match self {
            Self::Shapes(o) => Request::Open(o),
            Self::Sketch(o) => Request::OpenSketch(o),
        }
    }

    /// What the pull asks for.
    pub fn mode(&self) -> &Mode {
        match self {
            Self::Shapes(o) => &o.mode,
            Self::Sketch(o) => &o.mode,
        }
    }

    /// The invitation it answers, if any.
    pub fn invite(&self) -> Option<[u8; 16]> {
        match self {
            Self::Shapes(o) => o.invite,
            Self::Sketch(o) => o.invite,
        }
    }

    /// Whether it opens a bound (version 3) session.
    pub fn is_bound(&self) -> bool {
        match self {
            Self::Shapes(o) => o.bound,
            Self::Sketch(o) => o.bound,
        }
    }
}

/// `request`, once checked to be what `frame` decodes to. Encodings are canonical (every frame
/// that decodes re-encodes to its bytes, as the fuzz targets assert), so re-encoding is the
/// check; it costs one encode of a frame already in memory, against the session's own work on
/// it (a merge-join, a sketch decode, a sealed chunk).
fn agree(frame: &[u8], request: Request) -> Result<Request, Error> {
    if request.encode()? != frame {
        return Err(Error::Malformed(
            "the frame and its decoded request disagree",
        ));
    }
    Ok(request)
}

/// One pull, from the responder's side, driven frame by frame.
#[derive(Debug)]
pub struct Serve {
    responder: Responder,
    fell_back: Option<FallbackReason>,
}

impl Serve {
    /// Opens a session for the admitted `opening`, whose encoded form is `frame` (checked:
    /// [`Error::Malformed`] when they disagree), over `scope`
    /// (the caller resolved it against its grants), with a fresh session id and ephemeral key.
    /// `peers` (the requester's id first, as the transport authenticated them) bind a version 3
    /// opening and are required for one; an unbound opening ignores them. Returns the session
    /// and the answer frame.
    pub fn open(
        frame: &[u8],
        opening: Opening,
        scope: Scope,
        replica: &impl Replica,
        peers: Option<Peers>,
    ) -> Result<(Self, Vec<u8>), Error> {
        Self::start(frame, opening, scope, replica, peers, None)
    }

    /// For test vectors and fuzzing only: [`Self::open`] with a given session id and ephemeral
    /// key. A real session always draws fresh ones ([`Self::open`]).
    #[doc(hidden)]
    pub fn open_with(
        frame: &[u8],
        opening: Opening,
        scope: Scope,
        replica: &impl Replica,
        peers: Option<Peers>,
        (session, secret): (SessionId, EphemeralSecret),
    ) -> Result<(Self, Vec<u8>), Error> {
        Self::start(
            frame,
            opening,
            scope,
            replica,
            peers,
            Some((session, secret)),
        )
    }

    fn start(
        frame: &[u8],
        opening: Opening,
        scope: Scope,
        replica: &impl Replica,
        peers: Option<Peers>,
        fixed: Option<(SessionId, EphemeralSecret)>,
    ) -> Result<(Self, Vec<u8>), Error> {
        let request = agree(frame, opening.into_request())?;
        let Ok(opening) = Opening::from_request(request) else {
            return Err(Error::Unexpected("not an opening"));
        };
        let peers = if opening.is_bound() {
            Some(peers.ok_or(Error::Binding("a version 3 opening needs both peers' ids"))?)
        } else {
            None
        };
        let (responder, answer) =
            Responder::start_with(frame, opening, scope, replica, peers, fixed)?;
        let mut this = Self {
            responder,
            fell_back: None,
        };
        let frame = this.answered(answer)?;
        Ok((this, frame))
    }

    /// Answers a further request frame of this session.
    pub fn handle(&mut self, frame: &[u8], replica: &impl Replica) -> Result<Vec<u8>, Error> {
        let request = Request::decode(frame)?;
        self.handle_decoded(frame, request, replica)
    }

    /// [`Self::handle`] for a frame the caller already decoded as `request`. `request` must be
    /// what `frame` decodes to (the transcript takes `frame`, the session acts on `request`):
    /// one that is not fails with [`Error::Malformed`].
    pub fn handle_decoded(
        &mut self,
        frame: &[u8],
        request: Request,
        replica: &impl Replica,
    ) -> Result<Vec<u8>, Error> {
        let request = agree(frame, request)?;
        let session = self.responder.session();
        let r = &mut self.responder;
        let answer = match request {
            Request::Shapes {
                session: s,
                groups,
                last,
            } if s == session => r.shapes(frame, groups, last, replica),
            Request::Sketch {
                session: s,
                summary,
            } if s == session => r.sketch(frame, summary, replica),
            Request::Symbols {
                session: s,
                from,
                symbols,
            } if s == session => r.symbols(frame, from, symbols, replica),
            Request::Next { session: s, index } if s == session => r.chunk(index, replica),
            Request::Shapes { .. }
            | Request::Sketch { .. }
            | Request::Symbols { .. }
            | Request::Next { .. } => Err(Error::Unexpected("a request of another session")),
            Request::Open(_) | Request::OpenSketch(_) | Request::Push { .. } => {
                Err(Error::Unexpected("not a request inside a session"))
            }
        }?;
        self.answered(answer)
    }

    fn answered(&mut self, answer: Response) -> Result<Vec<u8>, Error> {
        if let Response::Fallback { reason } = answer {
            self.fell_back = Some(reason);
        }
        answer.encode()
    }

    /// The session a request inside a session names (`None` for an opening or a push): the
    /// session to hand it to.
    pub fn session_of(request: &Request) -> Option<SessionId> {
        match request {
            Request::Shapes { session, .. }
            | Request::Sketch { session, .. }
            | Request::Symbols { session, .. }
            | Request::Next { session, .. } => Some(*session),
            Request::Open(_) | Request::OpenSketch(_) | Request::Push { .. } => None,
        }
    }

    /// The session id.
    pub fn session(&self) -> SessionId {
        self.responder.session()
    }

    /// Whether it is a bound (version 3) session.
    pub fn is_bound(&self) -> bool {
        self.responder.is_bound()
    }

    /// Whether the session has ended: the final chunk went out, or nothing needed sending, or
    /// the requester was asked to fall back ([`Self::fell_back`]).
    pub fn is_done(&self) -> bool {
        self.responder.is_done()
    }

    /// Why the requester was asked to reconcile by shapes instead, if it was.
    pub fn fell_back(&self) -> Option<FallbackReason> {
        self.fell_back
    }

    /// Records and value bytes in the complement (final once every shape is in).
    pub fn complement_size(&self) -> (u64, u64) {
        self.responder.complement_size()
    }
}
