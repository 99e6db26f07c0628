//! The one record encoding: a record's location, stamp and value (or tombstone), as the wire's
//! chunk entries and the snapshot file's body carry it.
//!
//! Both formats write the same fields in the same order:
//!
//! ```text
//! vault path (u16 LE length ‖ bytes) ‖ record path (u16 LE length ‖ bytes)
//! ‖ wall_ms (u64 LE) ‖ counter (u32 LE) ‖ node (16 bytes) ‖ flag (u8) ‖ value part
//! ```
//!
//! They were released with opposite flags and different tombstones, so each released format
//! keeps its own frozen [`RecordLayout`]:
//!
//! | layout                  | live record                     | tombstone                 |
//! |-------------------------|---------------------------------|---------------------------|
//! | [`RecordLayout::Wire1`] | `1` ‖ u32 LE length ‖ value     | `0` ‖ u32 LE `0`          |
//! | [`RecordLayout::File1`] | `0` ‖ u32 LE length ‖ value     | `1` (nothing after)       |
//!
//! `Wire1` is the chunk entry of sync protocol versions 1 to 3 (`docs/protocol.md`), `File1`
//! the record of snapshot format version 1 (`docs/snapshot-format.md`); the test vectors pin
//! both, and neither may change. Encoding and decoding, the caps (paths 1 to
//! [`MAX_PATH_LEN`](crate::MAX_PATH_LEN) bytes, values at most [`MAX_VALUE_LEN`]) and the
//! checks are shared; only the flag byte and the tombstone's value part differ.
//!
//! A future format version (the storage issue's database, or a protocol version 4) should not
//! add a third layout: it should adopt one of these two, `File1` being the shorter for
//! tombstones, and say so in its specification.

use super::{CodecError, Reader, Writer};
use crate::{Error, Location, NodeId, Record, SecretValue, Stamp, limits::MAX_VALUE_LEN};

/// Bytes of a stamp: wall clock (8), counter (4), node id (16).
pub const STAMP_LEN: usize = 8 + 4 + 16;

/// A released, frozen record layout: which flag byte marks a live record and what follows a
/// tombstone's flag. See the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordLayout {
    /// Sync protocol versions 1 to 3, inside a chunk entry: flag `1` live, then the value's u32
    /// length and the value; flag `0` a tombstone, then a u32 length of `0`.
    Wire1,
    /// Snapshot format version 1, inside the body: flag `0` live, then the value's u32 length
    /// and the value; flag `1` a tombstone, with nothing after it.
    File1,
}

impl RecordLayout {
    /// The flag byte of a live record.
    pub const fn live_flag(self) -> u8 {
        match self {
            Self::Wire1 => 1,
            Self::File1 => 0,
        }
    }

    /// The flag byte of a tombstone.
    pub const fn tombstone_flag(self) -> u8 {
        match self {
            Self::Wire1 => 0,
            Self::File1 => 1,
        }
    }

    /// Whether a tombstone's flag is followed by a (zero) u32 value length.
    pub const fn tombstone_has_length(self) -> bool {
        matches!(self, Self::Wire1)
    }

    /// The smallest encoded record (empty paths, a tombstone), the minimum a decoder counts
    /// per record against the bytes left before it allocates.
    pub const fn min_len(self) -> usize {
        2 + 2 + STAMP_LEN + 1 + if self.tombstone_has_length() { 4 } else { 0 }
    }

    /// The exact encoded length of `record` in this layout.
    pub fn encoded_len(self, record: &Record) -> usize {
        let location = record.location();
        let value = match record.value() {
            Some(v) => 4 + v.len(),
            None if self.tombstone_has_length() => 4,
            None => 0,
        };
        2 + location.vault_path().len() + 2 + location.record_path().len() + STAMP_LEN + 1 + value
    }

    /// Appends `record`. Infallible: a [`Location`]'s paths and a [`Record`]'s value are
    /// within their caps by construction, so every length fits its prefix.
    pub fn encode<E: CodecError>(self, w: &mut Writer<E>, record: &Record) {
        let location = record.location();
        w.bytes_u16(location.vault_path());
        w.bytes_u16(location.record_path());
        let stamp = record.stamp();
        w.u64(stamp.wall_ms);
        w.u32(stamp.counter);
        w.raw(stamp.node.as_bytes());
        match record.value() {
            Some(value) => {
                w.u8(self.live_flag());
                w.bytes_u32(value.expose());
            }
            None => {
                w.u8(self.tombstone_flag());
                if self.tombstone_has_length() {
                    w.u32(0);
                }
            }
        }
    }

    /// Reads one record, refusing (with `E`'s malformed error, or a vault rule as `E`) an
    /// empty or over-long path, an unknown flag, a value over [`MAX_VALUE_LEN`] (before
    /// allocating it) and, in [`Self::Wire1`], a tombstone with a nonzero length.
    pub fn decode<E: CodecError + From<Error>>(self, r: &mut Reader<'_, E>) -> Result<Record, E> {
        let vault = r.path()?.to_vec();
        let record = r.path()?.to_vec();
        let location = Location::new(vault, record)?;
        let stamp = Stamp {
            wall_ms: r.u64()?,
            counter: r.u32()?,
            node: NodeId::from_bytes(r.array()?),
        };
        let flag = r.u8()?;
        let value = if flag == self.live_flag() {
            let value = r.bytes_u32(MAX_VALUE_LEN, "secret value too long")?;
            Some(SecretValue::new(value.to_vec()))
        } else if flag == self.tombstone_flag() {
            if self.tombstone_has_length() && r.u32()? != 0 {
                return Err(E::malformed("tombstone with a value length"));
            }
            None
        } else {
            return Err(E::malformed("unknown record flag"));
        };
        Ok(Record::from_parts(location, stamp, value)?)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    type W = Writer<Error>;
    type R<'a> = Reader<'a, Error>;

    const LAYOUTS: [RecordLayout; 2] = [RecordLayout::Wire1, RecordLayout::File1];

    fn record(value: Option<&[u8]>) -> Record {
        let stamp = Stamp {
            wall_ms: 0x0102_0304_0506_0708,
            counter: 0x0a0b_0c0d,
            node: NodeId::from_bytes([0xee; 16]),
        };
        let location = Location::new("v", "rr").unwrap();
        Record::from_parts(location, stamp, value.map(|v| SecretValue::new(v.to_vec()))).unwrap()
    }

    fn encode(layout: RecordLayout, record: &Record) -> Vec<u8> {
        let mut w = W::new();
        layout.encode(&mut w, record);
        w.into_bytes()
    }

    fn decode(layout: RecordLayout, bytes: &[u8]) -> Result<Record, Error> {
        let mut r = R::new(bytes);
        let record = layout.decode(&mut r)?;
        r.finish()?;
        Ok(record)
    }

    /// The shared prefix of `record(..)`: paths "v" and "rr", then the stamp.
    fn prefix() -> Vec<u8> {
        let mut p = vec![1, 0, b'v', 2, 0, b'r', b'r'];
        p.extend_from_slice(&[8, 7, 6, 5, 4, 3, 2, 1, 0x0d, 0x0c, 0x0b, 0x0a]);
        p.extend_from_slice(&[0xee; 16]);
        p
    }

    /// Golden bytes pinning each released layout; these may never change.
    #[test]
    fn each_released_layout_is_pinned() {
        let live = record(Some(b"abc"));
        let tomb = record(None);
        let cat = |tail: &[u8]| [prefix(), tail.to_vec()].concat();
        assert_eq!(
            encode(RecordLayout::Wire1, &live),
            cat(&[1, 3, 0, 0, 0, b'a', b'b', b'c'])
        );
        assert_eq!(encode(RecordLayout::Wire1, &tomb), cat(&[0, 0, 0, 0, 0]));
        assert_eq!(
            encode(RecordLayout::File1, &live),
            cat(&[0, 3, 0, 0, 0, b'a', b'b', b'c'])
        );
        assert_eq!(encode(RecordLayout::File1, &tomb), cat(&[1]));
        assert_eq!(RecordLayout::Wire1.min_len(), 37);
        assert_eq!(RecordLayout::File1.min_len(), 33);
    }

    #[test]
    fn each_layout_refuses_the_others_records() {
        // A Wire1 live record reads as a File1 tombstone with trailing bytes; a File1 live
        // record as a Wire1 tombstone with a nonzero length; a File1 tombstone as a Wire1 live
        // record without its length. (A Wire1 tombstone would read as an empty File1 value:
        // the layouts are not self-describing, which is why each format pins its own.)
        let live = record(Some(b"abc"));
        assert!(decode(RecordLayout::File1, &encode(RecordLayout::Wire1, &live)).is_err());
        assert!(decode(RecordLayout::Wire1, &encode(RecordLayout::File1, &live)).is_err());
        let tomb = record(None);
        assert!(decode(RecordLayout::Wire1, &encode(RecordLayout::File1, &tomb)).is_err());
    }

    #[test]
    fn bad_records_are_refused() {
        for layout in LAYOUTS {
            let good = encode(layout, &record(Some(b"abc")));
            let flag_at = prefix().len();
            let mut bad = good.clone();
            bad[flag_at] = 9;
            assert!(matches!(
                decode(layout, &bad),
                Err(Error::Malformed("unknown record flag"))
            ));
            let mut bad = good.clone();
            bad[flag_at + 1..flag_at + 5].copy_from_slice(&u32::MAX.to_le_bytes());
            assert!(matches!(
                decode(layout, &bad),
                Err(Error::Malformed("secret value too long"))
            ));
            let mut empty = good.clone();
            empty.splice(0..3, [0, 0]);
            assert!(matches!(
                decode(layout, &empty),
                Err(Error::Malformed("empty path"))
            ));
            for cut in 0..good.len() {
                assert!(
                    decode(layout, &good[..cut]).is_err(),
                    "{layout:?} cut {cut}"
                );
            }
        }
        let mut wire = encode(RecordLayout::Wire1, &record(None));
        let last = wire.len() - 1;
        wire[last] = 1;
        assert!(matches!(
            decode(RecordLayout::Wire1, &wire),
            Err(Error::Malformed("tombstone with a value length"))
        ));
    }

    #[test]
    fn the_largest_value_round_trips() {
        let big = vec![5; MAX_VALUE_LEN];
        for layout in LAYOUTS {
            let r = record(Some(&big));
            let back = decode(layout, &encode(layout, &r)).unwrap();
            assert_eq!(back.hash(), r.hash());
        }
    }

    fn any_record() -> impl Strategy<Value = Record> {
        (
            prop::collection::vec(any::<u8>(), 1..20),
            prop::collection::vec(any::<u8>(), 1..20),
            any::<(u64, u32, [u8; 16])>(),
            prop::option::of(prop::collection::vec(any::<u8>(), 0..60)),
        )
            .prop_map(|(vault, record, (wall_ms, counter, node), value)| {
                let stamp = Stamp {
                    wall_ms,
                    counter,
                    node: NodeId::from_bytes(node),
                };
                let location = Location::new(vault, record).unwrap();
                Record::from_parts(location, stamp, value.map(SecretValue::new)).unwrap()
            })
    }

    proptest! {
        /// Every record round-trips in each layout with its exact encoded length.
        #[test]
        fn round_trip_with_exact_length(r in any_record()) {
            for layout in LAYOUTS {
                let bytes = encode(layout, &r);
                prop_assert_eq!(bytes.len(), layout.encoded_len(&r));
                prop_assert!(bytes.len() >= layout.min_len());
                let back = decode(layout, &bytes).unwrap();
                prop_assert_eq!(back.location(), r.location());
                prop_assert_eq!(back.shape(), r.shape());
            }
        }
    }
}
