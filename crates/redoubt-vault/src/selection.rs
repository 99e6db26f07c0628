//! Which records of a client a shape listing, complement or sync covers.

use std::collections::BTreeSet;

use crate::{Error, Location, RecordId, VaultId, id::check_path};

/// A selection inside one client: whole vaults and single records. Empty selects everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    vaults: BTreeSet<VaultId>,
    records: BTreeSet<(VaultId, RecordId)>,
}

impl Selection {
    /// Selects every record.
    pub fn all() -> Self {
        Self::default()
    }

    /// Adds a whole vault, by path.
    pub fn with_vault(mut self, vault_path: &[u8]) -> Result<Self, Error> {
        check_path("vault path", vault_path)?;
        self.vaults.insert(VaultId::from_path(vault_path));
        Ok(self)
    }

    /// Adds a single record.
    pub fn with_record(mut self, location: &Location) -> Self {
        self.records.insert(location.ids());
        self
    }

    /// Whether the selection is empty, which selects everything.
    pub fn is_everything(&self) -> bool {
        self.vaults.is_empty() && self.records.is_empty()
    }

    /// Whether the record at `(vault, record)` is selected.
    pub fn contains(&self, vault: VaultId, record: RecordId) -> bool {
        self.is_everything()
            || self.vaults.contains(&vault)
            || self.records.contains(&(vault, record))
    }
}
