//! Version 1's exchange on the requester's side (also run bound in version 3): send every
//! shape of the scope in bounded batches until the responder announces the complement.
//! Deleting version 1 means deleting this file and its arm in the requester's state.

use super::{Event, Requester, State};
use crate::{Error, Open, Request, Response, SessionId, ShapeGroup};

/// Where the shapes exchange stands.
pub(super) enum Phase {
    /// The opening went out with its first batch (`last` when it held every shape).
    OpenSent { last: bool },
    /// The responder took a batch; the next goes out with [`Requester::shapes`].
    Collecting { session: SessionId },
    /// A further batch went out.
    ShapesSent { session: SessionId, last: bool },
}

impl Requester {
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
            lineage: self.carries_lineage(),
        })
        .encode()?;
        self.transcript.absorb(&frame);
        self.state = State::Shapes(Phase::OpenSent { last });
        Ok(frame)
    }

    /// A further batch of shapes, of clients this pull asked for ([`ShapeCursor`] sends only
    /// those `Accepted` named).
    ///
    /// [`ShapeCursor`]: crate::ShapeCursor
    pub fn shapes(&mut self, groups: Vec<ShapeGroup>, last: bool) -> Result<Vec<u8>, Error> {
        let State::Shapes(Phase::Collecting { session }) = self.state else {
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
        self.state = State::Shapes(Phase::ShapesSent { session, last });
        Ok(frame)
    }

    /// Takes a response in the shapes exchange's `phase`, whose encoded form is `frame`.
    pub(super) fn handle_shapes(
        &mut self,
        phase: Phase,
        response: Response,
        frame: &[u8],
    ) -> Result<Event, Error> {
        match (phase, response) {
            (Phase::OpenSent { last: false }, Response::Accepted { session, clients }) => {
                let clients = self.accept(clients)?;
                self.transcript.absorb_response(frame);
                self.state = State::Shapes(Phase::Collecting { session });
                Ok(Event::Accepted { clients })
            }
            (
                Phase::ShapesSent {
                    session,
                    last: false,
                },
                Response::Continue,
            ) => {
                self.transcript.absorb_response(frame);
                self.state = State::Shapes(Phase::Collecting { session });
                Ok(Event::Continue)
            }
            (
                Phase::OpenSent { last: true },
                Response::Ready {
                    session,
                    key,
                    records,
                    bytes,
                },
            ) => {
                self.transcript.absorb_response(frame);
                self.ready(session, key, records, bytes)?;
                Ok(Event::Ready { records, bytes })
            }
            (
                Phase::ShapesSent {
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
                self.ready(session, key, records, bytes)?;
                Ok(Event::Ready { records, bytes })
            }
            _ => Err(Error::Unexpected(
                "response does not fit the session's state",
            )),
        }
    }
}
