//! Redoubt's local control protocol, version 1 (`docs/control-protocol.md`): what a `redoubt`
//! command and a running agent say to each other over the agent's Unix socket.
//!
//! Sans-IO: [`frame`] reads and writes length-prefixed frames (the length checked against
//! [`MAX_PAYLOAD`] before anything is allocated), [`message`] turns a frame into a typed
//! [`Request`] or [`Response`] and back. The caller owns the socket.
//!
//! ```
//! use redoubt_control::{Request, Response, frame, message};
//!
//! let bytes = message::encode_request(&Request::Status).unwrap();
//! let (payload, used) = frame::split(&bytes).unwrap().unwrap();
//! assert_eq!(used, bytes.len());
//! assert_eq!(message::decode_request(payload).unwrap(), Request::Status);
//! let reply = message::encode_response(&Response::Count(3)).unwrap();
//! let (payload, _) = frame::split(&reply).unwrap().unwrap();
//! assert_eq!(message::decode_response(payload).unwrap(), Response::Count(3));
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod error;
pub mod frame;
pub mod message;
mod secret;

pub use error::Error;
pub use frame::{HEADER_LEN, MAX_PAYLOAD, VERSION};
pub use message::{ErrorKind, ListItem, PairRequest, PairResponse, Request, Response, Target};
pub use secret::SecretBytes;

/// For the fuzz target: `data` as a stream of frames, each decoded as a request and as a
/// response; whatever decodes must encode back to the very same frame.
#[doc(hidden)]
pub mod fuzzing {
    use crate::{frame, message};

    /// Panics when a decoded message does not re-encode to its frame.
    pub fn frames(mut data: &[u8]) {
        while let Ok(Some((payload, used))) = frame::split(data) {
            let whole = &data[..used];
            if let Ok(r) = message::decode_request(payload) {
                let again = message::encode_request(&r).unwrap_or_default();
                assert_eq!(&again[..], whole, "request {r:?}");
            }
            if let Ok(r) = message::decode_response(payload) {
                let again = message::encode_response(&r).unwrap_or_default();
                assert_eq!(&again[..], whole, "response {r:?}");
            }
            data = &data[used..];
        }
    }
}
