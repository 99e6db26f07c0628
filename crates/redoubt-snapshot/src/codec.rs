//! Little-endian byte writer and a bounds-checked reader that never allocates past the input.

use zeroize::Zeroizing;

use crate::Error;

/// Appends fields to a buffer that is wiped on drop (it holds plaintext secrets).
pub(crate) struct Writer {
    buf: Zeroizing<Vec<u8>>,
}

impl Writer {
    pub(crate) fn new() -> Self {
        Self {
            buf: Zeroizing::new(Vec::new()),
        }
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub(crate) fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// A length-prefixed byte string; lengths were checked against the model's caps on entry.
    pub(crate) fn bytes_u16(&mut self, bytes: &[u8]) {
        self.u16(u16::try_from(bytes.len()).unwrap_or(u16::MAX));
        self.raw(bytes);
    }
    pub(crate) fn bytes_u32(&mut self, bytes: &[u8]) {
        self.u32(u32::try_from(bytes.len()).unwrap_or(u32::MAX));
        self.raw(bytes);
    }
    pub(crate) fn finish(self) -> Zeroizing<Vec<u8>> {
        self.buf
    }
}

/// Reads fields, failing with [`Error::Malformed`] instead of reading past the end.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if n > self.buf.len() {
            return Err(Error::Malformed("field runs past the end"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.array::<1>()?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16, Error> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    pub(crate) fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A u16-length-prefixed byte string of at most `max` bytes.
    pub(crate) fn bytes_u16(&mut self, max: usize, what: &'static str) -> Result<&'a [u8], Error> {
        let len = usize::from(self.u16()?);
        if len > max {
            return Err(Error::Malformed(what));
        }
        self.take(len)
    }

    /// A u32-length-prefixed byte string of at most `max` bytes.
    pub(crate) fn bytes_u32(&mut self, max: usize, what: &'static str) -> Result<&'a [u8], Error> {
        let len = usize::try_from(self.u32()?).map_err(|_| Error::Malformed(what))?;
        if len > max {
            return Err(Error::Malformed(what));
        }
        self.take(len)
    }

    /// An entry count, refused when the entries could not fit in what is left at `min_entry`
    /// bytes each, so a lying count never drives an allocation.
    pub(crate) fn count(&mut self, min_entry: usize, what: &'static str) -> Result<usize, Error> {
        let n = usize::try_from(self.u32()?).map_err(|_| Error::Malformed(what))?;
        if n.checked_mul(min_entry)
            .is_none_or(|need| need > self.remaining())
        {
            return Err(Error::Malformed(what));
        }
        Ok(n)
    }

    pub(crate) fn finish(&self) -> Result<(), Error> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(Error::Malformed("trailing bytes after the body"))
        }
    }
}
