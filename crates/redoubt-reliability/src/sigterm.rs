//! `serve` stops on SIGTERM: after one session against it (a `redoubt sync` that pulls from it
//! and pushes a new record), SIGTERM is sent at once. Serve must exit with status 0 (the wait
//! for it is bounded at 10 s: a hang detector, not a bound on speed), and its vault must then
//! open and hold the pushed record.

use std::time::Duration;

use anyhow::{Result, bail, ensure};

use crate::{
    Tally,
    redoubt::{Server, Vault, binary},
};

const CLIENT: &str = "alice";
const VAULT: &str = "v";

/// How long serve may take to exit after SIGTERM before it counts as having ignored it.
const HANG: Duration = Duration::from_secs(10);

pub(crate) fn run(quick: bool) -> Result<Tally> {
    let runs = if quick { 5 } else { 20 };
    let bin = binary()?;
    let dir = tempfile::tempdir()?;
    let server_vault = Vault::init(&bin, dir.path().join("server.rdb"))?;
    let peer = Vault::init(&bin, dir.path().join("peer.rdb"))?;
    let (server_id, peer_id) = (server_vault.id()?, peer.id()?);
    server_vault.allow(&peer_id, CLIENT, true, true)?;
    peer.allow(&server_id, CLIENT, true, true)?;
    let mut tally = Tally::new();
    let (mut ignored, mut failed_exits) = (0, 0);
    for i in 0..runs {
        let result = (|| {
            let mut server = Server::start(&server_vault)?;
            let (record, value) = (format!("r{i}"), format!("value {i}"));
            peer.put(CLIENT, VAULT, &record, value.as_bytes())?;
            peer.run(&["sync", &server.addr, "--client", CLIENT])?;
            server.terminate()?;
            match server.wait_for_exit(HANG)? {
                None => {
                    ignored += 1;
                    server.kill()?;
                    bail!("serve still ran {} s after SIGTERM", HANG.as_secs());
                }
                Some(status) if !status.success() => {
                    failed_exits += 1;
                    bail!("serve exited with {status} on SIGTERM");
                }
                Some(_) => {}
            }
            let got = server_vault.get(CLIENT, VAULT, &record)?;
            ensure!(
                got == value.as_bytes(),
                "the vault holds {:?} at {record} after serve stopped, not the pushed {value:?}",
                String::from_utf8_lossy(&got)
            );
            Ok(())
        })();
        tally.record(result);
    }
    eprintln!(
        "(sigterm-stops-serve: {ignored} of {runs} SIGTERMs ignored (serve still ran {} s \
         later); {failed_exits} exits with a failure status)",
        HANG.as_secs()
    );
    Ok(tally)
}
