//! Every way a snapshot can fail to load gives its own clear error, never a panic.

use redoubt_snapshot::{Error, HEADER_LEN, KdfParams, Password, SealKey, Snapshot, VaultFile};
use redoubt_vault::{Location, Rights, SecretValue};

fn password() -> Password {
    Password::new(b"correct horse".to_vec())
}

fn sample() -> Snapshot {
    let mut s = Snapshot::generate().unwrap();
    let loc = Location::new("wallet", "seed").unwrap();
    s.instance
        .write(b"alice", &loc, SecretValue::new(b"value-one".to_vec()))
        .unwrap();
    s.instance
        .write(
            b"alice",
            &Location::new("wallet", "gone").unwrap(),
            SecretValue::new(b"x".to_vec()),
        )
        .unwrap();
    s.instance
        .delete(b"alice", &Location::new("wallet", "gone").unwrap())
        .unwrap();
    s.access
        .grant(
            b"peer-one",
            b"alice",
            Rights {
                read: true,
                write: false,
            },
        )
        .unwrap();
    s
}

fn sealed() -> Vec<u8> {
    let key = SealKey::generate(&password(), KdfParams::insecure_fast()).unwrap();
    sample().seal(&key).unwrap()
}

/// Rewrites the header checksum after a deliberate edit, as `docs/snapshot-format.md` defines it.
fn rechecksum(bytes: &mut [u8]) {
    let sum = *blake3::hash(&bytes[..HEADER_LEN - 32]).as_bytes();
    bytes[HEADER_LEN - 32..HEADER_LEN].copy_from_slice(&sum);
}

#[test]
fn round_trip_keeps_records_tombstones_grants_identity_and_clock() {
    let original = sample();
    let key = SealKey::generate(&password(), KdfParams::insecure_fast()).unwrap();
    let bytes = original.seal(&key).unwrap();
    let (loaded, _) = Snapshot::open(&bytes, &password()).unwrap();
    assert_eq!(loaded.identity.public_key(), original.identity.public_key());
    assert_eq!(loaded.instance.node(), original.instance.node());
    assert_eq!(loaded.instance.clock(), original.instance.clock());
    assert_eq!(loaded.access, original.access);
    // Format 1 holds each record's current version, parentless (docs/snapshot-format.md).
    let current = original.instance.without_lineage();
    for (id, _) in current.clients() {
        let a: Vec<_> = current.records(id).map(|r| r.shape()).collect();
        let b: Vec<_> = loaded.instance.records(id).map(|r| r.shape()).collect();
        assert_eq!(a, b);
    }
    assert_eq!(loaded.instance.len(), 2);
}

#[test]
fn wrong_password() {
    let err = Snapshot::open(&sealed(), &Password::new(b"wrong".to_vec())).unwrap_err();
    assert!(matches!(err, Error::WrongPassword), "{err}");
}

#[test]
fn truncated_anywhere() {
    let bytes = sealed();
    for cut in [
        0,
        5,
        9,
        10,
        100,
        HEADER_LEN - 1,
        HEADER_LEN,
        HEADER_LEN + 1,
        bytes.len() - 1,
    ] {
        let err = Snapshot::open(&bytes[..cut], &password()).unwrap_err();
        assert!(
            matches!(err, Error::Truncated { .. }),
            "cut at {cut}: {err}"
        );
    }
}

#[test]
fn every_flipped_byte_is_detected_and_named() {
    let bytes = sealed();
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 0x01;
        let err = Snapshot::open(&bad, &password()).unwrap_err();
        let expected = match i {
            0..8 => matches!(err, Error::NotASnapshot),
            8..10 => matches!(err, Error::UnsupportedVersion(_)),
            _ => matches!(err, Error::Corrupted(_)),
        };
        assert!(expected, "byte {i}: {err}");
    }
}

#[test]
fn unknown_version() {
    let mut bytes = sealed();
    bytes[8..10].copy_from_slice(&2u16.to_le_bytes());
    let err = Snapshot::open(&bytes, &password()).unwrap_err();
    assert!(matches!(err, Error::UnsupportedVersion(2)), "{err}");
}

#[test]
fn not_a_snapshot() {
    for junk in [
        &b"hello, this is a text file"[..],
        &[0u8; 400][..],
        b"RDBTSNAQ",
    ] {
        let err = Snapshot::open(junk, &password()).unwrap_err();
        assert!(matches!(err, Error::NotASnapshot), "{err}");
    }
}

#[test]
fn hostile_kdf_parameters_are_refused_before_running_the_kdf() {
    let mut bytes = sealed();
    bytes[12..16].copy_from_slice(&u32::MAX.to_le_bytes()); // 4 TiB of memory
    rechecksum(&mut bytes);
    let err = Snapshot::open(&bytes, &password()).unwrap_err();
    assert!(matches!(err, Error::InvalidKdfParams(_)), "{err}");
}

#[test]
fn announced_body_length_is_capped_and_checked() {
    let mut bytes = sealed();
    bytes[96..104].copy_from_slice(&u64::MAX.to_le_bytes());
    rechecksum(&mut bytes);
    let err = Snapshot::open(&bytes, &password()).unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");

    let mut bytes = sealed();
    bytes.push(0);
    let err = Snapshot::open(&bytes, &password()).unwrap_err();
    assert!(matches!(err, Error::Corrupted(_)), "{err}");
}

#[test]
fn file_errors_locks_and_atomic_save() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.rdb");
    let file = VaultFile::lock_exclusive(&path).unwrap();
    assert!(matches!(file.load(&password()), Err(Error::NotFound(_))));

    let mut snapshot = sample();
    let key = file
        .create(&snapshot, &password(), KdfParams::insecure_fast())
        .unwrap();
    assert!(matches!(
        file.create(&snapshot, &password(), KdfParams::insecure_fast()),
        Err(Error::AlreadyExists(_))
    ));
    // A second holder is refused while the first holds the lock, shared or exclusive.
    assert!(matches!(
        VaultFile::lock_exclusive(&path),
        Err(Error::Locked { .. })
    ));
    assert!(matches!(
        VaultFile::lock_shared(&path),
        Err(Error::Locked { .. })
    ));

    let loc = Location::new("wallet", "seed").unwrap();
    snapshot
        .instance
        .write(b"alice", &loc, SecretValue::new(b"value-two".to_vec()))
        .unwrap();
    file.save(&snapshot, &key).unwrap();
    drop(file);

    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        !names.iter().any(|n| n.contains(".tmp")),
        "temp file left: {names:?}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "snapshot readable by others: {mode:o}");
    }

    // Readers share the lock; a shared holder cannot save.
    let reader = VaultFile::lock_shared(&path).unwrap();
    let _second_reader = VaultFile::lock_shared(&path).unwrap();
    let (loaded, key) = reader.load(&password()).unwrap();
    assert_eq!(
        loaded.instance.read(b"alice", &loc).unwrap().expose(),
        b"value-two"
    );
    assert!(matches!(
        reader.save(&loaded, &key),
        Err(Error::ReadOnly(_))
    ));
}

#[test]
fn the_default_kdf_is_not_the_test_one() {
    let d = KdfParams::default();
    assert!(d.memory_kib >= 19 * 1024 && d.iterations >= 2, "{d:?}");
    assert!(d.check().is_ok());
    let too_small = KdfParams {
        memory_kib: 4,
        iterations: 1,
        parallelism: 1,
    };
    assert!(too_small.check().is_err());
}
