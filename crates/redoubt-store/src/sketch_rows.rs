//! The rows that keep each client's reconciliation state on disk, so that an open reads a few
//! rows instead of rebuilding it from every record (`docs/store-format.md`, "Sketch state"):
//!
//! - a `clients` row per client: its path, and its [`SketchSums`] as of delta `through`;
//! - a `sketch deltas` row per commit since the last checkpoint: the elements it inserted and
//!   removed, applied at open to every client row older than it;
//! - a `sketch index` row per element key: the record rows holding a version with that key.
//!
//! Every decoder here checks its sizes before it allocates.

use redoubt_vault::{
    ClientId, MAX_PATH_LEN,
    codec::{Reader, Writer},
    sketch::{MATERIALIZE_AT, MAX_SYMBOLS, SetDigest, SketchSums, Symbol},
};

use crate::{Error, envelope::OVERHEAD};

/// A kept symbol on disk: key (u64 LE) ‖ checksum (u32 LE) ‖ count (i32 LE).
pub const SYMBOL_BYTES: usize = 16;
/// The largest `clients` row plaintext: the longest path and every symbol kept.
pub const MAX_CLIENT_ROW: usize =
    2 + MAX_PATH_LEN + 8 + 8 + 8 + 32 + 1 + MAX_SYMBOLS * SYMBOL_BYTES;
/// The largest sealed `clients` row a reader accepts, checked before anything is allocated.
pub const MAX_CLIENT_ENVELOPE: usize = OVERHEAD + MAX_CLIENT_ROW;
/// Most element changes one `sketch deltas` row holds; a commit that makes more writes a
/// checkpoint instead.
pub const MAX_DELTA_ENTRIES: usize = 4096;
/// One delta entry: client id (32) ‖ op (u8) ‖ key (u64 LE) ‖ element hash (32) ‖ stored
/// length (u64 LE).
pub const DELTA_ENTRY_BYTES: usize = 32 + 1 + 8 + 32 + 8;
/// The largest `sketch deltas` row plaintext.
pub const MAX_DELTA_ROW: usize = 4 + MAX_DELTA_ENTRIES * DELTA_ENTRY_BYTES;
/// The largest sealed `sketch deltas` row a reader accepts.
pub const MAX_DELTA_ENVELOPE: usize = OVERHEAD + MAX_DELTA_ROW;
/// Most record rows one `sketch index` row names (versions whose 64-bit keys collide).
pub const MAX_INDEX_ROWS: usize = 64;

const SUMS_KEYS: u8 = 0;
const SUMS_SYMBOLS: u8 = 1;
const OP_REMOVE: u8 = 0;
const OP_INSERT: u8 = 1;

/// A `clients` row: a client's path and its sums as of delta `through`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientRow {
    /// The client's path.
    pub path: Vec<u8>,
    /// The last delta these sums include (0: none).
    pub through: u64,
    /// What the client's records take in a save ([`redoubt_vault::stored_len`] summed), as
    /// of the same delta: the merge quota's count.
    pub bytes: u64,
    /// The client's sketch sums.
    pub sums: SketchSums,
}

impl ClientRow {
    /// Its plaintext.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let body = match (self.sums.keys(), self.sums.kept_symbols()) {
            (Some(keys), _) => 1 + 4 + keys.len() * 8,
            (None, _) => 1 + MAX_SYMBOLS * SYMBOL_BYTES,
        };
        let mut w = Writer::<Error>::with_capacity(2 + self.path.len() + 56 + body);
        w.checked_bytes_u16(&self.path, MAX_PATH_LEN, "client path")?;
        w.u64(self.through);
        w.u64(self.bytes);
        w.u64(self.sums.len());
        w.raw(&self.sums.digest().to_bytes());
        match (self.sums.keys(), self.sums.kept_symbols()) {
            (Some(keys), _) => {
                w.u8(SUMS_KEYS);
                w.checked_count(keys.len(), MATERIALIZE_AT as usize - 1, "sketch keys")?;
                for k in keys {
                    w.u64(*k);
                }
            }
            (None, Some(symbols)) => {
                w.u8(SUMS_SYMBOLS);
                for s in symbols {
                    w.u64(s.key);
                    w.u32(s.check);
                    w.u32(s.count as u32);
                }
            }
            (None, None) => {
                return Err(Error::Malformed(
                    "sketch sums with neither keys nor symbols",
                ));
            }
        }
        Ok(w.into_bytes())
    }

    /// Decodes a plaintext, sizes checked before anything is allocated.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > MAX_CLIENT_ROW {
            return Err(Error::Malformed("a clients row is too long"));
        }
        let mut r = Reader::<Error>::new(bytes);
        let path = r.bytes_u16(MAX_PATH_LEN, "client path")?;
        if path.is_empty() {
            return Err(Error::Malformed("a clients row with an empty path"));
        }
        let path = path.to_vec();
        let through = r.u64()?;
        let bytes = r.u64()?;
        let len = r.u64()?;
        let digest = SetDigest::from_bytes(r.array()?);
        let sums = match r.u8()? {
            SUMS_KEYS => {
                let n = r.count(MATERIALIZE_AT as usize - 1, 8, "sketch keys")?;
                if n as u64 != len {
                    return Err(Error::Malformed(
                        "a clients row's key count is not its length",
                    ));
                }
                let mut keys = Vec::with_capacity(n);
                for _ in 0..n {
                    keys.push(r.u64()?);
                }
                SketchSums::from_keys(digest, keys)
                    .map_err(|_| Error::Malformed("a clients row's keys do not fit its length"))?
            }
            SUMS_SYMBOLS => {
                if r.remaining() != MAX_SYMBOLS * SYMBOL_BYTES {
                    return Err(Error::Malformed(
                        "a clients row's symbols are not all there",
                    ));
                }
                let mut symbols = Vec::with_capacity(MAX_SYMBOLS);
                for _ in 0..MAX_SYMBOLS {
                    symbols.push(Symbol {
                        key: r.u64()?,
                        check: r.u32()?,
                        count: r.u32()? as i32,
                    });
                }
                SketchSums::from_symbols(len, digest, symbols)
                    .map_err(|_| Error::Malformed("a clients row's symbols are not all there"))?
            }
            _ => return Err(Error::Malformed("a clients row names an unknown sums kind")),
        };
        r.finish()?;
        Ok(Self {
            path,
            through,
            bytes,
            sums,
        })
    }
}

/// One element change of a commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeltaEntry {
    /// The client it changes.
    pub client: ClientId,
    /// Inserted (`true`) or removed.
    pub insert: bool,
    /// The element's key.
    pub key: u64,
    /// The element's hash.
    pub hash: [u8; 32],
    /// What the version takes in a save ([`redoubt_vault::stored_len`]).
    pub stored: u64,
}

impl DeltaEntry {
    /// Applies it to a client's `sums` and stored `bytes`.
    pub fn apply(&self, sums: &mut SketchSums, bytes: &mut u64) {
        if self.insert {
            sums.insert(self.key, &self.hash);
            *bytes = bytes.wrapping_add(self.stored);
        } else {
            sums.remove(self.key, &self.hash);
            *bytes = bytes.wrapping_sub(self.stored);
        }
    }
}

/// Encodes a `sketch deltas` row plaintext (at most [`MAX_DELTA_ENTRIES`] entries).
pub fn encode_delta(entries: &[DeltaEntry]) -> Result<Vec<u8>, Error> {
    let mut w = Writer::<Error>::with_capacity(4 + entries.len() * DELTA_ENTRY_BYTES);
    w.checked_count(entries.len(), MAX_DELTA_ENTRIES, "sketch delta entries")?;
    for e in entries {
        w.raw(e.client.as_bytes());
        w.u8(if e.insert { OP_INSERT } else { OP_REMOVE });
        w.u64(e.key);
        w.raw(&e.hash);
        w.u64(e.stored);
    }
    Ok(w.into_bytes())
}

/// Decodes a `sketch deltas` row plaintext, sizes checked before anything is allocated.
pub fn decode_delta(bytes: &[u8]) -> Result<Vec<DeltaEntry>, Error> {
    let mut r = Reader::<Error>::new(bytes);
    let n = r.count(MAX_DELTA_ENTRIES, DELTA_ENTRY_BYTES, "sketch delta entries")?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let client = ClientId::from_bytes(r.array()?);
        let insert = match r.u8()? {
            OP_INSERT => true,
            OP_REMOVE => false,
            _ => {
                return Err(Error::Malformed(
                    "a sketch delta names an unknown operation",
                ));
            }
        };
        out.push(DeltaEntry {
            client,
            insert,
            key: r.u64()?,
            hash: r.array()?,
            stored: r.u64()?,
        });
    }
    r.finish()?;
    Ok(out)
}

/// Encodes a `sketch index` row: the record rows named (1 to [`MAX_INDEX_ROWS`]).
pub fn encode_index(rows: &[[u8; 32]]) -> Result<Vec<u8>, Error> {
    if rows.is_empty() || rows.len() > MAX_INDEX_ROWS {
        return Err(Error::Malformed(
            "a sketch index row names 1 to 64 record rows",
        ));
    }
    Ok(rows.concat())
}

/// Decodes a `sketch index` row, its size checked before anything is allocated.
pub fn decode_index(bytes: &[u8]) -> Result<Vec<[u8; 32]>, Error> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(32) || bytes.len() > MAX_INDEX_ROWS * 32 {
        return Err(Error::Malformed(
            "a sketch index row is not 1 to 64 record rows",
        ));
    }
    Ok(bytes
        .chunks_exact(32)
        .map(|c| {
            let mut row = [0u8; 32];
            row.copy_from_slice(c);
            row
        })
        .collect())
}
