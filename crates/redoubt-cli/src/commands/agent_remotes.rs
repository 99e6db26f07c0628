//! The agent syncs with the vault's remotes on shared storage by itself: when the vault opens
//! (start, unlock), once a burst of changes committed to it settled ([`SETTLE`]: a local
//! write, or a merge from a peer, which the other devices on the storage want too), and every
//! [`POLL`] (dumb storage tells nobody of a change; with nothing new a sync is one LIST). What
//! a remote brings is pushed on to the peers that share its clients. A vault with no remote
//! costs nothing here: the task sleeps until the next unlock. A remote added while the agent
//! runs (one a pairing brought: `Agent::remotes_changed`) is picked up at once: the task reads
//! the vault's remotes again and syncs them all.
//!
//! Each sync holds the vault only between its requests to storage
//! ([`redoubt_remote::Access`]), so the agent keeps serving commands and peers meanwhile.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use redoubt_node::{Cause, ChangeEvent, Changes, Handle, Origin, libp2p::PeerId};
use redoubt_remote::Remote;
use tokio::time::Instant;
use tracing::{info, warn};

use super::{agent::Agent, agent_requests::sharing};

/// How long changes have to settle before they go to the remotes.
const SETTLE: Duration = Duration::from_millis(500);
/// How often the remotes are looked at for other devices' changes.
pub(crate) const POLL: Duration = Duration::from_secs(60);
/// The first wait after a failed sync; it doubles up to [`POLL`].
const FIRST_BACKOFF: Duration = Duration::from_secs(2);

/// How the last sync with one remote went, for `status`.
#[derive(Debug, Default)]
pub(crate) struct RemoteStatus {
    last_sync_ms: Option<u64>,
    last_error: Option<String>,
    /// Records merged from it, and events uploaded to it, since the agent started.
    merged: u64,
    uploaded: u64,
}

/// Every remote's status, by name.
#[derive(Debug, Default)]
pub(crate) struct Remotes(BTreeMap<String, RemoteStatus>);

impl Remotes {
    /// Every remote's state, for `status --json`.
    pub(crate) fn status(&self) -> serde_json::Value {
        self.0
            .iter()
            .map(|(name, r)| {
                serde_json::json!({
                    "name": name,
                    "last_sync_ms": r.last_sync_ms,
                    "last_error": r.last_error,
                    "merged": r.merged,
                    "uploaded": r.uploaded,
                })
            })
            .collect()
    }
}

/// Keeps the agent's remotes in sync until the task is dropped.
pub(crate) async fn run(agent: Arc<Agent>) {
    loop {
        let Some(handle) = agent.handle().await else {
            agent.remotes_wake.notified().await;
            continue;
        };
        let names = handle.read(|v| v.store().remote_names());
        let changes = handle.changes();
        // Hold no handle while waiting: a lock waits for every handle to go.
        drop(handle);
        match names {
            Ok(names) if !names.is_empty() => {
                if keep_in_sync(&agent, &names, changes).await == Ended::Woken {
                    continue; // the remotes changed: read them again
                }
            }
            Ok(_) => {}
            Err(e) => warn!("remotes: cannot read which remotes the vault has: {e}"),
        }
        // The vault closed (locked) or has no remote: wait for the next open.
        agent.remotes_wake.notified().await;
    }
}

/// Why [`keep_in_sync`] returned.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// The vault closed.
    Closed,
    /// Told that the vault's remotes changed.
    Woken,
}

/// Syncs `names` at once, then after changes and every [`POLL`], until the vault closes or
/// its remotes change.
async fn keep_in_sync(agent: &Agent, names: &[String], mut changes: Changes) -> Ended {
    let mut due = Instant::now();
    let mut failures = 0u32;
    loop {
        tokio::select! {
            () = agent.remotes_wake.notified() => return Ended::Woken,
            event = changes.next() => match event {
                None => return Ended::Closed,
                Some(event) if goes_to_remotes(&event, names) => {
                    due = due.min(Instant::now() + SETTLE);
                }
                Some(_) => {}
            },
            () = tokio::time::sleep_until(due) => {
                let Some(handle) = agent.handle().await else { return Ended::Closed };
                let ok = sync_all(agent, handle, names).await;
                failures = if ok { 0 } else { failures.saturating_add(1) };
                due = Instant::now() + wait_after(failures);
            }
        }
    }
}

/// Whether `event` is news for the remotes: anything but a merge from the only remote.
fn goes_to_remotes(event: &ChangeEvent, names: &[String]) -> bool {
    match event {
        ChangeEvent::Changed(c) => match &c.cause {
            Cause::Merged {
                from: Origin::Remote(name),
            }
            | Cause::ConflictResolved {
                from: Origin::Remote(name),
            } => names.len() > 1 || names.first() != Some(name),
            _ => true,
        },
        // Some changes went unseen: sync to be sure.
        _ => true,
    }
}

/// After `failures` failed rounds in a row, the wait before the next.
fn wait_after(failures: u32) -> Duration {
    if failures == 0 {
        return POLL;
    }
    FIRST_BACKOFF
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(POLL)
}

/// One sync with each remote; whether all succeeded. What they brought goes on to the peers
/// that share it.
async fn sync_all(agent: &Agent, mut handle: Handle, names: &[String]) -> bool {
    let mut ok = true;
    let mut to_peers: Vec<PeerId> = Vec::new();
    for name in names {
        let result = match handle.read(|v| Remote::open(v.store(), name, None)) {
            Ok(mut remote) => remote.sync(&mut handle).await,
            Err(e) => Err(e),
        };
        let mut remotes = agent.remotes();
        let status = remotes.0.entry(name.clone()).or_default();
        match result {
            Ok(report) => {
                let merged = report.merge.added + report.merge.updated + report.merge.deleted;
                let uploaded: usize = report.uploaded.iter().map(|u| u.events).sum();
                status.last_sync_ms = Some(now_ms());
                status.last_error = report
                    .failed
                    .first()
                    .map(|(device, e)| format!("device {device} refused: {e}"));
                status.merged += merged;
                status.uploaded += uploaded as u64;
                if merged > 0 || uploaded > 0 {
                    info!(remote = %name, merged, uploaded, "synced by itself");
                }
                if merged > 0 {
                    to_peers.extend(handle.read(|v| {
                        v.store()
                            .clients()
                            .flat_map(|(_, client)| sharing(v, client))
                            .collect::<Vec<_>>()
                    }));
                }
            }
            Err(e) => {
                ok = false;
                warn!(remote = %name, "sync failed: {e}");
                status.last_error = Some(e.to_string());
            }
        }
    }
    drop(handle);
    to_peers.sort();
    to_peers.dedup();
    agent.changed(&to_peers);
    ok
}

/// Now, in milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use redoubt_node::{Change, What};
    use redoubt_vault::Location;

    use super::*;

    fn change(cause: Cause) -> ChangeEvent {
        ChangeEvent::Changed(Change::new(
            b"alice".to_vec(),
            Location::new("wallet", "seed").unwrap_or_else(|e| panic!("{e}")),
            What::Written,
            cause,
        ))
    }

    #[test]
    fn a_remote_is_not_sent_back_what_it_brought() {
        let one = ["nas".to_string()];
        let two = ["nas".to_string(), "s3".to_string()];
        let from_nas = || Cause::Merged {
            from: Origin::Remote("nas".into()),
        };
        assert!(!goes_to_remotes(&change(from_nas()), &one));
        assert!(goes_to_remotes(&change(from_nas()), &two), "s3 wants it");
        assert!(goes_to_remotes(&change(Cause::Local), &one));
        let from_peer = Cause::Merged {
            from: Origin::Peer("12D3".into()),
        };
        assert!(goes_to_remotes(&change(from_peer), &one));
        assert!(goes_to_remotes(&ChangeEvent::Lagged { missed: 3 }, &one));
    }

    #[test]
    fn failures_back_off_up_to_the_poll_interval() {
        assert_eq!(wait_after(0), POLL);
        assert_eq!(wait_after(1), FIRST_BACKOFF);
        assert_eq!(wait_after(2), FIRST_BACKOFF * 2);
        assert_eq!(wait_after(40), POLL);
    }
}
