//! The file's byte codec: [`redoubt_vault::codec`] (the one bounded codec the snapshot file and
//! the wire share) with this crate's [`Error`], so a malformed body is an [`Error::Malformed`]
//! naming the field.

use crate::Error;

/// Appends little-endian fields to a body ([`redoubt_vault::codec::Writer`]); the body holds
/// secrets, so it is built with [`Writer::secret`] and taken with [`Writer::into_secret`].
pub(crate) type Writer = redoubt_vault::codec::Writer<Error>;

/// Reads fields, failing with [`Error::Malformed`] instead of reading past the end
/// ([`redoubt_vault::codec::Reader`]).
pub(crate) type Reader<'a> = redoubt_vault::codec::Reader<'a, Error>;

impl redoubt_vault::codec::CodecError for Error {
    fn malformed(what: &'static str) -> Self {
        Error::Malformed(what)
    }
}
