//! What a vault keeps about one remote, sealed in its store's `remotes` table
//! ([`redoubt_store::Store::set_remote`]): the URL, the chosen clients, the storage key, this
//! device's own chain and head version, what was uploaded, and per other device what was seen.
//!
//! ```text
//! state   = version (u8, 1) ‖ url (u16 ‖ bytes) ‖ all clients (u8) ‖ client count (u16)
//!           ‖ (u16 ‖ client path) × count ‖ storage key (32)
//!           ‖ own chain ‖ head e-tag (opt) ‖ head version (opt) ‖ uploaded through (u64)
//!           ‖ pending (u8 flag ‖ chain ‖ uploaded through (u64))
//!           ‖ device count (u32) ‖ (device id (16) ‖ chain ‖ fingerprint (opt)) × count
//!           ‖ base seq (u64) ‖ base written at, ms (u64) ‖ deleted below seq (u64)
//!           ‖ base bytes (u64) ‖ bytes since the base (u64) ‖ base unfinished (u8)
//!           ‖ (chain ‖ mark (u64)) × PACK_LEVELS
//! chain   = seq (u64) ‖ latest hash (32) ‖ chain hash (32)
//! opt     = u8 flag ‖ (u16 ‖ bytes)
//! ```
//!
//! Version 2 added the six fields after the devices (compaction); a version 1 state reads as
//! one with no base and nothing deleted. Version 3 added, per pack level, where the next pack
//! of that level starts (the segment before its run and the journal mark then); an older state
//! reads as one whose runs start after its own head.

use std::collections::BTreeMap;

use redoubt_vault::{
    MAX_PATH_LEN,
    codec::{Reader, Writer},
};
use zeroize::Zeroizing;

use crate::{
    Error,
    crypto::{DeviceId, StorageKey},
    format::Head,
};

const STATE_VERSION: u8 = 3;
/// Pack levels: a level-`l` pack stands for a run of `every^l` segments (`Compaction::pack`).
pub const PACK_LEVELS: usize = 2;
/// The most clients one remote may be limited to.
pub const MAX_CLIENTS: usize = 1024;
/// The most other devices a remote state tracks.
pub const MAX_DEVICES: usize = 16_384;
const MAX_STRING: usize = 4096;

/// A remote as this vault knows it.
#[derive(Clone, Debug)]
pub struct RemoteState {
    /// The URL it was added or joined with.
    pub url: String,
    /// The clients that travel through it; `None`: every client.
    pub clients: Option<Vec<Vec<u8>>>,
    /// The storage key.
    pub key: StorageKey,
    /// This device's chain as its head on the storage names it.
    pub own: Head,
    /// The head object's e-tag after this device last wrote it.
    pub head_etag: Option<String>,
    /// The head object's version (GCS generation) after this device last wrote it.
    pub head_version: Option<String>,
    /// The last local journal sequence number carried (or deliberately skipped: merges of what
    /// came from this remote).
    pub uploaded: u64,
    /// A segment uploaded whose head update may not have landed: the head it leads to and the
    /// uploaded mark to take once it has.
    pub pending: Option<(Head, u64)>,
    /// Per other device: the chain seen, and the listing fingerprint of its head then.
    pub seen: BTreeMap<DeviceId, (Head, Option<String>)>,
    /// This device's latest compaction base: its sequence number (0: none).
    pub base: u64,
    /// When that base was written, milliseconds since the Unix epoch.
    pub base_at_ms: u64,
    /// This device's segments below this sequence number were deleted (0: none).
    pub deleted_below: u64,
    /// The size on the storage of the latest base (all its parts).
    pub base_bytes: u64,
    /// Bytes of segments this device wrote since its latest base.
    pub since_base_bytes: u64,
    /// A base in several parts was begun and not finished: the next sync writes a whole one.
    pub base_open: bool,
    /// Per pack level (1, 2): the segment just before the run the next pack of that level
    /// stands for, and the journal mark uploaded through then.
    pub packs: [(Head, u64); PACK_LEVELS],
}

impl RemoteState {
    /// A remote state with nothing seen or uploaded yet.
    pub fn new(url: String, clients: Option<Vec<Vec<u8>>>, key: StorageKey) -> Self {
        Self {
            url,
            clients,
            key,
            own: empty_head(),
            head_etag: None,
            head_version: None,
            uploaded: 0,
            pending: None,
            seen: BTreeMap::new(),
            base: 0,
            base_at_ms: 0,
            deleted_below: 0,
            base_bytes: 0,
            since_base_bytes: 0,
            base_open: false,
            packs: [(empty_head(), 0); PACK_LEVELS],
        }
    }

    /// Starts every pack level's run after the own head (after a base, or a state that kept no
    /// runs).
    pub fn restart_packs(&mut self) {
        self.packs = [(self.own, self.uploaded); PACK_LEVELS];
    }

    /// Whether records of `client` travel through this remote.
    pub fn chooses(&self, client: &[u8]) -> bool {
        self.clients
            .as_ref()
            .is_none_or(|c| c.iter().any(|x| x == client))
    }

    /// The state's bytes, wiped when dropped (they hold the storage key).
    pub fn encode(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        let mut w = Writer::<Error>::secret(256 + self.seen.len() * 96);
        w.u8(STATE_VERSION);
        w.checked_bytes_u16(self.url.as_bytes(), MAX_STRING, "URL too long")?;
        match &self.clients {
            None => {
                w.u8(1);
                w.u16(0);
            }
            Some(clients) => {
                w.u8(0);
                if clients.len() > MAX_CLIENTS {
                    return Err(Error::State("too many clients"));
                }
                w.u16(clients.len() as u16);
                for c in clients {
                    w.checked_bytes_u16(c, MAX_PATH_LEN, "client path too long")?;
                }
            }
        }
        w.raw(self.key.expose());
        chain_out(&mut w, &self.own);
        opt_out(&mut w, self.head_etag.as_deref())?;
        opt_out(&mut w, self.head_version.as_deref())?;
        w.u64(self.uploaded);
        match &self.pending {
            None => w.u8(0),
            Some((head, uploaded)) => {
                w.u8(1);
                chain_out(&mut w, head);
                w.u64(*uploaded);
            }
        }
        w.checked_count(self.seen.len(), MAX_DEVICES, "too many devices")?;
        for (device, (head, fingerprint)) in &self.seen {
            w.raw(&device.0);
            chain_out(&mut w, head);
            opt_out(&mut w, fingerprint.as_deref())?;
        }
        w.u64(self.base);
        w.u64(self.base_at_ms);
        w.u64(self.deleted_below);
        w.u64(self.base_bytes);
        w.u64(self.since_base_bytes);
        w.u8(u8::from(self.base_open));
        for (head, mark) in &self.packs {
            chain_out(&mut w, head);
            w.u64(*mark);
        }
        Ok(w.into_secret())
    }

    /// Decodes what [`Self::encode`] made.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let bad = |_| Error::State("truncated or over a cap");
        let mut r = Reader::<Error>::new(bytes);
        let version = r.u8().map_err(bad)?;
        if !(1..=STATE_VERSION).contains(&version) {
            return Err(Error::State("unknown state version"));
        }
        let url = string(r.bytes_u16(MAX_STRING, "URL").map_err(bad)?)?;
        let all = r.u8().map_err(bad)?;
        let n = usize::from(r.u16().map_err(bad)?);
        if n > MAX_CLIENTS {
            return Err(Error::State("too many clients"));
        }
        let clients = match all {
            1 if n == 0 => None,
            0 => {
                let mut c = Vec::with_capacity(n.min(r.remaining() / 3));
                for _ in 0..n {
                    c.push(r.path().map_err(bad)?.to_vec());
                }
                Some(c)
            }
            _ => return Err(Error::State("bad client flag")),
        };
        let key = StorageKey::from_bytes(r.array().map_err(bad)?);
        let own = chain_in(&mut r).map_err(bad)?;
        let head_etag = opt_in(&mut r)?;
        let head_version = opt_in(&mut r)?;
        let uploaded = r.u64().map_err(bad)?;
        let pending = match r.u8().map_err(bad)? {
            0 => None,
            1 => Some((chain_in(&mut r).map_err(bad)?, r.u64().map_err(bad)?)),
            _ => return Err(Error::State("bad pending flag")),
        };
        let count = r.count(MAX_DEVICES, 16 + 72 + 1, "devices").map_err(bad)?;
        let mut seen = BTreeMap::new();
        for _ in 0..count {
            let device = DeviceId(r.array().map_err(bad)?);
            // Strictly ascending, as `encode` writes them: one encoding per state.
            if seen
                .last_key_value()
                .is_some_and(|(last, _)| *last >= device)
            {
                return Err(Error::State("devices out of order or repeated"));
            }
            let head = chain_in(&mut r).map_err(bad)?;
            let fingerprint = opt_in(&mut r)?;
            seen.insert(device, (head, fingerprint));
        }
        let mut marks = [0u64; 5];
        let mut base_open = false;
        if version != 1 {
            for m in &mut marks {
                *m = r.u64().map_err(bad)?;
            }
            base_open = match r.u8().map_err(bad)? {
                0 => false,
                1 => true,
                _ => return Err(Error::State("bad base flag")),
            };
        }
        let [
            base,
            base_at_ms,
            deleted_below,
            base_bytes,
            since_base_bytes,
        ] = marks;
        let mut packs = [(own, uploaded); PACK_LEVELS];
        if version >= 3 {
            for p in &mut packs {
                *p = (chain_in(&mut r).map_err(bad)?, r.u64().map_err(bad)?);
            }
        }
        r.finish().map_err(bad)?;
        Ok(Self {
            url,
            clients,
            key,
            own,
            head_etag,
            head_version,
            uploaded,
            pending,
            seen,
            base,
            base_at_ms,
            deleted_below,
            base_bytes,
            since_base_bytes,
            base_open,
            packs,
        })
    }
}

/// The head of a device with no segment yet.
pub fn empty_head() -> Head {
    Head {
        seq: 0,
        latest: [0; 32],
        chain: [0; 32],
    }
}

fn chain_out(w: &mut Writer<Error>, h: &Head) {
    w.u64(h.seq);
    w.raw(&h.latest);
    w.raw(&h.chain);
}

fn chain_in(r: &mut Reader<'_, Error>) -> Result<Head, Error> {
    Ok(Head {
        seq: r.u64()?,
        latest: r.array()?,
        chain: r.array()?,
    })
}

fn opt_out(w: &mut Writer<Error>, s: Option<&str>) -> Result<(), Error> {
    match s {
        None => w.u8(0),
        Some(s) => {
            w.u8(1);
            w.checked_bytes_u16(s.as_bytes(), MAX_STRING, "string too long")?;
        }
    }
    Ok(())
}

fn opt_in(r: &mut Reader<'_, Error>) -> Result<Option<String>, Error> {
    let bad = |_| Error::State("truncated or over a cap");
    match r.u8().map_err(bad)? {
        0 => Ok(None),
        1 => Ok(Some(string(
            r.bytes_u16(MAX_STRING, "string").map_err(bad)?,
        )?)),
        _ => Err(Error::State("bad option flag")),
    }
}

fn string(b: &[u8]) -> Result<String, Error> {
    String::from_utf8(b.to_vec()).map_err(|_| Error::State("a string is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes version 3 added at the end.
    const V3_TAIL: usize = PACK_LEVELS * (72 + 8);
    /// The bytes version 2 added before them.
    const V2_TAIL: usize = 5 * 8 + 1 + V3_TAIL;

    #[test]
    fn state_round_trips() {
        let mut s = RemoteState::new(
            "s3://b/p".into(),
            Some(vec![b"alice".to_vec()]),
            StorageKey::from_bytes([5; 32]),
        );
        s.own = Head {
            seq: 3,
            latest: [1; 32],
            chain: [2; 32],
        };
        s.head_etag = Some("\"e\"".into());
        s.uploaded = 9;
        s.pending = Some((s.own, 11));
        s.seen.insert(DeviceId([4; 16]), (s.own, Some("fp".into())));
        s.base = 3;
        s.base_at_ms = 1_700_000_000_000;
        s.deleted_below = 2;
        s.base_bytes = 4096;
        s.since_base_bytes = 554;
        s.base_open = true;
        s.packs[1] = (s.own, 7);
        let bytes = s.encode().unwrap();
        let back = RemoteState::decode(&bytes).unwrap();
        assert_eq!(back.encode().unwrap(), bytes);
        assert!(back.chooses(b"alice") && !back.chooses(b"bob"));
        assert!(RemoteState::decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(format!("{back:?}").contains("StorageKey(..)"));
        assert_eq!(
            (back.base, back.deleted_below, back.base_open),
            (3, 2, true)
        );
        // A version 1 state (before compaction): no base, nothing deleted.
        let mut v1 = bytes[..bytes.len() - V2_TAIL].to_vec();
        v1[0] = 1;
        let old = RemoteState::decode(&v1).unwrap();
        assert_eq!((old.base, old.base_at_ms, old.deleted_below), (0, 0, 0));
        assert_eq!(old.own, s.own);
        // A version 2 state (before packs): every run starts after its own head.
        let mut v2 = bytes[..bytes.len() - V3_TAIL].to_vec();
        v2[0] = 2;
        let old = RemoteState::decode(&v2).unwrap();
        assert_eq!(old.packs, [(s.own, 9); PACK_LEVELS]);
        assert_eq!(back.packs, s.packs);
        let mut future = bytes.to_vec();
        future[0] = 4;
        assert!(RemoteState::decode(&future).is_err());
    }

    #[test]
    fn repeated_or_unsorted_devices_are_refused() {
        let mut s = RemoteState::new("file:///r".into(), None, StorageKey::from_bytes([5; 32]));
        let head = empty_head();
        s.seen.insert(DeviceId([4; 16]), (head, None));
        let one = s.encode().unwrap();
        // The state with one device, its device entry written twice and the count raised.
        let tail = &one[one.len() - V2_TAIL..];
        let entry = &one[one.len() - V2_TAIL - (16 + 72 + 1)..one.len() - V2_TAIL];
        let count_at = one.len() - V2_TAIL - entry.len() - 4;
        let mut twice = one[..count_at].to_vec();
        twice.extend_from_slice(&2u32.to_le_bytes());
        twice.extend_from_slice(entry);
        twice.extend_from_slice(entry);
        twice.extend_from_slice(tail);
        assert!(matches!(
            RemoteState::decode(&twice),
            Err(Error::State("devices out of order or repeated"))
        ));
    }
}
