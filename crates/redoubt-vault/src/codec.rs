//! The one bounded byte codec every Redoubt format is written with: a little-endian [`Writer`]
//! and a [`Reader`] that never reads past its input and never allocates for a count or a length
//! it has not checked against a cap and the bytes left.
//!
//! The wire (`redoubt-protocol`) and the snapshot file (`redoubt-snapshot`) both use it; each
//! crate names its own error type `E` (anything that implements [`CodecError`]), so a decoding
//! failure arrives as that crate's own `Malformed` variant with the codec's message. [`record`]
//! encodes and decodes records for both formats.
//!
//! Length prefixes and counts are bounded on both sides. Decoding, every length is checked
//! against the caller's cap and every count against a cap and the bytes left at a minimum
//! element size, before anything is allocated. Encoding, the `checked_*` methods refuse a field
//! over the caller's cap with an error; the plain [`Writer::bytes_u16`], [`Writer::bytes_u32`]
//! and [`Writer::count`] take a documented precondition (callers check a far smaller cap first)
//! and, should it ever break, still never write a length that disagrees with the bytes after it.
//!
//! ```
//! use redoubt_vault::{Error, codec::{Reader, Writer}};
//!
//! let mut w = Writer::<Error>::new();
//! w.u8(7);
//! w.checked_bytes_u16(b"wallet", 1024, "path too long")?;
//! let bytes = w.into_bytes();
//! assert_eq!(bytes, [7, 6, 0, b'w', b'a', b'l', b'l', b'e', b't']);
//!
//! let mut r = Reader::<Error>::new(&bytes);
//! assert_eq!(r.u8()?, 7);
//! assert_eq!(r.bytes_u16(1024, "path too long")?, b"wallet");
//! r.finish()?;
//! # Ok::<(), Error>(())
//! ```

use std::marker::PhantomData;

use zeroize::{Zeroize, Zeroizing};

use crate::{Error, limits::MAX_PATH_LEN};

pub mod lineage;
pub mod record;

/// An error type the codec can report a malformed input (or an oversized field) with: each
/// crate's own error enum, whose `Malformed` variant carries the message.
pub trait CodecError {
    /// The error for a malformed input: `what` says which field and how.
    fn malformed(what: &'static str) -> Self;
}

impl CodecError for Error {
    fn malformed(what: &'static str) -> Self {
        Error::Malformed(what)
    }
}

/// Appends little-endian fields to a buffer.
///
/// A [`Writer::secret`] buffer, for plaintext that holds secret values, wipes every allocation
/// it outgrows, and its last one when dropped unfinished (an early return or a panic); taken
/// with [`Writer::into_secret`], it is wiped when that drops.
pub struct Writer<E = Error> {
    /// The bytes written so far. Public so that a caller can reserve ahead or take the frame
    /// without a copy; reserving through it bypasses a [`Writer::secret`] buffer's wiping.
    pub buf: Vec<u8>,
    wipe: bool,
    error: PhantomData<fn() -> E>,
}

impl<E> Drop for Writer<E> {
    /// A secret buffer dropped before it was taken (an error or a panic half-way) is wiped.
    fn drop(&mut self) {
        if self.wipe {
            self.buf.zeroize();
        }
    }
}

impl<E: CodecError> Default for Writer<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: CodecError> Writer<E> {
    /// An empty writer.
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An empty writer with room for `n` bytes.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            buf: Vec::with_capacity(n),
            wipe: false,
            error: PhantomData,
        }
    }

    /// An empty writer for secret plaintext, with room for `n` bytes: when it outgrows its
    /// buffer it copies into a larger one and wipes the old one, so no copy is left behind.
    pub fn secret(n: usize) -> Self {
        let mut w = Self::with_capacity(n);
        w.wipe = true;
        w
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The bytes written.
    pub fn into_bytes(mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    /// The bytes written, wiped when dropped.
    pub fn into_secret(mut self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(std::mem::take(&mut self.buf))
    }

    /// Makes room for `n` more bytes; a secret buffer moves and wipes the old allocation.
    fn room(&mut self, n: usize) {
        if !self.wipe || self.buf.capacity() - self.buf.len() >= n {
            return;
        }
        let want = self.buf.len().saturating_add(n);
        let mut grown = Vec::with_capacity(want.max(self.buf.capacity().saturating_mul(2)));
        grown.extend_from_slice(&self.buf);
        self.buf.zeroize();
        self.buf = grown;
    }

    /// One byte.
    pub fn u8(&mut self, v: u8) {
        self.raw(&[v]);
    }
    /// A u16, little-endian.
    pub fn u16(&mut self, v: u16) {
        self.raw(&v.to_le_bytes());
    }
    /// A u32, little-endian.
    pub fn u32(&mut self, v: u32) {
        self.raw(&v.to_le_bytes());
    }
    /// A u64, little-endian.
    pub fn u64(&mut self, v: u64) {
        self.raw(&v.to_le_bytes());
    }
    /// Bytes as they are, with no length (fixed-size fields and arrays).
    pub fn raw(&mut self, bytes: &[u8]) {
        self.room(bytes.len());
        self.buf.extend_from_slice(bytes);
    }

    /// A byte string with a u16 length.
    ///
    /// Precondition: `bytes` is at most `u16::MAX` bytes. Callers check their own, far smaller
    /// cap first (paths 1 024, peer ids 64, refusal details 256) or use
    /// [`Self::checked_bytes_u16`]. Should the precondition break, debug builds panic and
    /// release builds write the first `u16::MAX` bytes under that length: the length always
    /// matches the bytes that follow, so the stream never loses its framing.
    pub fn bytes_u16(&mut self, bytes: &[u8]) {
        debug_assert!(
            bytes.len() <= usize::from(u16::MAX),
            "bytes_u16 precondition"
        );
        let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
        self.u16(len);
        self.raw(&bytes[..usize::from(len)]);
    }

    /// A byte string with a u32 length; the precondition (at most `u32::MAX` bytes) and its
    /// handling are those of [`Self::bytes_u16`].
    pub fn bytes_u32(&mut self, bytes: &[u8]) {
        debug_assert!(u32::try_from(bytes.len()).is_ok(), "bytes_u32 precondition");
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        self.u32(len);
        // u32 always fits in usize on the targets Redoubt builds for (32 and 64 bits).
        self.raw(&bytes[..usize::try_from(len).unwrap_or(usize::MAX)]);
    }

    /// A byte string with a u16 length, refused with `what` over `max` (or `u16::MAX`) bytes.
    pub fn checked_bytes_u16(
        &mut self,
        bytes: &[u8],
        max: usize,
        what: &'static str,
    ) -> Result<(), E> {
        if bytes.len() > max.min(usize::from(u16::MAX)) {
            return Err(E::malformed(what));
        }
        self.bytes_u16(bytes);
        Ok(())
    }

    /// A byte string with a u32 length, refused with `what` over `max` (or `u32::MAX`) bytes.
    pub fn checked_bytes_u32(
        &mut self,
        bytes: &[u8],
        max: usize,
        what: &'static str,
    ) -> Result<(), E> {
        if bytes.len() > max || u32::try_from(bytes.len()).is_err() {
            return Err(E::malformed(what));
        }
        self.bytes_u32(bytes);
        Ok(())
    }

    /// A count, as u32.
    ///
    /// Precondition: `n` is at most `u32::MAX`; callers check their own, far smaller cap first
    /// or use [`Self::checked_count`]. Debug builds panic should it break.
    pub fn count(&mut self, n: usize) {
        debug_assert!(u32::try_from(n).is_ok(), "count precondition");
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }

    /// A count, as u32, refused with `what` over `max` (or `u32::MAX`).
    pub fn checked_count(&mut self, n: usize, max: usize, what: &'static str) -> Result<(), E> {
        let v = u32::try_from(n).map_err(|_| E::malformed(what))?;
        if n > max {
            return Err(E::malformed(what));
        }
        self.u32(v);
        Ok(())
    }

    /// An unsigned LEB128 integer (1 to 10 bytes).
    pub fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.u8((v as u8) | 0x80);
            v >>= 7;
        }
        self.u8(v as u8);
    }
}

/// Reads little-endian fields, failing with `E::malformed` instead of reading past the end.
pub struct Reader<'a, E = Error> {
    buf: &'a [u8],
    error: PhantomData<fn() -> E>,
}

impl<'a, E: CodecError> Reader<'a, E> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            error: PhantomData,
        }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], E> {
        if n > self.buf.len() {
            return Err(E::malformed("field runs past the end"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// The next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], E> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, E> {
        Ok(self.array::<1>()?[0])
    }
    /// A little-endian u16.
    pub fn u16(&mut self) -> Result<u16, E> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    /// A little-endian u32.
    pub fn u32(&mut self) -> Result<u32, E> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    /// A little-endian u64.
    pub fn u64(&mut self) -> Result<u64, E> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A flag byte: 0 or 1, anything else refused.
    pub fn bool(&mut self) -> Result<bool, E> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(E::malformed("flag is neither 0 nor 1")),
        }
    }

    /// An unsigned LEB128 integer in its shortest form.
    pub fn varint(&mut self) -> Result<u64, E> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            if shift == 63 && b > 1 {
                return Err(E::malformed("varint overflows 64 bits"));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                if b == 0 && shift > 0 {
                    return Err(E::malformed("varint not in its shortest form"));
                }
                return Ok(v);
            }
        }
        Err(E::malformed("varint longer than 10 bytes"))
    }

    /// Checks a count of `n` items against `max` and against what remains at `min_item` bytes
    /// each, before the caller allocates for them.
    fn checked(&self, n: u64, max: usize, min_item: usize, what: &'static str) -> Result<usize, E> {
        let n = usize::try_from(n).map_err(|_| E::malformed(what))?;
        if n > max
            || n.checked_mul(min_item)
                .is_none_or(|need| need > self.remaining())
        {
            return Err(E::malformed(what));
        }
        Ok(n)
    }

    /// A u32 count of items at most `max`, each taking at least `min_item` bytes of what
    /// remains, checked before the caller allocates for them.
    pub fn count(&mut self, max: usize, min_item: usize, what: &'static str) -> Result<usize, E> {
        let n = self.u32()?;
        self.checked(u64::from(n), max, min_item, what)
    }

    /// A varint count of items at most `max`, each taking at least `min_item` bytes of what
    /// remains, checked before the caller allocates for them.
    pub fn varint_count(
        &mut self,
        max: usize,
        min_item: usize,
        what: &'static str,
    ) -> Result<usize, E> {
        let n = self.varint()?;
        self.checked(n, max, min_item, what)
    }

    /// A u16-length byte string of at most `max` bytes.
    pub fn bytes_u16(&mut self, max: usize, what: &'static str) -> Result<&'a [u8], E> {
        let len = usize::from(self.u16()?);
        if len > max {
            return Err(E::malformed(what));
        }
        self.take(len)
    }

    /// A u32-length byte string of at most `max` bytes.
    pub fn bytes_u32(&mut self, max: usize, what: &'static str) -> Result<&'a [u8], E> {
        let len = usize::try_from(self.u32()?).map_err(|_| E::malformed(what))?;
        if len > max {
            return Err(E::malformed(what));
        }
        self.take(len)
    }

    /// A path: a u16-length byte string of 1 to [`MAX_PATH_LEN`] bytes.
    pub fn path(&mut self) -> Result<&'a [u8], E> {
        let p = self.bytes_u16(MAX_PATH_LEN, "path too long")?;
        if p.is_empty() {
            return Err(E::malformed("empty path"));
        }
        Ok(p)
    }

    /// Succeeds only if every byte was read.
    pub fn finish(self) -> Result<(), E> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(E::malformed("trailing bytes"))
        }
    }
}

#[cfg(test)]
mod tests;
