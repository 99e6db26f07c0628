//! Pairing on loopback: a short code, SPAKE2 bound to both peer ids, a verification string
//! both devices show, both users asked, grants both ways and an import; wrong, expired, reused
//! and guessed codes; declines on either side; a bounded answer rate to wrong nameplates; and
//! discovery by mDNS.

use std::time::{Duration, Instant};

use redoubt_node::{
    Error, PAIR_REFUSALS_PER_PEER_PER_SECOND, PAIR_REFUSALS_PER_SECOND, PairJoinRequest, PairOffer,
    PairingEvent, RemoteJoin, RemoteOutcome, libp2p::Multiaddr,
};
use redoubt_protocol::{
    Mode,
    pairing::{PairRefusal, Verification},
};
use redoubt_remote::{Backend, Remote};
use redoubt_tests::TestNode;
use redoubt_vault::Rights;

const WAIT: Duration = Duration::from_secs(5);
const RW: Rights = Rights {
    read: true,
    write: true,
};

/// A desktop holding alice's and bob's secrets, with an offer of alice open for `ttl`.
async fn desktop_offering(ttl: Duration) -> anyhow::Result<(TestNode, PairOffer)> {
    let desktop = TestNode::start(1).await?;
    desktop.put("alice", "wallet", "seed", b"correct horse");
    desktop.put("alice", "mail", "password", b"hunter2");
    desktop.put("bob", "vpn", "key", b"not offered");
    let offer = desktop
        .handle
        .pair_offer(vec![b"alice".to_vec()], ttl)
        .await?;
    Ok((desktop, offer))
}

/// What the desktop's app saw of its offer, and the verification string it was shown.
#[derive(Debug, Default)]
struct HostSaw {
    events: Vec<String>,
    shown: Option<Verification>,
    /// The remotes the host sent and those it kept back, once paired.
    remotes: Option<(Vec<String>, Vec<String>)>,
}

/// Answers the first request the offer yields with `accept`, and returns what followed.
fn host_answers(mut offer: PairOffer, accept: bool) -> tokio::task::JoinHandle<HostSaw> {
    tokio::spawn(async move {
        let mut saw = HostSaw::default();
        while let Some(event) = offer.next().await {
            match event {
                PairingEvent::Request(r) => {
                    saw.events.push(format!("request {}", r.peer()));
                    saw.shown = Some(r.verification());
                    if accept {
                        r.accept().await.unwrap();
                    } else {
                        r.reject().await.unwrap();
                    }
                }
                PairingEvent::Paired {
                    remotes, withheld, ..
                } => {
                    saw.events.push("paired".into());
                    saw.remotes = Some((remotes, withheld));
                    break;
                }
                PairingEvent::Failed { reason, .. } => {
                    saw.events.push(format!("failed: {reason}"));
                    break;
                }
            }
        }
        saw
    })
}

fn accept_first(offer: PairOffer) -> tokio::task::JoinHandle<HostSaw> {
    host_answers(offer, true)
}

/// A pairing attempt that must fail before this device's user is asked; its error.
async fn join_error(node: &TestNode, code: &str, addrs: Vec<Multiaddr>) -> Error {
    match node.handle.pair_join(code, addrs, WAIT).await {
        Ok(request) => panic!("{} proved a code it should not know", request.peer()),
        Err(e) => e,
    }
}

/// Joins and accepts; the verification string this device showed, and the outcome.
async fn join_and_accept(
    node: &TestNode,
    code: &str,
    addrs: Vec<Multiaddr>,
) -> anyhow::Result<(
    Verification,
    redoubt_node::Paired,
    redoubt_node::PullOutcome,
)> {
    let request = node.handle.pair_join(code, addrs, WAIT).await?;
    let shown = request.verification();
    let (paired, imported) = request.accept().await?;
    Ok((shown, paired, imported))
}

fn addr(node: &TestNode) -> Vec<Multiaddr> {
    vec![node.addr()]
}

fn is_pairing_error(e: &Error, needle: &str) -> bool {
    match e {
        Error::Pairing(text) => text.contains(needle),
        Error::PairRefused(reason) => reason.to_string().contains(needle),
        _ => false,
    }
}

/// Neither device granted the other anything, and the phone holds nothing.
fn nothing_granted(desktop: &TestNode, phone: &TestNode) {
    assert!(phone.is_empty());
    assert_eq!(desktop.rights(phone, "alice"), Rights::default());
    assert_eq!(phone.rights(desktop, "alice"), Rights::default());
}

#[tokio::test]
async fn both_accept_with_equal_strings_grants_both_ways_imports_and_then_syncs()
-> anyhow::Result<()> {
    let (desktop, offer) = desktop_offering(Duration::from_secs(60)).await?;
    let code = offer.code.to_string();
    let host = accept_first(offer);
    let phone = TestNode::start(2).await?;
    let (shown, paired, imported) = join_and_accept(&phone, &code, addr(&desktop)).await?;
    assert_eq!(paired.peer, desktop.peer());
    assert_eq!(paired.clients, vec![b"alice".to_vec()]);
    assert_eq!(imported.records, 2, "alice's two records, imported at once");
    assert_eq!(
        phone.get("alice", "wallet", "seed").as_deref(),
        Some(&b"correct horse"[..])
    );
    assert_eq!(phone.get("bob", "vpn", "key"), None, "bob was not offered");
    let saw = host.await?;
    assert_eq!(
        saw.events,
        vec![format!("request {}", phone.peer()), "paired".into()]
    );
    assert_eq!(saw.shown, Some(shown), "both devices show the same string");
    assert_eq!(shown.to_string().len(), 7, "NNN NNN: {shown}");
    assert_eq!(desktop.rights(&phone, "alice"), RW);
    assert_eq!(phone.rights(&desktop, "alice"), RW);
    assert_eq!(desktop.rights(&phone, "bob"), Rights::default());

    // The grants make later syncs work both ways with no further setup.
    phone.put("alice", "wallet", "pin", b"4921");
    desktop.delete("alice", "mail", "password");
    phone
        .handle
        .sync(
            &desktop.addr(),
            Mode::Full {
                client: b"alice".to_vec(),
            },
            None,
        )
        .await?;
    assert_eq!(
        desktop.get("alice", "wallet", "pin").as_deref(),
        Some(&b"4921"[..])
    );
    assert_eq!(phone.get("alice", "mail", "password"), None);
    Ok(())
}

#[tokio::test]
async fn a_wrong_code_fails_burns_the_code_and_changes_nothing() -> anyhow::Result<()> {
    let (desktop, offer) = desktop_offering(Duration::from_secs(60)).await?;
    let right = offer.code.to_string();
    let nameplate = offer.code.nameplate();
    let wrong = if right.ends_with("0000") {
        format!("{nameplate}-0000-0001")
    } else {
        format!("{nameplate}-0000-0000")
    };
    let host = accept_first(offer);
    let phone = TestNode::start(2).await?;
    let err = join_error(&phone, &wrong, addr(&desktop)).await;
    assert!(
        matches!(err, Error::PairRefused(PairRefusal::WrongCode)),
        "{err}"
    );
    assert_eq!(
        host.await?.events,
        vec![format!("failed: {}", PairRefusal::WrongCode)]
    );
    nothing_granted(&desktop, &phone);
    // The right code no longer works either: one guess per code.
    let err = join_error(&phone, &right, addr(&desktop)).await;
    assert!(is_pairing_error(&err, "already used"), "{err}");
    assert_eq!(desktop.rights(&phone, "alice"), Rights::default());
    Ok(())
}

#[tokio::test]
async fn an_expired_code_fails() -> anyhow::Result<()> {
    let (desktop, mut offer) = desktop_offering(Duration::from_millis(300)).await?;
    let code = offer.code.to_string();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let phone = TestNode::start(2).await?;
    let err = join_error(&phone, &code, addr(&desktop)).await;
    assert!(is_pairing_error(&err, "expired"), "{err}");
    nothing_granted(&desktop, &phone);
    let told = tokio::time::timeout(WAIT, offer.next()).await?;
    assert!(
        matches!(
            told,
            Some(PairingEvent::Failed {
                reason: PairRefusal::Expired,
                ..
            })
        ),
        "{told:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_code_cannot_be_used_twice() -> anyhow::Result<()> {
    let (desktop, offer) = desktop_offering(Duration::from_secs(60)).await?;
    let code = offer.code.to_string();
    let host = accept_first(offer);
    let phone = TestNode::start(2).await?;
    join_and_accept(&phone, &code, addr(&desktop)).await?;
    host.await?;
    let laptop = TestNode::start(3).await?;
    let err = join_error(&laptop, &code, addr(&desktop)).await;
    assert!(is_pairing_error(&err, "already used"), "{err}");
    assert!(laptop.is_empty());
    assert_eq!(desktop.rights(&laptop, "alice"), Rights::default());
    Ok(())
}

/// A third device that read the QR payload's public part (peer id, addresses, nameplate) but
/// not the secret digits gets one guess, which fails; the legitimate device then needs a new
/// code, and nothing was granted to anyone.
#[tokio::test]
async fn a_device_with_the_qr_payload_but_not_the_code_cannot_pair() -> anyhow::Result<()> {
    let (desktop, offer) = desktop_offering(Duration::from_secs(60)).await?;
    let payload = offer.payload.clone();
    let secret_part = offer.code.to_string();
    let host = accept_first(offer);
    // The payload as seen, with the secret digits replaced by a guess.
    let nameplate = &secret_part[..2];
    let guess = if secret_part.ends_with("1234") {
        "5678"
    } else {
        "1234"
    };
    let forged = payload.replace(&secret_part, &format!("{nameplate}-0000-{guess}"));
    assert_ne!(forged, payload);
    let thief = TestNode::start(3).await?;
    let err = join_error(&thief, &forged, Vec::new()).await;
    assert!(
        matches!(err, Error::PairRefused(PairRefusal::WrongCode)),
        "{err}"
    );
    assert!(thief.is_empty());
    assert_eq!(desktop.rights(&thief, "alice"), Rights::default());
    assert_eq!(
        host.await?.events,
        vec![format!("failed: {}", PairRefusal::WrongCode)]
    );
    // The real payload, scanned after, is burned too.
    let phone = TestNode::start(2).await?;
    let err = join_error(&phone, &payload, Vec::new()).await;
    assert!(is_pairing_error(&err, "already used"), "{err}");
    Ok(())
}

/// The QR payload alone (no address given) is enough to pair.
#[tokio::test]
async fn the_qr_payload_pairs_without_an_address() -> anyhow::Result<()> {
    let (desktop, offer) = desktop_offering(Duration::from_secs(60)).await?;
    let payload = offer.payload.clone();
    assert!(payload.starts_with("redoubt-pair:1:"), "{payload}");
    let host = accept_first(offer);
    let phone = TestNode::start(2).await?;
    let (_, paired, _) = join_and_accept(&phone, &payload, Vec::new()).await?;
    assert_eq!(paired.peer, desktop.peer());
    host.await?;
    assert_eq!(phone.len(), 2);
    Ok(())
}

/// The host's user declines while the joiner's user accepted: the joiner learns it, and
/// neither side granted anything.
#[tokio::test]
async fn the_host_rejecting_changes_nothing_on_either_side() -> anyhow::Result<()> {
    let (desktop, offer) = desktop_offering(Duration::from_secs(60)).await?;
    let code = offer.code.to_string();
    let host = host_answers(offer, false);
    let phone = TestNode::start(2).await?;
    let request = phone.handle.pair_join(&code, addr(&desktop), WAIT).await?;
    let err = request.accept().await.unwrap_err();
    assert!(is_pairing_error(&err, "declined"), "{err}");
    let saw = host.await?;
    assert_eq!(
        saw.events,
        vec![
            format!("request {}", phone.peer()),
            format!("failed: {}", PairRefusal::Declined)
        ]
    );
    nothing_granted(&desktop, &phone);
    Ok(())
}

/// Before, the joiner's user was never asked: a device that proved the code was granted read
/// and write as soon as the host's user accepted. Now the joiner's user declining, even after
/// the host's user accepted, leaves both sides unchanged.
#[tokio::test]
async fn the_joiner_rejecting_changes_nothing_on_either_side() -> anyhow::Result<()> {
    let (desktop, mut offer) = desktop_offering(Duration::from_secs(60)).await?;
    let code = offer.code.to_string();
    let (accepted_tx, accepted_rx) = tokio::sync::oneshot::channel();
    let host = tokio::spawn(async move {
        let mut events = Vec::new();
        let mut accepted_tx = Some(accepted_tx);
        while let Some(event) = offer.next().await {
            match event {
                PairingEvent::Request(r) => {
                    events.push("request".to_string());
                    r.accept().await.unwrap();
                    if let Some(tx) = accepted_tx.take() {
                        let _ = tx.send(());
                    }
                }
                PairingEvent::Paired { .. } => {
                    events.push("paired".into());
                    break;
                }
                PairingEvent::Failed { reason, .. } => {
                    events.push(format!("failed: {reason}"));
                    break;
                }
            }
        }
        events
    });
    let phone = TestNode::start(2).await?;
    let request = phone.handle.pair_join(&code, addr(&desktop), WAIT).await?;
    accepted_rx.await?;
    request.reject().await?;
    assert_eq!(
        host.await?,
        vec![
            "request".to_string(),
            format!("failed: {}", PairRefusal::Declined)
        ]
    );
    nothing_granted(&desktop, &phone);
    Ok(())
}

/// The joiner's user declines while the host's user is still deciding (or drops the request
/// unanswered): the host's app hears of it at once, and the host's late acceptance grants
/// nothing.
#[tokio::test]
async fn the_joiner_declining_first_ends_the_host_request() -> anyhow::Result<()> {
    for drop_it in [false, true] {
        let (desktop, mut offer) = desktop_offering(Duration::from_secs(60)).await?;
        let code = offer.code.to_string();
        let phone = TestNode::start(2).await?;
        let request: PairJoinRequest = phone.handle.pair_join(&code, addr(&desktop), WAIT).await?;
        let Some(PairingEvent::Request(asked)) = tokio::time::timeout(WAIT, offer.next()).await?
        else {
            panic!("the host's app was not asked");
        };
        assert_eq!(asked.verification(), request.verification());
        if drop_it {
            drop(request);
        } else {
            request.reject().await?;
        }
        let next = tokio::time::timeout(WAIT, offer.next()).await?;
        assert!(
            matches!(
                next,
                Some(PairingEvent::Failed {
                    reason: PairRefusal::Declined,
                    ..
                })
            ),
            "{next:?}"
        );
        asked.accept().await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        nothing_granted(&desktop, &phone);
    }
    Ok(())
}

/// Sends `n` attempts with a nameplate the desktop does not offer, one after another, from
/// `scanner`; returns (answered "no pairing", dropped unanswered).
async fn probe(scanner: &TestNode, desktop: &TestNode, code: &str, n: usize) -> (usize, usize) {
    let (mut answered, mut dropped) = (0, 0);
    for _ in 0..n {
        let err = join_error(scanner, code, addr(desktop)).await;
        if is_pairing_error(&err, "no pairing with that code is open") {
            answered += 1;
        } else {
            dropped += 1;
        }
    }
    (answered, dropped)
}

/// At most this many answers over a burst that took `elapsed`: one bound per started
/// second-long window, plus one for a window already open when it began.
fn bound(per_window: u32, elapsed: Duration) -> usize {
    per_window as usize * (elapsed.as_secs() as usize + 2)
}

/// Before, a host answered every attempt at once, so a scanner could probe nameplates and codes
/// as fast as the network allowed. Now it answers refusals at a bounded rate, per peer and in
/// all, and drops the rest unanswered; the real nameplate still pairs in the same second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_nameplate_flood_gets_a_bounded_number_of_answers() -> anyhow::Result<()> {
    let (desktop, offer) = desktop_offering(Duration::from_secs(60)).await?;
    let code = offer.code.to_string();
    let other = if offer.code.nameplate() == 10 { 11 } else { 10 };
    let wrong = format!("{other}-1234-5678");

    // One scanner: the per-peer bound.
    let scanner = TestNode::start(3).await?;
    let n = 30;
    let start = Instant::now();
    let (answered, dropped) = probe(&scanner, &desktop, &wrong, n).await;
    let most = bound(PAIR_REFUSALS_PER_PEER_PER_SECOND, start.elapsed());
    assert_eq!(answered + dropped, n);
    assert!(answered >= 1, "the first attempts are answered");
    assert!(answered <= most, "{answered} answers, at most {most}");

    // Many scanners at once, each within its own bound: the overall bound.
    let mut scanners = Vec::new();
    for i in 0..16 {
        scanners.push(TestNode::start(10 + i).await?);
    }
    let per_scanner = PAIR_REFUSALS_PER_PEER_PER_SECOND as usize;
    let start = Instant::now();
    let counts = futures::future::join_all(
        scanners
            .iter()
            .map(|s| probe(s, &desktop, &wrong, per_scanner)),
    )
    .await;
    let most = bound(PAIR_REFUSALS_PER_SECOND, start.elapsed());
    let answered: usize = counts.iter().map(|(a, _)| a).sum();
    let dropped: usize = counts.iter().map(|(_, d)| d).sum();
    assert_eq!(answered + dropped, scanners.len() * per_scanner);
    assert!(answered <= most, "{answered} answers, at most {most}");

    // The flood burned nothing: the real code still pairs.
    let host = accept_first(offer);
    let phone = TestNode::start(2).await?;
    join_and_accept(&phone, &code, addr(&desktop)).await?;
    assert_eq!(
        host.await?.events.last().map(String::as_str),
        Some("paired")
    );
    assert_eq!(desktop.rights(&phone, "alice"), RW);
    Ok(())
}

/// Two nodes with discovery on find each other by mDNS: a paired peer syncs by peer id alone,
/// and a code typed without any address finds its host. Needs a network interface that
/// carries multicast (this machine's `eth0` does; so does any LAN).
#[tokio::test]
async fn discovery_finds_a_paired_peer_and_a_code_finds_its_host() -> anyhow::Result<()> {
    let desktop = TestNode::start_discoverable(1).await?;
    desktop.put("alice", "wallet", "seed", b"correct horse");
    let offer = desktop
        .handle
        .pair_offer(vec![b"alice".to_vec()], Duration::from_secs(60))
        .await?;
    let code = offer.code.to_string();
    let host = accept_first(offer);
    let phone = TestNode::start_discoverable(2).await?;
    // The code alone: the phone asks every device discovery finds; the nameplate picks one.
    let request = phone
        .handle
        .pair_join(&code, Vec::new(), Duration::from_secs(15))
        .await?;
    let (paired, _) = request.accept().await?;
    assert_eq!(paired.peer, desktop.peer());
    host.await?;
    // A later sync by peer id: discovery supplies the address.
    desktop.put("alice", "wallet", "pin", b"4921");
    let found = phone
        .handle
        .discover(desktop.peer(), Duration::from_secs(15))
        .await?;
    phone
        .handle
        .pull(
            &found,
            Mode::Full {
                client: b"alice".to_vec(),
            },
        )
        .await?;
    assert_eq!(
        phone.get("alice", "wallet", "pin").as_deref(),
        Some(&b"4921"[..])
    );
    // A node with discovery off finds nobody.
    let hermit = TestNode::start(3).await?;
    let err = hermit
        .handle
        .discover(desktop.peer(), Duration::from_millis(500))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotDiscovered { .. }), "{err}");
    Ok(())
}

// Version 3: the remotes on shared storage travel with the welcome.

/// A desktop whose vault holds alice's and bob's secrets and three remotes on folders under
/// `dir`: `nas` for alice (uploaded once), `bobs` for bob, and `every` for every client; with
/// an offer of alice open. Its config passes through `config`.
async fn desktop_with_remotes(
    dir: &std::path::Path,
    config: impl FnOnce(&mut redoubt_node::NodeConfig),
) -> anyhow::Result<(TestNode, PairOffer)> {
    use redoubt_vault::{AccessTable, Instance, Location, NodeId, SecretValue};
    let mut store = redoubt_store::Store::in_memory_from(
        Instance::new(NodeId::from_bytes([1; 16])),
        &AccessTable::default(),
    )?;
    store.put(
        b"alice",
        &Location::new("wallet", "seed")?,
        SecretValue::new(b"correct horse".to_vec()),
    )?;
    store.put(
        b"bob",
        &Location::new("vpn", "key")?,
        SecretValue::new(b"not offered".to_vec()),
    )?;
    let fast = redoubt_store::KdfParams::insecure_fast();
    for (name, clients) in [
        ("nas", Some(vec![b"alice".to_vec()])),
        ("bobs", Some(vec![b"bob".to_vec()])),
        ("every", None),
    ] {
        let url = folder(dir, name);
        let mut remote = Remote::add(
            &mut store,
            name,
            &url,
            Backend::from_url(&url)?,
            clients,
            b"recovery words",
            fast,
        )
        .await?;
        remote.sync(&mut store).await?;
    }
    let mut node_config = TestNode::loopback_config()?;
    config(&mut node_config);
    let desktop = TestNode::start_vault(node_config, redoubt_node::Vault::new(store)).await?;
    let offer = desktop
        .handle
        .pair_offer(vec![b"alice".to_vec()], Duration::from_secs(60))
        .await?;
    Ok((desktop, offer))
}

fn folder(dir: &std::path::Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

fn remote_names(node: &TestNode) -> Vec<String> {
    node.handle
        .read(|v| v.store().remote_names())
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn a_remote_whose_clients_are_all_shared_travels_and_syncs_others_do_not()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (desktop, offer) = desktop_with_remotes(dir.path(), |_| {}).await?;
    let code = offer.code.to_string();
    let host = accept_first(offer);
    let phone = TestNode::start(2).await?;
    let (_, paired, _) = join_and_accept(&phone, &code, addr(&desktop)).await?;
    assert_eq!(
        paired.remotes,
        vec![RemoteJoin {
            name: "nas".into(),
            url: folder(dir.path(), "nas"),
            outcome: RemoteOutcome::Joined,
        }]
    );
    assert_eq!(paired.remotes_refused, None);
    let saw = host.await?;
    let (sent, mut withheld) = saw.remotes.expect("paired");
    withheld.sort();
    assert_eq!(sent, vec!["nas".to_string()]);
    assert_eq!(withheld, vec!["bobs".to_string(), "every".to_string()]);
    assert_eq!(remote_names(&phone), vec!["nas".to_string()]);

    // The remote works on the phone at once: what the desktop uploads next arrives.
    desktop.put("alice", "wallet", "pin", b"4921");
    let mut on_desktop = desktop
        .handle
        .read(|v| Remote::open(v.store(), "nas", None))?;
    on_desktop.sync(&mut desktop.handle.clone()).await?;
    let mut on_phone = phone
        .handle
        .read(|v| Remote::open(v.store(), "nas", None))?;
    let report = on_phone.sync(&mut phone.handle.clone()).await?;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(
        phone.get("alice", "wallet", "pin").as_deref(),
        Some(&b"4921"[..])
    );
    assert_eq!(phone.get("bob", "vpn", "key"), None);
    Ok(())
}

/// Flips the last byte of every version 3 welcome: its sealed remotes no longer open.
struct TamperWelcome;

impl redoubt_node::ResponseHook for TamperWelcome {
    fn outgoing(
        &self,
        _: &redoubt_node::libp2p::PeerId,
        _: &mut Vec<u8>,
    ) -> redoubt_node::HookAction {
        redoubt_node::HookAction::Send
    }

    fn outgoing_pair(&self, _: &redoubt_node::libp2p::PeerId, frame: &mut Vec<u8>) {
        if frame.len() > 2
            && frame[..2] == [3, 0x82]
            && let Some(last) = frame.last_mut()
        {
            *last ^= 1;
        }
    }
}

#[tokio::test]
async fn tampered_remotes_are_refused_and_nothing_of_them_is_stored() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (desktop, offer) = desktop_with_remotes(dir.path(), |c| {
        c.hook = Some(std::sync::Arc::new(TamperWelcome));
    })
    .await?;
    let code = offer.code.to_string();
    let host = accept_first(offer);
    let phone = TestNode::start(2).await?;
    let (_, paired, _) = join_and_accept(&phone, &code, addr(&desktop)).await?;
    let why = paired.remotes_refused.expect("refused");
    assert!(why.contains("did not authenticate"), "{why}");
    assert!(paired.remotes.is_empty());
    assert!(remote_names(&phone).is_empty(), "nothing stored");
    assert_eq!(host.await?.remotes.map(|r| r.0), Some(vec!["nas".into()]));
    // The pairing itself holds (the host granted too).
    assert_eq!(phone.rights(&desktop, "alice"), RW);
    Ok(())
}

#[tokio::test]
async fn a_device_of_pairing_version_2_still_pairs_and_gets_no_remotes() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // An older host.
    let (desktop, offer) = desktop_with_remotes(dir.path(), |c| c.pair_v2_only = true).await?;
    let code = offer.code.to_string();
    let host = accept_first(offer);
    let phone = TestNode::start(2).await?;
    let (_, paired, imported) = join_and_accept(&phone, &code, addr(&desktop)).await?;
    assert_eq!(imported.records, 1);
    assert!(paired.remotes.is_empty() && paired.remotes_refused.is_none());
    assert!(remote_names(&phone).is_empty());
    assert_eq!(host.await?.remotes, Some((vec![], vec![])));
    assert_eq!(desktop.rights(&phone, "alice"), RW);

    // An older joiner.
    let dir = tempfile::tempdir()?;
    let (desktop, offer) = desktop_with_remotes(dir.path(), |_| {}).await?;
    let code = offer.code.to_string();
    let host = accept_first(offer);
    let mut config = TestNode::loopback_config()?;
    config.pair_v2_only = true;
    let old = TestNode::start_config(3, config).await?;
    let (_, paired, imported) = join_and_accept(&old, &code, addr(&desktop)).await?;
    assert_eq!(imported.records, 1);
    assert!(paired.remotes.is_empty());
    assert_eq!(host.await?.remotes, Some((vec![], vec![])));
    assert_eq!(old.rights(&desktop, "alice"), RW);
    Ok(())
}

#[tokio::test]
async fn a_shared_remote_whose_name_is_taken_for_another_url_is_refused() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (desktop, offer) = desktop_with_remotes(dir.path(), |_| {}).await?;
    let code = offer.code.to_string();
    let host = accept_first(offer);
    let phone = TestNode::start(2).await?;
    let mine = folder(dir.path(), "phones-own");
    let state = redoubt_remote::RemoteState::new(
        mine.clone(),
        None,
        redoubt_remote::StorageKey::from_bytes([9; 32]),
    );
    let bytes = state.encode()?;
    redoubt_remote::Access::write(&mut phone.handle.clone(), |s| s.set_remote("nas", &bytes))?;
    let (_, paired, _) = join_and_accept(&phone, &code, addr(&desktop)).await?;
    assert_eq!(paired.remotes.len(), 1);
    assert!(
        matches!(&paired.remotes[0].outcome, RemoteOutcome::Refused(why) if why.contains(&mine)),
        "{:?}",
        paired.remotes
    );
    host.await?;
    let kept = phone
        .handle
        .read(|v| v.store().remote("nas"))?
        .expect("its own remote");
    let kept = redoubt_remote::RemoteState::decode(&kept)?;
    assert_eq!(kept.url, mine, "left as it was");
    assert_eq!(kept.key.expose(), &[9; 32]);
    Ok(())
}
