//! Frames: `version (u8) | length (u32, big-endian) | payload`, the payload an opcode byte and
//! then fields, each `length (u32, big-endian) | bytes`.

use zeroize::Zeroizing;

use crate::Error;

/// The protocol version this crate speaks, the first byte of every frame.
pub const VERSION: u8 = 1;
/// Bytes before the payload: the version and the payload's length.
pub const HEADER_LEN: usize = 5;
/// The largest payload accepted: a value of the vault's largest size (1 MiB) with its three
/// names and framing fits.
pub const MAX_PAYLOAD: usize = 1024 * 1024 + 64 * 1024;

/// The payload length a frame header announces, checked against the version and
/// [`MAX_PAYLOAD`] before the caller allocates anything for it.
pub fn header(bytes: &[u8; HEADER_LEN]) -> Result<usize, Error> {
    if bytes[0] != VERSION {
        return Err(Error::Version(bytes[0]));
    }
    let len = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    let len = usize::try_from(len).map_err(|_| Error::TooLarge(u64::from(len)))?;
    if len > MAX_PAYLOAD {
        return Err(Error::TooLarge(len as u64));
    }
    if len == 0 {
        return Err(Error::Empty);
    }
    Ok(len)
}

/// The first whole frame of `bytes`: its payload and how many bytes it took, or `None` when
/// more bytes are needed.
pub fn split(bytes: &[u8]) -> Result<Option<(&[u8], usize)>, Error> {
    let Some(head) = bytes.first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    let len = header(head)?;
    Ok(bytes
        .get(HEADER_LEN..HEADER_LEN + len)
        .map(|payload| (payload, HEADER_LEN + len)))
}

/// One whole frame holding `op` and `fields`, in a buffer wiped on drop (fields may be
/// secrets). Fails when the payload would be over [`MAX_PAYLOAD`].
pub fn encode(op: u8, fields: &[&[u8]]) -> Result<Zeroizing<Vec<u8>>, Error> {
    let len = fields.iter().fold(1usize, |sum, f| {
        sum.saturating_add(4).saturating_add(f.len())
    });
    if len > MAX_PAYLOAD {
        return Err(Error::TooLarge(len as u64));
    }
    let mut out = Zeroizing::new(Vec::with_capacity(HEADER_LEN + len));
    out.push(VERSION);
    // At most MAX_PAYLOAD, so it fits in a u32; every field too.
    out.extend_from_slice(&(len as u32).to_be_bytes());
    out.push(op);
    for f in fields {
        out.extend_from_slice(&(f.len() as u32).to_be_bytes());
        out.extend_from_slice(f);
    }
    Ok(out)
}

/// A payload's opcode and fields (borrowed from it). No count is trusted: each field is
/// checked against what is left of the payload.
pub fn fields(payload: &[u8]) -> Result<(u8, Vec<&[u8]>), Error> {
    let (&op, mut rest) = payload.split_first().ok_or(Error::Empty)?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let index = out.len();
        let (len, tail) = rest
            .split_first_chunk::<4>()
            .ok_or(Error::Truncated { index })?;
        let len = u32::from_be_bytes(*len) as usize;
        if len > tail.len() {
            return Err(Error::Truncated { index });
        }
        let (field, tail) = tail.split_at(len);
        out.push(field);
        rest = tail;
    }
    Ok((op, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_round_trips_and_needs_all_its_bytes() {
        let bytes = encode(7, &[b"ab", b"", b"c"]).unwrap();
        assert_eq!(bytes[0], VERSION);
        for cut in 0..bytes.len() {
            assert_eq!(split(&bytes[..cut]).unwrap(), None, "cut at {cut}");
        }
        let (payload, used) = split(&bytes).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        let (op, f) = fields(payload).unwrap();
        assert_eq!(op, 7);
        assert_eq!(f, vec![&b"ab"[..], b"", b"c"]);
    }

    #[test]
    fn bad_headers_are_refused_before_any_payload_is_read() {
        assert_eq!(header(&[2, 0, 0, 0, 1]), Err(Error::Version(2)));
        let over = (MAX_PAYLOAD as u32 + 1).to_be_bytes();
        assert_eq!(
            header(&[1, over[0], over[1], over[2], over[3]]),
            Err(Error::TooLarge(MAX_PAYLOAD as u64 + 1))
        );
        assert_eq!(
            header(&[1, 0xff, 0xff, 0xff, 0xff]).unwrap_err(),
            Error::TooLarge(u64::from(u32::MAX))
        );
        assert_eq!(header(&[1, 0, 0, 0, 0]), Err(Error::Empty));
        let big = vec![0u8; MAX_PAYLOAD];
        assert!(matches!(encode(1, &[&big]), Err(Error::TooLarge(_))));
    }

    #[test]
    fn a_field_longer_than_the_payload_is_refused() {
        assert_eq!(
            fields(&[1, 0, 0, 0, 5, b'a']),
            Err(Error::Truncated { index: 0 })
        );
        assert_eq!(
            fields(&[1, 0, 0, 0, 1, b'a', 0, 0]),
            Err(Error::Truncated { index: 1 })
        );
        assert_eq!(fields(&[]), Err(Error::Empty));
    }
}
