//! The sealed stream on the requester's side, shared by both exchanges: agree on the session
//! key once the responder's key-bearing answer (`Ready` or `Decoded`) is in, then ask for the
//! chunks one by one, opening each, verifying every record in it against what was asked for
//! and the counts against what was announced.

use super::{Requester, State, accounting::Announced};
use crate::{
    Error, PROTOCOL_NAME_V3, PROTOCOL_NAME_V4, Received, Request, Response, SessionId, chunk,
    crypto::{SessionKey, SessionKeys, open_chunk},
};

/// Where the stream has reached.
pub(super) struct Stream {
    session: SessionId,
    key: SessionKey,
    /// The next chunk's index.
    index: u64,
    /// Whether that chunk was asked for.
    asked: bool,
    announced: Announced,
}

impl Requester {
    /// Agrees on the key (the transcript now holds the key-bearing answer) and starts
    /// streaming the `records` and value `bytes` the responder announced.
    pub(super) fn ready(
        &mut self,
        session: SessionId,
        key: [u8; 32],
        records: u64,
        bytes: u64,
    ) -> Result<(), Error> {
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
                if self.lineage {
                    PROTOCOL_NAME_V4
                } else {
                    PROTOCOL_NAME_V3
                },
                &transcript,
            )?,
            None => SessionKey::agree(&self.secret, &key, keys, session, &transcript)?,
        };
        self.state = State::Streaming(Stream {
            session,
            key,
            index: 0,
            asked: false,
            announced: Announced::new(records, bytes),
        });
        Ok(())
    }

    /// The request for the next chunk.
    pub fn next_chunk(&mut self) -> Result<Vec<u8>, Error> {
        let State::Streaming(stream) = &mut self.state else {
            return Err(Error::Unexpected(
                "chunk request outside the streaming phase",
            ));
        };
        stream.asked = true;
        Request::Next {
            session: stream.session,
            index: stream.index,
        }
        .encode()
    }

    /// Marks chunk 0 as asked for: it rides in the `Decoded` answer.
    pub(super) fn expect_first_chunk(&mut self) {
        if let State::Streaming(stream) = &mut self.state {
            stream.asked = true;
        }
    }

    /// Chunks received and verified so far (chunk 0 of a `Decoded` answer included), kept
    /// once the session is done or failed, as [`crate::Pull::chunks_received`] counts them.
    pub fn chunks_received(&self) -> u64 {
        self.chunks
    }

    /// Takes a response while streaming: only the chunk asked for fits.
    pub(super) fn handle_streaming(
        &mut self,
        stream: Stream,
        response: Response,
    ) -> Result<(Vec<Received>, bool), Error> {
        let asked = stream.asked;
        self.state = State::Streaming(stream);
        match response {
            Response::Chunk { sealed } if asked => self.open_streamed(&sealed),
            _ => Err(Error::Unexpected(
                "response does not fit the session's state",
            )),
        }
    }

    /// Opens the chunk the stream expects, verifies every record in it and the counts against
    /// what was announced, and moves on (running the sketch's final check after the last
    /// chunk).
    pub(super) fn open_streamed(&mut self, sealed: &[u8]) -> Result<(Vec<Received>, bool), Error> {
        let State::Streaming(stream) = &mut self.state else {
            return Err(Error::Unexpected("a chunk nobody asked for"));
        };
        if !stream.asked {
            return Err(Error::Unexpected("a chunk nobody asked for"));
        }
        let index = stream.index;
        let (plaintext, last) = open_chunk(&stream.key, stream.session, index, sealed)?;
        let mut records = Vec::new();
        for entry in chunk::decode(&plaintext, self.lineage)? {
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
        stream.announced.take(index, &records, last)?;
        stream.index += 1;
        stream.asked = false;
        self.chunks += 1;
        if let Some(sketch) = &mut self.sketch {
            sketch.receive(&records, last)?;
        }
        if last {
            self.state = State::Done;
        }
        Ok((records, last))
    }
}
