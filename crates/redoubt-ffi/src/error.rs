//! The one error an app sees: which kind of failure, and a message that names what was wrong
//! (never a secret: no value, password or code is ever put in one).

use redoubt_node::store;
use redoubt_protocol::pairing::PairRefusal;

/// Why a call failed. Each variant carries a message for the user; apps branch on the variant.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum RedoubtError {
    /// The vault's password, or a remote's recovery passphrase, is wrong (nothing was opened
    /// or changed).
    #[error("{message}")]
    WrongPassword {
        /// What happened, for the user.
        message: String,
    },
    /// The pairing code typed was wrong: the host burned it; start a new pairing.
    #[error("{message}")]
    WrongPairingCode {
        /// What happened, for the user.
        message: String,
    },
    /// Pairing failed otherwise: declined, expired, no device found, a malformed code.
    #[error("{message}")]
    Pairing {
        /// What happened, for the user.
        message: String,
    },
    /// An argument was malformed: a peer id, an address, a path, a version hash.
    #[error("{message}")]
    InvalidInput {
        /// What was wrong.
        message: String,
    },
    /// No such vault file, record, version, client or remote.
    #[error("{message}")]
    NotFound {
        /// What was missing.
        message: String,
    },
    /// A grant is missing, here or on the peer.
    #[error("{message}")]
    NotGranted {
        /// Which grant.
        message: String,
    },
    /// The node is not running (call `start` first), or it stopped.
    #[error("{message}")]
    NotRunning {
        /// What needs the node.
        message: String,
    },
    /// The peer or the storage could not be reached, timed out, or broke the protocol.
    #[error("{message}")]
    Network {
        /// What failed.
        message: String,
    },
    /// The vault file or the local store failed (damaged, in use, a disk error).
    #[error("{message}")]
    Storage {
        /// What failed.
        message: String,
    },
}

impl RedoubtError {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidInput {
            message: message.into(),
        }
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound {
            message: message.into(),
        }
    }

    pub(crate) fn not_running(message: impl Into<String>) -> Self {
        Self::NotRunning {
            message: message.into(),
        }
    }
}

impl From<store::Error> for RedoubtError {
    fn from(e: store::Error) -> Self {
        let message = e.to_string();
        match e {
            store::Error::WrongPassword => Self::WrongPassword { message },
            store::Error::NotFound(_) => Self::NotFound { message },
            store::Error::PeerIdNotText => Self::InvalidInput { message },
            store::Error::Vault(e) => e.into(),
            _ => Self::Storage { message },
        }
    }
}

impl From<redoubt_vault::Error> for RedoubtError {
    fn from(e: redoubt_vault::Error) -> Self {
        use redoubt_vault::Error as V;
        let message = e.to_string();
        match e {
            V::RecordNotFound { .. } | V::VersionNotFound { .. } | V::ClientNotFound { .. } => {
                Self::NotFound { message }
            }
            V::InvalidPath { .. } | V::ValueTooLarge { .. } | V::InvalidPeerId { .. } => {
                Self::InvalidInput { message }
            }
            _ => Self::Storage { message },
        }
    }
}

impl From<redoubt_node::Error> for RedoubtError {
    fn from(e: redoubt_node::Error) -> Self {
        use redoubt_node::Error as N;
        let message = e.to_string();
        match e {
            N::Vault(e) => e.into(),
            N::Store(e) => e.into(),
            N::PairRefused(PairRefusal::WrongCode) => Self::WrongPairingCode { message },
            N::Pairing(_) | N::PairRefused(_) => Self::Pairing { message },
            N::NotGranted { .. } | N::PermissionDenied { .. } => Self::NotGranted { message },
            N::InvalidAddress { .. } => Self::InvalidInput { message },
            N::Shutdown | N::VaultInUse => Self::NotRunning { message },
            _ => Self::Network { message },
        }
    }
}

impl From<redoubt_remote::Error> for RedoubtError {
    fn from(e: redoubt_remote::Error) -> Self {
        use redoubt_remote::Error as R;
        let message = e.to_string();
        match e {
            R::Store(e) => e.into(),
            R::Vault(e) => e.into(),
            R::WrongPassphrase => Self::WrongPassword { message },
            R::NoSuchRemote(_) | R::NotSetUp => Self::NotFound { message },
            R::InvalidUrl(_)
            | R::InvalidOption { .. }
            | R::InvalidKdfParams(_)
            | R::RemoteExists(_)
            | R::AlreadySetUp => Self::InvalidInput { message },
            _ => Self::Network { message },
        }
    }
}
