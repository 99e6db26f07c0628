//! `redoubt remote add|join|sync|list` end to end through a folder remote, driving the real
//! binary.

#[path = "support/vault.rs"]
mod vault;

use vault::{Vault, fails_with, json_stdout};

const PASSPHRASE: &str = "orbit walnut cedar lantern";

#[test]
fn remote_add_join_sync_list_through_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().join("shared").display());
    let (a, b) = (Vault::new(), Vault::new());
    a.put("alice", "wallet", "seed", b"s3cret");

    a.cmd()
        .args(["remote", "add", "nas", &url])
        .env("REDOUBT_REMOTE_PASSPHRASE", PASSPHRASE)
        .assert()
        .success();
    // A wrong passphrase fails and leaves the vault without the remote.
    fails_with(
        b.cmd()
            .args(["remote", "join", "nas", &url])
            .env("REDOUBT_REMOTE_PASSPHRASE", "wrong"),
        "wrong recovery passphrase",
    );
    let listed = b.cmd().args(["remote", "list"]).output().unwrap();
    assert!(listed.status.success() && listed.stdout.is_empty());
    b.cmd()
        .args(["remote", "join", "nas", &url])
        .env("REDOUBT_REMOTE_PASSPHRASE", PASSPHRASE)
        .assert()
        .success();
    assert_eq!(
        b.get("alice", "wallet", "seed").as_deref(),
        Some(&b"s3cret"[..])
    );

    b.put("alice", "wallet", "seed", b"changed");
    let up = json_stdout(b.cmd().args(["remote", "sync", "nas", "--json"]));
    assert_eq!(up["segments_uploaded"], 1);
    let down = json_stdout(a.cmd().args(["remote", "sync", "--json"]));
    assert_eq!(
        (down["updated"].as_u64(), down["segments_fetched"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        a.get("alice", "wallet", "seed").as_deref(),
        Some(&b"changed"[..])
    );
    let idle = json_stdout(a.cmd().args(["remote", "sync", "nas", "--json"]));
    assert_eq!(
        (
            idle["segments_fetched"].as_u64(),
            idle["segments_uploaded"].as_u64()
        ),
        (Some(0), Some(0))
    );

    let list = json_stdout(a.cmd().args(["remote", "list", "--json"]));
    assert_eq!(list["name"], "nas");
    assert_eq!(list["url"], url.as_str());
    // Nothing on the storage names a client, a vault or a record.
    for entry in walk(&dir.path().join("shared")) {
        let name = entry.to_string_lossy().to_string();
        assert!(!name.contains("alice") && !name.contains("wallet") && !name.contains("seed"));
        let bytes = std::fs::read(&entry).unwrap();
        assert!(!bytes.windows(6).any(|w| w == b"s3cret" || w == b"change"));
    }
    fails_with(
        a.cmd().args(["remote", "sync", "nope"]),
        "no remote named nope",
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
