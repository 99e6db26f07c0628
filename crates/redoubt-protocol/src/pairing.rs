//! Pairing a new device with a short one-time code, sans-IO: `/redoubt/pair/3` (and
//! `/redoubt/pair/2`, which older devices speak).
//!
//! The *host* (the device holding the secrets) shows a [`PairCode`]: a public two-digit
//! nameplate and an eight-digit secret. The *joiner* types it. Both run SPAKE2 (Ed25519 group)
//! with the secret as password and the two libp2p peer ids, as Noise authenticated them, as the
//! identities; then each proves it holds the same key with a confirmation tag. A wrong code
//! fails the tags; the host burns its code on the first attempt, so an attacker gets one guess
//! in 10^8. Both devices then show the same short [`Verification`] string and ask their users;
//! nothing is granted unless both accept. The joiner commits to a nonce in `Hello` and reveals
//! it only in `Confirm`, so a man in the middle who learned the code still cannot steer the
//! two devices' strings to match. In version 3 the host's `Welcome` also carries the remotes
//! on shared storage it shares ([`SharedRemote`]), sealed under a key derived from the SPAKE2
//! key ([`Host::seal_remotes`], [`Joiner::open_remotes`]). `docs/pairing.md` gives the flow and
//! the argument.
//!
//! ```
//! use redoubt_protocol::pairing::{Host, Joiner, PairCode, PairRequest, PairResponse};
//!
//! let code = PairCode::generate()?;
//! let typed: PairCode = code.to_string().parse()?;
//! let (host_id, joiner_id) = (b"host peer id".as_slice(), b"joiner peer id".as_slice());
//!
//! let (mut joiner, hello) = Joiner::start(&typed, host_id, joiner_id)?;
//! let PairRequest::Hello { nameplate, spake, commitment } = PairRequest::decode(&hello.encode()?)?
//! else {
//!     unreachable!()
//! };
//! assert_eq!(nameplate, code.nameplate());
//! let (host, challenge) = Host::answer(&code, host_id, joiner_id, &spake, &commitment)?;
//! let confirm = joiner.challenge(&PairResponse::decode(&challenge.encode()?)?)?;
//! let PairRequest::Confirm { tag, nonce } = confirm else { unreachable!() };
//! // Both devices show the same string and ask their users.
//! let shown_by_host = host.confirm(&tag, &nonce)?;
//! assert_eq!(joiner.verification()?, shown_by_host);
//! joiner.host_answer(&PairResponse::Accepted)?; // the host's user accepted
//! let decide = joiner.decide(true)?; // and so did the joiner's
//! assert_eq!(decide, PairRequest::Decide { accept: true });
//! let welcome = PairResponse::Welcome { clients: vec![b"alice".to_vec()], remotes: None };
//! assert_eq!(joiner.welcome(&welcome)?, vec![b"alice".to_vec()]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod code;
pub mod remotes;
mod wire;

use std::fmt;

use spake2::{Ed25519Group, Identity, Spake2};
use zeroize::Zeroizing;

pub use self::{
    code::{PairCode, PairPayload},
    remotes::SharedRemote,
    wire::{PairRefusal, PairRequest, PairResponse},
};
use crate::Error;

/// The libp2p protocol name of pairing version 2 (released; older devices speak only it).
/// Version 1 (`/redoubt/pair/1`) is no longer spoken.
pub const PAIR_PROTOCOL_NAME: &str = "/redoubt/pair/2";
/// The libp2p protocol name of pairing version 3: version 2, and the host's `Welcome` carries
/// the remotes it shares.
pub const PAIR_PROTOCOL_NAME_V3: &str = "/redoubt/pair/3";
/// The version byte every version 2 pairing frame starts with.
pub const PAIR_VERSION: u8 = 2;
/// The version byte every version 3 pairing frame starts with.
pub const PAIR_VERSION_3: u8 = 3;
/// Digits in a code's secret part.
pub const SECRET_DIGITS: usize = 8;
/// Length of a SPAKE2 message (Ed25519 group): a side byte and a point.
pub const SPAKE_LEN: usize = 33;
/// Length of a confirmation tag or of a commitment.
pub const TAG_LEN: usize = 32;
/// Length of the joiner's nonce.
pub const NONCE_LEN: usize = 32;
/// Digits in a verification string.
pub const VERIFICATION_DIGITS: usize = 6;
/// `blake3::derive_key` context of the host's confirmation tag.
pub const HOST_TAG_CONTEXT: &str = "redoubt pair v2 host confirmation";
/// `blake3::derive_key` context of the joiner's confirmation tag.
pub const JOINER_TAG_CONTEXT: &str = "redoubt pair v2 joiner confirmation";
/// `blake3::derive_key` context of the joiner's commitment to its nonce.
pub const COMMITMENT_CONTEXT: &str = "redoubt pair v2 joiner commitment";
/// `blake3::derive_key` context of the verification string.
pub const VERIFICATION_CONTEXT: &str = "redoubt pair v2 verification string";
/// Prefix of the payload a QR code carries (the payload's own format, still version 1).
pub const PAYLOAD_PREFIX: &str = "redoubt-pair:1:";
/// Most addresses a payload carries.
pub const MAX_PAYLOAD_ADDRS: usize = 16;

/// The short string both devices show once each proved the code, six decimal digits written
/// `123 456`. It is equal on both devices when they paired with each other, and differs (but
/// for a chance of 10^-6) when anything sat in between; the users compare it before they
/// accept. It is derived from the SPAKE2 key, so it reveals nothing of the code or the key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Verification(u32);

impl Verification {
    /// The string's value, below 10^6.
    pub fn value(self) -> u32 {
        self.0
    }

    /// `VERIFICATION_CONTEXT` over the SPAKE2 key, the joiner's nonce and both peer ids, each
    /// id after its length as a little-endian u64; the first 8 bytes, little-endian, mod 10^6.
    fn derive(key: &[u8], nonce: &[u8; NONCE_LEN], host_id: &[u8], joiner_id: &[u8]) -> Self {
        let mut h = blake3::Hasher::new_derive_key(VERIFICATION_CONTEXT);
        h.update(key);
        h.update(nonce);
        for id in [host_id, joiner_id] {
            h.update(&(id.len() as u64).to_le_bytes());
            h.update(id);
        }
        let mut first = [0u8; 8];
        h.finalize_xof().fill(&mut first);
        // 2^64 is so much larger than 10^6 that the modulo bias is below 2^-44.
        Self((u64::from_le_bytes(first) % 1_000_000) as u32)
    }
}

impl fmt::Display for Verification {
    /// `123 456`: two groups of three digits, leading zeros kept.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:03} {:03}", self.0 / 1000, self.0 % 1000)
    }
}

impl fmt::Debug for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Verification({self})")
    }
}

/// The two confirmation tags of a SPAKE2 key.
fn tags(key: &[u8]) -> ([u8; TAG_LEN], [u8; TAG_LEN]) {
    (
        blake3::derive_key(HOST_TAG_CONTEXT, key),
        blake3::derive_key(JOINER_TAG_CONTEXT, key),
    )
}

/// The joiner's commitment to its nonce.
fn commitment(nonce: &[u8; NONCE_LEN]) -> [u8; TAG_LEN] {
    blake3::derive_key(COMMITMENT_CONTEXT, nonce)
}

/// Compares two tags without an early exit.
fn same(a: &[u8; TAG_LEN], b: &[u8; TAG_LEN]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The host's side of one attempt, after it answered the joiner's `Hello`.
pub struct Host {
    key: Zeroizing<Vec<u8>>,
    remotes_key: redoubt_crypto::Key,
    host_id: Vec<u8>,
    joiner_id: Vec<u8>,
    commitment: [u8; TAG_LEN],
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Host(..)")
    }
}

impl Host {
    /// Answers a joiner's `Hello` (its SPAKE2 message `spake` and its `commitment`) for
    /// `code`, between the host `host_id` and the joiner `joiner_id` (peer ids as the transport
    /// authenticated them).
    pub fn answer(
        code: &PairCode,
        host_id: &[u8],
        joiner_id: &[u8],
        spake: &[u8; SPAKE_LEN],
        commitment: &[u8; TAG_LEN],
    ) -> Result<(Self, PairResponse), Error> {
        let (state, ours) = Spake2::<Ed25519Group>::start_a(
            &code.password(),
            &Identity::new(host_id),
            &Identity::new(joiner_id),
        );
        let key = Zeroizing::new(
            state
                .finish(spake)
                .map_err(|_| Error::Malformed("bad SPAKE2 message"))?,
        );
        let spake = ours
            .as_slice()
            .try_into()
            .map_err(|_| Error::Malformed("SPAKE2 message of the wrong length"))?;
        let (host_tag, _) = tags(&key);
        Ok((
            Self {
                remotes_key: remotes::remotes_key(&key),
                key,
                host_id: host_id.to_vec(),
                joiner_id: joiner_id.to_vec(),
                commitment: *commitment,
            },
            PairResponse::Challenge {
                spake,
                tag: host_tag,
            },
        ))
    }

    /// Checks the joiner's `Confirm`: its tag, and its nonce against the `Hello`'s commitment.
    /// Returns the verification string to show the host's user; `Err(WrongCode)` when the
    /// joiner typed another code (or broke its commitment).
    pub fn confirm(
        &self,
        tag: &[u8; TAG_LEN],
        nonce: &[u8; NONCE_LEN],
    ) -> Result<Verification, Error> {
        let (_, joiner_tag) = tags(&self.key);
        let tag_ok = same(&joiner_tag, tag);
        let commitment_ok = same(&commitment(nonce), &self.commitment);
        if tag_ok & commitment_ok {
            Ok(Verification::derive(
                &self.key,
                nonce,
                &self.host_id,
                &self.joiner_id,
            ))
        } else {
            Err(Error::PairRefused(PairRefusal::WrongCode))
        }
    }

    /// Seals `remotes` for the version 3 `Welcome` that shares `clients`, under this session's
    /// remotes key and a fresh nonce: only the joiner that ran this session opens them.
    pub fn seal_remotes(
        &self,
        clients: &[Vec<u8>],
        remotes: &[SharedRemote],
    ) -> Result<Vec<u8>, Error> {
        let mut nonce = [0u8; redoubt_crypto::XNONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| Error::Random)?;
        remotes::seal_remotes_with(&self.remotes_key, &nonce, clients, remotes)
    }
}

/// The joiner's side of one attempt.
pub struct Joiner {
    state: Option<Spake2<Ed25519Group>>,
    nonce: [u8; NONCE_LEN],
    host_id: Vec<u8>,
    joiner_id: Vec<u8>,
    /// Set once the host's tag verified.
    verification: Option<Verification>,
    /// This session's remotes key, set with `verification`.
    remotes_key: Option<redoubt_crypto::Key>,
    host_accepted: bool,
    accepted: bool,
}

impl fmt::Debug for Joiner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Joiner(..)")
    }
}

impl Joiner {
    /// Starts an attempt with `code` towards `host_id`, as `joiner_id`; returns the `Hello`.
    /// Fails only if the system's random number generator does.
    pub fn start(
        code: &PairCode,
        host_id: &[u8],
        joiner_id: &[u8],
    ) -> Result<(Self, PairRequest), Error> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| Error::Random)?;
        let (state, ours) = Spake2::<Ed25519Group>::start_b(
            &code.password(),
            &Identity::new(host_id),
            &Identity::new(joiner_id),
        );
        let mut spake = [0u8; SPAKE_LEN];
        let n = ours.len().min(SPAKE_LEN);
        spake[..n].copy_from_slice(&ours[..n]);
        Ok((
            Self {
                state: Some(state),
                nonce,
                host_id: host_id.to_vec(),
                joiner_id: joiner_id.to_vec(),
                verification: None,
                remotes_key: None,
                host_accepted: false,
                accepted: false,
            },
            PairRequest::Hello {
                nameplate: code.nameplate(),
                spake,
                commitment: commitment(&nonce),
            },
        ))
    }

    /// Takes the host's answer to `Hello` and makes the `Confirm`. A challenge whose tag does
    /// not match (a wrong code, or a host that does not know it) still yields a `Confirm`, so
    /// that the host learns of the failure; [`Self::verification`] then reports it.
    pub fn challenge(&mut self, response: &PairResponse) -> Result<PairRequest, Error> {
        let (spake, tag) = match response {
            PairResponse::Challenge { spake, tag } => (spake, tag),
            PairResponse::Refused { reason } => return Err(Error::PairRefused(*reason)),
            PairResponse::Accepted | PairResponse::Welcome { .. } => {
                return Err(Error::Unexpected("an answer before the challenge"));
            }
        };
        let state = self
            .state
            .take()
            .ok_or(Error::Unexpected("a second challenge"))?;
        let key = Zeroizing::new(
            state
                .finish(spake)
                .map_err(|_| Error::Malformed("bad SPAKE2 message"))?,
        );
        let (host_tag, joiner_tag) = tags(&key);
        if same(&host_tag, tag) {
            self.verification = Some(Verification::derive(
                &key,
                &self.nonce,
                &self.host_id,
                &self.joiner_id,
            ));
            self.remotes_key = Some(remotes::remotes_key(&key));
        }
        Ok(PairRequest::Confirm {
            tag: joiner_tag,
            nonce: self.nonce,
        })
    }

    /// The verification string to show the joiner's user, once the host proved it knows the
    /// code; `Err(WrongCode)` if it did not (or before the challenge).
    pub fn verification(&self) -> Result<Verification, Error> {
        self.verification
            .ok_or(Error::PairRefused(PairRefusal::WrongCode))
    }

    /// Takes the host's answer to `Confirm`: `Ok` when the host's user accepted.
    pub fn host_answer(&mut self, response: &PairResponse) -> Result<(), Error> {
        match response {
            PairResponse::Refused { reason } => Err(Error::PairRefused(*reason)),
            _ if self.verification.is_none() => Err(Error::PairRefused(PairRefusal::WrongCode)),
            PairResponse::Accepted => {
                self.host_accepted = true;
                Ok(())
            }
            PairResponse::Challenge { .. } | PairResponse::Welcome { .. } => Err(
                Error::Unexpected("an answer to the confirmation out of turn"),
            ),
        }
    }

    /// The joiner's user answered: makes the `Decide`. Accepting needs the host's proof and its
    /// user's acceptance first ([`Self::host_answer`]); declining is always possible.
    pub fn decide(&mut self, accept: bool) -> Result<PairRequest, Error> {
        if accept {
            self.verification()?;
            if !self.host_accepted {
                return Err(Error::Unexpected("accepting before the host's user did"));
            }
        }
        self.accepted = accept;
        Ok(PairRequest::Decide { accept })
    }

    /// Takes the host's answer to an accepting `Decide`: the shared clients, once the host
    /// proved it knows the code and both users accepted.
    pub fn welcome(&self, response: &PairResponse) -> Result<Vec<Vec<u8>>, Error> {
        match response {
            PairResponse::Refused { reason } => Err(Error::PairRefused(*reason)),
            _ if self.verification.is_none() => Err(Error::PairRefused(PairRefusal::WrongCode)),
            _ if !(self.host_accepted && self.accepted) => {
                Err(Error::Unexpected("a welcome before both users accepted"))
            }
            PairResponse::Welcome { clients, .. } => Ok(clients.clone()),
            PairResponse::Challenge { .. } | PairResponse::Accepted => {
                Err(Error::Unexpected("an answer to the decision out of turn"))
            }
        }
    }

    /// Opens the sealed remotes of a version 3 `Welcome` sharing `clients`, once the host
    /// proved the code and both users accepted; fails, naming why, for bytes not sealed by
    /// this session's host for this client list.
    pub fn open_remotes(
        &self,
        clients: &[Vec<u8>],
        sealed: &[u8],
    ) -> Result<Vec<SharedRemote>, Error> {
        let key = self
            .remotes_key
            .as_ref()
            .ok_or(Error::PairRefused(PairRefusal::WrongCode))?;
        if !(self.host_accepted && self.accepted) {
            return Err(Error::Unexpected("remotes before both users accepted"));
        }
        remotes::open_remotes_with(key, clients, sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs one attempt up to both verification strings; `ids` are (the joiner as the host
    /// sees it, the joiner as it is, the host as the joiner sees it).
    fn run(
        host_code: &PairCode,
        typed: &PairCode,
        ids: (&[u8], &[u8], &[u8]),
    ) -> Result<(Verification, Joiner), Error> {
        let (host_sees, joiner_is, joiner_sees_host) = ids;
        let (mut joiner, hello) = Joiner::start(typed, joiner_sees_host, joiner_is)?;
        let PairRequest::Hello {
            spake, commitment, ..
        } = PairRequest::decode(&hello.encode()?)?
        else {
            panic!()
        };
        let (host, challenge) = Host::answer(host_code, b"host", host_sees, &spake, &commitment)?;
        let confirm = joiner.challenge(&PairResponse::decode(&challenge.encode()?)?)?;
        let PairRequest::Confirm { tag, nonce } = confirm else {
            panic!()
        };
        let host_result = host.confirm(&tag, &nonce);
        assert_eq!(host_result.is_ok(), joiner.verification().is_ok());
        let shown = host_result?;
        assert_eq!(
            joiner.verification()?,
            shown,
            "both devices show one string"
        );
        Ok((shown, joiner))
    }

    const IDS: (&[u8], &[u8], &[u8]) = (b"joiner", b"joiner", b"host");

    /// One attempt with `code` between `host` and `joiner` up to the joiner's `Confirm`: both
    /// sides, and the confirmation's tag and nonce.
    fn up_to_confirm(code: &PairCode) -> (Host, Joiner, [u8; TAG_LEN], [u8; NONCE_LEN]) {
        let (mut joiner, hello) = Joiner::start(code, b"host", b"joiner").unwrap();
        let PairRequest::Hello {
            spake, commitment, ..
        } = hello
        else {
            panic!()
        };
        let (host, challenge) =
            Host::answer(code, b"host", b"joiner", &spake, &commitment).unwrap();
        let PairRequest::Confirm { tag, nonce } = joiner.challenge(&challenge).unwrap() else {
            panic!()
        };
        (host, joiner, tag, nonce)
    }

    #[test]
    fn the_same_code_pairs_and_a_wrong_one_fails_on_both_sides() {
        let code = PairCode::generate().unwrap();
        let (_, mut joiner) = run(&code, &code, IDS).unwrap();
        joiner.host_answer(&PairResponse::Accepted).unwrap();
        joiner.decide(true).unwrap();
        let welcome = PairResponse::Welcome {
            clients: vec![b"alice".to_vec()],
            remotes: None,
        };
        assert_eq!(joiner.welcome(&welcome).unwrap(), vec![b"alice".to_vec()]);
        let other = PairCode::generate().unwrap();
        let err = run(&code, &other, IDS).unwrap_err();
        assert!(matches!(err, Error::PairRefused(PairRefusal::WrongCode)));
    }

    /// The host seals the remotes under its session's key; only the joiner of that session,
    /// once both users accepted, opens them, and only for the welcome's client list.
    #[test]
    fn shared_remotes_open_only_for_the_session_that_sealed_them() {
        let code = PairCode::generate().unwrap();
        let session = || {
            let (host, joiner, tag, nonce) = up_to_confirm(&code);
            host.confirm(&tag, &nonce).unwrap();
            (host, joiner)
        };
        let (host, mut joiner) = session();
        let clients = vec![b"alice".to_vec()];
        let shared = [SharedRemote {
            name: "nas".into(),
            url: "file:///srv/nas".into(),
            clients: Some(clients.clone()),
            key: redoubt_crypto::Key::from_bytes([0x42; 32]),
        }];
        let sealed = host.seal_remotes(&clients, &shared).unwrap();
        assert!(
            joiner.open_remotes(&clients, &sealed).is_err(),
            "before both users accepted"
        );
        joiner.host_answer(&PairResponse::Accepted).unwrap();
        joiner.decide(true).unwrap();
        let opened = joiner.open_remotes(&clients, &sealed).unwrap();
        assert_eq!(opened.len(), 1);
        assert_eq!(opened[0].key.expose(), &[0x42; 32]);
        assert!(joiner.open_remotes(&[b"bob".to_vec()], &sealed).is_err());
        // Another session with the same code and ids has another SPAKE2 key.
        let (_, mut other) = session();
        other.host_answer(&PairResponse::Accepted).unwrap();
        other.decide(true).unwrap();
        assert!(other.open_remotes(&clients, &sealed).is_err());
    }

    /// Nothing is welcomed unless both users accepted, in that order.
    #[test]
    fn a_welcome_needs_both_users() {
        let code = PairCode::generate().unwrap();
        let welcome = PairResponse::Welcome {
            clients: vec![b"alice".to_vec()],
            remotes: None,
        };
        let (_, mut joiner) = run(&code, &code, IDS).unwrap();
        assert!(joiner.welcome(&welcome).is_err(), "nobody accepted yet");
        assert!(joiner.decide(true).is_err(), "before the host's user");
        assert_eq!(
            joiner.decide(false).unwrap(),
            PairRequest::Decide { accept: false }
        );
        joiner.host_answer(&PairResponse::Accepted).unwrap();
        assert!(joiner.welcome(&welcome).is_err(), "the joiner declined");
        let (_, mut joiner) = run(&code, &code, IDS).unwrap();
        let declined = PairResponse::Refused {
            reason: PairRefusal::Declined,
        };
        assert!(matches!(
            joiner.host_answer(&declined),
            Err(Error::PairRefused(PairRefusal::Declined))
        ));
        assert!(joiner.decide(true).is_err(), "the host's user declined");
    }

    /// A relay that forwards messages under its own peer id (the host sees the relay's id,
    /// not the joiner's) breaks the key: the PAKE is bound to the authenticated ids.
    #[test]
    fn the_key_is_bound_to_both_peer_ids() {
        let code = PairCode::generate().unwrap();
        let relayed = (&b"relay"[..], &b"joiner"[..], &b"host"[..]);
        assert!(run(&code, &code, relayed).is_err());
        let wrong_host = (&b"joiner"[..], &b"joiner"[..], &b"someone else"[..]);
        assert!(run(&code, &code, wrong_host).is_err());
    }

    /// A joiner that reveals another nonce than the one its `Hello` committed to (a man in the
    /// middle steering the verification string) fails like a wrong code.
    #[test]
    fn the_nonce_must_match_the_commitment() {
        let code = PairCode::generate().unwrap();
        let (host, joiner, tag, nonce) = up_to_confirm(&code);
        let mut other = nonce;
        other[0] ^= 1;
        assert!(matches!(
            host.confirm(&tag, &other),
            Err(Error::PairRefused(PairRefusal::WrongCode))
        ));
        assert_eq!(
            host.confirm(&tag, &nonce).unwrap(),
            joiner.verification().unwrap()
        );
    }

    /// Every attempt draws a fresh nonce, so two attempts with the same code show different
    /// strings (but for a chance of 10^-6).
    #[test]
    fn each_attempt_shows_its_own_string() {
        let code = PairCode::generate().unwrap();
        let shown: Vec<_> = (0..3).map(|_| run(&code, &code, IDS).unwrap().0).collect();
        assert!(shown[0] != shown[1] || shown[1] != shown[2], "{shown:?}");
    }

    /// The test vector of `docs/pairing.md`: fixed key, nonce and peer ids.
    #[test]
    fn verification_vector() {
        let v = Verification::derive(&[0x11; 32], &[0x22; NONCE_LEN], b"host", b"joiner");
        assert_eq!(v.to_string(), "596 027");
        assert_eq!(v.value(), 596_027);
        let swapped = Verification::derive(&[0x11; 32], &[0x22; NONCE_LEN], b"joiner", b"host");
        assert_ne!(swapped, v, "the ids' roles are part of the input");
        assert_eq!(Verification(7).to_string(), "000 007");
        assert_eq!(
            format!("{:?}", Verification(123_456)),
            "Verification(123 456)"
        );
    }
}
