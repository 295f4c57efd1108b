#!/usr/bin/env python3
"""End-to-end: diag.capture, the pcap of everything sipwitness relays.

    digest_uac / SIPp ──▶ sipwitness (diag.capture: relayed.pcap) ──▶ Kamailio
       (phone)        ◀──            (diag.verdict_log)            ◀──

The verdict scenarios of test_verdicts.py run again with diag.capture set:
ok_after_challenge, wrong_password, realm_mismatch, nonce_expired (stale=true),
no_credentials, an ALG in front of sipwitness rewriting the digest uri= the
phone hashed (uri_mismatch), and a SIPp phone over TCP (ok_after_challenge,
then a wrong password on a second connection). After sipwitness stops on SIGTERM:

1. The capture is read here by hand (pcap is a tiny format): magic, version,
   LINKTYPE_RAW (101), at least one record; every packet an IPv4 UDP or TCP
   packet whose checksums hold, with sipwitness's socket at one end. Each
   message crossed sipwitness once in each direction it went: the phone's
   REGISTER arrives from the phone's address and leaves toward Kamailio with
   sipwitness's Via on top (the bytes really sent); TCP segments follow one
   another in sequence, per direction, with the other direction's acknowledged.
2. `sipwitness analyze CAPTURE --format json` gives the verdicts the live
   verdict log has: same call_id, method, verdict, user, challenges and
   final_status for every flow.

SIPWITNESS_WRITE_CORPUS=DIR copies each scenario's capture to DIR/<name>.pcap
with DIR/<name>.expected.json (those fields of the live verdicts), before step
2, so the corpus can be made before `analyze` exists:

    SIPWITNESS_WRITE_CORPUS=tests/data/captures SIPWITNESS_BIN=build/sipwitness \\
        DIGEST_UAC_BIN=build/digest_uac python3 tests/e2e/test_capture.py -v

E2E_KEEP=1 keeps the per-test directories (capture, verdict file, logs).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import unittest
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "kamailio"))

import harness  # noqa: E402  (tests/e2e/harness.py)
import kam  # noqa: E402      (tests/e2e/kamailio/kam.py)
import test_verdicts as tv  # noqa: E402  (the verdict scenarios this file captures)

COMPARED = ("call_id", "method", "verdict", "user", "challenges", "final_status")
CAPTURE_NAME = "relayed.pcap"  # relative: resolved from the config file's folder
LINKTYPE_RAW = 101
ANALYZE_TIMEOUT_S = 60
SIPP_TIMEOUT_S = 20


# --------------------------------------------------------------------------
# pcap, read by hand


class Packet:
    """One record: an IPv4 UDP datagram or TCP segment."""

    def __init__(self, time: float, proto: str, src: tuple[str, int], dst: tuple[str, int],
                 payload: bytes, seq: int = 0, ack: int = 0, flags: int = 0):
        self.time, self.proto, self.src, self.dst = time, proto, src, dst
        self.payload, self.seq, self.ack, self.flags = payload, seq, ack, flags

    def text(self) -> str:
        return self.payload.decode("utf-8", "replace")

    def __repr__(self) -> str:
        first = harness.start_line(self.text()) if self.payload else ""
        return f"{self.proto} {self.src[0]}:{self.src[1]} -> {self.dst[0]}:{self.dst[1]} {first!r}"


def ones_sum(data: bytes, total: int = 0) -> int:
    """RFC 1071: the receiver's check sums every word, checksum included, to 0xffff."""
    if len(data) % 2:
        data += b"\0"
    total += sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def read_pcap(path: Path) -> tuple[dict, list[Packet]]:
    """(file header fields, packets); raises AssertionError on anything malformed."""
    data = path.read_bytes()
    if len(data) < 24:
        raise AssertionError(f"{path}: {len(data)} bytes, shorter than a pcap header")
    magic = data[:4]
    if magic == b"\xd4\xc3\xb2\xa1":
        end = "<"
    elif magic == b"\xa1\xb2\xc3\xd4":
        end = ">"
    else:
        raise AssertionError(f"{path}: not a microsecond pcap (magic {magic.hex()})")
    major, minor, _zone, _sigfigs, snaplen, linktype = struct.unpack(end + "HHiIII", data[4:24])
    header = {"version": (major, minor), "snaplen": snaplen, "linktype": linktype}
    packets, off = [], 24
    while off < len(data):
        if off + 16 > len(data):
            raise AssertionError(f"{path}: truncated record header at offset {off}")
        sec, usec, caplen, length = struct.unpack(end + "IIII", data[off:off + 16])
        off += 16
        if caplen > snaplen or caplen != length or off + caplen > len(data):
            raise AssertionError(f"{path}: bad record at offset {off - 16}: "
                                 f"caplen={caplen} len={length} snaplen={snaplen}")
        packets.append(decode_ipv4(data[off:off + caplen], sec + usec / 1e6, off - 16))
        off += caplen
    return header, packets


def decode_ipv4(p: bytes, time: float, where: int) -> Packet:
    what = f"record at offset {where}"
    if len(p) < 20 or p[0] >> 4 != 4:
        raise AssertionError(f"{what}: not IPv4 ({p[:1].hex()})")
    ihl = (p[0] & 15) * 4
    total, _ident, frag, _ttl, proto = struct.unpack("!HHHBB", p[2:10])
    if total != len(p) or frag & 0x3FFF:
        raise AssertionError(f"{what}: total length {total} of {len(p)} bytes, flags/offset {frag:#x}")
    if ones_sum(p[:ihl]) != 0xFFFF:
        raise AssertionError(f"{what}: bad IPv4 header checksum")
    src, dst = ".".join(map(str, p[12:16])), ".".join(map(str, p[16:20]))
    seg = p[ihl:]
    pseudo = p[12:20] + struct.pack("!BBH", 0, proto, len(seg))
    if ones_sum(seg, ones_sum(pseudo)) != 0xFFFF:
        raise AssertionError(f"{what}: bad {proto} checksum")
    if proto == 17:
        sport, dport, ulen = struct.unpack("!HHH", seg[:6])
        if ulen != len(seg):
            raise AssertionError(f"{what}: UDP length {ulen} of {len(seg)} bytes")
        return Packet(time, "udp", (src, sport), (dst, dport), seg[8:])
    if proto == 6:
        sport, dport, seq, ack, off_byte, flags = struct.unpack("!HHIIBB", seg[:14])
        return Packet(time, "tcp", (src, sport), (dst, dport), seg[(off_byte >> 4) * 4:], seq, ack, flags)
    raise AssertionError(f"{what}: IP protocol {proto}")


def addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


# --------------------------------------------------------------------------
# the tests


class CaptureTest(tv._Base):
    """One scenario per test: its own Kamailio, sipwitness and capture."""

    def setUp(self):
        super().setUp()
        self.capture_path = self.tmp / "sipwitness" / CAPTURE_NAME

    def diag_config(self, known: Path | None = None, flow_timeout: int = tv.FLOW_TIMEOUT_S) -> str:
        return super().diag_config(known, flow_timeout) + f"  capture: {CAPTURE_NAME}\n"

    # ---- UDP: digest_uac, as in test_verdicts.py ------------------------------

    def test_normal(self):
        rec, u, _ = self.run_flow(expect_exit=0)
        self.assertEqual(rec["verdict"], "ok_after_challenge", json.dumps(rec))
        self.check_udp_flow(u)
        self.check_capture("normal")

    def test_wrong_password(self):
        rec, u, _ = self.run_flow(password="not-the-password", expect_exit=3)
        self.assertEqual(rec["verdict"], "wrong_password", json.dumps(rec))
        self.check_udp_flow(u)
        self.check_capture("wrong_password")

    def test_realm_mismatch(self):
        rec, u, _ = self.run_flow("--answer-realm", "other.test", expect_exit=3)
        self.assertEqual(rec["verdict"], "realm_mismatch", json.dumps(rec))
        self.check_udp_flow(u)
        self.check_capture("realm_mismatch")

    def test_nonce_expired(self):
        rec, u, _ = self.run_flow("--delay-answer", str(tv.LATE_ANSWER_S), expect_exit=3,
                                  kam_kw={"nonce_expire": tv.NONCE_EXPIRE_S, "stale_on_expiry": True},
                                  flow_timeout=tv.LATE_FLOW_TIMEOUT_S)
        self.assertEqual(rec["verdict"], "nonce_expired", json.dumps(rec))
        self.check_udp_flow(u)
        self.check_capture("nonce_expired")

    def test_no_credentials(self):
        rec, u, _ = self.run_flow("--no-answer", expect_exit=4)
        self.assertEqual(rec["verdict"], "no_credentials", json.dumps(rec))
        self.check_udp_flow(u)
        self.check_capture("no_credentials")

    def test_alg_rewrite(self):
        """An ALG between phone and sipwitness adds the port to the digest uri=
        the phone already hashed: Kamailio rejects the answer, and sipwitness,
        seeing uri= differ from the Request-URI, names it (uri_mismatch)."""
        k = self.start_kamailio()
        with self.start_sipwitness(k.uri, None, tv.FLOW_TIMEOUT_S) as sw:
            self.sw = sw
            realm = tv.REALM.encode()
            old, new = b'uri="sip:' + realm + b'"', b'uri="sip:' + realm + b':5060"'
            alg = harness.AlgRelay((harness.HOST, sw.udp_port), there=lambda data: data.replace(old, new))
            self.addCleanup(alg.close)
            u = self.uac(alg.port)
            self.assertEqual(u.returncode, 3, u.describe() + self.context())
            rec, _ = self.wait_verdict(u.call_id)
        self.finish(sw, rec, u)
        self.assertGreater(alg.rewrites, 0)
        self.assertEqual((rec["verdict"], rec["final_status"]), ("uri_mismatch", 401), json.dumps(rec))
        self.assertEqual(rec["evidence"]["digest_uri"], f"sip:{tv.REALM}:5060", json.dumps(rec))
        self.assertEqual(rec["evidence"]["request_uri"], f"sip:{tv.REALM}", json.dumps(rec))
        _, packets = read_pcap(self.capture_path)
        sent = len(re.findall(r"^sent: ", u.stdout, re.M))
        received = len(re.findall(r"^received: ", u.stdout, re.M))
        self.check_relayed(packets, alg.address, "udp", sent, received)
        self.check_capture("alg_rewrite")

    # ---- TCP: a SIPp phone, relayed to Kamailio over UDP ----------------------

    def test_tcp(self):
        k = self.start_kamailio()
        runs = []
        with self.sipwitness(upstream_uri=k.uri, listen=("udp", "tcp"), level="debug",
                             extra_config=self.diag_config()) as sw:
            self.sw = sw
            for scenario, password in (("phone_register.xml", tv.PASSWORD),
                                       ("phone_register_rejected.xml", "not-the-password")):
                r = self.run_sipp(str(kam.SCENARIOS / scenario), (harness.HOST, sw.tcp_port),
                                  transport="tcp", name=scenario.split(".")[0], service=tv.USER,
                                  timeout=SIPP_TIMEOUT_S, keys={"aor_domain": tv.REALM, "expires": "300"},
                                  extra_args=["-au", tv.USER, "-ap", password, "-auth_uri", tv.REALM])
                self.assertSippOk(r, 1, sw)
                call_id = harness.header_values(r.sent()[0], "call-id")[0]
                rec, _ = self.wait_verdict(call_id)
                runs.append((r, rec))
        self.assertEqual([rec["verdict"] for _, rec in runs], ["ok_after_challenge", "wrong_password"],
                         self.context())
        _, packets = read_pcap(self.capture_path)
        for r, rec in runs:
            phone = next(p.src for p in packets if p.proto == "tcp" and rec["call_id"] in p.text())
            self.check_relayed(packets, phone, "tcp", len(r.sent()), len(r.received()))
        self.check_tcp_streams([p for p in packets if p.proto == "tcp"])
        self.check_capture("tcp")

    # ---- what the capture must hold -------------------------------------------

    def check_udp_flow(self, u: tv.Uac) -> None:
        _, packets = read_pcap(self.capture_path)
        sent = len(re.findall(r"^sent: ", u.stdout, re.M))
        received = len(re.findall(r"^received: ", u.stdout, re.M))
        self.assertGreater(sent, 0, u.describe())
        self.check_relayed(packets, addr(u.source), "udp", sent, received)

    def check_relayed(self, packets: list[Packet], phone: tuple[str, int], proto: str,
                      phone_sent: int, phone_received: int) -> None:
        """What the phone sent arrived from its address and left toward
        Kamailio with our Via on top; what came back went to the phone."""
        assert self.sw is not None and self.kam is not None
        ctx = "\n".join(map(repr, packets)) + self.context()
        me = (harness.HOST, self.sw.port(proto))
        upstream_side = (harness.HOST, self.sw.udp_port)
        kamailio = (harness.HOST, self.kam.port)
        from_phone = [p for p in packets if p.src == phone and p.dst == me and p.payload]
        to_phone = [p for p in packets if p.src == me and p.dst == phone and p.payload]
        to_kam = [p for p in packets if p.src == upstream_side and p.dst == kamailio]
        from_kam = [p for p in packets if p.src == kamailio and p.dst == upstream_side]
        self.assertEqual(len(from_phone), phone_sent, "phone -> sipwitness" + ctx)
        self.assertEqual(len(to_phone), phone_received, "sipwitness -> phone" + ctx)
        call_id = harness.header_values(from_phone[0].text(), "call-id")[0]
        to_kam = [p for p in to_kam if call_id in p.text()]
        from_kam = [p for p in from_kam if call_id in p.text()]
        self.assertEqual(len(to_kam), phone_sent, "sipwitness -> Kamailio" + ctx)
        self.assertEqual(len(from_kam), phone_received, "Kamailio -> sipwitness" + ctx)
        our_via = f"SIP/2.0/UDP {harness.HOST}:{self.sw.udp_port};"
        for arrived, forwarded in zip(from_phone, to_kam):
            self.assertFalse(harness.header_values(arrived.text(), "via")[0].startswith(our_via), ctx)
            vias = harness.header_values(forwarded.text(), "via")
            self.assertTrue(vias[0].startswith(our_via), f"forwarded Via: {vias}" + ctx)
        for p in packets:
            self.assertIn(me if p.proto == proto else upstream_side, (p.src, p.dst), f"{p!r}" + ctx)

    def check_tcp_streams(self, segments: list[Packet]) -> None:
        """A connection opens with a SYN each way (SYN, then SYN|ACK); then per
        direction each segment starts where the last one ended and
        acknowledges everything the other direction has sent so far."""
        self.assertTrue(segments, "no TCP segment in the capture")
        next_seq: dict[tuple, int] = {}
        for p in segments:
            ctx = f"\n{p!r}\n" + "\n".join(map(repr, segments))
            key, back = (p.src, p.dst), (p.dst, p.src)
            if p.flags & 0x02:
                self.assertNotIn(key, next_seq, "a second SYN" + ctx)
                self.assertEqual(p.payload, b"", "SYN with data" + ctx)
                self.assertEqual(p.flags, 0x12 if back in next_seq else 0x02, "SYN, then SYN|ACK" + ctx)
                if back in next_seq:
                    self.assertEqual(p.ack, next_seq[back], "acknowledgment number" + ctx)
                next_seq[key] = (p.seq + 1) % 2**32
                continue
            self.assertEqual(p.flags, 0x18, "PSH|ACK" + ctx)
            self.assertIn(key, next_seq, "data before the SYN" + ctx)
            self.assertEqual(p.seq, next_seq[key], "sequence number" + ctx)
            self.assertEqual(p.ack, next_seq[back], "acknowledgment number" + ctx)
            next_seq[key] = (p.seq + len(p.payload)) % 2**32

    def check_capture(self, name: str) -> None:
        """The pcap is whole and valid; (corpus); analyze agrees with the live log."""
        header, packets = read_pcap(self.capture_path)
        self.assertEqual(header["version"], (2, 4))
        self.assertEqual(header["linktype"], LINKTYPE_RAW)
        self.assertGreater(len(packets), 0)
        self.assertNotIn("diag.capture", self.sw.log() if self.sw else "", "capture warnings in the log")
        live = sorted(({k: r.get(k) for k in COMPARED} for r in self.records()), key=json.dumps)
        self.assertTrue(live, "no live verdicts" + self.context())

        corpus = os.environ.get("SIPWITNESS_WRITE_CORPUS")
        if corpus:
            out = Path(corpus)
            out.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.capture_path, out / f"{name}.pcap")
            (out / f"{name}.expected.json").write_text(json.dumps(live, indent=2) + "\n")

        argv = [harness.sipwitness_binary(), "analyze", str(self.capture_path), "--format", "json"]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=ANALYZE_TIMEOUT_S,
                              stdin=subprocess.DEVNULL)
        ctx = (f"\n$ {' '.join(argv)}\nexit {proc.returncode}\n--- stdout ---\n{proc.stdout}"
               f"--- stderr ---\n{proc.stderr}")
        self.assertEqual(proc.returncode, 0, "analyze failed" + ctx)
        offline = []
        for line in proc.stdout.splitlines():
            if line.strip():
                try:
                    offline.append(json.loads(line))
                except ValueError:
                    self.fail(f"analyze printed a line that is not JSON: {line!r}" + ctx)
        offline = sorted(({k: r.get(k) for k in COMPARED} for r in offline), key=json.dumps)
        self.assertEqual(offline, live, "analyze and the live verdict log disagree" + ctx)


class CaptureStartupTest(harness.E2ETestCase):
    def test_unwritable_capture_fails_at_start(self):
        sw = self.sipwitness(upstream_port=harness.free_port("udp"), listen=("udp",),
                             extra_config="diag:\n  capture: no-such-dir/relayed.pcap\n")
        sw.config_path.write_text(sw.config_text())
        proc = subprocess.run([sw.binary, "run", "--config", str(sw.config_path)], capture_output=True,
                              text=True, timeout=harness.READY_TIMEOUT, stdin=subprocess.DEVNULL,
                              cwd=sw.workdir)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertRegex(proc.stderr, r"diag\.capture: cannot open \S*no-such-dir/relayed\.pcap: "
                         r"No such file or directory")


if __name__ == "__main__":
    unittest.main(verbosity=2)
