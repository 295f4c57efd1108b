#!/usr/bin/env python3
"""Faults: an upstream that is unreachable (ICMP port unreachable), silent or
resets its TCP connection, or a next hop the kernel refuses to send to, gets
the phone a prompt 503/408 and the relay recovers by itself; a phone's TCP
connection dropping mid-message loses nothing else; SIGHUP with a broken config keeps the running one; SIGTERM
stops accepting, lets in-flight transactions finish within a deadline,
flushes the verdict log and exits 0. After each fault a real SIPp call
through sipwitness must succeed."""

from __future__ import annotations

import json
import signal
import socket
import struct
import sys
import threading
import time
import unittest
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (HOST, E2ETestCase, TcpClient, UdpClient, free_port, make_request,  # noqa: E402
                     status_code)


def response_to(request: str, code: int, reason: str) -> bytes:
    """A response a provider would send to a request it received (its Vias, From, To, Call-ID, CSeq)."""
    keep = [line for line in request.split("\r\n")
            if line.split(":", 1)[0].lower() in ("via", "from", "to", "call-id", "cseq")]
    return (f"SIP/2.0 {code} {reason}\r\n" + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n").encode()


class Faults(E2ETestCase):
    def assertCallSucceeds(self, sw, provider_port: int, transport: str = "udp", phone_transport: str = "udp"):
        """One INVITE/ACK/BYE call from a SIPp phone through sipwitness to a SIPp provider."""
        prov = self.start_sipp("uas_call.xml", transport=transport, port=provider_port, calls=1, timeout=20,
                               name="provider")
        prov.wait_listening()
        phone = self.run_sipp("uac_call.xml", (HOST, sw.port(phone_transport)), transport=phone_transport, calls=1,
                              service="2000", timeout=20, name="phone")
        self.assertSippOk(phone, 1, sw)
        self.assertSippOk(prov.wait(), 1, sw)

    def test_udp_upstream_port_unreachable_gets_503_at_once_then_recovers(self):
        port = free_port("udp")  # nothing listens: the kernel answers ICMP port unreachable
        with self.sipwitness(upstream_port=port, listen=("udp",)) as sw:
            with UdpClient() as phone:
                final, _ = self.assertAnsweredWithin(phone, (HOST, sw.udp_port), "OPTIONS", "z9hG4bKicmp1", 503, 1.0)
                self.assertIn("unreachable", final)
            self.assertIsNotNone(sw.wait_for_log(r"unreachable: udp 127\.0\.0\.1:\d+ .*OPTIONS"))
            self.assertCallSucceeds(sw, port)

    def test_next_hop_the_kernel_refuses_gets_503_at_once(self):
        # A datagram to the broadcast address fails in the send call itself
        # (no SO_BROADCAST): the request's transaction fails on the spot, also
        # when its datagram waited to leave with the rest of a burst.
        port = free_port("udp")
        with self.sipwitness(upstream_port=port, listen=("udp",)) as sw:
            with UdpClient() as phone:
                phone.send(make_request("OPTIONS", via=phone.via("z9hG4bKbcast1"),
                                        extra_headers=["Route: <sip:255.255.255.255:5099;lr>"]),
                           (HOST, sw.udp_port))
                started = time.monotonic()
                final, _ = phone.recv_final(timeout=3, branch="z9hG4bKbcast1")
                self.assertIsNotNone(final, "no answer to a request whose next hop cannot be sent to")
                self.assertEqual(status_code(final), 503, final)
                self.assertLess(time.monotonic() - started, 1.0)
            self.assertIsNotNone(sw.wait_for_log(r"send to udp 255\.255\.255\.255:5099 failed"))
            self.assertCallSucceeds(sw, port)

    def test_silent_upstream_gets_408_then_recovers(self):
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        silent.bind((HOST, 0))  # receives, never answers
        port = silent.getsockname()[1]
        try:
            with self.sipwitness(upstream_port=port, listen=("udp",), upstream_config="failover_after: 1s") as sw:
                with UdpClient() as phone:
                    _, waited = self.assertAnsweredWithin(phone, (HOST, sw.udp_port), "INVITE", "z9hG4bKsilent1",
                                                          408, 2.5)
                    self.assertGreater(waited, 0.8, "408 only after failover_after")
                    # A late answer after our 408 is kept from the phone: it has its final answer.
                    self.assertAnsweredWithin(phone, (HOST, sw.udp_port), "OPTIONS", "z9hG4bKsilent2", 408, 2.5)
                    silent.settimeout(1)
                    while True:
                        late, source = silent.recvfrom(65535)
                        if late.startswith(b"OPTIONS "):
                            break
                    silent.sendto(response_to(late.decode(), 200, "OK"), source)
                    self.assertIsNone(phone.recv(timeout=1.0), "a late 200 must not follow our 408")
                silent.close()
                self.assertCallSucceeds(sw, port)
        finally:
            silent.close()

    def test_tcp_upstream_reset_gets_503_then_recovers(self):
        port = free_port("tcp")
        upstream = socket.create_server((HOST, port))
        upstream.settimeout(5)
        try:
            with self.sipwitness(upstream_uri=f"sip:{HOST}:{port};transport=tcp") as sw:
                with UdpClient() as phone:
                    branch = "z9hG4bKreset1"
                    phone.send(make_request("OPTIONS", via=phone.via(branch)), (HOST, sw.udp_port))
                    conn, _ = upstream.accept()
                    conn.settimeout(5)
                    data = b""
                    while b"\r\n\r\n" not in data:
                        data += conn.recv(4096)
                    # SO_LINGER 0: close sends a RST, as a crashed or overloaded provider does.
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    started = time.monotonic()
                    conn.close()
                    final, _ = phone.recv_final(timeout=3, branch=branch)
                    self.assertIsNotNone(final, "no answer after the upstream reset the connection")
                    self.assertEqual(status_code(final), 503, final)
                    self.assertLess(time.monotonic() - started, 1.0)
                upstream.close()
                self.assertCallSucceeds(sw, port, transport="tcp")
        finally:
            upstream.close()

    def test_phone_tcp_drop_mid_message_loses_nothing_else(self):
        provider = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        provider.bind((HOST, 0))
        provider.settimeout(0.5)
        port = provider.getsockname()[1]
        with self.sipwitness(upstream_port=port) as sw:
            client = TcpClient((HOST, sw.tcp_port))
            whole = make_request("REGISTER", "sip:example.test", via=client.via("z9hG4bKhalf1"))
            client.send(whole[: len(whole) // 2])
            client.close()
            self.assertIsNotNone(sw.wait_for_log(r"closed mid-message: \d+ bytes of an unfinished message discarded"))
            with self.assertRaises(socket.timeout):
                provider.recvfrom(65535)  # half a message is never relayed
            provider.close()
            self.assertCallSucceeds(sw, port, phone_transport="tcp")

    def test_sighup_with_broken_config_keeps_the_running_one(self):
        port = free_port("udp")
        with self.sipwitness(upstream_port=port, listen=("udp",)) as sw:
            good = sw.config_path.read_text()
            sw.config_path.write_text(good + "limits: { max_headers: many }\n")
            sw.proc.send_signal(signal.SIGHUP)
            kept = sw.wait_for_log(r"SIGHUP: kept the running config: \S*sipwitness\.yaml:\d+:\d+: limits\.max_headers")
            self.assertIsNotNone(kept, "a broken config must be reported with file:line:col and the key")
            self.assertTrue(sw.alive())
            self.assertCallSucceeds(sw, port)
            # A good file is taken: debug tracing stops once log.level is info.
            sw.config_path.write_text(good.replace("level: debug", "level: info"))
            sw.proc.send_signal(signal.SIGHUP)
            self.assertIsNotNone(sw.wait_for_log(r"SIGHUP: reloaded the config"))
            traced_before = sw.log().count("<- phone")
            self.assertCallSucceeds(sw, port)
            self.assertEqual(sw.log().count("<- phone"), traced_before, "log.level: info must stop the trace")

    def test_sigterm_drains_in_flight_transactions(self):
        provider = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        provider.bind((HOST, 0))
        provider.settimeout(5)
        port = provider.getsockname()[1]
        sw = self.sipwitness(upstream_port=port, extra_config="relay: { drain_timeout: 5s }")
        sw.start()
        try:
            with UdpClient() as phone:
                branch = "z9hG4bKdrain1"
                phone.send(make_request("REGISTER", "sip:example.test", via=phone.via(branch)), (HOST, sw.udp_port))
                request, _ = provider.recvfrom(65535)
                sw.proc.send_signal(signal.SIGTERM)
                self.assertIsNotNone(sw.wait_for_log(r"draining: 1 transaction"))
                # New work is refused while draining: a new connection, and a new request (503).
                with self.assertRaises(OSError):
                    socket.create_connection((HOST, sw.tcp_port), timeout=1).close()
                phone.send(make_request("OPTIONS", via=phone.via("z9hG4bKlate1")), (HOST, sw.udp_port))
                refused, _ = phone.recv_final(timeout=3, branch="z9hG4bKlate1")
                self.assertEqual(status_code(refused or ""), 503, refused)
                # The transaction in flight still completes.
                time.sleep(0.5)
                self.assertTrue(sw.alive(), "must wait for the transaction in flight")
                provider.sendto(response_to(request.decode(), 200, "OK"), (HOST, sw.udp_port))
                final, _ = phone.recv_final(timeout=3, branch=branch)
                self.assertEqual(status_code(final or ""), 200, final)
                sw.expect_exit(timeout=3)
        finally:
            sw.stop()  # only when the test failed before the exit
            provider.close()
        lines = [json.loads(line) for line in (sw.workdir / "verdicts.jsonl").read_text().splitlines()]
        verdicts = {(v["method"], v["verdict"]) for v in lines}
        self.assertIn(("REGISTER", "ok"), verdicts, lines)

    def test_sigterm_deadline_bounds_the_drain(self):
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        silent.bind((HOST, 0))
        port = silent.getsockname()[1]
        sw = self.sipwitness(upstream_port=port, listen=("udp",), upstream_config="failover_after: 30s",
                             extra_config="relay: { drain_timeout: 1s }")
        try:
            sw.start()
            with UdpClient() as phone:
                phone.send(make_request("INVITE", via=phone.via("z9hG4bKstuck1")), (HOST, sw.udp_port))
                silent.recvfrom(65535)
                started = time.monotonic()
                sw.proc.send_signal(signal.SIGTERM)
                sw.expect_exit(timeout=5)
                waited = time.monotonic() - started
            self.assertGreater(waited, 0.8)
            self.assertLess(waited, 3.0)
            self.assertIsNotNone(sw.wait_for_log(r"drain: 1 transaction still pending after 1s"))
        finally:
            sw.stop()
            silent.close()


if __name__ == "__main__":
    unittest.main()
