//! Redoubt's cross-crate tests live beside this file (`../*.rs`); this library is empty and
//! exists only because a Cargo package needs one target besides its tests.
