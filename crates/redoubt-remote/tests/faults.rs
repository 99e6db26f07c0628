//! Faults, through the fault-injecting wrapper of the object store (`redoubt_remote::faults`):
//! a storage error and a timeout on every kind of request, an upload cut in the middle, a
//! segment deleted by someone with access to the storage, two devices racing a thousand
//! times, and a device killed (SIGKILL, in a child process running this binary's ignored helper)
//! between its segment upload and its head update. Each fault gives a named error, leaves the
//! vault as it was (or as the next sync expects), and the next sync succeeds and loses nothing.

#[path = "support/servers.rs"]
#[allow(dead_code)]
mod servers;
#[path = "support/vaults.rs"]
mod vaults;

use std::{
    io::{BufRead, Write},
    os::unix::process::ExitStatusExt,
    process::{Command, Stdio},
    sync::{Arc, mpsc},
    time::Duration,
};

use redoubt_remote::{
    Backend, Compaction, DeviceId, Error, Remote, RemoteState,
    crypto::{Kind, segment_hash},
    faults::{Counts, Fault, Gate, Request, wrap},
    format::{HEAD_OBJECT_LEN, Head, decode_head, head_name, parse_segment_name, segment_name},
};
use servers::{azure_backend, azurite, moto, s3_backend};
use vaults::{Vault, add, folder, folder_in, join, memory_dir, put, read, rounds, vault, vault_in};

/// Every kind of request the sync makes.
const REQUESTS: [Request; 7] = [
    Request::List,
    Request::GetHead,
    Request::GetSegment,
    Request::PutSegment,
    Request::PutHeadCreate,
    Request::PutHeadUpdate,
    Request::Delete,
];

/// What a failed sync must leave as it was: the vault's records, its journal, and the
/// remote's stored state.
fn local(v: &Vault) -> ([u8; 32], (u64, [u8; 32]), Vec<u8>) {
    (
        v.store.state_digest().unwrap(),
        v.store.journal_head(),
        v.store.remote("r").unwrap().unwrap().to_vec(),
    )
}

fn state(v: &Vault) -> RemoteState {
    RemoteState::decode(&v.store.remote("r").unwrap().unwrap()).unwrap()
}

/// The request kind and object an error names, checking it is the kind of error `fault`
/// gives (a storage error, or a timeout) and that its message names both.
fn named(err: &Error, fault: &Fault) -> (&'static str, String) {
    let (request, name) = match (err, fault) {
        (Error::Storage { request, name, .. }, Fault::Fail) => (*request, name.clone()),
        (Error::Timeout { request, name, .. }, Fault::Hang) => (*request, name.clone()),
        (other, _) => panic!("{fault:?} gave {other}"),
    };
    let text = err.to_string();
    assert!(
        text.contains(request) && text.contains(&name),
        "the message names the request and the object: {text}"
    );
    (request, name)
}

/// The vaults hold one state, with every `(record, value)` of client `alice` written: nothing
/// lost (`what`: the case, for the messages).
fn converged(vaults: &[&Vault], written: &[(&str, &str)], what: &str) {
    let digest = vaults[0].store.state_digest().unwrap();
    for v in vaults {
        assert_eq!(v.store.state_digest().unwrap(), digest, "{what}");
        for (record, value) in written {
            assert_eq!(
                read(v, b"alice", record).as_deref(),
                Some(value.as_bytes()),
                "{what}: {record} lost"
            );
        }
    }
}

/// The wrapped backend under a short per-request timeout.
fn faulty(b: Backend, timeout: Duration) -> (Backend, std::sync::Arc<Counts>) {
    let (b, counts) = wrap(b);
    (b.with_timeout(timeout), counts)
}

/// One fault on one kind of request of device `x`, with devices `a` and `b` beside it.
async fn request_fault(
    make: &impl Fn() -> Backend,
    request: Request,
    fault: Fault,
    timeout: Duration,
) {
    let (mut a, mut b, mut x) = (vault(), vault(), vault());
    let mut written = vec![("a0", "a")];
    put(&mut a, b"alice", "a0", "a");
    let mut ra = add(&mut a, make(), None).await;
    let mut rb = join(&mut b, make(), None).await;
    let (bx, counts) = faulty(make(), timeout);
    let mut rx = join(&mut x, bx, None).await;
    let x_id = rx.device();
    let b_id = rb.device().to_string();
    if request != Request::PutHeadCreate {
        // x has uploaded before (its head exists) and is current.
        put(&mut x, b"alice", "x0", "x");
        written.push(("x0", "x"));
        rounds(
            &mut [(&mut a, &mut ra), (&mut b, &mut rb), (&mut x, &mut rx)],
            2,
        )
        .await;
    } else {
        // x is current but has never uploaded: its next sync creates its head.
        rounds(&mut [(&mut a, &mut ra), (&mut b, &mut rb)], 1).await;
        assert!(rx.sync(&mut x.store).await.unwrap().uploaded.is_empty());
        put(&mut x, b"alice", "x0", "x");
        written.push(("x0", "x"));
    }
    match request {
        // x fetches b's change: the fault hits b's head or segment.
        Request::GetHead | Request::GetSegment => {
            put(&mut b, b"alice", "b1", "b");
            written.push(("b1", "b"));
            rb.sync(&mut b.store).await.unwrap();
        }
        // x's first sync: the fault hits the creation of its head.
        Request::PutHeadCreate => {}
        Request::Delete => {
            put(&mut x, b"alice", "x1", "x");
            written.push(("x1", "x"));
            rx.set_compaction(Compaction {
                every: 0,
                ratio: 0,
                grace: Duration::ZERO,
                pack_every: 64,
            });
        }
        // Both sides have something new; the LIST fails before either is touched.
        Request::List => {
            put(&mut b, b"alice", "b1", "b");
            rb.sync(&mut b.store).await.unwrap();
            put(&mut x, b"alice", "x1", "x");
            written.extend([("b1", "b"), ("x1", "x")]);
        }
        // Only x has something new (what it fetched would be merged, verified, before the
        // upload).
        _ => {
            put(&mut x, b"alice", "x1", "x");
            written.push(("x1", "x"));
        }
    }
    let before = local(&x);
    counts.inject(request, fault.clone());
    let result = if request == Request::Delete {
        rx.compact(&mut x.store).await
    } else {
        rx.sync(&mut x.store).await
    };
    assert!(counts.faults_taken(), "{request:?}: the fault was hit");
    let after = local(&x);
    match request {
        Request::GetHead | Request::GetSegment => {
            let report = result.unwrap();
            assert_eq!(report.failed.len(), 1, "{request:?}");
            let (device, err) = &report.failed[0];
            assert_eq!(device, &b_id, "the device is named");
            let (kind, name) = named(err, &fault);
            assert_eq!(kind, "get");
            if request == Request::GetHead {
                assert_eq!(name, format!("{b_id}.head"));
            } else {
                assert!(name.starts_with(&format!("{b_id}/")), "{name}");
            }
            assert_eq!(
                before, after,
                "{request:?}: nothing taken, nothing marked seen"
            );
        }
        _ => {
            let err = result.unwrap_err();
            let (kind, name) = named(&err, &fault);
            let head = head_name(&x_id);
            let expect: (&[&str], bool) = match request {
                Request::List => (&["list"], name == "/"),
                Request::PutSegment => (&["put-create"], name.starts_with(&format!("{x_id}/"))),
                Request::PutHeadCreate => (&["put-create"], name == head),
                Request::PutHeadUpdate => (&["put-update", "put-overwrite"], name == head),
                Request::Delete => (&["delete"], name.starts_with(&format!("{x_id}/"))),
                _ => unreachable!(),
            };
            assert!(
                expect.0.contains(&kind) && expect.1,
                "{request:?} named {kind} {name}"
            );
            assert_eq!(
                before.0, after.0,
                "{request:?}: the vault's records unchanged"
            );
            assert_eq!(before.1, after.1, "{request:?}: the journal unchanged");
            let st = state(&x);
            match request {
                Request::PutHeadCreate | Request::PutHeadUpdate => {
                    // The segment landed, the head did not: kept as pending, resolved next time.
                    assert!(st.pending.is_some());
                    assert_eq!(st.own, RemoteState::decode(&before.2).unwrap().own);
                }
                Request::Delete => {
                    assert!(st.base > 0 && st.deleted_below == 0, "not marked deleted");
                }
                _ => assert_eq!(before.2, after.2, "{request:?}: the remote state unchanged"),
            }
        }
    }
    // The next sync succeeds, and everything reaches everyone.
    let report = if request == Request::Delete {
        rx.compact(&mut x.store).await.unwrap()
    } else {
        rx.sync(&mut x.store).await.unwrap()
    };
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    if request == Request::Delete {
        assert!(report.segments_deleted > 0, "deleted on the retry");
        assert!(state(&x).deleted_below > 0);
    }
    assert!(state(&x).pending.is_none());
    rounds(
        &mut [(&mut a, &mut ra), (&mut b, &mut rb), (&mut x, &mut rx)],
        2,
    )
    .await;
    converged(&[&a, &b, &x], &written, &format!("{request:?}"));
}

/// Each kind of request in turn, each on fresh storage.
async fn folder_every_request(fault: Fault, timeout: Duration) {
    for request in REQUESTS {
        let (_d, make) = folder();
        request_fault(&make, request, fault.clone(), timeout).await;
    }
}

#[tokio::test]
async fn folder_storage_error_on_every_request() {
    folder_every_request(Fault::Fail, Duration::from_secs(30)).await;
}

#[tokio::test]
async fn folder_timeout_on_every_request() {
    folder_every_request(Fault::Hang, Duration::from_secs(2)).await;
}

/// A storage error on each kind of request in turn, each under a fresh prefix of one server
/// (`on` makes a backend on a prefix).
async fn server_error_on_every_request(on: impl Fn(&str) -> Backend) {
    for (i, request) in REQUESTS.into_iter().enumerate() {
        let prefix = format!("faults{i}");
        let make = || on(&prefix);
        request_fault(&make, request, Fault::Fail, Duration::from_secs(30)).await;
    }
}

#[tokio::test]
async fn s3_storage_error_on_every_request() {
    let server = moto();
    server_error_on_every_request(|p| s3_backend(&server, p)).await;
}

#[tokio::test]
async fn azure_storage_error_on_every_request() {
    let server = azurite();
    server_error_on_every_request(|p| azure_backend(&server, p)).await;
}

/// Every object under `device`'s prefix, by name.
async fn objects_of(make: &impl Fn() -> Backend, device: &str) -> Vec<String> {
    make()
        .list_all(&format!("{device}/"))
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.location.to_string())
        .collect()
}

/// An upload cut in the middle leaves half an object under a segment's name: no head names
/// it, its bytes do not match the hash in its name (a reader refuses it before opening), and
/// the retried upload carries the change.
async fn cut_upload(make: impl Fn() -> Backend) {
    let (mut a, mut b) = (vault(), vault());
    let (ba, counts) = wrap(make());
    let mut ra = add(&mut a, ba, None).await;
    let mut rb = join(&mut b, make(), None).await;
    put(&mut a, b"alice", "x", "1");
    ra.sync(&mut a.store).await.unwrap();
    rb.sync(&mut b.store).await.unwrap();
    let before = local(&a);
    put(&mut a, b"alice", "y", "2");
    counts.inject(Request::PutSegment, Fault::Cut);
    let err = ra.sync(&mut a.store).await.unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Storage {
                request: "put-create",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(state(&a).own, RemoteState::decode(&before.2).unwrap().own);
    assert!(
        state(&a).pending.is_none(),
        "no head will name the cut object"
    );
    let device = ra.device().to_string();
    let names = objects_of(&make, &device).await;
    assert_eq!(
        names.len(),
        2,
        "the first segment and the cut one: {names:?}"
    );
    let cut = names
        .iter()
        .find(|n| parse_segment_name(n).is_some_and(|(_, seq, _)| seq == 2))
        .unwrap();
    let (_, _, hash) = parse_segment_name(cut).unwrap();
    let (bytes, _) = make().get_capped(cut, 1 << 20).await.unwrap();
    assert_ne!(
        segment_hash(&bytes),
        hash,
        "a reader refuses it by its name"
    );
    // b sees no change (a's head did not move) and takes nothing of it.
    let report = rb.sync(&mut b.store).await.unwrap();
    assert_eq!((report.devices_changed, report.segments_fetched), (0, 0));
    assert_eq!(read(&b, b"alice", "y"), None);
    // The retry uploads the change again under another name; b gets it.
    let report = ra.sync(&mut a.store).await.unwrap();
    assert_eq!(report.uploaded.len(), 1);
    let report = rb.sync(&mut b.store).await.unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(read(&b, b"alice", "y").as_deref(), Some(&b"2"[..]));
}

#[tokio::test]
async fn folder_upload_cut_in_the_middle_is_never_read() {
    let (_d, make) = folder();
    cut_upload(make).await;
}

#[tokio::test]
async fn s3_upload_cut_in_the_middle_is_never_read() {
    let server = moto();
    cut_upload(|| s3_backend(&server, "cut")).await;
}

#[tokio::test]
async fn azure_upload_cut_in_the_middle_is_never_read() {
    let server = azurite();
    cut_upload(|| azure_backend(&server, "cut")).await;
}

/// A segment deleted by someone with access to the storage: the device is refused with the
/// missing object named, the other devices still sync, and the refusal stays (a hole in a
/// chain is never skipped).
#[tokio::test]
async fn folder_deleted_segment_is_refused_and_named() {
    let (_d, make) = folder();
    let (mut a, mut b, mut c) = (vault(), vault(), vault());
    let mut ra = add(&mut a, make(), None).await;
    let mut rb = join(&mut b, make(), None).await;
    let mut rc = join(&mut c, make(), None).await;
    put(&mut a, b"alice", "a1", "1");
    ra.sync(&mut a.store).await.unwrap();
    put(&mut a, b"alice", "a2", "2");
    ra.sync(&mut a.store).await.unwrap();
    put(&mut b, b"bob", "b1", "b");
    rb.sync(&mut b.store).await.unwrap();
    let device = ra.device().to_string();
    let first = objects_of(&make, &device)
        .await
        .into_iter()
        .find(|n| parse_segment_name(n).is_some_and(|(_, seq, _)| seq == 1))
        .unwrap();
    make().delete(&first).await.unwrap();
    for _ in 0..2 {
        let report = rc.sync(&mut c.store).await.unwrap();
        assert_eq!(report.failed.len(), 1, "{:?}", report.failed);
        let (who, err) = &report.failed[0];
        assert_eq!(who, &device);
        assert!(
            matches!(err, Error::SegmentMissing { name, .. } if *name == first),
            "{err}"
        );
        assert!(err.to_string().contains(&first), "named: {err}");
        assert_eq!(
            read(&c, b"bob", "b1").as_deref(),
            Some(&b"b"[..]),
            "b synced"
        );
        assert_eq!(
            read(&c, b"alice", "a2"),
            None,
            "nothing of a's broken chain"
        );
    }
}

/// Two devices race a thousand times on a folder (each writes, then both sync at once):
/// no change is lost, and both converge.
#[tokio::test]
async fn folder_two_devices_racing_a_thousand_times_lose_nothing() {
    const ROUNDS: usize = 1000;
    // In memory where possible: 1000 rounds make some 12 000 vault commits.
    let (_d, make) = folder_in(memory_dir());
    let (mut a, mut b) = (vault_in(memory_dir()), vault_in(memory_dir()));
    let mut ra = add(&mut a, make(), None).await;
    let mut rb = join(&mut b, make(), None).await;
    for i in 0..ROUNDS {
        put(&mut a, b"alice", &format!("a{i}"), "a");
        // Both write one shared record too: a conflict every round.
        put(&mut a, b"alice", "shared", &format!("a{i}"));
        put(&mut b, b"alice", &format!("b{i}"), "b");
        put(&mut b, b"alice", "shared", &format!("b{i}"));
        let (x, y) = tokio::join!(ra.sync(&mut a.store), rb.sync(&mut b.store));
        let (x, y) = (x.unwrap(), y.unwrap());
        assert!(x.failed.is_empty() && y.failed.is_empty(), "round {i}");
    }
    rounds(&mut [(&mut a, &mut ra), (&mut b, &mut rb)], 2).await;
    for i in 0..ROUNDS {
        for v in [&a, &b] {
            assert_eq!(
                read(v, b"alice", &format!("a{i}")).as_deref(),
                Some(&b"a"[..])
            );
            assert_eq!(
                read(v, b"alice", &format!("b{i}")).as_deref(),
                Some(&b"b"[..])
            );
        }
    }
    assert_eq!(
        a.store.state_digest().unwrap(),
        b.store.state_digest().unwrap()
    );
    let last = read(&a, b"alice", "shared").unwrap();
    assert!(
        last == format!("a{}", ROUNDS - 1).as_bytes()
            || last == format!("b{}", ROUNDS - 1).as_bytes()
    );
    // The default compaction ran along the way (past the first upload's base at 1).
    assert!(ra.state().base > 1 && rb.state().base > 1);
}

// ---------------------------------------------------------------------------------------------
// A device killed between its segment upload and its head update.

/// The vault file the killed child syncs.
const KILL_VAULT: &str = "REDOUBT_TEST_KILL_VAULT";
/// The storage it syncs with ([`servers::backend_at`]).
const KILL_AT: &str = "REDOUBT_TEST_KILL_AT";
/// `create` or `update`: which head write it is killed in.
const KILL_IN: &str = "REDOUBT_TEST_KILL_IN";
/// The line the child prints once its head write is under way.
const REACHED: &str = "REACHED the head write";

fn head_write(name: &str) -> Request {
    match name {
        "create" => Request::PutHeadCreate,
        "update" => Request::PutHeadUpdate,
        other => panic!("no head write {other:?}"),
    }
}

/// Syncs the vault [`KILL_VAULT`] names with the storage [`KILL_AT`] names, its head write
/// paused for good; prints [`REACHED`] once the segment is on the storage and the head write
/// was sent. Run by [`kill_in_the_head_write`] in a child process, which it then kills
/// (ignored otherwise).
#[tokio::test]
#[ignore = "a helper that another test runs in a child process and kills"]
async fn helper_sync_until_killed() {
    let (Some(path), Ok(at), Ok(write)) = (
        std::env::var_os(KILL_VAULT),
        std::env::var(KILL_AT),
        std::env::var(KILL_IN),
    ) else {
        return;
    };
    let mut store = vaults::open_file(std::path::Path::new(&path));
    let (backend, counts) = wrap(servers::backend_at(&at));
    let gate = Arc::new(Gate::default());
    counts.inject(head_write(&write), Fault::Pause(gate.clone()));
    let mut remote = Remote::open(&store, "r", Some(backend)).unwrap();
    let sync = remote.sync(&mut store);
    tokio::pin!(sync);
    tokio::select! {
        result = &mut sync => panic!("the sync ended before its head write: {result:?}"),
        () = gate.reached() => {}
    }
    println!("{REACHED}");
    std::io::stdout().flush().unwrap();
    // The gate is never released: the sync waits in its head write until it is killed.
    let result = sync.await;
    panic!("the paused sync went on: {result:?}");
}

/// Runs [`helper_sync_until_killed`] on the vault at `vault` in a child process, and SIGKILLs
/// it once it is in its `write` head write.
fn kill_in_the_head_write(vault: &std::path::Path, at: &str, write: &str) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "helper_sync_until_killed",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(KILL_VAULT, vault)
        .env(KILL_AT, at)
        .env(KILL_IN, write)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            match line {
                // The harness prints the test's name before it, on the same line.
                Ok(line) if line.ends_with(REACHED) => {
                    let _ = tx.send(());
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    // A deadline for a child that never gets there (it failed), not a measure of speed.
    let reached = rx.recv_timeout(Duration::from_secs(120));
    child.kill().unwrap();
    let status = child.wait().unwrap();
    if reached.is_err() {
        let err = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
        panic!("the child never reached its head write ({status}): {err}");
    }
    assert_eq!(status.signal(), Some(9), "killed by SIGKILL: {status}");
}

/// `device`'s head as the storage holds it, opened with `key`; `None` if it has none.
async fn stored_head(
    make: &impl Fn() -> Backend,
    st: &RemoteState,
    device: DeviceId,
) -> Option<Head> {
    match make()
        .get_capped(&head_name(&device), HEAD_OBJECT_LEN)
        .await
    {
        Ok((bytes, _)) => {
            let plain = st.key.open(Kind::Head, &device, 0, &bytes).unwrap();
            Some(decode_head(&plain).unwrap())
        }
        Err(e) if e.is_not_found() => None,
        Err(e) => panic!("{e}"),
    }
}

/// A device killed (SIGKILL, in a child process) after its segment landed, in the head write
/// `write` (`create`: its first; `update`: a later one). Its vault keeps its records, its
/// journal and its remote state as the next sync expects (head and mark as before, a pending
/// head naming the segment that landed); the storage holds that segment, named by no head;
/// other devices never read it; the device's next sync uploads the change again under a new
/// name, everyone converges, and a compaction deletes the orphan with the rest.
async fn killed_between_segment_and_head(at: &str, write: &str) {
    let make = || servers::backend_at(at);
    let mut written = vec![("a0", "a"), ("a1", "a"), ("x1", "x"), ("x2", "x")];
    let mut a = vault();
    put(&mut a, b"alice", "a0", "a");
    let mut ra = add(&mut a, make(), None).await;
    ra.sync(&mut a.store).await.unwrap();
    let mut x = vault();
    let mut rx = join(&mut x, make(), None).await;
    if head_write(write) == Request::PutHeadUpdate {
        put(&mut x, b"alice", "x0", "x");
        written.push(("x0", "x"));
        rx.sync(&mut x.store).await.unwrap();
    } else {
        rx.sync(&mut x.store).await.unwrap();
        assert_eq!(state(&x).own.seq, 0, "x has not uploaded yet");
    }
    let device = rx.device();
    // The killed sync fetches a1, merges it, and uploads x1.
    put(&mut x, b"alice", "x1", "x");
    put(&mut a, b"alice", "a1", "a");
    ra.sync(&mut a.store).await.unwrap();
    let before = state(&x);
    let journal = x.store.journal_head().0;
    drop(rx);
    let dir = vaults::close(x);
    kill_in_the_head_write(&vaults::file_in(dir.path()), at, write);

    // The vault the child used opens, with what it held and what the sync merged before its
    // upload; its remote state is as before but for the pending head.
    let mut x = vaults::reopen(dir);
    assert_eq!(read(&x, b"alice", "x1").as_deref(), Some(&b"x"[..]));
    assert_eq!(
        read(&x, b"alice", "a1").as_deref(),
        Some(&b"a"[..]),
        "merged"
    );
    assert!(x.store.journal_head().0 > journal, "the merge committed");
    let after = state(&x);
    assert_eq!(after.own, before.own, "the head it wrote last");
    assert_eq!(after.uploaded, before.uploaded, "x1 is not marked uploaded");
    assert_eq!(after.head_etag, before.head_etag);
    let (pending, _) = after
        .pending
        .expect("the pending head, stored before the head write");
    assert_eq!(pending.seq, before.own.seq + 1);
    // The storage holds the segment; the head does not name it.
    let orphan = segment_name(&device, pending.seq, &pending.latest);
    assert!(
        objects_of(&make, &device.to_string())
            .await
            .contains(&orphan)
    );
    let head = stored_head(&make, &after, device).await;
    assert_eq!(
        head,
        (before.own.seq > 0).then_some(before.own),
        "head not moved"
    );

    // Other devices never read the orphan: a sees no change, a new device takes nothing of it.
    let report = ra.sync(&mut a.store).await.unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!((report.devices_changed, report.segments_fetched), (0, 0));
    assert_eq!(read(&a, b"alice", "x1"), None);
    let mut d = vault();
    let mut rd = join(&mut d, make(), None).await;
    let report = rd.sync(&mut d.store).await.unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(read(&d, b"alice", "x1"), None);

    // The next sync from the same vault uploads x1 again, at the same seq under another name.
    let mut rx = Remote::open(&x.store, "r", Some(make())).unwrap();
    let report = rx.sync(&mut x.store).await.unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.uploaded.len(), 1, "{:?}", report.uploaded);
    assert_eq!(report.uploaded[0].seq, pending.seq);
    let now = state(&x);
    assert!(now.pending.is_none());
    assert_eq!(now.own.seq, pending.seq);
    assert_ne!(
        now.own.latest, pending.latest,
        "a new object, not the orphan"
    );
    let names = objects_of(&make, &device.to_string()).await;
    assert!(
        names.contains(&orphan)
            && names.contains(&segment_name(&device, now.own.seq, &now.own.latest))
    );
    // A reader follows the head: one segment, the new one.
    let report = ra.sync(&mut a.store).await.unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.segments_fetched, 1);
    assert_eq!(read(&a, b"alice", "x1").as_deref(), Some(&b"x"[..]));

    // A compaction deletes the orphan with the other segments below its base.
    put(&mut x, b"alice", "x2", "x");
    rx.set_compaction(Compaction {
        every: 0,
        ratio: 0,
        grace: Duration::ZERO,
        pack_every: 64,
    });
    rx.compact(&mut x.store).await.unwrap();
    let own = state(&x).own;
    assert_eq!(
        objects_of(&make, &device.to_string()).await,
        vec![segment_name(&device, own.seq, &own.latest)],
        "only the base is left"
    );

    rounds(
        &mut [(&mut a, &mut ra), (&mut x, &mut rx), (&mut d, &mut rd)],
        2,
    )
    .await;
    converged(
        &[&a, &x, &d],
        &written,
        &format!("killed in its head {write}"),
    );
}

/// The head writes a device is killed in: its first, and a later one.
const HEAD_WRITES: [&str; 2] = ["create", "update"];

#[tokio::test]
async fn folder_device_killed_in_its_head_write_loses_nothing() {
    let (dir, _) = folder();
    for write in HEAD_WRITES {
        let url = format!("file://{}", dir.path().join(write).display());
        killed_between_segment_and_head(&url, write).await;
    }
}

#[tokio::test]
async fn s3_device_killed_in_its_head_write_loses_nothing() {
    let server = moto();
    for write in HEAD_WRITES {
        killed_between_segment_and_head(&format!("s3 {} kill-{write}", server.port), write).await;
    }
}

#[tokio::test]
async fn azure_device_killed_in_its_head_write_loses_nothing() {
    let server = azurite();
    for write in HEAD_WRITES {
        let at = format!("az {} kill-{write}", server.port);
        killed_between_segment_and_head(&at, write).await;
    }
}
