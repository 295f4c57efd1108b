#!/usr/bin/env python3
"""The /metrics listener (metrics.listen), scraped with urllib on loopback.

* exact counts: a REGISTER and three INVITE/ACK/BYE calls through sipwitness
  (SIPp on both sides), then a garbage datagram (dropped), a request without
  Call-ID (400) and one over limits.max_message_bytes (400 and a limit hit).
  Every request and response count must equal what the SIPp traces say was
  sent and received, and the verdicts what the verdict log holds;
* HTTP: GET /metrics is 200 text/plain; version=0.0.4 in the Prometheus text
  format, another path 404, POST 405, and connections beyond the bound wait;
  a metrics port already taken stops the start (exit 1, the reason logged);
* relaying goes on while it is scraped in a tight loop and a stalled HTTP
  client holds a connection: every call of a SIPp load succeeds.
"""

import collections
import re
import socket
import sys
import threading
import time
import unittest
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (HOST, E2ETestCase, UdpClient, free_port,  # noqa: E402
                     make_request, start_line, status_code)
from metrics_common import parse, scrape  # noqa: E402

MAX_CONNECTIONS = 16  # kMaxConnections in proxy/metrics_http.cpp
LOAD_CALLS = 60
LOAD_RATE = 20


def requests_by_method(messages: list[str]) -> collections.Counter:
    return collections.Counter(start_line(m).split(" ", 1)[0] for m in messages
                               if status_code(m) is None)


def responses_by_code(messages: list[str]) -> collections.Counter:
    return collections.Counter(status_code(m) for m in messages if status_code(m) is not None)


class Metrics(E2ETestCase):
    def start_proxy(self, upstream_port: int, extra: str = ""):
        self.metrics_port = free_port("tcp")
        return self.sipwitness(upstream_port=upstream_port, level="info",
                               extra_config=f'metrics: {{ listen: "{HOST}:{self.metrics_port}" }}\n' + extra)

    def metrics(self) -> dict[str, float]:
        status, content_type, body = scrape(self.metrics_port)
        self.assertEqual(status, 200, body)
        self.assertEqual(content_type, "text/plain; version=0.0.4; charset=utf-8")
        return parse(body)

    def test_counts_what_it_relayed_dropped_and_rejected(self):
        provider_port = free_port("udp")
        registrar = self.start_sipp("provider_registrar.xml", port=provider_port, name="registrar")
        with self.start_proxy(provider_port, "limits: { max_message_bytes: 2048 }\n") as sw:
            before = self.metrics()
            self.assertEqual(before["sipwitness_messages_received_total"], 0)
            self.assertEqual(before['sipwitness_sip_requests_total{direction="received",method="INVITE"}'], 0)

            phones = [self.run_sipp("phone_register.xml", (HOST, sw.udp_port), name="phone-register")]
            providers = [registrar.wait()]
            self.assertSippOk(phones[0], 1)
            self.assertSippOk(providers[0], 1)
            callee = self.start_sipp("uas_call.xml", port=provider_port, calls=3, name="callee")
            phones.append(self.run_sipp("uac_call.xml", (HOST, sw.udp_port), calls=3, service="2000",
                                        name="caller"))
            providers.append(callee.wait())
            self.assertSippOk(phones[1], 3)
            self.assertSippOk(providers[1], 3)

            with UdpClient() as client:
                client.send(b"\x00\x01 not SIP at all\r\n\r\n", (HOST, sw.udp_port))
                answered = []
                for branch, extra, drop_call_id in (("z9hG4bK-metrics-nocallid", [], True),
                                                    ("z9hG4bK-metrics-large", ["X-Pad: " + "p" * 2100], False)):
                    msg = make_request("OPTIONS", via=client.via(branch), extra_headers=extra).decode()
                    if drop_call_id:
                        msg = re.sub(r"Call-ID: [^\r]*\r\n", "", msg)
                    client.send(msg.encode(), (HOST, sw.udp_port))
                    reply, _ = client.recv_final(branch=branch)
                    self.assertIsNotNone(reply, f"no answer to the malformed OPTIONS {branch}")
                    answered.append(status_code(reply))
                self.assertEqual(answered, [400, 400])
            self.assertIsNotNone(sw.wait_for_log(r"drop: malformed message"), "garbage not dropped")

            m = self.metrics()
            phone_sent = sum((requests_by_method(p.sent()) for p in phones), collections.Counter())
            provider_got = sum((requests_by_method(p.received()) for p in providers), collections.Counter())
            provider_answered = sum((responses_by_code(p.sent()) for p in providers), collections.Counter())
            phone_got = sum((responses_by_code(p.received()) for p in phones), collections.Counter())
            self.assertEqual(phone_sent["INVITE"], 3)
            self.assertEqual(phone_sent["REGISTER"], 1)
            for method in ("REGISTER", "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "other"):
                self.assertEqual(m[f'sipwitness_sip_requests_total{{direction="received",method="{method}"}}'],
                                 phone_sent[method], method)
                self.assertEqual(m[f'sipwitness_sip_requests_total{{direction="sent",method="{method}"}}'],
                                 provider_got[method], method)
            responses = {"received": {}, "sent": {}}
            for key, value in m.items():
                r = re.fullmatch(r'sipwitness_sip_responses_total\{direction="(\w+)",code="(\d+)"\}', key)
                if r:
                    responses[r.group(1)][int(r.group(2))] = value
            received, sent = responses["received"], responses["sent"]
            self.assertEqual(received, dict(provider_answered))
            self.assertEqual(sent, dict(phone_got + collections.Counter({400: 2})))
            self.assertEqual(m["sipwitness_forwarded_requests_total"], sum(phone_sent.values()))
            self.assertEqual(m["sipwitness_forwarded_responses_total"], sum(provider_answered.values()))
            self.assertEqual(m["sipwitness_messages_received_total"],
                             sum(phone_sent.values()) + sum(provider_answered.values()) + 3)
            self.assertEqual(m['sipwitness_dropped_total{reason="malformed"}'], 1)
            self.assertEqual(m['sipwitness_rejected_total{reason="missing_header"}'], 1)
            self.assertEqual(m['sipwitness_rejected_total{reason="too_large"}'], 1)
            self.assertEqual(m['sipwitness_limit_hits_total{limit="limits.max_message_bytes"}'], 1)
            self.assertEqual(sum(v for k, v in m.items() if k.startswith("sipwitness_dropped_total")), 1)
            self.assertEqual(sum(v for k, v in m.items() if k.startswith("sipwitness_rejected_total")), 2)
            self.assertEqual(sum(v for k, v in m.items() if k.startswith("sipwitness_limit_hits_total")), 1)
            self.assertEqual(m["sipwitness_local_replies_total"], 0)  # the 400s are rejects
            self.assertEqual(m["sipwitness_challenges_issued_total"], 0)
            self.assertEqual(m["sipwitness_bindings"], 1)
            self.assertEqual(m['sipwitness_connections{transport="tcp"}'], 0)
            self.assertGreater(m["sipwitness_uptime_seconds"], 0)

            # Verdicts: what the verdict log holds (its lines are written within 100 ms).
            time.sleep(0.3)
            log_lines = (sw.workdir / "verdicts.jsonl").read_text().splitlines()
            expected = collections.Counter(re.search(r'"verdict":"(\w+)","confidence":"(\w+)"', line).groups()
                                           for line in log_lines)
            self.assertEqual(expected, collections.Counter({("ok", "certain"): 4}))
            m = self.metrics()
            got = {tuple(re.findall(r'"(\w+)"', k)): v for k, v in m.items()
                   if k.startswith("sipwitness_verdicts_total") and v}
            self.assertEqual(got, dict(expected))

    def test_http_answers(self):
        with self.start_proxy(free_port("udp")):
            status, _, body = scrape(self.metrics_port)
            self.assertEqual(status, 200)
            for name in ("sipwitness_messages_received_total", "sipwitness_verdicts_total",
                         "sipwitness_limit_hits_total", "sipwitness_uptime_seconds"):
                self.assertIn(f"# HELP {name} ", body)
                self.assertRegex(body, rf"(?m)^# TYPE {name} (counter|gauge)$")
            self.assertEqual(scrape(self.metrics_port, "/")[0], 404)
            self.assertEqual(scrape(self.metrics_port, "/metrics/x")[0], 404)
            self.assertEqual(scrape(self.metrics_port, method="POST")[0], 405)
            self.assertEqual(scrape(self.metrics_port, method="HEAD")[0], 200)

            # Connections are bounded: with the bound held by silent clients a
            # scrape waits; once they leave it is answered.
            idle = [socket.create_connection((HOST, self.metrics_port)) for _ in range(MAX_CONNECTIONS)]
            try:
                time.sleep(0.2)
                with self.assertRaises(OSError):  # a timeout, or the connection closed unanswered
                    scrape(self.metrics_port, timeout=1.0)
            finally:
                for s in idle:
                    s.close()
            deadline = time.monotonic() + 5
            while True:
                try:
                    self.assertEqual(scrape(self.metrics_port, timeout=1.0)[0], 200)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise

    def test_busy_port_stops_the_start(self):
        with socket.socket() as taken:
            taken.bind((HOST, 0))
            taken.listen()
            port = taken.getsockname()[1]
            self.assert_start_fails(f'listen: [{{ transport: udp, host: {HOST}, port: 0 }}]\n'
                                    f'upstream: {{ uri: "sip:{HOST}:5070;transport=udp" }}\n'
                                    f'metrics: {{ listen: "{HOST}:{port}" }}\n',
                                    f"metrics.listen: cannot listen on http {HOST}:{port}: Address already in use")

    def test_relays_while_scraped(self):
        callee = self.start_sipp("uas_call.xml", calls=LOAD_CALLS, timeout=60, name="callee",
                                 trace_messages=False)
        with self.start_proxy(callee.port) as sw:
            stalled = socket.create_connection((HOST, self.metrics_port))
            stalled.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
            stop = threading.Event()
            scrapes, problems = [], []

            def scraper():
                while not stop.is_set():
                    try:
                        scrapes.append(self.metrics())
                    except Exception as e:  # reported below, in the test's thread
                        problems.append(repr(e))
                        return
                    time.sleep(0.005)

            thread = threading.Thread(target=scraper, daemon=True)
            thread.start()
            try:
                caller = self.run_sipp("uac_call.xml", (HOST, sw.udp_port), calls=LOAD_CALLS, rate=LOAD_RATE,
                                       service="2000", timeout=60, name="caller", trace_messages=False)
            finally:
                stop.set()
                thread.join(timeout=10)
                stalled.close()
            self.assertSippOk(caller, LOAD_CALLS)
            self.assertSippOk(callee.wait(), LOAD_CALLS)
            self.assertEqual(problems, [])
            self.assertGreater(len(scrapes), 20, "the scraper hardly ran")
            key = 'sipwitness_sip_requests_total{direction="received",method="INVITE"}'
            invites = [s[key] for s in scrapes]
            self.assertEqual(invites, sorted(invites), "a counter went down")
            self.assertGreater(invites[-1], 0)
            self.assertGreaterEqual(self.metrics()[key], LOAD_CALLS)


if __name__ == "__main__":
    unittest.main()
