#!/usr/bin/env python3
"""Loop: sipwitness's upstream is sipwitness itself.

A request from a phone whose Request-URI also names sipwitness goes round and
round; it must end in 482 Loop Detected or 483 Too Many Hops back at the phone
within a few seconds (not a crash, not a storm), and the log must say so.
"""

import sys
import time
import unittest
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (HOST, E2ETestCase, TcpClient, UdpClient, free_port,  # noqa: E402
                     header_values, make_request, status_code, via_param)

LOOP_CODES = {482, 483}


class Loop(E2ETestCase):
    def looping_sipwitness(self, transport: str):
        port = free_port("both")
        return self.sipwitness(
            upstream_uri=f"sip:{HOST}:{port};transport={transport}",
            listen=(("udp", port), ("tcp", port)),
        ), port

    def assertQuiet(self, sw, what: str) -> None:
        """No storm: once the answer is back, the log stops growing."""
        time.sleep(0.5)
        size = len(sw.log())
        time.sleep(1.5)
        grown = len(sw.log()) - size
        self.assertLess(grown, 2000, f"{what}: log still growing {grown} bytes/1.5 s after the "
                        "answer: a message storm?")
        self.assertTrue(sw.alive(), f"{what}: sipwitness died")

    def assertLoopAnswer(self, final, seen, branch, sw, what: str) -> None:
        self.assertIsNotNone(final, f"{what}: no final response within the timeout; got "
                             f"{[m.splitlines()[0] for m in seen]}")
        self.assertIn(status_code(final), LOOP_CODES, f"{what}: expected 482/483:\n{final}")
        vias = header_values(final, "via")
        self.assertEqual(len(vias), 1, f"{what}: the phone should get only its own Via back:\n{final}")
        self.assertEqual(via_param(vias[0], "branch"), branch)
        self.assertRegex(sw.log(), r"(?i)\b48[23]\b|loop|too many hops",
                         f"{what}: the log should mention the loop")

    def udp_request(self, sw, port, method):
        with UdpClient() as c:
            branch = f"z9hG4bKloop-{method.lower()}"
            ruri = f"sip:2000@{HOST}:{port}"
            call_id, from_tag = f"loop-{method.lower()}@e2e", "looptag"
            extra = ["Contact: <sip:1001@127.0.0.1:9>"] if method == "INVITE" else []
            c.send(make_request(method, ruri, via=c.via(branch, ";rport"), call_id=call_id,
                                from_tag=from_tag, extra_headers=extra),
                   (HOST, sw.udp_port))
            final, seen = c.recv_final(10.0, branch=branch)
            self.assertLoopAnswer(final, seen, branch, sw, f"udp {method}")
            if method == "INVITE":  # ACK the failure like a phone would (same branch)
                to = header_values(final, "to")[0]
                c.send(make_request("ACK", ruri, via=c.via(branch, ";rport"), call_id=call_id,
                                    from_tag=from_tag, to=to),
                       (HOST, sw.udp_port))
            self.assertQuiet(sw, f"udp {method}")

    def test_udp_options_loop(self):
        sw, port = self.looping_sipwitness("udp")
        with sw:
            self.udp_request(sw, port, "OPTIONS")

    def test_udp_invite_loop(self):
        sw, port = self.looping_sipwitness("udp")
        with sw:
            self.udp_request(sw, port, "INVITE")

    def test_tcp_loop(self):
        sw, port = self.looping_sipwitness("tcp")
        with sw:
            with TcpClient((HOST, sw.tcp_port)) as c:
                branch = "z9hG4bKloop-tcp"
                c.send(make_request("OPTIONS", f"sip:2000@{HOST}:{port};transport=tcp",
                                    via=c.via(branch, ";rport")))
                final, seen = c.recv_final(10.0)
                self.assertLoopAnswer(final, seen, branch, sw, "tcp OPTIONS")
            self.assertQuiet(sw, "tcp OPTIONS")

    def test_loop_does_not_block_later_requests(self):
        """After a loop, a normal Max-Forwards: 0 request is still answered at once."""
        sw, port = self.looping_sipwitness("udp")
        with sw:
            self.udp_request(sw, port, "OPTIONS")
            with UdpClient() as c:
                c.send(make_request(via=c.via("z9hG4bKafter"), max_forwards=0), (HOST, sw.udp_port))
                final, _ = c.recv_final(2.0)
                self.assertEqual(status_code(final or ""), 483, final)


if __name__ == "__main__":
    unittest.main()
