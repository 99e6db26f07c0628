//! The pairing version 3 vectors (`tests/vectors/pair-v3-frames.txt`): the remotes key of a
//! fixed SPAKE2 key, the sealed remotes of a fixed nonce, every frame of version 3 (each decodes
//! as version 3 and encodes back to its bytes; a version 2 decoder refuses it), and frames that
//! must be refused.

use redoubt_crypto::Key;
use redoubt_protocol::pairing::{
    PAIR_VERSION_3, PairRefusal, PairRequest, PairResponse, SharedRemote,
    remotes::{open_remotes_with, remotes_key, seal_remotes_with},
};

const FILE: &str = include_str!("../../../tests/vectors/pair-v3-frames.txt");

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The remotes the vector's welcome shares.
fn shared() -> Vec<SharedRemote> {
    vec![
        SharedRemote {
            name: "nas".into(),
            url: "file:///srv/nas".into(),
            clients: Some(vec![b"alice".to_vec()]),
            key: Key::from_bytes([0x42; 32]),
        },
        SharedRemote {
            name: "s3".into(),
            url: "s3://bucket/redoubt".into(),
            clients: None,
            key: Key::from_bytes([0x43; 32]),
        },
    ]
}

/// Every line of the file as the code makes it.
fn lines() -> Vec<(String, Vec<u8>)> {
    let spake_key = [0x11u8; 32];
    let nonce = [0x5bu8; 24];
    let key = remotes_key(&spake_key);
    let clients = vec![b"alice".to_vec()];
    let sealed = seal_remotes_with(&key, &nonce, &clients, &shared()).unwrap();
    let v3 = |r: &PairRequest| r.encode_as(PAIR_VERSION_3).unwrap();
    let v3r = |r: &PairResponse| r.encode_as(PAIR_VERSION_3).unwrap();
    let welcome = v3r(&PairResponse::Welcome {
        clients: clients.clone(),
        remotes: Some(sealed.clone()),
    });
    let mut tampered = welcome.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let mut v2_welcome_as_v3 = PairResponse::Welcome {
        clients: clients.clone(),
        remotes: None,
    }
    .encode()
    .unwrap();
    v2_welcome_as_v3[0] = PAIR_VERSION_3;
    let mut over_cap = welcome[..2 + 4 + 2 + 5].to_vec();
    over_cap.extend_from_slice(&(1024u32 * 1024 + 1).to_le_bytes());
    vec![
        ("spake-key".into(), spake_key.to_vec()),
        ("remotes-key".into(), key.expose().to_vec()),
        ("nonce".into(), nonce.to_vec()),
        ("sealed".into(), sealed.clone()),
        (
            "ok request hello".into(),
            v3(&PairRequest::Hello {
                nameplate: 42,
                spake: [0xaa; 33],
                commitment: [0xbb; 32],
            }),
        ),
        (
            "ok request confirm".into(),
            v3(&PairRequest::Confirm {
                tag: [1; 32],
                nonce: [2; 32],
            }),
        ),
        (
            "ok request decide accept".into(),
            v3(&PairRequest::Decide { accept: true }),
        ),
        (
            "ok request decide decline".into(),
            v3(&PairRequest::Decide { accept: false }),
        ),
        (
            "ok response challenge".into(),
            v3r(&PairResponse::Challenge {
                spake: [3; 33],
                tag: [4; 32],
            }),
        ),
        ("ok response accepted".into(), v3r(&PairResponse::Accepted)),
        ("ok response welcome alice nas s3".into(), welcome),
        (
            "ok response refused declined".into(),
            v3r(&PairResponse::Refused {
                reason: PairRefusal::Declined,
            }),
        ),
        (
            "bad response welcome without remotes".into(),
            v2_welcome_as_v3,
        ),
        (
            "bad response welcome sealed remotes over the cap".into(),
            over_cap,
        ),
        (
            "bad response welcome cut short".into(),
            tampered[..tampered.len() - 1].to_vec(),
        ),
        ("bad request version 4 decide".into(), {
            let mut f = v3(&PairRequest::Decide { accept: true });
            f[0] = 4;
            f
        }),
        ("seal-tampered welcome".into(), tampered),
    ]
}

#[test]
fn pair_v3_vectors() {
    let want = lines();
    if std::env::var_os("PAIR_V3_VECTORS_PRINT").is_some() {
        for (name, bytes) in &want {
            println!("{name}: {}", to_hex(bytes));
        }
    }
    let got: Vec<(String, Vec<u8>)> = FILE
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (name, h) = l.rsplit_once(": ").unwrap();
            (name.to_owned(), hex(h))
        })
        .collect();
    assert_eq!(got.len(), want.len(), "lines");
    for ((name, bytes), (want_name, want_bytes)) in got.iter().zip(&want) {
        assert_eq!(name, want_name);
        assert_eq!(to_hex(bytes), to_hex(want_bytes), "{name}");
        let as_request = PairRequest::decode_any(bytes);
        let as_response = PairResponse::decode_any(bytes);
        if let Some(rest) = name.strip_prefix("ok ") {
            let (version, again) = if rest.starts_with("request") {
                let (v, f) = as_request.unwrap();
                (v, f.encode_as(v).unwrap())
            } else {
                let (v, f) = as_response.unwrap();
                (v, f.encode_as(v).unwrap())
            };
            assert_eq!(version, PAIR_VERSION_3, "{name}");
            assert_eq!(&again, bytes, "{name} re-encodes");
            assert!(
                PairRequest::decode(bytes).is_err() && PairResponse::decode(bytes).is_err(),
                "{name}: a version 2 decoder refuses it"
            );
        } else if name.starts_with("bad ") {
            assert!(as_request.is_err() && as_response.is_err(), "{name}");
        }
    }

    // The welcome's remotes open under the remotes key, for its client list only; the
    // tampered one's frame decodes but its remotes do not open.
    let key = remotes_key(&[0x11; 32]);
    let clients = vec![b"alice".to_vec()];
    let frame = |n: &str| &got.iter().find(|(name, _)| name == n).unwrap().1;
    let Ok((
        _,
        PairResponse::Welcome {
            clients: welcomed,
            remotes: Some(sealed),
        },
    )) = PairResponse::decode_any(frame("ok response welcome alice nas s3"))
    else {
        panic!("the welcome decodes")
    };
    assert_eq!(welcomed, clients);
    let opened = open_remotes_with(&key, &clients, &sealed).unwrap();
    assert_eq!(opened.len(), 2);
    for (o, s) in opened.iter().zip(shared()) {
        assert_eq!((&o.name, &o.url, &o.clients), (&s.name, &s.url, &s.clients));
        assert_eq!(o.key.expose(), s.key.expose());
    }
    let Ok((
        _,
        PairResponse::Welcome {
            remotes: Some(tampered),
            ..
        },
    )) = PairResponse::decode_any(frame("seal-tampered welcome"))
    else {
        panic!("the tampered welcome still decodes as a frame")
    };
    assert!(open_remotes_with(&key, &clients, &tampered).is_err());
}

/// The pairing fuzz target's version 3 seeds: every frame of the file, the remotes sealed
/// under the target's fixed key (so the fuzzer reaches the plaintext decoder), and their
/// plaintext. Written once with `REDOUBT_WRITE_SEEDS=1`; each goes through the target.
#[test]
fn pair_v3_fuzz_seeds_are_committed() {
    use redoubt_protocol::{fuzzing, pairing::remotes::encode_plaintext};
    let dir =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/pair_decode");
    let clients = vec![b"alice".to_vec()];
    let key = Key::from_bytes(fuzzing::PAIR_REMOTES_KEY);
    let mut seeds = vec![
        (
            "v3-sealed-remotes".to_owned(),
            seal_remotes_with(&key, &[0x5b; 24], &clients, &shared()).unwrap(),
        ),
        (
            "v3-remotes-plaintext".to_owned(),
            encode_plaintext(&shared()).unwrap().to_vec(),
        ),
    ];
    for (name, bytes) in lines().into_iter().skip(4) {
        seeds.push((format!("v3-{}", name.replace(' ', "-")), bytes));
    }
    for (name, bytes) in seeds {
        let path = dir.join(&name);
        if !path.exists() && std::env::var_os("REDOUBT_WRITE_SEEDS").is_some() {
            std::fs::write(&path, &bytes).unwrap();
        }
        let seed = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(seed, bytes, "{name}");
        fuzzing::decode_pairing(&seed);
    }
}
