//! The plaintext body of a format-v1 snapshot: identity, clock, access table, records.

use redoubt_vault::{
    AccessTable, ClientId, Clock, Instance, MAX_PATH_LEN, MAX_PEER_ID_LEN, Record, Rights,
    codec::record::RecordLayout,
};
use zeroize::Zeroizing;

use crate::{
    Error, Identity, Snapshot,
    codec::{Reader, Writer},
};

/// Smallest encoded grant: two empty length prefixes and the rights byte.
const MIN_GRANT: usize = 2 + 2 + 1;
/// Smallest encoded client: an empty path and a record count.
const MIN_CLIENT: usize = 2 + 4;
/// Smallest encoded record: two empty paths, a stamp and the flag (a tombstone).
const MIN_RECORD: usize = RecordLayout::File1.min_len();
const _: () = assert!(MIN_RECORD == 2 + 2 + 8 + 4 + 16 + 1);
/// Most entries of one count the format can carry (counts are u32).
const MAX_COUNT: usize = u32::MAX as usize;

/// Encodes a snapshot's plaintext body, each record in [`RecordLayout::File1`]. The buffer is
/// wiped on drop, and so is every buffer it outgrew. Counts beyond a u32 are refused.
pub(crate) fn encode(snapshot: &Snapshot) -> Result<Zeroizing<Vec<u8>>, Error> {
    let mut w = Writer::secret(4096);
    w.raw(snapshot.identity.expose_seed());
    let (wall_ms, counter) = snapshot.instance.clock().last();
    w.u64(wall_ms);
    w.u32(counter);

    // The access table and the instance keep peer ids and paths within their caps, which the
    // checked writes state again on the encode side.
    w.checked_count(snapshot.access.len(), MAX_COUNT, "too many grants")?;
    for (peer, client, rights) in snapshot.access.iter() {
        w.checked_bytes_u16(peer, MAX_PEER_ID_LEN, "peer id too long")?;
        w.checked_bytes_u16(client, MAX_PATH_LEN, "client path too long")?;
        w.u8(rights.bits());
    }

    let clients: Vec<(&ClientId, &[u8])> = snapshot.instance.clients().collect();
    w.checked_count(clients.len(), MAX_COUNT, "too many clients")?;
    for (id, path) in clients {
        w.checked_bytes_u16(path, MAX_PATH_LEN, "client path too long")?;
        let records: Vec<&Record> = snapshot.instance.records(id).collect();
        w.checked_count(records.len(), MAX_COUNT, "too many records")?;
        for record in records {
            RecordLayout::File1.encode(&mut w, record);
        }
    }
    Ok(w.into_secret())
}

/// Decodes a plaintext body. Every count and length is checked against the bytes left and the
/// model's caps before anything is allocated.
pub(crate) fn decode(body: &[u8]) -> Result<Snapshot, Error> {
    let mut r = Reader::new(body);
    let identity = Identity::from_seed(r.array()?);
    let clock = Clock::at(r.u64()?, r.u32()?);

    let mut access = AccessTable::default();
    for _ in 0..r.count(MAX_COUNT, MIN_GRANT, "grant count exceeds the body")? {
        let peer = r.bytes_u16(MAX_PEER_ID_LEN, "peer id too long")?;
        let client = r.bytes_u16(MAX_PATH_LEN, "client path too long")?;
        let rights = Rights::from_bits(r.u8()?).ok_or(Error::Malformed("unknown rights bits"))?;
        access.grant(peer, client, rights)?;
    }

    let mut instance = Instance::with_clock(identity.node_id(), clock);
    for _ in 0..r.count(MAX_COUNT, MIN_CLIENT, "client count exceeds the body")? {
        let client = r.bytes_u16(MAX_PATH_LEN, "client path too long")?;
        for _ in 0..r.count(MAX_COUNT, MIN_RECORD, "record count exceeds the body")? {
            let record = RecordLayout::File1.decode(&mut r)?;
            instance.restore(client, record)?;
        }
    }
    r.finish()?;
    // The clock must not run behind any stamp it saved (restore moved it past them all).
    Ok(Snapshot {
        identity,
        access,
        instance,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use redoubt_vault::{Location, NodeId, SecretValue, Stamp};

    use super::*;

    fn snapshot_with(records: &[(u8, u8, Option<Vec<u8>>)]) -> Snapshot {
        let mut s = Snapshot::new(Identity::from_seed([7; 32]));
        for (i, (vault, record, value)) in records.iter().enumerate() {
            let loc = Location::new(format!("v{vault}"), format!("r{record}")).unwrap();
            let stamp = Stamp {
                wall_ms: i as u64,
                counter: 0,
                node: NodeId::from_bytes([1; 16]),
            };
            let value = value.clone().map(SecretValue::new);
            let rec = Record::from_parts(loc, stamp, value).unwrap();
            s.instance.restore(b"client", rec).unwrap();
        }
        s
    }

    fn shapes(s: &Snapshot) -> Vec<redoubt_vault::Shape> {
        s.instance
            .records(&ClientId::from_path(b"client"))
            .map(Record::shape)
            .collect()
    }

    proptest! {
        #[test]
        fn round_trip(records in prop::collection::vec(
            (0..3u8, 0..20u8, prop::option::of(prop::collection::vec(any::<u8>(), 0..40))), 0..30)
        ) {
            let s = snapshot_with(&records);
            let bytes = encode(&s).unwrap();
            let back = decode(&bytes).unwrap();
            prop_assert_eq!(shapes(&s), shapes(&back));
            prop_assert_eq!(back.instance.clock(), s.instance.clock());
        }
    }

    #[test]
    fn encoded_length_is_exact() {
        // seed 32 + clock 12 + grant count 4 + client count 4, then one client "client" (2 + 6
        // + 4) with one record: paths "v0", "r0" (4 + 4), stamp 28, flag 1, value (4 + 3).
        let s = snapshot_with(&[(0, 0, Some(b"abc".to_vec()))]);
        assert_eq!(
            encode(&s).unwrap().len(),
            32 + 12 + 4 + 4 + (2 + 6 + 4) + (4 + 4 + 28 + 1 + 4 + 3)
        );
        let tomb = snapshot_with(&[(0, 0, None)]);
        assert_eq!(
            encode(&tomb).unwrap().len(),
            32 + 12 + 4 + 4 + (2 + 6 + 4) + (4 + 4 + 28 + 1)
        );
    }

    #[test]
    fn lying_counts_are_refused_before_allocating() {
        let mut body = vec![0u8; 32 + 12];
        body.extend_from_slice(&u32::MAX.to_le_bytes()); // four billion grants
        assert!(matches!(decode(&body), Err(Error::Malformed(_))));

        let mut body = vec![0u8; 32 + 12 + 4];
        body.extend_from_slice(&1u32.to_le_bytes()); // one client
        body.extend_from_slice(&1u16.to_le_bytes());
        body.push(b'c');
        body.extend_from_slice(&u32::MAX.to_le_bytes()); // four billion records
        assert!(matches!(decode(&body), Err(Error::Malformed(_))));
    }

    #[test]
    fn oversized_value_and_unknown_flag_are_refused() {
        let s = snapshot_with(&[(0, 0, Some(b"abc".to_vec()))]);
        let good = encode(&s).unwrap();
        // The flag sits right before the value length (4) and value (3).
        let flag_at = good.len() - 8;
        let mut bad = good.to_vec();
        bad[flag_at] = 9;
        assert!(matches!(decode(&bad), Err(Error::Malformed(_))));
        let mut bad = good.to_vec();
        bad[flag_at + 1..flag_at + 5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(decode(&bad), Err(Error::Malformed(_))));
        let mut bad = good.to_vec();
        bad.push(0);
        assert!(matches!(decode(&bad), Err(Error::Malformed(_))));
    }

    /// The released format-v1 vector's body, decrypted, decodes and re-encodes to exactly its
    /// own bytes: `RecordLayout::File1` and this encoder write what version 1 wrote.
    #[test]
    fn the_released_vector_body_re_encodes_to_its_own_bytes() {
        let vectors = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/vectors/");
        let file = std::fs::read(format!("{vectors}snapshot-v1.rdb")).unwrap();
        let password = std::fs::read_to_string(format!("{vectors}snapshot-v1.password")).unwrap();
        let password = crate::Password::new(password.trim_end_matches('\n').as_bytes().to_vec());
        let (header, ciphertext) = crate::format::Header::parse(&file).unwrap();
        let key = crate::SealKey::derive(&password, header.params, header.salt).unwrap();
        let aad = &file[..crate::HEADER_LEN];
        let body = crate::crypto::open(&key.body_key, &header.nonce, aad, ciphertext).unwrap();
        let snapshot = decode(&body).unwrap();
        assert_eq!(&encode(&snapshot).unwrap()[..], &body[..]);
    }
}
