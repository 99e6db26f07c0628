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

/// A listener being told changes: a runtime task forwards them to a thread of its own (not a
/// runtime thread, so the listener may call any method of the vault).
pub(crate) struct Delivery {
    forward: tokio::task::JoinHandle<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Delivery {
    /// Starts telling `listener` the changes of `changes`, in order.
    pub(crate) fn start(
        mut changes: Changes,
        listener: Arc<dyn ChangeListener>,
    ) -> Result<Self, crate::RedoubtError> {
        let (tx, rx) = std::sync::mpsc::channel::<NodeChange>();
        let thread = std::thread::Builder::new()
            .name("redoubt-ffi-listener".into())
            .spawn(move || {
                for event in rx {
                    match event {
                        NodeChange::Changed(c) => listener.on_change(c.into()),
                        NodeChange::Lagged { missed } => listener.on_lagged(missed),
                    }
                }
            })
            .map_err(|e| crate::RedoubtError::Storage {
                message: format!("could not start the listener thread: {e}"),
            })?;
        let forward = crate::runtime::runtime()?.spawn(async move {
            while let Some(event) = changes.next().await {
                if tx.send(event).is_err() {
                    break;
                }
            }
        });
        Ok(Self {
            forward,
            thread: Some(thread),
        })
    }

    /// Stops telling: the forwarding ends, the thread finishes the change it is telling and
    /// lets go of the listener; waited for unless called from that thread (a listener that
    /// replaces itself).
    pub(crate) fn stop(mut self) {
        self.forward.abort();
        if let Some(thread) = self.thread.take()
            && thread.thread().id() != std::thread::current().id()
        {
            // Aborting drops the task's sender once the runtime runs the abort; the thread
            // then sees the channel closed and ends.
            let _ = thread.join();
        }
    }
}
