//! What a served pull may see: the scope resolved from its mode, our grants and what we hold,
//! and the refusal sent when it may see nothing.

use redoubt_vault::{ClientId, Selection};

use crate::{Error, Mode, RefusalCode, Replica, Response, replica::ReplicaExt};

/// A refusal to answer, sent back as [`Response::Refused`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Why.
    pub code: RefusalCode,
    /// Detail for the requester's error message.
    pub detail: String,
}

impl Refusal {
    /// A refusal with `code` and `detail`.
    pub fn new(code: RefusalCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
        }
    }

    /// The response frame that carries it.
    pub fn to_frame(&self) -> Vec<u8> {
        Response::Refused {
            code: self.code,
            detail: self.detail.clone(),
        }
        .encode()
        .unwrap_or_default()
    }
}

impl From<Error> for Refusal {
    /// A failed read of our replica is ours, not the request's: refused as internal, without
    /// the store's words (the requester learns only that we failed); anything else broke a
    /// protocol rule.
    fn from(e: Error) -> Self {
        match e {
            Error::Replica(_) => Self::new(RefusalCode::Internal, "the responder's store failed"),
            e => Self::new(RefusalCode::BadRequest, e.to_string()),
        }
    }
}

/// What a pull may see: per client in scope, the selected records.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    pub(super) clients: Vec<(ClientId, Selection)>,
}

impl Scope {
    /// Resolves `mode` against what we hold and the client paths the peer may read.
    ///
    /// A full or partial pull of a client not in `readable` is refused with permission denied;
    /// of a client we do not hold, with client not found; a replica that fails to say whether
    /// it holds one, as internal. An import covers the readable clients
    /// (those listed, when it lists any) that we hold, and is refused when none is readable.
    pub fn resolve(
        mode: &Mode,
        replica: &impl Replica,
        readable: &[Vec<u8>],
    ) -> Result<Self, Refusal> {
        let single = |client: &Vec<u8>, selection: Selection| {
            if !readable.contains(client) {
                return Err(Refusal::new(
                    RefusalCode::PermissionDenied,
                    format!(
                        "no read grant on client {:?}",
                        String::from_utf8_lossy(client)
                    ),
                ));
            }
            let id = ClientId::from_path(client);
            if !replica.has(&id).map_err(Refusal::from)? {
                return Err(Refusal::new(
                    RefusalCode::ClientNotFound,
                    format!("client {:?}", String::from_utf8_lossy(client)),
                ));
            }
            Ok(Self {
                clients: vec![(id, selection)],
            })
        };
        match mode {
            Mode::Full { client } | Mode::Partial { client, .. } => {
                single(client, mode.selection()?)
            }
            Mode::Import { clients } => {
                let candidates: Vec<&Vec<u8>> = readable
                    .iter()
                    .filter(|c| clients.is_empty() || clients.contains(c))
                    .collect();
                if candidates.is_empty() {
                    return Err(Refusal::new(
                        RefusalCode::PermissionDenied,
                        "no client you may read",
                    ));
                }
                let mut ids = Vec::with_capacity(candidates.len());
                for id in candidates.iter().map(|c| ClientId::from_path(c)) {
                    if replica.has(&id).map_err(Refusal::from)? {
                        ids.push(id);
                    }
                }
                ids.sort();
                ids.dedup();
                Ok(Self {
                    clients: ids.into_iter().map(|id| (id, Selection::all())).collect(),
                })
            }
        }
    }

    /// The clients in scope, by id, in order.
    pub fn clients(&self) -> impl Iterator<Item = &ClientId> {
        self.clients.iter().map(|(id, _)| id)
    }
}

/// The scope an invited pull may see: the clients we offered in our push.
pub fn invited_readable(offered: &Mode) -> Vec<Vec<u8>> {
    match offered {
        Mode::Full { client } | Mode::Partial { client, .. } => vec![client.clone()],
        Mode::Import { clients } => clients.clone(),
    }
}
