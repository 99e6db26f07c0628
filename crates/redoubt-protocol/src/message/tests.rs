//! Golden bytes, encoded lengths, caps and round trips of every message of versions 1 to 3;
//! `version_2` holds the round trips of the messages version 2 added (version 3 reuses them).

use proptest::prelude::*;
use redoubt_vault::{ClientId, Location, MergeReport, RecordId, Shape, VaultId, sketch::Symbol};

use super::*;
use crate::limits::{MAX_FRAME_LEN, MAX_SHAPES_PER_FRAME, SHAPE_LEN};

mod version_2;

fn shape(n: u8) -> Shape {
    Shape {
        vault: VaultId::from_bytes([n; 32]),
        record: RecordId::from_bytes([n.wrapping_add(1); 32]),
        size: u32::from(n),
        hash: [n.wrapping_add(2); 32],
    }
}

#[test]
fn golden_bytes() {
    assert_eq!(Response::Continue.encode().unwrap(), [1, 0x82]);
    let next = Request::Next {
        session: SessionId([0xaa; 16]),
        index: 258,
    };
    let mut want = vec![1, 0x03];
    want.extend([0xaa; 16]);
    want.extend([2, 1, 0, 0, 0, 0, 0, 0]);
    assert_eq!(next.encode().unwrap(), want);
    let refused = Response::Refused {
        code: RefusalCode::PermissionDenied,
        detail: "no".into(),
    };
    assert_eq!(refused.encode().unwrap(), [1, 0x86, 1, 2, 0, b'n', b'o']);
}

#[test]
fn a_refusal_detail_that_is_not_utf8_is_refused() {
    // Our encoder cuts details at a character boundary, so only a forged frame holds one; a
    // lossy decode would not re-encode to the same bytes.
    let frame = [1, 0x86, 1, 2, 0, 0xff, b'o'];
    assert!(matches!(
        Response::decode(&frame),
        Err(Error::Malformed("refusal detail is not UTF-8"))
    ));
    let ok = [1, 0x86, 1, 2, 0, b'n', b'o'];
    assert!(matches!(
        Response::decode(&ok),
        Ok(Response::Refused { .. })
    ));
}

#[test]
fn encoded_lengths() {
    let groups = vec![ShapeGroup {
        client: ClientId::from_bytes([1; 32]),
        shapes: vec![shape(1), shape(2)],
    }];
    let open = Request::Open(Open {
        mode: Mode::Full {
            client: b"alice".to_vec(),
        },
        invite: None,
        key: [3; 32],
        groups,
        last: true,
        bound: false,
        lineage: false,
    });
    // version, tag, mode (1 + 2 + 5), invite flag, key, last, group count, client, count,
    // two shapes.
    let len = 2 + 8 + 1 + 32 + 1 + 4 + 32 + 4 + 2 * SHAPE_LEN;
    assert_eq!(open.encode().unwrap().len(), len);
    // A bound opening changes the version byte only.
    let Request::Open(mut bound) = open.clone() else {
        unreachable!()
    };
    bound.bound = true;
    let (plain, bound) = (
        open.encode().unwrap(),
        Request::Open(bound).encode().unwrap(),
    );
    assert_eq!((plain[0], bound[0]), (VERSION, VERSION_3));
    assert_eq!(plain[1..], bound[1..]);
}

/// A version 4 opening is a version 3 one with version byte 4; it must be bound.
#[test]
fn version_4_openings_change_the_version_byte_only() {
    let open = Open {
        mode: Mode::Full {
            client: b"a".to_vec(),
        },
        invite: None,
        key: [0x11; 32],
        groups: Vec::new(),
        last: true,
        bound: true,
        lineage: false,
    };
    let v3 = Request::Open(open.clone()).encode().unwrap();
    let v4 = Request::Open(Open {
        lineage: true,
        ..open.clone()
    });
    let bytes = v4.encode().unwrap();
    assert_eq!((v3[0], bytes[0]), (VERSION_3, VERSION_4));
    assert_eq!(v3[1..], bytes[1..]);
    assert_eq!(Request::decode(&bytes).unwrap(), v4);
    let unbound = Request::Open(Open {
        bound: false,
        lineage: true,
        ..open
    });
    assert!(matches!(unbound.encode(), Err(Error::Binding(_))));
    let mut next = Request::Next {
        session: SessionId([0; 16]),
        index: 0,
    }
    .encode()
    .unwrap();
    next[0] = VERSION_4;
    assert!(
        Request::decode(&next).is_err(),
        "only openings carry byte 4"
    );
}

#[test]
fn golden_bytes_of_bound_openings() {
    let open = Request::Open(Open {
        mode: Mode::Full {
            client: b"a".to_vec(),
        },
        invite: None,
        key: [0x11; 32],
        groups: Vec::new(),
        last: true,
        bound: true,
        lineage: false,
    });
    let mut want = vec![3, 0x01, 0, 1, 0, b'a', 0];
    want.extend([0x11; 32]);
    want.extend([1, 0, 0, 0, 0]);
    assert_eq!(open.encode().unwrap(), want);
    let sketch = Request::OpenSketch(OpenSketch {
        mode: Mode::Import {
            clients: vec![b"a".to_vec()],
        },
        invite: Some([0x22; 16]),
        key: [0x11; 32],
        summary: None,
        bound: true,
        lineage: false,
    });
    let mut want = vec![3, 0x05, 2, 1, 0, 0, 0, 1, 0, b'a', 1];
    want.extend([0x22; 16]);
    want.extend([0x11; 32]);
    want.push(0);
    assert_eq!(sketch.encode().unwrap(), want);
    for m in [open, sketch] {
        assert_eq!(Request::decode(&m.encode().unwrap()).unwrap(), m);
    }
}

/// Version byte 3 is only for the two openings; nothing else carries it, and a version
/// beyond 4 is unsupported.
#[test]
fn version_3_is_for_openings_only() {
    let next = Request::Next {
        session: SessionId([0; 16]),
        index: 0,
    };
    let mut frame = next.encode().unwrap();
    frame[0] = VERSION_3;
    assert!(matches!(Request::decode(&frame), Err(Error::Malformed(_))));
    assert!(matches!(
        Response::decode(&[3, 0x82]),
        Err(Error::Malformed(_))
    ));
    assert!(matches!(
        Response::decode(&[3, 0x8a, 1]),
        Err(Error::Malformed(_))
    ));
    assert!(matches!(
        Request::decode(&[5, 0x01]),
        Err(Error::UnsupportedVersion(5))
    ));
}

#[test]
fn caps_are_checked_before_allocation() {
    // A group count far beyond the bytes present.
    let mut frame = vec![1, 0x02];
    frame.extend([0; 16]);
    frame.push(1);
    frame.extend(u32::MAX.to_le_bytes());
    assert!(matches!(Request::decode(&frame), Err(Error::Malformed(_))));
    assert!(matches!(
        Request::decode(&vec![1; MAX_FRAME_LEN + 1]),
        Err(Error::FrameTooLarge { .. })
    ));
    assert!(matches!(
        Response::decode(&[5, 0x82]),
        Err(Error::UnsupportedVersion(5))
    ));
    assert!(matches!(
        Response::decode(&[4, 0x82]),
        Err(Error::Malformed(_))
    ));
    // A version 1 message under version byte 2, and a version 2 one under byte 1.
    assert!(matches!(
        Response::decode(&[2, 0x82]),
        Err(Error::Malformed(_))
    ));
    assert!(matches!(
        Response::decode(&[1, 0x8a, 1]),
        Err(Error::Malformed(_))
    ));
    assert!(matches!(
        Response::decode(&[2, 0x8a, 1]),
        Ok(Response::Fallback {
            reason: FallbackReason::TooLarge
        })
    ));
    assert!(matches!(
        Response::decode(&[1, 0x82, 0]),
        Err(Error::Malformed(_))
    ));
    let too_many = ShapeGroup {
        client: ClientId::from_bytes([0; 32]),
        shapes: vec![shape(0); MAX_SHAPES_PER_FRAME + 1],
    };
    let shapes = Request::Shapes {
        session: SessionId([0; 16]),
        groups: vec![too_many],
        last: true,
    };
    assert!(shapes.encode().is_err());
}

fn mode() -> impl Strategy<Value = Mode> {
    let path = proptest::collection::vec(any::<u8>(), 1..20);
    prop_oneof![
        path.clone().prop_map(|client| Mode::Full { client }),
        (
            path.clone(),
            proptest::collection::vec(path.clone(), 0..4),
            proptest::collection::vec((path.clone(), path.clone()), 0..4)
        )
            .prop_map(|(client, vaults, recs)| Mode::Partial {
                client,
                vaults,
                records: recs
                    .into_iter()
                    .map(|(v, r)| Location::new(v, r).unwrap())
                    .collect(),
            }),
        proptest::collection::vec(path, 0..4).prop_map(|clients| Mode::Import { clients }),
    ]
}

fn groups() -> impl Strategy<Value = Vec<ShapeGroup>> {
    proptest::collection::vec(
        (
            any::<[u8; 32]>(),
            proptest::collection::vec(any::<u8>().prop_map(shape), 0..5),
        ),
        0..4,
    )
    .prop_map(|g| {
        g.into_iter()
            .map(|(c, shapes)| ShapeGroup {
                client: ClientId::from_bytes(c),
                shapes,
            })
            .collect()
    })
}

proptest! {
    #[test]
    fn requests_round_trip(
        mode in mode(),
        invite in proptest::option::of(any::<[u8; 16]>()),
        key in any::<[u8; 32]>(),
        groups in groups(),
        last in any::<bool>(),
        bound in any::<bool>(),
        index in any::<u64>(),
    ) {
        let msgs = [
            Request::Open(Open { mode: mode.clone(), invite, key, groups: groups.clone(), last, bound, lineage: false }),
            Request::Shapes { session: SessionId([7; 16]), groups, last },
            Request::Next { session: SessionId([8; 16]), index },
            Request::Push { invite: [9; 16], mode },
        ];
        for m in msgs {
            prop_assert_eq!(Request::decode(&m.encode().unwrap()).unwrap(), m);
        }
    }

    #[test]
    fn sketch_openings_round_trip_in_both_versions(
        mode in mode(),
        invite in proptest::option::of(any::<[u8; 16]>()),
        key in any::<[u8; 32]>(),
        summary in proptest::option::of((any::<u64>(), any::<u64>(), any::<u32>(), any::<[u8; 15]>())),
        bound in any::<bool>(),
    ) {
        let summary = summary.map(|(len, key, check, probes)| Summary {
            len,
            first: Symbol { key, check, count: 0 },
            probes,
        });
        let m = Request::OpenSketch(OpenSketch { mode, invite, key, summary, bound, lineage: false });
        let frame = m.encode().unwrap();
        prop_assert_eq!(frame[0], if bound { VERSION_3 } else { VERSION_2 });
        prop_assert_eq!(Request::decode(&frame).unwrap(), m);
    }

    #[test]
    fn responses_round_trip(
        key in any::<[u8; 32]>(),
        records in any::<u64>(),
        sealed in proptest::collection::vec(any::<u8>(), 0..64),
        code in any::<u8>(),
        detail in "[a-z ]{0,40}",
    ) {
        let mut report = MergeReport::default();
        report.added = records;
        report.deleted = 3;
        let code = RefusalCode::from_byte(code);
        let msgs = [
            Response::Accepted { session: SessionId([1; 16]), clients: vec![ClientId::from_bytes(key)] },
            Response::Continue,
            Response::Ready { session: SessionId([2; 16]), key, records, bytes: records / 2 },
            Response::Chunk { sealed },
            Response::Pushed { report },
            Response::Refused { code, detail },
        ];
        for m in msgs {
            prop_assert_eq!(Response::decode(&m.encode().unwrap()).unwrap(), m);
        }
    }

    #[test]
    fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Request::decode(&data);
        let _ = Response::decode(&data);
    }
}

/// The one table of tags: no tag twice, and each frame header passes under the version byte
/// [`TAGS`] gives it (or 3 for a bound opening) and under no other.
#[test]
fn every_tag_is_accepted_under_its_own_version_only() {
    for (i, &(tag, defined_in)) in TAGS.iter().enumerate() {
        assert!(
            TAGS[i + 1..].iter().all(|&(t, _)| t != tag),
            "tag {tag:#x} twice"
        );
        for version in VERSION..=VERSION_4 {
            let opening = matches!(tag, TAG_OPEN | TAG_OPEN_SKETCH);
            let expected = version == defined_in || (opening && version >= VERSION_3);
            let frame = [version, tag];
            assert_eq!(
                header(&frame).is_ok(),
                expected,
                "tag {tag:#x} under {version}"
            );
            let bound = version >= VERSION_3;
            let lineage = version == VERSION_4;
            assert_eq!(version_of(tag, bound, lineage) == version, expected);
        }
    }
}
