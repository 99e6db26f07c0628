//! The sketch exchange's fields (version 2): a requester's [`Summary`], coded symbols, the keys
//! a responder lacks and why it falls back to shapes, each encoder directly above its decoder.

use std::fmt;

use redoubt_vault::sketch::{MAX_SYMBOLS, PROBES, Symbol};

use crate::{
    Error,
    codec::{Reader, Writer},
};

/// Encoded size of one coded symbol in a [`Request::Symbols`](super::Request::Symbols) frame:
/// key, checksum, count modulo 2^16.
pub const SYMBOL_LEN: usize = 8 + 4 + 2;

/// What a version 2 requester first tells of its set: its size, coded symbol 0 and the
/// fingerprints of its probe symbols (which let the responder estimate the difference).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Elements in the requester's scope (symbol 0's count).
    pub len: u64,
    /// Symbol 0's key and checksum sums (its count is `len`).
    pub first: Symbol,
    /// [`Symbol::fingerprint`] of symbols at [`PROBES`].
    pub probes: [u8; PROBES.len()],
}

pub(super) fn encode_summary(w: &mut Writer, s: &Summary) {
    w.varint(s.len);
    w.u64(s.first.key);
    w.u32(s.first.check);
    w.raw(&s.probes);
}

pub(super) fn decode_summary(r: &mut Reader<'_>) -> Result<Summary, Error> {
    let len = r.varint()?;
    let key = r.u64()?;
    let check = r.u32()?;
    Ok(Summary {
        len,
        first: Symbol {
            key,
            check,
            count: 0,
        },
        probes: r.array()?,
    })
}

/// Writes `from` and the symbols, counts modulo 2^16, after checking that they end within
/// [`MAX_SYMBOLS`].
pub(super) fn encode_symbols(w: &mut Writer, from: u32, symbols: &[Symbol]) -> Result<(), Error> {
    if symbols.len() > MAX_SYMBOLS || from as usize + symbols.len() > MAX_SYMBOLS {
        return Err(Error::Malformed("symbols beyond the sketch's cap"));
    }
    w.buf.reserve(symbols.len() * SYMBOL_LEN + 32);
    w.varint(u64::from(from));
    w.varint(symbols.len() as u64);
    for sym in symbols {
        w.u64(sym.key);
        w.u32(sym.check);
        w.raw(&(sym.count as u16).to_le_bytes());
    }
    Ok(())
}

pub(super) fn decode_symbols(r: &mut Reader<'_>) -> Result<(u32, Vec<Symbol>), Error> {
    let from = u32::try_from(r.varint()?)
        .ok()
        .filter(|&f| f as usize <= MAX_SYMBOLS)
        .ok_or(Error::Malformed("first symbol index beyond the cap"))?;
    let n = r.varint_count(MAX_SYMBOLS - from as usize, SYMBOL_LEN, "too many symbols")?;
    let mut symbols = Vec::with_capacity(n);
    for _ in 0..n {
        symbols.push(Symbol {
            key: r.u64()?,
            check: r.u32()?,
            count: i32::from(r.u16()?),
        });
    }
    Ok((from, symbols))
}

pub(super) fn encode_keys(w: &mut Writer, keys: &[u64]) -> Result<(), Error> {
    if keys.len() > MAX_SYMBOLS {
        return Err(Error::Malformed("more lacking keys than the sketch's cap"));
    }
    w.varint(keys.len() as u64);
    for k in keys {
        w.u64(*k);
    }
    Ok(())
}

pub(super) fn decode_keys(r: &mut Reader<'_>) -> Result<Vec<u64>, Error> {
    let n = r.varint_count(MAX_SYMBOLS, 8, "too many lacking keys")?;
    let mut keys = Vec::with_capacity(n);
    for _ in 0..n {
        keys.push(r.u64()?);
    }
    Ok(keys)
}

/// Why a version 2 responder asks to fall back to sending every shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FallbackReason {
    /// The difference is too large for [`MAX_SYMBOLS`] symbols to decode.
    TooLarge,
    /// Sending every shape costs fewer bytes than the symbols would.
    ShapesCheaper,
    /// Two versions share a 64-bit key: only full shapes can tell them apart.
    KeyCollision,
    /// A code this version does not know.
    Other(u8),
}

impl FallbackReason {
    pub(super) fn to_byte(self) -> u8 {
        match self {
            Self::TooLarge => 1,
            Self::ShapesCheaper => 2,
            Self::KeyCollision => 3,
            Self::Other(b) => b,
        }
    }

    pub(super) fn from_byte(b: u8) -> Self {
        match b {
            1 => Self::TooLarge,
            2 => Self::ShapesCheaper,
            3 => Self::KeyCollision,
            b => Self::Other(b),
        }
    }
}

impl fmt::Display for FallbackReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge => f.write_str("difference too large for the sketch"),
            Self::ShapesCheaper => f.write_str("shapes are cheaper than symbols"),
            Self::KeyCollision => f.write_str("two versions share a short key"),
            Self::Other(b) => write!(f, "fallback reason {b}"),
        }
    }
}
