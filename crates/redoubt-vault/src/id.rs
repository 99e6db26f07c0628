//! Identifiers derived from caller-supplied byte paths, and the locations they form.

use std::fmt;

use crate::{Error, limits::MAX_PATH_LEN};

/// `blake3::derive_key` context for [`ClientId`].
pub const CLIENT_ID_CONTEXT: &str = "redoubt v1 client id";
/// `blake3::derive_key` context for [`VaultId`].
pub const VAULT_ID_CONTEXT: &str = "redoubt v1 vault id";
/// `blake3::derive_key` context for [`RecordId`].
pub const RECORD_ID_CONTEXT: &str = "redoubt v1 record id";

macro_rules! path_id {
    ($(#[$doc:meta])* $name:ident, $context:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name([u8; 32]);

        impl $name {
            /// Derives the id of a path with this id's domain-separated context.
            pub fn from_path(path: &[u8]) -> Self {
                Self(blake3::derive_key($context, path))
            }

            /// Wraps 32 bytes received from elsewhere (a peer, a file) as an id.
            pub const fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }

            /// The id's 32 bytes.
            pub const fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), short_hex(&self.0))
            }
        }
    };
}

path_id!(
    /// Identifies a client (one tenant of an instance, Stronghold's `client_id`).
    ClientId,
    CLIENT_ID_CONTEXT
);
path_id!(
    /// Identifies a vault inside a client.
    VaultId,
    VAULT_ID_CONTEXT
);
path_id!(
    /// Identifies a record inside a vault.
    RecordId,
    RECORD_ID_CONTEXT
);

/// Identifies the node that wrote a record version; the last part of a [`crate::Stamp`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId([u8; 16]);

impl NodeId {
    /// Wraps 16 bytes as a node id.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The id's 16 bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", short_hex(&self.0))
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

/// Checks that a path is non-empty and at most [`MAX_PATH_LEN`] bytes.
pub(crate) fn check_path(what: &'static str, path: &[u8]) -> Result<(), Error> {
    if path.is_empty() || path.len() > MAX_PATH_LEN {
        return Err(Error::InvalidPath {
            what,
            len: path.len(),
        });
    }
    Ok(())
}

/// Where a record lives inside a client: a vault path and a record path.
///
/// The ids of both paths are derived once, when the location is made, and kept beside them:
/// shape listings and complements ask for them once per record.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    vault: Vec<u8>,
    record: Vec<u8>,
    ids: (VaultId, RecordId),
}

impl Location {
    /// Makes a location, checking both paths.
    pub fn new(vault: impl Into<Vec<u8>>, record: impl Into<Vec<u8>>) -> Result<Self, Error> {
        let (vault, record) = (vault.into(), record.into());
        check_path("vault path", &vault)?;
        check_path("record path", &record)?;
        Ok(Self::from_checked(vault, record))
    }

    /// A location from paths the caller has already checked.
    pub(crate) fn from_checked(vault: Vec<u8>, record: Vec<u8>) -> Self {
        let ids = (VaultId::from_path(&vault), RecordId::from_path(&record));
        Self { vault, record, ids }
    }

    /// The vault path.
    pub fn vault_path(&self) -> &[u8] {
        &self.vault
    }

    /// The record path.
    pub fn record_path(&self) -> &[u8] {
        &self.record
    }

    /// The vault and record ids of this location.
    pub fn ids(&self) -> (VaultId, RecordId) {
        self.ids
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Location({}/{})",
            String::from_utf8_lossy(&self.vault),
            String::from_utf8_lossy(&self.record)
        )
    }
}

/// Lower-case hex of some bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn short_hex(bytes: &[u8]) -> String {
    hex(&bytes[..8.min(bytes.len())])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_domain_separated() {
        let path = b"same path";
        let client = ClientId::from_path(path);
        let vault = VaultId::from_path(path);
        let record = RecordId::from_path(path);
        assert_ne!(client.as_bytes(), vault.as_bytes());
        assert_ne!(vault.as_bytes(), record.as_bytes());
        assert_eq!(
            client.as_bytes(),
            &blake3::derive_key("redoubt v1 client id", path)
        );
    }

    #[test]
    fn paths_are_checked() {
        assert!(Location::new(b"v".to_vec(), b"".to_vec()).is_err());
        assert!(Location::new(vec![b'v'; MAX_PATH_LEN + 1], b"r".to_vec()).is_err());
        assert!(Location::new(vec![b'v'; MAX_PATH_LEN], b"r".to_vec()).is_ok());
    }
}
