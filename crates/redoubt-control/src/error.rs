//! The control protocol's error type.

/// What is wrong with a frame or a message. Messages name sizes, codes and fields, never the
/// bytes of a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The frame's version byte is not one this side speaks.
    #[error("control frame version {0} is not supported (this side speaks version 1)")]
    Version(u8),
    /// The frame announces more payload than [`crate::MAX_PAYLOAD`].
    #[error("control frame of {0} bytes is over the limit of {max} bytes", max = crate::MAX_PAYLOAD)]
    TooLarge(u64),
    /// The payload is empty (it must start with an opcode).
    #[error("control frame has no opcode")]
    Empty,
    /// A field's length runs past the end of the payload.
    #[error("control frame field {index} is cut short")]
    Truncated {
        /// Which field (from 0).
        index: usize,
    },
    /// An opcode this version does not define, or one from the wrong side.
    #[error("unknown control opcode 0x{0:02x}")]
    Opcode(u8),
    /// The message has the wrong number of fields for its opcode.
    #[error("control opcode 0x{op:02x} takes {want} field(s), not {got}")]
    Fields {
        /// The opcode.
        op: u8,
        /// What it takes.
        want: &'static str,
        /// What came.
        got: usize,
    },
    /// A field does not hold what its place says (text that is not UTF-8, a flag not 0 or 1,
    /// an integer of the wrong width).
    #[error("control opcode 0x{op:02x}: field {index} is not {what}")]
    Field {
        /// The opcode.
        op: u8,
        /// Which field (from 0).
        index: usize,
        /// What it should be.
        what: &'static str,
    },
}
