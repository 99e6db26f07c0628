//! Where a secret is: `CLIENT VAULT RECORD`, or a `pass`-style path with a default client.

use crate::cli::LocationArgs;

/// Environment variable naming the client that a two-part path (`VAULT/RECORD`) is in.
pub(crate) const CLIENT_ENV: &str = "REDOUBT_CLIENT";

/// A secret's three names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) client: String,
    pub(crate) vault: String,
    pub(crate) record: String,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.client, self.vault, self.record)
    }
}

impl LocationArgs {
    /// The names these arguments give, or what is wrong with them (a usage error).
    pub(crate) fn target(&self) -> Result<Target, String> {
        match (&self.vault_path, &self.record) {
            (Some(vault), Some(record)) => Ok(Target {
                client: self.client.clone(),
                vault: vault.clone(),
                record: record.clone(),
            }),
            _ => parse_path(&self.client, default_client().as_deref()),
        }
    }
}

/// The client a two-part path is in: `REDOUBT_CLIENT`, else the `client = NAME` line of the
/// config file ([`config_file`]).
pub(crate) fn default_client() -> Option<String> {
    if let Ok(c) = std::env::var(CLIENT_ENV) {
        return Some(c);
    }
    let text = std::fs::read_to_string(config_file()?).ok()?;
    text.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == "client").then(|| value.trim().trim_matches('"').to_string())
    })
}

/// `$XDG_CONFIG_HOME/redoubt/config` (or the platform's per-user config directory): lines
/// `key = value`, `#` comments; today only `client`.
pub(crate) fn config_file() -> Option<std::path::PathBuf> {
    directories::ProjectDirs::from("", "", "redoubt").map(|d| d.config_dir().join("config"))
}

/// `CLIENT/VAULT/RECORD` (the record keeps any further slashes), or `VAULT/RECORD` in
/// `default_client`.
pub(crate) fn parse_path(path: &str, default_client: Option<&str>) -> Result<Target, String> {
    let parts: Vec<&str> = path.splitn(3, '/').collect();
    match (parts.as_slice(), default_client.filter(|c| !c.is_empty())) {
        ([client, vault, record], _) => Ok(Target {
            client: (*client).to_string(),
            vault: (*vault).to_string(),
            record: (*record).to_string(),
        }),
        ([vault, record], Some(client)) => Ok(Target {
            client: client.to_string(),
            vault: (*vault).to_string(),
            record: (*record).to_string(),
        }),
        ([_, _], None) => Err(format!(
            "{path:?} names no client: give CLIENT/{path}, set {CLIENT_ENV}=CLIENT, or put \
             `client = CLIENT` in the config file"
        )),
        _ => Err(format!(
            "{path:?} is not a path: give CLIENT VAULT <RECORD>, CLIENT/VAULT/RECORD, or \
             VAULT/RECORD with {CLIENT_ENV} set"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(c: &str, v: &str, r: &str) -> Target {
        Target {
            client: c.into(),
            vault: v.into(),
            record: r.into(),
        }
    }

    #[test]
    fn paths_split_into_three_names() {
        assert_eq!(parse_path("a/w/s", None), Ok(t("a", "w", "s")));
        assert_eq!(parse_path("a/w/s/x", Some("z")), Ok(t("a", "w", "s/x")));
        assert_eq!(parse_path("w/s", Some("a")), Ok(t("a", "w", "s")));
        assert!(
            parse_path("w/s", None)
                .unwrap_err()
                .contains("REDOUBT_CLIENT")
        );
        assert!(parse_path("w/s", Some("")).is_err());
        assert!(
            parse_path("alice", Some("a"))
                .unwrap_err()
                .contains("<RECORD>")
        );
    }
}
