#!/usr/bin/env python3
"""End-to-end: `sipwitness analyze` on real captures made here, and on the
capture corpus in tests/data/captures/.

AnalyzeLab makes the captures itself, in a network namespace of its own whose
loopback has a small MTU (576; the root namespace is never touched):

    tcpdump -i lo ─▶ capture.pcap
    SIPp phone ──REGISTER / INVITE (1.6 KB SDP)──▶ SIPp provider
               ◀──401, 200 / 401, 401──────────   (analyze_lab_provider.xml)

Four flows per capture, each in its own SIPp run with a fixed Call-ID:
1001 registers with the right password (401, then 200: ok_after_challenge),
1002 with a wrong one (401, 401: wrong_password), and each places a call whose
INVITE carries a big SDP offer, challenged with a 401 the same way. Over UDP
the kernel fragments every datagram above 548 bytes (the INVITEs and even the
authenticated REGISTERs); over TCP (MSS 536, and GSO off on the namespace's
lo so that tcpdump sees the segments as sent) the INVITEs are split into
several segments, mid-header and mid-body. The test checks from the capture
itself (a small pcap reader below) that this really happened, then that
`analyze --format json` gives the four verdicts, that `--known-credentials`
makes wrong_password certain, and that the text summary counts the packets,
the SIP messages and the datagrams rebuilt from fragments.

SIPWITNESS_WRITE_CORPUS=1 also saves the two captures, once verified, as
tests/data/captures/{udp_fragments,tcp_split}.pcap with their
<name>.expected.json beside them (SIPWITNESS_WRITE_CORPUS=DIR: into DIR, as
test_capture.py takes it).

CorpusVerdicts runs `analyze --format json` on every
tests/data/captures/*.pcap* that has a <name>.expected.json beside it (name:
the capture's file name without its last extension) and compares the flows
with it: a JSON list of objects with the keys call_id, method, verdict,
challenges, final_status, one per flow analyze reports (order does not
matter; every flow must be listed; another field of the verdict line that an
expected file adds, like "user", is compared too). See
tests/data/captures/README.md.

Needs root (ip netns) and tcpdump for AnalyzeLab, which is skipped with the
reason otherwise; CorpusVerdicts needs neither.

Run:  SIPWITNESS_BIN=build/sipwitness python3 tests/e2e/test_analyze_lab.py -v
E2E_KEEP=1 keeps the per-test directories (captures, SIPp traces, analyze output).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import unittest
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import harness  # noqa: E402  (tests/e2e/harness.py)
from harness import HOST, REPO_ROOT, SCENARIO_DIR, sipwitness_binary  # noqa: E402

CORPUS_DIR = REPO_ROOT / "tests" / "data" / "captures"
EXPECTED_KEYS = ("call_id", "method", "verdict", "challenges", "final_status")
REGISTER_SCENARIO = REPO_ROOT / "scripts" / "demo-scenarios" / "register.xml"  # the demo phone
PROVIDER_SCENARIO = "analyze_lab_provider.xml"
CALL_SCENARIO = "analyze_lab_call.xml"
PASSWORD = "secret"  # what analyze_lab_provider.xml accepts
LAB_MTU = 576        # IPv4 minimum reassembly size: UDP payloads above 548 bytes are fragmented
SIPP_TIMEOUT = 15    # seconds per SIPp run
ANALYZE_TIMEOUT = 30


# --------------------------------------------------------------------------
# what the capture holds (a minimal pcap reader: Ethernet, IPv4, UDP, TCP)


@dataclasses.dataclass
class IpPacket:
    src: str
    dst: str
    proto: int
    ident: int
    more_fragments: bool
    fragment_offset: int  # in bytes
    payload: bytes        # the IP payload (a fragment of it when fragmented)

    @property
    def fragment(self) -> bool:
        return self.more_fragments or self.fragment_offset > 0


def read_pcap(path: Path) -> tuple[int, list[IpPacket]]:
    """(number of frames, the IPv4 packets among them) of a classic pcap file
    with Ethernet framing (what tcpdump -w writes for lo)."""
    data = path.read_bytes()
    magics = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">",
              b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">"}
    endian = magics.get(data[:4])
    if endian is None or len(data) < 24:
        raise AssertionError(f"{path}: not a pcap file")
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    if linktype != 1:
        raise AssertionError(f"{path}: link type {linktype}, expected 1 (Ethernet)")
    frames, packets, off = 0, [], 24
    while off + 16 <= len(data):
        incl = struct.unpack(endian + "I", data[off + 8:off + 12])[0]
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        frames += 1
        if len(frame) < 34 or frame[12:14] != b"\x08\x00":
            continue
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        total, ident, flags = struct.unpack(">HHH", ip[2:8])
        packets.append(IpPacket(
            src=".".join(map(str, ip[12:16])), dst=".".join(map(str, ip[16:20])), proto=ip[9],
            ident=ident, more_fragments=bool(flags & 0x2000), fragment_offset=(flags & 0x1FFF) * 8,
            payload=ip[ihl:total]))
    return frames, packets


@dataclasses.dataclass
class UdpFacts:
    frames: int = 0
    fragments: int = 0            # IP packets that are fragments of a datagram
    fragmented_datagrams: int = 0  # datagrams sent as fragments
    whole_datagrams: int = 0       # UDP datagrams in one packet
    largest_datagram: int = 0      # bytes of UDP payload


def udp_facts(path: Path) -> UdpFacts:
    facts = UdpFacts()
    facts.frames, packets = read_pcap(path)
    datagrams: dict[tuple, int] = {}
    for p in packets:
        if p.proto != 17:
            continue
        if p.fragment:
            facts.fragments += 1
            key = (p.src, p.dst, p.ident)
            datagrams[key] = max(datagrams.get(key, 0), p.fragment_offset + len(p.payload))
        else:
            facts.whole_datagrams += 1
            facts.largest_datagram = max(facts.largest_datagram, len(p.payload) - 8)
    facts.fragmented_datagrams = len(datagrams)
    if datagrams:
        facts.largest_datagram = max(facts.largest_datagram, max(datagrams.values()) - 8)
    return facts


def sip_frames(stream: bytes) -> list[tuple[int, int, int]]:
    """(start, end of the header section, end) of each SIP message in a TCP
    byte stream, framed by Content-Length (CRLF keep-alives skipped)."""
    out, pos = [], 0
    while pos < len(stream):
        if stream.startswith(b"\r\n", pos):
            pos += 2
            continue
        head_end = stream.find(b"\r\n\r\n", pos)
        if head_end < 0:
            raise AssertionError(f"TCP stream cut inside a header section at {pos}")
        length = 0
        for line in stream[pos:head_end].split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() in (b"content-length", b"l"):
                length = int(value.strip())
        end = head_end + 4 + length
        if end > len(stream):
            raise AssertionError(f"TCP stream cut inside a body at {pos}")
        out.append((pos, head_end + 4, end))
        pos = end
    return out


@dataclasses.dataclass
class TcpFacts:
    frames: int = 0
    data_segments: int = 0        # TCP segments carrying payload
    largest_segment: int = 0
    messages: int = 0             # SIP messages in the streams
    split_messages: int = 0       # messages spread over more than one segment
    most_segments: int = 0        # segments of the most split message
    mid_header_splits: int = 0    # segment boundaries inside a message's header section
    mid_body_splits: int = 0      # ... inside its body


def tcp_facts(path: Path) -> TcpFacts:
    facts = TcpFacts()
    facts.frames, packets = read_pcap(path)
    streams: dict[tuple, dict[int, bytes]] = {}
    for p in packets:
        if p.proto != 6 or p.fragment:
            continue
        sport, dport, seq = struct.unpack(">HHI", p.payload[:8])
        data = p.payload[(p.payload[12] >> 4) * 4:]
        if not data:
            continue
        facts.data_segments += 1
        facts.largest_segment = max(facts.largest_segment, len(data))
        streams.setdefault((p.src, sport, p.dst, dport), {})[seq] = data  # a retransmission replaces
    for key, segments in streams.items():
        stream, starts = b"", []
        first = min(segments)
        for seq in sorted(segments):
            if (seq - first) % 2**32 != len(stream):
                raise AssertionError(f"TCP stream {key}: gap or overlap at seq {seq}")
            starts.append(len(stream))
            stream += segments[seq]
        for start, body, end in sip_frames(stream):
            facts.messages += 1
            inside = [b for b in starts if start < b < end]
            if inside:
                facts.split_messages += 1
                facts.most_segments = max(facts.most_segments, len(inside) + 1)
            facts.mid_header_splits += sum(1 for b in inside if b < body)
            facts.mid_body_splits += sum(1 for b in inside if b > body)
    return facts


# --------------------------------------------------------------------------
# analyze


def run_analyze(*args: str) -> subprocess.CompletedProcess:
    binary = sipwitness_binary()
    if not os.path.exists(binary):
        raise AssertionError(f"sipwitness binary not found at {binary} (set SIPWITNESS_BIN)")
    return subprocess.run([binary, "analyze", *args], capture_output=True, text=True,
                          timeout=ANALYZE_TIMEOUT, stdin=subprocess.DEVNULL)


def verdict_lines(result: subprocess.CompletedProcess) -> list[dict]:
    """The verdict objects of `analyze --format json` (one JSON object per line)."""
    if result.returncode != 0:
        raise AssertionError(f"analyze exit {result.returncode}: {' '.join(result.args)}\n"
                             f"--- stdout ---\n{result.stdout}--- stderr ---\n{result.stderr}")
    out = []
    for line in result.stdout.splitlines():
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise AssertionError(f"not a JSON line ({e}): {line!r}\n{result.stdout}") from None
    return out


def flow_summary(verdicts: list[dict], keys: tuple[str, ...] = EXPECTED_KEYS) -> list[dict]:
    """The corpus format: {call_id, method, verdict, challenges, final_status}
    per flow (or other keys of the verdict lines), in a stable order."""
    rows = [{k: v.get(k) for k in keys} for v in verdicts]
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))


def expected_path(capture: Path) -> Path:
    return capture.with_suffix(".expected.json")


# --------------------------------------------------------------------------
# the namespace


class Netns:
    """A network namespace of our own: only its lo, up, with a small MTU."""

    def __init__(self, name: str):
        self.name = name
        self.created = False
        self.gso_off = False
        self.gso_error = ""

    def argv(self, *command: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *command]

    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(self.argv(*command), capture_output=True, text=True, timeout=10,
                                stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(result.args)}: exit {result.returncode}: {result.stderr}")
        return result

    def create(self) -> None:
        result = subprocess.run(["ip", "netns", "add", self.name], capture_output=True, text=True,
                                timeout=10)
        if result.returncode != 0:
            raise unittest.SkipTest(f"cannot create a network namespace (ip netns add {self.name}: "
                                    f"{result.stderr.strip() or result.returncode})")
        self.created = True
        # Everything below runs inside the namespace: its own lo only.
        self.run("ip", "link", "set", "lo", "up")
        self.run("ip", "link", "set", "lo", "mtu", str(LAB_MTU))
        # lo hands TCP to itself in GSO batches: tcpdump would see one big
        # "segment" per send. One segment per skb shows the split on the wire.
        gso = self.run("ip", "link", "set", "lo", "gso_max_segs", "1", check=False)
        self.gso_off = gso.returncode == 0
        self.gso_error = gso.stderr.strip()

    def delete(self) -> None:
        if self.created:
            subprocess.run(["ip", "netns", "delete", self.name], capture_output=True, timeout=10)
            self.created = False

    def listening(self, transport: str, port: int) -> bool:
        flag = "-t" if transport == "tcp" else "-u"
        result = self.run("ss", "-H", "-n", "-l", flag, "sport", "=", f":{port}", check=False)
        return bool(result.stdout.strip())


class Tcpdump:
    """tcpdump -i lo -w FILE inside the namespace; stop() flushes and ends it."""

    def __init__(self, ns: Netns, path: Path):
        self.path = path
        self.err_path = path.with_suffix(".tcpdump.log")
        self._err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(
            ns.argv("tcpdump", "-i", "lo", "-w", str(path), "-U", "-s", "0", "-n",
                    "--immediate-mode", "-Z", "root"),
            stdin=subprocess.DEVNULL, stdout=self._err, stderr=subprocess.STDOUT, start_new_session=True)

    def log(self) -> str:
        return self.err_path.read_bytes().decode("utf-8", "replace")

    def wait_capturing(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while "listening on lo" not in self.log():
            if self.proc.poll() is not None:
                raise AssertionError(f"tcpdump exited with {self.proc.returncode}: {self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"tcpdump did not start capturing within {timeout}s: {self.log()}")
            time.sleep(0.02)

    def stop(self) -> str:
        """SIGINT (tcpdump writes what it holds and exits); its final log."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()
        if not self._err.closed:
            self._err.close()
        return self.log()

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=5)
        if not self._err.closed:
            self._err.close()


# --------------------------------------------------------------------------
# the lab


@dataclasses.dataclass(frozen=True)
class LabFlow:
    kind: str      # "register" or "call"
    user: str
    password: str
    method: str
    verdict: str
    challenges: int
    final_status: int


# One SIPp phone run per flow, in this order; verdicts certain from the messages.
LAB_FLOWS = (
    LabFlow("register", "1001", PASSWORD, "REGISTER", "ok_after_challenge", 1, 200),
    LabFlow("register", "1002", "not-the-password", "REGISTER", "wrong_password", 2, 401),
    LabFlow("call", "1001", PASSWORD, "INVITE", "ok_after_challenge", 1, 200),
    LabFlow("call", "1002", "not-the-password", "INVITE", "wrong_password", 2, 401),
)


# The digest uri= SIPp answers with (after "sip:"): the Request-URI of the
# scenario. Without -auth_uri SIPp puts the remote address there, which analyze
# rightly reports as uri_mismatch rather than wrong_password.
AUTH_URI = {"register": "demo.example", "call": "echo@demo.example"}


def call_id_of(transport: str, flow: LabFlow) -> str:
    return f"analyze-lab-{transport}-{flow.kind}-{flow.user}"


class AnalyzeLab(harness.E2ETestCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root to create a network namespace (ip netns add)")
        missing = [tool for tool in ("ip", "tcpdump", "ss", harness.SIPP) if not shutil.which(tool)]
        if missing:
            raise unittest.SkipTest(f"not installed: {', '.join(missing)} (Debian: iproute2, tcpdump, "
                                    "sip-tester)")

    def setUp(self):
        super().setUp()
        self.ns = Netns(f"swlab{os.getpid()}{self._testMethodName[5:8]}")
        self.addCleanup(self.ns.delete)  # runs after the processes' cleanups (LIFO)
        self.ns.create()

    # -- processes inside the namespace -----------------------------------
    def sipp(self, scenario: str, remote=None, **kw) -> harness.Sipp:
        kw.setdefault("workdir", self.tmp)
        kw.setdefault("timeout", SIPP_TIMEOUT)
        kw.setdefault("recv_timeout_ms", 5000)
        sipp = harness.Sipp(scenario, remote, **kw)
        sipp.argv = self.ns.argv(*sipp.argv)  # ip netns exec execs SIPp: same pid
        sipp.start()
        self.addCleanup(sipp.stop)
        if remote is None:
            deadline = time.monotonic() + 5
            while not self.ns.listening(sipp.transport, sipp.port):
                if not sipp.running() or time.monotonic() > deadline:
                    self.fail(f"SIPp {sipp.name} is not listening\n{sipp.stop().describe()}")
                time.sleep(0.05)
        return sipp

    def tcpdump(self, path: Path) -> Tcpdump:
        dump = Tcpdump(self.ns, path)
        self.addCleanup(dump.kill)
        dump.wait_capturing()
        return dump

    def make_capture(self, transport: str) -> Path:
        """The four lab flows over transport, captured on the namespace's lo."""
        capture = self.tmp / f"{transport}.pcap"
        dump = self.tcpdump(capture)
        provider = self.sipp(PROVIDER_SCENARIO, transport=transport, calls=len(LAB_FLOWS),
                             name="provider")
        for flow in LAB_FLOWS:
            scenario = str(REGISTER_SCENARIO) if flow.kind == "register" else str(SCENARIO_DIR / CALL_SCENARIO)
            phone = self.sipp(scenario, (HOST, provider.port), transport=transport, service=flow.user,
                              name=f"{flow.kind}-{flow.user}",
                              extra_args=["-au", flow.user, "-ap", flow.password,
                                          "-auth_uri", AUTH_URI[flow.kind],
                                          "-cid_str", call_id_of(transport, flow)])
            self.assertSippOk(phone.wait(), 1)
        self.assertSippOk(provider.wait(timeout=SIPP_TIMEOUT), len(LAB_FLOWS))
        time.sleep(0.3)  # the last packets reach tcpdump (immediate mode: at once)
        log = dump.stop()
        self.assertRegex(log, r"(?m)^0 packets dropped by kernel$")
        return capture

    def expected(self, transport: str) -> list[dict]:
        return flow_summary([
            {"call_id": call_id_of(transport, f), "method": f.method, "verdict": f.verdict,
             "challenges": f.challenges, "final_status": f.final_status} for f in LAB_FLOWS])

    def check_verdicts(self, capture: Path, transport: str) -> list[dict]:
        verdicts = verdict_lines(run_analyze(str(capture), "--format", "json"))
        expected = self.expected(transport)
        self.assertEqual(flow_summary(verdicts), expected, f"analyze {capture}")
        for v in verdicts:
            self.assertEqual(v["source"].rsplit(":", 1)[0], HOST, v)
            self.assertEqual(v["aor"].split("@")[1], "demo.example", v)
        by_flow = {(v["call_id"], v["method"]): v for v in verdicts}
        for flow in LAB_FLOWS:
            v = by_flow[(call_id_of(transport, flow), flow.method)]
            if flow.verdict == "wrong_password":
                self.assertEqual(v["confidence"], "likely", v)  # the password is not known
                self.assertEqual(v["evidence"].get("challenge_realm"), "demo.example", v)
                self.assertEqual(v["evidence"].get("credential_username"), flow.user, v)
        # With the passwords known, a wrong one is proven.
        users = self.tmp / "known.yaml"
        users.write_text("users:\n" + "".join(
            f'  - {{ username: "{u}", password: "{PASSWORD}" }}\n' for u in ("1001", "1002")))
        known = verdict_lines(run_analyze(str(capture), "--format", "json", "--known-credentials", str(users)))
        self.assertEqual(flow_summary(known), expected, f"analyze {capture} --known-credentials")
        for v in known:
            if v["verdict"] == "wrong_password":
                self.assertEqual(v["confidence"], "certain", v)
        return expected

    def text_summary(self, capture: Path) -> str:
        """What the text report's closing summary says about the file (after "FILE (pcap): ")."""
        result = run_analyze(str(capture))
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        prefix = f"{capture} (pcap): "
        lines = [l[len(prefix):] for l in result.stdout.splitlines() if l.startswith(prefix)]
        self.assertEqual(len(lines), 1, result.stdout)
        self.assertRegex(result.stdout, r"(?m)^4 flows: 2 ok_after_challenge, 2 wrong_password$")
        return lines[0]

    def save_to_corpus(self, capture: Path, name: str, expected: list[dict]) -> None:
        """SIPWITNESS_WRITE_CORPUS=1: into tests/data/captures; =DIR: into DIR
        (as test_capture.py takes it)."""
        where = os.environ.get("SIPWITNESS_WRITE_CORPUS", "")
        if where in ("", "0"):
            return
        out = CORPUS_DIR if where == "1" else Path(where)
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(capture, out / f"{name}.pcap")
        (out / f"{name}.expected.json").write_text(json.dumps(expected, indent=2) + "\n")
        sys.stderr.write(f"\n(wrote {out / name}.pcap and {name}.expected.json)\n")

    # -- tests ------------------------------------------------------------
    def test_udp_fragments(self):
        capture = self.make_capture("udp")
        facts = udp_facts(capture)
        # The kernel fragmented the big datagrams: fragments on the wire...
        count = subprocess.run(["tcpdump", "-r", str(capture), "-nn", "ip[6:2] & 0x3fff != 0"],
                               capture_output=True, text=True, timeout=10)
        self.assertEqual(count.returncode, 0, count.stderr)
        self.assertEqual(len(count.stdout.splitlines()), facts.fragments, count.stdout)
        self.assertGreater(facts.fragments, 0, facts)
        # ...one datagram per INVITE at least (2 per call), each INVITE above 1500 bytes.
        self.assertGreaterEqual(facts.fragmented_datagrams, 4, facts)
        self.assertGreater(facts.largest_datagram, 1500, facts)
        expected = self.check_verdicts(capture, "udp")
        # Every datagram is a SIP message; nothing left out or missing fragments.
        messages = facts.whole_datagrams + facts.fragmented_datagrams
        self.assertEqual(self.text_summary(capture),
                         f"{facts.frames} packets, {messages} SIP messages, "
                         f"{facts.fragmented_datagrams} datagrams rebuilt from fragments")
        sys.stderr.write(f"\n(udp capture: {capture.stat().st_size} bytes, {facts})\n")
        self.save_to_corpus(capture, "udp_fragments", expected)

    def test_tcp_split(self):
        if not self.ns.gso_off:
            self.skipTest(f"cannot turn GSO off on the namespace's lo ({self.ns.gso_error}): "
                          "tcpdump would not see the segments")
        capture = self.make_capture("tcp")
        facts = tcp_facts(capture)
        self.assertLessEqual(facts.largest_segment, LAB_MTU - 40, facts)
        # The four INVITEs (two per call) span several segments, split inside
        # their header section and inside their body.
        self.assertGreaterEqual(facts.split_messages, 4, facts)
        self.assertGreaterEqual(facts.most_segments, 3, facts)
        self.assertGreater(facts.mid_header_splits, 0, facts)
        self.assertGreater(facts.mid_body_splits, 0, facts)
        expected = self.check_verdicts(capture, "tcp")
        # Every message framed; no gaps, retransmissions, reordering or cut streams to report.
        self.assertEqual(self.text_summary(capture), f"{facts.frames} packets, {facts.messages} SIP messages")
        sys.stderr.write(f"\n(tcp capture: {capture.stat().st_size} bytes, {facts})\n")
        self.save_to_corpus(capture, "tcp_split", expected)


class CorpusVerdicts(unittest.TestCase):
    """Every tests/data/captures/*.pcap* with a <name>.expected.json beside it."""

    maxDiff = None

    def test_corpus_verdicts(self):
        captures = sorted(p for p in CORPUS_DIR.glob("*.pcap*")
                          if p.is_file() and expected_path(p).exists())
        self.assertTrue(captures, f"no capture with a .expected.json in {CORPUS_DIR}")
        for capture in captures:
            with self.subTest(capture=capture.name):
                expected = json.loads(expected_path(capture).read_text())
                self.assertIsInstance(expected, list, expected_path(capture))
                for row in expected:
                    self.assertIsInstance(row, dict, expected_path(capture))
                    missing = [k for k in EXPECTED_KEYS if k not in row]
                    self.assertEqual(missing, [], f"{expected_path(capture).name}: {row} lacks keys")
                # The agreed keys, and any other verdict field an expected
                # file chooses to pin (e.g. "user"), compared for every flow.
                keys = EXPECTED_KEYS + tuple(sorted({k for row in expected for k in row} - set(EXPECTED_KEYS)))
                got = flow_summary(verdict_lines(run_analyze(str(capture), "--format", "json")), keys)
                self.assertEqual(got, flow_summary(expected, keys), f"analyze {capture} --format json")


if __name__ == "__main__":
    unittest.main(verbosity=2)
