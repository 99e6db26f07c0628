//! The snapshot header, format version 1 (see `docs/snapshot-format.md`).

use crate::{Error, KdfParams, codec::Reader};

/// Magic bytes that start every snapshot.
pub const MAGIC: [u8; 8] = *b"RDBTSNAP";
/// The format version this build writes.
pub const FORMAT_VERSION: u16 = 1;
/// Header length in bytes, checksum included; the ciphertext follows.
pub const HEADER_LEN: usize = 136;
/// Bytes of the header covered by its checksum.
const CHECKED_LEN: usize = HEADER_LEN - 32;
/// KDF identifier: Argon2id, version 0x13.
pub(crate) const KDF_ARGON2ID: u8 = 1;
/// Cipher identifier: XChaCha20-Poly1305.
pub(crate) const AEAD_XCHACHA20POLY1305: u8 = 1;
/// Poly1305 tag length.
pub(crate) const TAG_LEN: u64 = 16;
/// Largest ciphertext accepted, in bytes (1 GiB).
pub const MAX_BODY_LEN: u64 = 1 << 30;

/// The parsed header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) params: KdfParams,
    pub(crate) salt: [u8; 16],
    pub(crate) nonce: [u8; 24],
    pub(crate) check: [u8; 32],
    pub(crate) body_len: u64,
}

impl Header {
    /// The header's bytes, checksum last; all of it is the body's associated data.
    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..8].copy_from_slice(&MAGIC);
        out[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        out[10] = KDF_ARGON2ID;
        out[11] = AEAD_XCHACHA20POLY1305;
        out[12..16].copy_from_slice(&self.params.memory_kib.to_le_bytes());
        out[16..20].copy_from_slice(&self.params.iterations.to_le_bytes());
        out[20..24].copy_from_slice(&self.params.parallelism.to_le_bytes());
        out[24..40].copy_from_slice(&self.salt);
        out[40..64].copy_from_slice(&self.nonce);
        out[64..96].copy_from_slice(&self.check);
        out[96..104].copy_from_slice(&self.body_len.to_le_bytes());
        let checksum = header_checksum(&out[..CHECKED_LEN]);
        out[CHECKED_LEN..].copy_from_slice(&checksum);
        out
    }

    /// Parses and checks a header; returns it with the ciphertext that follows. Checks, in
    /// order: magic, version, length, checksum, algorithms, body length.
    pub(crate) fn parse(file: &[u8]) -> Result<(Self, &[u8]), Error> {
        let prefix = &file[..file.len().min(MAGIC.len())];
        if prefix != &MAGIC[..prefix.len()] {
            return Err(Error::NotASnapshot);
        }
        if file.len() < MAGIC.len() + 2 {
            return Err(truncated(HEADER_LEN as u64, file.len()));
        }
        let version = u16::from_le_bytes([file[8], file[9]]);
        if version != FORMAT_VERSION {
            return Err(Error::UnsupportedVersion(version));
        }
        if file.len() < HEADER_LEN {
            return Err(truncated(HEADER_LEN as u64, file.len()));
        }
        let (head, body) = file.split_at(HEADER_LEN);
        if header_checksum(&head[..CHECKED_LEN]) != head[CHECKED_LEN..] {
            return Err(Error::Corrupted("header checksum mismatch"));
        }
        let mut r = Reader::new(&head[10..CHECKED_LEN]);
        if r.u8()? != KDF_ARGON2ID {
            return Err(Error::UnsupportedAlgorithm("unknown KDF"));
        }
        if r.u8()? != AEAD_XCHACHA20POLY1305 {
            return Err(Error::UnsupportedAlgorithm("unknown cipher"));
        }
        let params = KdfParams {
            memory_kib: r.u32()?,
            iterations: r.u32()?,
            parallelism: r.u32()?,
        };
        let header = Self {
            params,
            salt: r.array()?,
            nonce: r.array()?,
            check: r.array()?,
            body_len: r.u64()?,
        };
        if header.body_len > MAX_BODY_LEN {
            return Err(Error::TooLarge {
                len: header.body_len,
                max: MAX_BODY_LEN,
            });
        }
        if header.body_len < TAG_LEN {
            return Err(Error::Corrupted("body shorter than its authentication tag"));
        }
        let body_len = body.len() as u64;
        if body_len < header.body_len {
            return Err(truncated(HEADER_LEN as u64 + header.body_len, file.len()));
        }
        if body_len > header.body_len {
            return Err(Error::Corrupted("bytes after the end of the body"));
        }
        Ok((header, body))
    }
}

fn truncated(expected: u64, actual: usize) -> Error {
    Error::Truncated {
        expected,
        actual: actual as u64,
    }
}

/// `blake3` of the header's first 104 bytes.
fn header_checksum(bytes: &[u8]) -> [u8; 32] {
    *blake3::hash(bytes).as_bytes()
}
