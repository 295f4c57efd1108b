#!/usr/bin/env python3
"""SIP over TLS through sipwitness, end to end (loopback only).

Debian's SIPp 3.6.1 has no TLS, so SIPp takes part through TlsBridge, a
TLS<->TCP relay written with Python's ssl module that terminates TLS:

    SIPp phone --TCP--> bridge --TLS--> sipwitness --UDP--> SIPp provider
    SIPp phone --UDP--> sipwitness --TLS--> bridge --TCP--> SIPp provider

The SIPp phone scenarios are the usual ones rewritten on the fly (tls_variant)
to say SIP/2.0/TLS and ;transport=tls, as a TLS phone would. baresip 1.0 speaks
TLS itself (baresip/tls_config, tls_accounts). Python's ssl module is the phone
for the handshake-level checks. certs.py makes a fresh PKI per run (CA,
sipwitness's server certificate, provider.test, a phone, a stranger, a wrong
name); nothing with a private key is in the tree.

Contract under test (config):
    listen: - { transport: tls, host, port, cert, key, ca_file, verify_clients }
    upstream: { uri: "sip:H:P;transport=tls", tls: { ca_file, cert, key, server_name, verify } }
and the log lines "tls handshake with tls:IP:PORT failed: <reason>" and
"tls established with ...".

Run:  SIPWITNESS_BIN=build/sipwitness python3 tests/e2e/test_tls.py -v
E2E_KEEP=1 keeps the per-test directories (PKI, configs, logs, SIPp traces).
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from dataclasses import dataclass, field
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import certs  # noqa: E402
import harness  # noqa: E402
from relay_common import body_of, lines_of  # noqa: E402
from harness import (FAKE_AUTHORIZATION, HOST, SCENARIO_DIR, E2ETestCase, TcpClient,  # noqa: E402
                     find_message, free_port, header_values, make_request, start_line,
                     status_code, via_param)

if os.environ.get("SIPWITNESS_BIN") and not os.path.isabs(os.environ["SIPWITNESS_BIN"]):
    os.environ["SIPWITNESS_BIN"] = os.path.abspath(os.environ["SIPWITNESS_BIN"])

BARESIP_DIR = HERE / "baresip"
BARESIP_TIMEOUT = 12.0


def uri_port(value: str) -> int | None:
    m = re.search(r"sips?:[^;>]*?:(\d+)", value)
    return int(m.group(1)) if m else None


def is_tls_uri(value: str) -> bool:
    return bool(re.search(r"<sips:|;transport=tls\b", value, re.I))


def tls_variant(directory: Path, scenario: str, contact: str | None = None) -> str:
    """The SIPp scenario rewritten for a TLS peer behind a TlsBridge: SIPp runs
    TCP but writes SIP/2.0/TLS in its Via and ;transport=tls in its URIs.
    contact: host:port (or a [key]) to put in SIPp's own Contact instead of its
    TCP address (e.g. the bridge's TLS port). Returns the new file's path."""
    text = (SCENARIO_DIR / scenario).read_text()
    text = text.replace("SIP/2.0/[transport]", "SIP/2.0/TLS").replace("transport=[transport]", "transport=tls")
    if contact is not None:
        text = text.replace("@[local_ip]:[local_port];transport=tls", f"@{contact};transport=tls")
    path = directory / f"tls_variant_{scenario}"
    path.write_text(text)
    return str(path)


def client_context(pki: certs.TestPki, cert: certs.Cert | None = None) -> ssl.SSLContext:
    """A phone's context: trusts the test CA, checks the name, optional client cert."""
    ctx = ssl.create_default_context(cafile=str(pki.ca.cert))
    if cert is not None:
        ctx.load_cert_chain(str(cert.cert), str(cert.key))
    return ctx


def server_context(cert: certs.Cert, client_ca: certs.Cert | None = None) -> ssl.SSLContext:
    """A provider's context; client_ca: require a client certificate from it."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert.cert), str(cert.key))
    if client_ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(str(client_ca.cert))
    return ctx


# --------------------------------------------------------------------------
# the TLS <-> TCP bridge


@dataclass
class Link:
    """One bridged connection."""
    tls_local: tuple[str, int] | None = None   # our end of the TLS connection
    tls_peer: tuple[str, int] | None = None    # the other end of it
    established: bool = False
    error: str | None = None                   # handshake (or relay) error
    version: str | None = None
    peer_cert: dict | None = None              # what the TLS peer presented (verified)
    sni: str | None = None                     # server side: the name the client asked for
    tls_in: bytearray = field(default_factory=bytearray)   # plaintext that came over TLS
    tls_out: bytearray = field(default_factory=bytearray)  # plaintext sent over TLS
    closed_by: str | None = None


class TlsBridge:
    """A TLS terminator for SIPp, which has no TLS.

    mode "client": accepts TCP on .port (SIPp phone connects here) and opens a
        TLS connection to target (sipwitness's TLS listener) per connection.
    mode "server": accepts TLS on .port (sipwitness connects here as to a TLS
        provider) and opens a TCP connection to target (SIPp provider).
    Bytes are relayed unchanged both ways; .links records each connection
    (TLS addresses, handshake error, peer certificate, SNI, plaintext)."""

    def __init__(self, mode: str, target: tuple[str, int], context: ssl.SSLContext, *,
                 server_hostname: str | None = None, name: str = "bridge", port: int | None = None):
        if mode not in ("client", "server"):
            raise ValueError(mode)
        self.mode, self.target, self.context, self.name = mode, target, context, name
        self.server_hostname = server_hostname
        self.links: list[Link] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        if mode == "server":
            def on_sni(tls_socket, server_name, ctx):
                tls_socket.sni_name = server_name  # read back in _serve
            context.sni_callback = on_sni
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((HOST, port or free_port("tcp")))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self._accepter = threading.Thread(target=self._accept_loop, name=f"{name}-accept", daemon=True)
        self._accepter.start()

    # -- threads -----------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.listener], [], [], 0.1)
            if not ready:
                continue
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(conn,), name=f"{self.name}-link", daemon=True)
            with self._lock:
                self._threads.append(t)
                self._sockets.append(conn)
            t.start()

    def _serve(self, accepted: socket.socket) -> None:
        link = Link()
        with self._lock:
            self.links.append(link)
        plain = tls = None
        try:
            if self.mode == "client":
                plain = accepted
                raw = socket.create_connection(self.target, timeout=5)
                with self._lock:
                    self._sockets.append(raw)
                link.tls_local, link.tls_peer = raw.getsockname()[:2], raw.getpeername()[:2]
                tls = self.context.wrap_socket(raw, server_hostname=self.server_hostname)
            else:
                link.tls_local, link.tls_peer = accepted.getsockname()[:2], accepted.getpeername()[:2]
                accepted.settimeout(5)
                tls = self.context.wrap_socket(accepted, server_side=True)
                link.sni = getattr(tls, "sni_name", None)
            with self._lock:
                self._sockets.append(tls)
            link.established = True
            link.version = tls.version()
            link.peer_cert = tls.getpeercert()
            if self.mode == "server":
                plain = socket.create_connection(self.target, timeout=5)
                with self._lock:
                    self._sockets.append(plain)
        except (ssl.SSLError, OSError, ValueError) as e:
            link.error = f"{type(e).__name__}: {e}"
            for s in (tls, plain, accepted):
                _close(s)
            return
        try:
            self._pump(link, plain, tls)
        finally:
            _close(tls)
            _close(plain)

    def _pump(self, link: Link, plain: socket.socket, tls: ssl.SSLSocket) -> None:
        plain.settimeout(5)
        while not self._stop.is_set():
            readable, _, _ = select.select([plain, tls], [], [], 0.1)
            if tls.pending() and tls not in readable:
                readable.append(tls)
            if plain in readable:
                try:
                    data = plain.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    link.closed_by = "plain side"
                    return
                tls.settimeout(5)
                try:
                    tls.sendall(data)
                except (ssl.SSLError, OSError) as e:
                    link.error = f"send over TLS: {e}"
                    return
                link.tls_out += data
            if tls in readable:
                tls.settimeout(0.05)
                try:
                    data = tls.recv(65536)
                except (ssl.SSLWantReadError, socket.timeout):
                    continue  # a record without application data (e.g. a session ticket)
                except (ssl.SSLError, OSError) as e:
                    link.error = f"TLS receive: {e}"
                    link.closed_by = "tls side"
                    return
                if not data:
                    link.closed_by = "tls side"
                    return
                link.tls_in += data
                try:
                    plain.sendall(data)
                except OSError:
                    link.closed_by = "plain side"
                    return

    # -- api ---------------------------------------------------------------
    def established(self) -> list[Link]:
        return [l for l in self.links if l.established]

    def describe(self) -> str:
        out = [f"TlsBridge {self.name} ({self.mode}, port {self.port} -> {self.target}):"]
        for n, l in enumerate(self.links):
            out.append(f"  link {n}: local={l.tls_local} peer={l.tls_peer} established={l.established} "
                       f"version={l.version} sni={l.sni} error={l.error} closed_by={l.closed_by} "
                       f"in={len(l.tls_in)}B out={len(l.tls_out)}B peer_cert={l.peer_cert and l.peer_cert.get('subject')}")
        return "\n".join(out)

    def close(self) -> None:
        self._stop.set()
        _close(self.listener)
        self._accepter.join(timeout=3)
        with self._lock:
            threads, sockets = list(self._threads), list(self._sockets)
        for t in threads:
            t.join(timeout=3)
        for s in sockets:
            _close(s)


def _close(s) -> None:
    if s is None:
        return
    try:
        s.close()
    except OSError:
        pass


# --------------------------------------------------------------------------
# sipwitness with a TLS listener


class TlsSipwitness(harness.Sipwitness):
    """harness.Sipwitness with TLS in the config: listen entries "udp", "tcp"
    or "tls" (the latter with cert: server.pem, key: server.key and, unless
    verify_clients is none, ca_file: phones-ca.pem, all copied into the config
    folder: the contract's paths are relative to it); upstream_tls: the
    upstream.tls mapping (values written as given; file names relative to the
    config folder, see files)."""

    def __init__(self, upstream_uri: str, *, pki: certs.TestPki, verify_clients: str = "none",
                 upstream_tls: dict | None = None, files: dict[str, Path] | None = None,
                 server_cert: certs.Cert | None = None, **kw):
        kw.setdefault("listen", ("udp", "tls"))
        super().__init__(upstream_uri, **kw)
        self.verify_clients = verify_clients
        self.upstream_tls = upstream_tls
        self.tls_port: int | None = None
        self.workdir.mkdir(parents=True, exist_ok=True)
        server_cert = server_cert or pki.server
        copies = {"server.pem": server_cert.cert, "server.key": server_cert.key,
                  "phones-ca.pem": pki.ca.cert, "ca.pem": pki.ca.cert}
        copies.update(files or {})
        for name, src in copies.items():
            shutil.copyfile(src, self.workdir / name)

    def config_text(self) -> str:
        lines = ["listen:"]
        for item in self.listen:
            if item == "tls":
                ca = f", ca_file: phones-ca.pem" if self.verify_clients != "none" else ""
                lines.append(f"  - {{ transport: tls, host: {HOST}, port: 0, cert: server.pem, "
                             f"key: server.key{ca}, verify_clients: {self.verify_clients} }}")
            else:
                lines.append(f"  - {{ transport: {item}, host: {HOST}, port: 0 }}")
        lines.append("upstream:")
        lines.append(f'  uri: "{self.upstream_uri}"')
        if self.upstream_tls:
            lines.append("  tls: { " + ", ".join(f"{k}: {v}" for k, v in self.upstream_tls.items()) + " }")
        lines.append(f"log: {{ level: {self.level} }}")
        text = "\n".join(lines) + "\n"
        if self.extra_config:
            text += self.extra_config.rstrip("\n") + "\n"
        return text

    def _wait_ready(self) -> None:
        super()._wait_ready()
        if "tls" in self.listen:
            m = re.search(r"listening tls \[?[0-9a-fA-F.:]+?\]?:(\d+)", self.log())
            if not m:
                raise AssertionError("no 'listening tls HOST:PORT' line in the log")
            self.tls_port = int(m.group(1))

    def port(self, transport: str) -> int:
        return self.tls_port if transport == "tls" else super().port(transport)

    def count(self, pattern: str) -> int:
        return len(re.findall(pattern, self.log(), re.M))


# --------------------------------------------------------------------------
# a Python TLS phone


class _TlsSock:
    """An SSLSocket that reports TLS alerts the way TcpClient expects a reset."""

    def __init__(self, sock: ssl.SSLSocket, owner: "TlsClient"):
        self._sock, self._owner = sock, owner

    def recv(self, n: int) -> bytes:
        try:
            return self._sock.recv(n)
        except ssl.SSLWantReadError:
            raise socket.timeout("only a non-data TLS record") from None
        except ssl.SSLError as e:
            self._owner.alert = str(e)
            raise ConnectionResetError(str(e)) from e

    def sendall(self, data: bytes) -> None:
        try:
            self._sock.sendall(data)
        except ssl.SSLError as e:
            self._owner.alert = str(e)
            raise ConnectionResetError(str(e)) from e

    def __getattr__(self, name):
        return getattr(self._sock, name)


class TlsClient(TcpClient):
    """TcpClient over TLS: the handshake happens in the constructor (an
    ssl.SSLError escapes when it fails there). .alert: a TLS alert received later."""

    def __init__(self, addr: tuple[str, int], context: ssl.SSLContext, server_hostname: str = "localhost",
                 timeout: float = 5.0):
        super().__init__(addr, timeout)
        self.alert: str | None = None
        try:
            self.tls = context.wrap_socket(self.sock, server_hostname=server_hostname)
        except BaseException:
            self.sock.close()
            raise
        self.sock = _TlsSock(self.tls, self)

    def via(self, branch: str, extra: str = "") -> str:
        return f"SIP/2.0/TLS {self.host}:{self.port};branch={branch}{extra}"

    def peer_serial(self) -> int:
        return int(self.tls.getpeercert()["serialNumber"], 16)

    def ping(self, timeout: float = 2.0) -> bytes:
        """RFC 5626 keep-alive: send CRLFCRLF, return what comes back (b"" if nothing)."""
        self.sock.sendall(b"\r\n\r\n")
        deadline = time.monotonic() + timeout
        got = b""
        while time.monotonic() < deadline and len(got) < 2:
            self.tls.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(64)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                break
            got += chunk
        return got

    def register(self, branch: str, call_id: str | None = None) -> tuple[str | None, bytes]:
        """A REGISTER over this connection; returns (final response, bytes sent)."""
        data = make_request(
            "REGISTER", "sip:example.test", via=self.via(branch, ";rport"), call_id=call_id,
            to="<sip:1001@example.test>",
            extra_headers=[f"Contact: <sip:1001@{self.host}:{self.port};transport=tls>", "Expires: 600",
                           FAKE_AUTHORIZATION])
        if not self.send(data):
            return None, data
        final, _ = self.recv_final(timeout=4)
        return final, data


class UdpResponder:
    """A UDP 'provider' answering every request with 200 OK (Via, From, To+tag,
    Call-ID, CSeq, Contact echoed) and keeping what it got."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, free_port("udp")))
        self.port = self.sock.getsockname()[1]
        self.received: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.sock], [], [], 0.1)
            if not ready:
                continue
            data, addr = self.sock.recvfrom(65535)
            msg = data.decode("utf-8", "replace")
            if not msg.strip() or status_code(msg) is not None:
                continue
            self.received.append(msg)
            out = ["SIP/2.0 200 OK"]
            for name, value in harness.headers_of(msg):
                low = harness.COMPACT.get(name.lower(), name.lower())
                if low in ("via", "from", "call-id", "cseq", "record-route", "path"):
                    out.append(f"{name}: {value}")
                elif low == "to":
                    out.append(f"{name}: {value}" + ("" if ";tag=" in value else ";tag=e2e-responder"))
                elif low == "contact":
                    out.append(f"Contact: {value};expires=600")
            out.append("Content-Length: 0")
            self.sock.sendto(("\r\n".join(out) + "\r\n\r\n").encode(), addr)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=3)
        self.sock.close()


# --------------------------------------------------------------------------
# the tests


class TlsTests(E2ETestCase):
    pki: certs.TestPki
    pki_dir: Path

    @classmethod
    def setUpClass(cls):
        if not shutil.which("openssl"):
            raise unittest.SkipTest("openssl command line not found (certs.py needs it)")
        cls.pki_dir = Path(tempfile.mkdtemp(prefix="e2e-tls-pki-"))
        cls.pki = certs.TestPki(cls.pki_dir)

    @classmethod
    def tearDownClass(cls):
        if os.environ.get("E2E_KEEP") is None:
            shutil.rmtree(cls.pki_dir, ignore_errors=True)
        else:
            sys.stderr.write(f"\n(kept the test PKI in {cls.pki_dir})\n")

    # -- helpers -------------------------------------------------------------
    def tls_sipwitness(self, upstream_uri: str, **kw) -> TlsSipwitness:
        kw.setdefault("workdir", str(self.tmp / "sipwitness"))
        return TlsSipwitness(upstream_uri, pki=self.pki, **kw)

    def bridge(self, mode: str, target: tuple[str, int], context: ssl.SSLContext, **kw) -> TlsBridge:
        b = TlsBridge(mode, target, context, **kw)
        self.addCleanup(b.close)
        return b

    def phone_bridge(self, sw: TlsSipwitness, cert: certs.Cert | None = None) -> TlsBridge:
        """SIPp phone (TCP) -> bridge -> TLS -> sipwitness's TLS listener."""
        return self.bridge("client", (HOST, sw.tls_port), client_context(self.pki, cert),
                           server_hostname="localhost", name="phone-bridge")

    def tls_client(self, sw: TlsSipwitness, cert: certs.Cert | None = None) -> TlsClient:
        c = TlsClient((HOST, sw.tls_port), client_context(self.pki, cert))
        self.addCleanup(c.close)
        return c

    def responder(self) -> UdpResponder:
        r = UdpResponder()
        self.addCleanup(r.close)
        return r

    def assertTwoRecordRoutes(self, msg: str, sw: TlsSipwitness, top: str, what: str) -> list[str]:
        """Two Record-Route entries of sipwitness's, the one toward the receiver
        on top (RFC 5658): top = "tls" or "udp"."""
        rr = header_values(msg, "record-route")
        self.assertEqual(len(rr), 2, f"{what}: crossing TLS<->UDP needs a double Record-Route "
                                     f"(RFC 5658), got {rr}\n{msg}")
        tls_rr = [r for r in rr if is_tls_uri(r)]
        udp_rr = [r for r in rr if not is_tls_uri(r)]
        self.assertEqual(len(tls_rr), 1, f"{what}: exactly one Record-Route for the TLS side: {rr}")
        self.assertEqual(len(udp_rr), 1, f"{what}: exactly one Record-Route for the UDP side: {rr}")
        self.assertEqual(uri_port(tls_rr[0]), sw.tls_port, f"{what}: TLS Record-Route must name the "
                                                            f"TLS listener {sw.tls_port}: {rr}")
        self.assertEqual(uri_port(udp_rr[0]), sw.udp_port, f"{what}: UDP Record-Route must name the "
                                                            f"UDP listener {sw.udp_port}: {rr}")
        for r in rr:
            self.assertIn("127.0.0.1", r, rr)
            self.assertRegex(r, r";\s*lr\b", f"{what}: Record-Route must be loose: {rr}")
        self.assertEqual(rr[0], tls_rr[0] if top == "tls" else udp_rr[0],
                         f"{what}: the Record-Route facing the receiver ({top}) belongs on top: {rr}")
        return rr

    def assertPhoneViaBelow(self, arrived: str, sent: str, sw: TlsSipwitness, out_transport: str,
                            source_port: int, what: str) -> None:
        vias = header_values(arrived, "via")
        sent_vias = header_values(sent, "via")
        self.assertEqual(len(vias), len(sent_vias) + 1, f"{what}: sipwitness's Via on top expected:\n{arrived}")
        self.assertRegex(vias[0], rf"^SIP/2\.0/{out_transport.upper()}\s+127\.0\.0\.1:{sw.port(out_transport)}\s*;",
                         f"{what}: sipwitness's Via must name the outgoing transport and listener: {vias[0]}")
        self.assertTrue((via_param(vias[0], "branch") or "").startswith("z9hG4bK"), vias[0])
        below = vias[1]
        self.assertEqual(via_param(below, "branch"), via_param(sent_vias[0], "branch"), f"{what}: {arrived}")
        self.assertTrue(below.startswith(sent_vias[0].split(";")[0]), f"{what}: sender's Via changed: {below}")
        self.assertEqual(via_param(below, "received"), "127.0.0.1", f"{what}: received= missing: {below}")
        self.assertEqual(via_param(below, "rport"), str(source_port),
                         f"{what}: rport must be the TLS connection's source port {source_port}: {below}")

    # ======================================================================
    # 0. the test tooling on its own (no sipwitness)

    def test_bridge_tooling_without_sipwitness(self):
        """SIPp phone -TCP-> client bridge -TLS-> server bridge -TCP-> SIPp
        provider: a call works, SNI and certificates are what the tests rely on."""
        prov = self.start_sipp("uas_call.xml", transport="tcp", timeout=15, name="provider")
        server = self.bridge("server", (HOST, prov.port), server_context(self.pki.provider, self.pki.ca),
                             name="provider-bridge")
        client = self.bridge("client", (HOST, server.port), client_context(self.pki, self.pki.phone),
                             server_hostname="provider.test", name="phone-bridge")
        phone = self.run_sipp("uac_call.xml", (HOST, client.port), transport="tcp", service="2000",
                              timeout=15, name="phone")
        provr = prov.wait()
        ctx = f"\n{client.describe()}\n{server.describe()}"
        self.assertSippOk(phone, 1)
        self.assertSippOk(provr, 1)
        self.assertEqual(len(server.established()), 1, ctx)
        link = server.established()[0]
        self.assertEqual(link.sni, "provider.test", ctx)
        self.assertEqual(dict(x[0] for x in link.peer_cert["subject"])["commonName"], "phone-1001", ctx)
        self.assertIn(b"INVITE sip:2000@example.test", bytes(link.tls_in), ctx)
        self.assertEqual(client.established()[0].tls_peer[1], server.port, ctx)
        # a name the certificate does not carry fails the bridge's own handshake
        bad = self.bridge("client", (HOST, server.port), client_context(self.pki),
                          server_hostname="wrong.test", name="bad-bridge")
        with socket.create_connection((HOST, bad.port), timeout=5) as s:
            s.settimeout(5)
            self.assertEqual(s.recv(10), b"", "the bridge should drop the SIPp side when TLS fails")
        self.assertRegex(bad.links[0].error or "", r"(?i)hostname mismatch|certificate verify failed",
                         bad.describe())

    # ======================================================================
    # 1. SIPp phone over TLS -> sipwitness -> SIPp provider over UDP

    def test_sipp_tls_phone_register_to_udp_provider(self):
        prov = self.start_sipp("provider_registrar.xml", transport="udp", timeout=15, name="provider")
        with self.tls_sipwitness(f"sip:{HOST}:{prov.port};transport=udp") as sw:
            br = self.phone_bridge(sw)
            phone = self.run_sipp(tls_variant(self.tmp, "phone_register.xml"), (HOST, br.port),
                                  transport="tcp", timeout=15, name="phone")
            provr = prov.wait()
            ctx = "\n" + br.describe()
            self.assertSippOk(phone, 1)
            self.assertSippOk(provr, 1)
            self.assertEqual(len(br.established()), 1, ctx)
            link = br.established()[0]
            sent = find_message(phone.sent(), r"^REGISTER ")
            reg = find_message(provr.received(), r"^REGISTER ")
            self.assertIsNotNone(reg, provr.describe())
            self.assertIn(FAKE_AUTHORIZATION, lines_of(reg),
                          f"Authorization header not byte-identical at the provider:\n{reg}")
            self.assertEqual(start_line(reg), start_line(sent), "Request-URI changed")
            self.assertPhoneViaBelow(reg, sent, sw, "udp", link.tls_local[1], "REGISTER at provider")
            self.assertEqual(header_values(reg, "contact"), header_values(sent, "contact"),
                             "Contact must pass unchanged")
            self.assertTrue(header_values(reg, "path"), f"REGISTER needs sipwitness's Path:\n{reg}")
            ok = find_message(phone.received(), r"^SIP/2\.0 200")
            self.assertEqual(len(header_values(ok, "via")), 1, f"phone gets only its own Via back:\n{ok}")
            self.assertIsNotNone(sw.wait_for_log(
                rf"tls established with tls:127\.0\.0\.1:{link.tls_local[1]}\b", timeout=2),
                "no 'tls established with tls:127.0.0.1:PORT' line for the phone's connection")

    def test_sipp_tls_phone_call_to_udp_provider(self):
        prov = self.start_sipp("uas_call.xml", transport="udp", timeout=15, name="provider")
        with self.tls_sipwitness(f"sip:{HOST}:{prov.port};transport=udp") as sw:
            br = self.phone_bridge(sw)
            phone = self.run_sipp(tls_variant(self.tmp, "uac_call.xml"), (HOST, br.port),
                                  transport="tcp", service="2000", timeout=15, name="phone")
            provr = prov.wait()
            self.assertSippOk(phone, 1)
            self.assertSippOk(provr, 1)
            link = br.established()[0]
            sent = find_message(phone.sent(), r"^INVITE ")
            inv = find_message(provr.received(), r"^INVITE ")
            self.assertPhoneViaBelow(inv, sent, sw, "udp", link.tls_local[1], "INVITE at provider")
            rr = self.assertTwoRecordRoutes(inv, sw, "udp", "INVITE at the UDP provider")
            self.assertEqual(body_of(inv), body_of(sent), "SDP changed in transit")
            ok = find_message(phone.received(), r"^SIP/2\.0 200")
            self.assertEqual(header_values(ok, "record-route"), rr, f"Record-Route not relayed back:\n{ok}")
            for method in ("ACK", "BYE"):
                got = find_message(provr.received(), rf"^{method} ")
                self.assertIsNotNone(got, f"{method} did not reach the provider")
                routes = header_values(got, "route")
                self.assertFalse(any(uri_port(r) in (sw.udp_port, sw.tls_port) for r in routes),
                                 f"sipwitness must remove both of its Routes from {method}:\n{got}")
            self.assertEqual(len(br.established()), 1, "all of the phone's requests on one TLS connection\n"
                             + br.describe())

    def test_incoming_call_reuses_tls_connection(self):
        """The provider (UDP) calls the phone registered over TLS with an
        unreachable contact: only the phone's own TLS connection gets there."""
        contact = "192.0.2.10:5061"  # TEST-NET-1: nothing listens
        prov = self.start_sipp("provider_register_then_call.xml", transport="udp", timeout=15,
                               name="provider", keys={"ruri": "sip:1001@example.test"})
        with self.tls_sipwitness(f"sip:{HOST}:{prov.port};transport=udp") as sw:
            br = self.phone_bridge(sw)
            phone = self.run_sipp(tls_variant(self.tmp, "phone_register_then_answer.xml", "[contact_hostport]"),
                                  (HOST, br.port), transport="tcp", timeout=15, name="phone",
                                  keys={"contact_hostport": contact})
            provr = prov.wait()
            self.assertSippOk(phone, 1)
            self.assertSippOk(provr, 1)
            self.assertEqual(len(br.links), 1, "sipwitness must reuse the phone's TLS connection, "
                                               "not open another\n" + br.describe())
            inv = find_message(phone.received(), r"^INVITE ")
            self.assertRegex(header_values(inv, "via")[0],
                             rf"^SIP/2\.0/TLS\s+127\.0\.0\.1:{sw.tls_port}\s*;", inv)
            self.assertTwoRecordRoutes(inv, sw, "tls", "INVITE at the TLS phone")
            for method in ("ACK", "BYE"):
                self.assertIsNotNone(find_message(phone.received(), rf"^{method} "),
                                     f"{method} did not reach the phone over its TLS connection")

    # ======================================================================
    # 2. UDP phone -> sipwitness -> TLS provider

    def provider_behind_bridge(self, scenario: str, cert: certs.Cert, client_ca: certs.Cert | None = None,
                               calls: int = 1, keys: dict | None = None):
        """SIPp provider (TCP) behind a server bridge; its Contact names the bridge."""
        bridge_port = free_port("tcp")  # known before SIPp starts, for its Contact
        contact = f"127.0.0.1:{bridge_port}"
        prov = self.start_sipp(tls_variant(self.tmp, scenario, contact), transport="tcp", calls=calls,
                               timeout=20, name="provider",
                               keys={"contact_uri": f"sip:2000@{contact};transport=tls", **(keys or {})})
        br = self.bridge("server", (HOST, prov.port), server_context(cert, client_ca), name="provider-bridge",
                         port=bridge_port)
        return prov, br

    def test_udp_phone_call_to_tls_provider(self):
        client = self.pki.issue("sipwitness-client", cn="sipwitness-client", dns=["sipwitness.test"])
        prov, br = self.provider_behind_bridge("uas_call.xml", self.pki.provider, client_ca=self.pki.ca)
        with self.tls_sipwitness(
                f"sip:{HOST}:{br.port};transport=tls",
                upstream_tls={"ca_file": "ca.pem", "cert": "client.pem", "key": "client.key",
                              "server_name": "provider.test", "verify": "true"},
                files={"client.pem": client.cert, "client.key": client.key}) as sw:
            phone_port = free_port("udp")
            phone = self.run_sipp("uac_call.xml", (HOST, sw.udp_port), transport="udp", service="2000",
                                  port=phone_port, timeout=15, name="phone")
            provr = prov.wait()
            ctx = "\n" + br.describe()
            self.assertSippOk(phone, 1)
            self.assertSippOk(provr, 1)
            links = br.established()
            self.assertEqual(len(links), 1, "one TLS connection to the provider" + ctx)
            link = links[0]
            self.assertEqual(link.sni, "provider.test", "SNI must be upstream.tls.server_name" + ctx)
            self.assertEqual(dict(x[0] for x in link.peer_cert["subject"])["commonName"], "sipwitness-client",
                             "sipwitness must present upstream.tls.cert" + ctx)
            sent = find_message(phone.sent(), r"^INVITE ")
            inv = find_message(provr.received(), r"^INVITE ")
            self.assertPhoneViaBelow(inv, sent, sw, "tls", phone_port, "INVITE at the TLS provider")
            self.assertTwoRecordRoutes(inv, sw, "tls", "INVITE at the TLS provider")
            for method in ("ACK", "BYE"):
                self.assertIsNotNone(find_message(provr.received(), rf"^{method} "),
                                     f"{method} did not reach the TLS provider" + ctx)
            self.assertIsNotNone(sw.wait_for_log(rf"tls established with tls:127\.0\.0\.1:{br.port}\b", 2),
                                 "no 'tls established with tls:127.0.0.1:PORT' line for the upstream")

    def upstream_refused(self, cert: certs.Cert, reason: str, what: str) -> None:
        """sipwitness must not talk SIP to an upstream whose certificate fails;
        the phone gets no 2xx (503 expected) and the log says why."""
        br = self.bridge("server", (HOST, free_port("tcp")), server_context(cert), name="provider-bridge")
        with self.tls_sipwitness(f"sip:{HOST}:{br.port};transport=tls",
                                 upstream_tls={"ca_file": "ca.pem", "server_name": "provider.test"}) as sw:
            with harness.UdpClient() as phone:
                branch = "z9hG4bKtlsbad" + os.urandom(3).hex()
                phone.send(make_request("OPTIONS", via=phone.via(branch, ";rport")), (HOST, sw.udp_port))
                final, seen = phone.recv_final(timeout=6, branch=branch)
            ctx = f"\n{br.describe()}"
            self.assertIsNotNone(final, f"{what}: the phone got no final answer (503 expected)" + ctx)
            self.assertEqual(status_code(final), 503, f"{what}: expected 503\n{final}" + ctx)
            self.assertFalse(any(l.tls_in for l in br.links), f"{what}: SIP went to the provider" + ctx)
            m = sw.wait_for_log(rf"tls handshake with tls:127\.0\.0\.1:{br.port} failed: (.*)", timeout=3)
            self.assertIsNotNone(m, f"{what}: no 'tls handshake with tls:127.0.0.1:{br.port} failed' line")
            self.assertRegex(m.group(1), reason, f"{what}: the log's reason")

    def test_tls_provider_calls_udp_phone(self):
        """The UDP phone registers through sipwitness to a TLS provider, which
        then calls it on the TLS connection sipwitness opened: sipwitness
        takes requests on its outgoing connection and answers on it."""
        phone_port = free_port("udp")
        prov, br = self.provider_behind_bridge("provider_register_then_call.xml", self.pki.provider,
                                               keys={"ruri": "sip:1001@example.test"})
        with self.tls_sipwitness(f"sip:{HOST}:{br.port};transport=tls",
                                 upstream_tls={"ca_file": "ca.pem", "server_name": "provider.test"}) as sw:
            phone = self.run_sipp("phone_register_then_answer.xml", (HOST, sw.udp_port), transport="udp",
                                  port=phone_port, timeout=15, name="phone",
                                  keys={"contact_hostport": f"127.0.0.1:{phone_port}"})
            provr = prov.wait()
            ctx = "\n" + br.describe()
            self.assertSippOk(phone, 1)
            self.assertSippOk(provr, 1)
            self.assertEqual(len(br.links), 1, "everything on the one TLS connection sipwitness opened" + ctx)
            inv = find_message(phone.received(), r"^INVITE ")
            self.assertRegex(header_values(inv, "via")[0], rf"^SIP/2\.0/UDP\s+127\.0\.0\.1:{sw.udp_port}\s*;", inv)
            self.assertTwoRecordRoutes(inv, sw, "udp", "INVITE from the TLS provider at the UDP phone")
            rr = header_values(inv, "record-route")
            ok = [m for m in provr.received() if status_code(m) == 200 and "INVITE" in header_values(m, "cseq")[0]]
            self.assertTrue(ok, "the provider got no 200 for its INVITE\n" + provr.describe())
            self.assertEqual(header_values(ok[0], "record-route"), rr, f"Record-Route not relayed back:\n{ok[0]}")
            for method in ("ACK", "BYE"):
                self.assertIsNotNone(find_message(phone.received(), rf"^{method} "),
                                     f"{method} from the TLS provider did not reach the phone" + ctx)

    def register_to_bridged_registrar(self, upstream_uri_fmt: str, cert: certs.Cert, upstream_tls: dict) -> TlsBridge:
        """UDP SIPp phone REGISTERs through sipwitness to a SIPp registrar
        behind a TLS bridge presenting cert; returns the bridge."""
        prov, br = self.provider_behind_bridge("provider_registrar.xml", cert)
        with self.tls_sipwitness(upstream_uri_fmt.format(port=br.port), upstream_tls=upstream_tls) as sw:
            phone = self.run_sipp("phone_register.xml", (HOST, sw.udp_port), transport="udp", timeout=15,
                                  name="phone")
            provr = prov.wait()
            ctx = "\n" + br.describe()
            self.assertSippOk(phone, 1)
            self.assertSippOk(provr, 1)
            reg = find_message(provr.received(), r"^REGISTER ")
            self.assertIn(FAKE_AUTHORIZATION, lines_of(reg), reg)
            self.assertRegex(header_values(reg, "via")[0], rf"^SIP/2\.0/TLS\s+127\.0\.0\.1:{sw.tls_port}\s*;", reg)
            self.assertEqual(len(br.established()), 1, ctx)
            self.assertIsNotNone(sw.wait_for_log(rf"tls established with tls:127\.0\.0\.1:{br.port}\b", 2),
                                 "no 'tls established' line for the upstream")
        return br

    def test_sips_upstream_name_from_uri(self):
        """upstream sips:localhost:PORT without server_name: the URI's host is
        the name checked (and sent as SNI)."""
        br = self.register_to_bridged_registrar("sips:localhost:{port}", self.pki.server, {"ca_file": "ca.pem"})
        self.assertEqual(br.established()[0].sni, "localhost", br.describe())

    def test_upstream_verify_false_accepts_any_certificate(self):
        self.register_to_bridged_registrar("sip:127.0.0.1:{port};transport=tls", self.pki.stranger,
                                           {"verify": "false"})

    def test_tls_provider_with_wrong_name_is_refused(self):
        self.upstream_refused(self.pki.wrong_name, r"provider\.test", "certificate for wrong.test")

    def test_tls_provider_untrusted_is_refused(self):
        self.upstream_refused(self.pki.stranger, r"certificate verify failed|self.signed",
                              "self-signed provider certificate")

    # ======================================================================
    # 3. baresip over TLS

    def baresip(self, sw: TlsSipwitness, dial: str | None, cert: certs.Cert | None):
        """Start baresip (TLS account through sw); returns (proc, output(), stop())."""
        exe = shutil.which("baresip")
        if not exe:
            self.skipTest("baresip is not installed (Debian package baresip; scripts/setup installs it)")
        conf = self.tmp / "baresip"
        conf.mkdir()
        listen = _free_port_pair()
        (conf / "config").write_text(
            (BARESIP_DIR / "tls_config").read_text()
            .replace("{sip_listen}", f"{HOST}:{listen}")
            .replace("{sip_certificate}", str(cert.combined()) if cert else "")
            .replace("{sip_cafile}", str(self.pki.ca.cert)))
        (conf / "accounts").write_text(
            (BARESIP_DIR / "tls_accounts").read_text().replace("{sw_port}", str(sw.tls_port)))
        (conf / "contacts").write_text("")
        out_path = self.tmp / "baresip.out"
        out = open(out_path, "wb")
        argv = [exe, "-f", str(conf), "-s", "-v", "-n", HOST]  # SDP/RTP on loopback too
        if dial:
            argv += ["-e", f"/dial {dial}"]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                cwd=self.tmp, start_new_session=True)

        def stop():
            harness.stop_process_group(proc)
            if not out.closed:
                out.close()
        self.addCleanup(stop)

        def output() -> str:
            return out_path.read_bytes().decode("utf-8", "replace")
        return proc, output, stop

    def run_baresip_call(self, sw: TlsSipwitness, prov, verify_clients_cert: certs.Cert | None):
        """baresip registers and calls 2000 through sw; waits until the provider
        SIPp saw the ACK, then SIGTERM (baresip sends BYE). Returns (provr, baresip output)."""
        proc, output, stop = self.baresip(sw, "sip:2000@example.test", verify_clients_cert)
        deadline = time.monotonic() + BARESIP_TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:
            text = output()
            if re.search(r"(?m)^ACK sip:", text) or re.search(r"reg: .*(failed|Register:)", text):
                break
            time.sleep(0.1)
        time.sleep(0.3)
        stop()  # hangs up: BYE to the provider
        provr = prov.wait(timeout=10)
        return provr, output()

    def assertBaresipThrough(self, provr, text: str, sw: TlsSipwitness, out_transport: str) -> tuple[str, str]:
        ctx = f"\n--- baresip ---\n{text[-6000:]}\n{provr.describe()}"
        reg = find_message(provr.received(), r"^REGISTER ")
        self.assertIsNotNone(reg, "the provider got no REGISTER from baresip" + ctx)
        inv = find_message(provr.received(), r"^INVITE ")
        self.assertIsNotNone(inv, "the provider got no INVITE from baresip" + ctx)
        for msg, what in ((reg, "REGISTER"), (inv, "INVITE")):
            vias = header_values(msg, "via")
            self.assertEqual(len(vias), 2, f"{what}: sipwitness's Via over baresip's:\n{msg}")
            self.assertRegex(vias[0], rf"^SIP/2\.0/{out_transport.upper()}\s+127\.0\.0\.1:{sw.port(out_transport)}\s*;",
                             f"{what}: {msg}")
            self.assertRegex(vias[1], r"^SIP/2\.0/TLS\s", f"{what}: baresip's Via says TLS: {msg}")
            self.assertEqual(via_param(vias[1], "received"), "127.0.0.1", f"{what}: {vias[1]}")
            self.assertTrue((via_param(vias[1], "rport") or "").isdigit(), f"{what}: rport filled in: {vias[1]}")
        self.assertTrue(any(";transport=tls" in c for c in header_values(reg, "contact")),
                        f"baresip's TLS Contact should reach the registrar unchanged:\n{reg}")
        self.assertTrue(header_values(reg, "path"), f"REGISTER needs sipwitness's Path:\n{reg}")
        for method in ("ACK", "BYE"):
            self.assertIsNotNone(find_message(provr.received(), rf"^{method} "),
                                 f"{method} from baresip did not reach the provider" + ctx)
        self.assertTrue(provr.successful == 2 and provr.failed == 0,
                        "provider: a registration and a call expected" + ctx)
        return reg, inv

    def test_baresip_tls_register_and_call_to_udp_provider(self):
        """verify_clients: require; baresip presents the CA-signed phone cert."""
        prov_port = free_port("udp")
        prov = self.start_sipp("tls_provider_register_and_answer.xml", transport="udp", port=prov_port,
                               calls=2, timeout=20, name="provider",
                               keys={"contact_uri": f"sip:2000@127.0.0.1:{prov_port}"})
        with self.tls_sipwitness(f"sip:{HOST}:{prov.port};transport=udp", verify_clients="require") as sw:
            provr, text = self.run_baresip_call(sw, prov, self.pki.phone)
            reg, inv = self.assertBaresipThrough(provr, text, sw, "udp")
            self.assertTwoRecordRoutes(inv, sw, "udp", "baresip's INVITE at the UDP provider")
            self.assertRegex(sw.log(), r"tls established with tls:127\.0\.0\.1:\d+", "no 'tls established' line")

    def test_baresip_tls_call_to_tls_provider(self):
        """TLS both ways: baresip -> sipwitness -> bridge -> SIPp."""
        prov, br = self.provider_behind_bridge("tls_provider_register_and_answer.xml", self.pki.provider, calls=2)
        with self.tls_sipwitness(f"sip:{HOST}:{br.port};transport=tls",
                                 upstream_tls={"ca_file": "ca.pem", "server_name": "provider.test"}) as sw:
            provr, text = self.run_baresip_call(sw, prov, None)
            reg, inv = self.assertBaresipThrough(provr, text, sw, "tls")
            rr = header_values(inv, "record-route")
            self.assertTrue(rr and all(is_tls_uri(r) for r in rr) and uri_port(rr[0]) == sw.tls_port,
                            f"TLS to TLS: sipwitness's Record-Route(s) name its TLS listener: {rr}")

    # ======================================================================
    # 4. client certificates at the listener

    def test_client_certificate_optional(self):
        """verify_clients: optional: a certificate that fails verification is
        refused with a clear log line; the CA-signed one and none are accepted."""
        up = self.responder()
        with self.tls_sipwitness(f"sip:{HOST}:{up.port};transport=udp", verify_clients="optional") as sw:
            # a stranger's self-signed certificate
            refused_at_handshake = None
            try:
                stranger = TlsClient((HOST, sw.tls_port), client_context(self.pki, self.pki.stranger))
                self.addCleanup(stranger.close)
            except (ssl.SSLError, OSError) as e:  # TLS 1.2: refused inside the handshake
                refused_at_handshake, stranger_port = str(e), None
            else:  # TLS 1.3: the client finishes first; the refusal comes as an alert
                stranger_port = stranger.port
                final, _ = stranger.register("z9hG4bKstranger1")
                self.assertIsNone(final, f"a phone with an untrusted certificate got an answer:\n{final}")
                self.assertTrue(stranger.closed or stranger.wait_closed(2),
                                "sipwitness should close the connection of an untrusted phone")
            pattern = (rf"tls handshake with tls:127\.0\.0\.1:{stranger_port} failed: (.*)" if stranger_port
                       else r"tls handshake with tls:127\.0\.0\.1:\d+ failed: (.*)")
            m = sw.wait_for_log(pattern, timeout=3)
            self.assertIsNotNone(m, f"no 'tls handshake ... failed' line for the stranger "
                                    f"(client side: {refused_at_handshake or stranger.alert})")
            self.assertRegex(m.group(1), r"(?i)certificate verify failed|self.signed|unknown ca",
                             "the reason should say why the certificate was refused")
            self.assertEqual(up.received, [], "nothing of the stranger's may reach the provider")

            # the CA-signed phone certificate
            phone = self.tls_client(sw, self.pki.phone)
            final, sent = phone.register("z9hG4bKphone1")
            self.assertEqual(status_code(final or ""), 200, f"the CA-signed phone was not served:\n{final}")
            self.assertTrue(any(FAKE_AUTHORIZATION in lines_of(r) for r in up.received), up.received)
            self.assertIsNotNone(sw.wait_for_log(rf"tls established with tls:127\.0\.0\.1:{phone.port}\b", 2),
                                 "no 'tls established' line for the phone")

            # optional: no certificate at all is fine
            anon = self.tls_client(sw)
            final, _ = anon.register("z9hG4bKanon1")
            self.assertEqual(status_code(final or ""), 200, f"optional: a phone without certificate:\n{final}")
            self.assertTrue(sw.alive())

    def test_client_certificate_required(self):
        up = self.responder()
        with self.tls_sipwitness(f"sip:{HOST}:{up.port};transport=udp", verify_clients="require") as sw:
            try:
                anon = TlsClient((HOST, sw.tls_port), client_context(self.pki))
                self.addCleanup(anon.close)
                final, _ = anon.register("z9hG4bKnocert1")
                self.assertIsNone(final, f"require: a phone without certificate got an answer:\n{final}")
                port = anon.port
            except (ssl.SSLError, OSError):
                port = None
            port_re = str(port) if port else r"\d+"
            m = sw.wait_for_log(rf"tls handshake with tls:127\.0\.0\.1:{port_re} failed: (.*)", timeout=3)
            self.assertIsNotNone(m, "no 'tls handshake ... failed' line for a phone without certificate")
            self.assertEqual(up.received, [])
            phone = self.tls_client(sw, self.pki.phone)
            final, _ = phone.register("z9hG4bKcert1")
            self.assertEqual(status_code(final or ""), 200, f"require: the CA-signed phone:\n{final}")

    # ======================================================================
    # 5. keep-alive

    def test_crlf_keepalive_over_tls(self):
        up = self.responder()
        with self.tls_sipwitness(f"sip:{HOST}:{up.port};transport=udp") as sw:
            c = self.tls_client(sw)
            self.assertEqual(c.ping(), b"\r\n", "CRLFCRLF over TLS must get a CRLF pong (RFC 5626 3.5.1)")
            self.assertEqual(c.ping(), b"\r\n", "a second ping on the same connection")
            final, _ = c.register("z9hG4bKka1")
            self.assertEqual(status_code(final or ""), 200, f"the connection works after pings:\n{final}")
            self.assertEqual(len(up.received), 1, f"only the REGISTER may reach the provider, not the pings: {up.received}")

    # ======================================================================
    # 6. SIGHUP reloads the listener certificate

    def test_sighup_reloads_listener_certificate(self):
        up = self.responder()
        with self.tls_sipwitness(f"sip:{HOST}:{up.port};transport=udp") as sw:
            old = self.tls_client(sw)
            self.assertEqual(old.peer_serial(), self.pki.server.serial)
            self.assertEqual(old.ping(), b"\r\n")

            fresh = self.pki.issue("server-reloaded", cn="localhost-reloaded", dns=["localhost"], ips=["127.0.0.1"])
            _replace(sw.workdir / "server.key", fresh.key.read_bytes())
            _replace(sw.workdir / "server.pem", fresh.cert.read_bytes())
            sw.proc.send_signal(signal.SIGHUP)
            seen = self.wait_serial(sw, fresh.serial)
            self.assertEqual(seen, fresh.serial, f"after SIGHUP a new connection should get the new certificate "
                                                 f"(serial {fresh.serial:#x}), got {seen:#x}")
            new = self.tls_client(sw)
            self.assertEqual(dict(x[0] for x in new.tls.getpeercert()["subject"])["commonName"], "localhost-reloaded")
            # the connection from before the reload still works
            self.assertEqual(old.ping(), b"\r\n", "the old connection must survive the reload")
            final, _ = old.register("z9hG4bKold1")
            self.assertEqual(status_code(final or ""), 200, f"old connection after SIGHUP:\n{final}")

            # a broken certificate file: keep the running one, log an error
            errors = sw.count(r"^\S+\s+error\b")
            _replace(sw.workdir / "server.pem", b"-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n")
            sw.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 5
            while sw.count(r"^\S+\s+error\b") <= errors and time.monotonic() < deadline:
                time.sleep(0.05)
            error_lines = re.findall(r"(?m)^\S+\s+error\b.*$", sw.log())[errors:]
            self.assertTrue(error_lines, "no error line after SIGHUP with a broken certificate file")
            self.assertTrue(any("server.pem" in l for l in error_lines),
                            f"the error should name the broken file: {error_lines}")
            self.assertTrue(sw.alive(), "a broken certificate on SIGHUP must not stop sipwitness")
            again = self.tls_client(sw)
            self.assertEqual(again.peer_serial(), fresh.serial, "the running certificate must stay in use")
            self.assertEqual(again.ping(), b"\r\n")
            self.assertEqual(old.ping(), b"\r\n")

    def wait_serial(self, sw: TlsSipwitness, serial: int, timeout: float = 5.0) -> int:
        deadline = time.monotonic() + timeout
        seen = -1
        while time.monotonic() < deadline:
            try:
                c = TlsClient((HOST, sw.tls_port), client_context(self.pki), timeout=2)
            except (ssl.SSLError, OSError):
                time.sleep(0.05)
                continue
            try:
                seen = c.peer_serial()
            finally:
                c.close()
            if seen == serial:
                break
            time.sleep(0.05)
        return seen

    # ======================================================================
    # 7. configuration errors

    def test_config_errors(self):
        d = self.tmp / "config"
        d.mkdir()
        for name, src in {"server.pem": self.pki.server.cert, "server.key": self.pki.server.key}.items():
            shutil.copyfile(src, d / name)
        binary = harness.sipwitness_binary()

        def run(text: str, *args: str) -> subprocess.CompletedProcess:
            path = d / "sipwitness.yaml"
            path.write_text(text)
            return subprocess.run([binary, "run", "--config", str(path), *args], capture_output=True, text=True,
                                  timeout=10, stdin=subprocess.DEVNULL, cwd=d)

        udp = f"  - {{ transport: udp, host: {HOST}, port: 0 }}\n"
        tls = f"  - {{ transport: tls, host: {HOST}, port: 0, cert: server.pem, key: server.key }}\n"
        good = f"listen:\n{udp}{tls}upstream:\n  uri: \"sip:{HOST}:5071;transport=tls\"\n"
        p = run(good, "--check")
        self.assertEqual(p.returncode, 0, f"a TLS listener and upstream should pass --check:\n{p.stdout}{p.stderr}")

        p = run(f"listen:\n{udp}upstream:\n  uri: \"sip:{HOST}:5071;transport=tls\"\n", "--check")
        self.assertEqual(p.returncode, 2, f"a TLS upstream needs a TLS listener:\n{p.stdout}{p.stderr}")
        self.assertRegex(p.stderr, r"(?i)tls", p.stderr)

        p = run(f"listen:\n{udp}  - {{ transport: tls, host: {HOST}, port: 0, cert: server.pem, key: server.key, "
                f"verify_clients: optional }}\nupstream:\n  uri: \"sip:{HOST}:5071\"\n", "--check")
        self.assertEqual(p.returncode, 2, f"verify_clients without ca_file:\n{p.stdout}{p.stderr}")
        self.assertIn("ca_file", p.stderr)

        # a certificate file that is not there: --check names it, and sipwitness does not start
        p = run(good.replace("cert: server.pem", "cert: missing.pem"), "--check")
        self.assertEqual(p.returncode, 2, f"--check passed a missing certificate:\n{p.stdout}{p.stderr}")
        self.assertRegex(p.stderr, r"listen\[1\]: .*missing\.pem: cannot load the certificate chain")
        try:
            p = run(good.replace("cert: server.pem", "cert: missing.pem"))
        except subprocess.TimeoutExpired:
            self.fail("sipwitness kept running without its certificate file (killed after 10 s)")
        self.assertNotEqual(p.returncode, 0, f"started without its certificate:\n{p.stdout}{p.stderr}")
        self.assertIn("missing.pem", p.stdout + p.stderr, "the error should name the file")
        self.assertNotRegex(p.stdout + p.stderr, r"\bready\b")

    # ======================================================================
    # 8. verdicts over TLS

    def test_verdict_ok_after_challenge_over_tls(self):
        verdicts = self.tmp / "verdicts.jsonl"
        prov = self.start_sipp("provider_registrar_challenge.xml", transport="udp", timeout=15, name="registrar")
        diag = f'diag:\n  verdict_log: "{verdicts}"\n  flow_timeout: 2s\n'
        with self.tls_sipwitness(f"sip:{HOST}:{prov.port};transport=udp", extra_config=diag) as sw:
            br = self.phone_bridge(sw)
            phone = self.run_sipp(tls_variant(self.tmp, "phone_register_challenge.xml"), (HOST, br.port),
                                  transport="tcp", timeout=15, name="phone")
            provr = prov.wait()
            self.assertSippOk(phone, 1)
            self.assertSippOk(provr, 1)
            call_id = header_values(find_message(phone.sent(), r"^REGISTER "), "call-id")[0]
            rec = None
            deadline = time.monotonic() + 6
            while rec is None and time.monotonic() < deadline:
                for line in (verdicts.read_text() if verdicts.exists() else "").splitlines():
                    try:
                        r = json.loads(line)
                    except ValueError:
                        continue
                    if r.get("call_id") == call_id:
                        rec = r
                time.sleep(0.05)
            ctx = f"\nverdict file: {verdicts.read_text() if verdicts.exists() else '(none)'}"
            self.assertIsNotNone(rec, f"no verdict line for {call_id}" + ctx)
            self.assertEqual(rec.get("verdict"), "ok_after_challenge", json.dumps(rec))
            self.assertEqual(rec.get("challenges"), 1, json.dumps(rec))
            self.assertEqual(rec.get("final_status"), 200, json.dumps(rec))
            self.assertEqual(rec.get("method"), "REGISTER", json.dumps(rec))
            self.assertEqual(rec.get("source"), f"127.0.0.1:{br.established()[0].tls_local[1]}",
                             "source: the phone's TLS connection as sipwitness saw it\n" + json.dumps(rec))
            self.assertRegex(sw.log(), r"verdict ok_after_challenge\b")


# --------------------------------------------------------------------------
# small helpers


def _replace(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".new")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _free_port_pair() -> int:
    """P free for UDP and TCP with P+1 free for TCP (baresip listens for TLS on P+1)."""
    for _ in range(50):
        p = free_port("both")
        if harness._lock_port(p + 1) and harness._bindable(socket.AF_INET, socket.SOCK_STREAM, HOST, p + 1):
            return p
    raise RuntimeError("no free port pair")


if __name__ == "__main__":
    unittest.main(verbosity=2)
