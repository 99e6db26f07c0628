//! A record's lineage (its current version's parent and its history), as formats that carry
//! it append it after the record in a [`RecordLayout`]:
//!
//! ```text
//! lineage = parent flag (u8: 0 none, 1 present) [‖ parent hash (32)]
//!           ‖ history count (u8, at most MAX_HISTORY) ‖ history version × count
//! history version = wall_ms (u64 LE) ‖ counter (u32 LE) ‖ node (16)
//!           ‖ flag (u8: 0 live ‖ u32 LE length ‖ value; 1 tombstone)
//!           ‖ parent flag (u8) [‖ parent hash (32)]
//! ```
//!
//! History versions are newest first and canonical ([`crate::history::check_canonical`]);
//! a decoder refuses anything else, so a record has exactly one encoding. The record's
//! location and current stamp and value come from the record layout before it.

use super::{CodecError, Reader, Writer, record::RecordLayout};
use crate::{
    Error, MAX_HISTORY, NodeId, Record, SecretValue, Stamp, Version, codec::record::STAMP_LEN,
    history::MAX_HISTORY_VALUE_BYTES,
};

/// The smallest encoded history version: a parentless tombstone.
pub const MIN_HISTORY_VERSION_LEN: usize = STAMP_LEN + 1 + 1;
/// An encoded history version's bytes besides its value: stamp, flag, value length, parent.
pub const HISTORY_VERSION_OVERHEAD: usize = STAMP_LEN + 1 + 4 + 1 + 32;
/// The largest encoded lineage: a parent and a full history, its values at their budget.
pub const MAX_LINEAGE_LEN: usize =
    1 + 32 + 1 + MAX_HISTORY * HISTORY_VERSION_OVERHEAD + MAX_HISTORY_VALUE_BYTES;

fn parent_len(parent: Option<&[u8; 32]>) -> usize {
    1 + if parent.is_some() { 32 } else { 0 }
}

/// The exact encoded length of `record`'s lineage.
pub fn encoded_len(record: &Record) -> usize {
    let history: usize = record
        .history()
        .iter()
        .map(|v| STAMP_LEN + 1 + v.value().map_or(0, |x| 4 + x.len()) + parent_len(v.parent()))
        .sum();
    parent_len(record.parent()) + 1 + history
}

fn write_parent<E: CodecError>(w: &mut Writer<E>, parent: Option<&[u8; 32]>) {
    match parent {
        Some(p) => {
            w.u8(1);
            w.raw(p);
        }
        None => w.u8(0),
    }
}

fn read_parent<E: CodecError>(r: &mut Reader<'_, E>) -> Result<Option<[u8; 32]>, E> {
    Ok(if r.bool()? { Some(r.array()?) } else { None })
}

/// Appends `record`'s lineage. Infallible: a [`Record`]'s history is canonical (at most
/// [`MAX_HISTORY`] versions) by construction.
pub fn encode<E: CodecError>(w: &mut Writer<E>, record: &Record) {
    write_parent(w, record.parent());
    // MAX_HISTORY (8) fits in a byte.
    w.u8(u8::try_from(record.history().len()).unwrap_or(u8::MAX));
    for v in record.history() {
        let stamp = v.stamp();
        w.u64(stamp.wall_ms);
        w.u32(stamp.counter);
        w.raw(stamp.node.as_bytes());
        match v.value() {
            Some(value) => {
                w.u8(0);
                w.bytes_u32(value.expose());
            }
            None => w.u8(1),
        }
        write_parent(w, v.parent());
    }
}

/// Reads the lineage of `plain`, a record just decoded without it, and returns the whole
/// record; refuses a history count over [`MAX_HISTORY`] or over what the bytes left can
/// hold, values past [`MAX_HISTORY_VALUE_BYTES`] in all (each checked before it is copied),
/// an unknown flag and a history that is not canonical.
pub fn decode<E: CodecError + From<Error>>(
    r: &mut Reader<'_, E>,
    plain: Record,
) -> Result<Record, E> {
    let parent = read_parent(r)?;
    let n = usize::from(r.u8()?);
    if n > MAX_HISTORY || n.saturating_mul(MIN_HISTORY_VERSION_LEN) > r.remaining() {
        return Err(E::malformed("history count over its cap or the bytes left"));
    }
    let mut history = Vec::with_capacity(n);
    let mut budget = MAX_HISTORY_VALUE_BYTES;
    for _ in 0..n {
        let stamp = Stamp {
            wall_ms: r.u64()?,
            counter: r.u32()?,
            node: NodeId::from_bytes(r.array()?),
        };
        let value = match r.u8()? {
            0 => {
                let value = r.bytes_u32(budget, "history values over their byte budget")?;
                budget -= value.len();
                Some(SecretValue::new(value.to_vec()))
            }
            1 => None,
            _ => return Err(E::malformed("unknown history version flag")),
        };
        let parent = read_parent(r)?;
        history.push(Version::new(stamp, value, parent)?);
    }
    let current = Version::new(*plain.stamp(), plain.value().cloned(), parent)?;
    Ok(Record::from_lineage(
        plain.location().clone(),
        current,
        history,
    )?)
}

/// Appends `record` in `layout`, then its lineage.
pub fn encode_record<E: CodecError>(layout: RecordLayout, w: &mut Writer<E>, record: &Record) {
    layout.encode(w, record);
    encode(w, record);
}

/// Reads a record in `layout`, then its lineage.
pub fn decode_record<E: CodecError + From<Error>>(
    layout: RecordLayout,
    r: &mut Reader<'_, E>,
) -> Result<Record, E> {
    let plain = layout.decode(r)?;
    decode(r, plain)
}

/// The exact length of [`encode_record`]'s output.
pub fn encoded_record_len(layout: RecordLayout, record: &Record) -> usize {
    layout.encoded_len(record) + encoded_len(record)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::Location;

    type W = Writer<Error>;

    fn stamp(wall_ms: u64, node: u8) -> Stamp {
        Stamp {
            wall_ms,
            counter: 2,
            node: NodeId::from_bytes([node; 16]),
        }
    }

    fn chain(values: &[Option<&[u8]>]) -> Record {
        let loc = Location::new("v", "r").unwrap();
        let mut r: Option<Record> = None;
        for (k, v) in values.iter().enumerate() {
            let value = v.map(|v| SecretValue::new(v.to_vec()));
            r = Some(
                Record::successor(loc.clone(), stamp(10 + k as u64, 1), value, r.as_ref()).unwrap(),
            );
        }
        r.unwrap()
    }

    fn round_trip(layout: RecordLayout, record: &Record) -> Result<Record, Error> {
        let mut w = W::new();
        encode_record(layout, &mut w, record);
        let bytes = w.into_bytes();
        assert_eq!(bytes.len(), encoded_record_len(layout, record));
        let mut r = Reader::<Error>::new(&bytes);
        let back = decode_record(layout, &mut r)?;
        r.finish()?;
        Ok(back)
    }

    #[test]
    fn the_lineage_tail_is_pinned() {
        let plain = chain(&[Some(b"a")]);
        let mut w = W::new();
        encode(&mut w, &plain);
        assert_eq!(w.into_bytes(), [0, 0], "no parent, no history");
        let two = chain(&[Some(b"a"), None]);
        let mut w = W::new();
        encode(&mut w, &two);
        let bytes = w.into_bytes();
        let mut expected = vec![1];
        expected.extend_from_slice(plain.version_hash());
        expected.push(1);
        expected.extend_from_slice(&10u64.to_le_bytes());
        expected.extend_from_slice(&2u32.to_le_bytes());
        expected.extend_from_slice(&[1; 16]);
        expected.extend_from_slice(&[0, 1, 0, 0, 0, b'a', 0]);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn lineage_round_trips_and_bad_tails_are_refused() {
        let r = chain(&[Some(b"a"), Some(b"bb"), None, Some(b"")]);
        for layout in [RecordLayout::Wire1, RecordLayout::File1] {
            let back = round_trip(layout, &r).unwrap();
            assert_eq!(back.hash(), r.hash());
            assert_eq!(back.history().len(), 3);
        }
        let mut w = W::new();
        encode_record(RecordLayout::File1, &mut w, &r);
        let good = w.into_bytes();
        for cut in 0..good.len() {
            let mut rd = Reader::<Error>::new(&good[..cut]);
            let ok = decode_record(RecordLayout::File1, &mut rd).and_then(|_| rd.finish());
            assert!(ok.is_err(), "cut {cut}");
        }
        // The history count byte sits after the flag and the parent.
        let at = RecordLayout::File1.encoded_len(&r) + 33;
        let mut bad = good.clone();
        bad[at] = 9;
        let mut rd = Reader::<Error>::new(&bad);
        assert!(decode_record(RecordLayout::File1, &mut rd).is_err());
        let mut bad = good.clone();
        bad[at - 33] = 2;
        let mut rd = Reader::<Error>::new(&bad);
        assert!(decode_record(RecordLayout::File1, &mut rd).is_err());
    }

    proptest! {
        #[test]
        fn any_chain_round_trips(values in prop::collection::vec(
            prop::option::of(prop::collection::vec(any::<u8>(), 0..12)), 1..14)) {
            let values: Vec<Option<&[u8]>> = values.iter().map(|v| v.as_deref()).collect();
            let r = chain(&values);
            let back = round_trip(RecordLayout::File1, &r).unwrap();
            prop_assert_eq!(back.hash(), r.hash());
            prop_assert_eq!(back.parent(), r.parent());
        }
    }
}
