#!/usr/bin/env python3
"""Hostile input, end to end: the RFC 4475 torture messages and scanner traffic.

Torture: every message of tests/data/torture goes to the running proxy from a
Python "phone" socket, over UDP, and over TCP when its top Via says TCP (the
transport its author meant) or when it is a framing case. What the RFC asks of
a proxy is checked, not what sipwitness happens to do:
  * a valid request is relayed (to the upstream, a Python socket, or to the
    next hop its Route names), or answered as the RFC says (416 for an unknown
    Request-URI scheme, 420 for an unknown Proxy-Require, 483 for
    Max-Forwards 0);
  * an invalid request gets its 400 (505 for SIP/7.0) back;
  * the RFC's responses are given to sipwitness from the upstream, under its
    own Via: the valid ones reach the phone unchanged, the invalid ones and the
    one with a broadcast next hop are dropped with a log line;
  * the proxy is alive after each.

Scanners: while a SIPp phone places good calls through sipwitness to the SIPp
provider (scenarios/hostile_provider.xml, which knows user 2000 only), a
SIPVicious-style OPTIONS sweep from three source ports, a REGISTER brute force
with many usernames against sipwitness's own 407, an INVITE flood to
nonexistent users and the invalid torture messages hit the same listener.
Every good call succeeds; the sweep and the flood get the provider's answers
(200, 404) relayed; the brute force gets 407s, then 403 once its address is
blocked, and never reaches the provider.
"""

from __future__ import annotations

import re
import socket
import sys
import threading
import time
import unittest
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, str(Path(__file__).resolve().parent))

import hostile  # noqa: E402
from dns_server import DnsServer  # noqa: E402
from harness import (HOST, E2ETestCase, TcpClient, UdpClient, header_values,  # noqa: E402
                     make_request, start_line, status_code)

# What a proxy must do with each message (RFC 4475 section; RFC 3261 where
# 4475 defers to it). ("relay",) upstream; ("route", port) to the Route's
# next hop; ("reply", {codes}). Responses are in RESPONSES.
REQUESTS = {
    "wsinv": ("route",),          # 3.1.1.1: its Route names services.example.com (port 5060)
    "intmeth": ("relay",),        # 3.1.1.2
    "esc01": ("relay",),          # 3.1.1.3
    "escnull": ("relay",),        # 3.1.1.4
    "esc02": ("relay",),          # 3.1.1.5: an unknown method, forwarded as such
    "lwsdisp": ("relay",),        # 3.1.1.6
    "longreq": ("relay",),        # 3.1.1.7
    "dblreq": ("relay",),         # 3.1.1.8: the REGISTER only
    "semiuri": ("relay",),        # 3.1.1.9
    "transports": ("relay",),     # 3.1.1.10
    "mpart01": ("route",),        # 3.1.1.11: Route <sip:127.0.0.1:5080> (a strict router)
    "badinv01": ("reply", {400}),  # 3.1.2.1
    "clerr": ("reply", {400}),    # 3.1.2.2
    "ncl": ("reply", {400}),      # 3.1.2.3
    "scalar02": ("reply", {400}),  # 3.1.2.4
    "quotbal": ("reply", {400}),  # 3.1.2.6
    "ltgtruri": ("reply", {400}),  # 3.1.2.7
    "lwsruri": ("reply", {400}),  # 3.1.2.8
    "lwsstart": ("reply", {400}),  # 3.1.2.9
    "trws": ("reply", {400}),     # 3.1.2.10
    "escruri": ("reply", {400}),  # 3.1.2.11: 400 (or forwarded without the escaped headers)
    "baddate": ("relay",),        # 3.1.2.12
    "regbadct": ("relay",),       # 3.1.2.13
    "badaspec": ("relay",),       # 3.1.2.14
    "baddn": ("reply", {400}),    # 3.1.2.15
    "badvers": ("reply", {505}),  # 3.1.2.16
    "mismatch01": ("reply", {400}),  # 3.1.2.17
    "mismatch02": ("reply", {400, 501}),  # 3.1.2.18
    "badbranch": ("relay",),      # 3.2.1
    "insuf": ("reply", {400}),    # 3.3.1
    "unkscm": ("reply", {416}),   # 3.3.2 (RFC 3261 16.3 step 2)
    "novelsc": ("reply", {416, 404}),  # 3.3.3
    "unksm2": ("relay",),         # 3.3.4: only a registrar would refuse it
    "bext01": ("reply", {420}),   # 3.3.5 (RFC 3261 16.3 step 5: 420 with Unsupported)
    "invut": ("relay",),          # 3.3.6: the UAS answers 415
    "regaut01": ("relay",),       # 3.3.7
    "multi01": ("reply", {400}),  # 3.3.8
    "mcl01": ("reply", {400}),    # 3.3.9
    "zeromf": ("reply", {483}),   # 3.3.11
    "cparam01": ("relay",),       # 3.3.12
    "cparam02": ("relay",),       # 3.3.13
    "regescrt": ("relay",),       # 3.3.14
    "sdp01": ("relay",),          # 3.3.15: the UAS answers 406
    "inv2543": ("relay",),        # 3.4.1
}
# Responses: relayed to the phone, or dropped (3.1.2.5 scalarlg, 3.1.2.19 bigcode:
# discard; 3.3.10 bcast: never send to a broadcast address).
RESPONSES = {"unreason": "relay", "noreason": "relay", "scalarlg": "drop", "bigcode": "drop",
             "bcast": "drop"}
# Sent over TCP as well: their author's transport (top Via TCP), and the framing case.
TCP_CASES = ("wsinv", "intmeth", "esc02", "longreq", "clerr", "scalar02", "trws", "novelsc",
             "unkscm", "regaut01", "bext01")
ROUTE_PORTS = {"wsinv": 5060, "mpart01": 5080}  # where their Route headers lead

# Scanner run sizes: the good calls last ~6 s, the scanners overlap them.
GOOD_CALLS, GOOD_RATE = 300, 50
SWEEP, FLOOD, BRUTE_USERS, MAX_FAILURES = 300, 300, 30, 3


def call_id_of(message: bytes) -> str:
    m = re.search(rb"^(?:Call-ID|i)[ \t]*:[ \t]*(\S+)", message, re.I | re.M)
    return m.group(1).decode() if m else ""


def drop_lines(log: str) -> int:
    return len(re.findall(r"\bdrop", log))


def more_drops(sw, before: int, timeout: float = 2.0) -> bool:
    """True when a new drop line appears in sipwitness's log within timeout."""
    deadline = time.monotonic() + timeout
    while drop_lines(sw.log()) <= before and time.monotonic() < deadline:
        time.sleep(0.05)
    return drop_lines(sw.log()) > before


class UpstreamSocket:
    """The provider for the torture cases: a UDP socket that records what arrives."""

    def __init__(self, port: int = 0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, port))
        self.port = self.sock.getsockname()[1]

    def receive(self, call_id: str, timeout: float) -> tuple[bytes | None, tuple | None]:
        """The first datagram carrying call_id within timeout, and its source."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data, source = self.sock.recvfrom(70_000)
            except socket.timeout:
                break
            if call_id_of(data) == call_id:
                return data, source
        return None, None

    def close(self) -> None:
        self.sock.close()


class Torture(E2ETestCase):
    def setUp(self) -> None:
        super().setUp()
        self.upstream = UpstreamSocket()
        self.addCleanup(self.upstream.close)
        # Route next hops: wsinv's host resolves to 127.0.0.1 (port 5060) through a
        # fake zone (dnsmasq on loopback: no query leaves the machine); mpart01
        # names 127.0.0.1:5080. A port that is taken skips its case.
        self.dns = DnsServer({"host": {"services.example.com": HOST}})
        self.dns.start()
        self.addCleanup(self.dns.stop)
        self.route_targets: dict[int, UpstreamSocket] = {}
        for port in ROUTE_PORTS.values():
            try:
                self.route_targets[port] = UpstreamSocket(port)
                self.addCleanup(self.route_targets[port].close)
            except OSError:
                pass
        self.sw = self.sipwitness(upstream_port=self.upstream.port, upstream_transport="udp",
                                  extra_config=f'dns: {{ servers: ["{self.dns.address}"] }}')

    # -- what the phone sends ------------------------------------------------------
    def send(self, transport: str, data: bytes) -> UdpClient | TcpClient:
        """Send data as the phone, from a new socket (or connection)."""
        if transport == "udp":
            client = UdpClient()
            self.addCleanup(client.close)
            client.send(data, (HOST, self.sw.udp_port))
            return client
        client = TcpClient((HOST, self.sw.tcp_port))
        self.addCleanup(client.close)
        client.send(data)
        return client

    def check_request(self, transport: str, name: str) -> None:
        data = hostile.torture_message(name)
        call_id = call_id_of(data)
        expect = REQUESTS[name]
        if transport == "tcp" and name == "clerr":
            # A stream: the body promised by Content-Length has not come yet, so
            # the proxy waits for it (RFC 4475 3.1.2.2) and relays nothing.
            client = self.send(transport, data)
            self.assertEqual(self.upstream.receive(call_id, 0.5), (None, None))
            answer = client.recv(0.1)
            self.assertIsNone(answer, f"tcp clerr: answered before the body came:\n{answer}")
            self.assertFalse(client.closed, "tcp clerr: connection closed while waiting for the body")
            return
        drops = drop_lines(self.sw.log())
        client = self.send(transport, data)
        kind = expect[0]
        if kind == "reply":
            answer = client.recv(2.0)
            self.assertIsNotNone(answer, f"{transport} {name}: expected {sorted(expect[1])}, "
                                 "got no answer")
            self.assertIn(status_code(answer), expect[1], f"{transport} {name}:\n{answer}")
            if name == "bext01":  # RFC 3261 16.3 step 5: list the tags not understood
                unsupported = ",".join(header_values(answer, "unsupported")).replace(" ", "")
                self.assertEqual(sorted(unsupported.split(",")),
                                 ["noProxiesSupportThis", "norDoAnyProxiesSupportThis"], answer)
            self.assertEqual(self.upstream.receive(call_id, 0.2), (None, None),
                             f"{transport} {name}: answered and relayed as well")
            return
        if kind == "route":
            port = ROUTE_PORTS[name]
            if port not in self.route_targets:
                self.skipTest(f"127.0.0.1:{port} is taken")
            got, _ = self.route_targets[port].receive(call_id, 2.0)
            self.assertIsNotNone(got, f"{transport} {name}: not relayed to its Route "
                                 f"(127.0.0.1:{port}); the phone got: {client.recv(0.1)}")
            if name == "mpart01":
                # RFC 3261 16.6 step 6: a Route without lr is a strict router: its URI
                # becomes the Request-URI and the Request-URI goes last in Route.
                text = got.decode("utf-8", "replace")
                self.assertEqual(start_line(text), f"MESSAGE sip:{HOST}:{port} SIP/2.0", text)
                self.assertIn("<sip:kumiko@example.org>", header_values(text, "route")[-1], text)
                self.assertTrue(got.endswith(data.split(b"\r\n\r\n", 1)[1]), "multipart body changed")
            return
        # relay to the upstream
        got, _ = self.upstream.receive(call_id, 2.0)
        self.assertIsNotNone(got, f"{transport} {name}: not relayed; the phone got: {client.recv(0.1)}")
        text = got.decode("utf-8", "replace")
        if name == "dblreq":  # the INVITE after Content-Length: 0 is not a message
            self.assertEqual(start_line(text).split(" ")[0], "REGISTER")
            self.assertEqual(self.upstream.receive(
                "dblreq.0ha0isnda977644900765@192.0.2.15", 0.3), (None, None))

    def relay_response(self, name: str) -> tuple[str | None, str]:
        """Make a request of the phone's go upstream, then answer it with the
        torture response under the forwarded request's Vias (bcast keeps its
        255.255.255.255 Via below sipwitness's). Returns (what the phone got,
        the response sent)."""
        torture = hostile.torture_message(name).decode("utf-8", "replace")
        head, sep, body = torture.partition("\r\n\r\n")
        with UdpClient() as phone:
            branch = "z9hG4bK-" + name
            phone.send(make_request(via=phone.via(branch, ";rport"),
                                            call_id=call_id_of(torture.encode())),
                       (HOST, self.sw.udp_port))
            forwarded, source = self.upstream.receive(call_id_of(torture.encode()), 2.0)
            self.assertIsNotNone(forwarded, f"{name}: the carrier OPTIONS was not relayed")
            vias = header_values(forwarded.decode(), "via")
            if name == "bcast":
                vias = [vias[0], "SIP/2.0/UDP 255.255.255.255;branch=z9hG4bK1saber23"]
            lines = [line for line in head.split("\r\n") if not re.match(r"(?i)(via|v)\s*:", line)]
            response = "\r\n".join(lines[:1] + [f"Via: {v}" for v in vias] + lines[1:]) + sep + body
            self.upstream.sock.sendto(response.encode(), source)
            return phone.recv(1.0), response

    # -- tests ---------------------------------------------------------------------
    def test_udp(self):
        cases = hostile.torture_cases()
        self.assertEqual(set(cases), set(REQUESTS) | set(RESPONSES), "a torture case without "
                         "an expectation here (or one left over)")
        with self.sw as sw:
            for name in REQUESTS:
                with self.subTest(transport="udp", case=name):
                    self.check_request("udp", name)
                self.assertTrue(sw.alive(), f"sipwitness died after udp {name}")
            for name, expect in RESPONSES.items():
                with self.subTest(transport="udp", case=name):
                    drops = drop_lines(sw.log())
                    got, sent = self.relay_response(name)
                    if expect == "relay":
                        self.assertIsNotNone(got, f"{name}: valid response not relayed")
                        self.assertEqual(start_line(got), start_line(sent))
                    else:
                        self.assertIsNone(got, f"{name}: expected a drop, the phone got:\n{got}")
                        self.assertTrue(more_drops(sw, drops), f"{name}: no drop line")
                self.assertTrue(sw.alive(), f"sipwitness died after response {name}")

    def test_tcp(self):
        with self.sw as sw:
            for name in TCP_CASES:
                with self.subTest(transport="tcp", case=name):
                    self.check_request("tcp", name)
                self.assertTrue(sw.alive(), f"sipwitness died after tcp {name}")


class Scanners(E2ETestCase):
    def test_scanners_during_good_calls(self):
        (self.tmp / "sipwitness").mkdir()
        (self.tmp / "sipwitness" / "users.yaml").write_text(
            'users:\n  - { username: "1001", password: "secret1001" }\n')
        challenge = ("challenge:\n  enabled: true\n  realm: lab.example\n  methods: [REGISTER]\n"
                     "  algorithms: [MD5]\n  users: users.yaml\n"
                     f"  max_failures: {MAX_FAILURES}\n  failure_window: 60s\n  block_time: 60s\n")
        # The provider takes the good calls and whatever scanners get past sipwitness.
        provider_calls = GOOD_CALLS + SWEEP + FLOOD
        prov = self.start_sipp(hostile.PROVIDER_SCENARIO, transport="udp", calls=provider_calls,
                               timeout=60, name="provider", trace_messages=False,
                               extra_args=["-buff_size", str(4 * 1024 * 1024)])
        with self.sipwitness(upstream_port=prov.port, upstream_transport="udp", level="info",
                             extra_config=challenge) as sw:
            target = (HOST, sw.udp_port)
            phone = self.start_sipp("uac_call.xml", target, transport="udp", calls=GOOD_CALLS,
                                    rate=GOOD_RATE, service=hostile.PROVIDER_USER, timeout=60,
                                    name="phone", trace_messages=False)
            results: dict = {}
            scanners = {
                "sweep": lambda: hostile.options_sweep(target, SWEEP, rate=150),
                "brute": lambda: hostile.register_brute_force(
                    target, [f"{100 + i}" for i in range(BRUTE_USERS)]),
                "flood": lambda: hostile.invite_flood(target, FLOOD, rate=150),
                "malformed": lambda: hostile.malformed_burst(target),
            }
            threads = [threading.Thread(target=lambda k=k, f=f: results.__setitem__(k, f()))
                       for k, f in scanners.items()]
            started = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=30)
            overlapped = phone.running()
            scan_time = time.monotonic() - started
            phoner, provr = phone.wait(), prov.wait()
            self.assertTrue(sw.alive(), "sipwitness died")
            self.assertEqual(set(results), set(scanners), "a scanner thread did not finish")
            self.assertTrue(overlapped, f"the good calls ended before the scanners ({scan_time:.1f} s)")
            self.assertSippOk(phoner, GOOD_CALLS, sw)

            sweep = results["sweep"]
            self.assertEqual(sweep[200], SWEEP, f"OPTIONS sweep: the provider's 200s, relayed: {sweep}")
            flood = results["flood"]
            self.assertEqual(flood[404], FLOOD, f"INVITE flood: the provider's 404s, relayed: {flood}")
            counts, sequence = results["brute"]
            self.assertNotIn(200, sequence, "brute force: a wrong password was accepted")
            # the first failures are challenged again, then the source is blocked: 403 only
            self.assertEqual(sequence[:2], [407, 407], sequence)
            self.assertIn(403, sequence, sequence)
            self.assertEqual(set(sequence[sequence.index(403):]), {403}, sequence)
            self.assertRegex(sw.log(), rf"auth-block: source=127\.0\.0\.66 user=\d+ "
                                       rf"failures={MAX_FAILURES}")
            # nothing of the brute force reached the provider: it counts only
            # the good calls, the sweep and the flood
            self.assertEqual(provr.created, provider_calls, provr.describe())
            sys.stderr.write(f"\nscanners ({scan_time:.1f} s): sweep {dict(sweep)}, flood {dict(flood)}, "
                             f"brute {dict(counts)}, malformed {dict(results['malformed'])}\n")


if __name__ == "__main__":
    unittest.main()
