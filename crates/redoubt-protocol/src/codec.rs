//! The wire's byte codec: [`redoubt_vault::codec`] (the one bounded codec the wire and the
//! snapshot file share) with this crate's [`Error`], so a malformed frame is an
//! [`Error::Malformed`] naming the field.

use crate::Error;

/// Appends little-endian fields to a frame ([`redoubt_vault::codec::Writer`]).
pub(crate) type Writer = redoubt_vault::codec::Writer<Error>;

/// Reads a frame's fields, failing with [`Error::Malformed`] instead of reading past the end
/// ([`redoubt_vault::codec::Reader`]).
pub(crate) type Reader<'a> = redoubt_vault::codec::Reader<'a, Error>;

impl redoubt_vault::codec::CodecError for Error {
    fn malformed(what: &'static str) -> Self {
        Error::Malformed(what)
    }
}
