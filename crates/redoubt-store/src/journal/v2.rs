//! Journal event schema version 2: version 1's event, with each record's lineage (its parent
//! and history, `docs/vault-model.md`) after it.
//!
//! It reuses version 1 whole, by importing it: its types ([`Event`], [`RecordChange`],
//! [`GrantChange`]), its encoding of everything but the lineage, its caps and checks, and its
//! `apply` functions. `docs/journal-format.md` specifies every byte:
//!
//! ```text
//! event   = schema version (u16, 2) ‖ v1 length (u32) ‖ v1 event ‖ lineage × record count
//! v1 event = the event as version 1 encodes it (schema version 1, the record changes
//!            without their lineage)
//! lineage = parent flag ‖ [parent] ‖ history count (u8) ‖ history versions
//!           (redoubt_vault::codec::lineage), one per record change, in order
//! hash    = BLAKE3-derive_key("redoubt journal v2 event hash", event)
//! ```
//!
//! Commits write version 2 only when a record they wrote carries lineage; otherwise they still
//! write version 1, byte for byte. `tests/vectors/journal-v2-events.txt` pins this version.

use redoubt_vault::{
    AccessTable, Instance,
    codec::{Reader, Writer, lineage},
};
use zeroize::Zeroizing;

use super::v1::{self, LAYOUT, MAX_EVENT_LEN};
pub use super::v1::{Event, GrantChange, RecordChange};
use crate::Error;

/// The schema version of this module's events.
pub const SCHEMA_VERSION: u16 = 2;
/// BLAKE3 key-derivation label of the event hash.
pub const HASH_LABEL: &str = "redoubt journal v2 event hash";
/// Bytes version 2 adds before the version 1 event: its schema version and the v1 length.
pub const WRAPPER_LEN: usize = 2 + 4;

const _: () = assert!(redoubt_crypto::is_versioned(HASH_LABEL));

/// The bytes one record change takes in a version 2 event (its version 1 encoding and its
/// lineage), saturating.
pub fn change_len(change: &RecordChange) -> usize {
    (2 + change.client.len()).saturating_add(lineage::encoded_record_len(LAYOUT, &change.record))
}

/// The exact encoded length of `event`, saturating.
pub fn encoded_len(event: &Event) -> usize {
    let lineage = event.records.iter().fold(0usize, |n, c| {
        n.saturating_add(lineage::encoded_len(&c.record))
    });
    WRAPPER_LEN
        .saturating_add(v1::encoded_len(event))
        .saturating_add(lineage)
}

/// Whether `event` needs version 2: some record it wrote carries lineage.
pub fn needed(event: &Event) -> bool {
    event.records.iter().any(|c| c.record.has_lineage())
}

/// The canonical plaintext of `event`, wiped when dropped. Refuses what version 1 refuses, and
/// an event over [`MAX_EVENT_LEN`] in all, before writing anything.
pub fn encode(event: &Event) -> Result<Zeroizing<Vec<u8>>, Error> {
    let len = encoded_len(event);
    if len > MAX_EVENT_LEN {
        return Err(Error::Malformed("journal event too large"));
    }
    let inner = v1::encode(event)?;
    let mut w = Writer::<Error>::secret(len);
    w.u16(SCHEMA_VERSION);
    w.checked_bytes_u32(&inner, MAX_EVENT_LEN, "journal event too large")?;
    for change in &event.records {
        lineage::encode(&mut w, &change.record);
    }
    debug_assert_eq!(w.len(), len, "encoded_len is exact");
    Ok(w.into_secret())
}

/// Decodes one event's plaintext, refusing more than [`MAX_EVENT_LEN`] bytes (before reading
/// anything), another schema version, a version 1 part that version 1 refuses, a lineage the
/// vault refuses (a count over its cap or the bytes left, a history not canonical), and
/// trailing bytes. An event that decodes re-encodes to the same bytes.
pub fn decode(bytes: &[u8]) -> Result<Event, Error> {
    if bytes.len() > MAX_EVENT_LEN {
        return Err(Error::Malformed("journal event too large"));
    }
    let mut r = Reader::<Error>::new(bytes);
    if r.u16()? != SCHEMA_VERSION {
        return Err(Error::Malformed("not a version 2 journal event"));
    }
    let inner = r.bytes_u32(MAX_EVENT_LEN, "journal event too large")?;
    let mut event = v1::decode(inner)?;
    for change in &mut event.records {
        change.record = lineage::decode(&mut r, change.record.clone())?;
    }
    r.finish()?;
    Ok(event)
}

/// The hash of an event: BLAKE3 in key-derivation mode under [`HASH_LABEL`] over its
/// canonical plaintext.
pub fn hash(plaintext: &[u8]) -> [u8; 32] {
    blake3::derive_key(HASH_LABEL, plaintext)
}

/// Applies `event`'s record changes onto `state`, as version 1 does (each record, lineage
/// included, replaces what its location held).
pub fn apply(state: &mut Instance, event: &Event) -> Result<(), Error> {
    v1::apply(state, event)
}

/// Applies `event`'s grant changes onto `access`, as version 1 does.
pub fn apply_grants(access: &mut AccessTable, event: &Event) -> Result<(), Error> {
    v1::apply_grants(access, event)
}

#[cfg(test)]
mod tests {
    use redoubt_vault::{Location, NodeId, Record, SecretValue, Stamp};

    use super::*;

    fn event() -> Event {
        let node = NodeId::from_bytes([7; 16]);
        let stamp = |wall_ms| Stamp {
            wall_ms,
            counter: 0,
            node,
        };
        let loc = Location::new("v", "r").unwrap();
        let first = Record::live(loc.clone(), stamp(1), SecretValue::new(b"a".to_vec())).unwrap();
        let second = Record::successor(loc, stamp(2), None, Some(&first)).unwrap();
        Event {
            seq: 2,
            parent: [3; 32],
            writer: node,
            wall_ms: 2,
            counter: 0,
            records: vec![
                RecordChange {
                    client: b"c".to_vec(),
                    record: first,
                },
                RecordChange {
                    client: b"c".to_vec(),
                    record: second,
                },
            ],
            grants: Vec::new(),
        }
    }

    #[test]
    fn an_event_round_trips_with_its_lineage() {
        let e = event();
        assert!(needed(&e));
        let bytes = encode(&e).unwrap();
        assert_eq!(bytes.len(), encoded_len(&e));
        assert_eq!(&bytes[..2], &[2, 0]);
        let back = decode(&bytes).unwrap();
        assert_eq!(back.records[1].record.hash(), e.records[1].record.hash());
        assert_eq!(back.records[1].record.history().len(), 1);
        assert_eq!(encode(&back).unwrap().as_slice(), bytes.as_slice());
        assert_ne!(hash(&bytes), v1::hash(&bytes));
        let mut state = Instance::new(NodeId::from_bytes([1; 16]));
        apply(&mut state, &back).unwrap();
        let rec = state
            .records(&redoubt_vault::ClientId::from_path(b"c"))
            .next()
            .unwrap();
        assert_eq!(rec.hash(), e.records[1].record.hash());
    }

    #[test]
    fn bad_events_are_refused() {
        let good = encode(&event()).unwrap();
        for cut in 0..good.len() {
            assert!(decode(&good[..cut]).is_err(), "cut {cut}");
        }
        assert!(decode(&[good.to_vec(), vec![0]].concat()).is_err());
        let mut v1 = good.to_vec();
        v1[0] = 1;
        assert!(decode(&v1).is_err());
        let mut long = good.to_vec();
        long[2..6].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&long).is_err());
        assert!(decode(&vec![2; MAX_EVENT_LEN + 1]).is_err());
    }
}
