use proptest::prelude::*;

use super::*;

type W = Writer<Error>;
type R<'a> = Reader<'a, Error>;

fn malformed<T: std::fmt::Debug>(r: Result<T, Error>) -> &'static str {
    match r {
        Err(Error::Malformed(what)) => what,
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn golden_bytes_of_every_field() {
    let mut w = W::new();
    w.u8(0xab);
    w.u16(0x0102);
    w.u32(0x0304_0506);
    w.u64(0x0708_090a_0b0c_0d0e);
    w.raw(&[0xee; 2]);
    w.bytes_u16(b"ab");
    w.bytes_u32(b"c");
    w.count(3);
    w.varint(300);
    assert_eq!(
        w.into_bytes(),
        [
            0xab, 0x02, 0x01, 0x06, 0x05, 0x04, 0x03, 0x0e, 0x0d, 0x0c, 0x0b, 0x0a, 0x09, 0x08,
            0x07, 0xee, 0xee, 2, 0, b'a', b'b', 1, 0, 0, 0, b'c', 3, 0, 0, 0, 0xac, 0x02,
        ]
    );
}

#[test]
fn reads_never_run_past_the_end() {
    let mut r = R::new(&[1, 2, 3]);
    assert_eq!(malformed(r.u32()), "field runs past the end");
    assert_eq!(r.remaining(), 3, "a failed read consumes nothing");
    assert_eq!(r.u16().unwrap(), 0x0201);
    assert_eq!(malformed(r.take(2)), "field runs past the end");
    assert_eq!(malformed(R::new(&[]).u8()), "field runs past the end");
}

#[test]
fn finish_refuses_trailing_bytes() {
    let mut r = R::new(&[1, 2]);
    r.u8().unwrap();
    assert_eq!(malformed(r.finish()), "trailing bytes");
    R::new(&[]).finish().unwrap();
}

#[test]
fn lengths_over_the_cap_are_refused_before_reading_them() {
    let mut w = W::new();
    w.bytes_u16(&[7; 10]);
    let bytes = w.into_bytes();
    assert_eq!(
        malformed(R::new(&bytes).bytes_u16(9, "too long")),
        "too long"
    );
    assert_eq!(R::new(&bytes).bytes_u16(10, "too long").unwrap(), &[7; 10]);
    // A length within the cap but past the end.
    assert_eq!(
        malformed(R::new(&bytes[..5]).bytes_u16(10, "too long")),
        "field runs past the end"
    );
    let mut big = u32::MAX.to_le_bytes().to_vec();
    big.push(0);
    assert_eq!(malformed(R::new(&big).bytes_u32(1 << 20, "value")), "value");
}

#[test]
fn counts_are_checked_against_the_cap_and_the_bytes_left() {
    let mut bytes = 4u32.to_le_bytes().to_vec();
    bytes.extend_from_slice(&[0; 8]);
    // Four items of 2 bytes fit in the 8 left; of 3 bytes they do not; a cap of 3 refuses 4.
    assert_eq!(R::new(&bytes).count(4, 2, "n").unwrap(), 4);
    assert_eq!(malformed(R::new(&bytes).count(4, 3, "n")), "n");
    assert_eq!(malformed(R::new(&bytes).count(3, 1, "n")), "n");
    // A lying count with a huge item size never overflows into acceptance.
    let lie = u32::MAX.to_le_bytes();
    assert_eq!(
        malformed(R::new(&lie).count(usize::MAX, usize::MAX, "n")),
        "n"
    );
    let mut v = W::new();
    v.varint(5);
    v.raw(&[0; 5]);
    let v = v.into_bytes();
    assert_eq!(R::new(&v).varint_count(5, 1, "n").unwrap(), 5);
    assert_eq!(malformed(R::new(&v).varint_count(5, 2, "n")), "n");
}

#[test]
fn paths_are_one_to_max_path_len_bytes() {
    let enc = |p: &[u8]| {
        let mut w = W::new();
        w.bytes_u16(p);
        w.into_bytes()
    };
    assert_eq!(malformed(R::new(&enc(b"")).path()), "empty path");
    assert_eq!(
        malformed(R::new(&enc(&[1; MAX_PATH_LEN + 1])).path()),
        "path too long"
    );
    assert_eq!(
        R::new(&enc(&[1; MAX_PATH_LEN])).path().unwrap().len(),
        MAX_PATH_LEN
    );
}

#[test]
fn flags_and_varints_are_canonical() {
    assert_eq!(malformed(R::new(&[2]).bool()), "flag is neither 0 nor 1");
    assert!(R::new(&[1]).bool().unwrap());
    assert_eq!(
        malformed(R::new(&[0x80, 0x00]).varint()),
        "varint not in its shortest form"
    );
    let mut over = [0xff; 10];
    over[9] = 0x02;
    assert_eq!(
        malformed(R::new(&over).varint()),
        "varint overflows 64 bits"
    );
    let mut max = W::new();
    max.varint(u64::MAX);
    assert_eq!(max.len(), 10);
    assert_eq!(R::new(&max.into_bytes()).varint().unwrap(), u64::MAX);
}

/// The encode side refuses what the decode side would: a field over the cap is an error,
/// and nothing of it is written.
#[test]
fn checked_writes_refuse_oversize_and_write_nothing() {
    let mut w = W::new();
    assert_eq!(malformed(w.checked_bytes_u16(&[0; 5], 4, "big")), "big");
    assert_eq!(
        malformed(w.checked_bytes_u16(&vec![0; 70_000], usize::MAX, "big")),
        "big",
        "never more than a u16 length can say"
    );
    assert_eq!(malformed(w.checked_bytes_u32(&[0; 5], 4, "big")), "big");
    assert_eq!(malformed(w.checked_count(5, 4, "many")), "many");
    assert!(w.is_empty());
    w.checked_bytes_u16(&[0; 4], 4, "big").unwrap();
    w.checked_bytes_u32(&[0; 4], 4, "big").unwrap();
    w.checked_count(4, 4, "many").unwrap();
    assert_eq!(w.len(), 2 + 4 + 4 + 4 + 4);
}

/// The drift this codec replaces: one writer clamped the length to u16::MAX and then wrote
/// the whole slice. The length a writer emits always describes the bytes it wrote.
#[test]
#[cfg(not(debug_assertions))]
fn an_oversized_u16_string_keeps_the_stream_framed() {
    let mut w = W::new();
    w.bytes_u16(&vec![1; 70_000]);
    w.u8(9);
    let bytes = w.into_bytes();
    let mut r = R::new(&bytes);
    assert_eq!(r.bytes_u16(usize::MAX, "x").unwrap().len(), 65_535);
    assert_eq!(r.u8().unwrap(), 9);
    r.finish().unwrap();
}

#[test]
#[cfg(debug_assertions)]
#[should_panic(expected = "bytes_u16 precondition")]
fn an_oversized_u16_string_breaks_a_debug_assertion() {
    W::new().bytes_u16(&vec![1; 70_000]);
}

#[test]
fn a_secret_writer_grows_like_any_other() {
    let mut w = W::secret(1);
    for i in 0..1000u32 {
        w.u32(i);
    }
    let plain = {
        let mut p = W::new();
        for i in 0..1000u32 {
            p.u32(i);
        }
        p.into_bytes()
    };
    assert_eq!(&w.into_secret()[..], &plain[..]);
}

#[derive(Debug, Clone)]
enum Field {
    U8(u8),
    U16(u16),
    U32(u32),
    U64(u64),
    Raw([u8; 3]),
    Bytes16(Vec<u8>),
    Bytes32(Vec<u8>),
    Varint(u64),
    Flag(bool),
}

fn field() -> impl Strategy<Value = Field> {
    prop_oneof![
        any::<u8>().prop_map(Field::U8),
        any::<u16>().prop_map(Field::U16),
        any::<u32>().prop_map(Field::U32),
        any::<u64>().prop_map(Field::U64),
        any::<[u8; 3]>().prop_map(Field::Raw),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(Field::Bytes16),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(Field::Bytes32),
        any::<u64>().prop_map(Field::Varint),
        any::<bool>().prop_map(Field::Flag),
    ]
}

fn write(w: &mut W, f: &Field) -> usize {
    match f {
        Field::U8(v) => w.u8(*v),
        Field::U16(v) => w.u16(*v),
        Field::U32(v) => w.u32(*v),
        Field::U64(v) => w.u64(*v),
        Field::Raw(v) => w.raw(v),
        Field::Bytes16(v) => w.checked_bytes_u16(v, 40, "b").unwrap(),
        Field::Bytes32(v) => w.checked_bytes_u32(v, 40, "b").unwrap(),
        Field::Varint(v) => w.varint(*v),
        Field::Flag(v) => w.u8(u8::from(*v)),
    }
    match f {
        Field::U8(_) | Field::Flag(_) => 1,
        Field::U16(_) => 2,
        Field::U32(_) => 4,
        Field::U64(_) => 8,
        Field::Raw(_) => 3,
        Field::Bytes16(v) => 2 + v.len(),
        Field::Bytes32(v) => 4 + v.len(),
        Field::Varint(v) => (64 - v.leading_zeros() as usize).div_ceil(7).max(1),
    }
}

fn read_back(r: &mut R<'_>, f: &Field) -> Result<(), Error> {
    let ok = match f {
        Field::U8(v) => r.u8()? == *v,
        Field::U16(v) => r.u16()? == *v,
        Field::U32(v) => r.u32()? == *v,
        Field::U64(v) => r.u64()? == *v,
        Field::Raw(v) => r.array::<3>()? == *v,
        Field::Bytes16(v) => r.bytes_u16(40, "b")? == &v[..],
        Field::Bytes32(v) => r.bytes_u32(40, "b")? == &v[..],
        Field::Varint(v) => r.varint()? == *v,
        Field::Flag(v) => r.bool()? == *v,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::Malformed("read back a different value"))
    }
}

proptest! {
    /// Any sequence of fields reads back as written, with the exact encoded length, and
    /// `finish` then accepts.
    #[test]
    fn round_trip_with_exact_length(fields in prop::collection::vec(field(), 0..30)) {
        let mut w = W::with_capacity(8);
        let mut len = 0;
        for f in &fields {
            len += write(&mut w, f);
        }
        prop_assert_eq!(w.len(), len);
        let bytes = w.into_bytes();
        let mut r = R::new(&bytes);
        for f in &fields {
            read_back(&mut r, f).unwrap();
        }
        r.finish().unwrap();
    }

    /// Any truncation of a valid encoding fails with an error, never a panic, and one byte
    /// more is trailing.
    #[test]
    fn truncations_and_extensions_fail(
        fields in prop::collection::vec(field(), 1..10),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut w = W::new();
        for f in &fields {
            write(&mut w, f);
        }
        let mut bytes = w.into_bytes();
        let at = cut.index(bytes.len());
        let mut r = R::new(&bytes[..at]);
        let short = fields.iter().try_for_each(|f| read_back(&mut r, f)).and_then(|()| r.finish());
        prop_assert!(short.is_err());
        bytes.push(0);
        let mut r = R::new(&bytes);
        fields.iter().try_for_each(|f| read_back(&mut r, f)).unwrap();
        prop_assert!(r.finish().is_err());
    }

    /// Arbitrary bytes never make a reader panic or allocate past its input.
    #[test]
    fn arbitrary_input_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let mut r = R::new(&bytes);
        let _ = r.count(usize::MAX, 1, "n");
        let _ = r.varint_count(usize::MAX, 1, "n");
        let _ = r.bytes_u32(usize::MAX, "b");
        let _ = r.path();
        let _ = r.finish();
    }
}
