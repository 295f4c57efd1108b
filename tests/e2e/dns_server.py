"""A fake DNS zone for end-to-end tests: Debian's dnsmasq on 127.0.0.1 (stdlib only).

    records = {
        # (name, order, preference, flags, service, replacement)
        "naptr": [("provider.test", 10, 50, "s", "SIP+D2U", "_sip._udp.provider.test")],
        # (name, target, port, priority, weight)
        "srv": [("_sip._udp.provider.test", "a.provider.test", 5060, 10, 60),
                ("_sip._udp.provider.test", "b.provider.test", 5062, 20, 0)],
        # name -> address or list of addresses (IPv4 and IPv6)
        "host": {"a.provider.test": "127.0.0.2", "b.provider.test": ["127.0.0.3", "::1"]},
    }
    with DnsServer(records) as dns:
        dns.address        # "127.0.0.1:PORT", for dns.servers in the config
        dns.restart(other) # same port, new records

Names under the served domains that have no record get NXDOMAIN (not a
forwarded query: there is no upstream), so a lookup fails fast. The domains
are the last two labels of every name given, unless `domains` says otherwise.
Every record is served with `ttl` seconds, short so tests can watch expiry.
"""

from __future__ import annotations

import os
import pwd
import grp
import shutil
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

import harness

DNSMASQ = "/usr/sbin/dnsmasq"
READY_TIMEOUT = 5.0
STOP_TIMEOUT = 5.0


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def record_args(records: dict) -> list[str]:
    """dnsmasq options serving `records` (see the module docstring)."""
    unknown = set(records) - {"naptr", "srv", "host"}
    if unknown:
        raise ValueError(f"unknown record kinds: {sorted(unknown)}")
    args = []
    for name, order, preference, flags, service, replacement in records.get("naptr", []):
        # The regexp field stays empty: RFC 3263 uses replacements only.
        args.append(f"--naptr-record={name},{order},{preference},{flags},{service},,{replacement}")
    for name, target, port, priority, weight in records.get("srv", []):
        args.append(f"--srv-host={name},{target},{port},{priority},{weight}")
    for name, addresses in records.get("host", {}).items():
        # One option per address: dnsmasq answers with all of them.
        args.extend(f"--host-record={name},{address}" for address in _as_list(addresses))
    return args


def record_domains(records: dict) -> list[str]:
    names = [r[0] for r in records.get("naptr", [])] + [r[0] for r in records.get("srv", [])]
    names += list(records.get("host", {}))
    return sorted({".".join(n.rstrip(".").split(".")[-2:]) for n in names})


class DnsServer:
    def __init__(self, records: dict, *, domains: list[str] | None = None, ttl: int = 5):
        if not os.access(DNSMASQ, os.X_OK):
            raise unittest.SkipTest(f"{DNSMASQ} not found (Debian package dnsmasq-base)")
        self.records = records
        self.domains = domains
        self.ttl = ttl
        self.port = harness.free_port("both")  # dnsmasq answers on UDP and TCP
        self.address = f"{harness.HOST}:{self.port}"
        self.workdir = Path(tempfile.mkdtemp(prefix="sipwitness-dns-"))
        self.log_path = self.workdir / "dnsmasq.log"
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        cmd = [
            DNSMASQ, "--keep-in-foreground", "--conf-file=/dev/null", "--pid-file=",
            "--no-resolv", "--no-hosts", "--no-poll",
            f"--port={self.port}", f"--listen-address={harness.HOST}", "--bind-interfaces",
            "--log-facility=-", "--log-queries",
            f"--local-ttl={self.ttl}", f"--auth-ttl={self.ttl}",
            # Run as whoever we are: as root, dnsmasq would otherwise switch to
            # a user that may not exist in a container.
            f"--user={pwd.getpwuid(os.getuid()).pw_name}", f"--group={grp.getgrgid(os.getgid()).gr_name}",
        ]
        cmd += [f"--local=/{d}/" for d in (self.domains or record_domains(self.records))]
        return cmd + record_args(self.records)

    def log(self) -> str:
        try:
            return self.log_path.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def start(self) -> "DnsServer":
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + READY_TIMEOUT
        # dnsmasq logs "started" after its sockets are bound; a bind or option
        # error makes it exit first.
        while "started, version" not in self.log():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"dnsmasq did not start:\n{self.log()}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self, records: dict | None = None) -> "DnsServer":
        """Serve new records on the same port (command-line records need a new process)."""
        self.stop()
        if records is not None:
            self.records = records
        return self.start()

    def __enter__(self) -> "DnsServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
