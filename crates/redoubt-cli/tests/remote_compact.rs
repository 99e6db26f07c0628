//! `redoubt remote compact` end to end through a folder remote, driving the real binary: the
//! base is uploaded, and a device that was behind converges from it.

#[path = "support/vault.rs"]
mod vault;

use vault::{Vault, json_stdout};

const PASSPHRASE: &str = "orbit walnut cedar lantern";

#[test]
fn remote_compact_uploads_a_base_and_a_device_behind_converges() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().join("shared").display());
    let (a, b) = (Vault::new(), Vault::new());
    a.put("alice", "wallet", "r0", b"v0");
    for (v, verb) in [(&a, "add"), (&b, "join")] {
        v.cmd()
            .args(["remote", verb, "nas", &url])
            .env("REDOUBT_REMOTE_PASSPHRASE", PASSPHRASE)
            .assert()
            .success();
    }
    for i in 1..4 {
        a.put("alice", "wallet", &format!("r{i}"), b"v");
        let up = json_stdout(a.cmd().args(["remote", "sync", "nas", "--json"]));
        assert_eq!(up["bases_uploaded"], 0);
    }
    let compacted = json_stdout(a.cmd().args(["remote", "compact", "nas", "--json"]));
    assert_eq!(compacted["bases_uploaded"], 1);
    assert_eq!(compacted["segments_deleted"], 0, "the grace period holds");
    let down = json_stdout(b.cmd().args(["remote", "sync", "--json"]));
    assert_eq!(down["segments_fetched"], 1, "the base alone");
    assert_eq!(down["failed"].as_array().map(Vec::len), Some(0));
    for i in 1..4 {
        assert_eq!(
            b.get("alice", "wallet", &format!("r{i}")).as_deref(),
            Some(&b"v"[..])
        );
    }
    // Nothing new since the base: compacting again uploads nothing.
    let again = json_stdout(a.cmd().args(["remote", "compact", "nas", "--json"]));
    assert_eq!(
        (
            again["bases_uploaded"].as_u64(),
            again["segments_uploaded"].as_u64()
        ),
        (Some(0), Some(0))
    );
}
