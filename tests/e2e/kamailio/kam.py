"""Kamailio helpers for sipwitness's end-to-end tests.

Everything here is stdlib only and loopback only:

* ``Kamailio``: renders ``kamailio.cfg.tmpl`` into a private temporary
  directory and runs ``kamailio -DD -E`` in the foreground as a child of the
  test, listening only on ``udp:127.0.0.1:<free port>``, with its own pid file,
  runtime dir and module path. It is ready once it answers an OPTIONS probe.
  Stopping sends SIGTERM, then SIGKILL to its own process group.
* ``free_udp_port``, ``wait_udp_bound``/``wait_udp_free``: pick ports at run
  time, watch a port being bound/released (read from /proc/net/udp, no probing
  bind that could race with the process binding it).
* ``missing_prerequisites``: why Kamailio tests cannot run here.

SIPp and sipwitness are run through tests/e2e/harness.py.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "kamailio.cfg.tmpl"
SCENARIOS = HERE / "scenarios"

KAMAILIO_BIN = os.environ.get("KAMAILIO_BIN") or shutil.which("kamailio") or "/usr/sbin/kamailio"
SIPP_BIN = os.environ.get("SIPP_BIN") or shutil.which("sipp") or "/usr/bin/sipp"

_MPATH_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/kamailio/modules",
    "/usr/lib/aarch64-linux-gnu/kamailio/modules",
    "/usr/lib64/kamailio/modules",
    "/usr/lib/kamailio/modules",
    "/usr/local/lib64/kamailio/modules",
    "/usr/local/lib/kamailio/modules",
)

# The modules kamailio.cfg.tmpl loads; checked up front for a clear skip reason.
REQUIRED_MODULES = (
    "tm", "tmx", "sl", "rr", "pv", "maxfwd", "textops", "siputils", "xlog",
    "sanity", "usrloc", "registrar", "auth",
)

DEFAULT_USERS = {"1001": "secret1001"}
DEFAULT_REALM = "kam.test"


def find_mpath() -> str | None:
    env = os.environ.get("KAMAILIO_MPATH")
    candidates = ((env,) if env else ()) + _MPATH_CANDIDATES
    for c in candidates:
        if c and os.path.isfile(os.path.join(c, "tm.so")):
            return c
    return None


def missing_prerequisites() -> list[str]:
    """Why Kamailio/SIPp tests cannot run here (empty list: they can)."""
    why = []
    if not (os.path.isfile(KAMAILIO_BIN) and os.access(KAMAILIO_BIN, os.X_OK)):
        why.append(f"kamailio not found ({KAMAILIO_BIN})")
    mpath = find_mpath()
    if mpath is None:
        why.append("kamailio module directory not found (set KAMAILIO_MPATH)")
    else:
        for m in REQUIRED_MODULES:
            if not os.path.isfile(os.path.join(mpath, m + ".so")):
                why.append(f"kamailio module {m}.so missing in {mpath}")
    if not (os.path.isfile(SIPP_BIN) and os.access(SIPP_BIN, os.X_OK)):
        why.append(f"sipp not found ({SIPP_BIN})")
    return why


# --------------------------------------------------------------------------
# ports


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port that was free on host a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _udp_bound_ports() -> set[tuple[str, int]]:
    bound = set()
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table) as f:
                next(f, None)
                for line in f:
                    parts = line.split()
                    if len(parts) < 2:
                        continue
                    addr, port = parts[1].rsplit(":", 1)
                    bound.add((addr, int(port, 16)))
        except OSError:
            continue
    return bound


def udp_port_bound(port: int) -> bool:
    return any(p == port for _, p in _udp_bound_ports())


def wait_udp_bound(port: int, timeout: float, proc: subprocess.Popen | None = None) -> bool:
    """Wait until some socket is bound to UDP port (or proc exits)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if udp_port_bound(port):
            return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def wait_udp_free(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not udp_port_bound(port):
            return True
        time.sleep(0.05)
    return False


# --------------------------------------------------------------------------
# process helpers


def stop_process(proc: subprocess.Popen | None, term_timeout: float = 5.0,
                 group: bool = False) -> int | None:
    """SIGTERM, wait, then SIGKILL; with group=True also SIGKILL whatever is
    left in the process group the child leads (it was started with
    start_new_session=True, so its pgid is its own pid)."""
    if proc is None:
        return None
    pgid = proc.pid
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=term_timeout)
        except subprocess.TimeoutExpired:
            try:
                if group:
                    os.killpg(pgid, signal.SIGKILL)
                else:
                    proc.kill()
            except ProcessLookupError:
                pass
            proc.wait(timeout=5)
    if group:
        # leftover children (e.g. Kamailio workers) keep the group id
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return proc.returncode


# --------------------------------------------------------------------------
# Kamailio


def _quote_cfg(s: str) -> str:
    if any(c in s for c in '"\\\n\r$'):
        raise ValueError(f"value not allowed in kamailio cfg string: {s!r}")
    return s


def render_config(port: int, rundir: str, *, realm: str = DEFAULT_REALM,
                  users: dict[str, str] | None = None, debug: int = 2,
                  qop: bool = True, mpath: str | None = None, algorithm: str = "MD5",
                  nonce_expire: int = 60, stale_on_expiry: bool = False) -> str:
    users = DEFAULT_USERS if users is None else users
    mpath = mpath or find_mpath()
    if mpath is None:
        raise RuntimeError("kamailio module directory not found")
    branches = []
    for user, password in users.items():
        branches.append(
            f'\tif ($au == "{_quote_cfg(user)}") {{ '
            f'$var(pw) = "{_quote_cfg(password)}"; $var(known) = 1; }}'
        )
    values = {
        "PORT": str(int(port)),
        "REALM": _quote_cfg(realm),
        "MPATH": _quote_cfg(mpath.rstrip("/") + "/"),
        "DEBUG": str(int(debug)),
        "QOP_FLAG": "1" if qop else "0",
        "ALGORITHM": _quote_cfg(algorithm),
        "NONCE_EXPIRE": str(int(nonce_expire)),
        # www_challenge flags after an expired nonce: 16 adds stale=true
        "STALE_CHALLENGE_FLAGS": str((1 if qop else 0) | (16 if stale_on_expiry else 0)),
        "PASSWORD_BRANCHES": "\n".join(branches) if branches else "\t# no users",
    }
    text = TEMPLATE.read_text()
    for k, v in values.items():
        text = text.replace("{{" + k + "}}", v)
    left = re.findall(r"\{\{[A-Z_]+\}\}", text)
    if left:
        raise RuntimeError(f"unreplaced placeholders in kamailio config: {sorted(set(left))}")
    return text


def sip_options_probe(host: str, port: int, timeout: float = 0.5) -> str | None:
    """Send one OPTIONS to host:port from an ephemeral UDP socket; return the
    status line of the answer, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        lport = s.getsockname()[1]
        tag = uuid.uuid4().hex[:10]
        msg = (
            f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{lport};branch=z9hG4bK{tag};rport\r\n"
            f"Max-Forwards: 70\r\n"
            f"From: <sip:probe@127.0.0.1:{lport}>;tag={tag}\r\n"
            f"To: <sip:{host}:{port}>\r\n"
            f"Call-ID: probe-{tag}@127.0.0.1\r\n"
            f"CSeq: 1 OPTIONS\r\n"
            f"Content-Length: 0\r\n\r\n"
        )
        s.settimeout(timeout)
        s.sendto(msg.encode(), (host, port))
        try:
            data, _ = s.recvfrom(65535)
        except (socket.timeout, ConnectionRefusedError, OSError):
            return None
        return data.decode("utf-8", "replace").split("\r\n", 1)[0]


class Kamailio:
    """Kamailio registrar/proxy on udp:127.0.0.1:<port>, in the foreground.

    with Kamailio() as kam:
        kam.port, kam.uri, kam.log()
    """

    def __init__(self, *, port: int | None = None, realm: str = DEFAULT_REALM,
                 users: dict[str, str] | None = None, debug: int = 2,
                 workdir: str | None = None, start_timeout: float = 15.0, algorithm: str = "MD5",
                 nonce_expire: int = 60, stale_on_expiry: bool = False):
        """nonce_expire: the auth module's nonce lifetime in seconds. A nonce
        is stale once its expiry second is in the past (so it is refused
        between nonce_expire and nonce_expire + 1 s after the challenge); an
        answer with a stale nonce fails before the password is checked
        (pv_www_authenticate returns -4).
        stale_on_expiry: re-challenge such an answer with stale=true
        (www_challenge flag 16). Kamailio never adds stale=true by itself:
        the script must ask for it, and the stock kamailio.cfg does not, so
        the default (False) re-challenges like a stock Kamailio."""
        self.realm = realm
        self.algorithm = algorithm
        self.nonce_expire = nonce_expire
        self.stale_on_expiry = stale_on_expiry
        self.users = dict(DEFAULT_USERS if users is None else users)
        self.debug = debug
        self.start_timeout = start_timeout
        self._own_tmp = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="sw-kam-"))
        self.port = port or free_udp_port()
        self.rundir = self.workdir / "run"
        self.cfg_path = self.workdir / "kamailio.cfg"
        self.pid_path = self.rundir / "kamailio.pid"
        self.log_path = self.workdir / "kamailio.log"
        self.proc: subprocess.Popen | None = None
        self._log_fh = None

    @property
    def uri(self) -> str:
        return f"sip:127.0.0.1:{self.port};transport=udp"

    def command(self) -> list[str]:
        return [
            KAMAILIO_BIN,
            "-f", str(self.cfg_path),
            "-DD", "-E",
            "-P", str(self.pid_path),
            "-Y", str(self.rundir),
            "-L", find_mpath() or "",
            "-w", str(self.workdir),
            "-m", "32", "-M", "8",
            "-a", "no",
        ]

    def write_config(self) -> None:
        self.rundir.mkdir(parents=True, exist_ok=True)
        self.cfg_path.write_text(render_config(
            self.port, str(self.rundir), realm=self.realm, users=self.users,
            debug=self.debug, algorithm=self.algorithm, nonce_expire=self.nonce_expire,
            stale_on_expiry=self.stale_on_expiry))

    def check_config(self, timeout: float = 15.0) -> subprocess.CompletedProcess:
        """`kamailio -c`: syntax and module check only."""
        self.write_config()
        return subprocess.run(self.command() + ["-c"], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout)

    def start(self) -> "Kamailio":
        self.write_config()
        self._log_fh = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            self.command(), stdin=subprocess.DEVNULL, stdout=self._log_fh,
            stderr=subprocess.STDOUT, cwd=str(self.workdir), start_new_session=True)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"kamailio exited with {self.proc.returncode} during start-up:\n"
                    + self.log()[-4000:])
            status = sip_options_probe("127.0.0.1", self.port, timeout=0.3)
            if status and status.startswith("SIP/2.0 200"):
                return self
            time.sleep(0.1)
        raise RuntimeError(f"kamailio did not answer OPTIONS on 127.0.0.1:{self.port} "
                           f"within {self.start_timeout}s:\n" + self.log()[-4000:])

    def stop(self) -> int | None:
        rc = stop_process(self.proc, term_timeout=5.0, group=True)
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None
        return rc

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def cleanup(self) -> None:
        if self._own_tmp and not os.environ.get("E2E_KEEP"):
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "Kamailio":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()
        self.cleanup()  # its own temp dir only (not a given workdir), kept with E2E_KEEP
