//! The messages' encodings, both ways: every request and response round-trips, and what the
//! decoder refuses.
use super::*;

fn target() -> Target {
    Target {
        client: b"alice".to_vec(),
        vault: b"wallet".to_vec(),
        record: b"seed".to_vec(),
    }
}

fn payload(frame: &[u8]) -> &[u8] {
    frame::split(frame).unwrap().unwrap().0
}

#[test]
fn every_request_round_trips() {
    let requests = [
        Request::Status,
        Request::Id,
        Request::Get(target()),
        Request::Exists(target()),
        Request::Put {
            target: target(),
            value: SecretBytes::new(b"s3cret".to_vec()),
            force: true,
        },
        Request::Rm(target()),
        Request::List { client: None },
        Request::List {
            client: Some(b"alice".to_vec()),
        },
        Request::Allow {
            peer: "12D3KooW".into(),
            client: b"alice".to_vec(),
            read: true,
            write: false,
        },
        Request::Deny {
            peer: "12D3KooW".into(),
            client: None,
        },
        Request::Peers,
        Request::Addresses,
        Request::Lock,
        Request::Unlock {
            password: SecretBytes::new(b"pw".to_vec()),
        },
        Request::Sync {
            addr: "/ip4/127.0.0.1/tcp/1".into(),
            directions: 1,
            allow_unbound: false,
            client: Some((b"alice".to_vec(), vec![b"wallet".to_vec()])),
        },
        Request::Sync {
            addr: "/ip4/127.0.0.1/tcp/1".into(),
            directions: 0,
            allow_unbound: true,
            client: None,
        },
    ];
    for r in requests {
        let bytes = encode_request(&r).unwrap();
        assert_eq!(decode_request(payload(&bytes)).unwrap(), r);
        assert!(
            decode_response(payload(&bytes)).is_err(),
            "{r:?} is no response"
        );
    }
}

#[test]
fn every_response_round_trips() {
    let responses = [
        Response::Done,
        Response::Value(SecretBytes::new(vec![0, 1, 255])),
        Response::Flag(false),
        Response::Count(u64::MAX),
        Response::Text("{}".into()),
        Response::Note("note".into()),
        Response::Item(ListItem {
            names: [b"a".to_vec(), b"w".to_vec(), b"r".to_vec()],
            size: 4,
            wall_ms: 1_700_000_000_000,
            counter: 2,
            node: "11".repeat(16),
        }),
        Response::Grant {
            peer: "p".into(),
            client: b"c".to_vec(),
            read: false,
            write: true,
        },
        Response::Synced {
            pulled: Some([1, 2, 3, 4, 5, 6]),
            pushed: None,
        },
        Response::Address {
            peer: "p".into(),
            addr: "/ip4/192.0.2.1/tcp/1/p2p/p".into(),
            last_seen: 1_764_748_800,
        },
        Response::Error {
            kind: ErrorKind::Locked,
            message: "locked".into(),
        },
    ];
    for r in responses {
        let bytes = encode_response(&r).unwrap();
        assert_eq!(decode_response(payload(&bytes)).unwrap(), r);
        assert_eq!(
            r.is_item(),
            matches!(
                r,
                Response::Item(_)
                    | Response::Note(_)
                    | Response::Grant { .. }
                    | Response::Address { .. }
            )
        );
    }
}

#[test]
fn malformed_messages_name_what_is_wrong() {
    let get = |fields: &[&[u8]]| decode_request(payload(&frame::encode(op::GET, fields).unwrap()));
    assert!(matches!(
        get(&[b"a", b"b"]),
        Err(Error::Fields {
            op: 0x03,
            got: 2,
            ..
        })
    ));
    let put = frame::encode(op::PUT, &[b"a", b"b", b"c", b"v", &[2]]).unwrap();
    assert_eq!(
        decode_request(payload(&put)),
        Err(Error::Field {
            op: 0x05,
            index: 4,
            what: "a flag (one byte, 0 or 1)"
        })
    );
    let allow = frame::encode(op::ALLOW, &[&[0xff], b"c", &[1], &[0]]).unwrap();
    assert!(matches!(
        decode_request(payload(&allow)),
        Err(Error::Field { index: 0, .. })
    ));
    assert_eq!(decode_request(&[0x70]), Err(Error::Opcode(0x70)));
    let status = frame::encode(op::STATUS, &[b"x"]).unwrap();
    assert!(matches!(
        decode_request(payload(&status)),
        Err(Error::Fields { .. })
    ));
    let err = frame::encode(op::ERROR, &[&[9], b"m"]).unwrap();
    assert!(matches!(
        decode_response(payload(&err)),
        Err(Error::Field { index: 0, .. })
    ));
    // Secrets never show in Debug.
    let put = Request::Put {
        target: target(),
        value: SecretBytes::new(b"s3cret".to_vec()),
        force: false,
    };
    assert!(!format!("{put:?}").contains("s3cret"));
}
