//! The remotes on shared storage that travel with a version 3 welcome: which ones a host may
//! share (only those whose clients the joiner is all granted: a storage key opens everything
//! on its storage), and how the joiner stores each one, as `redoubt remote join` would.

use redoubt_protocol::pairing::SharedRemote;
use redoubt_remote::{Backend, Remote, RemoteState, StorageKey};
use redoubt_store::Store;
use tracing::{info, warn};

use crate::Handle;

/// What became of one remote a host shared, on the joiner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteJoin {
    /// The remote's name (this vault stores it under the same name).
    pub name: String,
    /// Its URL.
    pub url: String,
    /// What happened to it.
    pub outcome: RemoteOutcome,
}

/// What became of one shared remote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteOutcome {
    /// Stored as a remote of this vault; `remote sync NAME` works at once.
    Joined,
    /// This vault already had it (the same name and URL); left as it was.
    AlreadyJoined,
    /// Refused, and nothing of it kept: why.
    Refused(String),
}

/// The remotes of `store` that a device granted exactly `shared` may receive, and the names of
/// those kept back. A remote goes only if every client travelling through it is in `shared`;
/// one chosen for every client counts as carrying every client the vault holds.
pub fn shareable_remotes(
    store: &Store,
    shared: &[Vec<u8>],
) -> Result<(Vec<SharedRemote>, Vec<String>), redoubt_remote::Error> {
    let mut send = Vec::new();
    let mut withheld = Vec::new();
    for name in store.remote_names()? {
        let Some(bytes) = store.remote(&name)? else {
            continue;
        };
        let state = RemoteState::decode(&bytes)?;
        let travelling: Vec<Vec<u8>> = match &state.clients {
            Some(clients) => clients.clone(),
            None => store.clients().map(|(_, c)| c.to_vec()).collect(),
        };
        if travelling.iter().all(|c| shared.contains(c)) {
            send.push(SharedRemote::new(
                name,
                state.url.clone(),
                state.clients.clone(),
                *state.key.expose(),
            ));
        } else {
            withheld.push(name);
        }
    }
    Ok((send, withheld))
}

/// Stores each of `received` as a remote of the vault behind `node`, as `remote join` would
/// with the key (adopting this device's head if the storage holds one). Each is checked first:
/// a name this vault uses for another URL, a URL it cannot use, or a client outside
/// `welcomed` is refused, and nothing of it is kept.
pub(crate) async fn join_all(
    node: &Handle,
    welcomed: &[Vec<u8>],
    received: Vec<SharedRemote>,
) -> Vec<RemoteJoin> {
    let mut out = Vec::with_capacity(received.len());
    for remote in received {
        let outcome = join_one(node, welcomed, &remote).await;
        match &outcome {
            RemoteOutcome::Refused(why) => {
                warn!(remote = %remote.name, "shared remote refused: {why}");
            }
            _ => info!(remote = %remote.name, "shared remote joined"),
        }
        out.push(RemoteJoin {
            name: remote.name,
            url: remote.url,
            outcome,
        });
    }
    out
}

async fn join_one(node: &Handle, welcomed: &[Vec<u8>], remote: &SharedRemote) -> RemoteOutcome {
    let refused = |why: String| RemoteOutcome::Refused(why);
    if remote.name.chars().any(char::is_control) || remote.url.chars().any(char::is_control) {
        return refused("its name or URL holds control characters".into());
    }
    if let Some(clients) = &remote.clients
        && let Some(c) = clients.iter().find(|c| !welcomed.contains(c))
    {
        return refused(format!(
            "it carries client {:?}, which this pairing does not share",
            String::from_utf8_lossy(c)
        ));
    }
    if remote.clients.is_none() && welcomed.is_empty() {
        return refused("it carries every client, and this pairing shares none".into());
    }
    let existing = node.read(|v| -> Result<Option<String>, redoubt_remote::Error> {
        match v.store().remote(&remote.name)? {
            Some(bytes) => Ok(Some(RemoteState::decode(&bytes)?.url)),
            None => Ok(None),
        }
    });
    match existing {
        Err(e) => return refused(format!("this vault's remote of that name: {e}")),
        Ok(Some(url)) if url == remote.url => return RemoteOutcome::AlreadyJoined,
        Ok(Some(url)) => {
            return refused(format!(
                "this vault already has a remote named {} for {url}",
                remote.name
            ));
        }
        Ok(None) => {}
    }
    let backend = match Backend::from_url(&remote.url) {
        Ok(b) => b,
        Err(e) => return refused(e.to_string()),
    };
    let key = StorageKey::from_bytes(*remote.key.expose());
    let mut handle = node.clone();
    match Remote::join_with_key(
        &mut handle,
        &remote.name,
        &remote.url,
        backend,
        remote.clients.clone(),
        key,
    )
    .await
    {
        Ok(_) => RemoteOutcome::Joined,
        Err(e) => refused(e.to_string()),
    }
}
