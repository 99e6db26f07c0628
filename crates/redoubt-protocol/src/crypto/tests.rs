use super::*;

fn keys(a: &EphemeralSecret, b: &EphemeralSecret) -> SessionKeys {
    SessionKeys {
        requester: a.public_key(),
        responder: b.public_key(),
    }
}

#[test]
fn both_sides_agree_and_the_transcript_matters() {
    let a = EphemeralSecret::from_bytes([1; 32]);
    let b = EphemeralSecret::from_bytes([2; 32]);
    let s = SessionId([9; 16]);
    let ka = SessionKey::agree(&a, &b.public_key(), keys(&a, &b), s, &[0; 32]).unwrap();
    let kb = SessionKey::agree(&b, &a.public_key(), keys(&a, &b), s, &[0; 32]).unwrap();
    assert_eq!(ka.0.expose(), kb.0.expose());
    let other = SessionKey::agree(&a, &b.public_key(), keys(&a, &b), s, &[1; 32]).unwrap();
    assert_ne!(ka.0.expose(), other.0.expose());
}

/// A bound key changes with each peer id, their roles, the protocol name and the
/// transcript, and differs from the unbound key of the same exchange.
#[test]
fn bound_keys_depend_on_peers_roles_protocol_and_transcript() {
    let a = EphemeralSecret::from_bytes([1; 32]);
    let b = EphemeralSecret::from_bytes([2; 32]);
    let s = SessionId([9; 16]);
    let peers = Peers::new(b"peer a".to_vec(), b"peer b".to_vec()).unwrap();
    let bound = |ours: &EphemeralSecret, theirs: &EphemeralSecret, p: &Peers, name, t| {
        SessionKey::agree_bound(ours, &theirs.public_key(), keys(&a, &b), s, p, name, t)
            .unwrap()
            .0
            .expose()
            .to_owned()
    };
    let name = crate::PROTOCOL_NAME_V3;
    let ka = bound(&a, &b, &peers, name, &[0; 32]);
    assert_eq!(
        ka,
        bound(&b, &a, &peers, name, &[0; 32]),
        "both sides agree"
    );
    let unbound = SessionKey::agree(&a, &b.public_key(), keys(&a, &b), s, &[0; 32]).unwrap();
    assert_ne!(&ka, unbound.0.expose());
    let swapped = Peers::new(b"peer b".to_vec(), b"peer a".to_vec()).unwrap();
    let relayed = Peers::new(b"peer a".to_vec(), b"peer m".to_vec()).unwrap();
    // Lengths are prefixed: moving a byte from one id to the other changes the key.
    let shifted = Peers::new(b"peer ap".to_vec(), b"eer b".to_vec()).unwrap();
    for other in [swapped, relayed, shifted] {
        assert_ne!(ka, bound(&a, &b, &other, name, &[0; 32]), "{other:?}");
    }
    assert_ne!(ka, bound(&a, &b, &peers, "/redoubt/sync/4", &[0; 32]));
    assert_ne!(ka, bound(&a, &b, &peers, name, &[1; 32]));
}

#[test]
fn peer_ids_are_bounded() {
    assert!(Peers::new(Vec::new(), b"b".to_vec()).is_err());
    assert!(Peers::new(b"a".to_vec(), vec![7; MAX_PEER_ID_LEN + 1]).is_err());
    assert!(Peers::new(vec![7; MAX_PEER_ID_LEN], b"b".to_vec()).is_ok());
}

/// A bound transcript covers responses and the direction of each frame; an unbound one
/// ignores responses, as versions 1 and 2 specify.
#[test]
fn bound_transcripts_cover_responses_and_directions() {
    let hash = |t: &mut Transcript, frames: &[(bool, &[u8])]| {
        for (request, f) in frames {
            if *request {
                t.absorb(f);
            } else {
                t.absorb_response(f);
            }
        }
        t.hash()
    };
    let talk: &[(bool, &[u8])] = &[(true, b"open"), (false, b"more"), (true, b"symbols")];
    let quiet: &[(bool, &[u8])] = &[(true, b"open"), (true, b"symbols")];
    let flipped: &[(bool, &[u8])] = &[(true, b"open"), (true, b"more"), (true, b"symbols")];
    let v1 = hash(&mut Transcript::default(), talk);
    assert_eq!(v1, hash(&mut Transcript::default(), quiet));
    let v3 = hash(&mut Transcript::bound(), talk);
    assert_ne!(v3, hash(&mut Transcript::bound(), quiet));
    assert_ne!(v3, hash(&mut Transcript::bound(), flipped));
    assert_ne!(v3, v1);
}

#[test]
fn low_order_points_are_rejected() {
    let a = EphemeralSecret::from_bytes([1; 32]);
    for point in [[0u8; 32], {
        let mut p = [0u8; 32];
        p[0] = 1;
        p
    }] {
        let k = SessionKeys {
            requester: a.public_key(),
            responder: point,
        };
        assert!(matches!(
            SessionKey::agree(&a, &point, k, SessionId([0; 16]), &[0; 32]),
            Err(Error::WeakKey)
        ));
    }
}

#[test]
fn chunks_fail_under_any_change() {
    let key = SessionKey(Key::from_bytes([7; 32]));
    let s = SessionId([1; 16]);
    let sealed = seal_chunk(&key, s, 3, false, b"payload").unwrap();
    let (pt, last) = open_chunk(&key, s, 3, &sealed).unwrap();
    assert_eq!((&pt[..], last), (&b"payload"[..], false));
    assert!(open_chunk(&key, s, 4, &sealed).is_err(), "reordered");
    assert!(
        open_chunk(&key, SessionId([2; 16]), 3, &sealed).is_err(),
        "other session"
    );
    assert!(
        open_chunk(&SessionKey(Key::from_bytes([8; 32])), s, 3, &sealed).is_err(),
        "other key"
    );
    let mut flipped = sealed.clone();
    flipped[0] = 1;
    assert!(
        open_chunk(&key, s, 3, &flipped).is_err(),
        "final flag forged"
    );
    for i in 1..sealed.len() {
        let mut t = sealed.clone();
        t[i] ^= 0x40;
        assert!(open_chunk(&key, s, 3, &t).is_err(), "byte {i}");
    }
    assert!(open_chunk(&key, s, 3, &[]).is_err());
}

#[test]
fn debug_hides_keys() {
    assert_eq!(
        format!("{:?}", SessionKey(Key::from_bytes([7; 32]))),
        "SessionKey(..)"
    );
    let e = EphemeralSecret::from_bytes([7; 32]);
    assert_eq!(format!("{e:?}"), "EphemeralSecret(..)");
}
