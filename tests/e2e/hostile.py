"""Hostile traffic for end-to-end tests and bench/soak (Python stdlib only).

  torture_cases()            the RFC 4475 messages of tests/data/torture with
                             their parser-level verdict from its EXPECTED file
  options_sweep(...)         SIPVicious-style OPTIONS scan (svmap)
  register_brute_force(...)  many usernames, wrong passwords, against a 407
  invite_flood(...)          INVITEs with random Call-IDs to users that do not exist
  malformed_burst(...)       the invalid torture messages plus junk datagrams
  PROVIDER_SCENARIO          the SIPp provider that answers all of it

Every generator is bounded by its count (and each wait by a timeout), sends
only to the given loopback target, and returns a Counter of what came back:
status codes as ints, plus "sent" and "unanswered".

Scanners use their own loopback source addresses (127.0.0.X): sipwitness's
brute-force guard blocks a source address, and the good traffic comes from
127.0.0.1.
"""

from __future__ import annotations

import collections
import hashlib
import os
import re
import select
import socket
import time
from pathlib import Path

from harness import HOST, REPO_ROOT, make_request, status_code

TORTURE_DIR = REPO_ROOT / "tests" / "data" / "torture"
PROVIDER_SCENARIO = "hostile_provider.xml"  # in harness.SCENARIO_DIR
PROVIDER_USER = "2000"  # the only user the provider knows
SCANNER_UA = "friendly-scanner"  # what SIPVicious sends; fail2ban rules match it
JUNK = bytes((i * 37 + 11) % 256 for i in range(512))  # deterministic non-SIP bytes


def torture_cases() -> dict[str, bool]:
    """name -> True for a message the RFC calls valid, from tests/data/torture/EXPECTED."""
    cases = {}
    for line in (TORTURE_DIR / "EXPECTED").read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 2:
            cases[fields[0]] = fields[1] == "valid"
    return cases


def torture_message(name: str) -> bytes:
    return (TORTURE_DIR / f"{name}.sip").read_bytes()


def scanner_socket(source_host: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((source_host, 0))
    return sock


def _read_answers(waiting: dict[socket.socket, set[str]], counts: collections.Counter,
                  until: float, stop_when_answered: bool = False) -> None:
    """Read answers until the monotonic time `until` (or, stop_when_answered,
    until every Call-ID of waiting has its final response), counting final
    status codes. Reading while sending keeps the receive buffers from overflowing."""
    while (left := until - time.monotonic()) > 0:
        if stop_when_answered and not any(waiting.values()):
            return
        ready, _, _ = select.select(list(waiting), [], [], left)
        for sock in ready:
            try:
                data, _ = sock.recvfrom(65535)
            except ConnectionRefusedError:
                continue
            text = data.decode("utf-8", "replace")
            code = status_code(text)
            m = re.search(r"^(?:Call-ID|i)\s*:\s*(\S+)", text, re.I | re.M)
            if code is None or code < 200 or not m or m.group(1) not in waiting[sock]:
                continue
            waiting[sock].discard(m.group(1))
            counts[code] += 1


def _send_paced(messages, rate: float, waiting: dict[socket.socket, set[str]],
                counts: collections.Counter, target: tuple[str, int], timeout: float) -> None:
    """Send (socket, Call-ID, bytes) at rate per second, reading answers in
    between; then wait up to timeout for the rest. Unanswered ones are counted."""
    started = time.monotonic()
    for i, (sock, call_id, data) in enumerate(messages):
        _read_answers(waiting, counts, started + i / rate)
        sock.sendto(data, target)
        waiting[sock].add(call_id)
        counts["sent"] += 1
    _read_answers(waiting, counts, time.monotonic() + timeout, stop_when_answered=True)
    counts["unanswered"] += sum(len(v) for v in waiting.values())


def options_sweep(target: tuple[str, int], count: int, rate: float = 200.0,
                  sources: tuple[str, ...] = ("127.0.0.21", "127.0.0.22", "127.0.0.23"),
                  timeout: float = 3.0) -> collections.Counter:
    """svmap: OPTIONS to many extensions, from several source ports, with
    SIPVicious's User-Agent and its From/To display name."""
    counts: collections.Counter = collections.Counter()
    socks = [scanner_socket(host) for host in sources]

    def sweep():
        for i in range(count):
            sock = socks[i % len(socks)]
            host, port = sock.getsockname()
            user, call_id = 100 + i, os.urandom(6).hex()
            yield sock, call_id, make_request(
                "OPTIONS", f"sip:{user}@{target[0]}", call_id=call_id,
                via=f"SIP/2.0/UDP {host}:{port};branch=z9hG4bK-{os.urandom(5).hex()};rport",
                to=f'"sipvicious"<sip:{user}@{target[0]}>',
                extra_headers=[f"User-Agent: {SCANNER_UA}", "Accept: application/sdp"])
    try:
        _send_paced(sweep(), rate, {sock: set() for sock in socks}, counts, target, timeout)
    finally:
        for sock in socks:
            sock.close()
    return counts


def _digest_answer(challenge: str, user: str, password: str, ruri: str, method: str) -> str:
    """A Proxy-Authorization answering an MD5 challenge (the guessed password is wrong)."""
    realm = re.search(r'realm="([^"]*)"', challenge).group(1)
    nonce = re.search(r'nonce="([^"]*)"', challenge).group(1)
    cnonce = os.urandom(4).hex()
    md5 = lambda s: hashlib.md5(s.encode()).hexdigest()  # noqa: E731
    ha1, ha2 = md5(f"{user}:{realm}:{password}"), md5(f"{method}:{ruri}")
    response = md5(f"{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}")
    return (f'Proxy-Authorization: Digest username="{user}", realm="{realm}", nonce="{nonce}", '
            f'uri="{ruri}", response="{response}", algorithm=MD5, qop=auth, nc=00000001, '
            f'cnonce="{cnonce}"')


def register_brute_force(target: tuple[str, int], users: list[str], source: str = "127.0.0.66",
                         domain: str = "example.test",
                         timeout: float = 2.0) -> tuple[collections.Counter, list[int | None]]:
    """svcrack/svwar: for each username a REGISTER, then one wrong password
    against the 407's MD5 challenge. Returns the counts and every final status
    in order (None: no answer), so a caller sees the 407s turn into 403s when
    the source is blocked."""
    counts: collections.Counter = collections.Counter()
    sequence: list[int] = []
    sock = scanner_socket(source)
    host, port = sock.getsockname()
    ruri = f"sip:{domain}"
    try:
        for user in users:
            call_id, tag = os.urandom(6).hex(), os.urandom(4).hex()
            answer: list[str] = []
            for cseq in (1, 2):
                msg = make_request(
                    "REGISTER", ruri, call_id=call_id, from_tag=tag, cseq=cseq,
                    via=f"SIP/2.0/UDP {host}:{port};branch=z9hG4bK-{os.urandom(5).hex()};rport",
                    to=f"<sip:{user}@{domain}>",
                    extra_headers=[f"Contact: <sip:{user}@{host}:{port}>", "Expires: 3600",
                                   f"User-Agent: {SCANNER_UA}"] + answer)
                sock.sendto(msg, target)
                counts["sent"] += 1
                got = _final_for(sock, call_id, timeout)
                code = status_code(got) if got else None
                sequence.append(code)
                counts[code if code else "unanswered"] += 1
                challenge = re.search(r"^Proxy-Authenticate\s*:(.*)$", got or "", re.I | re.M)
                if code != 407 or not challenge or "MD5" not in challenge.group(1):
                    break
                answer = [_digest_answer(challenge.group(1), user, f"guess{user}", ruri, "REGISTER")]
    finally:
        sock.close()
    return counts, sequence


def _final_for(sock: socket.socket, call_id: str, timeout: float) -> str | None:
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        sock.settimeout(left)
        try:
            data, _ = sock.recvfrom(65535)
        except (socket.timeout, ConnectionRefusedError):
            return None
        text = data.decode("utf-8", "replace")
        code = status_code(text)
        if code and code >= 200 and call_id in text:
            return text


def invite_flood(target: tuple[str, int], count: int, rate: float = 200.0,
                 source: str = "127.0.0.77", timeout: float = 3.0) -> collections.Counter:
    """INVITEs (with SDP) to random nonexistent users, a fresh Call-ID each,
    never ACKed: a toll-fraud scanner looking for an open trunk."""
    counts: collections.Counter = collections.Counter()
    sock = scanner_socket(source)
    host, port = sock.getsockname()
    sdp = (f"v=0\r\no=- 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
           f"m=audio 9 RTP/AVP 0\r\n").encode()

    def flood():
        for _ in range(count):
            user = f"9{int.from_bytes(os.urandom(4), 'big') % 10**9:09d}"  # never PROVIDER_USER
            call_id = os.urandom(8).hex()
            yield sock, call_id, make_request(
                "INVITE", f"sip:{user}@{target[0]}", call_id=call_id, body=sdp,
                via=f"SIP/2.0/UDP {host}:{port};branch=z9hG4bK-{os.urandom(5).hex()};rport",
                to=f"<sip:{user}@{target[0]}>",
                extra_headers=[f"Contact: <sip:scan@{host}:{port}>", f"User-Agent: {SCANNER_UA}",
                               "Content-Type: application/sdp"])
    try:
        _send_paced(flood(), rate, {sock: set()}, counts, target, timeout)
    finally:
        sock.close()
    return counts


def malformed_burst(target: tuple[str, int], source: str = "127.0.0.88") -> collections.Counter:
    """Every invalid RFC 4475 message and two junk datagrams, without reading
    the answers (test_hostile checks them one by one)."""
    counts: collections.Counter = collections.Counter()
    sock = scanner_socket(source)
    try:
        for name, valid in torture_cases().items():
            if not valid:
                sock.sendto(torture_message(name), target)
                counts["sent"] += 1
        for junk in (JUNK, b"\r\n\r\nSIP/2.0\r\n\r\n"):
            sock.sendto(junk, target)
            counts["sent"] += 1
    finally:
        sock.close()
    return counts
