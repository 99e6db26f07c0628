//! A whole pull from the requester's side, poll-style (as quinn-proto's `Connection`): feed it
//! each response frame with [`Pull::handle`], send what [`Pull::poll_transmit`] yields, act on
//! what [`Pull::poll_event`] yields. It reads the replica it is handed to make its frames
//! (shapes, summaries, symbols, the sum over the keys the responder lacks) and falls back from
//! the sketch exchange to the shapes exchange itself, as its [`ShapeFallback`] policy allows;
//! merging the verified records it yields stays the caller's.
//!
//! While the complement streams, a response needs no replica: [`Pull::needs_replica`] says so,
//! and [`Pull::handle_streamed`] opens and verifies a chunk without one, so a caller that
//! guards its store with a lock need not hold it for the decryption.

use std::collections::VecDeque;

use redoubt_vault::{ClientId, Instance};

use crate::{
    Error, Event, FallbackReason, MAX_SHAPES_PER_FRAME, Mode, Peers, Received, Replica, Requester,
    ScopeSketch, ShapeCursor, ShapeFallback, crypto::EphemeralSecret,
};

/// How a [`Pull`] runs.
pub struct PullConfig {
    /// What to pull.
    pub mode: Mode,
    /// The invitation it answers (a push asked for it), if any.
    pub invite: Option<[u8; 16]>,
    /// Both peers' ids as the transport authenticated them (ours as the requester): a bound
    /// (version 3) session. `None` runs an unbound one (version 1 or 2).
    pub peers: Option<Peers>,
    /// Open with the sketch exchange (versions 2 and 3) rather than every shape (version 1's
    /// exchange, also run bound inside version 3).
    pub sketch: bool,
    /// Run the bound session as version 4, whose chunks carry each record's lineage (needs
    /// `peers`). Without it a bound session is version 3, which refuses to send a record with
    /// lineage ([`crate::Error::LineageUnsupported`]).
    pub lineage: bool,
    /// When a sketched pull may fall back to sending every shape on the responder's word.
    pub fallback: ShapeFallback,
    /// For test vectors and tests only: a fixed ephemeral key; `None` (the default) draws a
    /// fresh one, as every real pull must. A fallback always draws a fresh one.
    #[doc(hidden)]
    pub secret: Option<EphemeralSecret>,
    /// For test vectors and tests only: most shapes per frame in the shapes exchange, kept
    /// across a fallback; [`MAX_SHAPES_PER_FRAME`] (the default) unless a test wants more,
    /// smaller batches.
    #[doc(hidden)]
    pub shape_batch: usize,
}

impl PullConfig {
    /// A sketched pull of `mode` under the default fallback policy: bound to `peers` when
    /// given (version 3), unbound (version 2) otherwise.
    pub fn new(mode: Mode, peers: Option<Peers>) -> Self {
        Self {
            mode,
            invite: None,
            peers,
            sketch: true,
            lineage: false,
            fallback: ShapeFallback::default(),
            secret: None,
            shape_batch: MAX_SHAPES_PER_FRAME,
        }
    }
}

/// What a pull yields to its caller.
#[derive(Debug)]
pub enum PullEvent {
    /// The responder announced the complement: this many records and value bytes follow.
    Announced {
        /// Records in the complement.
        records: u64,
        /// Value bytes in the complement.
        bytes: u64,
    },
    /// Sketched pulls: keys of our versions the responder said it lacks (for metering).
    Lacking {
        /// The keys.
        keys: Vec<u64>,
    },
    /// A chunk opened and every record in it was verified: merge them. One per chunk
    /// received (the final chunk of an empty complement by shapes yields an empty batch),
    /// except chunk 0 riding in a version 2 `Decoded` answer, which yields none when it
    /// carries no record.
    Records {
        /// The verified records.
        records: Vec<Received>,
    },
    /// The sketch exchange gave way to the shapes exchange; the next frame opens it.
    FellBack {
        /// The responder's reason, or `None` when our final check of the sketch failed.
        reason: Option<FallbackReason>,
        /// Why, in words.
        why: String,
    },
    /// The pull is complete: every record was received and verified.
    Done,
}

/// One pull, from the requester's side, driven poll-style.
pub struct Pull {
    requester: Requester,
    /// The shapes exchange: where the shapes sent so far have reached.
    cursor: ShapeCursor,
    /// Sketched imports: the clients `Accepted` named, which the summary covers.
    accepted: Option<Vec<ClientId>>,
    policy: ShapeFallback,
    /// Most shapes per frame, for this exchange and a fallback's.
    shape_batch: usize,
    transmit: Option<Vec<u8>>,
    events: VecDeque<PullEvent>,
    /// Chunks received in the exchanges a fallback replaced.
    chunks: u64,
    /// A fallback our final check asked for while a chunk was handled without the replica:
    /// [`Pull::resume`] runs it.
    deferred: Option<(Option<FallbackReason>, String)>,
    /// Why the last fallback was asked for, in words.
    fallback_asked: Option<String>,
    done: bool,
}

impl Pull {
    /// Starts the pull `config` describes over `replica`: the opening frame is the first
    /// [`Self::poll_transmit`].
    pub fn new(config: PullConfig, replica: &impl Replica) -> Result<Self, Error> {
        let PullConfig {
            mode,
            invite,
            peers,
            sketch,
            lineage,
            fallback,
            secret,
            shape_batch,
        } = config;
        let mut requester = Requester::new(mode, invite, peers, secret)?;
        if lineage {
            requester = requester.with_lineage()?;
        }
        let mut cursor = ShapeCursor::new(&requester, replica)?.with_batch(shape_batch);
        let open = if sketch {
            let summary = if requester.waits_for_scope() {
                None
            } else {
                let scope = ScopeSketch::new(replica, &requester.sketch_scope(None))?;
                Some((scope.summary(), scope.digest()))
            };
            requester.open_sketch(summary)?
        } else {
            let (groups, last) = if requester.waits_for_scope() {
                (Vec::new(), false)
            } else {
                cursor.next_batch(replica)?
            };
            requester.open(groups, last)?
        };
        Ok(Self {
            requester,
            cursor,
            accepted: None,
            policy: fallback,
            shape_batch,
            transmit: Some(open),
            events: VecDeque::new(),
            chunks: 0,
            deferred: None,
            fallback_asked: None,
            done: false,
        })
    }

    /// The next request frame to send, once per response taken (the opening first).
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.take()
    }

    /// The next event, in order.
    pub fn poll_event(&mut self) -> Option<PullEvent> {
        self.events.pop_front()
    }

    /// Takes the response to the last request sent, reading `replica` (the one the pull
    /// started over) for what to send next. Any error ends the pull, a failed read of the
    /// replica included ([`Error::Replica`]).
    pub fn handle(&mut self, frame: &[u8], replica: &impl Replica) -> Result<(), Error> {
        self.guarded(|this| this.step(frame, Some(replica)))
    }

    /// Whether the next response (or a [`Self::resume`]) needs the replica: false only while
    /// the complement streams, when [`Self::handle_streamed`] takes the response without it.
    pub fn needs_replica(&self) -> bool {
        !self.done && (self.deferred.is_some() || !self.requester.is_streaming())
    }

    /// [`Self::handle`] for a response that needs no replica ([`Self::needs_replica`] is
    /// false): a chunk is opened and every record in it verified without one. Should our
    /// final check of a sketched pull fail on the last chunk, the fallback it asks for waits
    /// for [`Self::resume`] (and [`Self::needs_replica`] turns true).
    pub fn handle_streamed(&mut self, frame: &[u8]) -> Result<(), Error> {
        if self.needs_replica() {
            return Err(Error::Unexpected(
                "a response that needs the replica, handled without it",
            ));
        }
        self.guarded(|this| this.step::<Instance>(frame, None))
    }

    /// Runs what [`Self::handle_streamed`] left for the replica (a fallback to the shapes
    /// exchange, whose opening reads it); nothing when it left nothing.
    pub fn resume(&mut self, replica: &impl Replica) -> Result<(), Error> {
        let Some((reason, why)) = self.deferred.take() else {
            return Ok(());
        };
        self.guarded(|this| this.fall_back(reason, why, replica))
    }

    /// Runs `f` unless the pull ended; any error ends it.
    fn guarded(&mut self, f: impl FnOnce(&mut Self) -> Result<(), Error>) -> Result<(), Error> {
        if self.done {
            return Err(Error::Unexpected("a response after the pull ended"));
        }
        let result = f(self);
        if result.is_err() {
            self.done = true;
            self.transmit = None;
            self.deferred = None;
        }
        result
    }

    fn step<R: Replica>(&mut self, frame: &[u8], replica: Option<&R>) -> Result<(), Error> {
        let event = match self.requester.handle(frame) {
            Err(e @ Error::SketchMismatch(_)) => {
                let why = e.to_string();
                return match replica {
                    Some(replica) => self.fall_back(None, why, replica),
                    None => {
                        self.deferred = Some((None, why));
                        Ok(())
                    }
                };
            }
            other => other?,
        };
        // Only a chunk while streaming is handled without the replica.
        let need = || {
            replica.ok_or(Error::Unexpected(
                "a response that needs the replica, handled without it",
            ))
        };
        let next = match event {
            Event::Accepted { clients } if self.requester.is_sketched() => {
                // Summarize exactly the clients the responder will serve.
                self.accepted = Some(clients);
                let scope = self.sketch(need()?)?;
                self.requester.sketch(scope.summary(), scope.digest())?
            }
            Event::Accepted { clients } => {
                // Shapes only of the clients the responder will serve (an import opens with
                // none, so nothing was sent yet).
                self.cursor.keep_only(&clients);
                let (groups, last) = self.cursor.next_batch(need()?)?;
                self.requester.shapes(groups, last)?
            }
            Event::Continue => {
                let (groups, last) = self.cursor.next_batch(need()?)?;
                self.requester.shapes(groups, last)?
            }
            Event::More { from, to, probes } => {
                let symbols = self.sketch(need()?)?.answer_more(from, to, &probes);
                self.requester.symbols(symbols)?
            }
            Event::Ready { records, bytes } => {
                self.events
                    .push_back(PullEvent::Announced { records, bytes });
                self.requester.next_chunk()?
            }
            Event::Reconciled {
                lacking,
                total,
                bytes,
                records,
                last,
            } => {
                let sum = self.sketch(need()?)?.hash_sum(need()?, &lacking)?;
                self.events.push_back(PullEvent::Lacking { keys: lacking });
                if let Err(e) = self.requester.account_lacking(sum) {
                    return self.fall_back(None, e.to_string(), need()?);
                }
                self.events.push_back(PullEvent::Announced {
                    records: total,
                    bytes,
                });
                if !records.is_empty() {
                    self.events.push_back(PullEvent::Records { records });
                }
                if last {
                    return self.finish();
                }
                self.requester.next_chunk()?
            }
            Event::Records { records, last } => {
                self.events.push_back(PullEvent::Records { records });
                if last {
                    return self.finish();
                }
                self.requester.next_chunk()?
            }
            Event::Fallback { reason } => {
                return self.fall_back(Some(reason), reason.to_string(), need()?);
            }
        };
        self.transmit = Some(next);
        Ok(())
    }

    fn finish(&mut self) -> Result<(), Error> {
        self.done = true;
        self.events.push_back(PullEvent::Done);
        Ok(())
    }

    /// The sketch of our side of the scope, as `replica` holds it now.
    fn sketch<'a>(&self, replica: &'a impl Replica) -> Result<ScopeSketch<'a>, Error> {
        let accepted = self.accepted.as_deref().unwrap_or_default();
        ScopeSketch::new(replica, &self.requester.sketch_scope(Some(accepted)))
    }

    /// Reopens by shapes, keeping the session's invitation and binding, if the policy lets this
    /// scope go out as shapes (`reason` is the responder's; `None` after our final check
    /// failed; `why` says it in words). A sketched import's retry covers only the clients `Accepted`
    /// named, so its shapes cover no more than the policy allowed; an empty one ends the pull.
    fn fall_back(
        &mut self,
        reason: Option<FallbackReason>,
        why: String,
        replica: &impl Replica,
    ) -> Result<(), Error> {
        self.fallback_asked = Some(why.clone());
        self.requester.may_fall_back(&self.policy)?;
        let mode = match (self.requester.mode().clone(), &self.accepted) {
            (Mode::Import { clients }, Some(accepted)) => {
                let clients: Vec<Vec<u8>> = clients
                    .into_iter()
                    .filter(|c| accepted.contains(&ClientId::from_path(c)))
                    .collect();
                if clients.is_empty() {
                    // Nothing to describe by shapes (and an empty import means every client).
                    return self.finish();
                }
                Mode::Import { clients }
            }
            (mode, _) => mode,
        };
        let retry = Self::new(
            PullConfig {
                mode,
                invite: self.requester.invite(),
                peers: self.requester.peers().cloned(),
                sketch: false,
                lineage: self.requester.carries_lineage(),
                fallback: self.policy,
                secret: None,
                shape_batch: self.shape_batch,
            },
            replica,
        )?;
        self.events.push_back(PullEvent::FellBack { reason, why });
        self.chunks += self.requester.chunks_received();
        self.requester = retry.requester;
        self.cursor = retry.cursor;
        self.accepted = None;
        self.transmit = retry.transmit;
        Ok(())
    }

    /// What this pull asks for (after a fallback, what the shapes exchange asks for).
    pub fn mode(&self) -> &Mode {
        self.requester.mode()
    }

    /// The invitation it answers, if any.
    pub fn invite(&self) -> Option<[u8; 16]> {
        self.requester.invite()
    }

    /// Whether it is a bound (version 3) session.
    pub fn is_bound(&self) -> bool {
        self.requester.is_bound()
    }

    /// The peers a bound (version 3) pull is bound to, ours first; `None` when unbound.
    pub fn peers(&self) -> Option<&Peers> {
        self.requester.peers()
    }

    /// Whether it runs the sketch exchange now (false after a fallback).
    pub fn is_sketched(&self) -> bool {
        self.requester.is_sketched()
    }

    /// Chunks received and verified so far, over every exchange of the pull (chunk 0 of a
    /// `Decoded` answer included, empty or not): the sum of each exchange's
    /// [`Requester::chunks_received`], kept once the pull is done.
    pub fn chunks_received(&self) -> u64 {
        self.chunks + self.requester.chunks_received()
    }

    /// Why the last fallback to the shapes exchange was asked for (the responder's reason, or
    /// our final check that failed), in words; kept when the policy refused it
    /// ([`Error::FallbackRefused`]), so the caller can report both.
    pub fn fallback_asked(&self) -> Option<&str> {
        self.fallback_asked.as_deref()
    }

    /// Whether the pull has ended: complete (after [`PullEvent::Done`]) or failed.
    pub fn is_done(&self) -> bool {
        self.done
    }
}
