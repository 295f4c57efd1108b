#!/usr/bin/env python3
"""End-to-end: sipwitness between a SIPp phone and a real Kamailio registrar.

Acceptance criterion: a phone registering through sipwitness to a real
Kamailio (started here on loopback with its own small config, acting as
registrar with digest auth) gets 200 OK after the 401 round, and an incoming
call from Kamailio reaches the phone through sipwitness.

    phone ──REGISTER──────▶ sipwitness ──REGISTER + Path──────▶ Kamailio
          ◀──401, 200─────            ◀──401, 200─────────────
    phone ◀──INVITE─────── sipwitness ◀──INVITE, Route: Path── Kamailio ◀── caller

Two groups:
* KamailioStandaloneTest: the Kamailio config alone (no sipwitness), so that
  a failure of the acceptance test can be pinned on sipwitness.
* SipwitnessKamailioTest: the acceptance test.

Run:  SIPWITNESS_BIN=build/sipwitness python3 tests/e2e/test_kamailio.py
E2E_KEEP=1 keeps the per-test directories (Kamailio config and log, SIPp traces,
sipwitness config and log). Loopback only, ports picked at run time, every
child process bounded in time and stopped in cleanup.
"""

from __future__ import annotations

import re
import sys
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "kamailio"))

import harness  # noqa: E402  (tests/e2e/harness.py)
import kam  # noqa: E402      (tests/e2e/kamailio/kam.py)
from harness import find_message, header_values, start_line  # noqa: E402

SCEN = kam.SCENARIOS
USER, PASSWORD = "1001", "secret1001"
REALM = kam.DEFAULT_REALM
SIPP_TIMEOUT = 20  # seconds per SIPp run (SIPp's -timeout; the harness kills after +15s)


def statuses(messages: list[str]) -> list[int]:
    out = []
    for m in messages:
        line = start_line(m)
        if line.startswith("SIP/2.0 "):
            out.append(int(line.split()[1]))
    return out


def methods(messages: list[str]) -> list[str]:
    return [start_line(m).split(" ", 1)[0] for m in messages
            if not start_line(m).startswith("SIP/2.0")]


def outline(r: harness.SippResult) -> str:
    """One line per traced message: '  sent REGISTER ...' / '  recv SIP/2.0 401 ...'."""
    lines = []
    for block in re.split(r"^-{20,} .*\n", r.messages, flags=re.M):
        head, _, body = block.partition("\n")
        if " message " in head:
            d = "sent" if " sent" in head else "recv"
            lines.append(f"  {d} {start_line(body.strip())}")
    return "\n".join(lines) or "  (no messages traced)"


class _Base(harness.E2ETestCase):
    @classmethod
    def setUpClass(cls):
        why = kam.missing_prerequisites()
        if why:
            raise unittest.SkipTest("; ".join(why))

    def setUp(self):
        super().setUp()
        self.kam: kam.Kamailio | None = None
        self.results: list[harness.SippResult] = []
        self.sw: harness.Sipwitness | None = None

    # ---- Kamailio ----------------------------------------------------------

    def start_kamailio(self) -> kam.Kamailio:
        self.kam = kam.Kamailio(port=harness.free_port("udp"), workdir=str(self.tmp / "kamailio"),
                                users={USER: PASSWORD}, realm=REALM)
        self.addCleanup(self.kam.stop)  # before the harness removes self.tmp
        self.kam.start()
        return self.kam

    # ---- SIPp roles ----------------------------------------------------------

    def register(self, target_port: int, phone_port: int, *, password: str = PASSWORD,
                 scenario: str = "phone_register.xml", keys: dict[str, str] | None = None,
                 name: str = "phone-register") -> harness.SippResult:
        r = self.run_sipp(
            str(SCEN / scenario), (harness.HOST, target_port), port=phone_port, name=name,
            service=USER, timeout=SIPP_TIMEOUT,
            keys={"aor_domain": REALM, "expires": "300", **(keys or {})},
            # digest uri= equal to the Request-URI, as a real phone sends it
            # (SIPp's default would be sip:<remote_ip>:<remote_port>)
            extra_args=["-au", USER, "-ap", password, "-auth_uri", REALM])
        self.results.append(r)
        return r

    def start_phone_uas(self, phone_port: int, name: str = "phone-uas") -> harness.Sipp:
        # the same port the phone registered from: wait until that run released it
        self.assertTrue(kam.wait_udp_free(phone_port, 5), f"port {phone_port} still bound")
        s = self.start_sipp(str(SCEN / "phone_uas.xml"), None, port=phone_port, name=name,
                            service=USER, timeout=SIPP_TIMEOUT)
        self.assertTrue(kam.wait_udp_bound(phone_port, 5, s.proc),
                        f"phone UAS did not bind {harness.HOST}:{phone_port}")
        return s

    def call(self, name: str = "caller") -> harness.SippResult:
        assert self.kam is not None
        r = self.run_sipp(str(SCEN / "caller_uac.xml"), (harness.HOST, self.kam.port),
                          name=name, service=USER, timeout=SIPP_TIMEOUT)
        self.results.append(r)
        return r

    # ---- diagnostics ---------------------------------------------------------

    def context(self, full: bool = False) -> str:
        out = []
        for r in self.results:
            out.append(f"=== SIPp {r.name}: exit={r.returncode} killed={r.killed} "
                       f"successful={r.successful} failed={r.failed}\n{outline(r)}")
            if full or not r.ok(1):
                out.append(r.describe(limit=6000))
        if self.kam is not None:
            out.append("=== kamailio log (tail)\n" + self.kam.log()[-6000:])
        if self.sw is not None:
            out.append("=== sipwitness log (tail)\n" + self.sw.log()[-10000:])
        return "\n" + "\n".join(out)

    def assertSippDone(self, r: harness.SippResult) -> None:
        """Exit 0, one successful call, no failed call (from SIPp's stats)."""
        if r not in self.results:
            self.results.append(r)
        self.assertTrue(r.ok(1), f"SIPp {r.name}: expected 1 successful call and 0 failed"
                        + self.context())

    def assertRegisterTrace(self, r: harness.SippResult) -> None:
        """A 401 with a Digest challenge for our realm, then 200 OK for a
        REGISTER carrying Authorization for user 1001."""
        ctx = self.context()
        finals = [c for c in statuses(r.received()) if c >= 200]
        self.assertEqual(finals, [401, 200], "expected 401 then 200" + ctx)
        challenge = find_message(r.received(), r"^SIP/2\.0 401 ")
        www = header_values(challenge, "www-authenticate")
        self.assertEqual(len(www), 1, ctx)
        self.assertRegex(www[0], r"^Digest\s", ctx)
        self.assertIn(f'realm="{REALM}"', www[0], ctx)
        registers = [m for m in r.sent() if start_line(m).startswith("REGISTER ")]
        self.assertEqual(len(registers), 2, ctx)
        self.assertEqual(header_values(registers[0], "authorization"), [], ctx)
        auth = header_values(registers[1], "authorization")
        self.assertEqual(len(auth), 1, ctx)
        self.assertIn(f'username="{USER}"', auth[0], ctx)
        self.assertIn(f'uri="sip:{REALM}"', auth[0], ctx)

    def assertCallTraces(self, caller: harness.SippResult, callee: harness.SippResult) -> None:
        ctx = self.context()
        self.assertEqual(methods(callee.received()), ["INVITE", "ACK", "BYE"], "callee" + ctx)
        self.assertEqual(statuses(callee.sent()), [180, 200, 200], "callee" + ctx)
        self.assertEqual(methods(caller.sent()), ["INVITE", "ACK", "BYE"], "caller" + ctx)
        got = [c for c in statuses(caller.received()) if c >= 180]
        self.assertIn(180, got, "caller did not see 180" + ctx)
        self.assertEqual(got[-2:], [200, 200], "caller: 200 for INVITE and for BYE" + ctx)


class KamailioStandaloneTest(_Base):
    """The Kamailio config on its own: phones register straight to it."""

    def test_config_check(self):
        k = kam.Kamailio(port=harness.free_port("udp"), workdir=str(self.tmp / "check"))
        r = k.check_config()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_register_401_then_200_and_call(self):
        k = self.start_kamailio()
        phone = harness.free_port("udp")
        reg = self.register(k.port, phone)
        self.assertSippDone(reg)
        self.assertRegisterTrace(reg)
        self.assertRegex(k.log(), rf"E2E-REG saved sip:{USER}@{re.escape(REALM)} "
                                  rf"contact=<sip:{USER}@127\.0\.0\.1:{phone};", self.context())

        uas = self.start_phone_uas(phone)
        caller = self.call()
        callee = uas.wait()
        self.assertSippDone(caller)
        self.assertSippDone(callee)
        self.assertCallTraces(caller, callee)

    def test_wrong_password_is_challenged_again(self):
        k = self.start_kamailio()
        reg = self.register(k.port, harness.free_port("udp"), password="not-the-password",
                            scenario="phone_register_rejected.xml")
        self.assertSippDone(reg)
        self.assertEqual([c for c in statuses(reg.received()) if c >= 200], [401, 401],
                         self.context())
        self.assertIn(f"E2E-AUTH user '{USER}' rc=-2", k.log(), self.context())

    def test_call_follows_stored_path(self):
        """A REGISTER carrying Path makes lookup() send the INVITE to the Path
        URI with a Route header, not to the Contact: what sipwitness relies on."""
        k = self.start_kamailio()
        phone = harness.free_port("udp")
        edge = harness.free_port("udp")
        path_uri = f"sip:127.0.0.1:{edge};lr;e2e=edge"
        reg = self.register(k.port, phone, scenario="phone_register_path.xml",
                            keys={"path_uri": path_uri})
        self.assertSippDone(reg)
        self.assertRegisterTrace(reg)
        self.assertIn(f"path=<{path_uri}>", k.log(), self.context())

        # an "edge" SIPp on the Path address answers in the phone's place
        edge_uas = self.start_phone_uas(edge, name="edge-uas")
        caller = self.call()
        callee = edge_uas.wait()
        self.assertSippDone(caller)
        self.assertSippDone(callee)
        self.assertCallTraces(caller, callee)
        invite = find_message(callee.received(), r"^INVITE ")
        self.assertTrue(start_line(invite).startswith(f"INVITE sip:{USER}@127.0.0.1:{phone};"),
                        invite)
        self.assertEqual(header_values(invite, "route")[:1], [f"<{path_uri}>"], invite)


class SipwitnessKamailioTest(_Base):
    """The acceptance test: phone <-> sipwitness <-> Kamailio."""

    def test_register_through_sipwitness_then_incoming_call(self):
        k = self.start_kamailio()
        with self.sipwitness(upstream_uri=k.uri, listen=("udp",), level="debug") as sw:
            self.sw = sw
            sw_port = sw.udp_port
            self.assertTrue(sw_port, "sipwitness did not report its UDP port")

            # 1. REGISTER through sipwitness: the 401 round, then 200 OK
            phone = harness.free_port("udp")
            reg = self.register(sw_port, phone)
            self.assertSippDone(reg)
            self.assertRegisterTrace(reg)

            # Kamailio saved the phone's contact, with sipwitness's Path
            m = re.search(rf"E2E-REG saved sip:{USER}@\S+ contact=(\S+) path=(.*?) from (\S+)\n",
                          k.log())
            self.assertIsNotNone(m, "Kamailio did not save the registration" + self.context())
            contact, path, source = m.groups()
            self.assertIn(f"127.0.0.1:{phone}", contact, self.context())
            self.assertEqual(source, f"127.0.0.1:{sw_port}",
                             "REGISTER did not reach Kamailio from sipwitness" + self.context())
            self.assertRegex(path, rf"^<sip:127\.0\.0\.1:{sw_port}(;[^>]*)?;lr[;>]",
                             "sipwitness's Path (its address, ;lr) not stored" + self.context())

            # 2. incoming call: caller -> Kamailio -> (Path) sipwitness -> phone
            uas = self.start_phone_uas(phone)
            caller = self.call()
            callee = uas.wait()
            self.assertSippDone(caller)
            self.assertSippDone(callee)
            self.assertCallTraces(caller, callee)

            self.assertRegex(k.log(), rf"E2E-LOOKUP found ru=\S+ du=sip:127\.0\.0\.1:{sw_port}\b",
                             "Kamailio did not route the INVITE along the Path" + self.context())
            invite = find_message(callee.received(), r"^INVITE ")
            vias = header_values(invite, "via")
            self.assertTrue(vias and re.match(rf"SIP/2\.0/UDP 127\.0\.0\.1:{sw_port}\b", vias[0]),
                            "the phone's INVITE did not come through sipwitness (top Via)"
                            + self.context())
            self.assertFalse([r for r in header_values(invite, "route") if f":{sw_port};" in r],
                             "sipwitness left its own Route in the INVITE" + self.context())

            # sipwitness's log shows the INVITE relayed to the phone
            # (a debug line like "-> phone 127.0.0.1:PORT udp INVITE sip:...")
            self.assertRegex(sw.log(), rf"->[^\n]*\b127\.0\.0\.1:{phone}\b[^\n]*\bINVITE sip:",
                             "sipwitness's log does not show the INVITE relayed to "
                             f"127.0.0.1:{phone}" + self.context())
        # leaving the block: SIGTERM, exit code 0 and no sanitizer report (harness)


if __name__ == "__main__":
    unittest.main(verbosity=2)
