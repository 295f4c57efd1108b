#!/usr/bin/env python3
"""Malformed input while calls are running.

A SIPp load (200 INVITE/ACK/BYE calls over UDP) runs through sipwitness while
hand-made malformed messages are thrown at its UDP and TCP listeners:
  * with a usable Via: a 400 (or 483 for Max-Forwards: 0; 400/413/513 for an
    oversized message) must come back to the sender, matching its branch;
  * without one: no answer, and a log line containing "drop";
  * TCP: a framing error ends in a 400 and/or the connection being closed, and
    a new connection is served normally afterwards.
Nothing malformed may reach the provider (the provider SIPp would count an
unexpected message as a failed call), every SIPp call must succeed, and
sipwitness must still be alive and exit cleanly.
"""

import os
import re
import sys
import time
import unittest
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (HOST, E2ETestCase, TcpClient, UdpClient, header_values,  # noqa: E402
                     make_request, status_code, via_param)

CALLS = 200
RATE = 10  # calls/s: the load lasts ~20 s, longer than the malformed barrage
GARBAGE = bytes((i * 37 + 11) % 256 for i in range(1024))  # deterministic junk


def drop_count(log: str) -> int:
    return len(re.findall(r"\bdrop", log))


class Malformed(E2ETestCase):
    def test_malformed_during_load(self):
        prov = self.start_sipp("uas_call.xml", transport="udp", calls=CALLS, timeout=90,
                               name="provider", trace_messages=False)
        with self.sipwitness(upstream_port=prov.port, upstream_transport="udp") as sw:
            phone = self.start_sipp("uac_call.xml", (HOST, sw.udp_port), transport="udp",
                                    calls=CALLS, rate=RATE, service="2000", timeout=90,
                                    name="phone", trace_messages=False)
            try:
                self.udp_cases(sw)
                self.tcp_cases(sw)
                self.assertTrue(phone.running(), "the load finished before the barrage did: "
                                "raise CALLS or lower RATE so they overlap")
            finally:
                phoner = phone.wait()
                provr = prov.wait()
            self.assertTrue(sw.alive(), "sipwitness died")
            self.assertSippOk(phoner, CALLS, sw)
            self.assertSippOk(provr, CALLS, sw)

    # -- helpers -------------------------------------------------------------------
    def expect_drop(self, sw, before: int, what: str) -> None:
        deadline = time.monotonic() + 3
        while drop_count(sw.log()) <= before and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertGreater(drop_count(sw.log()), before,
                           f"{what}: expected a log line containing 'drop'")

    def check_error_response(self, msg: str | None, codes: set[int], branch: str, what: str) -> None:
        self.assertIsNotNone(msg, f"{what}: expected a {sorted(codes)} response, got nothing")
        self.assertIn(status_code(msg), codes, f"{what}: unexpected answer:\n{msg}")
        vias = header_values(msg, "via")
        self.assertTrue(vias and via_param(vias[0], "branch") == branch,
                        f"{what}: the response must carry the request's Via (branch {branch}):\n{msg}")

    # -- UDP -----------------------------------------------------------------------
    def udp_cases(self, sw) -> None:
        addr = (HOST, sw.udp_port)
        with UdpClient() as c:
            def req(branch, **kw):
                return make_request(via=c.via(branch), **kw)

            # (name, datagram, expected status set or None for "dropped", branch)
            cases = [
                ("truncated mid-header",
                 b"OPTIONS sip:2000@example.test SIP/2.0\r\nVia: " + c.via("z9hG4bKu-trunc").encode()
                 + b"\r\nFrom: <sip:1001@exa", {400}, "z9hG4bKu-trunc"),
                ("Content-Length not numeric",
                 req("z9hG4bKu-clnan", content_length="abc"), {400}, "z9hG4bKu-clnan"),
                ("Content-Length larger than the body",
                 req("z9hG4bKu-clbig", body=b"0123456789", content_length="500"), {400},
                 "z9hG4bKu-clbig"),
                ("Content-Length negative",
                 req("z9hG4bKu-clneg", content_length="-1"), {400}, "z9hG4bKu-clneg"),
                ("garbage bytes", GARBAGE, None, None),
                ("garbage text", b"hello, is it me you're looking for?\r\n\r\n", None, None),
                ("request line only", b"OPTIONS sip:2000@example.test SIP/2.0\r\n\r\n", None, None),
                ("60 KB header (largest datagram)",
                 req("z9hG4bKu-big", extra_headers=["X-Big: " + "a" * 60_000]), {400, 413, 513},
                 "z9hG4bKu-big"),
                ("missing Via", make_request(via=None), None, None),
                ("stray response (Via not sipwitness's)",
                 b"SIP/2.0 200 OK\r\nVia: " + c.via("z9hG4bKu-stray").encode()
                 + b"\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: stray@e2e\r\n"
                 b"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", None, None),
                ("Max-Forwards: 0", req("z9hG4bKu-mf0", max_forwards=0), {483}, "z9hG4bKu-mf0"),
            ]
            for name, data, codes, branch in cases:
                with self.subTest(transport="udp", case=name):
                    before = drop_count(sw.log())
                    c.send(data, addr)
                    if codes is None:
                        got = c.recv(0.7)
                        self.assertIsNone(got, f"udp {name}: expected no answer, got:\n{got}")
                        self.expect_drop(sw, before, f"udp {name}")
                    else:
                        got, _ = c.recv_final(3.0, branch=None)
                        self.check_error_response(got, codes, branch, f"udp {name}")
                    self.assertTrue(sw.alive(), f"sipwitness died after udp {name}")

    # -- TCP -----------------------------------------------------------------------
    def tcp_still_serves(self, sw, what: str) -> None:
        """A fresh connection gets a 483 for a Max-Forwards: 0 request."""
        with TcpClient((HOST, sw.tcp_port)) as c:
            branch = "z9hG4bKt-probe" + os.urandom(3).hex()
            c.send(make_request(via=c.via(branch), max_forwards=0))
            got, _ = c.recv_final(3.0)
            self.check_error_response(got, {483}, branch, f"new connection after tcp {what}")

    def tcp_framing_error(self, sw, name: str, data: bytes, branch: str | None,
                          codes: set[int]) -> None:
        """Framing errors: an error response and/or the connection closed, never silence."""
        with TcpClient((HOST, sw.tcp_port)) as c:
            c.send(data)
            got = c.recv(2.0)
            closed = c.wait_closed(1.0)
            if got is not None:
                self.check_error_response(got, codes, branch, f"tcp {name}")
            self.assertTrue(got is not None or closed,
                            f"tcp {name}: expected {sorted(codes)} and/or the connection closed; "
                            "got neither")
        self.tcp_still_serves(sw, name)

    def tcp_cases(self, sw) -> None:
        addr = (HOST, sw.tcp_port)
        via = lambda branch: f"SIP/2.0/TCP 127.0.0.1:5060;branch={branch}"  # noqa: E731

        with self.subTest(transport="tcp", case="Content-Length not numeric"):
            self.tcp_framing_error(sw, "Content-Length not numeric",
                                   make_request(via=via("z9hG4bKt-clnan"), content_length="abc"),
                                   "z9hG4bKt-clnan", {400})
        with self.subTest(transport="tcp", case="Content-Length negative"):
            self.tcp_framing_error(sw, "Content-Length negative",
                                   make_request(via=via("z9hG4bKt-clneg"), content_length="-1"),
                                   "z9hG4bKt-clneg", {400})
        with self.subTest(transport="tcp", case="200 KB header"):
            self.tcp_framing_error(sw, "200 KB header",
                                   make_request(via=via("z9hG4bKt-big"),
                                                extra_headers=["X-Big: " + "a" * 200_000]),
                                   "z9hG4bKt-big", {400, 413, 513})
        with self.subTest(transport="tcp", case="200 KB of headers"):
            self.tcp_framing_error(sw, "200 KB of headers",
                                   make_request(via=via("z9hG4bKt-many"),
                                                extra_headers=[f"X-H{i}: " + "b" * 1000
                                                               for i in range(200)]),
                                   "z9hG4bKt-many", {400, 413, 513})

        with self.subTest(transport="tcp", case="garbage bytes"):
            before = drop_count(sw.log())
            with TcpClient(addr) as c:
                c.send(GARBAGE + b"\r\n\r\n")
                got = c.recv(1.0)
                self.assertIsNone(got, f"tcp garbage: expected no answer, got:\n{got}")
                closed = c.wait_closed(1.0)
            self.assertTrue(closed or drop_count(sw.log()) > before,
                            "tcp garbage: expected the connection closed or a 'drop' log line")
            self.tcp_still_serves(sw, "garbage bytes")

        with self.subTest(transport="tcp", case="missing Via"):
            before = drop_count(sw.log())
            with TcpClient(addr) as c:
                c.send(make_request(via=None))
                got = c.recv(0.7)
                self.assertIsNone(got, f"tcp missing Via: expected no answer, got:\n{got}")
            self.expect_drop(sw, before, "tcp missing Via")
            self.tcp_still_serves(sw, "missing Via")

        with self.subTest(transport="tcp", case="truncated, then closed"):
            with TcpClient(addr) as c:
                c.send(b"OPTIONS sip:2000@example.test SIP/2.0\r\nVia: "
                       + via("z9hG4bKt-trunc").encode() + b"\r\nFrom: <sip:1001@exa")
                time.sleep(0.2)
            self.tcp_still_serves(sw, "truncated")

        with self.subTest(transport="tcp", case="Max-Forwards: 0"):
            self.tcp_still_serves(sw, "Max-Forwards: 0")

        with self.subTest(transport="tcp", case="two requests in one segment"):
            with TcpClient(addr) as c:
                c.send(make_request(via=via("z9hG4bKt-pipe1"), max_forwards=0)
                       + make_request(via=via("z9hG4bKt-pipe2"), max_forwards=0))
                first, _ = c.recv_final(3.0)
                second, _ = c.recv_final(3.0)
                self.check_error_response(first, {483}, "z9hG4bKt-pipe1", "tcp pipelined #1")
                self.check_error_response(second, {483}, "z9hG4bKt-pipe2", "tcp pipelined #2")

        with self.subTest(transport="tcp", case="request split across segments"):
            with TcpClient(addr) as c:
                data = make_request(via=via("z9hG4bKt-split"), max_forwards=0)
                for i in range(0, len(data), 40):
                    c.send(data[i:i + 40])
                    time.sleep(0.01)
                got, _ = c.recv_final(3.0)
                self.check_error_response(got, {483}, "z9hG4bKt-split", "tcp split request")

        self.assertTrue(sw.alive(), "sipwitness died during the TCP cases")


if __name__ == "__main__":
    unittest.main()
