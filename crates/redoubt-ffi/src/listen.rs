//! The callback interfaces an app implements: the change listener, and the pairing prompts.

use std::sync::Arc;

use redoubt_node::{ChangeEvent as NodeChange, Changes};

use crate::ChangeEvent;

/// Told each change of the vault after its commit, whoever made it (this app, a peer's merge,
/// a remote): refresh the row it names. Called on a thread of its own, one change at a time in
/// order; calling back into the vault from it is allowed.
#[uniffi::export(with_foreign)]
pub trait ChangeListener: Send + Sync {
    /// One location changed.
    fn on_change(&self, change: ChangeEvent);
    /// The listener fell behind and `missed` changes were dropped for it: re-read the vault.
    fn on_lagged(&self, missed: u64);
}

/// The user's side of a pairing, on both devices.
#[uniffi::export(with_foreign)]
pub trait PairingListener: Send + Sync {
    /// A device proved it holds the code (on the host) or the host proved it knows it (on the
    /// joiner): show `verification` (both devices show the same string) and the peer id, ask
    /// the user, and return whether they accept. Nothing is granted unless both accept.
    fn confirm(&self, peer_id: String, verification: String) -> bool;
    /// On the host: paired with `peer_id`, which may now read and write `clients`.
    fn on_paired(&self, peer_id: String, clients: Vec<String>);
    /// On the host: the offer ended without pairing (a wrong code, a decline, expiry).
    fn on_failed(&self, reason: String);
}

/// Delivers `changes` to `listener` from a thread of its own (not a runtime thread, so the
/// listener may call any method), until the vault is gone or `stop` is set.
pub(crate) fn deliver(
    mut changes: Changes,
    listener: Arc<dyn ChangeListener>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Result<(), crate::RedoubtError> {
    let rt = crate::runtime::runtime()?;
    let (tx, rx) = std::sync::mpsc::channel::<NodeChange>();
    rt.spawn(async move {
        while let Some(event) = changes.next().await {
            if tx.send(event).is_err() {
                break;
            }
        }
    });
    std::thread::Builder::new()
        .name("redoubt-ffi-listener".into())
        .spawn(move || {
            for event in rx {
                if stop.load(std::sync::atomic::Ordering::Acquire) {
                    break;
                }
                match event {
                    NodeChange::Changed(c) => listener.on_change(c.into()),
                    NodeChange::Lagged { missed } => listener.on_lagged(missed),
                }
            }
        })
        .map_err(|e| crate::RedoubtError::Storage {
            message: format!("could not start the listener thread: {e}"),
        })?;
    Ok(())
}
