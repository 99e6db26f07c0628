//! Journal event schema version 1: its types, encode, decode, hash and apply.
//!
//! **Frozen.** Stores released with this version hold events that must keep decoding, hashing
//! and applying exactly as they do here: never edit this module (pure refactorings aside, which
//! the vector `tests/vectors/journal-v1-events.txt` proves byte for byte). A version 2 lives in
//! `journal/v2.rs`, reuses what it keeps of this module by importing it, and adds its own
//! functions for what changes.
//!
//! `docs/journal-format.md` specifies every byte:
//!
//! ```text
//! event   = schema version (u16, 1) ‖ sequence (u64) ‖ parent (32) ‖ writer (16)
//!           ‖ wall_ms (u64) ‖ counter (u32)
//!           ‖ record count (u32) ‖ record change × count
//!           ‖ grant count (u32) ‖ grant change × count
//! record change = u16 ‖ client path ‖ record (RecordLayout::File1)
//! grant change  = u16 ‖ peer id ‖ u16 ‖ client path ‖ rights (u8; 0 = grant removed)
//! hash    = BLAKE3-derive_key("redoubt journal v1 event hash", event)
//! ```
//!
//! All integers little-endian. Every count and length is checked against its cap, and every
//! count against the bytes left, before anything is allocated.

use redoubt_vault::{
    AccessTable, Instance, MAX_PATH_LEN, MAX_PEER_ID_LEN, NodeId, Record, Rights,
    codec::{
        Reader, Writer,
        record::{RecordLayout, STAMP_LEN},
    },
};
use zeroize::Zeroizing;

use crate::Error;

/// The schema version of this module's events.
pub const SCHEMA_VERSION: u16 = 1;
/// BLAKE3 key-derivation label of the event hash.
pub const HASH_LABEL: &str = "redoubt journal v1 event hash";
/// The record layout inside a record change: the snapshot file's and the record envelope's.
pub const LAYOUT: RecordLayout = RecordLayout::File1;
/// Bytes before the record count: version, sequence, parent, writer, wall ms, counter.
pub const HEADER_LEN: usize = 2 + 8 + 32 + 16 + 8 + 4;
/// The largest encoded event, checked before encoding (a commit that would need more fails)
/// and before decoding: 256 MiB.
pub const MAX_EVENT_LEN: usize = 256 * 1024 * 1024;
/// The most record changes one event holds.
pub const MAX_RECORDS: usize = 1 << 20;
/// The most grant changes one event holds.
pub const MAX_GRANTS: usize = 1 << 16;
/// The smallest record change (one-byte client, vault and record paths, a tombstone).
const MIN_RECORD_CHANGE: usize = 2 + 1 + 2 + 1 + 2 + 1 + STAMP_LEN + 1;
/// The smallest grant change (one-byte peer id and client path).
const MIN_GRANT_CHANGE: usize = 2 + 1 + 2 + 1 + 1;

const _: () = assert!(redoubt_crypto::is_versioned(HASH_LABEL));

/// One commit of a store: what it wrote, by whom, at which point of the writer's clock.
///
/// `Debug` never shows a secret value (a [`Record`] prints its location, stamp and size).
#[derive(Clone, Debug)]
pub struct Event {
    /// The event's sequence number in its store's journal: 1 for the first, then one more
    /// for each commit.
    pub seq: u64,
    /// The hash of the previous event; all zero for the first event of a journal.
    pub parent: [u8; 32],
    /// The node that made the commit.
    pub writer: NodeId,
    /// The writer's clock at the commit, wall-clock ms: for a put or delete the new record's
    /// stamp; for a merge or a grant change the clock's last reading (they do not tick it).
    pub wall_ms: u64,
    /// The writer's clock at the commit, counter (with [`Self::wall_ms`]).
    pub counter: u32,
    /// The record versions the commit wrote, in order: each replaced its location's row.
    pub records: Vec<RecordChange>,
    /// The grants the commit changed, in order.
    pub grants: Vec<GrantChange>,
}

/// One record version an event wrote.
#[derive(Clone, Debug)]
pub struct RecordChange {
    /// The client path it belongs to.
    pub client: Vec<u8>,
    /// The version, live or a tombstone, as its row now holds it.
    pub record: Record,
}

/// One grant an event changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantChange {
    /// The peer id.
    pub peer: Vec<u8>,
    /// The client path.
    pub client: Vec<u8>,
    /// The rights the peer holds on the client from now on; none means the grant is removed.
    pub rights: Rights,
}

/// The exact encoded length of `event`, saturating (an event over the cap is refused).
pub fn encoded_len(event: &Event) -> usize {
    let records = event.records.iter().fold(0usize, |n, c| {
        n.saturating_add(2 + c.client.len() + LAYOUT.encoded_len(&c.record))
    });
    let grants = event.grants.iter().fold(0usize, |n, g| {
        n.saturating_add(2 + g.peer.len() + 2 + g.client.len() + 1)
    });
    (HEADER_LEN + 4 + 4)
        .saturating_add(records)
        .saturating_add(grants)
}

/// The canonical plaintext of `event`, wiped when dropped (it holds secret values). Refuses an
/// event over [`MAX_EVENT_LEN`], [`MAX_RECORDS`] or [`MAX_GRANTS`], a client path or peer id
/// out of its bounds, and unknown rights, before writing anything.
pub fn encode(event: &Event) -> Result<Zeroizing<Vec<u8>>, Error> {
    let len = encoded_len(event);
    if len > MAX_EVENT_LEN {
        return Err(Error::Malformed("journal event too large"));
    }
    let mut w = Writer::<Error>::secret(len);
    w.u16(SCHEMA_VERSION);
    w.raw(&event.seq.to_le_bytes());
    w.raw(&event.parent);
    w.raw(event.writer.as_bytes());
    w.u64(event.wall_ms);
    w.u32(event.counter);
    w.checked_count(event.records.len(), MAX_RECORDS, "too many record changes")?;
    for change in &event.records {
        check_path(&change.client)?;
        w.bytes_u16(&change.client);
        LAYOUT.encode(&mut w, &change.record);
    }
    w.checked_count(event.grants.len(), MAX_GRANTS, "too many grant changes")?;
    for grant in &event.grants {
        check_peer(&grant.peer)?;
        check_path(&grant.client)?;
        w.bytes_u16(&grant.peer);
        w.bytes_u16(&grant.client);
        w.u8(grant.rights.bits());
    }
    debug_assert_eq!(w.len(), len, "encoded_len is exact");
    Ok(w.into_secret())
}

/// Decodes one event's plaintext, refusing: more than [`MAX_EVENT_LEN`] bytes (before reading
/// anything), another schema version, a count over its cap or over what the bytes left can
/// hold, a path or peer id out of bounds, unknown rights or record flags, and trailing bytes.
/// An event that decodes re-encodes to the same bytes.
pub fn decode(bytes: &[u8]) -> Result<Event, Error> {
    if bytes.len() > MAX_EVENT_LEN {
        return Err(Error::Malformed("journal event too large"));
    }
    let mut r = Reader::<Error>::new(bytes);
    if r.u16()? != SCHEMA_VERSION {
        return Err(Error::Malformed("not a version 1 journal event"));
    }
    let seq = u64::from_le_bytes(r.array()?);
    let parent = r.array()?;
    let writer = NodeId::from_bytes(r.array()?);
    let wall_ms = r.u64()?;
    let counter = r.u32()?;
    let n = r.count(MAX_RECORDS, MIN_RECORD_CHANGE, "too many record changes")?;
    let mut records = Vec::with_capacity(n);
    for _ in 0..n {
        let client = r.path()?.to_vec();
        let record = LAYOUT.decode(&mut r)?;
        records.push(RecordChange { client, record });
    }
    let n = r.count(MAX_GRANTS, MIN_GRANT_CHANGE, "too many grant changes")?;
    let mut grants = Vec::with_capacity(n);
    for _ in 0..n {
        let peer = r.bytes_u16(MAX_PEER_ID_LEN, "peer id too long")?;
        check_peer(peer)?;
        let client = r.path()?.to_vec();
        let rights = Rights::from_bits(r.u8()?)
            .ok_or(Error::Malformed("grant change with unknown rights"))?;
        grants.push(GrantChange {
            peer: peer.to_vec(),
            client,
            rights,
        });
    }
    r.finish()?;
    Ok(Event {
        seq,
        parent,
        writer,
        wall_ms,
        counter,
        records,
        grants,
    })
}

/// The hash of an event: BLAKE3 in key-derivation mode under [`HASH_LABEL`] over its
/// canonical plaintext (what [`encode`] makes and [`decode`] reads). The next event names it
/// as its parent.
pub fn hash(plaintext: &[u8]) -> [u8; 32] {
    blake3::derive_key(HASH_LABEL, plaintext)
}

/// Applies `event`'s record changes onto `state`, the folded base state: each version
/// replaces whatever its location held, as the store's commit replaced the row (and the clock
/// moves past its stamp, as at a load). Applying every event after a base, in order, gives the
/// records the store holds after the last of them.
pub fn apply(state: &mut Instance, event: &Event) -> Result<(), Error> {
    for change in &event.records {
        state.restore(&change.client, change.record.clone())?;
    }
    Ok(())
}

/// Applies `event`'s grant changes onto `access`: each sets exactly the rights it names.
pub fn apply_grants(access: &mut AccessTable, event: &Event) -> Result<(), Error> {
    for grant in &event.grants {
        access.revoke(&grant.peer, Some(&grant.client));
        access.grant(&grant.peer, &grant.client, grant.rights)?;
    }
    Ok(())
}

fn check_path(path: &[u8]) -> Result<(), Error> {
    if path.is_empty() || path.len() > MAX_PATH_LEN {
        return Err(Error::Malformed("client path out of bounds"));
    }
    Ok(())
}

fn check_peer(peer: &[u8]) -> Result<(), Error> {
    if peer.is_empty() || peer.len() > MAX_PEER_ID_LEN {
        return Err(Error::Malformed("peer id out of bounds"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use redoubt_vault::{Location, SecretValue, Stamp};

    use super::*;

    fn event() -> Event {
        let node = NodeId::from_bytes([7; 16]);
        let stamp = Stamp {
            wall_ms: 0x0102_0304_0506_0708,
            counter: 9,
            node,
        };
        let loc = Location::new("v", "r").unwrap();
        Event {
            seq: 5,
            parent: [3; 32],
            writer: node,
            wall_ms: stamp.wall_ms,
            counter: 9,
            records: vec![
                RecordChange {
                    client: b"c".to_vec(),
                    record: Record::live(loc.clone(), stamp, SecretValue::new(b"ab".to_vec()))
                        .unwrap(),
                },
                RecordChange {
                    client: b"c".to_vec(),
                    record: Record::tombstone(loc, stamp),
                },
            ],
            grants: vec![GrantChange {
                peer: b"p".to_vec(),
                client: b"c".to_vec(),
                rights: Rights {
                    read: true,
                    write: false,
                },
            }],
        }
    }

    /// Golden bytes: version 1 may never change.
    #[test]
    fn the_layout_is_pinned() {
        let bytes = encode(&event()).unwrap();
        let mut want = vec![1, 0, 5, 0, 0, 0, 0, 0, 0, 0];
        want.extend([3; 32]);
        want.extend([7; 16]);
        want.extend([8, 7, 6, 5, 4, 3, 2, 1, 9, 0, 0, 0]);
        want.extend([2, 0, 0, 0]);
        let rec = |tail: &[u8]| {
            let mut r = vec![1, 0, b'c', 1, 0, b'v', 1, 0, b'r'];
            r.extend([8, 7, 6, 5, 4, 3, 2, 1, 9, 0, 0, 0]);
            r.extend([7; 16]);
            r.extend(tail);
            r
        };
        want.extend(rec(&[0, 2, 0, 0, 0, b'a', b'b']));
        want.extend(rec(&[1]));
        want.extend([1, 0, 0, 0, 1, 0, b'p', 1, 0, b'c', 1]);
        assert_eq!(bytes.as_slice(), want.as_slice());
        assert_eq!(encoded_len(&event()), want.len());
        assert_eq!(MIN_RECORD_CHANGE, rec(&[1]).len());
    }

    #[test]
    fn bad_events_are_refused_and_none_panics() {
        let good = encode(&event()).unwrap();
        assert!(decode(&good).is_ok());
        for cut in 0..good.len() {
            assert!(decode(&good[..cut]).is_err(), "cut {cut}");
        }
        assert!(decode(&[good.to_vec(), vec![0]].concat()).is_err());
        let mut v2 = good.to_vec();
        v2[0] = 2;
        assert!(matches!(
            decode(&v2),
            Err(Error::Malformed("not a version 1 journal event"))
        ));
        let mut many = good.to_vec();
        many[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode(&many),
            Err(Error::Malformed("too many record changes"))
        ));
        let mut rights = good.to_vec();
        *rights.last_mut().unwrap() = 4;
        assert!(decode(&rights).is_err());
        let huge = vec![0; MAX_EVENT_LEN + 1];
        assert!(matches!(
            decode(&huge),
            Err(Error::Malformed("journal event too large"))
        ));
    }

    #[test]
    fn apply_sets_records_and_grants() {
        let e = event();
        let mut state = Instance::new(NodeId::from_bytes([1; 16]));
        apply(&mut state, &e).unwrap();
        assert_eq!(state.len(), 1, "the tombstone replaced the live version");
        let mut access = AccessTable::default();
        apply_grants(&mut access, &e).unwrap();
        assert!(access.rights(b"p", b"c").read);
        let mut removed = e.clone();
        removed.grants[0].rights = Rights::default();
        apply_grants(&mut access, &removed).unwrap();
        assert!(access.is_empty());
    }

    proptest! {
        /// Every event round-trips at its exact length, and its hash is that of its bytes.
        #[test]
        fn round_trip_with_exact_length(
            seq in any::<u64>(),
            parent in any::<[u8; 32]>(),
            clock in any::<(u64, u32, [u8; 16])>(),
            records in prop::collection::vec(
                (
                    prop::collection::vec(any::<u8>(), 1..8),
                    prop::collection::vec(any::<u8>(), 1..8),
                    prop::option::of(prop::collection::vec(any::<u8>(), 0..40)),
                ),
                0..5,
            ),
            grants in prop::collection::vec(
                (prop::collection::vec(any::<u8>(), 1..65), 1..8usize, 0..4u8),
                0..3,
            ),
        ) {
            let node = NodeId::from_bytes(clock.2);
            let stamp = Stamp { wall_ms: clock.0, counter: clock.1, node };
            let e = Event {
                seq,
                parent,
                writer: node,
                wall_ms: clock.0,
                counter: clock.1,
                records: records
                    .into_iter()
                    .map(|(client, path, value)| RecordChange {
                        client: client.clone(),
                        record: Record::from_parts(
                            Location::new(client, path).unwrap(),
                            stamp,
                            value.map(SecretValue::new),
                        )
                        .unwrap(),
                    })
                    .collect(),
                grants: grants
                    .into_iter()
                    .map(|(peer, client, bits)| GrantChange {
                        peer,
                        client: vec![b'c'; client],
                        rights: Rights::from_bits(bits).unwrap(),
                    })
                    .collect(),
            };
            let bytes = encode(&e).unwrap();
            prop_assert_eq!(bytes.len(), encoded_len(&e));
            let back = decode(&bytes).unwrap();
            let again = encode(&back).unwrap();
            prop_assert_eq!(bytes.as_slice(), again.as_slice());
            prop_assert_eq!(hash(&bytes), hash(&again));
            prop_assert_eq!(back.grants, e.grants);
        }
    }
}
