//! Pairing frames, versions 2 and 3: what joiner and host send each other (`docs/pairing.md`).
//! Version 3 frames are version 2's with the version byte 3, but for `Welcome`, which also
//! carries the sealed remotes.

use std::fmt;

use super::{
    NONCE_LEN, PAIR_VERSION, PAIR_VERSION_3, SPAKE_LEN, TAG_LEN, remotes::MAX_SEALED_REMOTES_LEN,
};
use crate::{
    Error,
    codec::{Reader, Writer},
    limits::MAX_SELECTION_ITEMS,
};

const TAG_HELLO: u8 = 0x01;
const TAG_CONFIRM: u8 = 0x02;
const TAG_DECIDE: u8 = 0x03;
const TAG_CHALLENGE: u8 = 0x81;
const TAG_WELCOME: u8 = 0x82;
const TAG_REFUSED: u8 = 0x83;
const TAG_ACCEPTED: u8 = 0x84;

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
    /// A user declined, on this device or on the other one.
    Declined,
    /// The host could not save the grants the pairing made, so it does not welcome the joiner.
    Unsaved,
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
            Self::Unsaved => 6,
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
            6 => Self::Unsaved,
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
            Self::Declined => f.write_str("declined; nothing was granted on either device"),
            Self::Unsaved => f.write_str("the other device could not save the pairing; try again"),
            Self::Other(b) => write!(f, "pairing refusal {b}"),
        }
    }
}

/// A frame from joiner to host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PairRequest {
    /// Opens an attempt: the nameplate typed, the joiner's SPAKE2 message and its commitment
    /// to the nonce it reveals in `Confirm`.
    Hello {
        /// The nameplate.
        nameplate: u16,
        /// SPAKE2 side B's message.
        spake: [u8; SPAKE_LEN],
        /// `derive_key(COMMITMENT_CONTEXT, nonce)`.
        commitment: [u8; TAG_LEN],
    },
    /// The joiner's confirmation tag, and the nonce its `Hello` committed to.
    Confirm {
        /// `derive_key(JOINER_TAG_CONTEXT, key)`.
        tag: [u8; TAG_LEN],
        /// The joiner's nonce, an input of the verification string.
        nonce: [u8; NONCE_LEN],
    },
    /// The joiner's user answered: `true` only after the host's `Accepted`.
    Decide {
        /// Whether the joiner's user accepted.
        accept: bool,
    },
}

/// A frame from host to joiner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PairResponse {
    /// The host's SPAKE2 message and confirmation tag (the answer to `Hello`).
    Challenge {
        /// SPAKE2 side A's message.
        spake: [u8; SPAKE_LEN],
        /// `derive_key(HOST_TAG_CONTEXT, key)`.
        tag: [u8; TAG_LEN],
    },
    /// The host's user accepted (the answer to `Confirm`); nothing is granted yet.
    Accepted,
    /// Paired (the answer to an accepting `Decide`): the clients both sides now share, with
    /// read and write rights both ways.
    Welcome {
        /// Client paths.
        clients: Vec<Vec<u8>>,
        /// Version 3 only (and always there): the remotes the host shares, sealed
        /// ([`super::remotes`]); `None` in version 2.
        remotes: Option<Vec<u8>>,
    },
    /// Refused; nothing was granted on the host.
    Refused {
        /// Why.
        reason: PairRefusal,
    },
}

impl PairRequest {
    /// Encodes the frame in version 2.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        self.encode_as(PAIR_VERSION)
    }

    /// Encodes the frame in `version` (2 or 3: the same bytes after the version byte).
    pub fn encode_as(&self, version: u8) -> Result<Vec<u8>, Error> {
        check_version(version)?;
        let mut w = Writer::with_capacity(72);
        w.u8(version);
        match self {
            Self::Hello {
                nameplate,
                spake,
                commitment,
            } => {
                w.u8(TAG_HELLO);
                w.raw(&nameplate.to_le_bytes());
                w.raw(spake);
                w.raw(commitment);
            }
            Self::Confirm { tag, nonce } => {
                w.u8(TAG_CONFIRM);
                w.raw(tag);
                w.raw(nonce);
            }
            Self::Decide { accept } => {
                w.u8(TAG_DECIDE);
                w.u8(u8::from(*accept));
            }
        }
        Ok(w.into_bytes())
    }

    /// Decodes one version 2 frame.
    pub fn decode(frame: &[u8]) -> Result<Self, Error> {
        only_v2(Self::decode_any(frame)?)
    }

    /// Decodes one frame of version 2 or 3, with its version.
    pub fn decode_any(frame: &[u8]) -> Result<(u8, Self), Error> {
        let mut r = Reader::new(frame);
        let (version, tag) = header(&mut r)?;
        let msg = match tag {
            TAG_HELLO => Self::Hello {
                nameplate: r.u16()?,
                spake: r.array()?,
                commitment: r.array()?,
            },
            TAG_CONFIRM => Self::Confirm {
                tag: r.array()?,
                nonce: r.array()?,
            },
            TAG_DECIDE => Self::Decide { accept: r.bool()? },
            _ => return Err(Error::Malformed("unknown pairing request tag")),
        };
        r.finish()?;
        Ok((version, msg))
    }
}

impl PairResponse {
    /// Encodes the frame in version 2.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        self.encode_as(PAIR_VERSION)
    }

    /// Encodes the frame in `version`: 2, or 3, where `Welcome` carries the sealed remotes
    /// (and must, as a version 2 one must not).
    pub fn encode_as(&self, version: u8) -> Result<Vec<u8>, Error> {
        check_version(version)?;
        let mut w = Writer::with_capacity(72);
        w.u8(version);
        match self {
            Self::Challenge { spake, tag } => {
                w.u8(TAG_CHALLENGE);
                w.raw(spake);
                w.raw(tag);
            }
            Self::Accepted => w.u8(TAG_ACCEPTED),
            Self::Welcome { clients, remotes } => {
                if remotes.is_some() != (version == PAIR_VERSION_3) {
                    return Err(Error::Malformed(
                        "a version 3 welcome carries sealed remotes, a version 2 one none",
                    ));
                }
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
                if let Some(sealed) = remotes {
                    w.checked_bytes_u32(sealed, MAX_SEALED_REMOTES_LEN, "sealed remotes too long")?;
                }
            }
            Self::Refused { reason } => {
                w.u8(TAG_REFUSED);
                w.u8(reason.to_byte());
            }
        }
        Ok(w.into_bytes())
    }

    /// Decodes one version 2 frame.
    pub fn decode(frame: &[u8]) -> Result<Self, Error> {
        only_v2(Self::decode_any(frame)?)
    }

    /// Decodes one frame of version 2 or 3, with its version.
    pub fn decode_any(frame: &[u8]) -> Result<(u8, Self), Error> {
        let mut r = Reader::new(frame);
        let (version, tag) = header(&mut r)?;
        let msg = match tag {
            TAG_CHALLENGE => Self::Challenge {
                spake: r.array()?,
                tag: r.array()?,
            },
            TAG_ACCEPTED => Self::Accepted,
            TAG_WELCOME => {
                let n = r.count(MAX_SELECTION_ITEMS, 3, "too many clients")?;
                let mut clients = Vec::with_capacity(n);
                for _ in 0..n {
                    clients.push(r.path()?.to_vec());
                }
                let remotes = if version == PAIR_VERSION_3 {
                    Some(
                        r.bytes_u32(MAX_SEALED_REMOTES_LEN, "sealed remotes")?
                            .to_vec(),
                    )
                } else {
                    None
                };
                Self::Welcome { clients, remotes }
            }
            TAG_REFUSED => Self::Refused {
                reason: PairRefusal::from_byte(r.u8()?),
            },
            _ => return Err(Error::Malformed("unknown pairing response tag")),
        };
        r.finish()?;
        Ok((version, msg))
    }
}

/// Fails for a version other than 2 and 3.
fn check_version(version: u8) -> Result<(), Error> {
    if version == PAIR_VERSION || version == PAIR_VERSION_3 {
        Ok(())
    } else {
        Err(Error::UnsupportedVersion(version))
    }
}

/// A version 2 frame, or the error of another version.
fn only_v2<T>((version, frame): (u8, T)) -> Result<T, Error> {
    if version == PAIR_VERSION {
        Ok(frame)
    } else {
        Err(Error::UnsupportedVersion(version))
    }
}

/// Reads the version byte (2 or 3) and the tag.
fn header(r: &mut Reader<'_>) -> Result<(u8, u8), Error> {
    let version = r.u8()?;
    check_version(version)?;
    Ok((version, r.u8()?))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn requests() -> impl Strategy<Value = PairRequest> {
        prop_oneof![
            (
                any::<u16>(),
                any::<[u8; SPAKE_LEN]>(),
                any::<[u8; TAG_LEN]>()
            )
                .prop_map(|(nameplate, spake, commitment)| PairRequest::Hello {
                    nameplate,
                    spake,
                    commitment,
                }),
            (any::<[u8; TAG_LEN]>(), any::<[u8; NONCE_LEN]>())
                .prop_map(|(tag, nonce)| PairRequest::Confirm { tag, nonce }),
            any::<bool>().prop_map(|accept| PairRequest::Decide { accept }),
        ]
    }

    fn responses() -> impl Strategy<Value = PairResponse> {
        let path = proptest::collection::vec(any::<u8>(), 1..20);
        prop_oneof![
            (any::<[u8; SPAKE_LEN]>(), any::<[u8; TAG_LEN]>())
                .prop_map(|(spake, tag)| PairResponse::Challenge { spake, tag }),
            Just(PairResponse::Accepted),
            proptest::collection::vec(path, 0..4).prop_map(|clients| PairResponse::Welcome {
                clients,
                remotes: None
            }),
            any::<u8>().prop_map(|b| PairResponse::Refused {
                reason: PairRefusal::from_byte(b),
            }),
        ]
    }

    proptest! {
        #[test]
        fn requests_round_trip(frame in requests()) {
            let bytes = frame.encode().unwrap();
            prop_assert_eq!(PairRequest::decode(&bytes).unwrap(), frame);
        }

        /// What the fuzz target asserts: whatever decodes, re-encodes to the same bytes.
        #[test]
        fn decoded_bytes_re_encode_exactly(
            mut bytes in proptest::collection::vec(any::<u8>(), 0..80),
            tag in prop_oneof![Just(0x01u8), Just(0x02), Just(0x03), Just(0x81), Just(0x82),
                Just(0x83), Just(0x84)],
        ) {
            bytes.splice(0..0, [PAIR_VERSION, tag]);
            for len in 0..=bytes.len() {
                let prefix = &bytes[..len];
                if let Ok(r) = PairRequest::decode(prefix) {
                    prop_assert_eq!(r.encode().unwrap(), prefix);
                }
                if let Ok(r) = PairResponse::decode(prefix) {
                    prop_assert_eq!(r.encode().unwrap(), prefix);
                }
            }
        }

        #[test]
        fn responses_round_trip(frame in responses()) {
            let bytes = frame.encode().unwrap();
            let decoded = PairResponse::decode(&bytes).unwrap();
            prop_assert_eq!(decoded.encode().unwrap(), bytes);
        }
    }

    /// The bytes of every frame, as `docs/pairing.md` gives them.
    #[test]
    fn golden_bytes_and_lengths() {
        let hello = PairRequest::Hello {
            nameplate: 42,
            spake: [0xaa; SPAKE_LEN],
            commitment: [0xbb; TAG_LEN],
        }
        .encode()
        .unwrap();
        assert_eq!(hello.len(), 2 + 2 + SPAKE_LEN + TAG_LEN);
        assert_eq!(hello[..4], [0x02, 0x01, 42, 0]);
        assert_eq!(hello[4..4 + SPAKE_LEN], [0xaa; SPAKE_LEN]);
        assert_eq!(hello[4 + SPAKE_LEN..], [0xbb; TAG_LEN]);
        let confirm = PairRequest::Confirm {
            tag: [1; TAG_LEN],
            nonce: [2; NONCE_LEN],
        }
        .encode()
        .unwrap();
        assert_eq!(confirm.len(), 2 + TAG_LEN + NONCE_LEN);
        assert_eq!(confirm[..3], [0x02, 0x02, 1]);
        assert_eq!(confirm[2 + TAG_LEN], 2);
        for (accept, byte) in [(false, 0), (true, 1)] {
            let decide = PairRequest::Decide { accept }.encode().unwrap();
            assert_eq!(decide, [0x02, 0x03, byte]);
        }
        let challenge = PairResponse::Challenge {
            spake: [3; SPAKE_LEN],
            tag: [4; TAG_LEN],
        }
        .encode()
        .unwrap();
        assert_eq!(challenge.len(), 2 + SPAKE_LEN + TAG_LEN);
        assert_eq!(challenge[..3], [0x02, 0x81, 3]);
        assert_eq!(PairResponse::Accepted.encode().unwrap(), [0x02, 0x84]);
        let welcome = PairResponse::Welcome {
            clients: vec![b"alice".to_vec()],
            remotes: None,
        };
        assert_eq!(
            welcome.encode().unwrap(),
            [0x02, 0x82, 1, 0, 0, 0, 5, 0, b'a', b'l', b'i', b'c', b'e']
        );
        let refused = PairResponse::Refused {
            reason: PairRefusal::Declined,
        };
        assert_eq!(refused.encode().unwrap(), [0x02, 0x83, 5]);
    }

    /// Version 3 frames are version 2's with another version byte, but `Welcome`, which must
    /// carry the sealed remotes (and a version 2 one must not); each decoder keeps its version.
    #[test]
    fn version_3_frames() {
        let decide = PairRequest::Decide { accept: true };
        assert_eq!(decide.encode_as(PAIR_VERSION_3).unwrap(), [3, 0x03, 1]);
        assert_eq!(
            PairRequest::decode_any(&[3, 0x03, 1]).unwrap(),
            (3, decide.clone())
        );
        assert_eq!(PairRequest::decode_any(&[2, 0x03, 1]).unwrap(), (2, decide));
        assert!(matches!(
            PairRequest::decode(&[3, 0x03, 1]),
            Err(Error::UnsupportedVersion(3))
        ));
        let bare = PairResponse::Welcome {
            clients: vec![b"alice".to_vec()],
            remotes: None,
        };
        let sealed = PairResponse::Welcome {
            clients: vec![b"alice".to_vec()],
            remotes: Some(vec![9; 40]),
        };
        assert!(bare.encode_as(PAIR_VERSION_3).is_err());
        assert!(sealed.encode().is_err());
        let bytes = sealed.encode_as(PAIR_VERSION_3).unwrap();
        assert_eq!(bytes.len(), 2 + 4 + 2 + 5 + 4 + 40);
        assert_eq!(bytes[13..17], 40u32.to_le_bytes());
        assert_eq!(PairResponse::decode_any(&bytes).unwrap(), (3, sealed));
        assert!(PairRequest::encode_as(&PairRequest::Decide { accept: true }, 4).is_err());
    }

    #[test]
    fn garbage_and_other_versions_are_refused() {
        let frames = [
            PairResponse::Welcome {
                clients: vec![b"a".to_vec(), b"bb".to_vec()],
                remotes: None,
            },
            PairResponse::Refused {
                reason: PairRefusal::Expired,
            },
        ];
        for f in frames {
            assert_eq!(PairResponse::decode(&f.encode().unwrap()).unwrap(), f);
        }
        // Version 1 frames (`/redoubt/pair/1`) are not read any more.
        let v1_refused = [1, 0x83, 1];
        assert!(matches!(
            PairResponse::decode(&v1_refused),
            Err(Error::UnsupportedVersion(1))
        ));
        assert!(PairRequest::decode(&[2, 1, 0]).is_err());
        assert!(PairRequest::decode(&[2, 3, 2]).is_err(), "a flag is 0 or 1");
        assert!(PairRequest::decode(&[2, 3, 1, 0]).is_err(), "trailing byte");
        assert!(
            PairResponse::decode(&[2, 0x84, 0]).is_err(),
            "trailing byte"
        );
        assert!(PairResponse::decode(&[2, 0x82, 255, 255, 255, 255]).is_err());
    }
}
