//! Pins `tests/vectors/remote-v1.txt` (docs/storage-format.md, version 1): the device id, a
//! sealed segment carrying the journal vector's event 1, its hash, name and chain, a sealed
//! head, and a key object. Run with `REDOUBT_WRITE_VECTORS=1` once to write a new version's
//! file; a released file is never edited.

use redoubt_remote::{
    DeviceId, StorageKey,
    crypto::{Kind, chain, segment_hash},
    format::{self, Head, Segment, SegmentKind, Skip},
};
use redoubt_store::KdfParams;
use redoubt_vault::{NodeId, hex};

const VECTOR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/vectors/remote-v1.txt"
);
const JOURNAL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/vectors/journal-v1-events.txt"
);

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Event 1 of the journal vectors, and the fixed storage key, device id and nonce.
fn fixture() -> (Vec<u8>, StorageKey, DeviceId, [u8; 24]) {
    let journal = std::fs::read_to_string(JOURNAL).unwrap();
    let event = journal
        .lines()
        .find_map(|l| l.strip_prefix("event-1 "))
        .map(unhex)
        .unwrap();
    let key = StorageKey::from_bytes([0x42; 32]);
    let device = key.device_id(&NodeId::from_bytes([0x11; 16]));
    (event, key, device, [0x5b; 24])
}

/// `name value` lines after `header`.
fn lines(header: &str, fields: &[(&str, String)]) -> String {
    let mut out = header.to_owned();
    for (name, value) in fields {
        out.push_str(&format!("{name} {value}\n"));
    }
    out
}

/// The pinned file at `path` (written once from `now` with `REDOUBT_WRITE_VECTORS=1` if it
/// does not exist yet), checked equal to `now`.
fn pinned(path: &str, now: &str) -> String {
    if std::env::var_os("REDOUBT_WRITE_VECTORS").is_some() && !std::path::Path::new(path).exists() {
        std::fs::write(path, now).unwrap();
    }
    let pinned = std::fs::read_to_string(path).expect(path);
    assert_eq!(now, pinned, "{path} changed: a released vector is frozen");
    pinned
}

/// The hex field `key` of a vector file, as bytes.
fn field(file: &str, key: &str) -> Vec<u8> {
    file.lines()
        .find_map(|l| l.strip_prefix(&format!("{key} ")))
        .map(unhex)
        .unwrap()
}

fn generate() -> String {
    let (event, key, device, nonce) = fixture();
    let segment = Segment {
        kind: SegmentKind::Events,
        seq: 1,
        prev: [0; 32],
        chain_before: None,
        skip: None,
        events: vec![event],
    };
    let plain = format::encode_segment(&segment).unwrap();
    let sealed = key.seal(Kind::Segment, &device, 1, &plain, &nonce).unwrap();
    let hash = segment_hash(&sealed);
    let chained = chain(&[0; 32], 1, &hash);
    let head = Head {
        seq: 1,
        latest: hash,
        chain: chained,
    };
    let head_plain = format::encode_head(&head);
    let head_sealed = key
        .seal(Kind::Head, &device, 0, &head_plain, &nonce)
        .unwrap();
    let key_object = format::wrap_key(
        &key,
        b"recovery words",
        KdfParams::insecure_fast(),
        &[0x33; 16],
        &nonce,
    )
    .unwrap();
    lines(
        "# redoubt remote storage format version 1 (docs/storage-format.md)\n\
         # storage key 0x42 x 32; node 0x11 x 16; every seal here uses nonce 0x5b x 24 only\n\
         # because this is a vector (writers draw a fresh random nonce per object)\n\
         # segment-1 carries event-1 of tests/vectors/journal-v1-events.txt\n\
         # key-object: passphrase \"recovery words\", Argon2id 8 KiB, 1 pass, 1 lane, salt 0x33 x 16\n",
        &[
            ("storage-key", hex(key.expose())),
            ("device-id", device.to_string()),
            ("segment-1-plaintext", hex(&plain)),
            ("segment-1-sealed", hex(&sealed)),
            ("segment-1-hash", hex(&hash)),
            ("segment-1-name", format::segment_name(&device, 1, &hash)),
            ("chain-1", hex(&chained)),
            ("head-name", format::head_name(&device)),
            ("head-plaintext", hex(&head_plain)),
            ("head-sealed", hex(&head_sealed)),
            ("key-object", hex(&key_object)),
        ],
    )
}

#[test]
fn remote_v1_vectors_match() {
    let pinned = pinned(VECTOR, &generate());
    // And the pinned bytes open and decode back to what they say.
    let get = |k: &str| {
        pinned
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k} ")))
            .map(str::to_owned)
            .unwrap()
    };
    let key = StorageKey::from_bytes(unhex(&get("storage-key")).try_into().unwrap());
    let device = DeviceId::parse(&get("device-id")).unwrap();
    let sealed = unhex(&get("segment-1-sealed"));
    let plain = key.open(Kind::Segment, &device, 1, &sealed).unwrap();
    let segment = format::decode_segment(&plain).unwrap();
    assert!(redoubt_store::journal::decode(&segment.events[0]).is_ok());
    let back = format::unwrap_key(
        &unhex(&get("key-object")),
        b"recovery words",
        &Default::default(),
    )
    .unwrap();
    assert_eq!(back.expose(), key.expose());
}

const BASE_VECTOR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/vectors/remote-v1-base.txt"
);

/// Segment 2 of the device of `remote-v1.txt`, after its segment 1: `kind` with `skip`, sealed,
/// and the head naming it, as the lines of a vector file named `name` after `header`.
fn second_segment(header: &str, name: &str, kind: SegmentKind, skip: Option<Skip>) -> String {
    let v1 = generate();
    let get = |k: &str| field(&v1, k);
    let (event, key, device, nonce) = fixture();
    let prev: [u8; 32] = get("segment-1-hash").try_into().unwrap();
    let chain_1: [u8; 32] = get("chain-1").try_into().unwrap();
    let segment = Segment {
        kind,
        seq: 2,
        prev,
        chain_before: Some(chain_1),
        skip,
        events: vec![event],
    };
    let plain = format::encode_segment(&segment).unwrap();
    let sealed = key.seal(Kind::Segment, &device, 2, &plain, &nonce).unwrap();
    let hash = segment_hash(&sealed);
    let chained = chain(&chain_1, 2, &hash);
    let head_plain = format::encode_head(&Head {
        seq: 2,
        latest: hash,
        chain: chained,
    });
    let head_sealed = key
        .seal(Kind::Head, &device, 0, &head_plain, &nonce)
        .unwrap();
    lines(
        header,
        &[
            (&format!("{name}-2-plaintext"), hex(&plain)),
            (&format!("{name}-2-sealed"), hex(&sealed)),
            (&format!("{name}-2-hash"), hex(&hash)),
            (
                &format!("{name}-2-name"),
                format::segment_name(&device, 2, &hash),
            ),
            ("chain-2", hex(&chained)),
            ("head-2-plaintext", hex(&head_plain)),
            ("head-2-sealed", hex(&head_sealed)),
        ],
    )
}

/// The format-2 base object (compaction), continuing the device of `remote-v1.txt`: base 2
/// after its segment 1, and the head naming it.
fn generate_base() -> String {
    second_segment(
        "# redoubt remote storage format version 1, base objects (format 2; docs/storage-format.md 5.5)\n\
         # continues tests/vectors/remote-v1.txt: same storage key, device and nonce 0x5b x 24\n\
         # base-2 follows segment-1 (prev = segment-1-hash, chain before = chain-1) and carries\n\
         # event-1 of tests/vectors/journal-v1-events.txt\n",
        "base",
        SegmentKind::Base,
        None,
    )
}

#[test]
fn remote_v1_base_vectors_match() {
    let pinned = pinned(BASE_VECTOR, &generate_base());
    let get = |k: &str| field(&pinned, k);
    let key = StorageKey::from_bytes([0x42; 32]);
    let device = key.device_id(&NodeId::from_bytes([0x11; 16]));
    let plain = key
        .open(Kind::Segment, &device, 2, &get("base-2-sealed"))
        .unwrap();
    let base = format::decode_segment(&plain).unwrap();
    assert_eq!((base.kind, base.seq), (SegmentKind::Base, 2));
    let chain_before = base.chain_before.unwrap();
    let hash: [u8; 32] = get("base-2-hash").try_into().unwrap();
    assert_eq!(segment_hash(&get("base-2-sealed")), hash);
    assert_eq!(chain(&chain_before, 2, &hash).to_vec(), get("chain-2"));
}

const PACK_VECTOR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/vectors/remote-v1-pack.txt"
);

/// A pack (format 3), continuing the device of `remote-v1.txt`: pack 2 after its segment 1,
/// standing for the run of segment 1 alone, and the head naming it.
fn generate_pack() -> String {
    second_segment(
        "# redoubt remote storage format version 1, packs (format 3; docs/storage-format.md 5.6)\n\
         # continues tests/vectors/remote-v1.txt: same storage key, device and nonce 0x5b x 24\n\
         # pack-2 follows segment-1 (prev = segment-1-hash, chain before = chain-1), stands for\n\
         # the run from segment 1 (so it links below to zeros) and carries event-1 of\n\
         # tests/vectors/journal-v1-events.txt\n",
        "pack",
        SegmentKind::Pack,
        Some(Skip {
            from: 1,
            hash: [0; 32],
            chain: [0; 32],
        }),
    )
}

#[test]
fn remote_v1_pack_vectors_match() {
    let pinned = pinned(PACK_VECTOR, &generate_pack());
    let get = |k: &str| field(&pinned, k);
    let key = StorageKey::from_bytes([0x42; 32]);
    let device = key.device_id(&NodeId::from_bytes([0x11; 16]));
    let plain = key
        .open(Kind::Segment, &device, 2, &get("pack-2-sealed"))
        .unwrap();
    let pack = format::decode_segment(&plain).unwrap();
    assert_eq!((pack.kind, pack.seq), (SegmentKind::Pack, 2));
    assert_eq!(pack.skip.map(|s| s.from), Some(1));
    let hash: [u8; 32] = get("pack-2-hash").try_into().unwrap();
    assert_eq!(segment_hash(&get("pack-2-sealed")), hash);
    assert_eq!(
        chain(&pack.chain_before.unwrap(), 2, &hash).to_vec(),
        get("chain-2")
    );
}
