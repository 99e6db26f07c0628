//! The session's cryptography, in short functions: ephemeral keys, the key schedules (version
//! 1, which versions 1 and 2 use, and version 3's, bound to both peers), the transcript hashes,
//! and sealing and opening chunks.
//!
//! Labels are versioned; `docs/protocol.md` gives the exact byte layout of every input. The
//! primitives (blake3 key derivation, randomness, constant-time checks) are [`redoubt_crypto`]'s;
//! this module holds the protocol's constructions on top of them. The chunk stream's
//! ChaCha20-Poly1305 is ring's (the same cipher, sealed and opened in place): it carries every
//! byte of a complement, which Noise then seals again, so its speed and its copies count.

use redoubt_crypto::{DeriveHasher, Key, derive, is_all_zero, is_versioned};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use zeroize::Zeroizing;

use crate::{Error, SessionId, limits::MAX_PEER_ID_LEN};

/// `blake3::derive_key` context of the transcript hash (versions 1 and 2).
pub const TRANSCRIPT_CONTEXT: &str = "redoubt sync v1 transcript";
/// `blake3::derive_key` context of the session key (versions 1 and 2).
pub const SESSION_KEY_CONTEXT: &str = "redoubt sync v1 complement key";
/// `blake3::derive_key` context of a bound session's transcript hash (version 3).
pub const TRANSCRIPT_CONTEXT_V3: &str = "redoubt sync v3 transcript";
/// `blake3::derive_key` context of a bound session's key (version 3).
pub const SESSION_KEY_CONTEXT_V3: &str = "redoubt sync v3 complement key";

const _: () = assert!(
    is_versioned(TRANSCRIPT_CONTEXT)
        && is_versioned(SESSION_KEY_CONTEXT)
        && is_versioned(TRANSCRIPT_CONTEXT_V3)
        && is_versioned(SESSION_KEY_CONTEXT_V3)
);

/// Length of a Poly1305 tag.
const TAG_LEN: usize = 16;

/// The direction byte before a request frame in a bound transcript.
const TO_RESPONDER: u8 = 0x00;
/// The direction byte before a response frame in a bound transcript.
const TO_REQUESTER: u8 = 0x01;

/// An ephemeral x25519 secret key, used for one session. Wiped on drop, never printed.
pub struct EphemeralSecret(x25519_dalek::StaticSecret);

impl EphemeralSecret {
    /// A fresh key from the system's random number generator.
    pub fn generate() -> Result<Self, Error> {
        let key = Key::random().map_err(|_| Error::Random)?;
        Ok(Self::from_bytes(*key.expose()))
    }

    /// A key from fixed bytes. Only test vectors should do this: a reused ephemeral key loses
    /// the session separation the protocol promises.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(x25519_dalek::StaticSecret::from(bytes))
    }

    /// The public half, as sent on the wire.
    pub fn public_key(&self) -> [u8; 32] {
        x25519_dalek::PublicKey::from(&self.0).to_bytes()
    }

    /// x25519 with the peer's public key, refusing an all-zero shared secret (checked in
    /// constant time): the peer sent a low-order point.
    fn agree(&self, theirs: &[u8; 32]) -> Result<x25519_dalek::SharedSecret, Error> {
        let shared = self
            .0
            .diffie_hellman(&x25519_dalek::PublicKey::from(*theirs));
        if is_all_zero(shared.as_bytes()) {
            return Err(Error::WeakKey);
        }
        Ok(shared)
    }
}

impl std::fmt::Debug for EphemeralSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EphemeralSecret(..)")
    }
}

/// The session's ChaCha20-Poly1305 key. Wiped on drop, never printed.
pub struct SessionKey(Key);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

/// Who talks in a bound (version 3) session, in protocol order: the requester's and the
/// responder's peer ids as the transport authenticated them (for libp2p, `PeerId::to_bytes()`
/// of the Noise-authenticated peer). Both sides pass the same pair: the requester names itself
/// first and the peer it dialed second, the responder the peer that opened and then itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peers {
    requester: Vec<u8>,
    responder: Vec<u8>,
}

impl Peers {
    /// The pair, each id 1 to [`MAX_PEER_ID_LEN`] bytes.
    pub fn new(
        requester: impl Into<Vec<u8>>,
        responder: impl Into<Vec<u8>>,
    ) -> Result<Self, Error> {
        let (requester, responder) = (requester.into(), responder.into());
        for id in [&requester, &responder] {
            if id.is_empty() || id.len() > MAX_PEER_ID_LEN {
                return Err(Error::BadPeerId { len: id.len() });
            }
        }
        Ok(Self {
            requester,
            responder,
        })
    }

    /// The requester's peer id.
    pub fn requester(&self) -> &[u8] {
        &self.requester
    }

    /// The responder's peer id.
    pub fn responder(&self) -> &[u8] {
        &self.responder
    }
}

/// The two public keys of a session, in protocol order.
#[derive(Clone, Copy, Debug)]
pub struct SessionKeys {
    /// The requester's ephemeral public key.
    pub requester: [u8; 32],
    /// The responder's ephemeral public key.
    pub responder: [u8; 32],
}

impl SessionKey {
    /// Agrees on the session key: x25519 between `ours` and `theirs`, then
    /// `derive_key(SESSION_KEY_CONTEXT, shared ‖ requester key ‖ responder key ‖ session ‖
    /// transcript)`. Rejects an all-zero shared secret (the peer sent a low-order point).
    pub fn agree(
        ours: &EphemeralSecret,
        theirs: &[u8; 32],
        keys: SessionKeys,
        session: SessionId,
        transcript: &[u8; 32],
    ) -> Result<Self, Error> {
        let shared = ours.agree(theirs)?;
        let mut input = Zeroizing::new([0u8; 32 * 4 + 16]);
        input[..32].copy_from_slice(shared.as_bytes());
        input[32..64].copy_from_slice(&keys.requester);
        input[64..96].copy_from_slice(&keys.responder);
        input[96..112].copy_from_slice(&session.0);
        input[112..].copy_from_slice(transcript);
        Ok(Self(derive(SESSION_KEY_CONTEXT, input.as_ref())))
    }

    /// Agrees on a bound (version 3) session's key: x25519 between `ours` and `theirs`, then
    /// `derive_key(SESSION_KEY_CONTEXT_V3, shared ‖ requester key ‖ responder key ‖ session ‖
    /// u16 len ‖ requester peer id ‖ u16 len ‖ responder peer id ‖ u16 len ‖ protocol ‖
    /// transcript)`, lengths little-endian. `transcript` is a [`Transcript::bound`] hash;
    /// `protocol` is the protocol name the session runs under ([`crate::PROTOCOL_NAME_V3`]).
    /// Rejects an all-zero shared secret.
    pub fn agree_bound(
        ours: &EphemeralSecret,
        theirs: &[u8; 32],
        keys: SessionKeys,
        session: SessionId,
        peers: &Peers,
        protocol: &str,
        transcript: &[u8; 32],
    ) -> Result<Self, Error> {
        let shared = ours.agree(theirs)?;
        let mut input = Zeroizing::new(Vec::with_capacity(
            32 * 4 + 16 + 6 + peers.requester.len() + peers.responder.len() + protocol.len(),
        ));
        input.extend_from_slice(shared.as_bytes());
        input.extend_from_slice(&keys.requester);
        input.extend_from_slice(&keys.responder);
        input.extend_from_slice(&session.0);
        for field in [&peers.requester[..], &peers.responder, protocol.as_bytes()] {
            let len = u16::try_from(field.len())
                .map_err(|_| Error::Malformed("key schedule input over 65 535 bytes"))?;
            input.extend_from_slice(&len.to_le_bytes());
            input.extend_from_slice(field);
        }
        input.extend_from_slice(transcript);
        Ok(Self(derive(SESSION_KEY_CONTEXT_V3, input.as_ref())))
    }
}

/// The hash of a session's frames up to its key. Unbound (versions 1 and 2, the default): every
/// request frame, in order, each as `u64 LE length ‖ frame`. Bound ([`Self::bound`], version
/// 3): every request and response frame, in order, each as `direction ‖ u64 LE length ‖
/// frame`, direction `0x00` for a request and `0x01` for a response.
#[derive(Clone)]
pub struct Transcript {
    hasher: DeriveHasher,
    bound: bool,
}

impl Default for Transcript {
    fn default() -> Self {
        Self {
            hasher: DeriveHasher::new(TRANSCRIPT_CONTEXT),
            bound: false,
        }
    }
}

impl Transcript {
    /// A bound session's transcript (context [`TRANSCRIPT_CONTEXT_V3`]).
    pub fn bound() -> Self {
        Self {
            hasher: DeriveHasher::new(TRANSCRIPT_CONTEXT_V3),
            bound: true,
        }
    }

    /// Whether this is a bound session's transcript.
    pub fn is_bound(&self) -> bool {
        self.bound
    }

    /// Adds one request frame.
    pub fn absorb(&mut self, frame: &[u8]) {
        if self.bound {
            self.hasher.update(&[TO_RESPONDER]);
        }
        self.hasher.update(&(frame.len() as u64).to_le_bytes());
        self.hasher.update(frame);
    }

    /// Adds one response frame (the key-bearing one without its sealed chunk). An unbound
    /// transcript hashes requests only, and ignores it.
    pub fn absorb_response(&mut self, frame: &[u8]) {
        if !self.bound {
            return;
        }
        self.hasher.update(&[TO_REQUESTER]);
        self.hasher.update(&(frame.len() as u64).to_le_bytes());
        self.hasher.update(frame);
    }

    /// The hash so far.
    pub fn hash(&self) -> [u8; 32] {
        self.hasher.finalize()
    }
}

/// The nonce of chunk `index`: the index as u64 big-endian, three zero bytes, the final flag.
fn nonce(index: u64, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&index.to_be_bytes());
    n[11] = u8::from(last);
    n
}

/// The session layer's ChaCha20-Poly1305 (RFC 8439) under `key`: ring's, whose assembly seals and
/// opens in place, where the portable one in [`redoubt_crypto`] seals into a new buffer that
/// [`seal_chunk`] then copied. The cipher, and so every byte on the wire, is the same.
fn chunk_cipher(key: &SessionKey) -> Result<LessSafeKey, Error> {
    UnboundKey::new(&CHACHA20_POLY1305, key.0.expose())
        .map(LessSafeKey::new)
        .map_err(|_| Error::Malformed("session key of the wrong length"))
}

/// Seals chunk `index` of a stream: `flag ‖ ChaCha20-Poly1305(key, nonce(index, flag),
/// aad = session, plaintext)`, where the flag byte says whether this chunk is the last. The
/// plaintext is copied once, into the frame, and sealed there.
pub fn seal_chunk(
    key: &SessionKey,
    session: SessionId,
    index: u64,
    last: bool,
    plaintext: &[u8],
) -> Result<Vec<u8>, Error> {
    let cipher = chunk_cipher(key)?;
    let mut out = Vec::with_capacity(1 + plaintext.len() + TAG_LEN);
    out.push(u8::from(last));
    out.extend_from_slice(plaintext);
    let tag = cipher
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce(index, last)),
            Aad::from(&session.0),
            &mut out[1..],
        )
        .map_err(|_| Error::Malformed("chunk too large to seal"))?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// Opens chunk `index`, returning its plaintext (wiped on drop) and whether it is the last.
/// Any change to the bytes, the index, the flag, the session or the key fails. The sealed bytes
/// are copied once, into the buffer returned, and opened there.
pub fn open_chunk(
    key: &SessionKey,
    session: SessionId,
    index: u64,
    sealed: &[u8],
) -> Result<(Zeroizing<Vec<u8>>, bool), Error> {
    let (flag, ct) = sealed.split_first().ok_or(Error::Tampered { index })?;
    let last = match flag {
        0 => false,
        1 => true,
        _ => return Err(Error::Tampered { index }),
    };
    if ct.len() < TAG_LEN {
        return Err(Error::Tampered { index });
    }
    let cipher = chunk_cipher(key)?;
    let mut buf = Zeroizing::new(ct.to_vec());
    let len = cipher
        .open_in_place(
            Nonce::assume_unique_for_key(nonce(index, last)),
            Aad::from(&session.0),
            &mut buf,
        )
        .map_err(|_| Error::Tampered { index })?
        .len();
    // Shortening keeps the capacity: the tag's bytes stay in the buffer and are wiped with it.
    buf.truncate(len);
    Ok((buf, last))
}

/// Fills `buf` from the system's random number generator ([`redoubt_crypto::fill_random`]).
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<(), Error> {
    redoubt_crypto::fill_random(buf).map_err(|_| Error::Random)
}

#[cfg(test)]
mod tests;
