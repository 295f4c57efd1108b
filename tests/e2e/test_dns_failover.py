#!/usr/bin/env python3
"""RFC 3263 upstream resolution and failover, with a real DNS server.

dnsmasq on loopback publishes a fake provider domain: a NAPTR record pointing
at SRV records for two targets, a.provider.test (priority 10) and
b.provider.test (priority 20), each a SIPp registrar on its own port. The
phones are SIPp too. sipwitness is configured with `upstream.uri:
sip:provider.test` (no port, no transport: NAPTR decides) and `dns.servers`.

  - the preferred target gets the traffic, the other none;
  - a silent preferred target is marked down after upstream.failover_after and
    the request goes on to the second one: the phone still gets its 200;
  - once upstream.retry_after has passed and the preferred target is back, it
    gets the traffic again;
  - a 503 with Retry-After from the preferred target is answered by trying
    the next one; the phone never sees the 503.
"""

from __future__ import annotations

import socket
import sys
import time
import unittest

import harness
from dns_server import DnsServer
from harness import E2ETestCase, HOST, free_port, start_line

FAILOVER_AFTER = 1  # seconds
RETRY_AFTER = 3


def provider_records(port_a: int, port_b: int) -> dict:
    return {
        "naptr": [("provider.test", 10, 50, "s", "SIP+D2U", "_sip._udp.provider.test")],
        "srv": [("_sip._udp.provider.test", "a.provider.test", port_a, 10, 60),
                ("_sip._udp.provider.test", "b.provider.test", port_b, 20, 0)],
        "host": {"a.provider.test": HOST, "b.provider.test": HOST},
    }


class FailoverSipwitness(harness.Sipwitness):
    """sipwitness with upstream.uri sip:provider.test and the test DNS server."""

    def __init__(self, dns_address: str, **kw):
        super().__init__("sip:provider.test", listen=("udp",), **kw)
        self.dns_address = dns_address

    def config_text(self) -> str:
        return (
            "listen:\n"
            f"  - {{ transport: udp, host: {HOST}, port: 0 }}\n"
            "upstream:\n"
            '  uri: "sip:provider.test"\n'
            f"  failover_after: {FAILOVER_AFTER}s\n"
            f"  retry_after: {RETRY_AFTER}s\n"
            f'dns: {{ servers: ["{self.dns_address}"] }}\n'
            f"log: {{ level: {self.level} }}\n"
        )


def registers(result) -> int:
    return sum(1 for m in result.received() if start_line(m).startswith("REGISTER "))


class DnsFailoverTest(E2ETestCase):
    def setUp(self) -> None:
        super().setUp()
        self.port_a = free_port("udp")
        self.port_b = free_port("udp")
        self.dns = DnsServer(provider_records(self.port_a, self.port_b))
        self.dns.__enter__()
        self.addCleanup(self.dns.__exit__, None, None, None)

    def start_proxy(self) -> FailoverSipwitness:
        workdir = self.tmp / "sipwitness"
        workdir.mkdir(parents=True, exist_ok=True)
        sw = FailoverSipwitness(self.dns.address, workdir=str(workdir))
        sw.start()
        self.addCleanup(sw.stop, False)
        return sw

    def registrar(self, port: int, scenario: str = "provider_registrar.xml", calls: int = 10):
        return self.start_sipp(scenario, port=port, calls=calls, name=f"{scenario[:-4]}-{port}", timeout=30)

    def register(self, sw: FailoverSipwitness, name: str) -> harness.SippResult:
        return self.run_sipp("phone_register.xml", (HOST, sw.udp_port), calls=1, timeout=15, name=name)

    def test_preferred_target_then_failover_on_silence_then_back(self) -> None:
        a = self.registrar(self.port_a)
        b = self.registrar(self.port_b)
        sw = self.start_proxy()
        self.assertIsNotNone(sw.wait_for_log(r"upstream sip:provider\.test: NAPTR", timeout=5), sw.log())

        self.assertSippOk(self.register(sw, "phone-1"), 1)
        a_result, b_result = a.stop(), b.stop()
        self.assertEqual(registers(a_result), 1, "the priority-10 target gets the REGISTER")
        self.assertEqual(registers(b_result), 0, "the priority-20 target gets nothing while the first answers")

        # The preferred target goes silent: a socket holds its port and never answers.
        b = self.registrar(self.port_b)
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        silent.bind((HOST, self.port_a))
        try:
            started = time.monotonic()
            self.assertSippOk(self.register(sw, "phone-2"), 1)
            self.assertGreaterEqual(time.monotonic() - started, FAILOVER_AFTER - 0.2)
            self.assertRegex(sw.log(), rf"upstream udp:127\.0\.0\.1:{self.port_a} marked down for {RETRY_AFTER}s: "
                                       rf"no answer from the upstream within {FAILOVER_AFTER}s")
            # While it is down, requests go straight to the second target.
            started = time.monotonic()
            self.assertSippOk(self.register(sw, "phone-3"), 1)
            self.assertLess(time.monotonic() - started, FAILOVER_AFTER, "no wait for the target known to be down")
        finally:
            silent.close()
        self.assertEqual(registers(b.stop()), 2)

        # The preferred target comes back; after retry_after it is used again.
        a = self.registrar(self.port_a)
        time.sleep(RETRY_AFTER + 0.5)
        self.assertSippOk(self.register(sw, "phone-4"), 1)
        self.assertEqual(registers(a.stop()), 1, "back on the preferred target")
        self.assertIsNotNone(sw.wait_for_log(rf"upstream udp:127\.0\.0\.1:{self.port_a} answers again", timeout=2))

    def test_unreachable_target_is_left_at_once(self) -> None:
        """Nothing listens on the preferred target's port: its ICMP port
        unreachable moves the request on without waiting for failover_after."""
        b = self.registrar(self.port_b)
        sw = self.start_proxy()
        started = time.monotonic()
        self.assertSippOk(self.register(sw, "phone-icmp"), 1)
        self.assertLess(time.monotonic() - started, FAILOVER_AFTER - 0.5, "an ICMP error needs no timer")
        self.assertEqual(registers(b.stop()), 1)
        self.assertRegex(sw.log(), rf"upstream udp:127\.0\.0\.1:{self.port_a} marked down for {RETRY_AFTER}s: "
                                   r"next hop unreachable: udp 127\.0\.0\.1:\d+ Connection refused")

    def test_503_with_retry_after_moves_on_to_the_next_target(self) -> None:
        busy = self.registrar(self.port_a, "provider_registrar_503.xml", calls=1)
        b = self.registrar(self.port_b)
        sw = self.start_proxy()
        result = self.register(sw, "phone-503")
        self.assertSippOk(result, 1)
        self.assertFalse(any(start_line(m).startswith("SIP/2.0 503") for m in result.received()),
                         "the phone never sees the 503 its request was moved past")
        self.assertEqual(registers(busy.stop()), 1)
        self.assertEqual(registers(b.stop()), 1)
        log = sw.log()
        self.assertRegex(log, rf"upstream udp:127\.0\.0\.1:{self.port_a} marked down for 4s: answered 503")
        self.assertIn("failover: 503 from udp:127.0.0.1:", log)

    def test_unknown_domain_gets_503_with_the_reason_logged(self) -> None:
        self.dns.restart({"host": {"other.test": HOST}, "srv": [], "naptr": []})
        sw = self.start_proxy()
        result = self.run_sipp("phone_register.xml", (HOST, sw.udp_port), calls=1, timeout=15, name="phone-nxdomain")
        self.assertTrue(any(start_line(m).startswith("SIP/2.0 503") for m in result.received()), result.describe())
        self.assertRegex(sw.log(), r"cannot resolve the upstream sip:provider\.test: ")


if __name__ == "__main__":
    unittest.main(verbosity=2, argv=[sys.argv[0]] + sys.argv[1:])
