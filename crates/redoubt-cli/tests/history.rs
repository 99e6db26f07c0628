//! `redoubt history` and `redoubt restore`, and conflicts named by `sync-file`, through the
//! built binary.

#[path = "support/vault.rs"]
mod vault;

use vault::{PASSWORD, Vault, fails_with, json_stdout, report};

/// Runs `cmd`, asserts success, and returns its stdout as text.
fn text(cmd: &mut assert_cmd::Command) -> String {
    String::from_utf8(cmd.assert().success().get_output().stdout.clone()).unwrap()
}

fn history(v: &Vault, path: [&str; 3]) -> Vec<serde_json::Value> {
    json_stdout(v.cmd().arg("history").args(path).arg("--json"))
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn history_lists_versions_and_restore_makes_one_current_again() {
    let v = Vault::new();
    for value in [&b"first-canary"[..], b"second-canary", b"third-canary"] {
        v.put("alice", "wallet", "seed", value);
    }
    let versions = history(&v, ["alice", "wallet", "seed"]);
    let status: Vec<_> = versions
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(status, ["current", "overwritten", "overwritten"]);
    assert_eq!(versions[0]["size"], 12);
    assert_eq!(versions[1]["size"], 13);
    assert_eq!(versions[0]["parent"], versions[1]["version"]);
    // Text: one line per version, five tab-separated fields, never a value.
    let listing = text(v.cmd().args(["history", "alice/wallet/seed"]));
    assert!(!listing.contains("canary"), "{listing}");
    let lines: Vec<_> = listing.lines().collect();
    assert_eq!(lines.len(), 3, "{listing}");
    assert!(
        lines.iter().all(|l| l.split('\t').count() == 5),
        "{listing}"
    );
    assert!(lines[0].ends_with("\tcurrent"), "{listing}");

    let first = versions[2]["version"].as_str().unwrap();
    let out = text(
        v.cmd()
            .args(["restore", "alice", "wallet", "seed", &first[..8]]),
    );
    assert!(out.starts_with("restored alice/wallet/seed to "), "{out}");
    assert!(!out.contains("canary"));
    assert_eq!(
        v.get("alice", "wallet", "seed").unwrap(),
        b"first-canary",
        "committed before it printed"
    );
    let after = history(&v, ["alice", "wallet", "seed"]);
    assert_eq!(after.len(), 4);
    assert_eq!(
        after[0]["parent"], versions[0]["version"],
        "a child of the current"
    );
    assert_ne!(after[0]["version"], versions[2]["version"], "a new version");

    fails_with(
        v.cmd().args(["restore", "alice", "wallet", "seed", "0000"]),
        "8 to 64 hex digits",
    );
    fails_with(
        v.cmd().args(["history", "alice", "wallet", "nothing"]),
        "no record at alice/wallet/nothing",
    );
    let current = after[0]["version"].as_str().unwrap();
    fails_with(
        v.cmd()
            .args(["restore", "alice", "wallet", "seed", current]),
        "already current",
    );
    // A deletion keeps the history, and restoring brings the secret back.
    v.cmd()
        .args(["rm", "alice", "wallet", "seed"])
        .assert()
        .success();
    let gone = history(&v, ["alice", "wallet", "seed"]);
    assert_eq!(gone[0]["size"], 0);
    assert_eq!(gone[1]["status"], "deleted");
    let back = gone[1]["version"].as_str().unwrap();
    v.cmd()
        .args(["restore", "alice", "wallet", "seed", back])
        .assert()
        .success();
    assert_eq!(v.get("alice", "wallet", "seed").unwrap(), b"first-canary");
}

#[test]
fn sync_counts_only_concurrent_edits_as_conflicts_and_names_them() {
    let a = Vault::new();
    let b = Vault::new();
    for k in 0..5 {
        a.put("alice", "wallet", &format!("r{k}"), b"v0");
    }
    assert_eq!(report(&b.sync_file(&a, &[])), [5, 0, 0, 0, 0]);
    // A fast-forward of five edits: no conflict.
    for k in 0..5 {
        a.put("alice", "wallet", &format!("r{k}"), b"v1");
    }
    assert_eq!(report(&b.sync_file(&a, &[])), [0, 5, 0, 0, 0]);
    // The same bytes written on both sides: no conflict either.
    a.put("alice", "wallet", "r0", b"same");
    b.put("alice", "wallet", "r0", b"same");
    let r = b.sync_file(&a, &[]);
    assert_eq!(r["conflicts_resolved"], 0, "{r}");
    // A real concurrent edit: one conflict, named in both outputs, values never shown.
    a.put("alice", "wallet", "r1", b"from-a-canary");
    b.put("alice", "wallet", "r1", b"from-b-canary");
    let report_text = text(
        b.cmd()
            .env("REDOUBT_OTHER_PASSWORD", PASSWORD)
            .arg("sync-file")
            .arg(&a.path),
    );
    assert!(!report_text.contains("canary"), "{report_text}");
    let lines: Vec<_> = report_text.lines().collect();
    assert!(lines[0].contains("conflicts resolved 1"), "{report_text}");
    assert!(
        lines[1].starts_with("conflict alice/wallet/r1 kept "),
        "{report_text}"
    );
    assert!(lines[1].contains(" lost "), "{report_text}");
    let versions = history(&b, ["alice", "wallet", "r1"]);
    let lost: Vec<_> = versions
        .iter()
        .filter(|v| v["status"] == "lost-conflict")
        .collect();
    assert_eq!(lost.len(), 1, "{versions:?}");
    let lost_id = lost[0]["version"].as_str().unwrap();
    assert!(lines[1].ends_with(lost_id), "{report_text}");
    // Synced back, the other side converges to the same history. It counts the conflict
    // too when its own edit is the one that lost there (it learns of it now), else none.
    let r = a.sync_file(&b, &[]);
    let lost_here = a.get("alice", "wallet", "r1").unwrap() == b"from-b-canary";
    assert_eq!(r["conflicts_resolved"], u64::from(lost_here), "{r}");
    assert_eq!(history(&a, ["alice", "wallet", "r1"]), versions);
}
