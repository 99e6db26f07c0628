//! A hook on every response frame the node sends, for tests that play a hostile or broken
//! responder on a real swarm. Not a stable API.

use libp2p::PeerId;

/// What to do with a response frame after the hook has seen (and maybe changed) it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookAction {
    /// Send the frame as it now is.
    Send,
    /// Send nothing and close every connection to the peer.
    Disconnect,
    /// Send nothing and keep the request open, so the peer times out.
    Stall,
}

/// Sees every response frame before it is sent (and, read-only, every request frame).
pub trait ResponseHook: Send + Sync {
    /// May rewrite `frame` (a whole encoded response) and chooses what happens to it.
    fn outgoing(&self, peer: &PeerId, frame: &mut Vec<u8>) -> HookAction;

    /// Sees a sync request frame just before it is handed to libp2p (tests that check what
    /// leaves the node).
    fn outgoing_request(&self, _peer: &PeerId, _frame: &[u8]) {}

    /// May rewrite a pairing response frame before it is sent (tests of a host whose
    /// `Welcome` was altered).
    fn outgoing_pair(&self, _peer: &PeerId, _frame: &mut Vec<u8>) {}
}
