#!/usr/bin/env python3
"""End-to-end: the NAT lab of netlab.py is a real NAT, and its router runs
the Linux kernel's own SIP ALG (nf_conntrack_sip / nf_nat_sip) on demand.

    phone 10.77.1.2:5060 ──▶ router (masquerade, SIP helper on/off) ──▶ provider 203.0.113.2:5060
                        ◀──                                          ◀── 200 OK

The phone sends a REGISTER (with Authorization) and an INVITE (with SDP and
Proxy-Authorization) from port 5060; the provider answers each with a 200 OK
the way a registrar does (received=/rport= in the top Via, RFC 3581; the
REGISTER's Contact echoed). Both sides are sockets this process makes inside
the namespaces (NetLab.socket), so the test sees the exact bytes on each end.

What the kernel helper does, asserted line by line (this kernel):
- phone -> provider: the private address 10.77.1.2 becomes 203.0.113.1 in the
  top Via's sent-by, the Contact, and the SDP o= and c= lines; Content-Length
  follows the longer body. Ports stay 5060 / m=audio 4000 (the NAT kept them).
  Untouched: Authorization and Proxy-Authorization (uri="sip:10.77.1.2:5060"
  included), Call-ID (…@10.77.1.2), From, To.
- provider -> phone: 203.0.113.1 becomes 10.77.1.2 again in the top Via's
  sent-by, in its received= parameter (the phone cannot see its public
  address), and in the echoed Contact; the provider's own Contact and SDP stay.
- the same over TCP with the helper attached to tcp 5060.
- a TCP phone on an ephemeral source port: only what the kernel ties to the
  connection's own port is translated: the Via (port 5060 ≠ source port) and
  the INVITE's Contact stay private, the SDP is rewritten, and the REGISTER's
  Contact is rewritten too (to the port of the expectation the helper opens for
  it on the router).
- the helper binds to a flow when conntrack first sees it: switching it on or
  off changes nothing for an existing flow until `conntrack -F`.

Needs root, nft and conntrack (else skipped); not the sipwitness binary.
Run:  python3 tests/e2e/test_netlab.py -v
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import unittest
import uuid
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import netlab  # noqa: E402  (tests/e2e/netlab.py)
from netlab import NetLab  # noqa: E402

SIP_PORT = 5060
WAIT = 5.0  # seconds for any datagram, connection or response

PRIVATE = NetLab.phone_ip
PUBLIC = NetLab.router_public_ip
PROVIDER = NetLab.provider_ip


# --------------------------------------------------------------------------
# messages


def crlf(lines: list[str]) -> str:
    return "\r\n".join(lines) + "\r\n"


def with_body(head: list[str], body: str = "") -> bytes:
    return (crlf(head + [f"Content-Length: {len(body.encode())}", ""]) + body).encode()


def register(transport: str) -> bytes:
    tag = uuid.uuid4().hex[:8]
    return with_body([
        "REGISTER sip:lab.example SIP/2.0",
        f"Via: SIP/2.0/{transport} {PRIVATE}:{SIP_PORT};branch=z9hG4bK-{uuid.uuid4().hex[:12]};rport",
        "Max-Forwards: 70",
        f"From: <sip:1001@lab.example>;tag={tag}",
        "To: <sip:1001@lab.example>",
        f"Call-ID: reg-{tag}@{PRIVATE}",
        "CSeq: 2 REGISTER",
        f"Contact: <sip:1001@{PRIVATE}:{SIP_PORT}>",
        f'Authorization: Digest username="1001", realm="lab.example", nonce="abc", '
        f'uri="sip:{PRIVATE}:{SIP_PORT}", response="0123456789abcdef0123456789abcdef", algorithm=MD5',
        "Expires: 60",
        "User-Agent: netlab-test",
    ])


def invite(transport: str) -> bytes:
    tag = uuid.uuid4().hex[:8]
    sdp = crlf([
        "v=0",
        f"o=1001 8000 8000 IN IP4 {PRIVATE}",
        "s=netlab",
        f"c=IN IP4 {PRIVATE}",
        "t=0 0",
        "m=audio 4000 RTP/AVP 0 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=sendrecv",
    ])
    return with_body([
        "INVITE sip:2000@lab.example SIP/2.0",
        f"Via: SIP/2.0/{transport} {PRIVATE}:{SIP_PORT};branch=z9hG4bK-{uuid.uuid4().hex[:12]};rport",
        "Max-Forwards: 70",
        f"From: <sip:1001@lab.example>;tag={tag}",
        "To: <sip:2000@lab.example>",
        f"Call-ID: inv-{tag}@{PRIVATE}",
        "CSeq: 2 INVITE",
        f"Contact: <sip:1001@{PRIVATE}:{SIP_PORT}>",
        f'Proxy-Authorization: Digest username="1001", realm="lab.example", nonce="abc", '
        f'uri="sip:2000@{PRIVATE}", response="0123456789abcdef0123456789abcdef"',
        "Content-Type: application/sdp",
    ], sdp)


def split(message: bytes) -> tuple[list[str], str]:
    """(start line and header lines, body) of one SIP message."""
    head, sep, body = message.decode().partition("\r\n\r\n")
    if not sep:
        raise AssertionError(f"no end of headers in {message!r}")
    return head.split("\r\n"), body


def header_name(line: str) -> str:
    return line.partition(":")[0].strip().lower()


def content_length(message: bytes) -> int:
    lines, _ = split(message)
    values = [l.partition(":")[2].strip() for l in lines[1:] if header_name(l) in ("content-length", "l")]
    if len(values) != 1:
        raise AssertionError(f"{len(values)} Content-Length headers in {message!r}")
    return int(values[0])


def answer(request: bytes, src: tuple[str, int]) -> bytes:
    """The provider's 200 OK: a registrar's (RFC 3581 received=/rport= on the
    top Via, the REGISTER's Contact echoed) or a callee's (its own Contact and
    an SDP answer)."""
    lines, _ = split(request)
    method = lines[0].split()[0]
    head = ["SIP/2.0 200 OK"]
    top_via = True
    contacts = []
    for line in lines[1:]:
        name = header_name(line)
        if name == "via":
            if top_via:
                line = re.sub(r";rport(?=;|$)", f";received={src[0]};rport={src[1]}", line)
                top_via = False
            head.append(line)
        elif name in ("from", "call-id", "cseq"):
            head.append(line)
        elif name == "to":
            head.append(line + ";tag=provider1")
        elif name == "contact":
            contacts.append(line + ";expires=60")
    if method == "REGISTER":
        return with_body(head + contacts)
    sdp = crlf(["v=0", f"o=2000 1 1 IN IP4 {PROVIDER}", "s=provider", f"c=IN IP4 {PROVIDER}", "t=0 0",
                "m=audio 5004 RTP/AVP 0", "a=rtpmap:0 PCMU/8000"])
    return with_body(head + [f"Contact: <sip:2000@{PROVIDER}:{SIP_PORT}>", "Content-Type: application/sdp"], sdp)


def rewritten(message: bytes, old: str, new: str, headers: tuple[str, ...] = (),
              sdp: tuple[str, ...] = (), top_via_only: bool = True) -> bytes:
    """message with old -> new in the named headers (only the top Via when
    top_via_only) and in the SDP lines starting with the given prefixes, and
    Content-Length set to the new body's length: what the ALG is expected to send."""
    lines, body = split(message)
    out, seen_via = [lines[0]], False
    for line in lines[1:]:
        name = header_name(line)
        if name in headers and not (name == "via" and top_via_only and seen_via):
            line = line.replace(old, new)
        seen_via = seen_via or name == "via"
        out.append(line)
    body = crlf([l.replace(old, new) if l.startswith(sdp) else l for l in body.split("\r\n")[:-1]]) if body else ""
    out = [f"Content-Length: {len(body.encode())}" if header_name(l) in ("content-length", "l") else l
           for l in out]
    return (crlf(out) + "\r\n" + body).encode()


def changes(sent: bytes, got: bytes) -> list[str]:
    """The lines that differ, as 'sent  =>  got' (for the log)."""
    a, b = sent.decode().split("\r\n"), got.decode().split("\r\n")
    if len(a) != len(b):
        return [f"line count {len(a)} => {len(b)}"]
    return [f"{x}  =>  {y}" for x, y in zip(a, b) if x != y]


# Where the kernel's helper puts the public address, phone -> provider (asserted).
REQUEST_ALG = dict(headers=("via", "contact"), sdp=("o=", "c="))
# ... and the private address back, provider -> phone (asserted).
RESPONSE_ALG = dict(headers=("via",), sdp=())


def response_alg(response: bytes, method: str) -> bytes:
    """The provider's response as the ALG delivers it to the phone: top Via
    (sent-by and received=) back to the private address, and the REGISTER's
    echoed Contact; the provider's own Contact and SDP untouched."""
    headers = ("via", "contact") if method == "REGISTER" else ("via",)
    return rewritten(response, PUBLIC, PRIVATE, headers=headers)


# --------------------------------------------------------------------------
# the phone and the provider


class UdpPair:
    """Phone socket bound to 10.77.1.2:5060, provider socket on 203.0.113.2:5060."""

    def __init__(self, lab: NetLab, phone_port: int = SIP_PORT):
        self.provider = lab.socket("provider", socket.SOCK_DGRAM)
        self.provider.bind((lab.provider_ip, SIP_PORT))
        self.provider.settimeout(WAIT)
        self.phone = lab.socket("phone", socket.SOCK_DGRAM)
        self.phone.bind((lab.phone_ip, phone_port))
        self.phone.settimeout(WAIT)

    def exchange(self, request: bytes) -> tuple[bytes, tuple[str, int], bytes, bytes]:
        """Phone sends request; provider answers. (what the provider got, from
        where, what it answered, what the phone got)."""
        self.phone.sendto(request, (PROVIDER, SIP_PORT))
        try:
            got, src = self.provider.recvfrom(65535)
        except socket.timeout:
            raise AssertionError(f"provider got nothing within {WAIT}s for:\n{request.decode()}") from None
        response = answer(got, src)
        self.provider.sendto(response, src)
        try:
            back, back_src = self.phone.recvfrom(65535)
        except socket.timeout:
            raise AssertionError(f"phone got no response within {WAIT}s (NAT did not map it back)") from None
        if back_src != (PROVIDER, SIP_PORT):
            raise AssertionError(f"response from {back_src}, expected the provider")
        return got, src, response, back


def read_message(conn: socket.socket, pending: bytearray) -> bytes:
    """One SIP message from a TCP stream (framed by Content-Length)."""
    deadline = time.monotonic() + WAIT
    while True:
        end = pending.find(b"\r\n\r\n")
        if end >= 0:
            total = end + 4 + content_length(bytes(pending[:end + 4]))
            if len(pending) >= total:
                message = bytes(pending[:total])
                del pending[:total]
                return message
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no whole SIP message within {WAIT}s; have {bytes(pending)!r}")
        conn.settimeout(left)
        try:
            data = conn.recv(65535)
        except socket.timeout:
            continue
        if not data:
            raise AssertionError(f"connection closed; have {bytes(pending)!r}")
        pending += data


class TcpPair:
    """A TCP connection phone (10.77.1.2:phone_port; 0: an ephemeral port) ->
    provider 203.0.113.2:5060."""

    def __init__(self, lab: NetLab, phone_port: int = SIP_PORT):
        listener = lab.socket("provider", socket.SOCK_STREAM)
        listener.bind((lab.provider_ip, SIP_PORT))
        listener.listen(1)
        listener.settimeout(WAIT)
        self.phone = lab.socket("phone", socket.SOCK_STREAM)
        self.phone.bind((lab.phone_ip, phone_port))
        self.phone.settimeout(WAIT)
        self.phone.connect((lab.provider_ip, SIP_PORT))
        self.local_port = self.phone.getsockname()[1]
        self.provider, self.src = listener.accept()
        listener.close()
        self._phone_in, self._provider_in = bytearray(), bytearray()

    def exchange(self, request: bytes) -> tuple[bytes, tuple[str, int], bytes, bytes]:
        self.phone.sendall(request)
        got = read_message(self.provider, self._provider_in)
        response = answer(got, self.src)
        self.provider.sendall(response)
        back = read_message(self.phone, self._phone_in)
        return got, self.src, response, back

    def close(self) -> None:
        self.phone.close()
        self.provider.close()


# --------------------------------------------------------------------------
# tests


class NetLabTest(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.lab = NetLab()
        self.lab.__enter__()  # SkipTest from here: reported as skipped
        self.addCleanup(self.lab.__exit__, None, None, None)

    def note(self, text: str) -> None:
        sys.stderr.write(f"\n({self.id().rsplit('.', 1)[-1]}: {text})")

    def check_unchanged(self, pair, requests: list[bytes]) -> None:
        for request in requests:
            got, src, response, back = pair.exchange(request)
            self.assertEqual(src[0], PUBLIC, "the provider sees the router's public address")
            self.assertEqual(got.decode(), request.decode(), "no ALG: the request arrives byte for byte")
            self.assertEqual(back.decode(), response.decode(), "no ALG: the response arrives byte for byte")

    def check_rewritten(self, pair, requests: list[bytes]) -> list[str]:
        """Each request and its response rewritten exactly as the kernel's
        helper does it; the changed lines (for the log)."""
        log = []
        for request in requests:
            method = request.split(b" ", 1)[0].decode()
            got, src, response, back = pair.exchange(request)
            self.assertEqual(src, (PUBLIC, SIP_PORT), "masquerade kept the source port")
            self.assertEqual(got.decode(), rewritten(request, PRIVATE, PUBLIC, **REQUEST_ALG).decode(),
                             f"{method} as the provider got it")
            self.assertEqual(content_length(got), len(split(got)[1].encode()), "Content-Length matches the body")
            for name in ("authorization", "proxy-authorization", "call-id", "from", "to"):
                self.assertEqual([l for l in split(got)[0] if header_name(l) == name],
                                 [l for l in split(request)[0] if header_name(l) == name], name)
            self.assertEqual(back.decode(), response_alg(response, method).decode(),
                             f"200 OK to the {method} as the phone got it")
            log += [f"{method} out: {c}" for c in changes(request, got)]
            log += [f"{method} 200 back: {c}" for c in changes(response, back)]
        return log

    # -- the lab itself ---------------------------------------------------
    def test_topology(self):
        lab = self.lab
        names = [lab.name(r) for r in netlab.ROLES]
        self.assertEqual(len(set(names)), 3, names)
        self.assertTrue(all(str(os.getpid()) in n for n in names), names)
        self.assertEqual(lab.exec("router", ["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.strip(), "1")
        for ns in ("phone", "provider"):
            self.assertEqual(lab.exec(ns, ["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.strip(), "0", ns)
        route = lab.exec("phone", ["ip", "-4", "route", "get", PROVIDER]).stdout
        self.assertIn(f"via {lab.router_inside_ip}", route)
        # Only the NAT can bring an answer back: no route to the private side.
        back = lab.exec("provider", ["ip", "-4", "route", "get", PRIVATE])
        self.assertNotEqual(back.returncode, 0, back.stdout)
        self.assertIn("unreachable", back.stderr)
        self.assertRegex(lab.ruleset(), rf'oifname "{netlab.ROUTER_WAN_IF}" masquerade')
        self.assertNotIn(netlab.HELPER_TABLE, lab.ruleset())

    def test_exit_cleans_up(self):
        root_forward = Path("/proc/sys/net/ipv4/ip_forward").read_text()
        with NetLab() as lab:
            names = [lab.name(r) for r in netlab.ROLES]
            sleeper = lab.popen("provider", ["sleep", "60"])
            sock = lab.socket("phone")
        self.assertEqual(sleeper.returncode, -signal.SIGTERM)
        self.assertEqual(sock.fileno(), -1, "socket closed")
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout
        for name in names:
            self.assertNotIn(name, listed.split())
        self.assertEqual(Path("/proc/sys/net/ipv4/ip_forward").read_text(), root_forward)

        class BrokenLab(NetLab):
            def _nft(self, script):  # setup fails after the namespaces and veths exist
                self.names_made = list(self.netns.values())
                raise RuntimeError("injected")

        broken = BrokenLab()
        with self.assertRaisesRegex(RuntimeError, "injected"):
            broken.__enter__()
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout
        self.assertEqual(len(broken.names_made), 3)
        for name in broken.names_made:
            self.assertNotIn(name, listed.split())

    # -- the SIP helper ---------------------------------------------------
    def test_udp_helper_off(self):
        self.check_unchanged(UdpPair(self.lab), [register("UDP"), invite("UDP")])
        self.assertNotIn("helper=", self.lab.conntrack())

    def test_udp_helper_on(self):
        self.lab.set_sip_helper(True)
        # What crosses each side of the router, from tcpdump.
        pcaps = {iface: self.lab.workdir / f"{iface}.pcap" for iface in (netlab.ROUTER_LAN_IF, netlab.ROUTER_WAN_IF)}
        dumps = {iface: self.lab.capture("router", iface, path) for iface, path in pcaps.items()}
        log = self.check_rewritten(UdpPair(self.lab), [register("UDP"), invite("UDP")])
        self.assertRegex(self.lab.conntrack(), r"(?m)^udp .*sport=5060 dport=5060 .*helper=sip")
        for iface, dump in dumps.items():
            self.lab.stop(dump, signal.SIGINT, timeout=5)
            text = subprocess.run(["tcpdump", "-r", str(pcaps[iface]), "-nn", "-A"], capture_output=True,
                                  text=True, timeout=10).stdout
            inside = iface == netlab.ROUTER_LAN_IF
            self.assertIn(f"Via: SIP/2.0/UDP {PRIVATE if inside else PUBLIC}:5060;branch", text, iface)
            self.assertIn(f"c=IN IP4 {PRIVATE if inside else PUBLIC}", text, iface)
            self.assertIn(f"received={PRIVATE if inside else PUBLIC};rport=5060", text, iface)
        self.note("kernel rewrote:\n  " + "\n  ".join(log))

    def test_switching_needs_a_conntrack_flush(self):
        pair = UdpPair(self.lab)
        requests = [register("UDP"), invite("UDP")]
        self.check_unchanged(pair, requests)
        # The helper binds to a flow when conntrack first sees it.
        self.lab.set_sip_helper(True, flush=False)
        self.check_unchanged(pair, requests)
        self.lab.flush_conntrack()
        self.check_rewritten(pair, requests)
        self.lab.set_sip_helper(False, flush=False)
        self.check_rewritten(pair, requests)
        self.lab.flush_conntrack()
        self.check_unchanged(pair, requests)
        self.assertNotIn(netlab.HELPER_TABLE, self.lab.ruleset())
        # And set_sip_helper's default flush does both steps at once.
        self.lab.set_sip_helper(True)
        self.check_rewritten(pair, requests)
        self.lab.set_sip_helper(False)
        self.check_unchanged(pair, requests)

    def test_helper_only_on_the_named_port(self):
        self.lab.set_sip_helper(True, ports=(5080,), protocols=("udp", "tcp"))
        self.assertEqual(self.lab.helper, ((5080,), ("udp", "tcp")))
        self.check_unchanged(UdpPair(self.lab), [register("UDP"), invite("UDP")])

    def test_tcp_helper_off(self):
        pair = TcpPair(self.lab)
        self.check_unchanged(pair, [register("TCP"), invite("TCP")])
        pair.close()

    def test_tcp_helper_on(self):
        self.lab.set_sip_helper(True, protocols=("tcp",))
        pair = TcpPair(self.lab)
        log = self.check_rewritten(pair, [register("TCP"), invite("TCP")])
        pair.close()
        self.assertRegex(self.lab.conntrack(), r"(?m)^tcp .*sport=5060 dport=5060 .*helper=sip")
        self.note("kernel rewrote:\n  " + "\n  ".join(log))

    def test_tcp_helper_on_ephemeral_source_port(self):
        """A phone that connects from an ephemeral port (most TCP phones): the
        helper translates an address only together with the connection's own
        port, except where it opens an expectation (the REGISTER's Contact,
        the SDP media)."""
        self.lab.set_sip_helper(True, protocols=("tcp",))
        pair = TcpPair(self.lab, phone_port=0)
        self.assertNotEqual(pair.local_port, SIP_PORT)
        self.assertEqual(pair.src, (PUBLIC, pair.local_port), "masquerade kept the source port")
        log = []
        for request in (register("TCP"), invite("TCP")):
            method = request.split(b" ", 1)[0].decode()
            got, _, response, back = pair.exchange(request)
            if method == "REGISTER":
                # The helper expects the registrar's requests at the Contact,
                # on the router's port 5060 (free here), and says so.
                expected = rewritten(request, f"{PRIVATE}:{SIP_PORT}", f"{PUBLIC}:{SIP_PORT}", headers=("contact",))
            else:
                expected = rewritten(request, PRIVATE, PUBLIC, sdp=("o=", "c="))
            self.assertEqual(got.decode(), expected.decode(), f"{method} as the provider got it")
            self.assertEqual(content_length(got), len(split(got)[1].encode()))
            # The top Via names port 5060, not the connection's: left as is both ways.
            self.assertEqual(back.decode(), response.decode(), f"200 OK to the {method} as the phone got it")
            log += [f"{method} out: {c}" for c in changes(request, got)]
            log += [f"{method} 200 back: {c}" for c in changes(response, back)]
        pair.close()
        self.note("kernel rewrote:\n  " + "\n  ".join(log))


if __name__ == "__main__":
    unittest.main(verbosity=2)
