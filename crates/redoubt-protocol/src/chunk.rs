//! The plaintext inside a sealed chunk: records with the shapes the responder claims for them.

use redoubt_vault::{
    ClientId, MAX_PATH_LEN, Record, RecordId, Shape, VaultId,
    codec::{lineage, record::RecordLayout},
};
use zeroize::Zeroizing;

use crate::{
    Error,
    codec::{Reader, Writer},
    limits::{ENTRY_FIXED_LEN, MAX_CHUNK_ENTRIES, MAX_CHUNK_PLAINTEXT, MAX_CHUNK_PLAINTEXT_V4},
};

// An entry's fixed part is its claimed shape (ids, size, hash) and a `Wire1` record's fixed
// part (its smallest encoding without the two empty path prefixes).
const _: () = assert!(ENTRY_FIXED_LEN == 96 + 4 + 32 + RecordLayout::Wire1.min_len() - 2 * 2);

/// A record received from a peer, already checked against the shape claimed for it.
#[derive(Debug)]
pub struct Received {
    /// The client's path.
    pub client: Vec<u8>,
    /// The record (its `Debug` never shows the value).
    pub record: Record,
}

/// One entry as it travels inside a chunk, before verification.
pub(crate) struct Entry {
    pub(crate) client_id: ClientId,
    pub(crate) shape: Shape,
    pub(crate) client: Vec<u8>,
    pub(crate) record: Record,
}

/// Builds a chunk's plaintext; the buffer is wiped on drop since it holds secret values.
pub(crate) struct ChunkWriter {
    w: Writer,
    entries: u32,
    /// Whether entries carry lineage (version 4).
    lineage: bool,
}

impl ChunkWriter {
    /// A chunk of versions 1 to 3: entries without lineage.
    #[cfg(test)]
    pub(crate) fn new() -> Self {
        Self::with_lineage(false)
    }

    /// A chunk whose entries carry lineage when `lineage` (version 4).
    pub(crate) fn with_lineage(lineage: bool) -> Self {
        let mut w = Writer::secret(4096);
        w.u32(0);
        Self {
            w,
            entries: 0,
            lineage,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.w.buf.len()
    }

    /// Appends one record of `client`, claiming its true shape: claimed ids, size and hash, the
    /// client path, then the record in [`RecordLayout::Wire1`] (and, in version 4, its
    /// lineage). A client path outside 1 to [`MAX_PATH_LEN`] bytes (a replica breaking its
    /// contract), or a record with lineage in a chunk of versions 1 to 3 (which cannot carry
    /// it: the peer could neither verify its shape nor converge on it), fails before anything
    /// is written, so the writer's `u16` length precondition always holds.
    pub(crate) fn push(
        &mut self,
        client_id: &ClientId,
        client: &[u8],
        record: &Record,
    ) -> Result<(), Error> {
        if client.is_empty() || client.len() > MAX_PATH_LEN {
            return Err(Error::Vault(redoubt_vault::Error::InvalidPath {
                what: "client path",
                len: client.len(),
            }));
        }
        if !self.lineage && record.has_lineage() {
            return Err(Error::LineageUnsupported);
        }
        let shape = record.shape();
        let w = &mut self.w;
        w.raw(client_id.as_bytes());
        w.raw(shape.vault.as_bytes());
        w.raw(shape.record.as_bytes());
        w.u32(shape.size);
        w.raw(&shape.hash);
        w.bytes_u16(client);
        RecordLayout::Wire1.encode(w, record);
        if self.lineage {
            lineage::encode(w, record);
        }
        self.entries += 1;
        Ok(())
    }

    /// The finished plaintext.
    pub(crate) fn finish(mut self) -> Zeroizing<Vec<u8>> {
        self.w.buf[..4].copy_from_slice(&self.entries.to_le_bytes());
        Zeroizing::new(std::mem::take(&mut self.w.buf))
    }
}

impl Drop for ChunkWriter {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.w.buf);
    }
}

/// Decodes a chunk's plaintext into entries (not yet checked against their shapes); with
/// `lineage` (version 4) each record is followed by its lineage.
pub(crate) fn decode(plaintext: &[u8], with_lineage: bool) -> Result<Vec<Entry>, Error> {
    let max = if with_lineage {
        MAX_CHUNK_PLAINTEXT_V4
    } else {
        MAX_CHUNK_PLAINTEXT
    };
    if plaintext.len() > max {
        return Err(Error::FrameTooLarge {
            len: plaintext.len(),
            max,
        });
    }
    let mut r = Reader::new(plaintext);
    let n = r.count(
        MAX_CHUNK_ENTRIES,
        ENTRY_FIXED_LEN,
        "too many entries in a chunk",
    )?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let client_id = ClientId::from_bytes(r.array()?);
        let shape = Shape {
            vault: VaultId::from_bytes(r.array()?),
            record: RecordId::from_bytes(r.array()?),
            size: r.u32()?,
            hash: r.array()?,
        };
        let client = r.path()?.to_vec();
        let record = if with_lineage {
            lineage::decode_record(RecordLayout::Wire1, &mut r)?
        } else {
            RecordLayout::Wire1.decode(&mut r)?
        };
        out.push(Entry {
            client_id,
            shape,
            client,
            record,
        });
    }
    r.finish()?;
    Ok(out)
}

/// Checks an entry against the shape claimed for it: ids recomputed from the paths, size and
/// hash recomputed from the record.
pub(crate) fn verify(entry: Entry) -> Result<Received, &'static str> {
    let (vault, record) = entry.record.location().ids();
    if ClientId::from_path(&entry.client) != entry.client_id {
        return Err("client id does not match its path");
    }
    if vault != entry.shape.vault || record != entry.shape.record {
        return Err("location ids do not match their paths");
    }
    if entry.record.size() != entry.shape.size {
        return Err("size differs from the claimed shape");
    }
    if entry.record.hash() != &entry.shape.hash {
        return Err("hash differs from the claimed shape");
    }
    Ok(Received {
        client: entry.client,
        record: entry.record,
    })
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
        let location = Location::new("vault", "rec").unwrap();
        Record::from_parts(location, stamp, value.map(|v| SecretValue::new(v.to_vec()))).unwrap()
    }

    /// An entry is its fixed part, three path prefixes, the paths and the value; a tombstone
    /// keeps its zero length (`RecordLayout::Wire1`).
    #[test]
    fn encoded_length_is_exact_and_round_trips() {
        let client = b"alice";
        let mut w = ChunkWriter::new();
        let (live, tomb) = (record(Some(b"s3cret")), record(None));
        w.push(&ClientId::from_path(client), client, &live).unwrap();
        w.push(&ClientId::from_path(client), client, &tomb).unwrap();
        let paths = 5 + 5 + 3;
        assert_eq!(
            w.len(),
            4 + 2 * (ENTRY_FIXED_LEN + 3 * 2 + paths) + b"s3cret".len()
        );
        let plaintext = w.finish();
        let entries = decode(&plaintext, false).unwrap();
        let back: Vec<Received> = entries.into_iter().map(|e| verify(e).unwrap()).collect();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].record.shape(), live.shape());
        assert_eq!(back[1].record.shape(), tomb.shape());
        assert!(back.iter().all(|r| r.client == client));
    }

    /// Version 4 carries lineage, and verifies against the state hash; versions 1 to 3 refuse
    /// a record with lineage unwritten.
    #[test]
    fn lineage_travels_only_in_version_4() {
        let client = b"alice";
        let first = record(Some(b"one"));
        let later = Stamp {
            wall_ms: 9,
            counter: 0,
            node: NodeId::from_bytes([7; 16]),
        };
        let second = Record::successor(
            first.location().clone(),
            later,
            Some(SecretValue::new(b"two".to_vec())),
            Some(&first),
        )
        .unwrap();
        let id = ClientId::from_path(client);
        let mut old = ChunkWriter::new();
        assert!(matches!(
            old.push(&id, client, &second),
            Err(Error::LineageUnsupported)
        ));
        assert_eq!(old.len(), 4);
        old.push(&id, client, &first).unwrap();
        let mut v4 = ChunkWriter::with_lineage(true);
        v4.push(&id, client, &second).unwrap();
        v4.push(&id, client, &first).unwrap();
        let plaintext = v4.finish();
        let back: Vec<Received> = decode(&plaintext, true)
            .unwrap()
            .into_iter()
            .map(|e| verify(e).unwrap())
            .collect();
        assert_eq!(back[0].record.hash(), second.hash());
        assert_eq!(back[0].record.history().len(), 1);
        assert_eq!(back[1].record.hash(), first.hash());
        assert!(
            decode(&plaintext, false).is_err(),
            "not a version 1 to 3 chunk"
        );
    }

    /// A client path the vault model does not allow fails before a byte is written.
    #[test]
    fn a_client_path_past_the_cap_is_refused_unwritten() {
        let mut w = ChunkWriter::new();
        let long = vec![b'c'; MAX_PATH_LEN + 1];
        let err = w
            .push(&ClientId::from_path(&long), &long, &record(Some(b"v")))
            .unwrap_err();
        assert!(matches!(
            err,
            Error::Vault(redoubt_vault::Error::InvalidPath { .. })
        ));
        assert!(
            w.push(&ClientId::from_path(b""), b"", &record(None))
                .is_err()
        );
        assert_eq!(w.len(), 4);
    }
}
