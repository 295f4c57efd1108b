#!/usr/bin/env python3
"""End-to-end: lab mode (lab.role inner / outer) catches devices that rewrite SIP.

Emulated broken ALGs, on loopback (AlgRelay below stands for the router):

    digest_uac ─▶ sipwitness inner ─▶ AlgRelay ─▶ sipwitness outer ─▶ Kamailio
     (phone)      seals what it sends  rewrites    checks, strips       (kam.test,
                  checks what returns  one field   seals what returns   checks digests)

Each test makes the relay rewrite one thing the way real ALGs do (the digest
uri=, the quoting of the Authorization, the realm of the WWW-Authenticate on
the way back, or strip the seal) and checks that the sipwitness on the far side
names the exact field with what was sent and what arrived: the verdict is
alg_rewrite (certain) rather than the wrong password the rewrite looks like,
and the log carries the per-path ALG report. With a relay that changes
nothing, nothing is reported and the flow is ok_after_challenge. Phones and
Kamailio never see a seal (Kamailio's log of every request says so).

The real ALG (the kernel's nf_nat_sip in a NAT router) is tested in
KernelAlgLab below, in network namespaces; it is skipped with the reason when
namespaces or nftables are not available.

Run:  SIPWITNESS_BIN=build/sipwitness DIGEST_UAC_BIN=build/digest_uac \\
          python3 tests/e2e/test_alg_lab.py -v
"""

from __future__ import annotations

import json
import re
import select
import socket
import sys
import threading
import unittest
from pathlib import Path
from typing import Callable

sys.dont_write_bytecode = True  # keep the source tree clean

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "kamailio"))

import harness  # noqa: E402
import test_verdicts as tv  # noqa: E402  (Kamailio + digest_uac flows)

LAB_KEY = "e2e lab key, shared by inner and outer"
Rewrite = Callable[[bytes], bytes]


class AlgRelay:
    """A UDP relay standing for a router with a broken SIP ALG: what the inner
    side sends goes through `there`, what comes back through `back`."""

    def __init__(self, server: tuple[str, int], there: Rewrite | None = None, back: Rewrite | None = None):
        self.server, self.there, self.back = server, there, back
        self.inside = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.inside.bind((harness.HOST, harness.free_port("udp")))
        self.outside = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.outside.bind((harness.HOST, 0))
        self.port = self.inside.getsockname()[1]
        self.client: tuple[str, int] | None = None
        self.seen_there: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._relay, daemon=True)
        self._thread.start()

    def _relay(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.inside, self.outside], [], [], 0.1)
            for sock in ready:
                data, source = sock.recvfrom(65535)
                if sock is self.inside:
                    self.client = source
                    self.seen_there.append(data)
                    self.outside.sendto(self.there(data) if self.there else data, self.server)
                elif self.client:
                    self.inside.sendto(self.back(data) if self.back else data, self.client)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.inside.close()
        self.outside.close()


def replace_in_header(name: bytes, old: bytes, new: bytes) -> Rewrite:
    """Replaces old with new inside the header lines called name only."""
    def rewrite(data: bytes) -> bytes:
        head, sep, body = data.partition(b"\r\n\r\n")
        lines = [line.replace(old, new) if line.lower().startswith(name.lower() + b":") else line
                 for line in head.split(b"\r\n")]
        return b"\r\n".join(lines) + sep + body
    return rewrite


def strip_seal(data: bytes) -> bytes:
    return re.sub(rb"X-Sipwitness-Seal:[^\r]*\r\n", b"", data)


class LoopbackAlgLab(tv._Base):
    """inner and outer sipwitness with an emulated ALG between them."""

    def setUp(self):
        super().setUp()
        self.key_path = self.tmp / "lab.key"
        self.key_path.write_text(LAB_KEY + "\n")
        self.inner_verdicts = self.tmp / "inner.jsonl"
        self.outer_verdicts = self.tmp / "outer.jsonl"

    def lab_config(self, role: str, verdicts: Path) -> str:
        return (f"lab: {{ role: {role}, key_file: \"{self.key_path}\" }}\n"
                f"diag: {{ verdict_log: \"{verdicts}\", flow_timeout: {tv.FLOW_TIMEOUT_S}s }}\n")

    def run_lab(self, there: Rewrite | None = None, back: Rewrite | None = None, expect_exit: int = 0,
                password: str = tv.PASSWORD):
        """One REGISTER flow through inner, relay, outer to Kamailio; returns the
        uac run, the logs and verdicts of both sides, and what the relay carried."""
        k = self.start_kamailio()
        outer = self.sipwitness(upstream_uri=k.uri, listen=("udp",), workdir=str(self.tmp / "outer"),
                                extra_config=self.lab_config("outer", self.outer_verdicts))
        with outer:
            relay = AlgRelay((harness.HOST, outer.udp_port), there, back)
            self.addCleanup(relay.close)
            inner = self.sipwitness(upstream_uri=f"sip:{harness.HOST}:{relay.port};transport=udp",
                                    listen=("udp",), workdir=str(self.tmp / "inner"),
                                    extra_config=self.lab_config("inner", self.inner_verdicts))
            with inner:
                self.sw = inner
                u = self.uac(inner.udp_port, password=password)
                self.assertEqual(u.returncode, expect_exit, u.describe() + self.context())
                self.verdict_path = self.outer_verdicts
                outer_rec, _ = self.wait_verdict(u.call_id)
                self.verdict_path = self.inner_verdicts
                inner_rec, _ = self.wait_verdict(u.call_id)
        return u, inner, outer, inner_rec, outer_rec, relay

    def assertNoSealOutside(self, u: tv.Uac) -> None:
        """Neither the phone nor Kamailio ever saw a seal."""
        self.assertNotIn("X-Sipwitness-Seal", u.stdout + u.stderr)
        requests = re.findall(r"E2E-REQ .*", self.kam.log())
        self.assertTrue(requests, "Kamailio logged no request")
        for line in requests:  # Kamailio logs the seal header of each request it got: none
            self.assertTrue(line.endswith("seal=<null>"), line)

    def test_nothing_rewritten_nothing_reported(self):
        u, inner, outer, inner_rec, outer_rec, relay = self.run_lab()
        self.assertEqual(outer_rec["verdict"], "ok_after_challenge", json.dumps(outer_rec))
        self.assertEqual(inner_rec["verdict"], "ok_after_challenge", json.dumps(inner_rec))
        self.assertTrue(all(b"X-Sipwitness-Seal: v=1;" in d for d in relay.seen_there), "every message sealed")
        for sw in (inner, outer):
            self.assertNotIn("alg: ", sw.log())
            self.assertRegex(sw.log(), r"alg report: udp 127\.0\.0\.1: [1-9]\d* sealed messages, 0 rewritten, "
                                       r"0 unsealed, 0 invalid")
        self.assertNoSealOutside(u)

    def test_digest_uri_rewrite_is_the_cause_not_the_password(self):
        rewrite = replace_in_header(b"Authorization", b'uri="sip:kam.test"', b'uri="sip:127.0.0.1"')
        u, inner, outer, inner_rec, outer_rec, relay = self.run_lab(there=rewrite, expect_exit=3)
        ev = outer_rec["evidence"]
        self.assertEqual(outer_rec["verdict"], "alg_rewrite", json.dumps(outer_rec))
        self.assertEqual(outer_rec["confidence"], "certain")
        self.assertEqual((ev["field"], ev["sent"], ev["arrived"]),
                         ("Authorization uri=", "sip:kam.test", "sip:127.0.0.1"), json.dumps(outer_rec))
        self.assertIn("Authorization", ev["rewritten_fields"])
        self.assertIn("not the password", outer_rec["hint"])
        self.assertIn('alg: udp 127.0.0.1: rewrites Authorization uri=: sent "sip:kam.test" '
                      'arrived "sip:127.0.0.1"', outer.log())
        # The inner side saw Kamailio's answers arrive intact: for it, a plain rejection.
        self.assertEqual(inner_rec["verdict"], "wrong_password", json.dumps(inner_rec))
        self.assertNoSealOutside(u)

    def test_requoted_authorization(self):
        rewrite = replace_in_header(b"Authorization", b"qop=auth", b'qop="auth"')
        u, inner, outer, inner_rec, outer_rec, relay = self.run_lab(there=rewrite, expect_exit=0)
        # Kamailio reads the quoted qop the same, so the REGISTER succeeds, but
        # the bytes changed: a stricter server would not accept them.
        self.assertEqual(outer_rec["verdict"], "alg_rewrite", json.dumps(outer_rec))
        self.assertEqual(outer_rec["final_status"], 200)
        self.assertEqual(outer_rec["evidence"]["field"], "Authorization")
        self.assertIn("qop=auth", outer_rec["evidence"]["sent"])
        self.assertIn('qop="auth"', outer_rec["evidence"]["arrived"])
        self.assertIn("accepted it this time", outer_rec["hint"])

    def test_realm_rewritten_in_the_challenge_on_the_way_back(self):
        rewrite = replace_in_header(b"WWW-Authenticate", b'realm="kam.test"', b'realm="127.0.0.1"')
        u, inner, outer, inner_rec, outer_rec, relay = self.run_lab(back=rewrite, expect_exit=3)
        ev = inner_rec["evidence"]
        self.assertEqual(inner_rec["verdict"], "alg_rewrite", json.dumps(inner_rec))
        self.assertEqual((ev["field"], ev["sent"], ev["arrived"]),
                         ("WWW-Authenticate realm=", "kam.test", "127.0.0.1"), json.dumps(inner_rec))
        self.assertIn("rewrites WWW-Authenticate realm=", inner.log())
        # Kamailio, unaware, sees an answer for the wrong realm.
        self.assertEqual(outer_rec["verdict"], "realm_mismatch", json.dumps(outer_rec))

    def test_stripped_seal_is_a_finding(self):
        u, inner, outer, inner_rec, outer_rec, relay = self.run_lab(there=strip_seal, expect_exit=0)
        self.assertRegex(outer.log(), r"alg: udp 127\.0\.0\.1: REGISTER call-id=\S+ arrived without a seal")
        self.assertRegex(outer.log(), r"alg report: udp 127\.0\.0\.1: 0 sealed messages, 0 rewritten, "
                                      r"[1-9]\d* unsealed")
        self.assertEqual(outer_rec["verdict"], "ok_after_challenge")

    def test_another_key_does_not_verify(self):
        other = self.tmp / "other.key"
        other.write_text("a different lab key of some length\n")

        def reseal_with_garbage(data: bytes) -> bytes:
            return re.sub(rb"(X-Sipwitness-Seal:[^\r]*;mac=)[A-Za-z0-9_-]+", rb"\1AAAAAAAAAAAAAAAA", data)
        u, inner, outer, inner_rec, outer_rec, relay = self.run_lab(there=reseal_with_garbage, expect_exit=0)
        self.assertIn("the seal does not verify (the seal's mac does not verify", outer.log())
        self.assertNoSealOutside(u)


class LabConfig(harness.E2ETestCase):
    def test_role_without_key_is_a_config_error(self):
        cfg = self.tmp / "bad.yaml"
        cfg.write_text("lab: { role: outer }\n")
        import subprocess
        out = subprocess.run([harness.sipwitness_binary(), "run", "--config", str(cfg), "--check"],
                             capture_output=True, text=True, timeout=10)
        self.assertEqual(out.returncode, 2, out.stderr)
        self.assertIn("bad.yaml:1:6: lab.key_file: required with lab.role", out.stderr)

    def test_short_key_is_refused(self):
        (self.tmp / "short.key").write_text("short\n")
        cfg = self.tmp / "lab.yaml"
        cfg.write_text("lab: { role: inner, key_file: short.key }\n")
        import subprocess
        out = subprocess.run([harness.sipwitness_binary(), "run", "--config", str(cfg), "--check"],
                             capture_output=True, text=True, timeout=10)
        self.assertEqual(out.returncode, 2, out.stderr)
        self.assertIn("short.key: lab.key_file: the key must be at least 16 bytes", out.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
