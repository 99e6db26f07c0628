//! The plaintext inside a sealed chunk: records with the shapes the responder claims for them.

use redoubt_vault::{
    ClientId, Location, MAX_VALUE_LEN, NodeId, Record, RecordId, SecretValue, Shape, Stamp, VaultId,
};
use zeroize::Zeroizing;

use crate::{
    Error,
    codec::{Reader, Writer},
    limits::{ENTRY_FIXED_LEN, MAX_CHUNK_ENTRIES, MAX_CHUNK_PLAINTEXT},
};

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
}

impl ChunkWriter {
    pub(crate) fn new() -> Self {
        let mut w = Writer::with_capacity(4096);
        w.u32(0);
        Self { w, entries: 0 }
    }

    pub(crate) fn len(&self) -> usize {
        self.w.buf.len()
    }

    /// Appends one record of `client`, claiming its true shape.
    pub(crate) fn push(&mut self, client_id: &ClientId, client: &[u8], record: &Record) {
        let shape = record.shape();
        let w = &mut self.w;
        w.raw(client_id.as_bytes());
        w.raw(shape.vault.as_bytes());
        w.raw(shape.record.as_bytes());
        w.u32(shape.size);
        w.raw(&shape.hash);
        w.bytes_u16(client);
        w.bytes_u16(record.location().vault_path());
        w.bytes_u16(record.location().record_path());
        let stamp = record.stamp();
        w.u64(stamp.wall_ms);
        w.u32(stamp.counter);
        w.raw(stamp.node.as_bytes());
        match record.value() {
            Some(v) => {
                w.u8(1);
                w.u32(u32::try_from(v.len()).unwrap_or(u32::MAX));
                w.raw(v.expose());
            }
            None => {
                w.u8(0);
                w.u32(0);
            }
        }
        self.entries += 1;
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

/// Decodes a chunk's plaintext into entries (not yet checked against their shapes).
pub(crate) fn decode(plaintext: &[u8]) -> Result<Vec<Entry>, Error> {
    if plaintext.len() > MAX_CHUNK_PLAINTEXT {
        return Err(Error::FrameTooLarge {
            len: plaintext.len(),
            max: MAX_CHUNK_PLAINTEXT,
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
        let vault = r.path()?.to_vec();
        let record_path = r.path()?.to_vec();
        let stamp = Stamp {
            wall_ms: r.u64()?,
            counter: r.u32()?,
            node: NodeId::from_bytes(r.array()?),
        };
        let live = r.bool()?;
        let len = usize::try_from(r.u32()?).map_err(|_| Error::Malformed("value length"))?;
        if len > MAX_VALUE_LEN || (!live && len != 0) {
            return Err(Error::Malformed("value length out of range"));
        }
        let value = r.take(len)?;
        let value = live.then(|| SecretValue::new(value.to_vec()));
        let record = Record::from_parts(Location::new(vault, record_path)?, stamp, value)?;
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
