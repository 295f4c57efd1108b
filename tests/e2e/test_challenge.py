#!/usr/bin/env python3
"""sipwitness's own 407 (challenge.enabled: true), end to end.

Topology: phone (SIPp, baresip or a Python socket) -> sipwitness -> provider
(SIPp, or a Python registrar that answers 200 and records what it got).

  1. SIPp phone: REGISTER and a call, each through the 407 (UDP and TCP);
     the provider never sees our Proxy-Authorization, the 407's ACK or an
     unauthenticated request, and sees every other header unchanged.
  2. Wrong password: 407, 407, then 403 and a block; the right password is
     403 while blocked; the provider sees no REGISTER at all.
     The next block of the same source is twice as long; a username fails
     from 127.0.0.1 and 127.0.0.2 and is blocked, except from the address its
     phone authenticated from; the README's fail2ban filter, applied to the
     log, finds the source blocks only.
  3. `sipwitness ha1` output as the users file: HA1-only user 1002 registers
     with MD5 (SIPp) and SHA-256 (Python; SIPp 3.6.1 has MD5 only).
  4. baresip (libre) registers through the 407.
  5. 407 format; a retransmission gets the identical 407; the ACK for an
     INVITE's 407 is absorbed.
  6. Unknown or expired nonce: 407 with stale=true.
  7. SIGHUP reloads users.yaml; a broken file keeps the running users.

SIPp 3.6.1 computes MD5 (and AKAv1-MD5) only and takes the algorithm of the
first Proxy-Authenticate: with the default [SHA-256, MD5] it stops with
"createAuthHeader: authentication must use MD5 or AKAv1-MD5". The SIPp tests
therefore run with algorithms: [MD5, SHA-256] (both offered, MD5 first).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import unittest
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (HOST, FAKE_AUTHORIZATION, E2ETestCase, Sipwitness,  # noqa: E402
                     find_message, free_port, header_values, headers_of, sipwitness_binary,
                     start_line, status_code, stop_process_group)
from challenge_common import (REALM, USERS_YAML, PyPhone, PyRegistrar, challenge_for,  # noqa: E402
                              challenge_yaml, credentials, cseq_of, ha1_of, new_branch, parse_challenge,
                              proxy_authenticates)
from relay_common import body_of, lines_of  # noqa: E402

# harness.Sipwitness starts the binary with cwd=its temp dir: a relative
# SIPWITNESS_BIN (build/sipwitness) would not be found there.
if os.environ.get("SIPWITNESS_BIN") and not os.path.isabs(os.environ["SIPWITNESS_BIN"]):
    os.environ["SIPWITNESS_BIN"] = os.path.abspath(os.environ["SIPWITNESS_BIN"])

HERE = Path(__file__).resolve().parent
BARESIP_DIR = HERE / "baresip"

# Headers the phone scenarios send that sipwitness must pass byte for byte
# (keep in sync with challenge_phone_register_call.xml).
FOREIGN_PROXY_AUTH_REGISTER = (
    'Proxy-Authorization: Digest username="1001", realm="other.example", nonce="other-nonce-0001", '
    'uri="sip:lab.example", response="00112233445566778899aabbccddeeff", algorithm=MD5')
FOREIGN_PROXY_AUTH_INVITE = (
    'Proxy-Authorization: Digest username="1001", realm="other.example", nonce="other-nonce-0001", '
    'uri="sip:2000@lab.example", response="00112233445566778899aabbccddeeff", algorithm=MD5')

# SIPp 3.6.1 can only answer MD5, and only the first challenge it sees.
SIPP_ALGORITHMS = ("MD5", "SHA-256")


# --------------------------------------------------------------------------


def _feature_problem() -> str | None:
    """Why the binary cannot run these tests (None: it can)."""
    binary = sipwitness_binary()
    if not os.path.exists(binary):
        return f"sipwitness binary not found at {binary} (set SIPWITNESS_BIN)"
    import tempfile
    d = Path(tempfile.mkdtemp(prefix="sipwitness-e2e-check-"))
    try:
        (d / "users.yaml").write_text(USERS_YAML)
        cfg = d / "sipwitness.yaml"
        cfg.write_text(Sipwitness(upstream_port=5999, workdir=str(d)).config_text() + challenge_yaml())
        p = subprocess.run([binary, "run", "--config", str(cfg), "--check"], capture_output=True,
                           text=True, timeout=20)
        if p.returncode != 0:
            return (f"{binary} does not accept a challenge config (exit {p.returncode}): "
                    f"{(p.stdout + p.stderr).strip()}")
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return None


class Challenge(E2ETestCase):
    """sipwitness answering phones with its own 407."""

    @classmethod
    def setUpClass(cls) -> None:
        problem = _feature_problem()
        if problem:
            raise AssertionError(problem)

    # -- helpers -------------------------------------------------------------
    def challenger(self, *, upstream_port: int, upstream_transport: str = "udp",
                   users: str = USERS_YAML, **challenge) -> Sipwitness:
        sw = self.sipwitness(upstream_port=upstream_port, upstream_transport=upstream_transport,
                             extra_config=challenge_yaml(**challenge))
        (sw.workdir / "users.yaml").write_text(users)
        return sw

    def registrar(self) -> PyRegistrar:
        reg = PyRegistrar()
        self.addCleanup(reg.stop)
        return reg

    def phone(self, sw: Sipwitness, user: str = "1001", host: str = HOST) -> PyPhone:
        p = PyPhone(sw.udp_port, user, host)
        self.addCleanup(p.close)
        return p

    def assert407(self, msg: str | None, what: str, algorithms=("SHA-256", "MD5"), stale: bool = False) -> list[dict]:
        self.assertIsNotNone(msg, f"{what}: no answer from sipwitness")
        self.assertRegex(start_line(msg), r"^SIP/2\.0 407 Proxy Authentication Required$",
                         f"{what}: expected 407:\n{msg}")
        values = proxy_authenticates(msg)
        self.assertEqual(len(values), len(algorithms),
                         f"{what}: expected one Proxy-Authenticate per algorithm {algorithms}:\n{msg}")
        challenges = []
        for value, algorithm in zip(values, algorithms):
            if not stale:
                self.assertRegex(
                    value, r'^Digest realm="lab\.example", nonce="[^"]+", opaque="[^"]+", '
                    rf'algorithm={re.escape(algorithm)}, qop="auth"$',
                    f"{what}: Proxy-Authenticate not in the expected form:\n{msg}")
            ch = parse_challenge(value)
            self.assertEqual(ch.get("scheme"), "Digest")
            self.assertEqual(ch.get("realm"), REALM, value)
            self.assertEqual(ch.get("algorithm"), algorithm, value)
            self.assertEqual(ch.get("qop"), "auth", value)
            self.assertTrue(ch.get("nonce") and ch.get("opaque"), value)
            if stale:
                self.assertEqual(ch.get("stale", "").lower(), "true", f"{what}: expected stale=true:\n{msg}")
            else:
                self.assertNotEqual(ch.get("stale", "false").lower(), "true",
                                    f"{what}: unexpected stale=true:\n{msg}")
            challenges.append(ch)
        self.assertTrue(re.search(r"^To:.*;tag=", msg, re.M | re.I), f"{what}: 407 without To tag:\n{msg}")
        return challenges

    def count(self, sw: Sipwitness, pattern: str) -> int:
        return len(re.findall(pattern, sw.log(), re.M))

    # ======================================================================
    # 1. SIPp phone: REGISTER and a call through the 407
    def register_and_call(self, transport: str) -> None:
        prov = self.start_sipp("challenge_provider_register_call.xml", transport=transport, timeout=25,
                               name="provider")
        sw = self.challenger(upstream_port=prov.port, upstream_transport=transport, algorithms=SIPP_ALGORITHMS)
        with sw:
            phone = self.run_sipp("challenge_phone_register_call.xml", (HOST, sw.port(transport)),
                                  transport=transport, timeout=20, name="phone",
                                  extra_args=["-au", "1001", "-ap", "secret1001"])
            provr = prov.wait()
            self.assertSippOk(phone, 1, sw)
            self.assertSippOk(provr, 1, sw)

            # the phone saw two 407s (REGISTER CSeq 1, INVITE CSeq 3), each with
            # both algorithms, MD5 first
            challenges = {cseq_of(m): m for m in phone.received() if status_code(m) == 407}
            self.assertEqual(sorted(challenges), ["1 REGISTER", "3 INVITE"], phone.describe())
            challenges = list(challenges.values())
            for c in challenges:
                self.assert407(c, "407 at the phone", algorithms=SIPP_ALGORITHMS)

            got = provr.received()
            for msg in got:
                for line in lines_of(msg):
                    if line.lower().startswith("proxy-authorization:"):
                        self.assertNotIn('realm="lab.example"', line,
                                         f"sipwitness's Proxy-Authorization reached the provider:\n{msg}")
            regs = [m for m in got if start_line(m).startswith("REGISTER ")]
            invites = [m for m in got if start_line(m).startswith("INVITE ")]
            acks = [m for m in got if start_line(m).startswith("ACK ")]
            self.assertEqual(len(regs), 1, "provider should get exactly the authenticated REGISTER")
            self.assertEqual(len(invites), 1, "provider should get exactly the authenticated INVITE")
            self.assertEqual(len(acks), 1, "provider should get the 2xx ACK only, never the 407's ACK")
            self.assertRegex(acks[0], r"(?m)^CSeq:\s*4 ACK", f"ACK for the 407 (CSeq 3) was forwarded:\n{acks[0]}")
            self.assertRegex(regs[0], r"(?m)^CSeq:\s*2 REGISTER", regs[0])
            self.assertRegex(invites[0], r"(?m)^CSeq:\s*4 INVITE", invites[0])

            sent_regs = [m for m in phone.sent() if start_line(m).startswith("REGISTER ")]
            sent_invites = [m for m in phone.sent() if start_line(m).startswith("INVITE ")]
            sent_reg = [m for m in sent_regs if re.search(r"(?m)^CSeq:\s*2 ", m)][0]
            sent_inv = [m for m in sent_invites if re.search(r"(?m)^CSeq:\s*4 ", m)][0]
            self.assertTrue(any(line.startswith("Proxy-Authorization: Digest username=\"1001\",realm=\"lab.example\"")
                                for line in lines_of(sent_reg)),
                            f"SIPp did not answer the 407 as expected:\n{sent_reg}")
            for sent, arrived, foreign, what in ((sent_reg, regs[0], FOREIGN_PROXY_AUTH_REGISTER, "REGISTER"),
                                                 (sent_inv, invites[0], FOREIGN_PROXY_AUTH_INVITE, "INVITE")):
                self.assertEqual(start_line(arrived), start_line(sent), f"{what}: Request-URI changed")
                self.assertIn(foreign, lines_of(arrived),
                              f"{what}: Proxy-Authorization for another realm not byte-identical:\n{arrived}")
                for name in ("from", "to", "call-id", "cseq", "contact", "expires", "user-agent",
                             "content-type", "authorization"):
                    self.assertEqual(header_values(sent, name), header_values(arrived, name),
                                     f"{what}: header {name} changed in transit\n--- sent ---\n{sent}"
                                     f"\n--- arrived ---\n{arrived}")
                self.assertEqual(body_of(arrived), body_of(sent), f"{what}: body changed")
                self.assertEqual(header_values(arrived, "max-forwards"), ["69"], arrived)
                # every sent header arrives, except our Proxy-Authorization (and
                # Via/Max-Forwards, which a proxy changes; Record-Route/Path it adds)
                sent_lines = [(n.lower(), v) for n, v in headers_of(sent)
                              if n.lower() not in ("via", "max-forwards", "content-length")
                              and not (n.lower() == "proxy-authorization" and 'realm="lab.example"' in v)]
                arrived_lines = [(n.lower(), v) for n, v in headers_of(arrived)
                                 if n.lower() not in ("via", "max-forwards", "content-length",
                                                      "record-route", "path")]
                self.assertEqual(sent_lines, arrived_lines,
                                 f"{what}: headers other than sipwitness's Proxy-Authorization must pass "
                                 f"unchanged and in order\n--- sent ---\n{sent}\n--- arrived ---\n{arrived}")
            self.assertIn(FAKE_AUTHORIZATION, lines_of(regs[0]),
                          f"Authorization header not byte-identical at the provider:\n{regs[0]}")

            log = sw.log()
            self.assertRegex(log, rf"auth: accepted REGISTER from {transport}:127\.0\.0\.1:\d+ user=1001\b")
            self.assertRegex(log, rf"auth: accepted INVITE from {transport}:127\.0\.0\.1:\d+ user=1001\b")
            self.assertNotIn("auth-block", log)

    def test_register_and_call_udp(self):
        self.register_and_call("udp")

    def test_register_and_call_tcp(self):
        self.register_and_call("tcp")

    # ======================================================================
    # 2. wrong password: 407, 407, 403 (blocked); right password still 403
    def wrong_password(self, transport: str) -> None:
        reg = self.registrar()
        sw = self.challenger(upstream_port=reg.port, algorithms=SIPP_ALGORITHMS)
        with sw:
            phone = self.run_sipp("challenge_phone_wrong_password.xml", (HOST, sw.port(transport)),
                                  transport=transport, timeout=20, name="phone",
                                  extra_args=["-au", "1001", "-ap", "not-the-password"])
            self.assertSippOk(phone, 1, sw)
            finals = {cseq_of(m): status_code(m) for m in phone.received() if (status_code(m) or 0) >= 200}
            self.assertEqual(finals, {"1 REGISTER": 407, "2 REGISTER": 407, "3 REGISTER": 407,
                                      "4 REGISTER": 403, "5 REGISTER": 403, "6 REGISTER": 403},
                             phone.describe())
            sent = [m for m in phone.sent() if start_line(m).startswith("REGISTER ")]
            right = [m for m in sent if re.search(r"(?m)^CSeq:\s*5 ", m)][0]
            self.assertRegex(right, r'Proxy-Authorization: Digest username="1001",realm="lab\.example"',
                             "the 5th REGISTER should carry the right credentials")

            log = sw.log()
            call_id = header_values(sent[0], "call-id")[0]
            for n in (1, 2):
                self.assertRegex(
                    log, rf"auth: 407 to REGISTER from {transport}:127\.0\.0\.1:\d+ user=1001 "
                    rf"call-id={re.escape(call_id)}: wrong password \(failure {n} of 3\)")
            self.assertRegex(log, r"auth-block: source=127\.0\.0\.1 user=1001 failures=3 blocked_for=60s")
            self.assertEqual(self.count(sw, r"auth-block:"), 1, "one auth-block line per block")
            self.assertGreaterEqual(self.count(sw, r"auth: 403 to REGISTER"), 3)
            self.assertNotRegex(log, r"auth: accepted", "a blocked source must not be accepted")

            # a Python phone from the same IP, right password: still 403
            py = self.phone(sw)
            first, second = py.register("secret1001")
            self.assertEqual(status_code(first), 403, f"blocked source should get 403 at once:\n{first}")
            time.sleep(0.3)
            self.assertEqual(reg.messages(), [], "the provider must not receive any of these REGISTERs")

    def test_wrong_password_blocks_udp(self):
        self.wrong_password("udp")

    def test_wrong_password_blocks_tcp(self):
        self.wrong_password("tcp")

    # ======================================================================
    # 2b. the guard: doubling blocks, a username block across addresses, the
    #     fail2ban filter of the README applied to the real lines
    def assert_fail2ban_filter(self, sw: Sipwitness, want: list[tuple[str, str, str]]) -> None:
        """The README's failregex finds exactly want: (host, blocked_for) per line it matches."""
        failregex, datepattern = fail2ban_filter()
        found = []
        for line in sw.log().splitlines():
            # fail2ban cuts the time stamp (datepattern) and searches the rest
            rest = re.sub(datepattern, "", line, count=1)
            m = re.search(failregex, rest)
            if m:
                found.append((m.group("host"), re.search(r"blocked_for=(\w+)", rest)[1]))
        self.assertEqual(found, want, sw.log())

    def test_block_backs_off(self):
        reg = self.registrar()
        sw = self.challenger(upstream_port=reg.port, max_failures=2, block_time="1s",
                             guard=("max_block_time: 3s", "backoff_reset: 60s"))
        with sw:
            def fail_until_blocked() -> None:
                _, second = self.phone(sw).register("wrong", "SHA-256")
                self.assertEqual(status_code(second), 407, second)
                _, second = self.phone(sw).register("wrong", "SHA-256")
                self.assertEqual(status_code(second), 403, second)

            fail_until_blocked()
            first, _ = self.phone(sw).register("secret1001", "SHA-256")
            self.assertEqual(status_code(first), 403, f"blocked: 403 at once\n{first}")
            time.sleep(1.2)
            fail_until_blocked()  # the same source again: twice as long
            time.sleep(1.2)
            first, _ = self.phone(sw).register("secret1001", "SHA-256")
            self.assertEqual(status_code(first), 403, f"the second block lasts 2 s\n{first}")
            time.sleep(1.2)
            _, second = self.phone(sw).register("secret1001", "SHA-256")
            self.assertEqual(status_code(second), 200, second)
            self.assertEqual(re.findall(r"auth-block: source=127\.0\.0\.1 user=1001 failures=2 "
                                        r"blocked_for=(\d+)s", sw.log()), ["1", "2"])
        self.assertRegex(sw.log(), r"stopped: auth .* forbidden=4 source_blocks=2 user_blocks=0")
        self.assert_fail2ban_filter(sw, [("127.0.0.1", "1s"), ("127.0.0.1", "2s")])

    def test_username_block_across_two_sources(self):
        reg = self.registrar()
        users = USERS_YAML + '  - { username: "1003", password: "secret1003" }\n'
        sw = self.challenger(upstream_port=reg.port, users=users, max_failures=5, block_time="2s",
                             guard=("max_user_failures: 2",))
        with sw:
            # the working phone authenticates from 127.0.0.3 before the attack
            _, second = self.phone(sw, host="127.0.0.3").register("secret1001", "SHA-256")
            self.assertEqual(status_code(second), 200, second)
            # one guess each from two addresses: neither reaches its own limit
            _, second = self.phone(sw, host="127.0.0.1").register("guess-1", "SHA-256")
            self.assertEqual(status_code(second), 407, second)
            _, second = self.phone(sw, host="127.0.0.2").register("guess-2", "SHA-256")
            self.assertEqual(status_code(second), 403, second)
            self.assertRegex(sw.log(), r"auth-user-block: source=127\.0\.0\.2 user=1001 failures=2 "
                                       r"blocked_for=2s")
            # 1001 is blocked from a new address, even with the right password...
            _, second = self.phone(sw, host="127.0.0.4").register("secret1001", "SHA-256")
            self.assertEqual(status_code(second), 403, second)
            self.assertRegex(second, r"(?m)^Warning: .*user blocked")
            # ...not from the address it authenticated from, and the addresses are not blocked
            _, second = self.phone(sw, host="127.0.0.3").register("secret1001", "SHA-256")
            self.assertEqual(status_code(second), 200, second)
            _, second = self.phone(sw, "1003", host="127.0.0.2").register("secret1003", "SHA-256")
            self.assertEqual(status_code(second), 200, second)
            # a username made to look like a block line stays one field of another line
            forger = self.phone(sw, host="127.0.0.5")
            first = forger.transact(forger.build("REGISTER", branch=new_branch()))
            forged = "x auth-block: source=192.0.2.66 user=x failures=9 blocked_for=9s"
            auth = credentials(challenge_for(first, "SHA-256"), user=forged, method="REGISTER",
                               uri=f"sip:{REALM}", password="x")
            second = forger.transact(forger.build("REGISTER", branch=new_branch(), extra=(auth,)))
            self.assertEqual(status_code(second), 407, second)
            self.assertTrue(sw.wait_for_log(r"user=x\?auth-block:\?source=192\.0\.2\.66\?"), sw.log())
            time.sleep(2.1)
            _, second = self.phone(sw, host="127.0.0.4").register("secret1001", "SHA-256")
            self.assertEqual(status_code(second), 200, f"the username block is over\n{second}")
        self.assertRegex(sw.log(), r"stopped: auth .* forbidden=2 source_blocks=0 user_blocks=1")
        self.assertNotRegex(sw.log(), r"(?m)^\S+ warning auth-block:", "no source was blocked")
        self.assert_fail2ban_filter(sw, [])

    # ======================================================================
    # 3. HA1-only user from `sipwitness ha1`
    def ha1_line(self, password: str, *args: str) -> str:
        p = subprocess.run([sipwitness_binary(), "ha1", "--user", "1002", "--realm", REALM, *args],
                           input=password + "\n", capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 0, f"sipwitness ha1 failed: {p.stdout}{p.stderr}")
        self.assertNotIn(password, p.stdout, "ha1 must not print the password")
        return p.stdout

    def test_ha1_command_output(self):
        out = self.ha1_line("pw-1002-secret")
        entries = [line for line in out.splitlines() if line.strip()]
        self.assertEqual(len(entries), 1, f"expected one users-file line:\n{out}")
        line = entries[0]
        self.assertRegex(line, r'^\s*-\s*\{.*username:\s*"?1002"?.*realm:\s*"?lab\.example"?.*ha1:\s*\{', line)
        for algorithm in ("MD5", "SHA-256"):
            want = ha1_of(algorithm, "1002", REALM, "pw-1002-secret")
            self.assertRegex(line, rf'{re.escape(algorithm)}:\s*"{want}"', f"{algorithm} HA1 wrong or missing: {line}")
        if "SHA-512-256" in line:
            try:
                want = ha1_of("SHA-512-256", "1002", REALM, "pw-1002-secret")
            except ValueError:
                want = None
            if want:
                self.assertRegex(line, rf'SHA-512-256:\s*"{want}"', line)
        one = self.ha1_line("pw-1002-secret", "--algorithm", "SHA-256")
        self.assertIn(ha1_of("SHA-256", "1002", REALM, "pw-1002-secret"), one)
        self.assertNotIn(ha1_of("MD5", "1002", REALM, "pw-1002-secret"), one)

    def test_ha1_user_registers_md5_and_sha256(self):
        password = "pw-1002-secret"
        line = self.ha1_line(password)
        users = USERS_YAML + line if line.endswith("\n") else USERS_YAML + line + "\n"
        reg = self.registrar()
        sw = self.challenger(upstream_port=reg.port, users=users, algorithms=SIPP_ALGORITHMS)
        with sw:
            # MD5 with SIPp
            phone = self.run_sipp("challenge_phone_register.xml", (HOST, sw.udp_port), timeout=15,
                                  name="phone-1002", keys={"user": "1002"},
                                  extra_args=["-au", "1002", "-ap", password])
            self.assertSippOk(phone, 1, sw)
            sent = [m for m in phone.sent() if re.search(r"(?m)^CSeq:\s*2 REGISTER", m)][0]
            self.assertRegex(sent, r'Proxy-Authorization: Digest username="1002".*algorithm=MD5')
            # SHA-256 (SIPp 3.6.1 cannot): a Python phone
            py = self.phone(sw, "1002")
            first, second = py.register(password, "SHA-256")
            self.assert407(first, "407 to the Python phone", algorithms=SIPP_ALGORITHMS)
            self.assertEqual(status_code(second), 200, f"SHA-256 answer for HA1-only user refused:\n{second}")
            # and with the wrong password: 407 again
            py2 = self.phone(sw, "1002")
            first, second = py2.register("wrong", "SHA-256")
            self.assertEqual(status_code(second), 407, second)
            time.sleep(0.2)
            self.assertEqual(len(reg.requests("REGISTER")), 2, "provider: the two accepted REGISTERs")
            log = sw.log()
            self.assertEqual(self.count(sw, r"auth: accepted REGISTER from udp:127\.0\.0\.1:\d+ user=1002\b"), 2,
                             log)
            self.assertRegex(log, r"auth: 407 to REGISTER from udp:\S+ user=1002 call-id=\S+: wrong password "
                                  r"\(failure 1 of 3\)")
            self.assertRegex(log, r"\[Proxy-Authorization Digest username=\"?1002\"? realm=\"?lab\.example\"? "
                                  r"algorithm=SHA-256")
            self.assertRegex(log, r"\[Proxy-Authorization Digest username=\"?1002\"? realm=\"?lab\.example\"? "
                                  r"algorithm=MD5")

    # ======================================================================
    # 4. baresip
    def baresip(self, transport: str, algorithms) -> None:
        exe = shutil.which("baresip")
        if not exe:
            self.skipTest("baresip is not installed (Debian package baresip; scripts/setup installs it)")
        skip = self.run_baresip(exe, transport, algorithms)
        if skip:  # outside the Sipwitness block, which dumps its log on any exception
            self.skipTest(skip)

    def run_baresip(self, exe: str, transport: str, algorithms) -> str | None:
        """Runs baresip through sipwitness; returns a reason to skip, or None."""
        prov = self.start_sipp("provider_registrar.xml", transport=transport, timeout=20, name="provider")
        sw = self.challenger(upstream_port=prov.port, upstream_transport=transport, algorithms=algorithms)
        with sw:
            conf = self.tmp / "baresip"
            conf.mkdir()
            listen = free_port("both")
            (conf / "config").write_text(
                (BARESIP_DIR / "config").read_text().replace("{sip_listen}", f"{HOST}:{listen}"))
            (conf / "accounts").write_text(
                (BARESIP_DIR / "accounts").read_text().replace("{transport}", transport)
                .replace("{sw_port}", str(sw.port(transport))))
            (conf / "contacts").write_text("")
            out_path = self.tmp / "baresip.out"
            out = open(out_path, "wb")
            proc = subprocess.Popen([exe, "-f", str(conf), "-s", "-v"], stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, cwd=self.tmp, start_new_session=True)

            def stop_baresip():
                stop_process_group(proc)
                out.close()
            self.addCleanup(stop_baresip)

            def baresip_out() -> str:
                return out_path.read_bytes().decode("utf-8", "replace")

            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                text = baresip_out()
                if re.search(r"\b200 OK\b.*\[\d+ binding", text) or "Function not implemented" in text \
                        or re.search(r"reg: .*(failed|Register:)", text) or proc.poll() is not None:
                    break
                time.sleep(0.1)
            time.sleep(0.3)
            text = baresip_out()
            provr = prov.stop() if prov.running() else prov.wait(timeout=5)
            stop_baresip()
            text = baresip_out()

            got_register = find_message(provr.received(), r"^REGISTER ")
            log = sw.log()
            trace = baresip_trace(text)  # baresip -s: what it sent and got
            got_407 = find_message([m for direction, m in trace if direction == "in"], r"^SIP/2\.0 407")
            self.assert407(got_407, "407 as baresip got it", algorithms=algorithms)
            if "Function not implemented" in text and got_register is None:
                # libre 1.x: any non-MD5 challenge aborts the whole authentication
                self.assertRegex(log, r"auth: 407 to REGISTER from \S+ user=- ",
                                 "sipwitness should have challenged baresip")
                return (
                    f"baresip over {transport} with algorithms {list(algorithms)}: baresip "
                    f"{baresip_version()} could not answer sipwitness's 407 ('Register: Function not "
                    "implemented', ENOSYS): its libre rejects the whole challenge when any "
                    "Proxy-Authenticate has an algorithm other than MD5, instead of using the one it "
                    "supports (RFC 8760: use the topmost challenge it supports). Works with algorithms: [MD5].")
            self.assertIsNotNone(got_register,
                                 f"provider got no REGISTER: the 407 was not passed\n--- baresip ---\n{text}\n"
                                 f"{provr.describe()}")
            self.assertSippOk(provr, 1, sw)
            m = re.search(rf"auth: accepted REGISTER from {transport}:127\.0\.0\.1:\d+ user=1001\b", log)
            self.assertIsNotNone(m, f"no 'auth: accepted REGISTER ... user=1001' in the log\n{text}")
            for line in lines_of(got_register):
                if line.lower().startswith("proxy-authorization:"):
                    self.assertNotIn('realm="lab.example"', line, got_register)
            # which algorithm did baresip answer with? (sipwitness's debug trace)
            m = re.search(r"\[Proxy-Authorization Digest username=\"?1001\"? realm=\"?lab\.example\"?([^\]]*)\]", log)
            self.assertIsNotNone(m, "no debug trace of baresip's Proxy-Authorization in the log")
            alg = re.search(r"algorithm=([\w-]+)", m.group(1))
            answered = alg.group(1) if alg else "none given (MD5 by default)"
            sent = [msg for direction, msg in trace if direction == "out" and start_line(msg).startswith("REGISTER ")]
            creds = [v for msg in sent for n, v in headers_of(msg) if n.lower() == "proxy-authorization"]
            self.assertTrue(creds and all('realm="lab.example"' in c for c in creds),
                            f"baresip's Proxy-Authorization (from its trace): {creds}")
            sys.stderr.write(f"\n[baresip {baresip_version()} over {transport}, offered {list(algorithms)}: "
                             f"registered; answered with algorithm {answered}: {creds[0]}] ")
        return None

    def test_baresip_register_udp_md5(self):
        self.baresip("udp", ("MD5",))

    def test_baresip_register_tcp_md5(self):
        self.baresip("tcp", ("MD5",))

    def test_baresip_register_udp_default_algorithms(self):
        self.baresip("udp", ("SHA-256", "MD5"))

    # ======================================================================
    # 5. 407 format, retransmission, ACK absorbed
    def test_407_retransmission_identical(self):
        reg = self.registrar()
        with self.challenger(upstream_port=reg.port) as sw:
            py = self.phone(sw)
            data = py.build("REGISTER", branch=new_branch())
            first = py.transact(data)
            second = py.transact(data)  # same bytes: same branch, same CSeq
            c1 = self.assert407(first, "407")
            c2 = self.assert407(second, "retransmitted 407")
            self.assertEqual(proxy_authenticates(first), proxy_authenticates(second),
                             f"a retransmission must get the identical 407\n--- 1 ---\n{first}\n--- 2 ---\n{second}")
            self.assertEqual(c1[0]["nonce"], c2[0]["nonce"])
            self.assertEqual(header_values(first, "to"), header_values(second, "to"), "same To tag")
            # a new transaction gets a 407 of its own (a new To tag at least)
            third = py.transact(py.build("REGISTER", branch=new_branch()))
            self.assert407(third, "407 to a new transaction")
            self.assertNotRegex(sw.log(), r"\(failure \d+ of", "no failure counted")
            time.sleep(0.3)
            self.assertEqual(reg.messages(), [], "nothing may reach the provider")

    def test_invite_407_ack_absorbed(self):
        reg = self.registrar()
        with self.challenger(upstream_port=reg.port) as sw:
            py = self.phone(sw)
            branch = new_branch()
            sdp = "v=0\r\no=py 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
            invite = py.build("INVITE", branch=branch, body=sdp)
            first = py.transact(invite)
            self.assert407(first, "407 to INVITE")
            second = py.transact(invite)
            self.assert407(second, "407 to the retransmitted INVITE")
            self.assertEqual(proxy_authenticates(first), proxy_authenticates(second))
            to = header_values(first, "to")[0]
            ack = py.build("ACK", branch=branch, cseq=1, to=to)
            py.send(ack)
            extra = py.client.recv(1.0)
            self.assertIsNone(extra, f"the ACK for the 407 must get no answer:\n{extra}")
            # an ACK retransmission too
            py.send(ack)
            self.assertIsNone(py.client.recv(0.5))
            time.sleep(0.3)
            self.assertEqual(reg.messages(), [], "neither the INVITE nor the 407's ACK may reach the provider")
            self.assertTrue(sw.alive())

            # then the INVITE with credentials is forwarded (and only that one)
            ch = challenge_for(first, "SHA-256")
            auth = credentials(ch, user="1001", method="INVITE", uri=f"sip:2000@{REALM}", password="secret1001")
            ok = py.transact(py.build("INVITE", branch=new_branch(), extra=(auth,), body=sdp))
            self.assertEqual(status_code(ok), 200, ok)
            invites = reg.requests("INVITE")
            self.assertEqual(len(invites), 1, "provider: only the authenticated INVITE")
            self.assertFalse(reg.requests("ACK"), "provider: the 407's ACK must never arrive")
            self.assertNotRegex(invites[0], r'(?mi)^Proxy-Authorization:.*realm="lab\.example"')
            self.assertRegex(sw.log(), r"auth: accepted INVITE from udp:127\.0\.0\.1:\d+ user=1001\b")

    def test_two_phones_answer_in_the_same_second(self):
        """Phones challenged at the same moment all answer nc=00000001: each must
        be accepted (a nonce shared between transactions would make all but the
        first look like a replay)."""
        reg = self.registrar()
        with self.challenger(upstream_port=reg.port) as sw:
            phones = [self.phone(sw) for _ in range(3)]
            firsts = [p.transact(p.build("REGISTER", branch=new_branch())) for p in phones]
            answers = []
            for p, first in zip(phones, firsts):
                ch = self.assert407(first, "407")[1]  # MD5
                auth = credentials(ch, user="1001", method="REGISTER", uri=f"sip:{REALM}", password="secret1001")
                answers.append(p.transact(p.build("REGISTER", branch=new_branch(), extra=(auth,))))
            nonces = [challenge_for(f, "MD5")["nonce"] for f in firsts]
            codes = [status_code(a) for a in answers]
            self.assertEqual(codes, [200, 200, 200],
                             f"every phone answering its own 407 with the right password must be accepted; "
                             f"nonces handed out: {nonces}\n" + "\n".join(a or "(none)" for a in answers))
            self.assertEqual(len(reg.requests("REGISTER")), 3)

    def test_forged_answer_does_not_burn_nonce(self):
        """Someone answering a nonce with a wrong response (nc=1) must not make the
        right answer to that nonce a 'replay'."""
        reg = self.registrar()
        with self.challenger(upstream_port=reg.port) as sw:
            attacker, phone = self.phone(sw, "1001"), self.phone(sw, "1001")
            first = phone.transact(phone.build("REGISTER", branch=new_branch()))
            ch = self.assert407(first, "407")[0]
            forged = credentials(ch, user="1001", method="REGISTER", uri=f"sip:{REALM}", password="x",
                                 response="0" * 64)
            bad = attacker.transact(attacker.build("REGISTER", branch=new_branch(), extra=(forged,)))
            self.assertEqual(status_code(bad), 407, bad)
            auth = credentials(ch, user="1001", method="REGISTER", uri=f"sip:{REALM}", password="secret1001")
            ok = phone.transact(phone.build("REGISTER", branch=new_branch(), extra=(auth,)))
            self.assertEqual(status_code(ok), 200,
                             f"a wrong answer from elsewhere used up the nonce count of the phone's nonce:\n{ok}")

    # ======================================================================
    # 6. stale
    def test_unknown_nonce_is_stale(self):
        reg = self.registrar()
        with self.challenger(upstream_port=reg.port) as sw:
            py = self.phone(sw)
            made_up = credentials({"realm": REALM, "nonce": "made-up-nonce-0001", "algorithm": "MD5",
                                   "opaque": "whatever"}, user="1001", method="REGISTER",
                                  uri=f"sip:{REALM}", password="secret1001")
            final = py.transact(py.build("REGISTER", branch=new_branch(), extra=(made_up,)))
            challenges = self.assert407(final, "407 to a made-up nonce", stale=True)
            # the phone retries with the fresh nonce and the same password: accepted
            auth = credentials(challenges[1], user="1001", method="REGISTER", uri=f"sip:{REALM}",
                               password="secret1001")
            ok = py.transact(py.build("REGISTER", branch=new_branch(), extra=(auth,)))
            self.assertEqual(status_code(ok), 200, ok)
            self.assertNotRegex(sw.log(), r"\(failure \d+ of", "a stale nonce is not a failure")
            self.assertEqual(len(reg.requests("REGISTER")), 1)

    def test_expired_nonce_is_stale(self):
        reg = self.registrar()
        with self.challenger(upstream_port=reg.port, nonce_ttl="1s") as sw:
            py = self.phone(sw)
            first = py.transact(py.build("REGISTER", branch=new_branch()))
            challenges = self.assert407(first, "407")
            time.sleep(2.2)
            auth = credentials(challenges[0], user="1001", method="REGISTER", uri=f"sip:{REALM}",
                               password="secret1001")
            final = py.transact(py.build("REGISTER", branch=new_branch(), extra=(auth,)))
            self.assert407(final, "407 to an expired nonce", stale=True)
            self.assertEqual(reg.messages(), [])
            self.assertNotRegex(sw.log(), r"\(failure \d+ of", "an expired nonce is not a failure")

    def test_nonce_count_replay_is_refused(self):
        """The same credentials (same nonce, same nc) in a new transaction: not forwarded."""
        reg = self.registrar()
        with self.challenger(upstream_port=reg.port) as sw:
            py = self.phone(sw)
            first = py.transact(py.build("REGISTER", branch=new_branch()))
            ch = self.assert407(first, "407")[0]
            auth = credentials(ch, user="1001", method="REGISTER", uri=f"sip:{REALM}", password="secret1001")
            ok = py.transact(py.build("REGISTER", branch=new_branch(), extra=(auth,)))
            self.assertEqual(status_code(ok), 200, ok)
            again = py.transact(py.build("REGISTER", branch=new_branch(), extra=(auth,)))
            self.assertEqual(status_code(again), 407, f"replayed nc must be challenged again:\n{again}")
            self.assertEqual(len(reg.requests("REGISTER")), 1, "the replay must not reach the provider")
            # nc=2 on the same nonce is fine (RFC 7616 3.4)
            auth2 = credentials(ch, user="1001", method="REGISTER", uri=f"sip:{REALM}", password="secret1001",
                                nc="00000002")
            ok2 = py.transact(py.build("REGISTER", branch=new_branch(), extra=(auth2,)))
            self.assertEqual(status_code(ok2), 200, ok2)

    def test_unchallenged_methods_pass(self):
        """OPTIONS (not in methods) and an in-dialog INVITE (To tag) pass without a 407."""
        reg = self.registrar()
        with self.challenger(upstream_port=reg.port) as sw:
            py = self.phone(sw)
            ok = py.transact(py.build("OPTIONS", branch=new_branch()))
            self.assertEqual(status_code(ok), 200, ok)
            reinvite = py.build("INVITE", branch=new_branch(), to=f"<sip:2000@{REALM}>;tag=dialog-1")
            ok = py.transact(reinvite)
            self.assertIsNotNone(ok, "in-dialog INVITE got no answer")
            self.assertNotEqual(status_code(ok), 407, f"in-dialog requests are not challenged:\n{ok}")
            self.assertEqual(len(reg.requests("OPTIONS")), 1)

    # ======================================================================
    # 7. SIGHUP reload
    def test_sighup_reload_users(self):
        reg = self.registrar()
        sw = self.challenger(upstream_port=reg.port)
        with sw:
            users = sw.workdir / "users.yaml"
            first, second = self.phone(sw).register("secret1001", "SHA-256")
            self.assertEqual(status_code(second), 200, second)

            users.write_text('users:\n  - { username: "1001", password: "new-secret-1001" }\n')
            reloaded = self.count(sw, r"SIGHUP: reloaded")
            sw.proc.send_signal(signal.SIGHUP)
            self.assertTrue(self.wait_count(sw, r"SIGHUP: reloaded", reloaded + 1),
                            "no 'SIGHUP: reloaded' line after SIGHUP")
            old = self.phone(sw)
            first, second = old.register("secret1001", "SHA-256")
            self.assertEqual(status_code(second), 407, f"old password must fail after the reload:\n{second}")
            self.assertRegex(sw.log(), rf"auth: 407 to REGISTER from udp:\S+ user=1001 "
                                       rf"call-id={re.escape(old.call_id)}: wrong password \(failure 1 of 3\)")
            first, second = self.phone(sw).register("new-secret-1001", "MD5")
            self.assertEqual(status_code(second), 200, f"new password must work after the reload:\n{second}")

            users.write_text('users:\n  - { username: "1001", password: "broken\n  - [\n')
            sw.proc.send_signal(signal.SIGHUP)
            m = sw.wait_for_log(r"SIGHUP: kept the running users: (.*)", timeout=5)
            self.assertIsNotNone(m, "no 'SIGHUP: kept the running users' line for a broken users file")
            self.assertRegex(m.group(1), r"users\.yaml:\d+:\d+", "the reason should name file:line:col")
            first, second = self.phone(sw).register("new-secret-1001", "SHA-256")
            self.assertEqual(status_code(second), 200, f"the running users must be kept:\n{second}")
            old = self.phone(sw)
            first, second = old.register("secret1001", "MD5")
            self.assertEqual(status_code(second), 407, second)
            # the source's second failure: successes in between do not clear its count
            self.assertRegex(sw.log(), rf"user=1001 call-id={re.escape(old.call_id)}: wrong password "
                                       rf"\(failure 2 of 3\)")
            self.assertTrue(sw.alive())
            self.assertEqual(len(reg.requests("REGISTER")), 3)

    def wait_count(self, sw: Sipwitness, pattern: str, n: int, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count(sw, pattern) >= n:
                return True
            time.sleep(0.05)
        return False


def fail2ban_filter() -> tuple[str, str]:
    """The README's sample filter as Python regexes: (failregex with <HOST>
    as a group named host, datepattern)."""
    readme = (HERE.parent.parent / "README.md").read_text()
    failregex = re.search(r"(?m)^failregex = (.+)$", readme)[1]
    datepattern = re.search(r"(?m)^datepattern = (.+)$", readme)[1].replace("%%", "%")
    for directive, regex in (("%Y", r"\d{4}"), ("%m", r"\d{2}"), ("%d", r"\d{2}"), ("%H", r"\d{2}"),
                             ("%M", r"\d{2}"), ("%S", r"\d{2}"), ("%f", r"\d{1,6}")):
        datepattern = datepattern.replace(directive, regex)
    return failregex.replace("<HOST>", r"(?P<host>[0-9A-Fa-f.:]+)"), datepattern


def baresip_trace(text: str) -> list[tuple[str, str]]:
    """Messages from baresip's -s trace: ("out" | "in", message)."""
    out = []
    for m in re.finditer(r"^(?:UDP|TCP|TLS) (\S+) -> (\S+)\r?\n(.*?)(?=\r?\n\r?\n|\x1b\[)", text, re.M | re.S):
        src, dst, msg = m.groups()
        direction = "out" if src.endswith(f":{_baresip_port(text)}") else "in"
        out.append((direction, msg.replace("\r\n", "\n").replace("\n", "\r\n") + "\r\n\r\n"))
    return out


def _baresip_port(text: str) -> str:
    # the first traced message is baresip's own REGISTER: its source is baresip
    m = re.search(r"^(?:UDP|TCP|TLS) \S+:(\d+) -> ", text, re.M)
    return m.group(1) if m else ""


def baresip_version() -> str:
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "baresip-core"], capture_output=True,
                             text=True, timeout=5).stdout.strip()
        re_version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "libre0"], capture_output=True,
                                    text=True, timeout=5).stdout.strip()
        return f"{out or '?'} (libre {re_version or '?'})"
    except (OSError, subprocess.SubprocessError):
        return "?"


if __name__ == "__main__":
    unittest.main()
