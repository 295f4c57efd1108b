"""A NAT lab in network namespaces, for SIP ALG tests (Python stdlib only).

    phone ns                 router ns                        provider ns
  ┌────────────┐      ┌──────────────────────────┐       ┌────────────────┐
  │ eth0       │ veth │ lan0              wan0   │ veth  │ eth0           │
  │ 10.77.1.2 ─┼──────┼─ 10.77.1.1  203.0.113.1 ─┼───────┼─ 203.0.113.2   │
  │ default    │      │ ip_forward=1             │       │ no route back  │
  │ via .1.1   │      │ nft: masquerade on wan0  │       │ to 10.77.1.0/24│
  └────────────┘      │ (+ kernel SIP helper,    │       └────────────────┘
                      │  set_sip_helper())       │
                      └──────────────────────────┘

The provider has no route to the private subnet: a reply only reaches the
phone because the router's NAT translates it back. The router's SIP helper
(nf_conntrack_sip / nf_nat_sip, the kernel's own SIP ALG) is off until
set_sip_helper(True) attaches it with an nftables `ct helper` rule: the kernel
no longer attaches helpers by port on its own, and no sysctl does it.

    with NetLab() as lab:
        lab.set_sip_helper(True)                     # udp 5060
        rx = lab.socket("provider", socket.SOCK_DGRAM); rx.bind((lab.provider_ip, 5060))
        tx = lab.socket("phone", socket.SOCK_DGRAM); tx.bind((lab.phone_ip, 5060))
        tx.sendto(b"...", (lab.provider_ip, 5060))
        lab.exec("router", ["conntrack", "-L"]).stdout
        proc = lab.popen("provider", ["sipp", ...])   # killed on exit
        dump = lab.capture("router", "wan0", pcap)   # tcpdump; lab.stop(dump, signal.SIGINT)

Namespace names carry this process's pid and a counter, so parallel test
processes never clash; the veths are created directly inside their
namespaces, so their fixed names (eth0, lan0, wan0) never meet either. Exit
(also after an exception, or a setup that failed half way) kills every process
started through the lab, closes its sockets and deletes its namespaces, which
takes their veths, routes, nft tables and conntrack entries with them. The
root namespace is never changed.

Needs root, ip (iproute2), nft (nftables) and conntrack (conntrack); without
them __enter__ raises unittest.SkipTest with the reason. E2E_KEEP=1 keeps
lab.workdir (captures).
"""

from __future__ import annotations

import ctypes
import itertools
import os
import shutil
import signal
import socket as socket_module
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import stop_process_group  # noqa: E402

ROLES = ("phone", "router", "provider")
ROLE_SUFFIX = {"phone": "p", "router": "r", "provider": "v"}  # v: voice provider
PHONE_IF = "eth0"        # in phone, peer of ROUTER_LAN_IF
ROUTER_LAN_IF = "lan0"   # in router, toward the phone
ROUTER_WAN_IF = "wan0"   # in router, toward the provider
PROVIDER_IF = "eth0"     # in provider, peer of ROUTER_WAN_IF

NAT_TABLE = "swlab"       # ip swlab: the masquerade
HELPER_TABLE = "swlab_sip"  # ip swlab_sip: the SIP helper, replaced as a whole on each change
COMMAND_TIMEOUT = 10.0
CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/run/netns")  # where `ip netns add` mounts the namespaces

_counter = itertools.count(1)
_counter_lock = threading.Lock()


class NetLab:
    """Context manager: the three namespaces above, ready on __enter__."""

    phone_ip = "10.77.1.2"
    router_inside_ip = "10.77.1.1"
    router_public_ip = "203.0.113.1"
    provider_ip = "203.0.113.2"
    private_prefix = 24
    public_prefix = 24

    def __init__(self, workdir: str | os.PathLike | None = None):
        self.netns: dict[str, str] = {}   # role -> namespace name (those created)
        self.workdir = Path(workdir) if workdir is not None else None
        self._own_workdir = workdir is None
        self._procs: list[subprocess.Popen] = []
        self._sockets: list[socket_module.socket] = []
        self.helper: tuple[tuple[int, ...], tuple[str, ...]] | None = None  # (ports, protocols) when on

    # -- context manager --------------------------------------------------
    def __enter__(self) -> "NetLab":
        try:
            self._setup()
        except BaseException:
            self._teardown()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._teardown()

    # -- setup ------------------------------------------------------------
    def _setup(self) -> None:
        if os.geteuid() != 0:
            raise unittest.SkipTest("network namespaces unavailable: needs root (ip netns add)")
        missing = [tool for tool in ("ip", "nft", "conntrack") if not shutil.which(tool)]
        if missing:
            raise unittest.SkipTest(f"not installed: {', '.join(missing)} "
                                    "(Debian: iproute2, nftables, conntrack)")
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="netlab-"))
        base = self._free_base()
        for role in ROLES:
            name = base + ROLE_SUFFIX[role]
            result = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True,
                                    timeout=COMMAND_TIMEOUT, stdin=subprocess.DEVNULL)
            if result.returncode != 0:
                reason = result.stderr.strip() or f"exit {result.returncode}"
                if any(s in reason for s in ("Permission denied", "Operation not permitted")):
                    raise unittest.SkipTest(f"network namespaces unavailable: {reason}")
                raise RuntimeError(f"ip netns add {name}: {reason}")
            self.netns[role] = name
            self._must("ip", "-n", name, "link", "set", "lo", "up")
            # No IPv6 autoconfiguration chatter in captures; absent IPv6 is fine.
            self.exec(role, ["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"])
            self.exec(role, ["sysctl", "-q", "-w", "net.ipv6.conf.default.disable_ipv6=1"])

        p, r, v = (self.netns[x] for x in ROLES)
        # Created inside their namespaces (never in the root one): fixed names cannot clash.
        self._must("ip", "link", "add", PHONE_IF, "netns", p, "type", "veth",
                   "peer", "name", ROUTER_LAN_IF, "netns", r)
        self._must("ip", "link", "add", ROUTER_WAN_IF, "netns", r, "type", "veth",
                   "peer", "name", PROVIDER_IF, "netns", v)
        for ns, ifname, addr in ((p, PHONE_IF, f"{self.phone_ip}/{self.private_prefix}"),
                                 (r, ROUTER_LAN_IF, f"{self.router_inside_ip}/{self.private_prefix}"),
                                 (r, ROUTER_WAN_IF, f"{self.router_public_ip}/{self.public_prefix}"),
                                 (v, PROVIDER_IF, f"{self.provider_ip}/{self.public_prefix}")):
            self._must("ip", "-n", ns, "addr", "add", addr, "dev", ifname)
            self._must("ip", "-n", ns, "link", "set", ifname, "up")
        self._must("ip", "-n", p, "route", "add", "default", "via", self.router_inside_ip)
        # The provider deliberately gets no route to the private subnet.
        self._must_in("router", "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        self._nft(f"""
table ip {NAT_TABLE} {{
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    oifname "{ROUTER_WAN_IF}" masquerade
  }}
}}
""")

    def _free_base(self) -> str:
        # pid: unique among live processes; counter: several labs in one process.
        # A name left by a dead process with our pid is skipped, not touched.
        for _ in range(100):
            with _counter_lock:
                n = next(_counter)
            base = f"swl{os.getpid()}n{n}"
            if not any((NETNS_DIR / (base + c)).exists() for c in ROLE_SUFFIX.values()):
                return base
        raise RuntimeError("no free network namespace name")

    # -- teardown ---------------------------------------------------------
    def _teardown(self) -> None:
        errors = []
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()
        for proc in reversed(self._procs):
            try:
                self.stop(proc)
            except Exception as e:  # cleanup must go on
                errors.append(f"stop pid {proc.pid}: {e}")
        self._procs.clear()
        for role in reversed(ROLES):
            name = self.netns.pop(role, None)
            if name is None:
                continue
            result = subprocess.run(["ip", "netns", "del", name], capture_output=True, text=True,
                                    timeout=COMMAND_TIMEOUT, stdin=subprocess.DEVNULL)
            if result.returncode != 0:
                errors.append(f"ip netns del {name}: {result.stderr.strip()}")
        if self.workdir is not None and self._own_workdir:
            if os.environ.get("E2E_KEEP") is None:
                shutil.rmtree(self.workdir, ignore_errors=True)
            else:
                sys.stderr.write(f"\n(kept {self.workdir})\n")
        for e in errors:
            sys.stderr.write(f"netlab cleanup: {e}\n")

    # -- commands ---------------------------------------------------------
    def name(self, ns: str) -> str:
        """The namespace's real name (ns: "phone", "router" or "provider")."""
        try:
            return self.netns[ns]
        except KeyError:
            raise ValueError(f"no namespace {ns!r} in this lab (have {list(self.netns)})") from None

    def argv(self, ns: str, argv: list[str]) -> list[str]:
        """argv run inside ns (ip netns exec execs it: same pid)."""
        return ["ip", "netns", "exec", self.name(ns), *argv]

    def exec(self, ns: str, argv: list[str], **kw) -> subprocess.CompletedProcess:
        """subprocess.run inside ns. Defaults: capture_output, text, timeout
        10 s, stdin from /dev/null (unless input= is given); check as given."""
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        kw.setdefault("timeout", COMMAND_TIMEOUT)
        if "input" not in kw:
            kw.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.run(self.argv(ns, argv), **kw)

    def popen(self, ns: str, argv: list[str], **kw) -> subprocess.Popen:
        """subprocess.Popen inside ns, in a session of its own; stopped on exit."""
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw["start_new_session"] = True  # stop() signals the whole group
        proc = subprocess.Popen(self.argv(ns, argv), **kw)
        self._procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 2.0) -> int:
        """Signal proc's process group with sig, SIGKILL after timeout; its exit code."""
        # Only a leader not yet reaped is signalled: its pid cannot be reused.
        stop_process_group(proc, ((sig, timeout), (signal.SIGKILL, 5.0)))
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        return proc.returncode

    def capture(self, ns: str, iface_or_any: str, pcap_path: str | os.PathLike,
                timeout: float = 10.0) -> subprocess.Popen:
        """tcpdump -i IFACE (or "any") -w pcap_path inside ns, once it is
        listening. Stop it with lab.stop(proc, signal.SIGINT) to get every
        packet written; its stderr goes to pcap_path + ".log"."""
        if not shutil.which("tcpdump"):
            raise unittest.SkipTest("not installed: tcpdump")
        pcap = Path(pcap_path)
        log = Path(f"{pcap}.log")
        with open(log, "wb") as err:
            # -Z root: tcpdump would otherwise drop to a user that cannot write pcap.
            proc = self.popen(ns, ["tcpdump", "-i", iface_or_any, "-w", str(pcap), "-U", "-n", "-s", "0",
                                   "--immediate-mode", "-Z", "root"],
                              stdout=err, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while "listening on" not in log.read_text(errors="replace"):
            if proc.poll() is not None:
                raise AssertionError(f"tcpdump exited with {proc.returncode}: {log.read_text(errors='replace')}")
            if time.monotonic() > deadline:
                raise AssertionError(f"tcpdump not listening within {timeout}s: {log.read_text(errors='replace')}")
            time.sleep(0.02)
        return proc

    def socket(self, ns: str, type: int = socket_module.SOCK_DGRAM,
               family: int = socket_module.AF_INET, proto: int = 0) -> socket_module.socket:
        """A socket created inside ns, usable from this process (a socket stays
        in the namespace it was made in); closed on exit."""
        path = NETNS_DIR / self.name(ns)
        out: dict = {}

        def make() -> None:  # setns() moves only this short-lived thread
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                fd = os.open(path, os.O_RDONLY)
                try:
                    if libc.setns(fd, CLONE_NEWNET) != 0:
                        err = ctypes.get_errno()
                        raise OSError(err, f"setns {path}: {os.strerror(err)}")
                finally:
                    os.close(fd)
                out["sock"] = socket_module.socket(family, type, proto)
            except BaseException as e:
                out["error"] = e

        thread = threading.Thread(target=make, name=f"netlab-socket-{ns}")
        thread.start()
        thread.join(COMMAND_TIMEOUT)
        if "error" in out:
            raise out["error"]
        if "sock" not in out:
            raise RuntimeError(f"no socket in {ns} within {COMMAND_TIMEOUT}s")
        self._sockets.append(out["sock"])
        return out["sock"]

    # -- the router -------------------------------------------------------
    def set_sip_helper(self, on: bool, ports=(5060,), protocols=("udp",), flush: bool = True) -> None:
        """Attach (on) or detach the kernel SIP helper in the router, for
        traffic toward the given destination ports over the given protocols
        ("udp", "tcp"). The helper binds to a connection when conntrack first
        sees it, so flush (default) empties the router's conntrack table:
        otherwise existing flows keep their old behaviour. Raises
        unittest.SkipTest with nft's message if the kernel has no SIP helper."""
        ports = tuple(int(p) for p in ports)
        protocols = tuple(protocols)
        bad = [p for p in protocols if p not in ("udp", "tcp")]
        if bad or not protocols or not ports:
            raise ValueError(f"need ports and protocols among udp, tcp (got {ports}, {protocols})")
        # Declaring then deleting the table makes the change atomic and idempotent.
        script = f"table ip {HELPER_TABLE} {{}}\ndelete table ip {HELPER_TABLE}\n"
        if on:
            objects, rules = [], []
            for proto in protocols:
                for port in ports:
                    name = f"sip-{proto}-{port}"
                    objects.append(f'  ct helper {name} {{ type "sip" protocol {proto}; l3proto ip; }}')
                    rules.append(f'    {proto} dport {port} ct helper set "{name}"')
            script += (f"table ip {HELPER_TABLE} {{\n" + "\n".join(objects) + "\n"
                       "  chain prerouting {\n"
                       "    type filter hook prerouting priority filter; policy accept;\n"
                       + "\n".join(rules) + "\n  }\n}\n")
        result = self.exec("router", ["nft", "-f", "-"], input=script)
        if result.returncode != 0:
            if on:
                raise unittest.SkipTest(f"kernel SIP helper unavailable: nft: {result.stderr.strip()}")
            raise RuntimeError(f"nft (removing the SIP helper): {result.stderr.strip()}")
        self.helper = (ports, protocols) if on else None
        if flush:
            self.flush_conntrack()

    def flush_conntrack(self) -> None:
        """conntrack -F in the router: every flow starts again as new."""
        self._must_in("router", "conntrack", "-F")

    def conntrack(self) -> str:
        """conntrack -L in the router (one flow per line; helper=sip when attached)."""
        result = self._must_in("router", "conntrack", "-L")
        return result.stdout

    def ruleset(self) -> str:
        """nft list ruleset in the router."""
        return self._must_in("router", "nft", "list", "ruleset").stdout

    # -- internals --------------------------------------------------------
    def _must(self, *argv: str) -> subprocess.CompletedProcess:
        result = subprocess.run(list(argv), capture_output=True, text=True, timeout=COMMAND_TIMEOUT,
                                stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)}: exit {result.returncode}: {result.stderr.strip()}")
        return result

    def _must_in(self, ns: str, *argv: str) -> subprocess.CompletedProcess:
        return self._must(*self.argv(ns, list(argv)))

    def _nft(self, script: str) -> None:
        result = self.exec("router", ["nft", "-f", "-"], input=script)
        if result.returncode != 0:
            raise RuntimeError(f"nft in router: {result.stderr.strip()}\n{script}")
