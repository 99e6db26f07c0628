//! The session's cryptography, in short functions: ephemeral keys, the key schedule, the
//! transcript hash, and sealing and opening chunks.
//!
//! Labels are versioned; `docs/protocol.md` gives the exact byte layout of every input.

use chacha20poly1305::{
    ChaCha20Poly1305, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::{Error, SessionId};

/// `blake3::derive_key` context of the transcript hash.
pub const TRANSCRIPT_CONTEXT: &str = "redoubt sync v1 transcript";
/// `blake3::derive_key` context of the session key.
pub const SESSION_KEY_CONTEXT: &str = "redoubt sync v1 complement key";

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
}

/// Whether all 32 bytes are zero, looking at every byte (no early exit).
fn is_all_zero(bytes: &[u8; 32]) -> bool {
    bytes.iter().fold(0u8, |acc, b| acc | b) == 0
}

/// The hash of every request frame of a session, in order, each prefixed by its length.
#[derive(Clone)]
pub struct Transcript(blake3::Hasher);

impl Default for Transcript {
    fn default() -> Self {
        Self(blake3::Hasher::new_derive_key(TRANSCRIPT_CONTEXT))
    }
}

impl Transcript {
    /// Adds one request frame.
    pub fn absorb(&mut self, frame: &[u8]) {
        self.0.update(&(frame.len() as u64).to_le_bytes());
        self.0.update(frame);
    }

    /// The hash so far.
    pub fn hash(&self) -> [u8; 32] {
        *self.0.finalize().as_bytes()
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
