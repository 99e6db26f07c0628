//! The session's cryptography, in short functions: ephemeral keys, the key schedules (version
//! 1, which versions 1 and 2 use, and version 3's, bound to both peers), the transcript hashes,
//! and sealing and opening chunks.
//!
//! Labels are versioned; `docs/protocol.md` gives the exact byte layout of every input.

use chacha20poly1305::{
    ChaCha20Poly1305, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::{Error, SessionId, limits::MAX_PEER_ID_LEN};

/// `blake3::derive_key` context of the transcript hash (versions 1 and 2).
pub const TRANSCRIPT_CONTEXT: &str = "redoubt sync v1 transcript";
/// `blake3::derive_key` context of the session key (versions 1 and 2).
pub const SESSION_KEY_CONTEXT: &str = "redoubt sync v1 complement key";
/// `blake3::derive_key` context of a bound session's transcript hash (version 3).
pub const TRANSCRIPT_CONTEXT_V3: &str = "redoubt sync v3 transcript";
/// `blake3::derive_key` context of a bound session's key (version 3).
pub const SESSION_KEY_CONTEXT_V3: &str = "redoubt sync v3 complement key";

/// The direction byte before a request frame in a bound transcript.
const TO_RESPONDER: u8 = 0x00;
/// The direction byte before a response frame in a bound transcript.
const TO_REQUESTER: u8 = 0x01;

/// An ephemeral x25519 secret key, used for one session. Wiped on drop, never printed.
pub struct EphemeralSecret(x25519_dalek::StaticSecret);

impl EphemeralSecret {
    /// A fresh key from the system's random number generator.
    pub fn generate() -> Result<Self, Error> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut()).map_err(|_| Error::Random)?;
        Ok(Self::from_bytes(*bytes))
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
}

impl std::fmt::Debug for EphemeralSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EphemeralSecret(..)")
    }
}

/// The session's ChaCha20-Poly1305 key. Wiped on drop, never printed.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SessionKey([u8; 32]);

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
        let shared = ours
            .0
            .diffie_hellman(&x25519_dalek::PublicKey::from(*theirs));
        if is_all_zero(shared.as_bytes()) {
            return Err(Error::WeakKey);
        }
        let mut input = Zeroizing::new([0u8; 32 * 4 + 16]);
        input[..32].copy_from_slice(shared.as_bytes());
        input[32..64].copy_from_slice(&keys.requester);
        input[64..96].copy_from_slice(&keys.responder);
        input[96..112].copy_from_slice(&session.0);
        input[112..].copy_from_slice(transcript);
        Ok(Self(blake3::derive_key(
            SESSION_KEY_CONTEXT,
            input.as_ref(),
        )))
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
        let shared = ours
            .0
            .diffie_hellman(&x25519_dalek::PublicKey::from(*theirs));
        if is_all_zero(shared.as_bytes()) {
            return Err(Error::WeakKey);
        }
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
        Ok(Self(blake3::derive_key(
            SESSION_KEY_CONTEXT_V3,
            input.as_ref(),
        )))
    }
}

/// Whether all 32 bytes are zero, looking at every byte (no early exit).
fn is_all_zero(bytes: &[u8; 32]) -> bool {
    bytes.iter().fold(0u8, |acc, b| acc | b) == 0
}

/// The hash of a session's frames up to its key. Unbound (versions 1 and 2, the default): every
/// request frame, in order, each as `u64 LE length ‖ frame`. Bound ([`Self::bound`], version
/// 3): every request and response frame, in order, each as `direction ‖ u64 LE length ‖
/// frame`, direction `0x00` for a request and `0x01` for a response.
#[derive(Clone)]
pub struct Transcript {
    hasher: blake3::Hasher,
    bound: bool,
}

impl Default for Transcript {
    fn default() -> Self {
        Self {
            hasher: blake3::Hasher::new_derive_key(TRANSCRIPT_CONTEXT),
            bound: false,
        }
    }
}

impl Transcript {
    /// A bound session's transcript (context [`TRANSCRIPT_CONTEXT_V3`]).
    pub fn bound() -> Self {
        Self {
            hasher: blake3::Hasher::new_derive_key(TRANSCRIPT_CONTEXT_V3),
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
        *self.hasher.finalize().as_bytes()
    }
}

fn nonce(index: u64, last: bool) -> Nonce {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&index.to_be_bytes());
    n[11] = u8::from(last);
    n.into()
}

/// Seals chunk `index` of a stream: `flag ‖ ChaCha20-Poly1305(key, nonce(index, flag),
/// aad = session, plaintext)`, where the flag byte says whether this chunk is the last.
pub fn seal_chunk(
    key: &SessionKey,
    session: SessionId,
    index: u64,
    last: bool,
    plaintext: &[u8],
) -> Result<Vec<u8>, Error> {
    let cipher = ChaCha20Poly1305::new(&key.0.into());
    let ct = cipher
        .encrypt(
            &nonce(index, last),
            Payload {
                msg: plaintext,
                aad: &session.0,
            },
        )
        .map_err(|_| Error::Malformed("chunk too large to seal"))?;
    let mut out = Vec::with_capacity(1 + ct.len());
    out.push(u8::from(last));
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Opens chunk `index`, returning its plaintext (wiped on drop) and whether it is the last.
/// Any change to the bytes, the index, the flag, the session or the key fails.
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
    let cipher = ChaCha20Poly1305::new(&key.0.into());
    let pt = cipher
        .decrypt(
            &nonce(index, last),
            Payload {
                msg: ct,
                aad: &session.0,
            },
        )
        .map_err(|_| Error::Tampered { index })?;
    Ok((Zeroizing::new(pt), last))
}

/// Fills `buf` from the system's random number generator.
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<(), Error> {
    getrandom::fill(buf).map_err(|_| Error::Random)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(a: &EphemeralSecret, b: &EphemeralSecret) -> SessionKeys {
        SessionKeys {
            requester: a.public_key(),
            responder: b.public_key(),
        }
    }

    #[test]
    fn both_sides_agree_and_the_transcript_matters() {
        let a = EphemeralSecret::from_bytes([1; 32]);
        let b = EphemeralSecret::from_bytes([2; 32]);
        let s = SessionId([9; 16]);
        let ka = SessionKey::agree(&a, &b.public_key(), keys(&a, &b), s, &[0; 32]).unwrap();
        let kb = SessionKey::agree(&b, &a.public_key(), keys(&a, &b), s, &[0; 32]).unwrap();
        assert_eq!(ka.0, kb.0);
        let other = SessionKey::agree(&a, &b.public_key(), keys(&a, &b), s, &[1; 32]).unwrap();
        assert_ne!(ka.0, other.0);
    }

    /// A bound key changes with each peer id, their roles, the protocol name and the
    /// transcript, and differs from the unbound key of the same exchange.
    #[test]
    fn bound_keys_depend_on_peers_roles_protocol_and_transcript() {
        let a = EphemeralSecret::from_bytes([1; 32]);
        let b = EphemeralSecret::from_bytes([2; 32]);
        let s = SessionId([9; 16]);
        let peers = Peers::new(b"peer a".to_vec(), b"peer b".to_vec()).unwrap();
        let bound = |ours: &EphemeralSecret, theirs: &EphemeralSecret, p: &Peers, name, t| {
            SessionKey::agree_bound(ours, &theirs.public_key(), keys(&a, &b), s, p, name, t)
                .unwrap()
                .0
        };
        let name = crate::PROTOCOL_NAME_V3;
        let ka = bound(&a, &b, &peers, name, &[0; 32]);
        assert_eq!(
            ka,
            bound(&b, &a, &peers, name, &[0; 32]),
            "both sides agree"
        );
        let unbound = SessionKey::agree(&a, &b.public_key(), keys(&a, &b), s, &[0; 32]).unwrap();
        assert_ne!(ka, unbound.0);
        let swapped = Peers::new(b"peer b".to_vec(), b"peer a".to_vec()).unwrap();
        let relayed = Peers::new(b"peer a".to_vec(), b"peer m".to_vec()).unwrap();
        // Lengths are prefixed: moving a byte from one id to the other changes the key.
        let shifted = Peers::new(b"peer ap".to_vec(), b"eer b".to_vec()).unwrap();
        for other in [swapped, relayed, shifted] {
            assert_ne!(ka, bound(&a, &b, &other, name, &[0; 32]), "{other:?}");
        }
        assert_ne!(ka, bound(&a, &b, &peers, "/redoubt/sync/4", &[0; 32]));
        assert_ne!(ka, bound(&a, &b, &peers, name, &[1; 32]));
    }

    #[test]
    fn peer_ids_are_bounded() {
        assert!(Peers::new(Vec::new(), b"b".to_vec()).is_err());
        assert!(Peers::new(b"a".to_vec(), vec![7; MAX_PEER_ID_LEN + 1]).is_err());
        assert!(Peers::new(vec![7; MAX_PEER_ID_LEN], b"b".to_vec()).is_ok());
    }

    /// A bound transcript covers responses and the direction of each frame; an unbound one
    /// ignores responses, as versions 1 and 2 specify.
    #[test]
    fn bound_transcripts_cover_responses_and_directions() {
        let hash = |t: &mut Transcript, frames: &[(bool, &[u8])]| {
            for (request, f) in frames {
                if *request {
                    t.absorb(f);
                } else {
                    t.absorb_response(f);
                }
            }
            t.hash()
        };
        let talk: &[(bool, &[u8])] = &[(true, b"open"), (false, b"more"), (true, b"symbols")];
        let quiet: &[(bool, &[u8])] = &[(true, b"open"), (true, b"symbols")];
        let flipped: &[(bool, &[u8])] = &[(true, b"open"), (true, b"more"), (true, b"symbols")];
        let v1 = hash(&mut Transcript::default(), talk);
        assert_eq!(v1, hash(&mut Transcript::default(), quiet));
        let v3 = hash(&mut Transcript::bound(), talk);
        assert_ne!(v3, hash(&mut Transcript::bound(), quiet));
        assert_ne!(v3, hash(&mut Transcript::bound(), flipped));
        assert_ne!(v3, v1);
    }

    #[test]
    fn low_order_points_are_rejected() {
        let a = EphemeralSecret::from_bytes([1; 32]);
        for point in [[0u8; 32], {
            let mut p = [0u8; 32];
            p[0] = 1;
            p
        }] {
            let k = SessionKeys {
                requester: a.public_key(),
                responder: point,
            };
            assert!(matches!(
                SessionKey::agree(&a, &point, k, SessionId([0; 16]), &[0; 32]),
                Err(Error::WeakKey)
            ));
        }
    }

    #[test]
    fn chunks_fail_under_any_change() {
        let key = SessionKey([7; 32]);
        let s = SessionId([1; 16]);
        let sealed = seal_chunk(&key, s, 3, false, b"payload").unwrap();
        let (pt, last) = open_chunk(&key, s, 3, &sealed).unwrap();
        assert_eq!((&pt[..], last), (&b"payload"[..], false));
        assert!(open_chunk(&key, s, 4, &sealed).is_err(), "reordered");
        assert!(
            open_chunk(&key, SessionId([2; 16]), 3, &sealed).is_err(),
            "other session"
        );
        assert!(
            open_chunk(&SessionKey([8; 32]), s, 3, &sealed).is_err(),
            "other key"
        );
        let mut flipped = sealed.clone();
        flipped[0] = 1;
        assert!(
            open_chunk(&key, s, 3, &flipped).is_err(),
            "final flag forged"
        );
        for i in 1..sealed.len() {
            let mut t = sealed.clone();
            t[i] ^= 0x40;
            assert!(open_chunk(&key, s, 3, &t).is_err(), "byte {i}");
        }
        assert!(open_chunk(&key, s, 3, &[]).is_err());
    }

    #[test]
    fn debug_hides_keys() {
        assert_eq!(format!("{:?}", SessionKey([7; 32])), "SessionKey(..)");
        let e = EphemeralSecret::from_bytes([7; 32]);
        assert_eq!(format!("{e:?}"), "EphemeralSecret(..)");
    }
}
