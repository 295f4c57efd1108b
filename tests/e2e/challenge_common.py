"""The challenge tests' helpers, shared with test_workers.py: the
challenge config, digest math independent of sipwitness, a Python phone and a
Python registrar (UDP)."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import threading

from harness import HOST, UdpClient, header_values, headers_of, start_line, status_code, via_param

REALM = "lab.example"

USERS_YAML = 'users:\n  - { username: "1001", password: "secret1001" }\n'

def challenge_yaml(algorithms=("SHA-256", "MD5"), nonce_ttl="300s", max_failures=3,
                   methods=("REGISTER", "INVITE"), block_time="60s", guard: tuple = ()) -> str:
    """guard: more `key: value` lines for challenge:."""
    return (
        "challenge:\n"
        "  enabled: true\n"
        f"  realm: {REALM}\n"
        f"  methods: [{', '.join(methods)}]\n"
        f"  nonce_ttl: {nonce_ttl}\n"
        f"  algorithms: [{', '.join(algorithms)}]\n"
        "  users: users.yaml\n"
        f"  max_failures: {max_failures}\n"
        "  failure_window: 60s\n"
        f"  block_time: {block_time}\n"
        + "".join(f"  {line}\n" for line in guard)
    )


def cseq_of(message: str) -> str:
    values = header_values(message, "cseq")
    return " ".join(values[0].split()) if values else ""


# --------------------------------------------------------------------------
# digest math (RFC 2617 / RFC 7616 / RFC 8760), independent of sipwitness

def _hash(algorithm: str, text: str) -> str:
    base = algorithm.upper().removesuffix("-SESS")
    if base == "MD5":
        return hashlib.md5(text.encode()).hexdigest()
    if base == "SHA-256":
        return hashlib.sha256(text.encode()).hexdigest()
    if base == "SHA-512-256":
        return hashlib.new("sha512_256", text.encode()).hexdigest()
    raise ValueError(algorithm)


def ha1_of(algorithm: str, user: str, realm: str, password: str) -> str:
    return _hash(algorithm, f"{user}:{realm}:{password}")


_PARAM = re.compile(r'([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]+)')


def parse_challenge(value: str) -> dict[str, str]:
    """Parameters of a Digest challenge/credentials value (quotes removed)."""
    scheme, _, rest = value.strip().partition(" ")
    params = {"scheme": scheme}
    for k, v in _PARAM.findall(rest):
        params[k.lower()] = v[1:-1] if v.startswith('"') else v
    return params


def proxy_authenticates(message: str) -> list[str]:
    return [v for n, v in headers_of(message) if n.lower() == "proxy-authenticate"]


def challenge_for(message: str, algorithm: str) -> dict[str, str]:
    for value in proxy_authenticates(message):
        ch = parse_challenge(value)
        if ch.get("algorithm", "MD5").upper() == algorithm.upper():
            return ch
    raise AssertionError(f"no Proxy-Authenticate with algorithm={algorithm} in:\n{message}")


def credentials(ch: dict[str, str], *, user: str, method: str, uri: str, password: str | None = None,
                ha1: str | None = None, nc: str = "00000001", cnonce: str | None = None,
                response: str | None = None) -> str:
    """A Proxy-Authorization header answering challenge ch (qop=auth)."""
    algorithm = ch.get("algorithm", "MD5")
    cnonce = cnonce or os.urandom(8).hex()
    if ha1 is None:
        ha1 = ha1_of(algorithm, user, ch["realm"], password)
    ha2 = _hash(algorithm, f"{method}:{uri}")
    if response is None:
        response = _hash(algorithm, f"{ha1}:{ch['nonce']}:{nc}:{cnonce}:auth:{ha2}")
    header = (f'Proxy-Authorization: Digest username="{user}", realm="{ch["realm"]}", '
              f'nonce="{ch["nonce"]}", uri="{uri}", response="{response}", algorithm={algorithm}, '
              f'qop=auth, nc={nc}, cnonce="{cnonce}"')
    if "opaque" in ch:
        header += f', opaque="{ch["opaque"]}"'
    return header


# --------------------------------------------------------------------------
# a Python phone (UDP) and a Python registrar (the provider, UDP)


class PyPhone:
    """Hand-made requests over UDP to sipwitness, one Call-ID per phone."""

    def __init__(self, sw_port: int, user: str = "1001", host: str = HOST):
        self.client = UdpClient(host)
        self.addr = (HOST, sw_port)
        self.user = user
        self.call_id = os.urandom(8).hex() + "@py-phone"
        self.from_tag = os.urandom(4).hex()
        self.cseq = 0

    def close(self) -> None:
        self.client.close()

    def build(self, method: str, *, branch: str, cseq: int | None = None, extra: tuple = (),
              ruri: str | None = None, to: str | None = None, body: str = "") -> bytes:
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        if ruri is None:
            ruri = f"sip:{REALM}" if method == "REGISTER" else f"sip:2000@{REALM}"
        if to is None:
            to = f"<sip:{self.user}@{REALM}>" if method == "REGISTER" else f"<sip:2000@{REALM}>"
        lines = [
            f"{method} {ruri} SIP/2.0",
            f"Via: {self.client.via(branch, ';rport')}",
            f"From: <sip:{self.user}@{REALM}>;tag={self.from_tag}",
            f"To: {to}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:{self.user}@{self.client.host}:{self.client.port}>",
            "Max-Forwards: 70",
        ]
        if method == "REGISTER":
            lines.append("Expires: 3600")
        lines += list(extra)
        lines.append("User-Agent: sipwitness-e2e-pyphone")
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()

    def send(self, data: bytes) -> None:
        self.client.send(data, self.addr)

    def transact(self, data: bytes, timeout: float = 3.0) -> str | None:
        """Send a request; the final response for its branch (None: nothing)."""
        branch = via_param(header_values(data.decode(), "via")[0], "branch")
        self.send(data)
        final, _ = self.client.recv_final(timeout, branch=branch)
        return final

    def register(self, password: str | None = None, algorithm: str = "MD5", *, ha1: str | None = None,
                 uri: str = f"sip:{REALM}") -> tuple[str | None, str | None]:
        """REGISTER, then (if 407) REGISTER with credentials for algorithm.
        Returns (first final response, second final response or None)."""
        first = self.transact(self.build("REGISTER", branch=new_branch()))
        if first is None or status_code(first) != 407 or (password is None and ha1 is None):
            return first, None
        ch = challenge_for(first, algorithm)
        auth = credentials(ch, user=self.user, method="REGISTER", uri=uri, password=password, ha1=ha1)
        second = self.transact(self.build("REGISTER", branch=new_branch(), extra=(auth,)))
        return first, second


def new_branch() -> str:
    return "z9hG4bK-py-" + os.urandom(6).hex()


class PyRegistrar:
    """Provider on UDP: records every message; answers requests other than
    ACK with 200 OK (Vias, From, To + tag, Call-ID, CSeq, Contact echoed)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.port = self.sock.getsockname()[1]
        self.received: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(70_000)
            except socket.timeout:
                continue
            except OSError:
                return
            msg = data.decode("utf-8", "replace")
            with self._lock:
                self.received.append(msg)
            first = start_line(msg)
            if first.startswith("SIP/2.0") or first.startswith("ACK "):
                continue
            reply = ["SIP/2.0 200 OK"]
            for name, value in headers_of(msg):
                low = name.lower()
                if low in ("via", "v", "from", "f", "call-id", "i", "cseq", "contact", "m", "path"):
                    reply.append(f"{name}: {value}")
                elif low in ("to", "t"):
                    reply.append(f"{name}: {value}" + ("" if "tag=" in value else ";tag=py-registrar"))
            reply += ["Server: sipwitness-e2e-pyregistrar", "Content-Length: 0"]
            try:
                self.sock.sendto(("\r\n".join(reply) + "\r\n\r\n").encode(), addr)
            except OSError:
                pass

    def messages(self) -> list[str]:
        with self._lock:
            return list(self.received)

    def requests(self, method: str) -> list[str]:
        return [m for m in self.messages() if start_line(m).startswith(method + " ")]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()
