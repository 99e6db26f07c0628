//! Hostile peers. As a responder (through a response hook on the real swarm) it sends tampered
//! chunks, drops the stream, replays a chunk of an earlier session, or sends an oversized frame;
//! as a requester (a raw libp2p client sending frames of its own making) it sends malformed
//! frames, an all-zero ephemeral key, requests for a client it may not read, and floods of
//! openings. Every session must end in an explicit error, the honest node's state must not
//! change, it must go on serving, and its memory must stay bounded.

use std::time::Duration;

use anyhow::{Result, bail, ensure};
use futures::StreamExt;
use redoubt_node::{
    Error,
    libp2p::{self, Multiaddr, PeerId, Swarm, request_response, swarm::SwarmEvent},
};
use redoubt_protocol::{Mode, OpenSketch, RefusalCode, Request, Response};
use redoubt_tests::{Fault, Scripted, TestNode};

use crate::{Tally, rng::Rng};

fn alice() -> Mode {
    Mode::Full {
        client: b"alice".to_vec(),
    }
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// A bare client swarm that sends frames of its own making.
struct Raw {
    swarm: Swarm<redoubt_node::Behaviour>,
}

impl Raw {
    fn new() -> Result<Self> {
        let swarm = libp2p::SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                libp2p::tcp::Config::default(),
                libp2p::noise::Config::new,
                libp2p::yamux::Config::default,
            )?
            .with_behaviour(|_| redoubt_node::behaviour(Duration::from_secs(5)))?
            .build();
        Ok(Self { swarm })
    }

    fn peer(&self) -> PeerId {
        *self.swarm.local_peer_id()
    }

    /// Sends `frames` at once and collects one answer (or failure) per frame.
    async fn send(
        &mut self,
        to: &Multiaddr,
        peer: PeerId,
        frames: Vec<Vec<u8>>,
    ) -> Vec<Result<Vec<u8>, String>> {
        let mut ids = Vec::new();
        for f in frames {
            ids.push(self.swarm.behaviour_mut().send_request_with_addresses(
                &peer,
                f,
                vec![to.clone()],
            ));
        }
        let mut out: Vec<Option<Result<Vec<u8>, String>>> = ids.iter().map(|_| None).collect();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while out.iter().any(Option::is_none) {
            let Ok(event) = tokio::time::timeout_at(deadline, self.swarm.select_next_some()).await
            else {
                break;
            };
            let (id, result) = match event {
                SwarmEvent::Behaviour(request_response::Event::Message {
                    message:
                        request_response::Message::Response {
                            request_id,
                            response,
                        },
                    ..
                }) => (request_id, Ok(response)),
                SwarmEvent::Behaviour(request_response::Event::OutboundFailure {
                    request_id,
                    error,
                    ..
                }) => (request_id, Err(error.to_string())),
                _ => continue,
            };
            if let Some(at) = ids.iter().position(|i| *i == id) {
                out[at] = Some(result);
            }
        }
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| Err("no answer".into())))
            .collect()
    }
}

/// A hostile responder that speaks `/redoubt/sync/1` with the real state machine, then opens
/// each sealed chunk with the session key it knows, flips a byte of the first record's claimed
/// hash, and seals it again: a shape that lies about the record it describes, under a valid
/// seal. Returns its address.
async fn lying_responder(instance: redoubt_vault::Instance) -> Result<Multiaddr> {
    use redoubt_protocol::{
        Opening, Responder, Scope, SessionId,
        crypto::{EphemeralSecret, SessionKey, SessionKeys, Transcript, open_chunk, seal_chunk},
    };
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default(),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )?
        .with_behaviour(|_| redoubt_node::behaviour_v1_only(Duration::from_secs(5)))?
        .build();
    swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse()?)?;
    let addr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
            break address.with(libp2p::multiaddr::Protocol::P2p(*swarm.local_peer_id()));
        }
    };
    const SECRET: [u8; 32] = [0x66; 32];
    tokio::spawn(async move {
        let mut session: Option<(Responder, SessionKey, SessionId)> = None;
        loop {
            let SwarmEvent::Behaviour(request_response::Event::Message {
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            }) = swarm.select_next_some().await
            else {
                continue;
            };
            let answer = match Request::decode(&request) {
                Ok(Request::Open(open)) => {
                    let key = open.key;
                    let Ok(scope) = Scope::resolve(&open.mode, &instance, &[b"alice".to_vec()])
                    else {
                        continue;
                    };
                    let id = SessionId([0x77; 16]);
                    let fixed = (id, EphemeralSecret::from_bytes(SECRET));
                    let opening = Opening::Shapes(open);
                    let Ok((responder, ready)) = Responder::start_with(
                        &request,
                        opening,
                        scope,
                        &instance,
                        None,
                        Some(fixed),
                    ) else {
                        continue;
                    };
                    let mut transcript = Transcript::default();
                    transcript.absorb(&request);
                    let ours = EphemeralSecret::from_bytes(SECRET);
                    let keys = SessionKeys {
                        requester: key,
                        responder: ours.public_key(),
                    };
                    let Ok(k) = SessionKey::agree(&ours, &key, keys, id, &transcript.hash()) else {
                        continue;
                    };
                    session = Some((responder, k, id));
                    ready.encode().unwrap_or_default()
                }
                Ok(Request::Next { index, .. }) => {
                    let Some((responder, key, id)) = session.as_mut() else {
                        continue;
                    };
                    let Ok(Response::Chunk { sealed }) = responder.chunk(index, &instance) else {
                        continue;
                    };
                    let Ok((mut plain, last)) = open_chunk(key, *id, index, &sealed) else {
                        continue;
                    };
                    // count (4), then the first entry's claimed client, vault and record ids
                    // (96) and size (4): the claimed hash starts here.
                    if plain.len() > 4 + 96 + 4 {
                        plain[4 + 96 + 4] ^= 1;
                    }
                    let Ok(resealed) = seal_chunk(key, *id, index, last, &plain) else {
                        continue;
                    };
                    Response::Chunk { sealed: resealed }
                        .encode()
                        .unwrap_or_default()
                }
                _ => continue,
            };
            let _ = swarm.behaviour_mut().send_response(channel, answer);
        }
    });
    Ok(addr)
}

/// The answer must be an explicit refusal with one of `codes`.
fn refused(answer: &Result<Vec<u8>, String>, codes: &[RefusalCode]) -> Result<()> {
    match answer {
        Ok(frame) => match Response::decode(frame) {
            Ok(Response::Refused { code, .. }) if codes.contains(&code) => Ok(()),
            Ok(other) => bail!("answered {other:?}, not a refusal with one of {codes:?}"),
            Err(e) => bail!("an undecodable answer: {e}"),
        },
        Err(e) => bail!("no refusal, but: {e}"),
    }
}

fn open(key: [u8; 32], mode: Mode) -> Vec<u8> {
    Request::OpenSketch(OpenSketch {
        mode,
        invite: None,
        key,
        summary: None,
        bound: true,
        lineage: false,
    })
    .encode()
    .unwrap_or_default()
}

/// An opening as from an empty requester, with its (empty) summary: the responder decodes the
/// difference at once and must agree on a key with `key`.
fn open_with_summary(key: [u8; 32]) -> Vec<u8> {
    let empty = redoubt_vault::sketch::Symbol::default();
    Request::OpenSketch(OpenSketch {
        mode: alice(),
        invite: None,
        key,
        summary: Some(redoubt_protocol::Summary {
            len: 0,
            first: empty,
            probes: [empty.fingerprint(); 15],
        }),
        bound: true,
        lineage: false,
    })
    .encode()
    .unwrap_or_default()
}

pub(crate) fn run(quick: bool) -> Result<Tally> {
    let rounds = if quick { 6 } else { 60 };
    tokio::runtime::Runtime::new()?.block_on(async move {
        let mut rng = Rng::new("hostile-peer");
        let mut tally = Tally::new();
        // The honest node as requester, against a hostile responder.
        let hook = Scripted::new(Fault::None);
        let evil = TestNode::start_with_hook(1, Some(hook.clone())).await?;
        // It also runs unbound sessions: the liar below speaks version 1 only.
        let honest = TestNode::start_allowing_unbound(2, None).await?;
        evil.allow(&honest, "alice", true, false);
        honest.allow(&evil, "alice", false, true);
        evil.put("alice", "v", "bait", &[7; 2000]);
        honest.put("alice", "mine", "1", b"keep me");
        // A first honest session, for the replay fault to keep.
        hook.set(Fault::ReplayChunk);
        honest.handle.pull(&evil.addr(), alice()).await?;
        honest.delete("alice", "v", "bait");
        let rss_start = rss_mib();
        for round in 0..rounds {
            for fault in [
                Fault::TamperChunk,
                Fault::DropAtChunk(0),
                Fault::ReplayChunk,
                Fault::Oversized,
            ] {
                evil.put("alice", "v", &format!("bait{round}"), &[round as u8; 3000]);
                let before = honest.digest();
                hook.set(fault);
                let result = async {
                    let err = match honest.handle.pull(&evil.addr(), alice()).await {
                        Ok(o) => bail!("{fault:?}: the pull succeeded: {o:?}"),
                        Err(e) => e,
                    };
                    let explicit = match fault {
                        Fault::TamperChunk | Fault::ReplayChunk => {
                            matches!(err, Error::Tampered(_))
                        }
                        Fault::DropAtChunk(_) => {
                            matches!(err, Error::Truncated { .. } | Error::Transport(_))
                        }
                        _ => err.to_string().contains("frame too large"),
                    };
                    ensure!(explicit, "{fault:?}: unexpected error {err}");
                    ensure!(
                        honest.digest() == before,
                        "{fault:?}: the honest state changed"
                    );
                    Ok(())
                }
                .await;
                tally.record(result);
            }
        }
        // A responder whose shapes lie about their records, under valid seals.
        let mut liar_store =
            redoubt_vault::Instance::new(redoubt_vault::NodeId::from_bytes([9; 16]));
        for i in 0..3 {
            liar_store.write(
                b"alice",
                &redoubt_vault::Location::new("lie", format!("r{i}"))?,
                redoubt_vault::SecretValue::new(vec![i; 100]),
            )?;
        }
        let liar = lying_responder(liar_store).await?;
        if let Some(libp2p::multiaddr::Protocol::P2p(peer)) = liar.iter().last() {
            honest.allow_peer(peer, "alice");
        }
        for _ in 0..rounds {
            let before = honest.digest();
            let result = async {
                let err = match honest.handle.pull(&liar, alice()).await {
                    Ok(o) => bail!("a lying shape was accepted: {o:?}"),
                    Err(e) => e,
                };
                ensure!(
                    err.to_string().contains("hash differs"),
                    "unexpected error {err}"
                );
                ensure!(honest.digest() == before, "the honest state changed");
                Ok(())
            }
            .await;
            tally.record(result);
        }
        // The honest node as responder, against a hostile requester.
        let server = TestNode::start(3).await?;
        server.put("alice", "v", "secret", b"not for you");
        server.put("bob", "v", "other", b"nor this");
        let grant = redoubt_vault::Rights {
            read: true,
            write: false,
        };
        let (addr, peer) = (server.addr(), server.peer());
        let before = server.digest();
        for _ in 0..rounds {
            // A new attacker each round (a flood leaves its sessions open until it leaves).
            let mut raw = Raw::new()?;
            server.allow_rights(raw.peer(), "alice", grant);
            // Malformed: random bytes, a bad version, a truncated Open.
            let mut garbage = vec![0u8; 1 + rng.below(200) as usize];
            for b in &mut garbage {
                *b = rng.below(256) as u8;
            }
            let mut truncated = open([9; 32], alice());
            truncated.truncate(truncated.len() / 2);
            let mut bad_version = open([9; 32], alice());
            bad_version[0] = 9;
            for frame in [garbage, truncated, bad_version] {
                let answers = raw.send(&addr, peer, vec![frame]).await;
                tally.record(refused(&answers[0], &[RefusalCode::BadRequest]));
            }
            // An all-zero ephemeral key (a low-order point): refused when the key is agreed.
            let answers = raw
                .send(&addr, peer, vec![open_with_summary([0; 32])])
                .await;
            tally.record(refused(&answers[0], &[RefusalCode::BadRequest]));
            // A client it may not read.
            let answers = raw
                .send(
                    &addr,
                    peer,
                    vec![open(
                        [9; 32],
                        Mode::Full {
                            client: b"bob".to_vec(),
                        },
                    )],
                )
                .await;
            tally.record(refused(&answers[0], &[RefusalCode::PermissionDenied]));
            // A flood of openings: beyond four sessions at once, "busy".
            let flood: Vec<Vec<u8>> = (0..12)
                .map(|_| open([9; 32], Mode::Import { clients: vec![] }))
                .collect();
            let answers = raw.send(&addr, peer, flood).await;
            let busy = answers
                .iter()
                .filter(|a| refused(a, &[RefusalCode::Busy]).is_ok())
                .count();
            tally.record(if busy >= 1 {
                Ok(())
            } else {
                Err(anyhow::anyhow!("a flood of 12 openings met no refusal"))
            });
        }
        let result = async {
            ensure!(
                server.digest() == before,
                "the honest server's state changed"
            );
            // It goes on serving an honest peer.
            let friend = TestNode::start(4).await?;
            server.allow(&friend, "alice", true, false);
            friend.allow(&server, "alice", false, true);
            let out = friend.handle.pull(&server.addr(), alice()).await?;
            ensure!(
                out.records == 1,
                "the honest pull after the attacks got {} records",
                out.records
            );
            let grown = rss_mib() - rss_start;
            eprintln!("(hostile-peer: resident memory grew {grown:.1} MiB over the attacks)");
            ensure!(grown < 64.0, "memory grew {grown:.1} MiB");
            Ok(())
        }
        .await;
        tally.record(result);
        Ok(tally)
    })
}
