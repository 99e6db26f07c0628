//! Pairing a new device with a short one-time code, sans-IO: `/redoubt/pair/1`.
//!
//! The *host* (the device holding the secrets) shows a [`PairCode`]: a public two-digit
//! nameplate and an eight-digit secret. The *joiner* types it. Both run SPAKE2 (Ed25519 group)
//! with the secret as password and the two libp2p peer ids, as Noise authenticated them, as the
//! identities; then each proves it holds the same key with a confirmation tag. A wrong code
//! fails the tags; the host burns its code on the first attempt, so an attacker gets one guess
//! in 10^8. `docs/pairing.md` gives the flow and the argument.
//!
//! ```
//! use redoubt_protocol::pairing::{Host, Joiner, PairCode, PairRequest, PairResponse};
//!
//! let code = PairCode::generate()?;
//! let typed: PairCode = code.to_string().parse()?;
//! let (host_id, joiner_id) = (b"host peer id".as_slice(), b"joiner peer id".as_slice());
//!
//! let (mut joiner, hello) = Joiner::start(&typed, host_id, joiner_id);
//! let PairRequest::Hello { nameplate, spake } = PairRequest::decode(&hello.encode()?)? else {
//!     unreachable!()
//! };
//! assert_eq!(nameplate, code.nameplate());
//! let (host, challenge) = Host::answer(&code, host_id, joiner_id, &spake)?;
//! let confirm = joiner.challenge(&PairResponse::decode(&challenge.encode()?)?)?;
//! let PairRequest::Confirm { tag } = confirm else { unreachable!() };
//! host.confirm(&tag)?; // the host may now ask its user, then send Welcome
//! let welcome = PairResponse::Welcome { clients: vec![b"alice".to_vec()] };
//! assert_eq!(joiner.welcome(&welcome)?, vec![b"alice".to_vec()]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::{fmt, str::FromStr};

use spake2::{Ed25519Group, Identity, Password, Spake2};
use zeroize::{Zeroize, Zeroizing};

use crate::{
    Error,
    codec::{Reader, Writer},
    limits::MAX_SELECTION_ITEMS,
};

/// The libp2p protocol name of pairing.
pub const PAIR_PROTOCOL_NAME: &str = "/redoubt/pair/1";
/// The version byte every pairing frame starts with.
pub const PAIR_VERSION: u8 = 1;
/// Digits in a code's secret part.
pub const SECRET_DIGITS: usize = 8;
/// Length of a SPAKE2 message (Ed25519 group): a side byte and a point.
pub const SPAKE_LEN: usize = 33;
/// `blake3::derive_key` context of the host's confirmation tag.
pub const HOST_TAG_CONTEXT: &str = "redoubt pair v1 host confirmation";
/// `blake3::derive_key` context of the joiner's confirmation tag.
pub const JOINER_TAG_CONTEXT: &str = "redoubt pair v1 joiner confirmation";
/// Prefix of the payload a QR code carries.
pub const PAYLOAD_PREFIX: &str = "redoubt-pair:1:";
/// Most addresses a payload carries.
pub const MAX_PAYLOAD_ADDRS: usize = 16;

const TAG_HELLO: u8 = 0x01;
const TAG_CONFIRM: u8 = 0x02;
const TAG_CHALLENGE: u8 = 0x81;
const TAG_WELCOME: u8 = 0x82;
const TAG_REFUSED: u8 = 0x83;

/// A one-time pairing code, `NN-DDDD-DDDD`: a public nameplate (10–99) that tells hosts on
/// the same network apart, and eight secret digits. `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct PairCode {
    nameplate: u16,
    secret: Zeroizing<String>,
}

impl PairCode {
    /// A fresh code from the system's random number generator.
    pub fn generate() -> Result<Self, Error> {
        let mut bytes = Zeroizing::new([0u8; 16]);
        getrandom::fill(bytes.as_mut()).map_err(|_| Error::Random)?;
        let mut x = Zeroizing::new(u128::from_le_bytes(*bytes));
        // 2^128 is so much larger than 90 * 10^8 that the modulo bias is below 2^-90.
        let nameplate = 10 + (*x % 90) as u16;
        *x /= 90;
        let mut secret = Zeroizing::new(String::with_capacity(SECRET_DIGITS));
        for _ in 0..SECRET_DIGITS {
            secret.push(char::from(b'0' + (*x % 10) as u8));
            *x /= 10;
        }
        Ok(Self { nameplate, secret })
    }

    /// The public nameplate.
    pub fn nameplate(&self) -> u16 {
        self.nameplate
    }

    fn password(&self) -> Password {
        Password::new(self.secret.as_bytes())
    }
}

impl fmt::Display for PairCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}-{}",
            self.nameplate,
            &self.secret[..4],
            &self.secret[4..]
        )
    }
}

impl fmt::Debug for PairCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PairCode({}-....-....)", self.nameplate)
    }
}

impl FromStr for PairCode {
    type Err = Error;

    /// Parses `NN-DDDD-DDDD`; spaces and dashes between digits are ignored, so `42 7315 0986`
    /// and `4273150986` read the same.
    fn from_str(s: &str) -> Result<Self, Error> {
        let mut digits = Zeroizing::new(String::new());
        for c in s.trim().chars() {
            match c {
                '0'..='9' => digits.push(c),
                '-' | ' ' => {}
                _ => return Err(Error::BadCode("a code holds digits and dashes only")),
            }
        }
        if digits.len() != 2 + SECRET_DIGITS {
            return Err(Error::BadCode("a code has 10 digits: NN-DDDD-DDDD"));
        }
        let nameplate: u16 = digits[..2]
            .parse()
            .map_err(|_| Error::BadCode("bad nameplate"))?;
        if nameplate < 10 {
            return Err(Error::BadCode("a code starts with 10 to 99"));
        }
        Ok(Self {
            nameplate,
            secret: Zeroizing::new(digits[2..].to_string()),
        })
    }
}

/// What a QR code carries: the code, the host's peer id and its addresses (as text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairPayload {
    /// The code.
    pub code: PairCode,
    /// The host's peer id, base58.
    pub peer: String,
    /// Multiaddresses to dial, as text.
    pub addrs: Vec<String>,
}

impl fmt::Display for PairPayload {
    /// `redoubt-pair:1:CODE:PEER:ADDR,ADDR,...`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PAYLOAD_PREFIX}{}:{}:{}",
            self.code,
            self.peer,
            self.addrs.join(",")
        )
    }
}

impl FromStr for PairPayload {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let rest = s
            .trim()
            .strip_prefix(PAYLOAD_PREFIX)
            .ok_or(Error::BadCode("a payload starts with redoubt-pair:1:"))?;
        let mut parts = rest.splitn(3, ':');
        let (Some(code), Some(peer), Some(addrs)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(Error::BadCode("a payload is CODE:PEER:ADDRS"));
        };
        let addrs: Vec<String> = addrs
            .split(',')
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect();
        if peer.is_empty() || peer.len() > redoubt_vault::MAX_PEER_ID_LEN {
            return Err(Error::BadCode("bad peer id in the payload"));
        }
        if addrs.len() > MAX_PAYLOAD_ADDRS {
            return Err(Error::BadCode("too many addresses in the payload"));
        }
        Ok(Self {
            code: code.parse()?,
            peer: peer.to_string(),
            addrs,
        })
    }
}

/// Why a host refused a pairing attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PairRefusal {
    /// No pairing with that nameplate is open here (not burned: try another host).
    NoPairing,
    /// The code was already tried once; it is burned.
    Used,
    /// The code expired.
    Expired,
    /// The confirmation did not match: the code typed was wrong. The code is burned.
    WrongCode,
    /// The host's user declined.
    Declined,
    /// A code this version does not know.
    Other(u8),
}

impl PairRefusal {
    fn to_byte(self) -> u8 {
        match self {
            Self::NoPairing => 1,
            Self::Used => 2,
            Self::Expired => 3,
            Self::WrongCode => 4,
            Self::Declined => 5,
            Self::Other(b) => b,
        }
    }

    fn from_byte(b: u8) -> Self {
        match b {
            1 => Self::NoPairing,
            2 => Self::Used,
            3 => Self::Expired,
            4 => Self::WrongCode,
            5 => Self::Declined,
            b => Self::Other(b),
        }
    }
}

impl fmt::Display for PairRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoPairing => f.write_str("no pairing with that code is open on this device"),
            Self::Used => f.write_str("that code was already used; start a new pairing"),
            Self::Expired => f.write_str("that code expired; start a new pairing"),
            Self::WrongCode => f.write_str("wrong code; it is burned, start a new pairing"),
            Self::Declined => f.write_str("the other device declined"),
            Self::Other(b) => write!(f, "pairing refusal {b}"),
        }
    }
}

/// A frame from joiner to host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PairRequest {
    /// Opens an attempt: the nameplate typed and the joiner's SPAKE2 message.
    Hello {
        /// The nameplate.
        nameplate: u16,
        /// SPAKE2 side B's message.
        spake: [u8; SPAKE_LEN],
    },
    /// The joiner's confirmation tag.
    Confirm {
        /// `derive_key(JOINER_TAG_CONTEXT, key)`.
        tag: [u8; 32],
    },
}

/// A frame from host to joiner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PairResponse {
    /// The host's SPAKE2 message and confirmation tag.
    Challenge {
        /// SPAKE2 side A's message.
        spake: [u8; SPAKE_LEN],
        /// `derive_key(HOST_TAG_CONTEXT, key)`.
        tag: [u8; 32],
    },
    /// Paired: the clients both sides now share, with read and write rights both ways.
    Welcome {
        /// Client paths.
        clients: Vec<Vec<u8>>,
    },
    /// Refused; nothing changed on the host.
    Refused {
        /// Why.
        reason: PairRefusal,
    },
}

impl PairRequest {
    /// Encodes the frame.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut w = Writer::with_capacity(64);
        w.u8(PAIR_VERSION);
        match self {
            Self::Hello { nameplate, spake } => {
                w.u8(TAG_HELLO);
                w.raw(&nameplate.to_le_bytes());
                w.raw(spake);
            }
            Self::Confirm { tag } => {
                w.u8(TAG_CONFIRM);
                w.raw(tag);
            }
        }
        Ok(w.buf)
    }

    /// Decodes one frame.
    pub fn decode(frame: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(frame);
        let msg = match header(&mut r)? {
            TAG_HELLO => Self::Hello {
                nameplate: r.u16()?,
                spake: r.array()?,
            },
            TAG_CONFIRM => Self::Confirm { tag: r.array()? },
            _ => return Err(Error::Malformed("unknown pairing request tag")),
        };
        r.finish()?;
        Ok(msg)
    }
}

impl PairResponse {
    /// Encodes the frame.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut w = Writer::with_capacity(64);
        w.u8(PAIR_VERSION);
        match self {
            Self::Challenge { spake, tag } => {
                w.u8(TAG_CHALLENGE);
                w.raw(spake);
                w.raw(tag);
            }
            Self::Welcome { clients } => {
                if clients.len() > MAX_SELECTION_ITEMS {
                    return Err(Error::Malformed("too many clients"));
                }
                w.u8(TAG_WELCOME);
                w.count(clients.len());
                for c in clients {
                    if c.is_empty() || c.len() > redoubt_vault::MAX_PATH_LEN {
                        return Err(Error::Malformed("path must be 1 to 1024 bytes"));
                    }
                    w.bytes_u16(c);
                }
            }
            Self::Refused { reason } => {
                w.u8(TAG_REFUSED);
                w.u8(reason.to_byte());
            }
        }
        Ok(w.buf)
    }

    /// Decodes one frame.
    pub fn decode(frame: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(frame);
        let msg = match header(&mut r)? {
            TAG_CHALLENGE => Self::Challenge {
                spake: r.array()?,
                tag: r.array()?,
            },
            TAG_WELCOME => {
                let n = r.count(MAX_SELECTION_ITEMS, 3, "too many clients")?;
                let mut clients = Vec::with_capacity(n);
                for _ in 0..n {
                    clients.push(r.path()?.to_vec());
                }
                Self::Welcome { clients }
            }
            TAG_REFUSED => Self::Refused {
                reason: PairRefusal::from_byte(r.u8()?),
            },
            _ => return Err(Error::Malformed("unknown pairing response tag")),
        };
        r.finish()?;
        Ok(msg)
    }
}

fn header(r: &mut Reader<'_>) -> Result<u8, Error> {
    let version = r.u8()?;
    if version != PAIR_VERSION {
        return Err(Error::UnsupportedVersion(version));
    }
    r.u8()
}

/// The two confirmation tags of a SPAKE2 key.
fn tags(key: &[u8]) -> ([u8; 32], [u8; 32]) {
    (
        blake3::derive_key(HOST_TAG_CONTEXT, key),
        blake3::derive_key(JOINER_TAG_CONTEXT, key),
    )
}

/// Compares two tags without an early exit.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The host's side of one attempt, after it answered the joiner's `Hello`.
pub struct Host {
    joiner_tag: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Host(..)")
    }
}

impl Host {
    /// Answers a joiner's `Hello` (its SPAKE2 message `spake`) for `code`, between the host
    /// `host_id` and the joiner `joiner_id` (peer ids as the transport authenticated them).
    pub fn answer(
        code: &PairCode,
        host_id: &[u8],
        joiner_id: &[u8],
        spake: &[u8; SPAKE_LEN],
    ) -> Result<(Self, PairResponse), Error> {
        let (state, ours) = Spake2::<Ed25519Group>::start_a(
            &code.password(),
            &Identity::new(host_id),
            &Identity::new(joiner_id),
        );
        let mut key = Zeroizing::new(
            state
                .finish(spake)
                .map_err(|_| Error::Malformed("bad SPAKE2 message"))?,
        );
        let (host_tag, joiner_tag) = tags(&key);
        key.zeroize();
        let spake = ours
            .as_slice()
            .try_into()
            .map_err(|_| Error::Malformed("SPAKE2 message of the wrong length"))?;
        Ok((
            Self {
                joiner_tag: Zeroizing::new(joiner_tag),
            },
            PairResponse::Challenge {
                spake,
                tag: host_tag,
            },
        ))
    }

    /// Checks the joiner's confirmation tag: `Err(WrongCode)` when the joiner typed another
    /// code.
    pub fn confirm(&self, tag: &[u8; 32]) -> Result<(), Error> {
        if same(&self.joiner_tag, tag) {
            Ok(())
        } else {
            Err(Error::PairRefused(PairRefusal::WrongCode))
        }
    }
}

/// The joiner's side of one attempt.
pub struct Joiner {
    state: Option<Spake2<Ed25519Group>>,
    host_verified: bool,
}

impl fmt::Debug for Joiner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Joiner(..)")
    }
}

impl Joiner {
    /// Starts an attempt with `code` towards `host_id`, as `joiner_id`; returns the `Hello`.
    pub fn start(code: &PairCode, host_id: &[u8], joiner_id: &[u8]) -> (Self, PairRequest) {
        let (state, ours) = Spake2::<Ed25519Group>::start_b(
            &code.password(),
            &Identity::new(host_id),
            &Identity::new(joiner_id),
        );
        let mut spake = [0u8; SPAKE_LEN];
        let n = ours.len().min(SPAKE_LEN);
        spake[..n].copy_from_slice(&ours[..n]);
        (
            Self {
                state: Some(state),
                host_verified: false,
            },
            PairRequest::Hello {
                nameplate: code.nameplate(),
                spake,
            },
        )
    }

    /// Takes the host's answer to `Hello` and makes the `Confirm`. A challenge whose tag does
    /// not match (a wrong code, or a host that does not know it) still yields a `Confirm`, so
    /// that the host learns of the failure; [`Self::welcome`] then refuses anything.
    pub fn challenge(&mut self, response: &PairResponse) -> Result<PairRequest, Error> {
        let (spake, tag) = match response {
            PairResponse::Challenge { spake, tag } => (spake, tag),
            PairResponse::Refused { reason } => return Err(Error::PairRefused(*reason)),
            PairResponse::Welcome { .. } => {
                return Err(Error::Unexpected("welcome before the confirmation"));
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
        self.host_verified = same(&host_tag, tag);
        Ok(PairRequest::Confirm { tag: joiner_tag })
    }

    /// Takes the host's answer to `Confirm`: the shared clients, once the host proved it knows
    /// the code and accepted.
    pub fn welcome(&self, response: &PairResponse) -> Result<Vec<Vec<u8>>, Error> {
        match response {
            PairResponse::Refused { reason } => Err(Error::PairRefused(*reason)),
            _ if !self.host_verified => Err(Error::PairRefused(PairRefusal::WrongCode)),
            PairResponse::Welcome { clients } => Ok(clients.clone()),
            PairResponse::Challenge { .. } => Err(Error::Unexpected("a second challenge")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        host_code: &PairCode,
        typed: &PairCode,
        ids: (&[u8], &[u8], &[u8]),
    ) -> Result<(), Error> {
        let (host_sees, joiner_is, joiner_sees_host) = ids;
        let (mut joiner, hello) = Joiner::start(typed, joiner_sees_host, joiner_is);
        let PairRequest::Hello { spake, .. } = PairRequest::decode(&hello.encode()?)? else {
            panic!()
        };
        let (host, challenge) = Host::answer(host_code, b"host", host_sees, &spake)?;
        let confirm = joiner.challenge(&PairResponse::decode(&challenge.encode()?)?)?;
        let PairRequest::Confirm { tag } = confirm else {
            panic!()
        };
        let host_result = host.confirm(&tag);
        let welcome = PairResponse::Welcome {
            clients: vec![b"alice".to_vec()],
        };
        let joiner_result = joiner.welcome(&welcome).map(|_| ());
        assert_eq!(host_result.is_ok(), joiner_result.is_ok());
        host_result
    }

    #[test]
    fn the_same_code_pairs_and_a_wrong_one_fails_on_both_sides() {
        let code = PairCode::generate().unwrap();
        let ids = (&b"joiner"[..], &b"joiner"[..], &b"host"[..]);
        run(&code, &code, ids).unwrap();
        let other = PairCode::generate().unwrap();
        let err = run(&code, &other, ids).unwrap_err();
        assert!(matches!(err, Error::PairRefused(PairRefusal::WrongCode)));
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

    #[test]
    fn codes_and_payloads_parse_and_hide_their_secret() {
        let code: PairCode = "42-7315-0986".parse().unwrap();
        assert_eq!(code.nameplate(), 42);
        assert_eq!(code.to_string(), "42-7315-0986");
        assert_eq!("42 7315 0986".parse::<PairCode>().unwrap(), code);
        assert!(!format!("{code:?}").contains("7315"));
        for bad in [
            "",
            "42-7315-098",
            "42-7315-09861",
            "07-1234-5678",
            "42-73a5-0986",
        ] {
            assert!(bad.parse::<PairCode>().is_err(), "{bad}");
        }
        let payload = PairPayload {
            code: code.clone(),
            peer: "12D3KooWabc".into(),
            addrs: vec!["/ip4/127.0.0.1/tcp/7450".into()],
        };
        let text = payload.to_string();
        assert_eq!(
            text,
            "redoubt-pair:1:42-7315-0986:12D3KooWabc:/ip4/127.0.0.1/tcp/7450"
        );
        assert_eq!(text.parse::<PairPayload>().unwrap(), payload);
        let generated = PairCode::generate().unwrap();
        assert_eq!(
            generated.to_string().parse::<PairCode>().unwrap(),
            generated
        );
        assert!((10..100).contains(&generated.nameplate()));
    }

    #[test]
    fn frames_round_trip_and_reject_garbage() {
        let frames = [
            PairResponse::Welcome {
                clients: vec![b"a".to_vec(), b"bb".to_vec()],
            },
            PairResponse::Refused {
                reason: PairRefusal::Expired,
            },
        ];
        for f in frames {
            assert_eq!(PairResponse::decode(&f.encode().unwrap()).unwrap(), f);
        }
        assert!(PairRequest::decode(&[1, 1, 0]).is_err());
        assert!(PairResponse::decode(&[2, 0x83, 1]).is_err());
        assert!(PairResponse::decode(&[1, 0x82, 255, 255, 255, 255]).is_err());
    }
}
