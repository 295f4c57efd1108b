#!/usr/bin/env python3
"""End-to-end: lab mode (lab.role inner / outer) catches devices that rewrite SIP.

Emulated broken ALGs, on loopback (AlgRelay below stands for the router):

    digest_uac ─▶ sipwitness inner ─▶ AlgRelay ─▶ sipwitness outer ─▶ Kamailio
     (phone)      seals what it sends  rewrites    checks, strips       (kam.test,
                  checks what returns  one field   seals what returns   checks digests)

Each test makes the relay rewrite one thing the way real ALGs do (the digest
uri=, the quoting of the Authorization, the realm of the WWW-Authenticate on
the way back, or strip the seal; harness.AlgRelay) and checks that the sipwitness on the far side
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

import contextlib
import json
import re
import signal
import socket
import struct
import subprocess
import sys
import time
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

    @contextlib.contextmanager
    def lab(self, there: Rewrite | None = None, back: Rewrite | None = None):
        """Kamailio, outer, the relay and inner, running; yields (inner, outer, relay)."""
        k = self.start_kamailio()
        outer = self.sipwitness(upstream_uri=k.uri, listen=("udp",), workdir=str(self.tmp / "outer"),
                                extra_config=self.lab_config("outer", self.outer_verdicts))
        with outer:
            relay = harness.AlgRelay((harness.HOST, outer.udp_port), there, back)
            self.addCleanup(relay.close)
            inner = self.sipwitness(upstream_uri=f"sip:{harness.HOST}:{relay.port};transport=udp",
                                    listen=("udp",), workdir=str(self.tmp / "inner"),
                                    extra_config=self.lab_config("inner", self.inner_verdicts))
            with inner:
                self.sw = inner
                yield inner, outer, relay

    def run_lab(self, there: Rewrite | None = None, back: Rewrite | None = None, expect_exit: int = 0,
                password: str = tv.PASSWORD):
        """One REGISTER flow through inner, relay, outer to Kamailio; returns the
        uac run, the logs and verdicts of both sides, and what the relay carried."""
        with self.lab(there, back) as (inner, outer, relay):
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


# --------------------------------------------------------------------------
# the kernel's SIP ALG, in a NAT lab


def udp_payloads(pcap: Path) -> list[tuple[str, int, str, int, bytes]]:
    """(src ip, src port, dst ip, dst port, payload) of every IPv4 UDP packet in
    a classic pcap of an Ethernet interface (what tcpdump -w writes here)."""
    data = pcap.read_bytes()
    endian = "<" if data[:4] == b"\xd4\xc3\xb2\xa1" else ">"
    out, offset = [], 24
    while offset + 16 <= len(data):
        _, _, caplen, _ = struct.unpack(endian + "IIII", data[offset:offset + 16])
        frame = data[offset + 16:offset + 16 + caplen]
        offset += 16 + caplen
        if len(frame) < 34 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
            continue
        ihl = (frame[14] & 0x0F) * 4
        udp = frame[14 + ihl:]
        src, dst = socket.inet_ntoa(frame[26:30]), socket.inet_ntoa(frame[30:34])
        sport, dport, length = struct.unpack(">HHH", udp[:6])
        out.append((src, sport, dst, dport, udp[8:length]))
    return out


def header_lines(message: bytes) -> list[str]:
    head = message.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace").split("\r\n")
    return [line for line in head[1:] if not line.lower().startswith("x-sipwitness-seal:")]


class KernelAlgLab(unittest.TestCase):
    """inner sipwitness and a SIPp phone in the phone namespace, the router
    NATs (with or without the kernel's SIP helper), outer sipwitness and a
    SIPp registrar in the provider namespace; both ends captured with tcpdump."""

    def setUp(self):
        import netlab
        self.lab = netlab.NetLab()
        self.lab.__enter__()  # raises SkipTest with the reason when namespaces are unavailable
        self.addCleanup(self.lab.__exit__, None, None, None)
        self.dir = self.lab.workdir
        (self.dir / "lab.key").write_text(LAB_KEY + "\n")
        self.binary = harness.sipwitness_binary()

    def start_sipwitness(self, ns: str, name: str, ip: str, upstream: str, role: str) -> subprocess.Popen:
        config = self.dir / f"{name}.yaml"
        config.write_text(
            "listen:\n"
            f"  - {{ transport: udp, host: {ip}, port: 5060 }}\n"
            f"  - {{ transport: tcp, host: {ip}, port: 5060 }}\n"
            f'upstream: {{ uri: "{upstream}" }}\n'
            f'lab: {{ role: {role}, key_file: lab.key }}\n'
            f'diag: {{ verdict_log: {name}.jsonl, flow_timeout: 2s }}\n'
            "log: { level: info }\n")
        log = open(self.dir / f"{name}.log", "wb")
        self.addCleanup(log.close)
        proc = self.lab.popen(ns, [self.binary, "run", "--config", str(config)], stdout=log,
                              stderr=subprocess.STDOUT, cwd=self.dir)
        deadline = time.monotonic() + harness.READY_TIMEOUT
        while "ready:" not in self.log(name):
            if proc.poll() is not None or time.monotonic() > deadline:
                self.fail(f"{name} not ready:\n{self.log(name)}")
            time.sleep(0.05)
        return proc

    def log(self, name: str) -> str:
        return (self.dir / f"{name}.log").read_text(errors="replace")

    def stop_sipwitness(self, proc: subprocess.Popen, name: str) -> str:
        self.assertEqual(self.lab.stop(proc, timeout=10), 0, self.log(name))
        text = self.log(name)
        for marker in ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer"):
            self.assertNotIn(marker, text)
        return text

    def register(self) -> subprocess.CompletedProcess:
        """A SIPp phone REGISTERs with digest credentials through inner, router and outer."""
        lab = self.lab
        provider = lab.popen("provider", [
            harness.SIPP, "-sf", str(harness.SCENARIO_DIR / "provider_registrar_challenge.xml"), "-t", "u1",
            "-i", lab.provider_ip, "-p", "5070", "-m", "1", "-timeout", "20s", "-nostdin",
            "-trace_msg", "-message_file", str(self.dir / "provider.msg")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.dir)
        time.sleep(0.3)
        phone = lab.exec("phone", [
            harness.SIPP, f"{lab.phone_ip}:5060", "-sf", str(harness.SCENARIO_DIR / "phone_register_challenge.xml"),
            "-t", "u1", "-i", lab.phone_ip, "-p", "5062", "-m", "1", "-timeout", "20s", "-timeout_error",
            "-recv_timeout", "10000", "-nostdin", "-trace_msg", "-message_file", str(self.dir / "phone.msg")],
            timeout=40, cwd=self.dir)
        self.assertEqual(phone.returncode, 0, f"SIPp phone failed: {phone.stdout[-3000:]}")
        lab.stop(provider)
        for trace in ("provider.msg", "phone.msg"):  # neither end ever sees a seal
            self.assertNotIn("X-Sipwitness-Seal", (self.dir / trace).read_text(errors="replace"))
        return phone

    def probe(self, transport: str) -> tuple[int, list[dict], str]:
        out = self.lab.exec("phone", [self.binary, "probe", "--target", f"{self.lab.provider_ip}:5060",
                                      "--transport", transport, "--key-file", str(self.dir / "lab.key"),
                                      "--format", "json"], timeout=60, cwd=self.dir)
        findings = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
        return out.returncode, findings, out.stdout + out.stderr

    def run_lab(self, helper: bool):
        lab = self.lab
        if helper:
            lab.set_sip_helper(True, protocols=("udp", "tcp"))
        sent_pcap, arrived_pcap = self.dir / "phone.pcap", self.dir / "provider.pcap"
        dumps = [lab.capture("phone", "eth0", sent_pcap), lab.capture("provider", "eth0", arrived_pcap)]
        outer = self.start_sipwitness("provider", "outer", lab.provider_ip, f"sip:{lab.provider_ip}:5070", "outer")
        inner = self.start_sipwitness("phone", "inner", lab.phone_ip, f"sip:{lab.provider_ip}:5060", "inner")
        self.register()
        time.sleep(0.5)
        for dump in dumps:
            lab.stop(dump, signal.SIGINT)
        inner_log = self.stop_sipwitness(inner, "inner")
        outer_log = self.stop_sipwitness(outer, "outer")
        # What really changed on the wire, request by request: the REGISTERs
        # inner sent, against the REGISTERs outer received.
        sent = [p for p in udp_payloads(sent_pcap) if p[3] == 5060 and p[4].startswith(b"REGISTER")]
        arrived = [p for p in udp_payloads(arrived_pcap) if p[3] == 5060 and p[4].startswith(b"REGISTER")]
        self.assertEqual(len(sent), 2, "two REGISTERs sent")
        self.assertEqual(len(arrived), 2, "two REGISTERs arrived")
        changed = set()
        for s_msg, a_msg in zip(sent, arrived):
            for s_line, a_line in zip(header_lines(s_msg[4]), header_lines(a_msg[4])):
                if s_line != a_line:
                    changed.add(s_line.split(":", 1)[0])
        reported = set(re.findall(r"alg: udp [\d.]+: rewrites (\S+?)(?: #\d+)?:", outer_log))
        return changed, reported, inner_log, outer_log, arrived

    def verdict(self, name: str) -> dict:
        lines = (self.dir / f"{name}.jsonl").read_text().splitlines()
        self.assertEqual(len(lines), 1, lines)
        return json.loads(lines[0])

    def test_kernel_helper_rewrites_exactly_what_the_seals_report(self):
        changed, reported, inner_log, outer_log, arrived = self.run_lab(helper=True)
        self.assertIn("Via", changed, "the kernel rewrites the top Via (the NAT tuple)")
        self.assertEqual(reported, changed, outer_log)
        self.assertNotIn("Authorization", changed)
        self.assertNotIn("Authorization", reported)  # zero false positives on the credentials
        self.assertEqual(self.verdict("outer")["verdict"], "ok_after_challenge")
        self.assertEqual(self.verdict("inner")["verdict"], "ok_after_challenge")
        self.assertIn(f"rewrites Via: sent \"SIP/2.0/UDP {self.lab.phone_ip}:5060;branch=", outer_log)
        self.assertRegex(outer_log, r"alg report: udp 203\.0\.113\.1: 2 sealed messages, 2 rewritten \([^)]*Via 2\)")

    def test_probe_sees_the_kernel_helper(self):
        lab = self.lab
        outer = self.start_sipwitness("provider", "outer", lab.provider_ip, f"sip:{lab.provider_ip}:5070", "outer")
        rc, findings, output = self.probe("all")
        self.assertEqual(rc, 0, output)  # no helper: nothing rewritten, both transports answered
        self.assertEqual(findings, [], output)
        lab.set_sip_helper(True, protocols=("udp", "tcp"))
        rc, findings, output = self.probe("all")
        self.stop_sipwitness(outer, "outer")
        self.assertEqual(rc, 3, output)
        fields = {(f["transport"], f["message"], f["field"]) for f in findings}
        # The kernel rewrites the prober's own address:port, the NAT tuple, where it looks for it.
        for transport in ("udp", "tcp"):
            self.assertIn((transport, "REGISTER", "Via"), fields, output)
            self.assertIn((transport, "REGISTER", "Contact"), fields, output)
        self.assertFalse([f for f in findings if f["field"].startswith("Authorization")], output)
        for f in findings:
            self.assertEqual(set(f), {"transport", "message", "direction", "field", "sent", "arrived"}, f)
            if f["field"] == "Via" and f["direction"] == "there":
                self.assertIn(lab.phone_ip, f["sent"])
                self.assertIn(lab.router_public_ip, f["arrived"])

    def test_no_helper_nothing_rewritten(self):
        changed, reported, inner_log, outer_log, arrived = self.run_lab(helper=False)
        self.assertEqual(changed, set())
        self.assertEqual(reported, set(), outer_log)
        self.assertRegex(outer_log, r"alg report: udp 203\.0\.113\.1: 2 sealed messages, 0 rewritten, 0 unsealed")
        self.assertEqual(self.verdict("outer")["verdict"], "ok_after_challenge")


class ProbeCommandLine(harness.E2ETestCase):
    def probe(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([harness.sipwitness_binary(), "probe", *args], capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL, cwd=self.tmp)

    def test_no_answer_exits_1(self):
        (self.tmp / "lab.key").write_text(LAB_KEY)
        port = harness.free_port("both")  # nothing listens there
        out = self.probe("--target", f"{harness.HOST}:{port}", "--key-file", "lab.key", "--timeout", "0.5")
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        self.assertIn("result:", out.stdout)

    def test_key_is_required_and_checked(self):
        out = self.probe("--target", f"{harness.HOST}:5060")
        self.assertEqual(out.returncode, 2, out.stderr)
        self.assertIn("--key-file is required", out.stderr)
        (self.tmp / "short.key").write_text("short")
        out = self.probe("--target", f"{harness.HOST}:5060", "--key-file", "short.key")
        self.assertEqual(out.returncode, 2, out.stderr)
        self.assertIn("at least 16 bytes", out.stderr)
        out = self.probe("--target", "nowhere", "--key-file", "short.key")
        self.assertEqual(out.returncode, 2, out.stderr)
        self.assertIn("expected HOST:PORT", out.stderr)

    def test_loopback_outer_nothing_rewritten_and_another_key(self):
        (self.tmp / "lab.key").write_text(LAB_KEY)
        (self.tmp / "other.key").write_text("another key, 16 bytes or more")
        sw = self.sipwitness(upstream_port=harness.free_port("udp"), listen=("udp", "tcp"),
                             extra_config=f'lab: {{ role: outer, key_file: "{self.tmp / "lab.key"}" }}\n')
        with sw:
            out = self.probe("--target", f"{harness.HOST}:{sw.udp_port}", "--transport", "udp",
                             "--key-file", "lab.key")
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            self.assertIn("REGISTER: nothing rewritten", out.stdout)
            self.assertIn("result: nothing rewritten (exit 0)", out.stdout)
            tcp = self.probe("--target", f"{harness.HOST}:{sw.tcp_port}", "--transport", "tcp",
                             "--key-file", "lab.key", "--format", "json")
            self.assertEqual(tcp.returncode, 0, tcp.stdout + tcp.stderr)
            self.assertEqual(tcp.stdout.strip(), "")
            wrong = self.probe("--target", f"{harness.HOST}:{sw.udp_port}", "--transport", "udp",
                               "--key-file", "other.key", "--timeout", "1")
            self.assertEqual(wrong.returncode, 3, wrong.stdout + wrong.stderr)
            self.assertIn("X-Sipwitness-Seal", wrong.stdout)
            self.assertIn("lab: probe REGISTER", sw.log())
        self.assertNotIn("-> upstream", sw.log())  # probes are answered, never relayed


class LabConfig(harness.E2ETestCase):
    def check_refused(self, config: str, message: str) -> None:
        cfg = self.tmp / "lab.yaml"
        cfg.write_text(config)
        out = subprocess.run([harness.sipwitness_binary(), "run", "--config", str(cfg), "--check"],
                             capture_output=True, text=True, timeout=10)
        self.assertEqual(out.returncode, 2, out.stderr)
        self.assertIn(message, out.stderr)

    def test_role_without_key_is_a_config_error(self):
        self.check_refused("lab: { role: outer }\n", "lab.yaml:1:6: lab.key_file: required with lab.role")

    def test_short_key_is_refused(self):
        (self.tmp / "short.key").write_text("short\n")
        self.check_refused("lab: { role: inner, key_file: short.key }\n",
                           "short.key: lab.key_file: the key must be at least 16 bytes")


if __name__ == "__main__":
    unittest.main(verbosity=2)
