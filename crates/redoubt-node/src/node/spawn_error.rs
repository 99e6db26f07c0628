//! A node that did not start, holding the vault it was given so the app keeps it.

use std::fmt;

use crate::{Error, Vault};

/// Why [`crate::spawn`] failed, with the vault it was given, unchanged: nothing was
/// committed, and [`SpawnError::into_vault`] hands it back for another try.
pub struct SpawnError {
    error: Error,
    vault: Box<Vault>,
}

impl SpawnError {
    pub(super) fn new(error: Error, vault: Vault) -> Self {
        Self {
            error,
            vault: Box::new(vault),
        }
    }

    /// Why the node did not start.
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// The vault the node was given.
    pub fn into_vault(self) -> Vault {
        *self.vault
    }

    /// Why the node did not start, and the vault it was given.
    pub fn into_parts(self) -> (Error, Vault) {
        (self.error, *self.vault)
    }
}

impl From<SpawnError> for Error {
    fn from(e: SpawnError) -> Self {
        e.error
    }
}

/// Only the error: the vault's own `Debug` says nothing secret, but it is not what failed.
impl fmt::Debug for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpawnError")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for SpawnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.error)
    }
}
