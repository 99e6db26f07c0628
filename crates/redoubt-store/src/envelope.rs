//! Sealed rows: the record envelope (versions 1 and 2), the small state rows (identity, clock,
//! grants, the journal's folded-through row) and the journal's events, each
//! XChaCha20-Poly1305 under a random 24-byte nonce, bound by associated data to the row it
//! lives in (a journal event's position is its sequence number, 8 bytes big-endian).
//!
//! ```text
//! envelope  = version (u8, 1) ‖ nonce (24 bytes) ‖ ciphertext ‖ tag (16 bytes)
//! AAD       = label ‖ 0x00 ‖ version (u8) ‖ position
//! ```
//!
//! A record's label is [`RECORD_AAD_LABEL`], its position the row's 32-byte keyed id, and its
//! plaintext `client path (u16 LE length ‖ bytes) ‖ record` in
//! [`RecordLayout::File1`], the snapshot
//! file's record layout (vault path, record path, stamp, flag, value). A record with lineage (a
//! parent or a history, `docs/vault-model.md`) is sealed in envelope version 2 instead, whose
//! plaintext appends the lineage ([`redoubt_vault::codec::lineage`]) to version 1's; a record
//! without lineage is still sealed in version 1, byte for byte as before, and both versions
//! open. A sealed row moved to another key, or to another table, fails to open.

use redoubt_crypto::{Key, TAG_LEN, XNONCE_LEN};
use redoubt_vault::{
    ClientId, MAX_PATH_LEN, MAX_VALUE_LEN, Record,
    codec::{
        Reader, Writer,
        lineage::{self, MAX_LINEAGE_LEN},
        record::{RecordLayout, STAMP_LEN},
    },
    hex,
};
use zeroize::Zeroizing;

use crate::Error;

/// The envelope version of every state row and journal row, and of a record without lineage.
pub const ENVELOPE_VERSION: u8 = 1;
/// The envelope version of a record row with lineage: version 1's plaintext, then the lineage.
pub const RECORD_ENVELOPE_VERSION_2: u8 = 2;
/// Associated-data label of a record envelope.
pub const RECORD_AAD_LABEL: &[u8] = b"redoubt store v1 record";
/// Associated-data label of an `identity` row.
pub const IDENTITY_AAD_LABEL: &[u8] = b"redoubt store v1 identity";
/// Associated-data label of a `grants` row.
pub const GRANT_AAD_LABEL: &[u8] = b"redoubt store v1 grant";
/// Associated-data label of a `journal` row (an event); its position is the sequence number
/// as 8 bytes big-endian.
pub const JOURNAL_AAD_LABEL: &[u8] = b"redoubt store v1 journal event";
/// Associated-data label of the sealed `meta` row `journal folded`.
pub const JOURNAL_STATE_AAD_LABEL: &[u8] = b"redoubt store v1 journal state";
/// The layout of the record inside an envelope: the snapshot file's.
pub const LAYOUT: RecordLayout = RecordLayout::File1;

/// Bytes an envelope adds around its plaintext: version, nonce, tag.
pub const OVERHEAD: usize = 1 + XNONCE_LEN + TAG_LEN;
/// The largest record plaintext: three paths at their cap, the stamp, flag, value length and
/// the largest value.
pub const MAX_RECORD_PLAINTEXT: usize = 3 * (2 + MAX_PATH_LEN) + STAMP_LEN + 1 + 4 + MAX_VALUE_LEN;
/// The largest record plaintext of envelope version 2: version 1's and the largest lineage.
pub const MAX_RECORD_PLAINTEXT_2: usize = MAX_RECORD_PLAINTEXT + MAX_LINEAGE_LEN;
/// The largest record envelope a reader accepts, checked before anything is allocated.
pub const MAX_RECORD_ENVELOPE: usize = OVERHEAD + MAX_RECORD_PLAINTEXT_2;
/// The largest state row a reader accepts (a grant: two short strings and a byte).
pub const MAX_STATE_ENVELOPE: usize = OVERHEAD + 4096;
/// The largest journal row a reader accepts, checked before anything is allocated.
pub const MAX_EVENT_ENVELOPE: usize = OVERHEAD + crate::journal::v1::MAX_EVENT_LEN;

fn aad(label: &[u8], version: u8, position: &[u8]) -> Vec<u8> {
    [label, &[0, version], position].concat()
}

fn seal(
    key: &Key,
    label: &[u8],
    position: &[u8],
    plaintext: &[u8],
    nonce: &[u8; XNONCE_LEN],
) -> Result<Vec<u8>, Error> {
    seal_version(key, ENVELOPE_VERSION, label, position, plaintext, nonce)
}

fn seal_version(
    key: &Key,
    version: u8,
    label: &[u8],
    position: &[u8],
    plaintext: &[u8],
    nonce: &[u8; XNONCE_LEN],
) -> Result<Vec<u8>, Error> {
    let sealed = redoubt_crypto::seal_x(key, nonce, &aad(label, version, position), plaintext)?;
    let mut out = Vec::with_capacity(1 + XNONCE_LEN + sealed.len());
    out.push(version);
    out.extend_from_slice(nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Why an envelope does not open, before the caller names the row.
fn open(
    key: &Key,
    label: &[u8],
    position: &[u8],
    bytes: &[u8],
    max: usize,
) -> Result<Zeroizing<Vec<u8>>, &'static str> {
    open_versions(key, label, position, bytes, max, &[ENVELOPE_VERSION]).map(|(_, p)| p)
}

/// Opens an envelope of any version in `versions`; returns the version and the plaintext.
fn open_versions(
    key: &Key,
    label: &[u8],
    position: &[u8],
    bytes: &[u8],
    max: usize,
    versions: &[u8],
) -> Result<(u8, Zeroizing<Vec<u8>>), &'static str> {
    if bytes.len() > max {
        return Err("envelope longer than the largest row");
    }
    if bytes.len() < OVERHEAD {
        return Err("envelope shorter than its framing");
    }
    let version = bytes[0];
    if !versions.contains(&version) {
        return Err("unknown envelope version");
    }
    let (nonce, sealed) = bytes[1..].split_at(XNONCE_LEN);
    let nonce: &[u8; XNONCE_LEN] = nonce.try_into().map_err(|_| "nonce")?;
    redoubt_crypto::open_x(key, nonce, &aad(label, version, position), sealed)
        .map(|plain| (version, plain))
        .map_err(|_| "authentication failed (altered, or moved from another row)")
}

/// Seals `client`'s `record` for the row `row` of table `records`.
pub(crate) fn seal_record(
    key: &Key,
    row: &[u8; 32],
    client: &[u8],
    record: &Record,
    nonce: &[u8; XNONCE_LEN],
) -> Result<Vec<u8>, Error> {
    let lineage = record.has_lineage();
    let len = 2 + client.len() + LAYOUT.encoded_len(record);
    let mut w = Writer::<Error>::secret(
        len + if lineage {
            lineage::encoded_len(record)
        } else {
            0
        },
    );
    w.checked_bytes_u16(client, MAX_PATH_LEN, "client path too long")?;
    LAYOUT.encode(&mut w, record);
    if !lineage {
        let plaintext = w.into_secret();
        return seal(key, RECORD_AAD_LABEL, row, &plaintext, nonce);
    }
    lineage::encode(&mut w, record);
    let plaintext = w.into_secret();
    seal_version(
        key,
        RECORD_ENVELOPE_VERSION_2,
        RECORD_AAD_LABEL,
        row,
        &plaintext,
        nonce,
    )
}

/// Opens the envelope of row `row` of table `records`: the client path and the record. Any
/// failure is [`Error::RecordCorrupted`] naming the row by its keyed id.
pub(crate) fn open_record(
    key: &Key,
    row: &[u8; 32],
    bytes: &[u8],
) -> Result<(Vec<u8>, Record), Error> {
    let corrupted = |reason| Error::RecordCorrupted {
        row: hex(row),
        reason,
    };
    let versions = [ENVELOPE_VERSION, RECORD_ENVELOPE_VERSION_2];
    let (version, plaintext) = open_versions(
        key,
        RECORD_AAD_LABEL,
        row,
        bytes,
        MAX_RECORD_ENVELOPE,
        &versions,
    )
    .map_err(corrupted)?;
    let decoded = if version == ENVELOPE_VERSION {
        decode_record_plaintext(&plaintext)
    } else {
        decode_record_plaintext_2(&plaintext)
    };
    decoded.map_err(|e| match e {
        Error::Malformed(what) => corrupted(what),
        _ => corrupted("record breaks a vault rule"),
    })
}

/// Decodes `client path ‖ record`, refusing trailing bytes.
pub(crate) fn decode_record_plaintext(plaintext: &[u8]) -> Result<(Vec<u8>, Record), Error> {
    let mut r = Reader::<Error>::new(plaintext);
    let client = r.path()?.to_vec();
    let record = LAYOUT.decode(&mut r)?;
    r.finish()?;
    Ok((client, record))
}

/// Decodes envelope version 2's plaintext, `client path ‖ record ‖ lineage`, refusing
/// trailing bytes and a record without lineage (which version 1 holds, so that every record
/// has one encoding).
pub(crate) fn decode_record_plaintext_2(plaintext: &[u8]) -> Result<(Vec<u8>, Record), Error> {
    let mut r = Reader::<Error>::new(plaintext);
    let client = r.path()?.to_vec();
    let record = lineage::decode_record(LAYOUT, &mut r)?;
    r.finish()?;
    if !record.has_lineage() {
        return Err(Error::Malformed("a version 2 record row without lineage"));
    }
    Ok((client, record))
}

/// Whether `row` is the keyed id the opened `(client, record)` belongs under: a second check,
/// after the associated data, that the row holds what its key names.
pub(crate) fn belongs(
    row_of: impl Fn(&ClientId, &Record) -> [u8; 32],
    row: &[u8; 32],
    client: &[u8],
    record: &Record,
) -> bool {
    redoubt_crypto::ct_eq(&row_of(&ClientId::from_path(client), record), row)
}

/// Seals a state row (`label` names its table, `position` its key).
pub(crate) fn seal_state(
    key: &Key,
    label: &[u8],
    position: &[u8],
    plaintext: &[u8],
    nonce: &[u8; XNONCE_LEN],
) -> Result<Vec<u8>, Error> {
    seal(key, label, position, plaintext, nonce)
}

/// Opens a state row; `what` names it in the error.
pub(crate) fn open_state(
    key: &Key,
    label: &[u8],
    position: &[u8],
    bytes: &[u8],
    what: &'static str,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    open(key, label, position, bytes, MAX_STATE_ENVELOPE).map_err(|_| Error::Corrupted(what))
}

/// Seals the plaintext of event `seq` for its row of table `journal`.
pub(crate) fn seal_event(
    key: &Key,
    seq: u64,
    plaintext: &[u8],
    nonce: &[u8; XNONCE_LEN],
) -> Result<Vec<u8>, Error> {
    seal(key, JOURNAL_AAD_LABEL, &seq.to_be_bytes(), plaintext, nonce)
}

/// Opens row `seq` of table `journal`: the event's plaintext, wiped on drop. Any failure is
/// [`Error::JournalBroken`] naming the sequence number.
pub(crate) fn open_event(key: &Key, seq: u64, bytes: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
    open(
        key,
        JOURNAL_AAD_LABEL,
        &seq.to_be_bytes(),
        bytes,
        MAX_EVENT_ENVELOPE,
    )
    .map_err(|reason| Error::JournalBroken { seq, reason })
}

/// A fresh random nonce.
pub(crate) fn random_nonce() -> Result<[u8; XNONCE_LEN], Error> {
    let mut nonce = [0u8; XNONCE_LEN];
    redoubt_crypto::fill_random(&mut nonce)?;
    Ok(nonce)
}

/// Associated-data label of a `clients` row (a client's path and kept sketch sums); its
/// position is the row's 32-byte keyed id.
pub const CLIENT_AAD_LABEL: &[u8] = b"redoubt store v1 client";
/// Associated-data label of a `sketch deltas` row; its position is the delta's sequence number
/// as 8 bytes big-endian.
pub const SKETCH_DELTA_AAD_LABEL: &[u8] = b"redoubt store v1 sketch delta";

/// Opens a state row of at most `max` bytes (a `clients` or `sketch deltas` row, larger than
/// [`MAX_STATE_ENVELOPE`]); `what` names it in the error.
pub(crate) fn open_state_capped(
    key: &Key,
    label: &[u8],
    position: &[u8],
    bytes: &[u8],
    max: usize,
    what: &'static str,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    open(key, label, position, bytes, max).map_err(|_| Error::Corrupted(what))
}

#[cfg(test)]
mod tests {
    use redoubt_vault::{Location, NodeId, SecretValue, Stamp};

    use super::*;

    fn record(value: Option<&[u8]>) -> Record {
        let stamp = Stamp {
            wall_ms: 5,
            counter: 6,
            node: NodeId::from_bytes([7; 16]),
        };
        let loc = Location::new("wallet", "seed").unwrap();
        Record::from_parts(loc, stamp, value.map(|v| SecretValue::new(v.to_vec()))).unwrap()
    }

    #[test]
    fn a_record_opens_only_at_its_row_and_under_its_key() {
        let key = Key::from_bytes([1; 32]);
        for r in [record(Some(b"v")), record(None)] {
            let sealed = seal_record(&key, &[2; 32], b"alice", &r, &[3; 24]).unwrap();
            assert_eq!(
                sealed.len(),
                OVERHEAD + 2 + 5 + LAYOUT.encoded_len(&r),
                "exact length"
            );
            let (client, back) = open_record(&key, &[2; 32], &sealed).unwrap();
            assert_eq!((client.as_slice(), back.hash()), (&b"alice"[..], r.hash()));
            for bad in [
                open_record(&key, &[4; 32], &sealed),
                open_record(&Key::from_bytes([9; 32]), &[2; 32], &sealed),
                open_record(&key, &[2; 32], &sealed[..sealed.len() - 1]),
                open_record(&key, &[2; 32], &sealed[..OVERHEAD - 1]),
            ] {
                let Err(Error::RecordCorrupted { row, .. }) = bad else {
                    panic!("opened a bad envelope");
                };
                assert_eq!(row.len(), 64);
            }
            let mut other_version = sealed.clone();
            other_version[0] = 3;
            assert!(matches!(
                open_record(&key, &[2; 32], &other_version),
                Err(Error::RecordCorrupted {
                    reason: "unknown envelope version",
                    ..
                })
            ));
            // A record envelope is not a state row, and the other way round.
            assert!(open_state(&key, GRANT_AAD_LABEL, &[2; 32], &sealed, "grant").is_err());
        }
    }

    #[test]
    fn the_size_cap_is_checked_before_opening() {
        let key = Key::from_bytes([1; 32]);
        let huge = vec![ENVELOPE_VERSION; MAX_RECORD_ENVELOPE + 1];
        assert!(matches!(
            open_record(&key, &[0; 32], &huge),
            Err(Error::RecordCorrupted {
                reason: "envelope longer than the largest row",
                ..
            })
        ));
        let big = record(Some(&vec![0; MAX_VALUE_LEN]));
        let path = vec![b'c'; MAX_PATH_LEN];
        let sealed = seal_record(&key, &[0; 32], &path, &big, &[0; 24]).unwrap();
        assert!(sealed.len() <= MAX_RECORD_ENVELOPE);
        assert!(open_record(&key, &[0; 32], &sealed).is_ok());
    }

    proptest::proptest! {
        /// Every record round-trips through its envelope, at its exact length.
        #[test]
        fn round_trip_with_exact_length(
            client in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..40),
            vault in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..40),
            path in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..40),
            stamp in proptest::prelude::any::<(u64, u32, [u8; 16])>(),
            value in proptest::option::of(
                proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)
            ),
            row in proptest::prelude::any::<[u8; 32]>(),
        ) {
            let stamp = Stamp { wall_ms: stamp.0, counter: stamp.1, node: NodeId::from_bytes(stamp.2) };
            let loc = Location::new(vault, path).unwrap();
            let r = Record::from_parts(loc, stamp, value.map(SecretValue::new)).unwrap();
            let key = Key::from_bytes([8; 32]);
            let sealed = seal_record(&key, &row, &client, &r, &[1; 24]).unwrap();
            proptest::prop_assert_eq!(sealed.len(), OVERHEAD + 2 + client.len() + LAYOUT.encoded_len(&r));
            let (c, back) = open_record(&key, &row, &sealed).unwrap();
            proptest::prop_assert_eq!(c, client);
            proptest::prop_assert_eq!(back.location(), r.location());
            proptest::prop_assert_eq!(back.shape(), r.shape());
        }
    }

    #[test]
    fn a_record_with_lineage_is_sealed_in_version_2_and_opens() {
        let key = Key::from_bytes([1; 32]);
        let first = record(Some(b"v"));
        let later = Stamp {
            wall_ms: 9,
            counter: 0,
            node: NodeId::from_bytes([7; 16]),
        };
        let second = Record::successor(
            first.location().clone(),
            later,
            Some(SecretValue::new(b"w".to_vec())),
            Some(&first),
        )
        .unwrap();
        let sealed = seal_record(&key, &[2; 32], b"alice", &second, &[3; 24]).unwrap();
        assert_eq!(sealed[0], RECORD_ENVELOPE_VERSION_2);
        assert_eq!(
            sealed.len(),
            OVERHEAD + 2 + 5 + redoubt_vault::codec::lineage::encoded_record_len(LAYOUT, &second)
        );
        let (_, back) = open_record(&key, &[2; 32], &sealed).unwrap();
        assert_eq!(back.hash(), second.hash());
        assert_eq!(back.parent(), Some(first.version_hash()));
        assert_eq!(back.history().len(), 1);
        // Relabelled as version 1, it fails (the version is in the associated data).
        let mut relabelled = sealed.clone();
        relabelled[0] = ENVELOPE_VERSION;
        assert!(open_record(&key, &[2; 32], &relabelled).is_err());
        // A parentless record is still sealed in version 1.
        let plain = seal_record(&key, &[2; 32], b"alice", &first, &[3; 24]).unwrap();
        assert_eq!(plain[0], ENVELOPE_VERSION);
        // Version 2 never holds a record without lineage.
        let mut w = Writer::<Error>::new();
        w.bytes_u16(b"c");
        redoubt_vault::codec::lineage::encode_record(LAYOUT, &mut w, &first);
        assert!(decode_record_plaintext_2(&w.into_bytes()).is_err());
    }

    #[test]
    fn plaintext_decoding_refuses_trailing_and_missing_bytes() {
        let mut w = Writer::<Error>::new();
        w.bytes_u16(b"c");
        LAYOUT.encode(&mut w, &record(Some(b"x")));
        let good = w.into_bytes();
        assert!(decode_record_plaintext(&good).is_ok());
        assert!(decode_record_plaintext(&[good.clone(), vec![0]].concat()).is_err());
        for cut in 0..good.len() {
            assert!(decode_record_plaintext(&good[..cut]).is_err());
        }
    }
}
