//! Caps every decoder checks before it allocates, and the sizes senders aim for.

use redoubt_vault::{MAX_PATH_LEN, MAX_VALUE_LEN};

/// Largest frame (one request or one response), in bytes. Checked before reading a frame.
pub const MAX_FRAME_LEN: usize = 4 * 1024 * 1024;
/// Most shapes in one request frame; senders split larger sets into batches.
pub const MAX_SHAPES_PER_FRAME: usize = 16 * 1024;
/// Most vault paths or record locations in a partial selection, and most clients named in an
/// import.
pub const MAX_SELECTION_ITEMS: usize = 1024;
/// Longest refusal detail, in bytes.
pub const MAX_DETAIL_LEN: usize = 256;
/// A sender closes a chunk once its plaintext reaches this size.
pub const CHUNK_TARGET: usize = 1024 * 1024;
/// Encoded size of the largest single entry in a chunk.
pub const MAX_ENTRY_LEN: usize = 3 * (2 + MAX_PATH_LEN) + ENTRY_FIXED_LEN + MAX_VALUE_LEN;
/// Largest chunk plaintext: a chunk closes at [`CHUNK_TARGET`], and one entry may cross it.
pub const MAX_CHUNK_PLAINTEXT: usize = 4 + CHUNK_TARGET + MAX_ENTRY_LEN;
/// Encoded size of the largest single entry in a version 4 chunk: version 1's and the largest
/// lineage (a parent and a full history within its byte budget).
pub const MAX_ENTRY_LEN_V4: usize = MAX_ENTRY_LEN + redoubt_vault::codec::lineage::MAX_LINEAGE_LEN;
/// Largest version 4 chunk plaintext: a chunk closes at [`CHUNK_TARGET`], and one entry may
/// cross it.
pub const MAX_CHUNK_PLAINTEXT_V4: usize = 4 + CHUNK_TARGET + MAX_ENTRY_LEN_V4;
/// Most entries in one chunk (each takes at least its 165 fixed bytes).
pub const MAX_CHUNK_ENTRIES: usize = MAX_CHUNK_PLAINTEXT / ENTRY_FIXED_LEN;
/// Encoded size of a shape on the wire, without its client id.
pub const SHAPE_LEN: usize = 32 + 32 + 4 + 32;
/// Longest peer id a bound (version 3) session takes, in bytes. A libp2p `PeerId` in its byte
/// form (`PeerId::to_bytes`) is a multihash of at most 44 bytes.
pub const MAX_PEER_ID_LEN: usize = 64;
/// How many value bytes a chunk stream may carry beyond what the responder announced in
/// `Ready` or `Decoded`: one largest value. The responder announces the sizes it holds when it
/// answers and serves each record as it holds it when it builds the chunk, so a record written
/// meanwhile can make the stream a little larger than announced.
pub const ANNOUNCED_BYTES_SLACK: u64 = MAX_VALUE_LEN as u64;

/// Fixed part of a chunk entry: claimed ids (3 × 32), size, hash, stamp, flag, value length.
pub(crate) const ENTRY_FIXED_LEN: usize = 96 + 4 + 32 + (8 + 4 + 16) + 1 + 4;

const _: () = assert!(MAX_CHUNK_PLAINTEXT + 64 < MAX_FRAME_LEN);
const _: () = assert!(MAX_CHUNK_PLAINTEXT_V4 + 64 < MAX_FRAME_LEN);
const _: () = assert!(MAX_SHAPES_PER_FRAME * (SHAPE_LEN + 36) + 64 * 1024 < MAX_FRAME_LEN);
