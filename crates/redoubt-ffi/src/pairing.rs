//! Pairing from an app: the host opens an offer (code and QR payload) and answers the device
//! that proves it; the joiner types the code (or scans the payload) and answers the host.

use std::{sync::Arc, time::Duration};

use redoubt_node::{PAIR_CODE_TTL, PairingEvent};

use crate::{
    MergeCounts, Paired, PairingListener, PairingOffer, RedoubtError, Vault,
    runtime::{block_on, runtime},
    types::text,
    vault::{DISCOVERY_WAIT, parse_addr},
};

#[uniffi::export]
impl Vault {
    /// Opens a pairing offer of `clients` for `ttl_secs` seconds (0: the default, five
    /// minutes), replacing any open one. Show the returned code and QR payload; `listener`
    /// asks the user to confirm the device that proves the code, then hears how it ended.
    pub fn pair_offer(
        &self,
        clients: Vec<String>,
        ttl_secs: u64,
        listener: Arc<dyn PairingListener>,
    ) -> Result<PairingOffer, RedoubtError> {
        let handle = self.handle("pairing")?;
        let ttl = if ttl_secs == 0 {
            PAIR_CODE_TTL
        } else {
            Duration::from_secs(ttl_secs)
        };
        let clients = clients.into_iter().map(String::into_bytes).collect();
        let mut offer = block_on(handle.pair_offer(clients, ttl))??;
        let shown = PairingOffer {
            code: offer.code.to_string(),
            qr_payload: offer.payload.clone(),
            expires_in_secs: ttl.as_secs(),
        };
        runtime()?.spawn(async move {
            while let Some(event) = offer.next().await {
                match event {
                    PairingEvent::Request(request) => {
                        let (peer, check) = (request.peer().to_base58(), request.verification());
                        let asked = listener.clone();
                        let accept = tokio::task::spawn_blocking(move || {
                            asked.confirm(peer, check.to_string())
                        })
                        .await
                        .unwrap_or(false);
                        // An error here means the node stopped; the offer then ends.
                        let _ = if accept {
                            request.accept().await
                        } else {
                            request.reject().await
                        };
                    }
                    PairingEvent::Paired { peer, clients, .. } => {
                        let clients = clients.iter().map(|c| text(c)).collect();
                        let told = listener.clone();
                        let _ = tokio::task::spawn_blocking(move || {
                            told.on_paired(peer.to_base58(), clients)
                        })
                        .await;
                        return;
                    }
                    PairingEvent::Failed { reason, .. } => {
                        let told = listener.clone();
                        let _ =
                            tokio::task::spawn_blocking(move || told.on_failed(reason.to_string()))
                                .await;
                        return;
                    }
                }
            }
        });
        Ok(shown)
    }

    /// Joins the device showing `code` (the code as typed, or the scanned QR payload), dialed
    /// at `addrs` when given, else at the payload's addresses, else found on the local network.
    /// `listener.confirm` asks this device's user once the host proved the code; when both
    /// users accept, both sides hold read and write grants on the shared clients and this vault
    /// imports them before this returns. A wrong code fails with
    /// [`RedoubtError::WrongPairingCode`].
    pub fn pair_join(
        &self,
        code: String,
        addrs: Vec<String>,
        listener: Arc<dyn PairingListener>,
    ) -> Result<Paired, RedoubtError> {
        let handle = self.handle("pairing")?;
        let addrs = addrs
            .iter()
            .map(|a| parse_addr(a))
            .collect::<Result<Vec<_>, _>>()?;
        block_on(async move {
            let request = handle
                .clone()
                .pair_join(&code, addrs, DISCOVERY_WAIT)
                .await?;
            let (peer, check) = (request.peer().to_base58(), request.verification());
            let accept =
                tokio::task::spawn_blocking(move || listener.confirm(peer, check.to_string()))
                    .await
                    .unwrap_or(false);
            if !accept {
                request.reject().await?;
                return Err(RedoubtError::Pairing {
                    message: "declined on this device; nothing was granted".into(),
                });
            }
            let (paired, imported) = request.accept().await?;
            // Where the host answered, so a later sync can name it by its peer id alone.
            handle.write(|v| v.note_peer_addresses(paired.peer, &paired.addrs))?;
            Ok(Paired {
                peer_id: paired.peer.to_base58(),
                clients: paired.clients.iter().map(|c| text(c)).collect(),
                imported: MergeCounts::from(&imported.report),
            })
        })?
    }
}
