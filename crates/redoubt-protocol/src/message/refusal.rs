//! Why a peer refuses a request ([`RefusalCode`]), as one byte of a
//! [`Response::Refused`](super::Response::Refused) frame.

use std::fmt;

/// Why a peer refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefusalCode {
    /// No grant allows it.
    PermissionDenied,
    /// The responder holds no such client.
    ClientNotFound,
    /// The request broke a protocol rule.
    BadRequest,
    /// No such session (expired, finished or never opened).
    UnknownSession,
    /// Too many sessions at once; try later.
    Busy,
    /// A failure on the peer's side.
    Internal,
    /// A code this version does not know.
    Other(u8),
}

impl RefusalCode {
    pub(super) fn to_byte(self) -> u8 {
        match self {
            Self::PermissionDenied => 1,
            Self::ClientNotFound => 2,
            Self::BadRequest => 3,
            Self::UnknownSession => 4,
            Self::Busy => 5,
            Self::Internal => 6,
            Self::Other(b) => b,
        }
    }

    pub(super) fn from_byte(b: u8) -> Self {
        match b {
            1 => Self::PermissionDenied,
            2 => Self::ClientNotFound,
            3 => Self::BadRequest,
            4 => Self::UnknownSession,
            5 => Self::Busy,
            6 => Self::Internal,
            b => Self::Other(b),
        }
    }
}

impl fmt::Display for RefusalCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PermissionDenied => f.write_str("permission denied"),
            Self::ClientNotFound => f.write_str("client not found"),
            Self::BadRequest => f.write_str("bad request"),
            Self::UnknownSession => f.write_str("unknown or expired session"),
            Self::Busy => f.write_str("busy"),
            Self::Internal => f.write_str("internal error"),
            Self::Other(b) => write!(f, "refusal code {b}"),
        }
    }
}
