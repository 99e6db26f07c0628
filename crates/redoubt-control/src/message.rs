//! Typed requests (command to agent) and responses (agent to command), and their fields.
//!
//! Each request gets zero or more item responses ([`Response::Item`], [`Response::Grant`],
//! [`Response::Note`]) and then exactly one final response (any other).

use zeroize::Zeroizing;

pub use self::pair::{PairRequest, PairResponse};
use crate::{Error, SecretBytes, frame};

pub mod pair;

/// Where a secret is: its client, vault path and record path, as bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The client.
    pub client: Vec<u8>,
    /// The vault path in it.
    pub vault: Vec<u8>,
    /// The record path in that.
    pub record: Vec<u8>,
}

/// What a command asks of the agent.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Request {
    /// The agent's state, as a JSON text ([`Response::Text`]).
    Status,
    /// This node's peer id ([`Response::Text`]).
    Id,
    /// The live value at a target ([`Response::Value`]).
    Get(Target),
    /// Whether a live value is at a target ([`Response::Flag`]).
    Exists(Target),
    /// Store a value; without `force`, fails with [`ErrorKind::Exists`] over a live one.
    Put {
        /// Where.
        target: Target,
        /// What.
        value: SecretBytes,
        /// Replace a live value.
        force: bool,
    },
    /// Delete the live value at a target.
    Rm(Target),
    /// Every live record (of one client), one [`Response::Item`] each, then [`Response::Done`].
    List {
        /// Only this client.
        client: Option<Vec<u8>>,
    },
    /// Add rights for a peer on a client; answers the rights now held ([`Response::Grant`],
    /// then [`Response::Done`]).
    Allow {
        /// The peer's id (text).
        peer: String,
        /// The client.
        client: Vec<u8>,
        /// Let it pull.
        read: bool,
        /// Let it push.
        write: bool,
    },
    /// Revoke a peer's grants (on one client); answers how many ([`Response::Count`]).
    Deny {
        /// The peer's id (text).
        peer: String,
        /// Only this client.
        client: Option<Vec<u8>>,
    },
    /// Every grant, one [`Response::Grant`] each, then [`Response::Done`].
    Peers,
    /// The address book: one [`Response::Address`] per address of a paired peer (each peer's
    /// most recent first), then [`Response::Done`]. An extension of version 1: an agent
    /// without it answers `BadRequest`.
    Addresses,
    /// Sync with a peer: pull, then ask it to pull from us; [`Response::Note`]s, then
    /// [`Response::Synced`].
    Sync {
        /// The peer's address, ending with `/p2p/PEER_ID`.
        addr: String,
        /// 0 both ways, 1 pull only, 2 push only.
        directions: u8,
        /// Also sessions not bound to both peer ids.
        allow_unbound: bool,
        /// The client (`None`: every client the grants let move), and vault paths of it.
        client: Option<(Vec<u8>, Vec<Vec<u8>>)>,
    },
    /// Wipe the key from the agent's memory.
    Lock,
    /// Open the vault again with this password.
    Unlock {
        /// The vault's password.
        password: SecretBytes,
    },
    /// A record's versions as `redoubt history --json` prints them, never a value
    /// ([`Response::Text`], a JSON array).
    History(Target),
    /// Make an earlier version of a record current again as a new write, committed before the
    /// answer ([`Response::Text`], the line `redoubt restore` prints).
    Restore {
        /// Where.
        target: Target,
        /// The version: a hex prefix of its hash, at least 8 characters.
        version: String,
    },
    /// A step of `redoubt pair` through the agent (the pairing extension).
    Pair(PairRequest),
}

/// A merge report's six counts: added, updated, deleted, unchanged, conflicts resolved,
/// refused as too far ahead.
pub type Counts = [u64; 6];

/// What the agent answers.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Response {
    /// Done, nothing to say.
    Done,
    /// A secret value.
    Value(SecretBytes),
    /// Yes or no.
    Flag(bool),
    /// A count.
    Count(u64),
    /// A text (a peer id, a JSON status).
    Text(String),
    /// One listed record (an item).
    Item(ListItem),
    /// One grant (an item; [`Request::Allow`] answers one, then [`Response::Done`]).
    Grant {
        /// The peer's id.
        peer: String,
        /// The client.
        client: Vec<u8>,
        /// May pull.
        read: bool,
        /// May push.
        write: bool,
    },
    /// A note for the user's stderr (an item).
    Note(String),
    /// Where a paired peer was seen (an item; [`Request::Addresses`] answers them).
    Address {
        /// The peer's id.
        peer: String,
        /// The address, ending with `/p2p/PEER_ID`.
        addr: String,
        /// When it was last seen, Unix seconds.
        last_seen: u64,
    },
    /// What a sync merged each way (`None`: that direction was not run).
    Synced {
        /// Our pull.
        pulled: Option<Counts>,
        /// The peer's pull from us.
        pushed: Option<Counts>,
    },
    /// The request failed.
    Error {
        /// What kind of failure.
        kind: ErrorKind,
        /// For the user.
        message: String,
    },
    /// A step of `redoubt pair` through the agent (the pairing extension).
    Pair(PairResponse),
}

impl Response {
    /// Whether more responses follow this one for the same request.
    pub fn is_item(&self) -> bool {
        match self {
            Self::Pair(p) => p.is_item(),
            r => matches!(
                r,
                Self::Item(_) | Self::Note(_) | Self::Grant { .. } | Self::Address { .. }
            ),
        }
    }
}

/// One live record as `list` shows it; never its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListItem {
    /// Client, vault path, record path.
    pub names: [Vec<u8>; 3],
    /// The value's size in bytes.
    pub size: u32,
    /// The stamp's wall clock, ms since the Unix epoch.
    pub wall_ms: u64,
    /// The stamp's counter.
    pub counter: u32,
    /// The writer's node id, as text (hex).
    pub node: String,
}

/// Why a request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The agent is locked: `redoubt unlock` first.
    Locked = 1,
    /// The connection is not from the agent's user.
    Refused = 2,
    /// The request could not be read or makes no sense.
    BadRequest = 3,
    /// It failed (the message says why).
    Failed = 4,
    /// A live value is there already (a put without force).
    Exists = 5,
    /// Nothing is there.
    NotFound = 6,
}

impl ErrorKind {
    fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            1 => Self::Locked,
            2 => Self::Refused,
            3 => Self::BadRequest,
            4 => Self::Failed,
            5 => Self::Exists,
            6 => Self::NotFound,
            _ => return None,
        })
    }
}

mod op {
    pub(super) const STATUS: u8 = 0x01;
    pub(super) const ID: u8 = 0x02;
    pub(super) const GET: u8 = 0x03;
    pub(super) const EXISTS: u8 = 0x04;
    pub(super) const PUT: u8 = 0x05;
    pub(super) const RM: u8 = 0x06;
    pub(super) const LIST: u8 = 0x07;
    pub(super) const ALLOW: u8 = 0x08;
    pub(super) const DENY: u8 = 0x09;
    pub(super) const PEERS: u8 = 0x0a;
    pub(super) const LOCK: u8 = 0x0b;
    pub(super) const UNLOCK: u8 = 0x0c;
    pub(super) const SYNC: u8 = 0x0d;
    pub(super) const HISTORY: u8 = 0x0e;
    pub(super) const RESTORE: u8 = 0x0f;
    pub(super) const ADDRESSES: u8 = 0x10;
    pub(super) const DONE: u8 = 0x80;
    pub(super) const VALUE: u8 = 0x81;
    pub(super) const FLAG: u8 = 0x82;
    pub(super) const COUNT: u8 = 0x83;
    pub(super) const TEXT: u8 = 0x84;
    pub(super) const ITEM: u8 = 0x85;
    pub(super) const GRANT: u8 = 0x86;
    pub(super) const NOTE: u8 = 0x87;
    pub(super) const SYNCED: u8 = 0x88;
    pub(super) const ADDRESS: u8 = 0x89;
    pub(super) const ERROR: u8 = 0xff;
}

const fn flag(b: bool) -> &'static [u8] {
    if b { &[1] } else { &[0] }
}

/// A request as one frame.
pub fn encode_request(request: &Request) -> Result<Zeroizing<Vec<u8>>, Error> {
    let t = |t: &Target| [t.client.clone(), t.vault.clone(), t.record.clone()];
    match request {
        Request::Status => frame::encode(op::STATUS, &[]),
        Request::Id => frame::encode(op::ID, &[]),
        Request::Get(target) => frame::encode(op::GET, &refs(&t(target))),
        Request::Exists(target) => frame::encode(op::EXISTS, &refs(&t(target))),
        Request::Put {
            target,
            value,
            force,
        } => {
            let [c, v, r] = t(target);
            frame::encode(op::PUT, &[&c, &v, &r, value.expose(), flag(*force)])
        }
        Request::Rm(target) => frame::encode(op::RM, &refs(&t(target))),
        Request::List { client } => frame::encode(op::LIST, &opt(client.as_deref())),
        Request::Allow {
            peer,
            client,
            read,
            write,
        } => frame::encode(
            op::ALLOW,
            &[peer.as_bytes(), client, flag(*read), flag(*write)],
        ),
        Request::Deny { peer, client } => {
            let mut f = vec![peer.as_bytes()];
            f.extend(opt(client.as_deref()));
            frame::encode(op::DENY, &f)
        }
        Request::Peers => frame::encode(op::PEERS, &[]),
        Request::Addresses => frame::encode(op::ADDRESSES, &[]),
        Request::Lock => frame::encode(op::LOCK, &[]),
        Request::Unlock { password } => frame::encode(op::UNLOCK, &[password.expose()]),
        Request::Sync {
            addr,
            directions,
            allow_unbound,
            client,
        } => {
            let directions = [*directions];
            let mut f: Vec<&[u8]> = vec![addr.as_bytes(), &directions, flag(*allow_unbound)];
            if let Some((c, paths)) = client {
                f.push(c);
                f.extend(paths.iter().map(Vec::as_slice));
            }
            frame::encode(op::SYNC, &f)
        }
        Request::History(target) => frame::encode(op::HISTORY, &refs(&t(target))),
        Request::Restore { target, version } => {
            let [c, v, r] = t(target);
            frame::encode(op::RESTORE, &[&c, &v, &r, version.as_bytes()])
        }
        Request::Pair(p) => pair::encode_request(p),
    }
}

/// A response as one frame.
pub fn encode_response(response: &Response) -> Result<Zeroizing<Vec<u8>>, Error> {
    match response {
        Response::Done => frame::encode(op::DONE, &[]),
        Response::Value(v) => frame::encode(op::VALUE, &[v.expose()]),
        Response::Flag(b) => frame::encode(op::FLAG, &[flag(*b)]),
        Response::Count(n) => frame::encode(op::COUNT, &[&n.to_be_bytes()]),
        Response::Text(t) => frame::encode(op::TEXT, &[t.as_bytes()]),
        Response::Note(t) => frame::encode(op::NOTE, &[t.as_bytes()]),
        Response::Item(i) => frame::encode(
            op::ITEM,
            &[
                &i.names[0],
                &i.names[1],
                &i.names[2],
                &i.size.to_be_bytes(),
                &i.wall_ms.to_be_bytes(),
                &i.counter.to_be_bytes(),
                i.node.as_bytes(),
            ],
        ),
        Response::Grant {
            peer,
            client,
            read,
            write,
        } => frame::encode(
            op::GRANT,
            &[peer.as_bytes(), client, flag(*read), flag(*write)],
        ),
        Response::Address {
            peer,
            addr,
            last_seen,
        } => frame::encode(
            op::ADDRESS,
            &[peer.as_bytes(), addr.as_bytes(), &last_seen.to_be_bytes()],
        ),
        Response::Synced { pulled, pushed } => {
            let (a, b) = (counts_bytes(pulled), counts_bytes(pushed));
            frame::encode(op::SYNCED, &[&a, &b])
        }
        Response::Error { kind, message } => {
            frame::encode(op::ERROR, &[&[*kind as u8], message.as_bytes()])
        }
        Response::Pair(p) => pair::encode_response(p),
    }
}

fn refs(v: &[Vec<u8>; 3]) -> [&[u8]; 3] {
    [&v[0], &v[1], &v[2]]
}

fn opt(v: Option<&[u8]>) -> Vec<&[u8]> {
    v.into_iter().collect()
}

fn counts_bytes(c: &Option<Counts>) -> Vec<u8> {
    c.iter().flatten().flat_map(|n| n.to_be_bytes()).collect()
}

/// Reads typed fields of one message, naming the opcode and field in any error.
struct Reader<'a> {
    op: u8,
    fields: Vec<&'a [u8]>,
}

impl<'a> Reader<'a> {
    fn new(payload: &'a [u8]) -> Result<Self, Error> {
        let (op, fields) = frame::fields(payload)?;
        Ok(Self { op, fields })
    }

    fn count(&self, min: usize, max: usize, want: &'static str) -> Result<(), Error> {
        let got = self.fields.len();
        if got < min || got > max {
            return Err(Error::Fields {
                op: self.op,
                want,
                got,
            });
        }
        Ok(())
    }

    fn exactly(&self, n: usize, want: &'static str) -> Result<(), Error> {
        self.count(n, n, want)
    }

    fn bad(&self, index: usize, what: &'static str) -> Error {
        Error::Field {
            op: self.op,
            index,
            what,
        }
    }

    fn bytes(&self, i: usize) -> Vec<u8> {
        self.fields[i].to_vec()
    }

    fn text(&self, i: usize) -> Result<String, Error> {
        std::str::from_utf8(self.fields[i])
            .map(str::to_owned)
            .map_err(|_| self.bad(i, "UTF-8 text"))
    }

    fn flag(&self, i: usize) -> Result<bool, Error> {
        match self.fields[i] {
            [0] => Ok(false),
            [1] => Ok(true),
            _ => Err(self.bad(i, "a flag (one byte, 0 or 1)")),
        }
    }

    fn u32(&self, i: usize) -> Result<u32, Error> {
        <[u8; 4]>::try_from(self.fields[i])
            .map(u32::from_be_bytes)
            .map_err(|_| self.bad(i, "a 4-byte integer"))
    }

    fn u64(&self, i: usize) -> Result<u64, Error> {
        <[u8; 8]>::try_from(self.fields[i])
            .map(u64::from_be_bytes)
            .map_err(|_| self.bad(i, "an 8-byte integer"))
    }

    fn target(&self) -> Result<Target, Error> {
        self.exactly(3, "3 (client, vault, record)")?;
        Ok(Target {
            client: self.bytes(0),
            vault: self.bytes(1),
            record: self.bytes(2),
        })
    }

    fn counts(&self, i: usize) -> Result<Option<Counts>, Error> {
        match self.fields[i].len() {
            0 => Ok(None),
            48 => {
                let mut out = [0u64; 6];
                for (n, chunk) in out.iter_mut().zip(self.fields[i].chunks_exact(8)) {
                    *n = u64::from_be_bytes(chunk.try_into().map_err(|_| self.bad(i, "counts"))?);
                }
                Ok(Some(out))
            }
            _ => Err(self.bad(i, "empty or six 8-byte counts")),
        }
    }
}

/// A request from a frame's payload.
pub fn decode_request(payload: &[u8]) -> Result<Request, Error> {
    let r = Reader::new(payload)?;
    let none = |r: &Reader<'_>| r.exactly(0, "none");
    Ok(match r.op {
        op::STATUS => none(&r).map(|()| Request::Status)?,
        op::ID => none(&r).map(|()| Request::Id)?,
        op::GET => Request::Get(r.target()?),
        op::EXISTS => Request::Exists(r.target()?),
        op::RM => Request::Rm(r.target()?),
        op::PUT => {
            r.exactly(5, "5 (client, vault, record, value, force)")?;
            Request::Put {
                target: Target {
                    client: r.bytes(0),
                    vault: r.bytes(1),
                    record: r.bytes(2),
                },
                value: SecretBytes::new(r.bytes(3)),
                force: r.flag(4)?,
            }
        }
        op::LIST => {
            r.count(0, 1, "0 or 1 (client)")?;
            Request::List {
                client: (r.fields.len() == 1).then(|| r.bytes(0)),
            }
        }
        op::ALLOW => {
            r.exactly(4, "4 (peer, client, read, write)")?;
            Request::Allow {
                peer: r.text(0)?,
                client: r.bytes(1),
                read: r.flag(2)?,
                write: r.flag(3)?,
            }
        }
        op::DENY => {
            r.count(1, 2, "1 or 2 (peer, client)")?;
            Request::Deny {
                peer: r.text(0)?,
                client: (r.fields.len() == 2).then(|| r.bytes(1)),
            }
        }
        op::PEERS => none(&r).map(|()| Request::Peers)?,
        op::ADDRESSES => none(&r).map(|()| Request::Addresses)?,
        op::LOCK => none(&r).map(|()| Request::Lock)?,
        op::UNLOCK => {
            r.exactly(1, "1 (password)")?;
            Request::Unlock {
                password: SecretBytes::new(r.bytes(0)),
            }
        }
        op::SYNC => {
            r.count(
                3,
                usize::MAX,
                "3 or more (addr, directions, allow-unbound, client, paths)",
            )?;
            let directions = match r.fields[1] {
                [d @ 0..=2] => *d,
                _ => return Err(r.bad(1, "a direction (one byte, 0 to 2)")),
            };
            Request::Sync {
                addr: r.text(0)?,
                directions,
                allow_unbound: r.flag(2)?,
                client: (r.fields.len() > 3).then(|| {
                    (
                        r.bytes(3),
                        r.fields[4..].iter().map(|p| p.to_vec()).collect(),
                    )
                }),
            }
        }
        op::HISTORY => Request::History(r.target()?),
        op::RESTORE => {
            r.exactly(4, "4 (client, vault, record, version)")?;
            Request::Restore {
                target: Target {
                    client: r.bytes(0),
                    vault: r.bytes(1),
                    record: r.bytes(2),
                },
                version: r.text(3)?,
            }
        }
        p if pair::is_request(p) => Request::Pair(pair::decode_request(&r)?),
        other => return Err(Error::Opcode(other)),
    })
}

/// A response from a frame's payload.
pub fn decode_response(payload: &[u8]) -> Result<Response, Error> {
    let r = Reader::new(payload)?;
    Ok(match r.op {
        op::DONE => r.exactly(0, "none").map(|()| Response::Done)?,
        op::VALUE => {
            r.exactly(1, "1 (value)")?;
            Response::Value(SecretBytes::new(r.bytes(0)))
        }
        op::FLAG => {
            r.exactly(1, "1 (flag)")?;
            Response::Flag(r.flag(0)?)
        }
        op::COUNT => {
            r.exactly(1, "1 (count)")?;
            Response::Count(r.u64(0)?)
        }
        op::TEXT => {
            r.exactly(1, "1 (text)")?;
            Response::Text(r.text(0)?)
        }
        op::NOTE => {
            r.exactly(1, "1 (text)")?;
            Response::Note(r.text(0)?)
        }
        op::ITEM => {
            r.exactly(7, "7 (client, vault, record, size, wall ms, counter, node)")?;
            Response::Item(ListItem {
                names: [r.bytes(0), r.bytes(1), r.bytes(2)],
                size: r.u32(3)?,
                wall_ms: r.u64(4)?,
                counter: r.u32(5)?,
                node: r.text(6)?,
            })
        }
        op::GRANT => {
            r.exactly(4, "4 (peer, client, read, write)")?;
            Response::Grant {
                peer: r.text(0)?,
                client: r.bytes(1),
                read: r.flag(2)?,
                write: r.flag(3)?,
            }
        }
        op::ADDRESS => {
            r.exactly(3, "3 (peer, address, last seen)")?;
            Response::Address {
                peer: r.text(0)?,
                addr: r.text(1)?,
                last_seen: r.u64(2)?,
            }
        }
        op::SYNCED => {
            r.exactly(2, "2 (pulled, pushed)")?;
            Response::Synced {
                pulled: r.counts(0)?,
                pushed: r.counts(1)?,
            }
        }
        op::ERROR => {
            r.exactly(2, "2 (kind, message)")?;
            let kind = match r.fields[0] {
                [k] => ErrorKind::from_byte(*k),
                _ => None,
            }
            .ok_or_else(|| r.bad(0, "an error kind (one byte, 1 to 6)"))?;
            Response::Error {
                kind,
                message: r.text(1)?,
            }
        }
        p if pair::is_response(p) => Response::Pair(pair::decode_response(&r)?),
        other => return Err(Error::Opcode(other)),
    })
}

#[cfg(test)]
mod tests;
