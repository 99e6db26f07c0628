//! Size limits every layer checks before it allocates.

/// Longest client, vault or record path, in bytes.
pub const MAX_PATH_LEN: usize = 1024;
/// Largest secret value, in bytes.
pub const MAX_VALUE_LEN: usize = 1024 * 1024;
/// Longest peer id kept in the access table, in bytes (a libp2p `PeerId` is at most 42).
pub const MAX_PEER_ID_LEN: usize = 64;
