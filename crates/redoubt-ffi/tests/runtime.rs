//! The library owns its runtime: calls work from a thread with no runtime (as an app's), and
//! from a thread inside someone else's runtime (an async Rust app, or a callback calling back
//! in), where blocking on a runtime would otherwise panic.

use redoubt_ffi::{KdfStrength, RedoubtError, Vault};

fn vault(dir: &tempfile::TempDir, name: &str) -> std::sync::Arc<Vault> {
    let path = dir.path().join(name).to_string_lossy().into_owned();
    Vault::create(path, b"pw".to_vec(), KdfStrength::InsecureFastForTests).unwrap()
}

#[test]
fn start_sync_and_stop_work_from_a_thread_without_a_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (vault(&dir, "a.redb"), vault(&dir, "b.redb"));
    a.allow(b.peer_id(), "alice".into(), true, true).unwrap();
    b.allow(a.peer_id(), "alice".into(), true, true).unwrap();
    a.put("alice".into(), "w".into(), "r".into(), b"v".to_vec())
        .unwrap();
    let addr = a.start(vec!["/ip4/127.0.0.1/tcp/0".into()], false).unwrap();
    b.start(vec!["/ip4/127.0.0.1/tcp/0".into()], false).unwrap();
    assert_eq!(
        b.sync(addr[0].clone(), "alice".into())
            .unwrap()
            .pulled
            .added,
        1
    );
    a.stop().unwrap();
    b.stop().unwrap();
    // Stopped, the vault still reads and writes; the network calls say what they need.
    assert_eq!(
        b.get("alice".into(), "w".into(), "r".into()).unwrap(),
        Some(b"v".to_vec())
    );
    let err = b.sync(addr[0].clone(), "alice".into()).unwrap_err();
    assert!(matches!(err, RedoubtError::NotRunning { .. }), "{err}");
}

#[tokio::test]
async fn calls_from_inside_another_runtime_do_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let a = vault(&dir, "a.redb");
    let addrs = a.start(vec!["/ip4/127.0.0.1/tcp/0".into()], false).unwrap();
    assert!(addrs[0].ends_with(&a.peer_id()), "{addrs:?}");
    assert!(a.status().unwrap().running);
    a.stop().unwrap();
    assert!(!a.status().unwrap().running);
}

#[test]
fn a_grant_by_anything_but_a_peer_id_is_refused_not_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let a = vault(&dir, "a.redb");
    let b = vault(&dir, "b.redb");
    // The raw bytes of a peer id, as text, are not its base58: refused, nothing recorded.
    for bad in ["", "alice", "00ff00ff", "12D3KooW"] {
        let err = a.allow(bad.into(), "alice".into(), true, true).unwrap_err();
        assert!(
            matches!(err, RedoubtError::InvalidInput { .. }),
            "{bad:?}: {err}"
        );
    }
    assert!(a.grants().unwrap().is_empty());
    a.allow(format!("  {}  ", b.peer_id()), "alice".into(), true, false)
        .unwrap();
    let grants = a.grants().unwrap();
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].peer_id, b.peer_id());
    assert!(grants[0].read && !grants[0].write);
}
