//! Redoubt's sync protocol, sans-IO: bytes in, bytes out, no sockets.
//!
//! A pull runs between a [`Pull`] (the requester) and a [`Serve`] (the responder), both driven
//! poll-style: each takes frames and reads the replica it is handed through the [`Replica`]
//! trait (which `redoubt_vault::Instance` implements), and neither writes to it nor calls back
//! into its caller. The requester sends whatever [`Pull::poll_transmit`] yields, feeds each
//! response to [`Pull::handle`], and merges the verified records [`Pull::poll_event`] yields;
//! the responder opens a [`Serve`] from the first frame and answers each further frame with
//! [`Serve::handle`].
//!
//! In version 3 (`/redoubt/sync/3`, [`PullConfig::peers`]) a session is *bound*: its key
//! depends on both peers' ids as the transport authenticated them ([`Peers`], requester
//! first), the protocol name and every frame both sides sent before it, so a peer in the
//! middle cannot relay or splice sessions between others, and no frame before the key can
//! change unnoticed. Otherwise version 3 runs version 2's messages: the requester opens with a
//! [`Summary`] of its scope's [`ScopeSketch`] (set size, coded symbol 0, probe fingerprints)
//! and sends more coded symbols only when the responder asks; the responder peels the
//! difference, streams what the requester lacks and names what it lacks itself, and the
//! requester checks that the set digests add up. When the responder asks, the requester sends
//! every shape in bounded batches instead and the responder merge-joins them (version 1's
//! exchange), within the local [`ShapeFallback`] policy. Versions 1 and 2 (unbound) stay for
//! older peers.
//!
//! Either way the responder checks the requester's rights (its caller resolves a [`Scope`]),
//! makes its own ephemeral key, derives the session key from the shared secret and the
//! transcript, and streams the complement as ChaCha20-Poly1305 chunks under counter nonces
//! with a final-chunk flag. The requester takes only records of clients it named, each checked
//! against the shape claimed for it, and no more than the responder announced.
//! `docs/protocol.md` specifies every byte. The example below drives a bound, sketched pull by
//! hand; the `loopback` feature's driver (for tests) does the same.
//!
//! ```
//! use redoubt_protocol::{Mode, Opening, Peers, Pull, PullConfig, PullEvent, Request, Scope, Serve};
//! use redoubt_vault::{Instance, Location, NodeId, SecretValue};
//!
//! let mut desktop = Instance::new(NodeId::from_bytes([1; 16]));
//! desktop.write(b"alice", &Location::new("wallet", "seed")?, SecretValue::new(b"s3cret".to_vec()))?;
//! let mut phone = Instance::new(NodeId::from_bytes([2; 16]));
//! // Who talks, as the transport authenticated them (libp2p: `PeerId::to_bytes()`).
//! let peers = Peers::new(b"phone".to_vec(), b"desktop".to_vec())?;
//!
//! // The phone opens a bound, sketched pull of client "alice".
//! let mode = Mode::Full { client: b"alice".to_vec() };
//! let mut pull = Pull::new(PullConfig::new(mode, Some(peers.clone())), &phone)?;
//! let open = pull.poll_transmit().expect("an opening");
//!
//! // The desktop decodes it, checks its grants, and answers.
//! let Ok(opening) = Opening::from_request(Request::decode(&open)?) else { unreachable!() };
//! let scope = Scope::resolve(opening.mode(), &desktop, &[b"alice".to_vec()]).expect("granted");
//! let (mut serve, mut answer) = Serve::open(&open, opening, scope, &desktop, Some(peers))?;
//!
//! // Frames flow until the pull is done; the phone merges what it verified.
//! loop {
//!     pull.handle(&answer, &phone)?;
//!     while let Some(event) = pull.poll_event() {
//!         if let PullEvent::Records { records } = event {
//!             for r in records {
//!                 phone.merge_record(&r.client, r.record, Default::default())?;
//!             }
//!         }
//!     }
//!     match pull.poll_transmit() {
//!         Some(request) => answer = serve.handle(&request, &desktop)?,
//!         None => break,
//!     }
//! }
//! assert!(pull.is_done());
//! assert_eq!(phone.state_digest(), desktop.state_digest());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod chunk;
mod codec;
pub mod crypto;
mod error;
mod limits;
mod message;
pub mod pairing;
mod pull;
mod replica;
mod requester;
mod responder;
mod serve;
mod shape_cursor;
mod sketch;

#[cfg(feature = "loopback")]
#[doc(hidden)]
pub mod loopback;

pub use chunk::Received;
pub use crypto::Peers;
pub use error::Error;
pub use limits::{
    ANNOUNCED_BYTES_SLACK, CHUNK_TARGET, MAX_CHUNK_ENTRIES, MAX_CHUNK_PLAINTEXT,
    MAX_CHUNK_PLAINTEXT_V4, MAX_DETAIL_LEN, MAX_ENTRY_LEN, MAX_ENTRY_LEN_V4, MAX_FRAME_LEN,
    MAX_PEER_ID_LEN, MAX_SELECTION_ITEMS, MAX_SHAPES_PER_FRAME, SHAPE_LEN,
};
pub use message::{
    FallbackReason, Mode, Open, OpenSketch, PROTOCOL_NAME, PROTOCOL_NAME_V2, PROTOCOL_NAME_V3,
    PROTOCOL_NAME_V4, RefusalCode, Request, Response, SYMBOL_LEN, SessionId, ShapeGroup, Summary,
    VERSION, VERSION_2, VERSION_3, VERSION_4, check_frame_len,
};
pub use pull::{Pull, PullConfig, PullEvent};
pub use replica::Replica;
pub use requester::{Event, Requester, push_request, read_push_answer};
pub use responder::{Refusal, Responder, Scope, invited_readable};
pub use serve::{Opening, Serve};
pub use shape_cursor::ShapeCursor;
pub use sketch::{
    BATCH_FLOOR, ScopeSketch, ShapeFallback, batch_size, estimate_at, estimate_difference,
    fallback_allowed, plan,
};

/// Entry points for the fuzz targets in `fuzz/`; not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    /// Decodes a request frame; one that decodes must re-encode to exactly the same bytes
    /// (one encoding per message, so no two frames mean the same), else this panics.
    pub fn decode_request(data: &[u8]) {
        if let Ok(request) = crate::Request::decode(data) {
            assert_eq!(
                request.encode().ok().as_deref(),
                Some(data),
                "{request:?} re-encodes differently"
            );
        }
    }

    /// Decodes a response frame; one that decodes must re-encode to exactly the same bytes,
    /// else this panics.
    pub fn decode_response(data: &[u8]) {
        if let Ok(response) = crate::Response::decode(data) {
            assert_eq!(
                response.encode().ok().as_deref(),
                Some(data),
                "{response:?} re-encodes differently"
            );
        }
    }

    /// Decodes a chunk plaintext as versions 1 to 3 and as version 4 (entries with lineage)
    /// read it, and verifies every entry (the part after decryption).
    pub fn decode_chunk(data: &[u8]) {
        for lineage in [false, true] {
            if let Ok(entries) = crate::chunk::decode(data, lineage) {
                for e in entries {
                    let _ = crate::chunk::verify(e);
                }
            }
        }
    }

    /// Whether `data` decodes as a version 4 chunk plaintext (a seed check).
    pub fn decodes_as_chunk_v4(data: &[u8]) -> bool {
        crate::chunk::decode(data, true).is_ok()
    }

    /// The small fixed instance the responder targets serve: clients alice and bob, four
    /// records each.
    fn fixture() -> redoubt_vault::Instance {
        use redoubt_vault::{Instance, Location, NodeId, SecretValue};
        let mut instance = Instance::new(NodeId::from_bytes([1; 16]));
        for (i, client) in [&b"alice"[..], b"bob"].iter().enumerate() {
            for r in 0..4u8 {
                if let Ok(loc) = Location::new("v", [b'r', b'0' + r]) {
                    let value = SecretValue::new(vec![r; usize::from(r) * 3]);
                    let _ = instance.write_at(client, &loc, value, i as u64 + 1);
                }
            }
        }
        instance
    }

    /// The peer ids the responder fuzz target binds version 3 sessions to.
    pub fn fixed_peers() -> Option<crate::Peers> {
        crate::Peers::new(b"fuzz requester".to_vec(), b"fuzz responder".to_vec()).ok()
    }

    /// Serves an arbitrary opening frame (any version; a version 3 one bound to
    /// [`fixed_peers`]) from a small fixed instance where every client is readable: decoding,
    /// scope, the complement (merge-join or sketch decode) and the next chunk.
    pub fn respond(data: &[u8]) {
        use crate::{Opening, Request, Scope, Serve, SessionId, crypto::EphemeralSecret};

        let instance = fixture();
        let clients = [b"alice".to_vec(), b"bob".to_vec()];
        let Ok(Ok(opening)) = Request::decode(data).map(Opening::from_request) else {
            return;
        };
        let Ok(scope) = Scope::resolve(opening.mode(), &instance, &clients) else {
            return;
        };
        // The sketch exchange's chunk 0 rides in its Decoded answer: ask for chunk 1.
        let index = u64::from(matches!(opening, Opening::Sketch(_)));
        let fixed = (SessionId([0; 16]), EphemeralSecret::from_bytes([7; 32]));
        if let Ok((mut serve, _)) =
            Serve::open_with(data, opening, scope, &instance, fixed_peers(), fixed)
        {
            let next = Request::Next {
                session: serve.session(),
                index,
            };
            if let Ok(frame) = next.encode() {
                let _ = serve.handle(&frame, &instance);
            }
        }
    }

    /// The sketch decoder on arbitrary input: the bytes as symbols (14 each: key, checksum,
    /// count as i16, little-endian) peeled directly, then, when they parse as a `Symbols`
    /// frame, fed to a responder that is waiting for symbols over a small fixed instance.
    pub fn decode_sketch(data: &[u8]) {
        use redoubt_vault::sketch::{MAX_SYMBOLS, Symbol, decode};

        use crate::{Opening, Request, Scope, Serve, SessionId, crypto};

        let mut symbols: Vec<Symbol> = data
            .chunks_exact(14)
            .take(MAX_SYMBOLS)
            .map(|c| {
                let mut key = [0u8; 8];
                key.copy_from_slice(&c[..8]);
                let mut check = [0u8; 4];
                check.copy_from_slice(&c[8..12]);
                Symbol {
                    key: u64::from_le_bytes(key),
                    check: u32::from_le_bytes(check),
                    count: i32::from(i16::from_le_bytes([c[12], c[13]])),
                }
            })
            .collect();
        let _ = decode(&mut symbols);

        let Ok(Request::Symbols { from, symbols, .. }) = Request::decode(data) else {
            return;
        };
        let instance = fixture();
        // A requester holding alice's first two records opens; the responder asks for more.
        let mut requester_side =
            redoubt_vault::Instance::new(redoubt_vault::NodeId::from_bytes([2; 16]));
        let alice = redoubt_vault::ClientId::from_path(b"alice");
        for rec in instance.records(&alice).take(2) {
            let _ = requester_side.restore(b"alice", rec.clone());
        }
        let mode = crate::Mode::Full {
            client: b"alice".to_vec(),
        };
        let mut config = crate::PullConfig::new(mode, None);
        config.secret = Some(crypto::EphemeralSecret::from_bytes([6; 32]));
        let Ok(mut pull) = crate::Pull::new(config, &requester_side) else {
            return;
        };
        let Some(open_frame) = pull.poll_transmit() else {
            return;
        };
        let Ok(Ok(opening)) = Request::decode(&open_frame).map(Opening::from_request) else {
            return;
        };
        let Ok(scope) = Scope::resolve(opening.mode(), &instance, &[b"alice".to_vec()]) else {
            return;
        };
        let fixed = (
            SessionId([0; 16]),
            crypto::EphemeralSecret::from_bytes([7; 32]),
        );
        if let Ok((mut serve, _)) =
            Serve::open_with(&open_frame, opening, scope, &instance, None, fixed)
        {
            // The bytes' symbols as the requester's, in this session.
            let session = serve.session();
            if let Ok(frame) = (Request::Symbols {
                session,
                from,
                symbols,
            })
            .encode()
            {
                let _ = serve.handle(&frame, &instance);
            }
        }
    }

    /// The fixed remotes key of the pairing fuzz target and of `tests/vectors/pair-v3-frames.txt`.
    pub const PAIR_REMOTES_KEY: [u8; 32] = [0x5a; 32];

    /// The pairing decoders: both frame kinds of versions 2 and 3 (a decoded frame must
    /// re-encode to the same bytes), version 3's sealed remotes and their plaintext, and the
    /// code and QR payload parsers on the bytes read as text; a host answering the bytes as a
    /// joiner's `Hello`, then checking a `Confirm` against it.
    pub fn decode_pairing(data: &[u8]) {
        use crate::pairing::{Host, PairCode, PairPayload, PairRequest, PairResponse, remotes};
        if let Ok((version, request)) = PairRequest::decode_any(data) {
            assert_eq!(request.encode_as(version).ok().as_deref(), Some(data));
        }
        if let Ok((version, response)) = PairResponse::decode_any(data) {
            assert_eq!(response.encode_as(version).ok().as_deref(), Some(data));
        }
        // Version 3's sealed remotes: opened under a fixed key for the client list `alice`
        // (a seed sealed so reaches the plaintext decoder), and the plaintext decoder on the
        // bytes themselves; a plaintext that decodes re-encodes to the same bytes.
        let key = redoubt_crypto::Key::from_bytes(PAIR_REMOTES_KEY);
        let _ = remotes::open_remotes_with(&key, &[b"alice".to_vec()], data);
        if let Ok(shared) = remotes::decode_plaintext(data) {
            let again = remotes::encode_plaintext(&shared).ok();
            assert_eq!(again.as_deref().map(Vec::as_slice), Some(data));
        }
        if let Ok(text) = std::str::from_utf8(data) {
            let _ = text.parse::<PairCode>();
            let _ = text.parse::<PairPayload>();
        }
        if let Ok(PairRequest::Hello {
            spake, commitment, ..
        }) = PairRequest::decode(data)
            && let Ok(code) = "42-1234-5678".parse::<PairCode>()
            && let Ok((host, _)) = Host::answer(&code, b"host", b"joiner", &spake, &commitment)
        {
            let _ = host.confirm(&commitment, &commitment);
        }
    }

    /// A chunk plaintext holding one live record and one tombstone (a seed for the chunk
    /// decoder's corpus), as versions 1 to 3 carry them (no lineage).
    pub fn sample_chunk() -> Vec<u8> {
        sample(false)
    }

    /// The same records in a version 4 chunk, the tombstone naming its parent in its history.
    pub fn sample_chunk_v4() -> Vec<u8> {
        sample(true)
    }

    fn sample(lineage: bool) -> Vec<u8> {
        use redoubt_vault::{ClientId, Instance, Location, NodeId, SecretValue};

        let mut instance = Instance::new(NodeId::from_bytes([1; 16]));
        let mut writer = crate::chunk::ChunkWriter::with_lineage(lineage);
        let client = ClientId::from_path(b"alice");
        for (r, delete) in [("seed", false), ("pin", true)] {
            let Ok(loc) = Location::new("wallet", r) else {
                continue;
            };
            let _ = instance.write_at(b"alice", &loc, SecretValue::new(b"value".to_vec()), 5);
            if delete {
                let _ = instance.delete_at(b"alice", &loc, 6);
            }
            if let Some(rec) = instance.record(&client, loc.ids()) {
                let rec = if lineage {
                    rec.clone()
                } else {
                    rec.without_lineage()
                };
                let _ = writer.push(&client, b"alice", &rec);
            }
        }
        writer.finish().to_vec()
    }
}
