"""End-to-end test harness for sipwitness (Python stdlib only).

Pieces:
  free_port(kind)            a free loopback port ("udp", "tcp" or "both")
  Sipwitness(...)            context manager running the real binary on loopback
  start_sipp(...)/run_sipp   SIPp wrappers; every run is bounded (-m, -timeout,
                             -recv_timeout, and a hard kill from Python)
  SCENARIO_DIR               the SIPp scenarios used by the tests
  AlgRelay(server, there, back)  a UDP relay that rewrites like a broken SIP ALG
  E2ETestCase                unittest base class: per-test temp dir, process
                             cleanup, helpers for SIPp pairs

Every process started here is stopped in a finally block (or by the test case's
cleanup), so a failing test never leaves SIPp or sipwitness running.
"""

from __future__ import annotations

import fcntl
import os
import random
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCENARIO_DIR = HERE / "scenarios"
REPO_ROOT = HERE.parent.parent
HOST = "127.0.0.1"
SIPP = shutil.which("sipp") or "sipp"

READY_TIMEOUT = 10.0  # seconds for sipwitness to print "ready"
STOP_TIMEOUT = 10.0  # seconds for sipwitness to exit after SIGTERM

# The fixed, fake credentials header the phone scenarios send; a transparent
# proxy must deliver it byte for byte (keep in sync with phone_register*.xml).
FAKE_AUTHORIZATION = (
    'Authorization: Digest username="1001", realm="x", nonce="e2e-fixed-nonce-0001", '
    'uri="sip:example.test",response="0123456789abcdef0123456789abcdef", algorithm=MD5, '
    'qop=auth, nc=00000001, cnonce="e2e-cnonce"'
)

SANITIZER_MARKERS = ("AddressSanitizer", "runtime error:", "LeakSanitizer", "ThreadSanitizer")


def sipwitness_binary() -> str:
    """Path of the binary under test: $SIPWITNESS_BIN, else build/sipwitness."""
    path = os.environ.get("SIPWITNESS_BIN") or str(REPO_ROOT / "build" / "sipwitness")
    return os.path.abspath(path)  # processes start in their own temp dirs


# --------------------------------------------------------------------------
# ports

# Ports are handed out below the kernel's ephemeral range, so no socket bound
# to port 0 (sipwitness's own, SIPp's control port, another test's client) can
# take one between free_port() and the peer binding it. Parallel test files
# share that range, so each port is held by an flock() for the life of the
# process that was given it.
_PORT_LOCK_DIR = Path(tempfile.gettempdir()) / "sipwitness-e2e-ports"
_held_port_locks: dict[int, int] = {}


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _lock_port(port: int) -> bool:
    _PORT_LOCK_DIR.mkdir(exist_ok=True)
    fd = os.open(_PORT_LOCK_DIR / str(port), os.O_CREAT | os.O_RDWR, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _held_port_locks[port] = fd
    return True


def _bindable(family: int, sock_type: int, host: str, port: int) -> bool:
    s = socket.socket(family, sock_type)
    try:
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port(kind: str = "udp", host: str = HOST) -> int:
    """A free port on host, never handed out twice by any test process.

    kind: "udp", "tcp" or "both" (free for both). Ports come from below the
    ephemeral range and are locked across processes (see _PORT_LOCK_DIR).
    """
    if kind not in ("udp", "tcp", "both"):
        raise ValueError(f"kind must be udp, tcp or both, not {kind!r}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    types = {"udp": [socket.SOCK_DGRAM], "tcp": [socket.SOCK_STREAM],
             "both": [socket.SOCK_DGRAM, socket.SOCK_STREAM]}[kind]
    high = min(_ephemeral_low(), 65536) - 1
    low = max(10000, high - 20000)
    for _ in range(500):
        port = random.randint(low, high)
        if port in _held_port_locks or not _lock_port(port):
            continue
        if all(_bindable(family, t, host, port) for t in types):
            return port
    raise RuntimeError("no free port found")


# --------------------------------------------------------------------------
# sipwitness


class Sipwitness:
    """Runs `sipwitness run --config FILE` with a config written to a temp dir.

    with Sipwitness(upstream_port=5080, upstream_transport="udp") as sw:
        sw.udp_port, sw.tcp_port, sw.log()
    On exit: SIGTERM, expect exit code 0 and no sanitizer report (else
    AssertionError with the log dumped to stderr).
    """

    def __init__(
        self,
        upstream_uri: str | None = None,
        *,
        upstream_port: int | None = None,
        upstream_transport: str = "udp",
        listen: tuple = ("udp", "tcp"),
        level: str = "debug",
        extra_config: str = "",
        upstream_config: str = "",
        workdir: str | None = None,
        binary: str | None = None,
        ready_timeout: float = READY_TIMEOUT,
    ):
        if upstream_uri is None:
            if upstream_port is None:
                raise ValueError("need upstream_uri or upstream_port")
            upstream_uri = f"sip:{HOST}:{upstream_port};transport={upstream_transport}"
        self.upstream_uri = upstream_uri
        self.listen = listen
        self.level = level
        self.extra_config = extra_config
        self.upstream_config = upstream_config  # more upstream keys, e.g. "failover_after: 1s"
        self.binary = binary or sipwitness_binary()
        self.ready_timeout = ready_timeout
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="sipwitness-e2e-"))
        self.config_path = self.workdir / "sipwitness.yaml"
        self.log_path = self.workdir / "sipwitness.log"
        self.proc: subprocess.Popen | None = None
        self.udp_port: int | None = None
        self.tcp_port: int | None = None
        self.returncode: int | None = None
        self._log_file = None

    # -- config -----------------------------------------------------------
    def config_text(self) -> str:
        lines = ["listen:"]
        for item in self.listen:
            # "udp" (port 0: let the binary pick), ("udp", 5062), or
            # ("udp", 0, "192.0.2.9:5099") with an advertised address
            item = (item, 0) if isinstance(item, str) else tuple(item)
            transport, port = item[0], item[1]
            advertise = f', advertise: "{item[2]}"' if len(item) > 2 else ""
            lines.append(f"  - {{ transport: {transport}, host: {HOST}, port: {port}{advertise} }}")
        more = f", {self.upstream_config}" if self.upstream_config else ""
        lines.append(f'upstream: {{ uri: "{self.upstream_uri}"{more} }}')
        lines.append(f"log: {{ level: {self.level} }}")
        text = "\n".join(lines) + "\n"
        if self.extra_config:
            text += self.extra_config.rstrip("\n") + "\n"
        return text

    # -- lifecycle --------------------------------------------------------
    def start(self) -> "Sipwitness":
        if not os.path.exists(self.binary):
            raise AssertionError(
                f"sipwitness binary not found at {self.binary} (set SIPWITNESS_BIN)")
        self.config_path.write_text(self.config_text())
        self._log_file = open(self.log_path, "wb")
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        self.proc = subprocess.Popen(
            [self.binary, "run", "--config", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            env=env,
            start_new_session=True,
        )
        try:
            self._wait_ready()
        except BaseException:
            self._kill()
            self.dump_log("sipwitness did not become ready")
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while True:
            text = self.log()
            if re.search(r"\bready\b", text):
                break
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"sipwitness exited with {self.proc.returncode} before 'ready'")
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"sipwitness did not print 'ready' within {self.ready_timeout}s")
            time.sleep(0.02)
        text = self.log()
        m = re.search(r"listening udp \[?[0-9a-fA-F.:]+?\]?:(\d+)", text)
        if m:
            self.udp_port = int(m.group(1))
        m = re.search(r"listening tcp \[?[0-9a-fA-F.:]+?\]?:(\d+)", text)
        if m:
            self.tcp_port = int(m.group(1))
        transports = {item if isinstance(item, str) else item[0] for item in self.listen}
        if "udp" in transports and not self.udp_port:
            raise AssertionError("no 'listening udp HOST:PORT' line in the log")
        if "tcp" in transports and not self.tcp_port:
            raise AssertionError("no 'listening tcp HOST:PORT' line in the log")

    def port(self, transport: str) -> int:
        return self.udp_port if transport == "udp" else self.tcp_port

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, pattern: str, timeout: float = 5.0, flags: int = 0) -> re.Match | None:
        """Wait until regex pattern appears in the log; returns the match or None."""
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.log(), flags)
            if m or time.monotonic() > deadline:
                return m
            time.sleep(0.05)

    def dump_log(self, why: str, limit: int = 200_000) -> None:
        text = self.log()
        if len(text) > limit:
            text = f"[... {len(text) - limit} bytes cut ...]\n" + text[-limit:]
        sys.stderr.write(f"\n===== sipwitness log ({why}; {self.log_path}) =====\n")
        sys.stderr.write(text)
        sys.stderr.write("\n===== end of sipwitness log =====\n")
        sys.stderr.flush()

    def _kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=5)
        if self._log_file:
            self._log_file.close()
            self._log_file = None

    def stop(self, check: bool = True) -> int:
        """SIGTERM, wait, and (check=True) assert exit 0 and no sanitizer report."""
        if self.proc is None:
            return 0
        if self.returncode is not None:  # stopped (and checked) already
            return self.returncode
        problems = []
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    problems.append(f"did not exit within {STOP_TIMEOUT}s of SIGTERM (killed)")
            else:
                problems.append(f"had already exited (code {self.proc.returncode}) before SIGTERM")
        finally:
            self._kill()
        self.returncode = self.proc.returncode
        if self.returncode != 0 and not any("killed" in p for p in problems):
            problems.append(f"exit code {self.returncode} (expected 0)")
        text = self.log()
        for marker in SANITIZER_MARKERS:
            if marker in text:
                problems.append(f"sanitizer report in log: {marker!r}")
        if problems and check:
            self.dump_log("; ".join(problems))
            raise AssertionError("sipwitness: " + "; ".join(problems))
        return self.returncode

    def expect_exit(self, timeout: float) -> None:
        """For a stop the test started itself (a signal): wait for the exit, then
        the same checks as stop(): exit 0 and no sanitizer report."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill()
            self.dump_log(f"did not exit within {timeout}s")
            raise AssertionError(f"sipwitness did not exit within {timeout}s")
        self._kill()  # closes the log file
        self.returncode = self.proc.returncode
        problems = [f"exit code {self.returncode} (expected 0)"] if self.returncode != 0 else []
        problems += [f"sanitizer report in log: {m!r}" for m in SANITIZER_MARKERS if m in self.log()]
        if problems:
            self.dump_log("; ".join(problems))
            raise AssertionError("sipwitness: " + "; ".join(problems))

    def cleanup_dir(self) -> None:
        if self._own_dir and os.environ.get("E2E_KEEP") is None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "Sipwitness":
        return self.start()

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            # the test failed inside the block: show the log, still stop cleanly
            self.dump_log(f"test failed: {exc_type.__name__}: {exc}")
            try:
                self.stop(check=True)
            except AssertionError as stop_error:
                sys.stderr.write(f"(also: {stop_error})\n")
            return None
        self.stop(check=True)
        return None


# --------------------------------------------------------------------------
# SIPp


class SippResult:
    """Outcome of one SIPp run: exit code, stats and the trace files' text."""

    def __init__(self, sipp: "Sipp", returncode: int | None, killed: bool):
        self.name = sipp.name
        self.args = sipp.argv
        self.returncode = returncode
        self.killed = killed
        self.stats = _read_stats(sipp.stat_file)
        self.successful = _stat_int(self.stats, "SuccessfulCall(C)")
        self.failed = _stat_int(self.stats, "FailedCall(C)")
        self.created = _stat_int(self.stats, "TotalCallCreated")
        self.stdout = _read(sipp.out_file)
        self.messages = _read(sipp.message_file)
        self.errors = _read(sipp.error_file)
        self.screen = _read(sipp.screen_file)
        if self.successful is None:  # fall back on the final screen
            m = re.findall(r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)", self.screen)
            if m:
                self.successful = int(m[-1])
            m = re.findall(r"Failed call\s*\|\s*\d+\s*\|\s*(\d+)", self.screen)
            if m:
                self.failed = int(m[-1])

    def ok(self, calls: int) -> bool:
        return (not self.killed and self.returncode == 0 and self.successful == calls
                and self.failed == 0)

    def received(self) -> list[str]:
        """SIP messages this SIPp received (from -trace_msg), in order."""
        return _split_trace(self.messages, "received")

    def sent(self) -> list[str]:
        return _split_trace(self.messages, "sent")

    def describe(self, limit: int = 12_000) -> str:
        def cut(s: str) -> str:
            return s if len(s) <= limit else "[...]\n" + s[-limit:]
        return (
            f"SIPp {self.name}: exit={self.returncode} killed={self.killed} "
            f"successful={self.successful} failed={self.failed} created={self.created}\n"
            f"  argv: {' '.join(self.args)}\n"
            f"--- errors (-trace_err) ---\n{cut(self.errors)}\n"
            f"--- messages (-trace_msg) ---\n{cut(self.messages)}\n"
            f"--- screen ---\n{cut(self.screen)}\n"
            f"--- stdout/stderr ---\n{cut(self.stdout)}\n"
        )


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def _read_stats(path: Path) -> dict[str, str]:
    text = _read(path)
    rows = [line for line in text.splitlines() if line.strip()]
    if len(rows) < 2:
        return {}
    header = rows[0].split(";")
    last = rows[-1].split(";")
    return {k: v for k, v in zip(header, last)}


def _stat_int(stats: dict[str, str], key: str) -> int | None:
    try:
        return int(stats[key])
    except (KeyError, ValueError):
        return None


_TRACE_SPLIT = re.compile(r"^-{20,} \d{4}-\d\d-\d\d [^\n]*\n", re.M)


def _split_trace(text: str, direction: str) -> list[str]:
    out = []
    for block in _TRACE_SPLIT.split(text):
        head, _, body = block.partition("\n")
        if direction in head and "message" in head:
            out.append(body.strip("\n") + "\n")
    return out


class Sipp:
    """One SIPp process. Use start_sipp()/run_sipp() rather than this directly."""

    def __init__(
        self,
        scenario: str,
        remote: tuple[str, int] | None = None,
        *,
        transport: str = "udp",
        port: int | None = None,
        calls: int = 1,
        rate: float | None = None,
        rate_period_ms: int | None = None,
        limit: int | None = None,
        timeout: float = 30.0,
        recv_timeout_ms: int = 10_000,
        service: str | None = None,
        keys: dict[str, str] | None = None,
        extra_args: list[str] | tuple[str, ...] = (),
        workdir: str | Path | None = None,
        name: str | None = None,
        trace_messages: bool = True,
    ):
        self.scenario = scenario
        self.remote = remote
        self.transport = transport
        self.port = port or free_port("both" if transport == "tcp" else "udp")
        self.calls = calls
        self.timeout = timeout
        self.name = name or Path(scenario).stem
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="sipp-e2e-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        base = self.workdir / f"{self.name}-{self.port}"
        self.stat_file = Path(f"{base}.stats.csv")
        self.message_file = Path(f"{base}.messages.log")
        self.error_file = Path(f"{base}.errors.log")
        self.screen_file = Path(f"{base}.screen.log")
        self.out_file = Path(f"{base}.out")
        for f in (self.stat_file, self.message_file, self.error_file, self.screen_file):
            if f.exists():
                f.unlink()
        scen_path = scenario if os.path.isabs(scenario) else str(SCENARIO_DIR / scenario)
        if scenario in ("uac", "uas", "regexp", "branchc", "branchs"):
            scen_args = ["-sn", scenario]
        else:
            scen_args = ["-sf", scen_path]
        argv = [SIPP]
        if remote is not None:
            argv.append(f"{remote[0]}:{remote[1]}")
        argv += scen_args
        argv += [
            "-t", "t1" if transport == "tcp" else "u1",
            "-i", HOST,
            "-p", str(self.port),
            "-bind_local",
            "-m", str(calls),
            "-timeout", f"{int(timeout)}s",
            "-timeout_error",
            "-recv_timeout", str(recv_timeout_ms),
            "-nostdin",
            "-cp", str(free_port("udp")),
            "-trace_stat", "-stf", str(self.stat_file), "-fd", "1",
            "-trace_err", "-error_file", str(self.error_file),
            "-trace_screen", "-screen_file", str(self.screen_file),
        ]
        if trace_messages:
            argv += ["-trace_msg", "-message_file", str(self.message_file)]
        if rate is not None:
            argv += ["-r", str(rate)]
        if rate_period_ms is not None:
            argv += ["-rp", str(rate_period_ms)]
        if limit is not None:
            argv += ["-l", str(limit)]
        if service is not None:
            argv += ["-s", service]
        for k, v in (keys or {}).items():
            argv += ["-key", k, str(v)]
        argv += list(extra_args)
        self.argv = argv
        self.proc: subprocess.Popen | None = None
        self._out = None
        self.result: SippResult | None = None

    def start(self) -> "Sipp":
        self._out = open(self.out_file, "wb")
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, stdout=self._out, stderr=subprocess.STDOUT,
            cwd=self.workdir, start_new_session=True)
        return self

    def wait_listening(self, timeout: float = 5.0) -> None:
        """Wait until the SIPp server socket is bound (so a peer can reach it)."""
        deadline = time.monotonic() + timeout
        kind = socket.SOCK_STREAM if self.transport == "tcp" else socket.SOCK_DGRAM
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return
            s = socket.socket(socket.AF_INET, kind)
            try:
                s.bind((HOST, self.port))
            except OSError:
                return  # bound by SIPp
            finally:
                s.close()
            time.sleep(0.02)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait(self, timeout: float | None = None) -> SippResult:
        """Wait for SIPp to stop by itself (bounded); kill it if it overstays."""
        if self.result is not None:
            return self.result
        limit = self.timeout + 15 if timeout is None else timeout
        killed = False
        try:
            self.proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            killed = True
            self.kill()
        finally:
            if self._out:
                self._out.close()
                self._out = None
        self.result = SippResult(self, self.proc.returncode, killed)
        return self.result

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            for sig in (signal.SIGUSR1, signal.SIGKILL):  # SIGUSR1 asks SIPp to quit
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(timeout=3)
                    break
                except subprocess.TimeoutExpired:
                    continue

    def stop(self) -> SippResult:
        """Kill if still running and collect the result (for cleanup paths)."""
        if self.result is None and self.proc is not None:
            if self.proc.poll() is None:
                self.kill()
                return self.wait(timeout=5)
            return self.wait(timeout=5)
        return self.result


def start_sipp(scenario: str, remote: tuple[str, int] | None = None, **kw) -> Sipp:
    """Start SIPp in the background; the caller must .wait() or .stop() it."""
    sipp = Sipp(scenario, remote, **kw).start()
    if remote is None:  # a server: wait until it listens
        sipp.wait_listening()
    return sipp


def run_sipp(scenario: str, remote: tuple[str, int] | None = None, **kw) -> SippResult:
    """Run SIPp to completion (bounded by -m / -timeout / a hard kill)."""
    sipp = Sipp(scenario, remote, **kw).start()
    try:
        return sipp.wait()
    finally:
        sipp.stop()


# --------------------------------------------------------------------------
# SIP message helpers for assertions


def headers_of(message: str) -> list[tuple[str, str]]:
    """(name, raw value) pairs of a SIP message's header section, in order."""
    head = message.replace("\r\n", "\n").split("\n\n", 1)[0]
    lines = head.split("\n")[1:]
    out: list[tuple[str, str]] = []
    for line in lines:
        if line[:1] in (" ", "\t") and out:
            out[-1] = (out[-1][0], out[-1][1] + " " + line.strip())
            continue
        name, sep, value = line.partition(":")
        if sep:
            out.append((name.strip(), value.strip()))
    return out


COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact",
           "l": "content-length", "c": "content-type", "k": "supported"}


def header_values(message: str, name: str) -> list[str]:
    """All values of a header (split at top-level commas for Via/Route/Record-Route/Path)."""
    want = name.lower()
    values = []
    for n, v in headers_of(message):
        n = COMPACT.get(n.lower(), n.lower())
        if n == want:
            if want in ("via", "route", "record-route", "path"):
                values.extend(_split_commas(v))
            else:
                values.append(v)
    return values


def _split_commas(value: str) -> list[str]:
    parts, depth, quote, cur = [], 0, False, []
    for ch in value:
        if ch == '"':
            quote = not quote
        elif not quote and ch == "<":
            depth += 1
        elif not quote and ch == ">":
            depth -= 1
        if ch == "," and not quote and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if "".join(cur).strip():
        parts.append("".join(cur).strip())
    return parts


def start_line(message: str) -> str:
    return message.lstrip("\r\n").split("\n", 1)[0].rstrip("\r")


def find_message(messages: list[str], first_line_regex: str) -> str | None:
    for msg in messages:
        if re.search(first_line_regex, start_line(msg)):
            return msg
    return None


def via_param(via: str, param: str) -> str | None:
    """Value of a Via parameter ('' for a flag parameter, None when absent)."""
    for part in via.split(";")[1:]:
        k, sep, v = part.partition("=")
        if k.strip().lower() == param.lower():
            return v.strip() if sep else ""
    return None


def stop_process_group(proc: subprocess.Popen, steps=((signal.SIGTERM, 1.5), (signal.SIGTERM, 2.0),
                                                     (signal.SIGKILL, 5.0))) -> None:
    """Signals a process started with start_new_session=True, step by step,
    until it is gone (baresip: the first SIGTERM unregisters and quits, the
    second quits at once)."""
    for sig, wait in steps:
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            pass


# --------------------------------------------------------------------------
# unittest base


class E2ETestCase(unittest.TestCase):
    """Base class: self.tmp is a per-test directory; processes started through
    self.sipwitness()/self.sipp() are cleaned up even when the test fails."""

    maxDiff = None

    def setUp(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix=f"e2e-{self._testMethodName}-"))
        self._sipps: list[Sipp] = []
        self.addCleanup(self._cleanup)

    def _cleanup(self) -> None:
        for sipp in self._sipps:
            try:
                sipp.stop()
            except Exception as e:  # pragma: no cover - cleanup must not mask failures
                sys.stderr.write(f"cleanup: {e}\n")
        if os.environ.get("E2E_KEEP") is None:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            sys.stderr.write(f"\n(kept {self.tmp})\n")

    def sipwitness(self, **kw) -> Sipwitness:
        kw.setdefault("workdir", str(self.tmp / "sipwitness"))
        Path(kw["workdir"]).mkdir(parents=True, exist_ok=True)
        return Sipwitness(**kw)

    def assert_start_fails(self, config_text: str, reason: str) -> subprocess.CompletedProcess:
        """`sipwitness run` on config_text must stop before it is ready: exit 1
        (a runtime failure, not a config error), with reason on stderr."""
        config = self.tmp / "failing-start.yaml"
        config.write_text(config_text)
        run = subprocess.run([sipwitness_binary(), "run", "--config", str(config)], cwd=self.tmp,
                             stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
        self.assertEqual(run.returncode, 1, run.stderr)
        self.assertIn(reason, run.stderr)
        self.assertNotRegex(run.stderr, r"\bready:")
        for marker in SANITIZER_MARKERS:
            self.assertNotIn(marker, run.stderr)
        return run

    def start_sipp(self, scenario: str, remote=None, **kw) -> Sipp:
        kw.setdefault("workdir", self.tmp)
        sipp = Sipp(scenario, remote, **kw)
        self._sipps.append(sipp)
        sipp.start()
        if remote is None:
            sipp.wait_listening()
        return sipp

    def run_sipp(self, scenario: str, remote=None, **kw) -> SippResult:
        return self.start_sipp(scenario, remote, **kw).wait()

    def assertAnsweredWithin(self, phone: "UdpClient", to: tuple[str, int], method: str, branch: str,
                             status: int, within: float) -> tuple[str, float]:
        """Sends a request from phone; its final answer must be `status` within
        `within` seconds. Returns the answer and how long it took."""
        phone.send(make_request(method, via=phone.via(branch)), to)
        started = time.monotonic()
        final, _ = phone.recv_final(timeout=within + 2, branch=branch)
        waited = time.monotonic() - started
        self.assertIsNotNone(final, f"no answer to {method} {branch}")
        self.assertEqual(status_code(final), status, final)
        self.assertLess(waited, within, f"{status} must come within {within}s, not after the phone's own timers")
        return final, waited

    def assertSippOk(self, result: SippResult, calls: int, sw: Sipwitness | None = None) -> None:
        # (the sipwitness log is dumped by Sipwitness.__exit__ when the test fails)
        if not result.ok(calls):
            msg = result.describe()
            self.fail(f"SIPp {result.name}: expected {calls} successful calls and 0 failed\n{msg}")


# --------------------------------------------------------------------------
# raw sockets for hand-made (and malformed) messages


class AlgRelay:
    """A UDP relay standing for a router with a broken SIP ALG, on loopback:
    what its client sends to `port` goes to server through `there`, what
    comes back through `back` (each bytes -> bytes; None passes unchanged).
    The server sees the client as `address`; `rewrites` counts the messages
    `there` changed."""

    def __init__(self, server: tuple[str, int], there=None, back=None):
        self.server, self.there, self.back = server, there, back
        self.inside = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.inside.bind((HOST, free_port("udp")))
        self.outside = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.outside.bind((HOST, 0))
        self.port = self.inside.getsockname()[1]
        self.address = self.outside.getsockname()
        self.client: tuple[str, int] | None = None
        self.seen_there: list[bytes] = []
        self.rewrites = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._relay, daemon=True)
        self._thread.start()

    def _relay(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.inside, self.outside], [], [], 0.1)
            for sock in ready:
                data, source = sock.recvfrom(65535)
                if sock is self.inside:
                    self.client = source
                    self.seen_there.append(data)
                    out = self.there(data) if self.there else data
                    self.rewrites += out != data
                    self.outside.sendto(out, self.server)
                elif self.client:
                    self.inside.sendto(self.back(data) if self.back else data, self.client)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.inside.close()
        self.outside.close()




def make_request(
    method: str = "OPTIONS",
    ruri: str = "sip:2000@example.test",
    *,
    via: str | None = None,
    call_id: str | None = None,
    max_forwards: int | None = 70,
    extra_headers: list[str] | tuple[str, ...] = (),
    body: bytes = b"",
    content_length: str | None = None,
    from_tag: str | None = None,
    to: str = "<sip:2000@example.test>",
    cseq: int = 1,
) -> bytes:
    """A SIP request as bytes. via: the whole Via value (None: no Via header);
    to: the To header value (add ;tag= for in-dialog requests and ACKs)."""
    call_id = call_id or os.urandom(8).hex() + "@e2e"
    from_tag = from_tag or os.urandom(4).hex()
    lines = [f"{method} {ruri} SIP/2.0"]
    if via is not None:
        lines.append(f"Via: {via}")
    lines += [
        f"From: <sip:1001@example.test>;tag={from_tag}",
        f"To: {to}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
    ]
    if max_forwards is not None:
        lines.append(f"Max-Forwards: {max_forwards}")
    lines += list(extra_headers)
    lines.append(f"Content-Length: {len(body) if content_length is None else content_length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def status_code(message: str) -> int | None:
    m = re.match(r"SIP/2\.0 (\d{3})", message.lstrip())
    return int(m.group(1)) if m else None


class UdpClient:
    """A UDP socket on loopback for sending hand-made datagrams."""

    def __init__(self, host: str = HOST):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.host, self.port = self.sock.getsockname()[:2]

    def via(self, branch: str, extra: str = "") -> str:
        return f"SIP/2.0/UDP {self.host}:{self.port};branch={branch}{extra}"

    def send(self, data: bytes, addr: tuple[str, int]) -> None:
        self.sock.sendto(data, addr)

    def recv(self, timeout: float = 2.0) -> str | None:
        self.sock.settimeout(timeout)
        try:
            data, _ = self.sock.recvfrom(70_000)
        except (socket.timeout, ConnectionRefusedError):
            return None
        return data.decode("utf-8", "replace")

    def recv_final(self, timeout: float = 3.0, branch: str | None = None) -> tuple[str | None, list[str]]:
        """Wait for a final (>= 200) response (matching branch if given).
        Returns (final or None, every message received meanwhile)."""
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None, seen
            msg = self.recv(left)
            if msg is None:
                return None, seen
            seen.append(msg)
            code = status_code(msg)
            if code is None or code < 200:
                continue
            if branch and branch not in msg:
                continue
            return msg, seen

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "UdpClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class TcpClient:
    """A TCP connection with SIP framing (Content-Length) on the receive side."""

    def __init__(self, addr: tuple[str, int], timeout: float = 5.0):
        self.sock = socket.create_connection(addr, timeout=timeout)
        self.host, self.port = self.sock.getsockname()[:2]
        self.buf = b""
        self.closed = False  # the peer closed (or reset) the connection

    def via(self, branch: str, extra: str = "") -> str:
        return f"SIP/2.0/TCP {self.host}:{self.port};branch={branch}{extra}"

    def send(self, data: bytes) -> bool:
        """Send all bytes; False when the peer has closed/reset the connection."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            self.closed = True
            return False

    def _frame(self) -> str | None:
        while self.buf.startswith(b"\r\n"):  # keep-alives
            self.buf = self.buf[2:]
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = self.buf[:end].decode("utf-8", "replace")
        m = re.search(r"^(?:Content-Length|l)\s*:\s*(\d+)", head, re.I | re.M)
        length = int(m.group(1)) if m else 0
        total = end + 4 + length
        if len(self.buf) < total:
            return None
        msg = self.buf[:total].decode("utf-8", "replace")
        self.buf = self.buf[total:]
        return msg

    def recv(self, timeout: float = 2.0) -> str | None:
        """Next framed message, or None on timeout / close (see .closed)."""
        deadline = time.monotonic() + timeout
        while True:
            msg = self._frame()
            if msg is not None:
                return msg
            if self.closed:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return None
            except (ConnectionResetError, BrokenPipeError):
                self.closed = True
                return None
            if not chunk:
                self.closed = True
                return None
            self.buf += chunk

    def recv_final(self, timeout: float = 3.0) -> tuple[str | None, list[str]]:
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None, seen
            msg = self.recv(left)
            if msg is None:
                return None, seen
            seen.append(msg)
            code = status_code(msg)
            if code is not None and code >= 200:
                return msg, seen

    def wait_closed(self, timeout: float = 2.0) -> bool:
        """True when the peer closes the connection within timeout (data is kept)."""
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                break
            except (ConnectionResetError, BrokenPipeError):
                self.closed = True
                break
            if not chunk:
                self.closed = True
            else:
                self.buf += chunk
        return self.closed

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> "TcpClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
