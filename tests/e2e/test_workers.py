#!/usr/bin/env python3
"""`workers: N`: N event loops, each UDP listen port shared by N sockets
(SO_REUSEPORT), each worker with a private UDP port toward the upstream.

    phones (one UDP socket each) ──▶ sipwitness, workers: 2 ──▶ provider (a Python UDP socket)
        ◀── from the listen port        worker 0 / worker 1  ──▶ from the worker's own port

The kernel spreads phones over the workers by their address and port; what a
worker sends toward the upstream leaves from its own port and names it in Via
/ Path, so what comes back finds the worker that holds the flow's state.

* spread and return path: 24 phones' OPTIONS reach the provider from at least
  two private ports (those of the `workers:` log line, never the listen port),
  each from the port its top Via names; every phone gets its 200 from the
  listen port;
* 16 phones register through a 401 from the provider: the Authorization
  arrives byte for byte, the verdict log holds exactly one whole JSON line per
  Call-ID (ok_after_challenge) written by both workers;
* /metrics sums the workers' counters exactly (requests, responses, verdicts,
  bindings) after the same traffic;
* incoming calls: the provider sends an INVITE to the Path it got (a private
  port) with the phone's Contact as Request-URI; each of 16 phones gets its
  own INVITE, from the listen port, and its 200 gets back to the provider;
* a phone over TCP is served by worker 0: its requests leave from one private
  port;
* 300 SIPp calls at 100/s with a socket per call (`-t un`) all succeed and
  reach the SIPp provider from both private ports;
* 100 such calls to a SIPp provider over TCP all succeed, over one connection
  per worker, with one `ok` verdict per call;
* `--check`: 0, 65, `many` and `workers: 2` with lab.role, diag.capture or
  relay.add_path: false are errors naming `workers` (exit 2, file:line:col);
  1, 2, 64 and `auto` pass;
* SIGHUP reaches every worker (the users file of sipwitness's own challenge and
  log.level) and relaying goes on; SIGTERM drains the transactions in flight
  on every worker (new requests 503), flushes their verdicts and exits 0.

Run:  SIPWITNESS_BIN=build/sipwitness python3 tests/e2e/test_workers.py -v
"""

from __future__ import annotations

import collections
import errno
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (FAKE_AUTHORIZATION, HOST, SANITIZER_MARKERS, E2ETestCase, TcpClient,  # noqa: E402
                     UdpClient, free_port, header_values, make_request, sipwitness_binary, start_line,
                     status_code, via_param)
from relay_common import WWW_AUTHENTICATE, lines_of  # noqa: E402
from challenge_common import USERS_YAML, PyPhone, challenge_yaml  # noqa: E402
from metrics_common import parse, scrape  # noqa: E402

WORKERS = 2
# "workers: 2 (udp 127.0.0.1:5060 shared; own udp ports 40001, 40002)"
WORKERS_LINE = r"workers: (\d+) .*own udp ports ([\d, ]+)\)"
SIPP_CALLS = int(os.environ.get("E2E_WORKERS_CALLS", "300"))
SIPP_RATE = int(os.environ.get("E2E_WORKERS_RATE", "100"))


# --------------------------------------------------------------------------
# SIP bits for the hand-made provider and phones


def sent_by(via: str) -> tuple[str, int]:
    """host and port of a UDP Via's sent-by (5060 when the port is left out)."""
    m = re.match(r"SIP/2\.0/UDP\s+([^\s;:]+)(?::(\d+))?", via, re.I)
    assert m, f"not a UDP Via: {via!r}"
    return m.group(1), int(m.group(2) or 5060)


def top_via(message: str) -> str:
    vias = header_values(message, "via")
    assert vias, f"no Via in:\n{message}"
    return vias[0]


def reply_address(request: str) -> tuple[str, int]:
    """Where a response goes (RFC 3261 18.2.2, RFC 3581): the top Via's
    sent-by, or its received/rport."""
    via = top_via(request)
    host, port = sent_by(via)
    received, rport = via_param(via, "received"), via_param(via, "rport")
    return received or host, int(rport) if rport else port


def answer(request: str, code: int, reason: str, extra: tuple = ()) -> bytes:
    """A response to request: its Vias, Record-Route, From, To (a tag added), Call-ID and CSeq."""
    head = request.replace("\r\n", "\n").split("\n\n", 1)[0].split("\n")[1:]
    keep = []
    for line in head:
        name = line.split(":", 1)[0].strip().lower()
        if name in ("via", "v", "record-route", "from", "f", "call-id", "i", "cseq"):
            keep.append(line)
        elif name in ("to", "t"):
            keep.append(line if code == 100 or "tag=" in line else f"{line};tag={os.urandom(4).hex()}")
    return (f"SIP/2.0 {code} {reason}\r\n" + "\r\n".join(keep + list(extra))
            + "\r\nContent-Length: 0\r\n\r\n").encode()


def uri_address(value: str) -> tuple[str, int]:
    """host and port of the SIP URI in a Path/Route/Contact value."""
    m = re.search(r"sips?:(?:[^@>;]*@)?([\d.]+)(?::(\d+))?", value)
    assert m, f"no sip: URI with an IPv4 host in {value!r}"
    return m.group(1), int(m.group(2) or 5060)


def call_id_of(message: str) -> str:
    values = header_values(message, "call-id")
    return values[0] if values else ""


def connections_to(port: int) -> list[int]:
    """Local ports of the established TCP connections to 127.0.0.1:port (/proc/net/tcp)."""
    local_ports = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state = fields[1], fields[2], fields[3]
        if state == "01" and remote == f"0100007F:{port:04X}":
            local_ports.append(int(local.split(":")[1], 16))
    return local_ports


def is_request(message: str, method: str) -> bool:
    return start_line(message).startswith(method + " ")


class Provider:
    """The upstream: a UDP socket on loopback served by a thread. It keeps every
    datagram with its source address and answers requests to their top Via:
      mode "answer":    200 to every request but ACK (REGISTER: Contact and Path echoed)
      mode "challenge": the same, but a REGISTER without Authorization gets a 401
      mode "silent":    nothing (the test answers with send())."""

    def __init__(self, mode: str = "answer"):
        assert mode in ("answer", "challenge", "silent")
        self.mode = mode
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.port = self.sock.getsockname()[1]
        self.got: list[tuple[str, tuple[str, int]]] = []
        self.problems: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.sock], [], [], 0.05)
            if not ready:
                continue
            try:
                data, source = self.sock.recvfrom(70_000)
            except OSError:  # an ICMP error from an earlier send
                continue
            msg = data.decode("utf-8", "replace")
            with self._lock:
                self.got.append((msg, source))
            if self.mode == "silent" or status_code(msg) is not None or is_request(msg, "ACK"):
                continue
            try:
                self.send(self.response(msg), reply_address(msg))
            except Exception as e:  # reported by the tests (provider.problems)
                self.problems.append(f"{e!r} answering:\n{msg}")

    def response(self, request: str) -> bytes:
        if not is_request(request, "REGISTER"):
            return answer(request, 200, "OK")
        if self.mode == "challenge" and not any(line.startswith("Authorization:") for line in lines_of(request)):
            return answer(request, 401, "Unauthorized", (WWW_AUTHENTICATE,))
        extra = tuple(f"Contact: {c};expires=3600" for c in header_values(request, "contact"))
        extra += tuple(f"Path: {p}" for p in header_values(request, "path"))
        return answer(request, 200, "OK", extra)

    def send(self, data: bytes, addr: tuple[str, int]) -> None:
        self.sock.sendto(data, addr)

    def messages(self) -> list[tuple[str, tuple[str, int]]]:
        with self._lock:
            return list(self.got)

    def requests(self, method: str) -> list[tuple[str, tuple[str, int]]]:
        return [(m, s) for m, s in self.messages() if is_request(m, method)]

    def wait_requests(self, method: str, count: int, timeout: float = 3.0) -> list[tuple[str, tuple[str, int]]]:
        deadline = time.monotonic() + timeout
        while len(self.requests(method)) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.requests(method)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


class Phone(UdpClient):
    """A phone: its own UDP socket (so its own source port and, by the kernel's
    hash, its own worker), user 11NN, one Call-ID."""

    def __init__(self, n: int):
        super().__init__()
        self.user = str(1100 + n)
        self.call_id = f"workers-{n}-{os.urandom(6).hex()}@e2e"
        self.from_tag = os.urandom(4).hex()
        # the harness's fixed credentials, for this phone's user
        self.authorization = FAKE_AUTHORIZATION.replace('username="1001"', f'username="{self.user}"')
        assert self.authorization != FAKE_AUTHORIZATION

    @property
    def contact_uri(self) -> str:
        return f"sip:{self.user}@{self.host}:{self.port}"

    def request(self, method: str, branch: str, cseq: int = 1, extra: tuple = ()) -> bytes:
        register = method == "REGISTER"
        data = make_request(
            method, "sip:example.test" if register else "sip:2000@example.test",
            via=self.via(branch, ";rport"), call_id=self.call_id, from_tag=self.from_tag, cseq=cseq,
            to=f"<sip:{self.user}@example.test>" if register else "<sip:2000@example.test>",
            extra_headers=[f"Contact: <{self.contact_uri}>", *(["Expires: 3600"] if register else []), *extra])
        return data.replace(b"From: <sip:1001@example.test>", f"From: <sip:{self.user}@example.test>".encode(), 1)

    def recv_from(self, timeout: float) -> tuple[str | None, tuple[str, int] | None]:
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data, source = self.sock.recvfrom(70_000)
        except (socket.timeout, ConnectionRefusedError):
            return None, None
        return data.decode("utf-8", "replace"), source

    def wait_for(self, want, timeout: float = 3.0):
        """(message, source, everything received meanwhile) for the first message
        want(message) accepts; (None, None, seen) on timeout."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            msg, source = self.recv_from(deadline - time.monotonic())
            if msg is None:
                return None, None, seen
            seen.append((msg, source))
            if want(msg):
                return msg, source, seen

    def final(self, branch: str, timeout: float = 3.0):
        return self.wait_for(lambda m: (status_code(m) or 0) >= 200 and via_param(top_via(m), "branch") == branch,
                             timeout)

    def drain(self, quiet: float = 0.3) -> list[str]:
        """Whatever else arrives until `quiet` seconds pass without a datagram."""
        out = []
        while True:
            msg, _ = self.recv_from(quiet)
            if msg is None:
                return out
            out.append(msg)


# --------------------------------------------------------------------------


class Workers(E2ETestCase):
    def provider(self, mode: str = "answer") -> Provider:
        p = Provider(mode)
        self.addCleanup(p.close)
        return p

    def phones(self, count: int) -> list[Phone]:
        phones = [Phone(i) for i in range(count)]
        for p in phones:
            self.addCleanup(p.close)
        return phones

    def workers_proxy(self, upstream_port: int, extra: str = "", **kw):
        kw.setdefault("listen", ("udp",))
        return self.sipwitness(upstream_port=upstream_port, extra_config=f"workers: {WORKERS}\n" + extra, **kw)

    def own_ports(self, sw) -> list[int]:
        """The workers' private UDP ports from the start line, checked."""
        m = sw.wait_for_log(WORKERS_LINE, timeout=3)
        self.assertIsNotNone(m, f"no line matching {WORKERS_LINE!r} in the log")
        self.assertEqual(int(m.group(1)), WORKERS, m.group(0))
        ports = [int(p) for p in re.findall(r"\d+", m.group(2))]
        self.assertEqual(len(ports), WORKERS, f"one own port per worker: {m.group(0)}")
        self.assertEqual(len(set(ports)), WORKERS, f"own ports must differ: {m.group(0)}")
        self.assertNotIn(sw.udp_port, ports, f"own ports are not the listen port: {m.group(0)}")
        self.assertNotIn(0, ports, m.group(0))
        return ports

    def assertFromWorkers(self, requests, own: list[int], sw, what: str, spread: bool = True) -> list[int]:
        """Requests at the provider came from workers' own ports, each from the
        port its top Via names; spread: from at least two of them."""
        ports = []
        for msg, source in requests:
            host, port = sent_by(top_via(msg))
            self.assertEqual(host, HOST, f"{what}: sipwitness's Via host:\n{msg}")
            self.assertIn(port, own, f"{what}: Via port {port} is none of the workers' own ports {own}:\n{msg}")
            self.assertEqual(source, (HOST, port), f"{what}: the datagram must leave from the port its Via names:\n"
                                                   f"{msg}")
            ports.append(port)
        self.assertNotIn(sw.udp_port, ports, what)
        if spread:
            self.assertGreaterEqual(len(set(ports)), 2,
                                    f"{what}: {len(requests)} phones all on one worker: {collections.Counter(ports)}")
        return ports

    def register_all(self, sw, phones: list[Phone]) -> None:
        """Every phone: REGISTER, 401 (from the provider), REGISTER with
        Authorization, 200; all phones at once, phase by phase."""
        for p in phones:
            p.send(p.request("REGISTER", f"z9hG4bK-{p.user}-r1", 1), (HOST, sw.udp_port))
        for p in phones:
            msg, source, seen = p.final(f"z9hG4bK-{p.user}-r1")
            self.assertIsNotNone(msg, f"phone {p.user}: no answer to its first REGISTER; got {seen}")
            self.assertEqual(status_code(msg), 401, msg)
            self.assertEqual(source, (HOST, sw.udp_port), f"phone {p.user}: 401 not from the listen port")
            self.assertIn(WWW_AUTHENTICATE, lines_of(msg), f"WWW-Authenticate changed:\n{msg}")
        for p in phones:
            p.send(p.request("REGISTER", f"z9hG4bK-{p.user}-r2", 2, (p.authorization,)), (HOST, sw.udp_port))
        for p in phones:
            msg, source, seen = p.final(f"z9hG4bK-{p.user}-r2")
            self.assertIsNotNone(msg, f"phone {p.user}: no answer to its REGISTER with Authorization; got {seen}")
            self.assertEqual(status_code(msg), 200, msg)
            self.assertEqual(source, (HOST, sw.udp_port), f"phone {p.user}: 200 not from the listen port")
            self.assertEqual(call_id_of(msg), p.call_id)

    def options_round(self, sw, provider: Provider, phones: list[Phone], tag: str) -> list[tuple[str, tuple]]:
        """One OPTIONS from every phone at once; each must get its 200 from the
        listen port. Returns what the provider received of them."""
        for p in phones:
            p.call_id = f"{tag}-{p.user}-{os.urandom(4).hex()}@e2e"
            p.send(p.request("OPTIONS", f"z9hG4bK-{tag}-{p.user}"), (HOST, sw.udp_port))
        for p in phones:
            msg, source, seen = p.final(f"z9hG4bK-{tag}-{p.user}")
            self.assertIsNotNone(msg, f"phone {p.user}: no answer to OPTIONS ({tag}); got {seen}")
            self.assertEqual(status_code(msg), 200, msg)
            self.assertEqual(source, (HOST, sw.udp_port), f"phone {p.user}: the 200 must come from the listen port")
            self.assertEqual(call_id_of(msg), p.call_id, msg)
            self.assertEqual(len(header_values(msg, "via")), 1, f"only the phone's own Via comes back:\n{msg}")
        ids = {p.call_id for p in phones}
        got = [(m, s) for m, s in provider.requests("OPTIONS") if call_id_of(m) in ids]
        self.assertEqual(collections.Counter(call_id_of(m) for m, _ in got), collections.Counter(ids),
                         "every OPTIONS reaches the provider exactly once")
        return got

    # ======================================================================
    def test_spread_and_return_path(self):
        provider = self.provider("answer")
        with self.workers_proxy(provider.port) as sw:
            own = self.own_ports(sw)
            self.assertEqual(len(re.findall(WORKERS_LINE, sw.log())), 1, "the workers line comes once")
            got = self.options_round(sw, provider, self.phones(24), "spread")
            self.assertFromWorkers(got, own, sw, "OPTIONS at the provider")
            self.assertEqual(provider.problems, [])

    def test_register_through_401_verdicts_from_every_worker(self):
        provider = self.provider("challenge")
        verdict_log = self.tmp / "verdicts.jsonl"
        phones = self.phones(16)
        with self.workers_proxy(provider.port, f'diag: {{ verdict_log: "{verdict_log}" }}\n') as sw:
            own = self.own_ports(sw)
            self.register_all(sw, phones)
            regs = provider.requests("REGISTER")
            self.assertEqual(len(regs), 32, "two REGISTERs per phone, no more")
            self.assertFromWorkers(regs, own, sw, "REGISTER at the provider")
            by_call = collections.defaultdict(list)
            for msg, source in regs:
                by_call[call_id_of(msg)].append((msg, source))
            for p in phones:
                first, second = by_call[p.call_id]
                self.assertFalse(any(line.startswith("Authorization:") for line in lines_of(first[0])), first[0])
                self.assertIn(p.authorization, lines_of(second[0]),
                              f"Authorization not byte for byte at the provider:\n{second[0]}")
                self.assertEqual(first[1], second[1], f"phone {p.user}: both REGISTERs from the same worker")
            sw.stop()
        lines = verdict_log.read_text().splitlines()
        self.assertEqual(len(lines), len(phones), "one verdict line per flow:\n" + "\n".join(lines))
        records = []
        for line in lines:
            try:
                records.append(json.loads(line))
            except ValueError:
                self.fail(f"not one whole JSON line: {line!r}")
        by_call = {r["call_id"]: r for r in records}
        self.assertEqual(set(by_call), {p.call_id for p in phones})
        for p in phones:
            r = by_call[p.call_id]
            self.assertEqual((r["method"], r["verdict"], r["final_status"], r["challenges"]),
                             ("REGISTER", "ok_after_challenge", 200, 1), r)
            self.assertEqual(r["source"], f"{HOST}:{p.port}", r)
            self.assertEqual(r["aor"], f"sip:{p.user}@example.test", r)

    def test_metrics_sum_every_worker(self):
        provider = self.provider("challenge")
        metrics_port = free_port("tcp")
        phones = self.phones(16)
        with self.workers_proxy(provider.port, f'metrics: {{ listen: "{HOST}:{metrics_port}" }}\n', level="info") as sw:
            own = self.own_ports(sw)
            self.register_all(sw, phones)
            self.assertFromWorkers(provider.requests("REGISTER"), own, sw, "REGISTER at the provider")

            def metrics():
                status, _, body = scrape(metrics_port)
                self.assertEqual(status, 200, body)
                return parse(body)

            deadline = time.monotonic() + 3  # verdict lines come within 100 ms of a flow's end
            while True:
                m = metrics()
                verdicts = {k: v for k, v in m.items() if k.startswith("sipwitness_verdicts_total") and v}
                if sum(verdicts.values()) >= len(phones) or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            n = len(phones)
            self.assertEqual(sum(verdicts.values()), n, verdicts)
            self.assertEqual({re.search(r'verdict="(\w+)"', k).group(1) for k in verdicts}, {"ok_after_challenge"},
                             verdicts)
            for method in ("REGISTER", "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "other"):
                want = 2 * n if method == "REGISTER" else 0
                for direction in ("received", "sent"):
                    key = f'sipwitness_sip_requests_total{{direction="{direction}",method="{method}"}}'
                    self.assertEqual(m[key], want, key)
            responses = {"received": {}, "sent": {}}
            for key, value in m.items():
                r = re.fullmatch(r'sipwitness_sip_responses_total\{direction="(\w+)",code="(\d+)"\}', key)
                if r and value:
                    responses[r.group(1)][int(r.group(2))] = value
            self.assertEqual(responses, {"received": {401: n, 200: n}, "sent": {401: n, 200: n}})
            self.assertEqual(m["sipwitness_forwarded_requests_total"], 2 * n)
            self.assertEqual(m["sipwitness_forwarded_responses_total"], 2 * n)
            self.assertEqual(m["sipwitness_messages_received_total"], 4 * n)
            self.assertEqual(m["sipwitness_bindings"], n)
            self.assertEqual(sum(v for k, v in m.items() if k.startswith("sipwitness_dropped_total")), 0)
            self.assertEqual(sum(v for k, v in m.items() if k.startswith("sipwitness_rejected_total")), 0)

    def test_incoming_calls_through_path(self):
        provider = self.provider("challenge")
        phones = self.phones(16)
        with self.workers_proxy(provider.port) as sw:
            own = self.own_ports(sw)
            self.register_all(sw, phones)
            paths = {}
            for msg, _ in provider.requests("REGISTER"):
                if any(line.startswith("Authorization:") for line in lines_of(msg)):
                    values = header_values(msg, "path")
                    self.assertEqual(len(values), 1, f"one Path (sipwitness's):\n{msg}")
                    paths[call_id_of(msg)] = values[0]
            path_ports = []
            for p in phones:
                host, port = uri_address(paths[p.call_id])
                self.assertEqual(host, HOST, paths[p.call_id])
                self.assertIn(port, own, f"Path must name a worker's own port {own}: {paths[p.call_id]}")
                self.assertRegex(paths[p.call_id], r";\s*lr\b")
                path_ports.append(port)
            self.assertGreaterEqual(len(set(path_ports)), 2, f"16 phones on one worker: {path_ports}")

            invites = {}
            for i, p in enumerate(phones):
                call_id = f"incoming-{i}-{os.urandom(4).hex()}@provider"
                invites[p.user] = call_id
                invite = "\r\n".join([
                    f"INVITE {p.contact_uri} SIP/2.0",
                    f"Via: SIP/2.0/UDP {HOST}:{provider.port};branch=z9hG4bK-in-{i}-{os.urandom(3).hex()}",
                    f"Route: {paths[p.call_id]}",
                    "Max-Forwards: 70",
                    f"From: <sip:2000@example.test>;tag=prov-{i}",
                    f"To: <sip:{p.user}@example.test>",
                    f"Call-ID: {call_id}",
                    "CSeq: 1 INVITE",
                    f"Contact: <sip:2000@{HOST}:{provider.port}>",
                    "Content-Length: 0", "", ""])
                provider.send(invite.encode(), uri_address(paths[p.call_id]))
            for p in phones:
                msg, source, seen = p.wait_for(lambda m: is_request(m, "INVITE"))
                self.assertIsNotNone(msg, f"phone {p.user}: no INVITE; got {seen}")
                self.assertEqual(call_id_of(msg), invites[p.user], f"phone {p.user} got another phone's INVITE")
                self.assertEqual(start_line(msg), f"INVITE {p.contact_uri} SIP/2.0")
                self.assertEqual(source, (HOST, sw.udp_port), f"phone {p.user}: INVITE not from the listen port")
                self.assertEqual(len(header_values(msg, "via")), 2, msg)
                self.assertFalse(any(f":{port}" in r for r in header_values(msg, "route") for port in own),
                                 f"sipwitness must take its own Route off:\n{msg}")
                p.send(answer(msg, 200, "OK", (f"Contact: <{p.contact_uri}>",)), source)
            oks = self.wait_responses(provider, set(invites.values()), "INVITE")
            # In the dialog: ACK and BYE from the provider along the route set
            # (its Record-Route reversed), whose first hop is the worker's own port.
            for i, p in enumerate(phones):
                ok = oks[invites[p.user]]
                self.assertEqual(len(header_values(ok, "via")), 1, ok)
                route = list(reversed(header_values(ok, "record-route")))
                self.assertTrue(route, f"the INVITE was not record-routed:\n{ok}")
                first = uri_address(route[0])
                self.assertEqual(first, uri_address(paths[p.call_id]),
                                 f"phone {p.user}: the provider's first hop must be the worker of its Path:\n{ok}")
                self.assertRegex(route[0], r";\s*lr\b")
                to = header_values(ok, "to")[0]
                for method, cseq in (("ACK", 1), ("BYE", 2)):
                    request = "\r\n".join([
                        f"{method} {p.contact_uri} SIP/2.0",
                        f"Via: SIP/2.0/UDP {HOST}:{provider.port};branch=z9hG4bK-{method}-{i}-{os.urandom(3).hex()}",
                        *(f"Route: {r}" for r in route),
                        "Max-Forwards: 70",
                        f"From: <sip:2000@example.test>;tag=prov-{i}",
                        f"To: {to}",
                        f"Call-ID: {invites[p.user]}",
                        f"CSeq: {cseq} {method}",
                        "Content-Length: 0", "", ""])
                    provider.send(request.encode(), first)
            for p in phones:
                for method in ("ACK", "BYE"):
                    msg, source, seen = p.wait_for(lambda m, method=method: is_request(m, method))
                    self.assertIsNotNone(msg, f"phone {p.user}: no {method} in its dialog; got {seen}")
                    self.assertEqual(call_id_of(msg), invites[p.user], f"phone {p.user} got another phone's {method}")
                    self.assertEqual(source, (HOST, sw.udp_port), f"phone {p.user}: {method} not from the listen port")
                    self.assertEqual(start_line(msg), f"{method} {p.contact_uri} SIP/2.0")
                p.send(answer(msg, 200, "OK"), source)
            self.wait_responses(provider, set(invites.values()), "BYE")
            time.sleep(0.3)  # time for anything more to arrive
            for p in phones:
                extra = [m for m in p.drain(0.01)]
                self.assertEqual(extra, [], f"phone {p.user}: more than its own INVITE, ACK and BYE")
            self.assertEqual(provider.problems, [])

    def wait_responses(self, provider: Provider, call_ids: set[str], method: str) -> dict[str, str]:
        """The 200s to `method` for call_ids at the provider, exactly one each."""
        deadline = time.monotonic() + 3
        while True:
            oks = [m for m, _ in provider.messages()
                   if status_code(m) == 200 and call_id_of(m) in call_ids
                   and header_values(m, "cseq")[0].split()[-1] == method]
            if len(oks) >= len(call_ids) or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        self.assertEqual(collections.Counter(call_id_of(m) for m in oks), collections.Counter(call_ids),
                         f"each phone's 200 to {method} reaches the provider once")
        return {call_id_of(m): m for m in oks}

    def test_the_shared_port_stays_ours(self):
        """The workers share their port, but a second sipwitness (with workers
        too) or a socket asking for SO_REUSEADDR cannot bind it and take a
        share of the phones. (A process of the same user asking for
        SO_REUSEPORT can: that is the kernel's rule for a reuseport group.)"""
        provider = self.provider("answer")
        with self.workers_proxy(provider.port) as sw:
            self.own_ports(sw)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as intruder:
                intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                with self.assertRaises(OSError, msg="SO_REUSEADDR bound the workers' port") as caught:
                    intruder.bind((HOST, sw.udp_port))
                self.assertEqual(caught.exception.errno, errno.EADDRINUSE)
            self.assert_start_fails(f"workers: 2\nlisten:\n  - {{ transport: udp, host: {HOST}, port: {sw.udp_port} }}\n"
                                    f"upstream: {{ uri: \"sip:{HOST}:{provider.port}\" }}\n"
                                    f"diag: {{ verdict_log: \"{self.tmp / 'second.jsonl'}\" }}\n",
                                    f"cannot listen on udp {HOST}:{sw.udp_port}")
            self.options_round(sw, provider, self.phones(8), "still")

    def test_tcp_phones_are_served_by_worker_0(self):
        provider = self.provider("answer")
        with self.workers_proxy(provider.port, listen=("udp", "tcp")) as sw:
            own = self.own_ports(sw)
            ids = []
            for i in range(4):  # a new connection each
                with TcpClient((HOST, sw.tcp_port)) as phone:
                    branch = f"z9hG4bK-tcp-{i}"
                    ids.append(f"tcp-{i}-{os.urandom(4).hex()}@e2e")
                    phone.send(make_request("OPTIONS", via=phone.via(branch), call_id=ids[-1]))
                    final, seen = phone.recv_final(timeout=3)
                    self.assertIsNotNone(final, f"TCP phone: no answer; got {seen}")
                    self.assertEqual(status_code(final), 200, final)
                    self.assertIn(branch, final)
            got = [(m, s) for m, s in provider.requests("OPTIONS") if call_id_of(m) in ids]
            self.assertEqual(len(got), 4)
            ports = self.assertFromWorkers(got, own, sw, "OPTIONS from TCP phones", spread=False)
            self.assertEqual(set(ports), {own[0]}, f"TCP is served by worker 0 (own ports {own}): {ports}")

    def test_sipp_calls_with_a_socket_per_call(self):
        budget = SIPP_CALLS / SIPP_RATE + 30
        uas = self.start_sipp("uas_call.xml", calls=SIPP_CALLS, timeout=budget, name="provider")
        with self.workers_proxy(uas.port, level="info") as sw:
            own = self.own_ports(sw)
            phone = self.run_sipp("uac_call.xml", (HOST, sw.udp_port), calls=SIPP_CALLS, rate=SIPP_RATE, limit=100,
                                  service="2000", timeout=budget, name="phone", trace_messages=False,
                                  # -t un (after the harness's -t u1, so it wins): a socket, a source port, per call
                                  extra_args=["-t", "un", "-max_socket", "1024"])
            provr = uas.wait()
            self.assertTrue(sw.alive(), "sipwitness died under load")
            self.assertSippOk(phone, SIPP_CALLS)
            self.assertSippOk(provr, SIPP_CALLS)
            invites = [m for m in provr.received() if is_request(m, "INVITE")]
            self.assertEqual(len(invites), SIPP_CALLS, "one INVITE per call at the provider, no retransmission")
            ports = collections.Counter(sent_by(top_via(m))[1] for m in invites)
            self.assertLessEqual(set(ports), set(own), f"INVITEs from other ports than the workers' {own}: {ports}")
            self.assertEqual(len(ports), WORKERS, f"calls not spread over the workers: {ports}")
            for m in invites:  # the provider's in-dialog requests would come back to that worker
                rr_ports = [uri_address(r)[1] for r in header_values(m, "record-route")]
                self.assertIn(sent_by(top_via(m))[1], rr_ports,
                              f"the upstream leg's Record-Route must name the worker's own port:\n{m}")
            sys.stderr.write(f"\nworkers: {SIPP_CALLS} calls ok, INVITEs per worker port {dict(ports)}; "
                             f"retransmissions phone/provider {phone.stats.get('Retransmissions(C)')}/"
                             f"{provr.stats.get('Retransmissions(C)')}\n")

    def test_sipp_calls_to_a_tcp_upstream(self):
        """Phones on UDP spread over the workers, the provider on TCP: each
        worker opens a connection of its own, and what comes back on it
        reaches the worker that holds the call."""
        calls = 100
        budget = calls / SIPP_RATE + 30
        verdict_log = self.tmp / "verdicts.jsonl"
        uas = self.start_sipp("uas_call.xml", calls=calls, timeout=budget, name="provider", transport="tcp")
        with self.workers_proxy(uas.port, f'diag: {{ verdict_log: "{verdict_log}" }}\n', listen=("udp", "tcp"),
                                upstream_transport="tcp") as sw:
            self.own_ports(sw)
            caller = self.start_sipp("uac_call.xml", (HOST, sw.udp_port), calls=calls, rate=SIPP_RATE, limit=100,
                                     service="2000", timeout=budget, name="phone", trace_messages=False,
                                     extra_args=["-t", "un", "-max_socket", "1024"])
            # The provider closes its connections when it is done: look while the calls run.
            connections: set[int] = set()
            while caller.running():
                connections.update(connections_to(uas.port))
                time.sleep(0.05)
            phone, provr = caller.wait(), uas.wait()
            self.assertTrue(sw.alive(), "sipwitness died under load")
            self.assertSippOk(phone, calls)
            self.assertSippOk(provr, calls)
            self.assertEqual(len(connections), WORKERS, f"one connection to the provider per worker: {connections}")
        verdicts = collections.Counter(json.loads(line)["verdict"] for line in verdict_log.read_text().splitlines()
                                       if '"method":"INVITE"' in line)
        self.assertEqual(verdicts, {"ok": calls}, "one ok verdict per call, whichever worker held it")

    # -- config ---------------------------------------------------------------
    BASE = ('listen:\n  - { transport: udp, host: 127.0.0.1, port: 0 }\n'
            'upstream: { uri: "sip:127.0.0.1:5099;transport=udp" }\n')

    def check(self, text: str) -> tuple[Path, subprocess.CompletedProcess]:
        path = self.tmp / "workers.yaml"
        path.write_text(text)
        p = subprocess.run([sipwitness_binary(), "run", "--config", str(path), "--check"], capture_output=True,
                           text=True, timeout=20, cwd=self.tmp, stdin=subprocess.DEVNULL)
        for marker in SANITIZER_MARKERS:
            self.assertNotIn(marker, p.stderr)
        return path, p

    def test_check(self):
        (self.tmp / "lab.key").write_text("0123456789abcdef0123456789abcdef\n")
        for value in ("1", "2", "64", "auto"):
            with self.subTest(workers=value):
                _, p = self.check(f"workers: {value}\n" + self.BASE)
                self.assertEqual(p.returncode, 0, f"workers: {value} must pass --check\n{p.stdout}{p.stderr}")
        for value in ("0", "65", "many", "-1"):
            with self.subTest(workers=value):
                path, p = self.check(f"workers: {value}\n" + self.BASE)
                self.assertEqual(p.returncode, 2, f"workers: {value} must be an error\n{p.stdout}{p.stderr}")
                self.assertRegex(p.stderr, rf"{re.escape(str(path))}:1:\d+: workers: \S")
                self.assertNotIn("unknown key", p.stderr, "the key is known, its value is wrong")
        for key, conflict in (("lab.role", "lab: { role: inner, key_file: lab.key }\n"),
                              ("diag.capture", "diag: { capture: capture.pcap }\n"),
                              ("relay.add_path", "relay: { add_path: false }\n")):
            with self.subTest(conflict=key):
                _, p = self.check("workers: 1\n" + self.BASE + conflict)
                self.assertEqual(p.returncode, 0, f"one worker with {key} is fine\n{p.stdout}{p.stderr}")
                path, p = self.check("workers: 2\n" + self.BASE + conflict)
                self.assertEqual(p.returncode, 2, f"workers: 2 with {key} must be an error\n{p.stdout}{p.stderr}")
                self.assertRegex(p.stderr, rf"{re.escape(str(path))}:1:\d+: workers: .*{re.escape(key)}")

    # -- signals --------------------------------------------------------------
    def test_sighup_reaches_every_worker(self):
        provider = self.provider("answer")
        sw = self.workers_proxy(provider.port, challenge_yaml(methods=("REGISTER",)))
        users = sw.workdir / "users.yaml"
        users.write_text(USERS_YAML)
        phones = self.phones(16)
        with sw:
            own = self.own_ports(sw)
            self.assertFromWorkers(self.options_round(sw, provider, phones, "before"), own, sw, "OPTIONS before HUP")
            self.assertIn("<- phone", sw.log(), "log.level debug traces every message")
            # The users file and log.level are what SIGHUP takes while running.
            users.write_text('users:\n  - { username: "1001", password: "new-secret-1001" }\n')
            sw.config_path.write_text(sw.config_path.read_text().replace("level: debug", "level: info"))
            sw.proc.send_signal(signal.SIGHUP)
            self.assertIsNotNone(sw.wait_for_log(r"SIGHUP: reloaded users"), "no 'SIGHUP: reloaded users' line")
            time.sleep(0.2)  # the workers take it from their own loops
            traced = sw.log().count("<- phone")
            self.assertFromWorkers(self.options_round(sw, provider, phones, "after"), own, sw, "OPTIONS after HUP")
            # sipwitness's own 407: only the new password passes, on every worker.
            registered = []
            for _ in range(16):
                phone = PyPhone(sw.udp_port)
                self.addCleanup(phone.close)
                first, second = phone.register("new-secret-1001", "MD5")
                self.assertEqual(status_code(first or ""), 407, first)
                self.assertEqual(status_code(second or ""), 200, f"the new password must pass:\n{second}")
                registered.append(phone.call_id)
            regs = [(m, s) for m, s in provider.requests("REGISTER") if call_id_of(m) in registered]
            self.assertEqual(len(regs), 16)
            self.assertFromWorkers(regs, own, sw, "REGISTERs after HUP")
            self.assertEqual(sw.log().count("<- phone"), traced, "log.level: info must stop the trace in every worker")
            self.assertTrue(sw.alive())
        self.assertEqual(sw.returncode, 0)

    def test_sigterm_drains_every_worker(self):
        provider = self.provider("silent")
        verdict_log = self.tmp / "verdicts.jsonl"
        phones = self.phones(16)
        sw = self.workers_proxy(provider.port, f'diag: {{ verdict_log: "{verdict_log}" }}\n'
                                          "relay: { drain_timeout: 5s }\n")
        sw.start()
        try:
            own = self.own_ports(sw)
            for p in phones:
                p.send(p.request("REGISTER", f"z9hG4bK-drain-{p.user}"), (HOST, sw.udp_port))
            held = provider.wait_requests("REGISTER", len(phones))
            self.assertEqual(len(held), len(phones))
            self.assertFromWorkers(held, own, sw, "REGISTERs in flight")
            sw.proc.send_signal(signal.SIGTERM)
            self.assertIsNotNone(sw.wait_for_log(r"draining"), "no 'draining' line after SIGTERM")
            late = [Phone(100 + i) for i in range(8)]
            for p in late:
                self.addCleanup(p.close)
                p.send(p.request("OPTIONS", f"z9hG4bK-late-{p.user}"), (HOST, sw.udp_port))
            for p in late:
                msg, _, seen = p.final(f"z9hG4bK-late-{p.user}")
                self.assertEqual(status_code(msg or ""), 503, f"a new request while draining: {msg} {seen}")
            time.sleep(0.3)
            self.assertTrue(sw.alive(), "must wait for the transactions in flight")
            for msg, _ in held:
                provider.send(answer(msg, 200, "OK"), reply_address(msg))
            for p in phones:
                msg, source, seen = p.final(f"z9hG4bK-drain-{p.user}")
                self.assertEqual(status_code(msg or ""), 200, f"phone {p.user}: in-flight REGISTER: {msg} {seen}")
                self.assertEqual(source, (HOST, sw.udp_port))
            sw.expect_exit(timeout=5)
        finally:
            sw.stop()  # only when the test failed before the exit
        records = [json.loads(line) for line in verdict_log.read_text().splitlines()]
        mine = collections.Counter(r["call_id"] for r in records if r["method"] == "REGISTER")
        self.assertEqual(mine, collections.Counter(p.call_id for p in phones), records)
        self.assertEqual({r["verdict"] for r in records if r["method"] == "REGISTER"}, {"ok"}, records)


if __name__ == "__main__":
    unittest.main()
