//! `redoubt init`.

use std::path::Path;

use anyhow::{Context, Result, bail};
use redoubt_node::store::{KdfParams, Store};

use crate::{
    cli::InitArgs,
    secrets::{PASSWORD_ENV, new_password},
    store::create_parent,
};

/// The least Argon2id memory `init` accepts, in KiB: OWASP's minimum for Argon2id (19 MiB).
pub(crate) const KDF_FLOOR_MEMORY_KIB: u32 = 19 * 1024;
/// The fewest Argon2id passes `init` accepts, with [`KDF_FLOOR_MEMORY_KIB`] (OWASP: 2).
pub(crate) const KDF_FLOOR_ITERATIONS: u32 = 2;
/// Set to `1`, lets `init` go below the floor: for tests and scripts, never for real vaults.
pub(crate) const INSECURE_TEST_KDF_ENV: &str = "REDOUBT_INSECURE_TEST_KDF";

pub(crate) fn run(path: &Path, args: &InitArgs) -> Result<()> {
    if path.exists() {
        bail!("a vault already exists at {}", path.display());
    }
    let params = kdf_params(
        KdfParams::default(),
        args.kdf_memory_kib,
        args.kdf_iterations,
    )?;
    let password = new_password(PASSWORD_ENV, "New vault password", None)?;
    create_parent(path)?;
    let store = Store::create(path, &password.store(), params)
        .with_context(|| format!("creating {}", path.display()))?;
    eprintln!("created vault {} (node {})", path.display(), store.node());
    Ok(())
}

/// `base` with the memory and passes the flags give, checked against Argon2's rules and the
/// floor ([`check_floor`]).
pub(crate) fn kdf_params(
    base: KdfParams,
    memory_kib: Option<u32>,
    iterations: Option<u32>,
) -> Result<KdfParams> {
    let params = KdfParams {
        memory_kib: memory_kib.unwrap_or(base.memory_kib),
        iterations: iterations.unwrap_or(base.iterations),
        parallelism: base.parallelism,
    };
    params.check()?;
    check_floor(&params)?;
    Ok(params)
}

/// Refuses settings below the floor unless [`INSECURE_TEST_KDF_ENV`] is `1`: a weak KDF makes
/// every guess at a stolen vault's password cheap.
pub(crate) fn check_floor(params: &KdfParams) -> Result<()> {
    let below =
        params.memory_kib < KDF_FLOOR_MEMORY_KIB || params.iterations < KDF_FLOOR_ITERATIONS;
    let allowed = std::env::var_os(INSECURE_TEST_KDF_ENV).is_some_and(|v| v == "1");
    if below && !allowed {
        bail!(
            "KDF settings below the floor of {KDF_FLOOR_MEMORY_KIB} KiB and {KDF_FLOOR_ITERATIONS} \
             passes (asked: {} KiB, {} passes); set {INSECURE_TEST_KDF_ENV}=1 to allow them, for \
             tests only",
            params.memory_kib,
            params.iterations
        );
    }
    Ok(())
}
