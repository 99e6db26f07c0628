//! The pairing extension (`docs/control-protocol.md`, section "Pairing extension 1"): the
//! messages of `redoubt pair` through a running agent, a conversation in which the agent asks
//! and the command answers.
//!
//! Requests use opcodes `0x40`–`0x4f` and responses `0xc0`–`0xcf`, kept for pairing. Every list
//! is capped ([`MAX_CLIENTS`], [`MAX_ADDRS`]) and every field sized ([`MAX_NAME`],
//! [`MAX_CODE`], [`MAX_PEER`]) on encode and on decode, the counts checked before anything is
//! collected.

use zeroize::Zeroizing;

use super::Reader;
use crate::{Error, SecretBytes, frame};

/// The most clients one offer shares (as many as a pairing `Welcome` carries).
pub const MAX_CLIENTS: usize = 1024;
/// The longest client name, and the longest address (bytes).
pub const MAX_NAME: usize = 1024;
/// The most addresses a join is given, or an offer listens on.
pub const MAX_ADDRS: usize = 64;
/// The longest code or QR payload (bytes).
pub const MAX_CODE: usize = 4096;
/// The longest peer id text (bytes).
pub const MAX_PEER: usize = 128;

/// What a command asks of the agent to pair.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PairRequest {
    /// Open an offer on the agent's node: answered by [`PairResponse::Offered`] (an item),
    /// then, once a device proved the code, [`PairResponse::Verify`] (final), to which the
    /// command answers with [`PairRequest::Confirm`].
    Offer {
        /// How long the code stays valid, in seconds (at least 1).
        ttl_secs: u64,
        /// The clients to share (empty: every client the vault holds).
        clients: Vec<Vec<u8>>,
    },
    /// Join the device showing `code`: answered by [`PairResponse::Verify`] once it proved
    /// the code, to which the command answers with [`PairRequest::Confirm`].
    Join {
        /// The code (`NN-DDDD-DDDD`) or the QR payload: a secret.
        code: SecretBytes,
        /// Look for the device by mDNS when no address is given.
        discover: bool,
        /// Where the device is (text multiaddrs ending with `/p2p/PEER_ID`).
        addrs: Vec<String>,
    },
    /// The user's answer to the last [`PairResponse::Verify`] on this connection.
    Confirm(bool),
}

/// What the agent answers in a pairing.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PairResponse {
    /// The offer is open (an item): what to show.
    Offered {
        /// The one-time code: a secret.
        code: SecretBytes,
        /// The QR payload (it holds the code): a secret.
        payload: SecretBytes,
        /// Where the agent's node listens.
        listening: Vec<String>,
        /// The clients shared.
        clients: Vec<Vec<u8>>,
    },
    /// A device proved the code (final): show its peer id and the verification string, ask
    /// the user, and send [`PairRequest::Confirm`].
    Verify {
        /// The other device's peer id.
        peer: String,
        /// The verification string's value, below 10^6.
        check: u32,
    },
    /// Both users accepted and the grants are recorded (an item).
    Paired {
        /// The other device's peer id.
        peer: String,
        /// The clients it may now read and write.
        clients: Vec<Vec<u8>>,
    },
}

impl PairResponse {
    /// Whether more responses follow this one for the same request.
    pub fn is_item(&self) -> bool {
        matches!(self, Self::Offered { .. } | Self::Paired { .. })
    }
}

pub(super) mod op {
    pub(in super::super) const OFFER: u8 = 0x40;
    pub(in super::super) const JOIN: u8 = 0x41;
    pub(in super::super) const CONFIRM: u8 = 0x42;
    pub(in super::super) const OFFERED: u8 = 0xc0;
    pub(in super::super) const VERIFY: u8 = 0xc1;
    pub(in super::super) const PAIRED: u8 = 0xc2;
}

/// Whether `op` is a pairing request's opcode.
pub(super) fn is_request(op: u8) -> bool {
    (0x40..=0x4f).contains(&op)
}

/// Whether `op` is a pairing response's opcode.
pub(super) fn is_response(op: u8) -> bool {
    (0xc0..=0xcf).contains(&op)
}

/// The one check of every list and field, on both sides: `Fields` for a list over its cap,
/// `Field` for a field of the wrong size.
struct Caps {
    op: u8,
}

impl Caps {
    fn bad(&self, index: usize, what: &'static str) -> Error {
        Error::Field {
            op: self.op,
            index,
            what,
        }
    }

    fn list(&self, n: usize, max: usize, want: &'static str) -> Result<(), Error> {
        if n > max {
            return Err(Error::Fields {
                op: self.op,
                want,
                got: n,
            });
        }
        Ok(())
    }

    fn sized(
        &self,
        index: usize,
        f: &[u8],
        min: usize,
        max: usize,
        what: &'static str,
    ) -> Result<(), Error> {
        if f.len() < min || f.len() > max {
            return Err(self.bad(index, what));
        }
        Ok(())
    }

    /// Clients from field `from` on.
    fn clients(&self, from: usize, clients: &[impl AsRef<[u8]>]) -> Result<(), Error> {
        self.list(clients.len(), MAX_CLIENTS, "at most 1024 clients")?;
        for (i, c) in clients.iter().enumerate() {
            self.sized(from + i, c.as_ref(), 1, MAX_NAME, CLIENT)?;
        }
        Ok(())
    }

    /// Addresses from field `from` on.
    fn addrs(&self, from: usize, addrs: &[impl AsRef<[u8]>]) -> Result<(), Error> {
        self.list(addrs.len(), MAX_ADDRS, "at most 64 addresses")?;
        for (i, a) in addrs.iter().enumerate() {
            self.sized(from + i, a.as_ref(), 1, MAX_NAME, ADDR)?;
        }
        Ok(())
    }
}

const CLIENT: &str = "a client name of 1 to 1024 bytes";
const ADDR: &str = "an address of 1 to 1024 bytes";
const CODE: &str = "a code or payload of 1 to 4096 bytes";
const PEER: &str = "a peer id of 1 to 128 bytes";
const CHECK: &str = "a verification value below 1000000";

/// A pairing request as one frame; a list over its cap or a field of the wrong size is an
/// error, as on decode.
pub(super) fn encode_request(request: &PairRequest) -> Result<Zeroizing<Vec<u8>>, Error> {
    match request {
        PairRequest::Offer { ttl_secs, clients } => {
            let caps = Caps { op: op::OFFER };
            caps.clients(1, clients)?;
            let ttl = ttl_secs.to_be_bytes();
            if *ttl_secs == 0 {
                return Err(caps_ttl());
            }
            let mut f: Vec<&[u8]> = vec![&ttl];
            f.extend(clients.iter().map(Vec::as_slice));
            frame::encode(op::OFFER, &f)
        }
        PairRequest::Join {
            code,
            discover,
            addrs,
        } => {
            let caps = Caps { op: op::JOIN };
            caps.sized(0, code.expose(), 1, MAX_CODE, CODE)?;
            caps.addrs(2, addrs)?;
            let mut f: Vec<&[u8]> = vec![code.expose(), super::flag(*discover)];
            f.extend(addrs.iter().map(String::as_bytes));
            frame::encode(op::JOIN, &f)
        }
        PairRequest::Confirm(accept) => frame::encode(op::CONFIRM, &[super::flag(*accept)]),
    }
}

fn caps_ttl() -> Error {
    Error::Field {
        op: op::OFFER,
        index: 0,
        what: "a ttl of at least 1 s (an 8-byte integer)",
    }
}

/// A pairing response as one frame; caps as on decode.
pub(super) fn encode_response(response: &PairResponse) -> Result<Zeroizing<Vec<u8>>, Error> {
    match response {
        PairResponse::Offered {
            code,
            payload,
            listening,
            clients,
        } => {
            let caps = Caps { op: op::OFFERED };
            caps.sized(0, code.expose(), 1, MAX_CODE, CODE)?;
            caps.sized(1, payload.expose(), 1, MAX_CODE, CODE)?;
            caps.addrs(3, listening)?;
            caps.clients(3 + listening.len(), clients)?;
            // At most MAX_ADDRS, so it fits a u32.
            let n = (listening.len() as u32).to_be_bytes();
            let mut f: Vec<&[u8]> = vec![code.expose(), payload.expose(), &n];
            f.extend(listening.iter().map(String::as_bytes));
            f.extend(clients.iter().map(Vec::as_slice));
            frame::encode(op::OFFERED, &f)
        }
        PairResponse::Verify { peer, check } => {
            let caps = Caps { op: op::VERIFY };
            caps.sized(0, peer.as_bytes(), 1, MAX_PEER, PEER)?;
            if *check >= 1_000_000 {
                return Err(caps.bad(1, CHECK));
            }
            frame::encode(op::VERIFY, &[peer.as_bytes(), &check.to_be_bytes()])
        }
        PairResponse::Paired { peer, clients } => {
            let caps = Caps { op: op::PAIRED };
            caps.sized(0, peer.as_bytes(), 1, MAX_PEER, PEER)?;
            caps.clients(1, clients)?;
            let mut f: Vec<&[u8]> = vec![peer.as_bytes()];
            f.extend(clients.iter().map(Vec::as_slice));
            frame::encode(op::PAIRED, &f)
        }
    }
}

/// A pairing request from a message whose opcode [`is_request`].
pub(super) fn decode_request(r: &Reader<'_>) -> Result<PairRequest, Error> {
    let caps = Caps { op: r.op };
    Ok(match r.op {
        op::OFFER => {
            r.count(1, 1 + MAX_CLIENTS, "1 to 1025 (ttl, clients)")?;
            let ttl_secs = r.u64(0)?;
            if ttl_secs == 0 {
                return Err(caps_ttl());
            }
            let fields = &r.fields[1..];
            caps.clients(1, fields)?;
            PairRequest::Offer {
                ttl_secs,
                clients: fields.iter().map(|c| c.to_vec()).collect(),
            }
        }
        op::JOIN => {
            r.count(2, 2 + MAX_ADDRS, "2 to 66 (code, discover, addresses)")?;
            caps.sized(0, r.fields[0], 1, MAX_CODE, CODE)?;
            let discover = r.flag(1)?;
            caps.addrs(2, &r.fields[2..])?;
            let addrs = (2..r.fields.len())
                .map(|i| r.text(i))
                .collect::<Result<_, _>>()?;
            PairRequest::Join {
                code: SecretBytes::new(r.bytes(0)),
                discover,
                addrs,
            }
        }
        op::CONFIRM => {
            r.exactly(1, "1 (accept)")?;
            PairRequest::Confirm(r.flag(0)?)
        }
        other => return Err(Error::Opcode(other)),
    })
}

/// A pairing response from a message whose opcode [`is_response`].
pub(super) fn decode_response(r: &Reader<'_>) -> Result<PairResponse, Error> {
    let caps = Caps { op: r.op };
    Ok(match r.op {
        op::OFFERED => {
            r.count(
                3,
                3 + MAX_ADDRS + MAX_CLIENTS,
                "3 or more (code, payload, n, n addresses, clients)",
            )?;
            caps.sized(0, r.fields[0], 1, MAX_CODE, CODE)?;
            caps.sized(1, r.fields[1], 1, MAX_CODE, CODE)?;
            let n = r.u32(2)? as usize;
            if n > MAX_ADDRS || 3 + n > r.fields.len() {
                return Err(caps.bad(2, "an address count of at most 64, within the message"));
            }
            caps.addrs(3, &r.fields[3..3 + n])?;
            caps.clients(3 + n, &r.fields[3 + n..])?;
            PairResponse::Offered {
                code: SecretBytes::new(r.bytes(0)),
                payload: SecretBytes::new(r.bytes(1)),
                listening: (3..3 + n).map(|i| r.text(i)).collect::<Result<_, _>>()?,
                clients: r.fields[3 + n..].iter().map(|c| c.to_vec()).collect(),
            }
        }
        op::VERIFY => {
            r.exactly(2, "2 (peer, check)")?;
            caps.sized(0, r.fields[0], 1, MAX_PEER, PEER)?;
            let check = r.u32(1)?;
            if check >= 1_000_000 {
                return Err(caps.bad(1, CHECK));
            }
            PairResponse::Verify {
                peer: r.text(0)?,
                check,
            }
        }
        op::PAIRED => {
            r.count(1, 1 + MAX_CLIENTS, "1 to 1025 (peer, clients)")?;
            caps.sized(0, r.fields[0], 1, MAX_PEER, PEER)?;
            caps.clients(1, &r.fields[1..])?;
            PairResponse::Paired {
                peer: r.text(0)?,
                clients: r.fields[1..].iter().map(|c| c.to_vec()).collect(),
            }
        }
        other => return Err(Error::Opcode(other)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Request, Response, decode_request as dreq, decode_response as dres};

    fn payload(bytes: &[u8]) -> &[u8] {
        frame::split(bytes).unwrap().unwrap().0
    }

    fn requests() -> Vec<PairRequest> {
        vec![
            PairRequest::Offer {
                ttl_secs: 300,
                clients: vec![],
            },
            PairRequest::Offer {
                ttl_secs: 1,
                clients: vec![b"alice".to_vec(), b"bob".to_vec()],
            },
            PairRequest::Join {
                code: SecretBytes::new(b"42-7315-0986".to_vec()),
                discover: false,
                addrs: vec!["/ip4/127.0.0.1/tcp/1/p2p/12D3KooW".into()],
            },
            PairRequest::Join {
                code: SecretBytes::new(b"42-7315-0986".to_vec()),
                discover: true,
                addrs: vec![],
            },
            PairRequest::Confirm(true),
            PairRequest::Confirm(false),
        ]
    }

    fn responses() -> Vec<PairResponse> {
        vec![
            PairResponse::Offered {
                code: SecretBytes::new(b"42-7315-0986".to_vec()),
                payload: SecretBytes::new(b"redoubt-pair:1:42-7315-0986:P:A".to_vec()),
                listening: vec!["/ip4/127.0.0.1/tcp/1/p2p/P".into()],
                clients: vec![b"alice".to_vec()],
            },
            PairResponse::Offered {
                code: SecretBytes::new(b"c".to_vec()),
                payload: SecretBytes::new(b"p".to_vec()),
                listening: vec![],
                clients: vec![],
            },
            PairResponse::Verify {
                peer: "12D3KooW".into(),
                check: 999_999,
            },
            PairResponse::Paired {
                peer: "12D3KooW".into(),
                clients: vec![b"alice".to_vec(), b"bob".to_vec()],
            },
        ]
    }

    #[test]
    fn every_pairing_message_round_trips_and_is_only_what_it_is() {
        for r in requests() {
            let bytes = super::super::encode_request(&Request::Pair(r.clone())).unwrap();
            assert_eq!(dreq(payload(&bytes)).unwrap(), Request::Pair(r.clone()));
            assert!(dres(payload(&bytes)).is_err(), "{r:?} is no response");
        }
        for r in responses() {
            let bytes = super::super::encode_response(&Response::Pair(r.clone())).unwrap();
            let back = dres(payload(&bytes)).unwrap();
            assert_eq!(back, Response::Pair(r.clone()));
            assert_eq!(back.is_item(), !matches!(r, PairResponse::Verify { .. }));
            assert!(dreq(payload(&bytes)).is_err(), "{r:?} is no request");
        }
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let all = format!("{:?} {:?}", requests(), responses());
        assert!(!all.contains("7315"), "{all}");
    }

    #[test]
    fn caps_are_checked_on_both_sides() {
        let many = vec![b"c".to_vec(); MAX_CLIENTS + 1];
        let over = PairRequest::Offer {
            ttl_secs: 1,
            clients: many.clone(),
        };
        assert!(matches!(
            super::super::encode_request(&Request::Pair(over)),
            Err(Error::Fields { op: 0x40, .. })
        ));
        let ttl = 1u64.to_be_bytes();
        let refs: Vec<&[u8]> = std::iter::once(&ttl[..])
            .chain(many.iter().map(Vec::as_slice))
            .collect();
        let raw = frame::encode(op::OFFER, &refs).unwrap();
        assert!(matches!(
            dreq(payload(&raw)),
            Err(Error::Fields { op: 0x40, .. })
        ));
        let long = vec![b'c'; MAX_NAME + 1];
        let raw = frame::encode(op::PAIRED, &[b"p", &long]).unwrap();
        assert!(matches!(
            dres(payload(&raw)),
            Err(Error::Field { index: 1, .. })
        ));
        let raw = frame::encode(op::OFFER, &[&0u64.to_be_bytes()]).unwrap();
        assert!(matches!(
            dreq(payload(&raw)),
            Err(Error::Field { index: 0, .. })
        ));
        // An address count past the end of the message.
        let raw = frame::encode(op::OFFERED, &[b"c", b"p", &2u32.to_be_bytes(), b"a"]).unwrap();
        assert!(matches!(
            dres(payload(&raw)),
            Err(Error::Field { index: 2, .. })
        ));
        let raw = frame::encode(op::VERIFY, &[b"p", &1_000_000u32.to_be_bytes()]).unwrap();
        assert!(matches!(
            dres(payload(&raw)),
            Err(Error::Field { index: 1, .. })
        ));
        let big = PairResponse::Verify {
            peer: "p".into(),
            check: 1_000_000,
        };
        assert!(super::super::encode_response(&Response::Pair(big)).is_err());
        let empty = frame::encode(op::JOIN, &[b"", &[0]]).unwrap();
        assert!(matches!(
            dreq(payload(&empty)),
            Err(Error::Field { index: 0, .. })
        ));
        assert_eq!(dreq(&[0x4f]), Err(Error::Opcode(0x4f)));
        assert_eq!(dres(&[0xcf]), Err(Error::Opcode(0xcf)));
    }
}
