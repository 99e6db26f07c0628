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

/// With a default client, a path is `VAULT/RECORD` in it (the record keeps any further
/// slashes, as `pass` paths do): a first part never silently names another client, which a put
/// would create unshared. Without one, it is `CLIENT/VAULT/RECORD`. Another client than the
/// default is named with the three-argument form.
pub(crate) fn parse_path(path: &str, default_client: Option<&str>) -> Result<Target, String> {
    if let Some(client) = default_client.filter(|c| !c.is_empty()) {
        return match path.split_once('/') {
            Some((vault, record)) if !vault.is_empty() && !record.is_empty() => Ok(Target {
                client: client.to_string(),
                vault: vault.to_string(),
                record: record.to_string(),
            }),
            _ => Err(format!(
                "{path:?} is not a path: with the default client {client:?} give VAULT/RECORD, \
                 or CLIENT VAULT <RECORD> for another client"
            )),
        };
    }
    let parts: Vec<&str> = path.splitn(3, '/').collect();
    match parts.as_slice() {
        [client, vault, record] => Ok(Target {
            client: (*client).to_string(),
            vault: (*vault).to_string(),
            record: (*record).to_string(),
        }),
        [_, _] => Err(format!(
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
        assert_eq!(parse_path("a/w/s/x", None), Ok(t("a", "w", "s/x")));
        assert_eq!(parse_path("w/s", Some("a")), Ok(t("a", "w", "s")));
        // With a default client, a deeper path stays in it (pass paths are often deep).
        assert_eq!(
            parse_path("email/work/me", Some("z")),
            Ok(t("z", "email", "work/me"))
        );
        assert!(
            parse_path("w", Some("a"))
                .unwrap_err()
                .contains("VAULT/RECORD")
        );
        assert!(parse_path("w/", Some("a")).is_err());
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
