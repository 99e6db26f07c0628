"""The generated Python bindings of redoubt-ffi, driven as an app would drive them.

Run by `scripts/bindings.sh --test` (which generates the module and puts it on PYTHONPATH).
Two vaults on files pair by code on loopback, sync a write and a delete both ways, and the
change listener names each changed location; a wrong password and a wrong code fail with
their own error variants.
"""

import os
import queue
import shutil
import tempfile
import unittest

import redoubt_ffi as r

LOOPBACK = ["/ip4/127.0.0.1/tcp/0"]
FAST = r.KdfStrength.INSECURE_FAST_FOR_TESTS
# How long to wait for a change the listener is owed; it arrives long before (never a timing
# assertion: only an upper bound on waiting for an event that must come).
WAIT = 30


class Recorder(r.ChangeListener):
    """A change listener that queues what it hears."""

    def __init__(self):
        self.changes = queue.Queue()

    def on_change(self, change):
        self.changes.put(change)

    def on_lagged(self, missed):
        self.changes.put(("lagged", missed))

    def next(self):
        return self.changes.get(timeout=WAIT)

    def until(self, vault, record, kind):
        """The changes heard up to and including the first of (vault, record, kind)."""
        seen = []
        while True:
            c = self.next()
            seen.append(c)
            if not isinstance(c, tuple) and (c.vault, c.record, c.kind) == (vault, record, kind):
                return seen


class Yes(r.PairingListener):
    """Both users say yes; the host's outcome is queued."""

    def __init__(self):
        self.asked = []
        self.outcome = queue.Queue()

    def confirm(self, peer_id, verification):
        self.asked.append((peer_id, verification))
        return True

    def on_paired(self, peer_id, clients):
        self.outcome.put(("paired", peer_id, clients))

    def on_failed(self, reason):
        self.outcome.put(("failed", reason))


class Bindings(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="redoubt-ffi-")
        self.vaults = []

    def tearDown(self):
        for v in self.vaults:
            v.set_listener(None)
            v.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def vault(self, name, password=b"correct horse"):
        v = r.Vault.create(os.path.join(self.dir, name), password, FAST)
        self.vaults.append(v)
        return v

    def pair(self, desktop, phone):
        """Pairs phone with desktop by the code alone, at the desktop's loopback address."""
        desktop_addrs = desktop.start(LOOPBACK, False)
        phone.start(LOOPBACK, False)
        host = Yes()
        offer = desktop.pair_offer(["alice"], 0, host)
        self.assertRegex(offer.code, r"^\d\d-\d{4}-\d{4}$")
        self.assertTrue(offer.qr_payload.startswith("redoubt-pair:1:"))
        joiner = Yes()
        paired = phone.pair_join(offer.code, desktop_addrs, joiner)
        self.assertEqual(paired.peer_id, desktop.peer_id())
        self.assertEqual(paired.clients, ["alice"])
        self.assertEqual(host.outcome.get(timeout=WAIT), ("paired", phone.peer_id(), ["alice"]))
        # Both users were shown the same verification string.
        self.assertEqual(host.asked[0][1], joiner.asked[0][1])
        return paired

    def test_pair_by_code_then_sync_writes_and_deletes_both_ways(self):
        desktop, phone = self.vault("desktop.redb"), self.vault("phone.redb")
        desktop.put("alice", "wallet", "seed", b"s3cret")
        heard = Recorder()
        phone.set_listener(heard)

        paired = self.pair(desktop, phone)
        self.assertEqual(paired.imported.added, 1)
        self.assertEqual(phone.get("alice", "wallet", "seed"), b"s3cret")
        change = heard.until("wallet", "seed", r.ChangeKind.WRITTEN)[-1]
        self.assertEqual(change.client, "alice")
        self.assertEqual(change.cause, r.ChangeCause.MERGED)
        self.assertEqual(change.source, "peer:" + desktop.peer_id())

        # A write on the phone reaches the desktop (the phone syncs by the desktop's peer id,
        # from the address the pairing recorded)...
        desktop_heard = Recorder()
        desktop.set_listener(desktop_heard)
        phone.put("alice", "api", "token", b"tok_123")
        local = heard.next()
        self.assertEqual((local.vault, local.record, local.cause), ("api", "token", r.ChangeCause.LOCAL))
        out = phone.sync(desktop.peer_id(), "alice")
        self.assertEqual(out.pushed.added, 1)
        self.assertEqual(desktop.get("alice", "api", "token"), b"tok_123")
        got = desktop_heard.until("api", "token", r.ChangeKind.WRITTEN)[-1]
        self.assertEqual(got.source, "peer:" + phone.peer_id())

        # ...a delete on the desktop reaches the phone, the desktop dialing the phone...
        desktop.remove("alice", "wallet", "seed")
        phone_addr = phone.status().listen_addrs[0]
        out = desktop.sync(phone_addr, "alice")
        self.assertEqual(out.pushed.deleted, 1)
        self.assertIsNone(phone.get("alice", "wallet", "seed"))
        gone = heard.until("wallet", "seed", r.ChangeKind.DELETED)[-1]
        self.assertEqual((gone.client, gone.source), ("alice", "peer:" + desktop.peer_id()))

        # ...and a delete on the phone reaches the desktop.
        phone.remove("alice", "api", "token")
        out = phone.sync(desktop.peer_id(), "alice")
        self.assertEqual(out.pushed.deleted, 1)
        self.assertIsNone(desktop.get("alice", "api", "token"))
        desktop_heard.until("api", "token", r.ChangeKind.DELETED)
        self.assertEqual(desktop.list("alice"), [])
        self.assertEqual(phone.list("alice"), [])

        # The deleted seed comes back from its history on the phone, and travels.
        versions = phone.history("alice", "wallet", "seed")
        self.assertTrue(versions[0].current and versions[0].deleted)
        older = [v for v in versions if not v.deleted][0]
        phone.restore("alice", "wallet", "seed", older.hash)
        self.assertEqual(phone.get("alice", "wallet", "seed"), b"s3cret")
        phone.sync(desktop.peer_id(), "alice")
        self.assertEqual(desktop.get("alice", "wallet", "seed"), b"s3cret")
        self.assertEqual([(e.vault, e.record) for e in desktop.list("alice")], [("wallet", "seed")])

    def test_a_wrong_password_is_its_own_error_and_the_right_one_opens(self):
        path = os.path.join(self.dir, "v.redb")
        v = r.Vault.create(path, b"right", FAST)
        v.put("alice", "wallet", "seed", b"s3cret")
        peer = v.peer_id()
        del v
        with self.assertRaises(r.RedoubtError.WrongPassword) as e:
            r.Vault.open(path, b"wrong")
        self.assertIn("wrong password", str(e.exception))
        again = r.Vault.open(path, b"right")
        self.vaults.append(again)
        self.assertEqual(again.peer_id(), peer)
        self.assertEqual(again.get("alice", "wallet", "seed"), b"s3cret")

    def test_a_wrong_code_is_its_own_error_and_grants_nothing(self):
        desktop, phone = self.vault("desktop.redb"), self.vault("phone.redb")
        addrs = desktop.start(LOOPBACK, False)
        phone.start(LOOPBACK, False)
        host = Yes()
        offer = desktop.pair_offer(["alice"], 0, host)
        # Same nameplate (the first two digits find the offer), wrong secret digits.
        nameplate, first, second = offer.code.split("-")
        wrong = "-".join([nameplate, first, "%04d" % ((int(second) + 1) % 10000)])
        with self.assertRaises(r.RedoubtError.WrongPairingCode):
            phone.pair_join(wrong, addrs, Yes())
        self.assertEqual(host.outcome.get(timeout=WAIT)[0], "failed")
        self.assertEqual(desktop.grants(), [])
        self.assertEqual(phone.grants(), [])

    def test_grants_take_a_valid_peer_id_and_sync_needs_them(self):
        a, b = self.vault("a.redb"), self.vault("b.redb")
        with self.assertRaises(r.RedoubtError.InvalidInput):
            a.allow("not-a-peer-id", "alice", True, True)
        a.allow(b.peer_id(), "alice", True, True)
        self.assertEqual(a.grants(), [r.Grant(peer_id=b.peer_id(), client="alice", read=True, write=True)])
        a_addr = a.start(LOOPBACK, False)[0]
        b.start(LOOPBACK, False)
        a.put("alice", "wallet", "seed", b"x")
        # b has not let a in: nothing moves, and the error says which grant is missing.
        with self.assertRaises(r.RedoubtError.NotGranted):
            b.sync(a_addr, "alice")
        b.allow(a.peer_id(), "alice", True, True)
        self.assertEqual(b.sync(a_addr, "alice").pulled.added, 1)
        self.assertEqual(a.deny(b.peer_id(), None), 1)
        with self.assertRaises(r.RedoubtError.NotGranted):
            b.sync(a_addr, "alice")

    def test_calls_that_need_the_node_say_so_and_a_missing_remote_is_not_found(self):
        v = self.vault("v.redb")
        with self.assertRaises(r.RedoubtError.NotRunning):
            v.sync("/ip4/127.0.0.1/tcp/1", "alice")
        with self.assertRaises(r.RedoubtError.NotFound):
            v.remote_sync("backup")
        with self.assertRaises(r.RedoubtError.NotFound):
            v.remove("alice", "wallet", "nothing")
        s = v.status()
        self.assertFalse(s.running)
        self.assertEqual(s.peer_id, v.peer_id())

    def test_a_password_change_keeps_the_records_and_retires_the_old_password(self):
        path = os.path.join(self.dir, "v.redb")
        v = r.Vault.create(path, b"old", FAST)
        v.put("alice", "wallet", "seed", b"s3cret")
        with self.assertRaises(r.RedoubtError.WrongPassword):
            v.change_password(b"not it", b"new", FAST)
        v.change_password(b"old", b"new", FAST)
        del v
        with self.assertRaises(r.RedoubtError.WrongPassword):
            r.Vault.open(path, b"old")
        again = r.Vault.open(path, b"new")
        self.vaults.append(again)
        self.assertEqual(again.get("alice", "wallet", "seed"), b"s3cret")

    def test_a_folder_remote_carries_a_write_and_a_delete_to_a_device_that_joined_it(self):
        desktop, phone = self.vault("desktop.redb"), self.vault("phone.redb")
        url = "file://" + os.path.join(self.dir, "nas")
        os.mkdir(os.path.join(self.dir, "nas"))
        desktop.put("alice", "wallet", "seed", b"s3cret")
        added = desktop.remote_add("nas", url, b"recovery words", FAST, [])
        self.assertEqual(added.failed, [])
        self.assertEqual(desktop.remotes(), ["nas"])
        # A wrong recovery passphrase is refused, and sets nothing up.
        with self.assertRaises(r.RedoubtError.WrongPassword):
            phone.remote_join("nas", url, b"wrong words", [])
        self.assertEqual(phone.remotes(), [])
        heard = Recorder()
        phone.set_listener(heard)
        joined = phone.remote_join("nas", url, b"recovery words", [])
        self.assertEqual(joined.merged.added, 1)
        self.assertEqual(phone.get("alice", "wallet", "seed"), b"s3cret")
        change = heard.until("wallet", "seed", r.ChangeKind.WRITTEN)[-1]
        self.assertEqual((change.cause, change.source), (r.ChangeCause.MERGED, "remote:nas"))
        # A delete travels back the same way, with the phone's node running meanwhile.
        phone.start(LOOPBACK, False)
        phone.remove("alice", "wallet", "seed")
        self.assertEqual(phone.remote_sync("nas").failed, [])
        self.assertEqual(desktop.remote_sync("nas").merged.deleted, 1)
        self.assertIsNone(desktop.get("alice", "wallet", "seed"))

    def test_a_node_that_cannot_listen_keeps_the_vault(self):
        v = self.vault("v.redb")
        v.put("alice", "wallet", "seed", b"s3cret")
        # 192.0.2.1 (TEST-NET-1) is no address of this machine: listening there fails.
        with self.assertRaises(r.RedoubtError):
            v.start(["/ip4/192.0.2.1/tcp/0"], False)
        self.assertFalse(v.status().running)
        self.assertEqual(v.get("alice", "wallet", "seed"), b"s3cret")
        v.put("alice", "api", "token", b"tok")
        self.assertTrue(v.start(LOOPBACK, False))
        self.assertTrue(v.status().running)


if __name__ == "__main__":
    unittest.main()
