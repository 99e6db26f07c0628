//! Little-endian field writer and a reader that never reads or allocates past its input.

use crate::Error;

/// Appends fields to a buffer.
#[derive(Default)]
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self {
            buf: Vec::with_capacity(n),
        }
    }
    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
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
    /// A byte string with a u16 length; callers pass paths already checked against their cap.
    pub(crate) fn bytes_u16(&mut self, bytes: &[u8]) {
        let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.raw(&bytes[..usize::from(len)]);
    }
    /// An unsigned LEB128 integer (1 to 10 bytes).
    pub(crate) fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }
    /// A count, as u32; callers pass counts already checked against their cap.
    pub(crate) fn count(&mut self, n: usize) {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
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
    pub(crate) fn bool(&mut self) -> Result<bool, Error> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Error::Malformed("flag is neither 0 nor 1")),
        }
    }

    /// An unsigned LEB128 integer in its shortest form.
    pub(crate) fn varint(&mut self) -> Result<u64, Error> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            if shift == 63 && b > 1 {
                return Err(Error::Malformed("varint overflows 64 bits"));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                if b == 0 && shift > 0 {
                    return Err(Error::Malformed("varint not in its shortest form"));
                }
                return Ok(v);
            }
        }
        Err(Error::Malformed("varint longer than 10 bytes"))
    }

    /// A varint count of items at most `max`, each taking at least `min_item` bytes of what
    /// remains, checked before the caller allocates for them.
    pub(crate) fn varint_count(
        &mut self,
        max: usize,
        min_item: usize,
        what: &'static str,
    ) -> Result<usize, Error> {
        let n = usize::try_from(self.varint()?).map_err(|_| Error::Malformed(what))?;
        if n > max || n.saturating_mul(min_item) > self.remaining() {
            return Err(Error::Malformed(what));
        }
        Ok(n)
    }

    /// A u16-length byte string of at most `max` bytes.
    pub(crate) fn bytes_u16(&mut self, max: usize, what: &'static str) -> Result<&'a [u8], Error> {
        let len = usize::from(self.u16()?);
        if len > max {
            return Err(Error::Malformed(what));
        }
        self.take(len)
    }

    /// A path: 1 to `MAX_PATH_LEN` bytes.
    pub(crate) fn path(&mut self) -> Result<&'a [u8], Error> {
        let p = self.bytes_u16(redoubt_vault::MAX_PATH_LEN, "path too long")?;
        if p.is_empty() {
            return Err(Error::Malformed("empty path"));
        }
        Ok(p)
    }

    /// A count of items at most `max`, each taking at least `min_item` bytes of what remains,
    /// checked before the caller allocates for them.
    pub(crate) fn count(
        &mut self,
        max: usize,
        min_item: usize,
        what: &'static str,
    ) -> Result<usize, Error> {
        let n = usize::try_from(self.u32()?).map_err(|_| Error::Malformed(what))?;
        if n > max || n.saturating_mul(min_item) > self.remaining() {
            return Err(Error::Malformed(what));
        }
        Ok(n)
    }

    pub(crate) fn finish(self) -> Result<(), Error> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(Error::Malformed("trailing bytes"))
        }
    }
}
