//! The released control protocol vectors (`tests/vectors/control-v1.txt`): every `ok` frame
//! decodes and encodes back to its bytes; every `bad` frame is refused.

use redoubt_control::{frame, message};

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// The frame as a request or a response (as `name` says), encoded back; or the error.
fn round_trip(name: &str, bytes: &[u8]) -> Result<Vec<u8>, redoubt_control::Error> {
    let (payload, used) = frame::split(bytes)?.expect("a whole frame");
    assert_eq!(used, bytes.len(), "{name}: one frame, nothing after it");
    if name.starts_with("request") {
        Ok(message::encode_request(&message::decode_request(payload)?)?.to_vec())
    } else {
        let request = message::decode_request(payload);
        let response = message::decode_response(payload);
        match (request, response) {
            (Ok(r), _) => Ok(message::encode_request(&r)?.to_vec()),
            (_, Ok(r)) => Ok(message::encode_response(&r)?.to_vec()),
            (_, Err(e)) => Err(e),
        }
    }
}

#[test]
fn control_v1_vectors() {
    assert_eq!(
        check(include_str!("../../../tests/vectors/control-v1.txt")),
        (25, 9)
    );
}

/// The history and restore requests, added to version 1 after its first vectors (those are
/// unchanged), encoded by an independent script.
#[test]
fn control_v1_history_vectors() {
    assert_eq!(
        check(include_str!(
            "../../../tests/vectors/control-v1-history.txt"
        )),
        (2, 3)
    );
}

/// The pairing extension's messages (`redoubt pair` through an agent), a new file beside the
/// released ones, encoded by an independent script.
#[test]
fn control_v1_pair_vectors() {
    assert_eq!(
        check(include_str!("../../../tests/vectors/control-v1-pair.txt")),
        (10, 11)
    );
}

/// The address book extension (request Addresses, response Address), added to version 1
/// after the files above (those are unchanged), encoded by an independent script.
#[test]
fn control_v1_addresses_vectors() {
    assert_eq!(
        check(include_str!(
            "../../../tests/vectors/control-v1-addresses.txt"
        )),
        (3, 4)
    );
}

/// Checks every line of a vector file; returns how many `ok` and `bad` lines it held.
fn check(text: &str) -> (usize, usize) {
    let (mut ok, mut bad) = (0, 0);
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (name, bytes) = line.rsplit_once(": ").unwrap();
        let bytes = hex(bytes);
        if let Some(name) = name.strip_prefix("ok ") {
            assert_eq!(round_trip(name, &bytes).unwrap(), bytes, "{name}");
            if let Some(kind) = name.strip_prefix("response ") {
                let (payload, _) = frame::split(&bytes).unwrap().unwrap();
                assert!(message::decode_response(payload).is_ok(), "{kind}");
            }
            ok += 1;
        } else if let Some(name) = name.strip_prefix("bad ") {
            assert!(round_trip("response", &bytes).is_err(), "{name} is refused");
            bad += 1;
        } else {
            panic!("unknown line {line:?}");
        }
    }
    (ok, bad)
}

/// The fuzz target's entry point over its committed seed corpus, on stable.
#[test]
fn the_fuzz_corpus_decodes_and_re_encodes() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fuzz/corpus/control_frame"
    );
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        redoubt_control::fuzzing::frames(&std::fs::read(entry.unwrap().path()).unwrap());
        seen += 1;
    }
    assert!(seen >= 50, "{seen} seeds");
}
