//! Object formats on the storage, version 1: names, segments, heads and the key object, each
//! with its size cap checked before anything is allocated. `docs/storage-format.md` specifies
//! every byte.
//!
//! ```text
//! key-v1                           the key object (not sealed under the storage key)
//! <device>.head                    a device's head, sealed, padded to HEAD_PLAINTEXT_LEN
//! <device>/<seq:016x>-<hash:64x>   a device's segment, sealed, padded to a Padmé bucket
//!
//! segment = format (u8, 1) ‖ kind (u8: 0 events, 1 base) ‖ seq (u64) ‖ prev hash (32)
//!           ‖ event count (u32) ‖ (u32 length ‖ journal event plaintext) × count ‖ zeros
//! base    = format (u8, 2) ‖ kind (u8, 1) ‖ seq (u64) ‖ prev hash (32) ‖ chain before (32)
//!           ‖ event count (u32) ‖ (u32 length ‖ journal event plaintext) × count ‖ zeros
//! pack    = format (u8, 3) ‖ kind (u8, 2) ‖ seq (u64) ‖ prev hash (32) ‖ chain before (32)
//!           ‖ from (u64) ‖ hash of segment from - 1 (32) ‖ chain through from - 1 (32)
//!           ‖ event count (u32) ‖ (u32 length ‖ journal event plaintext) × count ‖ zeros
//! head    = format (u8, 1) ‖ seq (u64) ‖ latest hash (32) ‖ chain (32) ‖ zeros to 128
//! ```

use redoubt_snapshot::{KdfLimits, KdfParams};
use redoubt_vault::codec::{Reader, Writer};
use zeroize::Zeroizing;

use crate::{
    Error,
    crypto::{DeviceId, SEAL_OVERHEAD, StorageKey},
};

/// The plaintext format version of segments and heads.
pub const FORMAT_VERSION: u8 = 1;
/// The plaintext format of a base segment that carries the chain hash before it, so a reader
/// may stop its walk there (compaction, `docs/storage-format.md` section 8).
pub const BASE_FORMAT_VERSION: u8 = 2;
/// The plaintext format of a pack: the net effect of a run of the device's segments before it,
/// with a link past them, so a reader behind may skip them (`docs/storage-format.md` 5.6).
pub const PACK_FORMAT_VERSION: u8 = 3;
/// The key object's name.
pub const KEY_OBJECT_NAME: &str = "key-v1";
/// The suffix of a head's name.
pub const HEAD_SUFFIX: &str = ".head";
/// A head's plaintext length (padded): every head object has the same size.
pub const HEAD_PLAINTEXT_LEN: usize = 128;
/// A head object's size.
pub const HEAD_OBJECT_LEN: usize = HEAD_PLAINTEXT_LEN + SEAL_OVERHEAD;
/// The largest segment plaintext (one journal event may be 256 MiB; a writer starts a new
/// segment past [`SEGMENT_TARGET`]).
pub const MAX_SEGMENT_PLAINTEXT: usize = 272 << 20;
/// The largest segment object a reader fetches, checked against its listed or reported size.
pub const MAX_SEGMENT_OBJECT: usize = MAX_SEGMENT_PLAINTEXT + SEAL_OVERHEAD;
/// A writer closes a segment once its events reach this many bytes.
pub const SEGMENT_TARGET: usize = 8 << 20;
/// The smallest padded segment plaintext.
pub const MIN_SEGMENT_PLAINTEXT: usize = 512;
/// Bytes of a segment before its events.
pub const SEGMENT_HEADER_LEN: usize = 1 + 1 + 8 + 32 + 4;
/// The shortest event a segment holds: a journal event plaintext is never shorter.
pub const MIN_EVENT_LEN: usize = 2;
/// Bytes of a format-2 base before its events.
pub const BASE_HEADER_LEN: usize = SEGMENT_HEADER_LEN + 32;
/// Bytes of a pack before its events.
pub const PACK_HEADER_LEN: usize = BASE_HEADER_LEN + 8 + 32 + 32;
/// The key object's exact length.
pub const KEY_OBJECT_LEN: usize = 14 + 2 + 1 + 12 + 16 + 24 + 32 + 16;
/// The magic that starts the key object.
pub const KEY_MAGIC: &[u8; 14] = b"redoubt-remote";
/// Associated-data label of the wrapped storage key (the key object's header follows).
pub const KEY_OBJECT_AAD_LABEL: &[u8] = b"redoubt remote v1 key object";
/// KDF id in the key object: Argon2id, version 0x13.
pub const KDF_ARGON2ID: u8 = 1;

/// What a segment holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentKind {
    /// Journal events written since the device's previous segment.
    Events = 0,
    /// Every current record of the device's chosen clients (its journal was folded past what
    /// it had uploaded, or compaction).
    Base = 1,
    /// The last version, in a run of the device's segments just before it, of each location
    /// that run changed (format 3): a reader behind the whole run reads this instead of it.
    Pack = 2,
}

/// Where a pack's run starts, and what a reader that skips the run needs to go on below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Skip {
    /// The first segment of the run (at least 1, below the pack's own `seq`).
    pub from: u64,
    /// The content hash of segment `from - 1` (zero when `from` is 1).
    pub hash: [u8; 32],
    /// The device's chain hash through segment `from - 1` (zero when `from` is 1).
    pub chain: [u8; 32],
}

/// A decoded segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Events or base.
    pub kind: SegmentKind,
    /// Its sequence number in its device's chain (1 for the first).
    pub seq: u64,
    /// The content hash of the device's previous segment (zero for the first).
    pub prev: [u8; 32],
    /// For a base of format 2 and a pack only: the device's chain hash through segment
    /// `seq - 1`, so a reader that stops at this base, or skips this pack's run, can still
    /// check the head's chain.
    pub chain_before: Option<[u8; 32]>,
    /// For a pack only: the run it stands for.
    pub skip: Option<Skip>,
    /// Journal event plaintexts, each decoded by `redoubt_store::journal::decode`.
    pub events: Vec<Vec<u8>>,
}

/// A decoded head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// The latest segment's sequence number (0: none yet).
    pub seq: u64,
    /// The latest segment's content hash (zero: none yet).
    pub latest: [u8; 32],
    /// The chain hash through the latest segment (zero: none yet).
    pub chain: [u8; 32],
}

/// The name of `device`'s head.
pub fn head_name(device: &DeviceId) -> String {
    format!("{device}{HEAD_SUFFIX}")
}

/// The name of `device`'s segment `seq` with content hash `hash`.
pub fn segment_name(device: &DeviceId, seq: u64, hash: &[u8; 32]) -> String {
    format!("{device}/{seq:016x}-{}", redoubt_vault::hex(hash))
}

/// The device, sequence number and content hash a segment's name holds, if it is one.
pub fn parse_segment_name(name: &str) -> Option<(DeviceId, u64, [u8; 32])> {
    let (device, rest) = name.split_once('/')?;
    let (seq, hash) = rest.split_once('-')?;
    if seq.len() != 16 || hash.len() != 64 {
        return None;
    }
    let seq = u64::from_str_radix(seq, 16).ok()?;
    let hash: [u8; 32] = crate::crypto::unhex(hash)?.try_into().ok()?;
    Some((DeviceId::parse(device)?, seq, hash))
}

/// The device a head's name belongs to, if it is one.
pub fn parse_head_name(name: &str) -> Option<DeviceId> {
    DeviceId::parse(name.strip_suffix(HEAD_SUFFIX)?)
}

/// Padmé (Nikitin et al., "Reducing Metadata Leakage from Encrypted Files and Communication
/// with PURBs", PETS 2019): `len` rounded up so only O(log log len) bits of it remain, at most
/// about 12 % more; never below [`MIN_SEGMENT_PLAINTEXT`].
pub fn padded_len(len: usize) -> usize {
    let len = len.max(MIN_SEGMENT_PLAINTEXT) as u64;
    let e = 63 - u64::from(len.leading_zeros()); // floor(log2 len)
    let s = 64 - u64::from(e.leading_zeros()); // floor(log2 e) + 1
    let mask = (1u64 << (e - s)) - 1;
    ((len + mask) & !mask) as usize
}

/// Encodes a segment's plaintext, padded.
pub fn encode_segment(segment: &Segment) -> Result<Zeroizing<Vec<u8>>, Error> {
    let header = match (segment.kind, segment.chain_before, segment.skip) {
        (SegmentKind::Pack, Some(_), Some(skip)) => {
            check_skip(&skip, segment.seq)?;
            PACK_HEADER_LEN
        }
        (SegmentKind::Pack, _, _) => {
            return Err(Error::Malformed(
                "a pack carries its run and the chain before it",
            ));
        }
        (_, _, Some(_)) => return Err(Error::Malformed("only a pack carries a run")),
        (SegmentKind::Events, Some(_), _) => {
            return Err(Error::Malformed("only a base carries the chain before it"));
        }
        (_, Some(_), _) => BASE_HEADER_LEN,
        (_, None, _) => SEGMENT_HEADER_LEN,
    };
    let body: usize = segment
        .events
        .iter()
        .try_fold(header, |n, e| n.checked_add(4 + e.len()))
        .ok_or(Error::Malformed("segment too large"))?;
    if body > MAX_SEGMENT_PLAINTEXT {
        return Err(Error::Malformed("segment too large"));
    }
    if segment.events.iter().any(|e| e.len() < MIN_EVENT_LEN) {
        return Err(Error::Malformed("event too short"));
    }
    let padded = padded_len(body).min(MAX_SEGMENT_PLAINTEXT).max(body);
    let mut w = Writer::<Error>::secret(padded);
    w.u8(match (segment.skip, segment.chain_before) {
        (Some(_), _) => PACK_FORMAT_VERSION,
        (None, Some(_)) => BASE_FORMAT_VERSION,
        (None, None) => FORMAT_VERSION,
    });
    w.u8(segment.kind as u8);
    w.u64(segment.seq);
    w.raw(&segment.prev);
    if let Some(chain) = &segment.chain_before {
        w.raw(chain);
    }
    if let Some(skip) = &segment.skip {
        w.u64(skip.from);
        w.raw(&skip.hash);
        w.raw(&skip.chain);
    }
    w.checked_count(
        segment.events.len(),
        MAX_SEGMENT_PLAINTEXT,
        "too many events",
    )?;
    for e in &segment.events {
        w.checked_bytes_u32(e, MAX_SEGMENT_PLAINTEXT, "event too large")?;
    }
    let mut out = w.into_secret();
    out.resize(padded, 0);
    Ok(out)
}

/// Decodes a segment's plaintext (after its seal opened), checking every length against what
/// remains before allocating, and that the padding is zeros.
pub fn decode_segment(bytes: &[u8]) -> Result<Segment, Error> {
    if bytes.len() > MAX_SEGMENT_PLAINTEXT {
        return Err(Error::Malformed("segment too large"));
    }
    let mut r = Reader::<Error>::new(bytes);
    let format = r.u8()?;
    let kind = match r.u8()? {
        0 => SegmentKind::Events,
        1 => SegmentKind::Base,
        2 => SegmentKind::Pack,
        _ => return Err(Error::Malformed("unknown segment kind")),
    };
    match (format, kind) {
        (FORMAT_VERSION, SegmentKind::Events | SegmentKind::Base)
        | (BASE_FORMAT_VERSION, SegmentKind::Base)
        | (PACK_FORMAT_VERSION, SegmentKind::Pack) => {}
        (FORMAT_VERSION | BASE_FORMAT_VERSION | PACK_FORMAT_VERSION, _) => {
            return Err(Error::Malformed("a segment kind its format does not hold"));
        }
        _ => return Err(Error::Malformed("unknown segment format")),
    }
    let seq = r.u64()?;
    if seq == 0 {
        return Err(Error::Malformed("segment sequence 0"));
    }
    let prev = r.array()?;
    let chain_before = if format == FORMAT_VERSION {
        None
    } else {
        Some(r.array()?)
    };
    let skip = if format == PACK_FORMAT_VERSION {
        let skip = Skip {
            from: r.u64()?,
            hash: r.array()?,
            chain: r.array()?,
        };
        check_skip(&skip, seq)?;
        Some(skip)
    } else {
        None
    };
    let count = r.count(
        MAX_SEGMENT_PLAINTEXT,
        4 + MIN_EVENT_LEN,
        "event count over what remains",
    )?;
    let mut events = Vec::with_capacity(count);
    for _ in 0..count {
        let event = r.bytes_u32(MAX_SEGMENT_PLAINTEXT, "event too large")?;
        // As `encode_segment` refuses them: one encoding per segment.
        if event.len() < MIN_EVENT_LEN {
            return Err(Error::Malformed("event too short"));
        }
        events.push(event.to_vec());
    }
    let rest = r.take(r.remaining())?;
    if rest.iter().any(|&b| b != 0) {
        return Err(Error::Malformed("segment padding is not zeros"));
    }
    Ok(Segment {
        kind,
        seq,
        prev,
        chain_before,
        skip,
        events,
    })
}

/// A pack's run: at least one segment, all below the pack; nothing below segment 1.
fn check_skip(skip: &Skip, seq: u64) -> Result<(), Error> {
    if skip.from == 0 || skip.from >= seq {
        return Err(Error::Malformed("a pack's run is empty or not below it"));
    }
    if skip.from == 1 && (skip.hash != [0; 32] || skip.chain != [0; 32]) {
        return Err(Error::Malformed(
            "a pack's run from segment 1 links below it",
        ));
    }
    Ok(())
}

/// Encodes a head's plaintext, padded to [`HEAD_PLAINTEXT_LEN`].
pub fn encode_head(head: &Head) -> Vec<u8> {
    let mut w = Writer::<Error>::with_capacity(HEAD_PLAINTEXT_LEN);
    w.u8(FORMAT_VERSION);
    w.u64(head.seq);
    w.raw(&head.latest);
    w.raw(&head.chain);
    let mut out = w.into_bytes();
    out.resize(HEAD_PLAINTEXT_LEN, 0);
    out
}

/// Decodes a head's plaintext.
pub fn decode_head(bytes: &[u8]) -> Result<Head, Error> {
    if bytes.len() != HEAD_PLAINTEXT_LEN {
        return Err(Error::Malformed("head has the wrong length"));
    }
    let mut r = Reader::<Error>::new(bytes);
    if r.u8()? != FORMAT_VERSION {
        return Err(Error::Malformed("unknown head format"));
    }
    let head = Head {
        seq: r.u64()?,
        latest: r.array()?,
        chain: r.array()?,
    };
    if r.take(r.remaining())?.iter().any(|&b| b != 0) {
        return Err(Error::Malformed("head padding is not zeros"));
    }
    if (head.seq == 0) != (head.latest == [0; 32]) {
        return Err(Error::Malformed(
            "head names no segment but a hash, or the reverse",
        ));
    }
    Ok(head)
}

/// The key object: `magic ‖ version (u16, 1) ‖ KDF id ‖ memory KiB ‖ passes ‖ lanes (u32
/// each) ‖ salt (16) ‖ nonce (24) ‖ XChaCha20-Poly1305(storage key) (48)`, the sealed key's
/// associated data [`KEY_OBJECT_AAD_LABEL`] ‖ every byte before the nonce.
pub fn wrap_key(
    key: &StorageKey,
    passphrase: &[u8],
    params: KdfParams,
    salt: &[u8; 16],
    nonce: &[u8; 24],
) -> Result<Vec<u8>, Error> {
    let mut w = Writer::<Error>::with_capacity(KEY_OBJECT_LEN);
    w.raw(KEY_MAGIC);
    w.u16(1);
    w.u8(KDF_ARGON2ID);
    w.u32(params.memory_kib);
    w.u32(params.iterations);
    w.u32(params.parallelism);
    w.raw(salt);
    let header = w.into_bytes();
    let kek = kdf(passphrase, params, salt)?;
    let aad = [KEY_OBJECT_AAD_LABEL, &header].concat();
    let sealed = redoubt_crypto::seal_x(&kek, nonce, &aad, key.expose())?;
    Ok([header.as_slice(), nonce, &sealed].concat())
}

/// Opens the key object with `passphrase`, refusing KDF parameters beyond `limits` before
/// running the KDF.
pub fn unwrap_key(
    bytes: &[u8],
    passphrase: &[u8],
    limits: &KdfLimits,
) -> Result<StorageKey, Error> {
    let bad = |r| Error::Tampered {
        name: KEY_OBJECT_NAME.into(),
        reason: r,
    };
    if bytes.len() != KEY_OBJECT_LEN {
        return Err(bad("the key object has the wrong length"));
    }
    let mut r = Reader::<Error>::new(bytes);
    if r.take(KEY_MAGIC.len())? != KEY_MAGIC {
        return Err(bad("not a Redoubt remote key object"));
    }
    if r.u16()? != 1 {
        return Err(bad("unknown key object version"));
    }
    if r.u8()? != KDF_ARGON2ID {
        return Err(bad("unknown KDF"));
    }
    let params = KdfParams {
        memory_kib: r.u32()?,
        iterations: r.u32()?,
        parallelism: r.u32()?,
    };
    let salt: [u8; 16] = r.array()?;
    let header = &bytes[..KEY_OBJECT_LEN - 24 - 48];
    let nonce: [u8; 24] = r.array()?;
    let sealed = r.take(48)?;
    r.finish()?;
    params
        .check_within(limits)
        .map_err(|e| Error::InvalidKdfParams(e.to_string()))?;
    let kek = kdf(passphrase, params, &salt)?;
    let aad = [KEY_OBJECT_AAD_LABEL, header].concat();
    let key =
        redoubt_crypto::open_x(&kek, &nonce, &aad, sealed).map_err(|_| Error::WrongPassphrase)?;
    let bytes: [u8; 32] = key[..]
        .try_into()
        .map_err(|_| Error::Malformed("storage key length"))?;
    Ok(StorageKey::from_bytes(bytes))
}

/// Argon2id (version 0x13, 32-byte output), as the store and the snapshot file run it.
fn kdf(
    passphrase: &[u8],
    params: KdfParams,
    salt: &[u8; 16],
) -> Result<redoubt_crypto::Key, Error> {
    let invalid = |e: argon2::Error| Error::InvalidKdfParams(e.to_string());
    let p = argon2::Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        Some(32),
    )
    .map_err(invalid)?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p);
    let mut out = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase, salt, out.as_mut())
        .map_err(invalid)?;
    Ok(redoubt_crypto::Key::from_bytes(*out))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn padme_buckets() {
        assert_eq!(padded_len(0), 512);
        assert_eq!(padded_len(512), 512);
        assert_eq!(padded_len(513), 544);
        assert_eq!(padded_len(1000), 1024);
        assert_eq!(padded_len(4000), 4096);
        assert_eq!(padded_len(9_000_000), 9_175_040);
        for len in [600usize, 5_000, 70_000, 3_000_000, 200_000_000] {
            let p = padded_len(len);
            assert!(p >= len && (p - len) * 100 <= len * 12, "{len} → {p}");
        }
    }

    #[test]
    fn segment_golden_and_length() {
        let s = Segment {
            kind: SegmentKind::Events,
            seq: 2,
            prev: [7; 32],
            chain_before: None,
            skip: None,
            events: vec![vec![1, 0, 9], vec![4, 4]],
        };
        let bytes = encode_segment(&s).unwrap();
        assert_eq!(bytes.len(), 512);
        let mut expect = vec![1u8, 0, 2, 0, 0, 0, 0, 0, 0, 0];
        expect.extend([7; 32]);
        expect.extend([2, 0, 0, 0, 3, 0, 0, 0, 1, 0, 9, 2, 0, 0, 0, 4, 4]);
        assert_eq!(&bytes[..expect.len()], expect.as_slice());
        assert!(bytes[expect.len()..].iter().all(|&b| b == 0));
        assert_eq!(decode_segment(&bytes).unwrap(), s);
        let mut bad = bytes.to_vec();
        bad[511] = 1;
        assert!(decode_segment(&bad).is_err(), "non-zero padding refused");
        let mut huge = bytes.to_vec();
        huge[42..46].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(
            decode_segment(&huge).is_err(),
            "count over what remains refused"
        );
    }

    #[test]
    fn base_golden_and_refusals() {
        let s = Segment {
            kind: SegmentKind::Base,
            seq: 5,
            prev: [7; 32],
            chain_before: Some([8; 32]),
            skip: None,
            events: vec![vec![1, 0, 9]],
        };
        let bytes = encode_segment(&s).unwrap();
        assert_eq!(&bytes[..2], &[2, 1], "format 2, kind base");
        assert_eq!(&bytes[42..74], &[8; 32], "the chain before, after prev");
        assert_eq!(decode_segment(&bytes).unwrap(), s);
        let mut events = bytes.to_vec();
        events[1] = 0;
        assert!(decode_segment(&events).is_err(), "format 2 is a base only");
        let wrong = Segment {
            kind: SegmentKind::Events,
            ..s
        };
        assert!(encode_segment(&wrong).is_err());
        let mut unknown = bytes.to_vec();
        unknown[0] = 3;
        assert!(decode_segment(&unknown).is_err());
        let name = segment_name(&DeviceId([0xab; 16]), 5, &[0xcd; 32]);
        assert_eq!(
            parse_segment_name(&name),
            Some((DeviceId([0xab; 16]), 5, [0xcd; 32]))
        );
        assert_eq!(parse_segment_name("abc/def"), None);
    }

    #[test]
    fn pack_golden_and_refusals() {
        let skip = Skip {
            from: 3,
            hash: [5; 32],
            chain: [6; 32],
        };
        let s = Segment {
            kind: SegmentKind::Pack,
            seq: 9,
            prev: [7; 32],
            chain_before: Some([8; 32]),
            skip: Some(skip),
            events: vec![vec![1, 0, 9]],
        };
        let bytes = encode_segment(&s).unwrap();
        assert_eq!(&bytes[..2], &[3, 2], "format 3, kind pack");
        assert_eq!(&bytes[42..74], &[8; 32], "the chain before, after prev");
        assert_eq!(
            &bytes[74..82],
            &3u64.to_le_bytes(),
            "then where the run starts"
        );
        assert_eq!(&bytes[82..114], &[5; 32]);
        assert_eq!(&bytes[114..146], &[6; 32]);
        assert_eq!(decode_segment(&bytes).unwrap(), s);
        // Every other pairing of format and kind is refused, both ways.
        for (format, kind) in [(3u8, 0u8), (3, 1), (1, 2), (2, 2)] {
            let mut other = bytes.to_vec();
            other[..2].copy_from_slice(&[format, kind]);
            assert!(
                decode_segment(&other).is_err(),
                "format {format} kind {kind}"
            );
        }
        for (from, seq) in [(0u64, 9u64), (9, 9), (10, 9)] {
            let mut bad = bytes.to_vec();
            bad[2..10].copy_from_slice(&seq.to_le_bytes());
            bad[74..82].copy_from_slice(&from.to_le_bytes());
            assert!(
                decode_segment(&bad).is_err(),
                "run from {from} in a pack at {seq}"
            );
            let wrong = Segment {
                seq,
                skip: Some(Skip { from, ..skip }),
                ..s.clone()
            };
            assert!(encode_segment(&wrong).is_err());
        }
        let mut linked = bytes.to_vec();
        linked[74..82].copy_from_slice(&1u64.to_le_bytes());
        assert!(
            decode_segment(&linked).is_err(),
            "a run from segment 1 links to nothing below it"
        );
        for wrong in [
            Segment {
                skip: None,
                ..s.clone()
            },
            Segment {
                chain_before: None,
                ..s.clone()
            },
            Segment {
                kind: SegmentKind::Base,
                ..s.clone()
            },
        ] {
            assert!(encode_segment(&wrong).is_err());
        }
    }

    #[test]
    fn head_golden() {
        let h = Head {
            seq: 1,
            latest: [1; 32],
            chain: [2; 32],
        };
        let bytes = encode_head(&h);
        assert_eq!(bytes.len(), HEAD_PLAINTEXT_LEN);
        assert_eq!(&bytes[..9], &[1, 1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(decode_head(&bytes).unwrap(), h);
        assert!(decode_head(&bytes[..127]).is_err());
    }

    #[test]
    fn key_object_wrong_passphrase_and_caps() {
        let key = StorageKey::from_bytes([9; 32]);
        let fast = KdfParams::insecure_fast();
        let obj = wrap_key(&key, b"right", fast, &[1; 16], &[2; 24]).unwrap();
        assert_eq!(obj.len(), KEY_OBJECT_LEN);
        let limits = KdfLimits::default();
        assert_eq!(
            unwrap_key(&obj, b"right", &limits).unwrap().expose(),
            &[9; 32]
        );
        assert!(matches!(
            unwrap_key(&obj, b"wrong", &limits),
            Err(Error::WrongPassphrase)
        ));
        let mut hostile = obj.clone();
        hostile[17..21].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            unwrap_key(&hostile, b"right", &limits),
            Err(Error::InvalidKdfParams(_))
        ));
        assert!(unwrap_key(&obj[..100], b"right", &limits).is_err());
    }

    #[test]
    fn empty_events_are_refused_both_ways() {
        // Found by the remote_segment fuzz target: 80 empty events decoded, then re-encoded
        // into 512 bytes that the count check refused.
        let s = Segment {
            kind: SegmentKind::Base,
            seq: 1,
            prev: [0; 32],
            chain_before: None,
            skip: None,
            events: vec![Vec::new(); 80],
        };
        assert!(matches!(
            encode_segment(&s),
            Err(Error::Malformed("event too short"))
        ));
        let mut bytes = vec![FORMAT_VERSION, 1];
        bytes.extend_from_slice(&1u64.to_le_bytes());
        bytes.extend_from_slice(&[0; 32]);
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.resize(MIN_SEGMENT_PLAINTEXT, 0);
        assert!(matches!(
            decode_segment(&bytes),
            Err(Error::Malformed("event too short"))
        ));
    }

    proptest! {
        #[test]
        fn segment_round_trip(seq in 2u64.., base: bool, chained: bool, pack: bool,
            from in 1u64.., link in any::<[u8; 32]>(),
            events in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), MIN_EVENT_LEN..300), 0..20)) {
            let from = 1 + from % (seq - 1);
            let link = if from == 1 { [0; 32] } else { link };
            let s = Segment {
                kind: match (pack, base) {
                    (true, _) => SegmentKind::Pack,
                    (false, true) => SegmentKind::Base,
                    (false, false) => SegmentKind::Events,
                },
                seq,
                prev: [3; 32],
                chain_before: (pack || (base && chained)).then_some([4; 32]),
                skip: pack.then_some(Skip { from, hash: link, chain: link }),
                events,
            };
            let bytes = encode_segment(&s).unwrap();
            let header = match (s.skip, s.chain_before) {
                (Some(_), _) => PACK_HEADER_LEN,
                (None, Some(_)) => BASE_HEADER_LEN,
                (None, None) => SEGMENT_HEADER_LEN,
            };
            prop_assert_eq!(bytes.len(), padded_len(
                header + s.events.iter().map(|e| 4 + e.len()).sum::<usize>()));
            prop_assert_eq!(decode_segment(&bytes).unwrap(), s);
        }

        #[test]
        fn head_round_trip(seq in 1u64.., latest in any::<[u8; 32]>(), chain in any::<[u8; 32]>()) {
            prop_assume!(latest != [0; 32]);
            let h = Head { seq, latest, chain };
            prop_assert_eq!(decode_head(&encode_head(&h)).unwrap(), h);
        }
    }
}
