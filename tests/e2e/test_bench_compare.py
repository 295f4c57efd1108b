#!/usr/bin/env python3
"""bench/compare end to end at smoke-test sizes (--quick, about 40 s).

The load comparison is not a test of speed (CI machines are shared and noisy):
this checks that the tool itself works, so a result in bench/RESULTS.md can
always be reproduced. Both proxies go through every scenario, the report has
each of its tables with a row per scenario and proxy, every fixed-rate run
completed all its calls, each CPU row has its rounds (median, min–max, each
round's value) and each ratio row its paired-rounds ratio, each proxy's
response-time row (and, with two CPUs, its pinned row) is followed by the
generator alone and by the floor relay at the same rate and count, and
--results appends the report to the file.

A second test feeds the report three made-up rounds per proxy (no processes):
the median, the range, the median round's user/sys split and memory, and the
median of the paired ratios must be the ones worked out by hand.

--sipwitness-workers 2 (sipwitness only, OPTIONS, --quick, about 15 s): the
report names the 2 workers, the 16 sockets of every sip_load UAC and SIPp's one
socket; every sipwitness instance (kept with --keep) ran with `workers: 2`,
which compare checks by its threads before any load.

The OPTIONS CPU rounds also run through `sip_load relay`, the floor: its row
has every call completed, and the line under the ratios sets it against
Kamailio's median. `sip_load relay` alone, between sip_load's UAC and a Python
UAS: 2000 OPTIONS at 2000/s all answered, each reaching the UAS from the
relay's port with the UAC's Via untouched, and its usage errors.

sip_load uac --sockets 4 against a Python UAS that answers every OPTIONS with a
200 and notes where it came from: 2000 at 2000/s all answered, from 4 source
ports, request n from the port of socket n % 4 (socket 0 on --bind's port), each
naming its own port in Via.

Needs bench/sip_load next to the sipwitness binary (the release build; the
sanitizer build has no benchmarks, so the end-to-end test is skipped there),
Kamailio and SIPp.
"""

from __future__ import annotations

import datetime
import importlib.machinery
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import unittest
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "kamailio"))

import harness  # noqa: E402
import kam  # noqa: E402

COMPARE = harness.REPO_ROOT / "bench" / "compare"
SCENARIOS = ("options", "call", "register401", "register407")
NUM = r"[\d.,]+"


def sip_load_binary(case: unittest.TestCase) -> Path:
    """bench/sip_load beside the sipwitness under test (skips without it)."""
    path = Path(harness.sipwitness_binary()).parent / "sip_load"
    if not path.exists():
        case.skipTest(f"no sip_load at {path} (a build without benchmarks)")
    return path


def run_uac(sip_load: Path, port: int, count: int, *extra: str) -> subprocess.CompletedProcess:
    """sip_load uac: count OPTIONS at 2000/s to the loopback port, --json output."""
    return subprocess.run([str(sip_load), "uac", "--target", f"{harness.HOST}:{port}", "--rate", "2000",
                           "--count", str(count), "--json", *extra],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)


class OptionsUas(threading.Thread):
    """A UDP UAS in Python: answers each OPTIONS with a 200 (Via, From, To with a
    tag, Call-ID, CSeq copied) and records (source port, n of the branch
    z9hG4bK-sl-n, Via sent-by port) per request."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self.sock.bind((harness.HOST, 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.seen: list[tuple[int, int, int]] = []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                data, peer = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            msg = data.decode("utf-8", "replace")
            if not msg.startswith("OPTIONS "):
                continue
            head = msg.split("\r\n\r\n", 1)[0].split("\r\n")
            keep = [h for h in head[1:] if h.split(":", 1)[0].strip().lower()
                    in ("via", "from", "to", "call-id", "cseq")]
            via = next(h for h in keep if h.lower().startswith("via:"))
            m = re.search(r"SIP/2\.0/UDP [^:;]+:(\d+);branch=z9hG4bK-sl-(\d+)", via)
            self.seen.append((peer[1], int(m.group(2)), int(m.group(1))))
            out = ["SIP/2.0 200 OK"] + [h + ";tag=py" if h.lower().startswith("to:") else h
                                        for h in keep] + ["Content-Length: 0", "", ""]
            self.sock.sendto("\r\n".join(out).encode(), peer)

    def close(self):
        self.stop.set()
        self.join(timeout=5)
        self.sock.close()


def load_compare():
    """bench/compare has no .py suffix: load it by path."""
    loader = importlib.machinery.SourceFileLoader("bench_compare", str(COMPARE))
    spec = importlib.util.spec_from_loader("bench_compare", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


class BenchCompare(unittest.TestCase):
    def test_quick_run_reports_every_measure(self):
        sipwitness = Path(harness.sipwitness_binary())
        sip_load = sipwitness.parent / "sip_load"
        if not sip_load.exists():
            self.skipTest(f"no sip_load beside {sipwitness} (a build without benchmarks)")
        missing = kam.missing_prerequisites()
        if missing:
            self.skipTest("; ".join(missing))
        with tempfile.TemporaryDirectory(prefix="sipwitness-compare-test-") as tmp:
            results = Path(tmp) / "RESULTS.md"
            results.write_text("# Benchmark results\n")
            proc = subprocess.run(
                [sys.executable, str(COMPARE), "--quick", "--sipwitness", str(sipwitness),
                 "--sip-load", str(sip_load), "--results", str(results)],
                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
            self.assertEqual(proc.returncode, 0, proc.stderr[-4000:])
            report = proc.stdout
            appended = results.read_text()

        self.assertTrue(appended.startswith("# Benchmark results\n"))
        self.assertIn(report.strip(), appended)
        for heading in ("### Proxy CPU per call at a fixed rate (0.5 s, 1 round)",
                        "### Memory after the fixed-rate run (the median CPU round)",
                        "### Maximum sustained rate", "### Response time",
                        "### Memory per live flow (sipwitness)", "### sipwitness / Kamailio"):
            self.assertIn(heading, report)
        for scenario in SCENARIOS:
            for proxy in ("sipwitness", "Kamailio"):
                # the CPU row: every call of every round completed; median, min–max
                # and one value per round (--quick: one round), then user, sys and sleeps
                row = re.search(rf"^\| {scenario} \| [^|]+ \| {proxy} \| {NUM} \| ({NUM})/({NUM}) \| "
                                rf"\*\*({NUM})\*\* \| ({NUM})–({NUM}) \| ([^|]+) \| {NUM} \| {NUM} \| ([\d.]+) \| ",
                                report, re.M)
                self.assertIsNotNone(row, f"no CPU row for {scenario} / {proxy}:\n{report}")
                self.assertEqual(row.group(1), row.group(2), row.group(0))
                median, low, high, each = row.group(3, 4, 5, 6)
                self.assertEqual(each.strip().split("; "), [median], row.group(0))
                self.assertEqual((low, high), (median, median), row.group(0))
                # a proxy at a fixed rate below its maximum waits for work now and then
                self.assertGreater(float(row.group(7)), 0, row.group(0))
            # the ratio row: ratio of the medians, then the paired rounds' median (min–max, rounds)
            self.assertRegex(report, rf"(?m)^\| {scenario} \| [\d.]+ \| [\d.]+ \([\d.]+–[\d.]+, 1 round\) \| ")
        # OPTIONS also through the floor relay, every call completed, and the floor
        # set against Kamailio's median under the ratios
        floor = re.search(rf"^\| options \| [^|]+ \| floor: sip_load relay \| {NUM} \| ({NUM})/({NUM}) \| "
                          rf"\*\*({NUM})\*\* \|", report, re.M)
        self.assertIsNotNone(floor, report)
        self.assertEqual(floor.group(1), floor.group(2), floor.group(0))
        self.assertRegex(report, rf"(?m)^OPTIONS floor \(`sip_load relay`, no SIP work, median\): "
                                 rf"{re.escape(floor.group(3))} µs per transaction, [\d.]+ of Kamailio's {NUM} µs; "
                                 rf"a third of Kamailio's is {NUM} µs\.$")
        # with two CPUs or more, each proxy's run again pinned apart from the generator
        variants = [("", "")] + ([(", pinned", "pinned, ")] if len(os.sched_getaffinity(0)) >= 2 else [])
        for proxy in ("sipwitness", "Kamailio"):
            for row_suffix, base_words in variants:
                # each proxy's sip_load row, then the generator alone at the same rate and count
                rows = re.search(rf"^\| {proxy}{row_suffix} \| ({NUM}) \| {NUM}/({NUM}) \| "
                                 rf"\*\*{NUM}\*\* \| {NUM} \| \*\*({NUM})\*\* \| ({NUM}) \| .*\n"
                                 rf"\| none \(generator alone, {base_words}same rate as {proxy}\) \| "
                                 rf"({NUM}) \| ({NUM})/({NUM}) \| \*\*{NUM}\*\* \| {NUM} \| "
                                 rf"\*\*({NUM})\*\* \| ({NUM}) \|", report, re.M)
                self.assertIsNotNone(rows, f"no same-rate generator row after {proxy}{row_suffix}:\n{report}")
                self.assertEqual(rows.group(1, 2), rows.group(5, 7), rows.group(0))
                self.assertEqual(rows.group(6), rows.group(7), rows.group(0))  # all answered
                # --quick: one run per row, so the p99 shown is that run's
                self.assertEqual(rows.group(3), rows.group(4), rows.group(0))
                self.assertEqual(rows.group(8), rows.group(9), rows.group(0))
                # the floor relay in the proxy's place: same rate and count, all answered, its CPU
                floor = re.search(rf"^\| floor: sip_load relay \({base_words}same rate as {proxy}\) \| "
                                  rf"({NUM}) \| ({NUM})/({NUM}) \| \*\*{NUM}\*\* \| {NUM} \| "
                                  rf"\*\*{NUM}\*\* \| {NUM} \| {NUM} \| {NUM} \| ({NUM}) \|", report, re.M)
                self.assertIsNotNone(floor, f"no floor row for {proxy}{row_suffix}:\n{report}")
                self.assertEqual(floor.group(1, 2, 3), rows.group(1, 2, 2), floor.group(0))
        self.assertRegex(report, rf"(?m)^\| none \(generator alone, half its own max\) \| {NUM} \| .* \| [\d.]+ \|$")
        flows = re.search(r"^\| [\d,]+ \| [\d,]+ \| [\d,]+ \| \*\*([\d,]+)\*\* \|$", report, re.M)
        self.assertIsNotNone(flows, report)

    def test_sipwitness_workers_run(self):
        sipwitness = Path(harness.sipwitness_binary())
        sip_load = sip_load_binary(self)
        if not shutil.which("sipp"):
            self.skipTest("sipp not found")
        kept = None
        try:
            proc = subprocess.run(
                [sys.executable, str(COMPARE), "--quick", "--sipwitness", str(sipwitness),
                 "--sip-load", str(sip_load), "--proxies", "sipwitness", "--scenarios", "options",
                 "--sipwitness-workers", "2", "--latency-runs", "2", "--keep"],
                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
            m = re.search(r"kept (\S+)", proc.stderr)
            kept = Path(m.group(1)) if m else None
            self.assertEqual(proc.returncode, 0, proc.stderr[-4000:])
            report = proc.stdout
            self.assertIn("## Load comparison: sipwitness (2 workers) vs Kamailio", report)
            self.assertIn("2 UDP children (`-A CHALLENGE` for register407). sipwitness: 2 workers "
                          "(`workers: 2`", report)
            self.assertIn("sends from 16 sockets (`sip_load uac --sockets 16`", report)
            self.assertIn("SIPp's load comes from one socket", report)
            # the runs themselves: every fixed-rate call, and a sip_load step that passed
            self.assertRegex(report, rf"(?m)^\| options \| [^|]+ \| sipwitness \| {NUM} \| "
                             rf"([\d,]+)/\1 \| \*\*{NUM}\*\* \|")
            self.assertRegex(report, r"(?m)^\| OPTIONS \(sip_load\) \| sipwitness \| sip_load \| "
                             r"(≥ )?\*?\*?[\d,]+")
            # two response-time runs: the row is the one with the lower p99 (the lower middle)
            row = re.search(rf"(?m)^\| sipwitness \| {NUM} \| {NUM}/{NUM} \| \*\*{NUM}\*\* \| {NUM} \| "
                            rf"\*\*({NUM})\*\* \| ({NUM}); ({NUM}) \|", report)
            self.assertIsNotNone(row, report)
            p99s = [float(v.replace(",", "")) for v in row.group(2, 3)]
            self.assertEqual(float(row.group(1).replace(",", "")), min(p99s), row.group(0))
            self.assertIsNotNone(kept, proc.stderr[-2000:])
            logs = sorted(kept.glob("*/sipwitness.log"))
            # the CPU round, the two searches, the response-time runs and the flows
            self.assertEqual([p.parent.name for p in logs],
                             ["flows", "options-sipwitness-latency", "options-sipwitness-round1",
                              "options-sipwitness-search", "options-sipwitness-search-sip_load"])
            for path in logs:
                self.assertNotIn("error", path.read_text(errors="replace"), path)
                self.assertIn("workers: 2\n", (path.parent / "sipwitness.yaml").read_text())
        finally:
            if kept is not None and kept.name.startswith("sipwitness-compare-"):
                shutil.rmtree(kept, ignore_errors=True)

    def test_sip_load_sockets_spread_source_ports(self):
        sip_load = sip_load_binary(self)
        uas = OptionsUas()
        uas.start()
        bind_port = harness.free_port("udp")
        try:
            proc = run_uac(sip_load, uas.port, 2000, "--sockets", "4", "--bind", f"{harness.HOST}:{bind_port}")
        finally:
            uas.close()
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        result = json.loads(proc.stdout)
        self.assertEqual((result["sent"], result["answered"], result["failed"],
                          result["duplicates"]), (2000, 2000, 0, 0), result)
        self.assertEqual(sorted(n for _, n, _ in uas.seen), list(range(2000)))
        self.assertEqual(len({src for src, _, _ in uas.seen}), 4, uas.seen[:8])
        by_socket = {}
        for src, n, via_port in uas.seen:
            self.assertEqual(via_port, src, f"request {n}: Via names {via_port}, sent from {src}")
            by_socket.setdefault(n % 4, set()).add(src)
        self.assertTrue(all(len(ports) == 1 for ports in by_socket.values()), by_socket)
        self.assertEqual(by_socket[0], {bind_port})  # only socket 0 takes --bind's port

        # the default stays one socket; --sockets outside 1..256 is a usage error
        uas = OptionsUas()
        uas.start()
        try:
            proc = run_uac(sip_load, uas.port, 200)
        finally:
            uas.close()
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertEqual(len({src for src, _, _ in uas.seen}), 1)
        for bad in ("0", "257", "x"):
            proc = subprocess.run([str(sip_load), "uac", "--target", f"{harness.HOST}:{uas.port}",
                                   "--rate", "10", "--count", "1", "--sockets", bad],
                                  capture_output=True, text=True, timeout=10)
            self.assertEqual(proc.returncode, 2, bad)
            self.assertIn("--sockets wants 1..256", proc.stderr)

    def test_sip_load_relay_forwards_both_ways(self):
        sip_load = sip_load_binary(self)
        uas = OptionsUas()
        uas.start()
        port = harness.free_port("udp")
        relay = subprocess.Popen([str(sip_load), "relay", "--bind", f"{harness.HOST}:{port}",
                                  "--upstream", f"{harness.HOST}:{uas.port}", "--duration", "60"],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)
        try:
            self.assertTrue(kam.wait_udp_bound(port, 10, relay), "sip_load relay did not bind")
            proc = run_uac(sip_load, port, 2000)
        finally:
            relay.terminate()
            out, err = relay.communicate(timeout=10)
            uas.close()
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        result = json.loads(proc.stdout)
        self.assertEqual((result["sent"], result["answered"], result["failed"]), (2000, 2000, 0), result)
        # every request reached the UAS from the relay's own port, unchanged (the Via is the UAC's)
        self.assertEqual({src for src, _, _ in uas.seen}, {port})
        self.assertEqual(sorted(n for _, n, _ in uas.seen), list(range(2000)))
        self.assertNotIn(port, {via for _, _, via in uas.seen})
        self.assertEqual(relay.returncode, 0, err)
        self.assertEqual(out.strip(), "relay relayed=4000 dropped=0")
        # usage errors: no upstream; an address off loopback
        for bad, why in ((["--bind", f"{harness.HOST}:{port}"], "relay needs --upstream"),
                         (["--bind", "10.0.0.1:5060", "--upstream", f"{harness.HOST}:1"],
                          "--bind wants a loopback")):
            proc = subprocess.run([str(sip_load), "relay", *bad], capture_output=True, text=True, timeout=10)
            self.assertEqual(proc.returncode, 2, bad)
            self.assertIn(why, proc.stderr)

    def test_rounds_median_range_and_paired_ratios(self):
        compare = load_compare()
        args = compare.parse_args(["--scenarios", "options", "--cpu-rounds", "3"])
        args.sip_load_ok = False
        tick = 1e6 / compare.CLK_TCK  # µs

        def run(rnd, user, system, rss, pss, calls=100):
            """A fixed-rate run of `calls` calls using user+system ticks."""
            r = compare.StepResult(args.options_rate, calls)
            r.round, r.cpu, r.ok_calls, r.wall, r.passed = rnd, (user, system), calls, 1.0, True
            r.mem_kb, r.rtt = (rss, pss), [0, 1]
            return r
        # sipwitness per round (ticks): 4, 2, 6; Kamailio: 10, 10, 8.
        # Medians 4 (round 1) and 10 (round 1 or 2: the first); paired ratios 0.4, 0.2, 0.75.
        out = {("options", "sipwitness"): {"rounds": [run(1, 3, 1, 2000, 1000),
                                                      run(2, 1, 1, 3000, 3000),
                                                      run(3, 2, 4, 4000, 4000)], "processes": 1},
               ("options", "kamailio"): {"rounds": [run(1, 6, 4, 5000, 2000),
                                                    run(2, 5, 5, 6000, 6000),
                                                    run(3, 4, 4, 7000, 7000)], "processes": 6}}
        report = compare.render(args, out, {"nproc": 2, "model": "?", "mem": "?"},
                                {"sipwitness": "?", "kamailio": "?", "sipp": "?", "kernel": "?"},
                                "?", "?", datetime.datetime.now(datetime.timezone.utc), 1.0)

        def f(ticks):
            return format(ticks * tick / 100, ",.1f")
        self.assertIn("### Proxy CPU per call at a fixed rate (5 s, 3 rounds)", report)
        self.assertIn(f"| options | OPTIONS transaction | sipwitness | 4,000 | 300/300 | **{f(4)}** | "
                      f"{f(2)}–{f(6)} | {f(4)}; {f(2)}; {f(6)} | {f(3)} | {f(1)} |", report)
        self.assertIn(f"| options | OPTIONS transaction | Kamailio | 4,000 | 300/300 | **{f(10)}** | "
                      f"{f(8)}–{f(10)} | {f(10)}; {f(10)}; {f(8)} | {f(6)} | {f(4)} |", report)
        # memory of the median rounds (round 1 of each)
        self.assertIn("| options | sipwitness | 1 | 2.0 | **1.0** |", report)
        self.assertIn("| options | Kamailio | 6 | 5.1 | **2.0** |", report)
        # ratio of the medians 0.40; paired: median 0.40 of 0.2, 0.4, 0.75; PSS 1000/2000
        self.assertRegex(report, r"(?m)^\| options \| 0\.40 \| 0\.40 \(0\.20–0\.75, 3 rounds\) \| .* \| 0\.50 \|$")
        self.assertNotIn("floor", report)  # no floor runs, no floor row or sentence

        # the floor relay's rounds (ticks 3, 5, 3: median 3) get their row and are set
        # against Kamailio's median (10 ticks): 0.30 of it, a third being 10/3 ticks
        out[("options", "floor")] = {"rounds": [run(1, 1, 2, 100, 100), run(2, 0, 5, 100, 100),
                                                run(3, 0, 3, 100, 100)], "processes": 1}
        report = compare.render(args, out, {"nproc": 2, "model": "?", "mem": "?"},
                                {"sipwitness": "?", "kamailio": "?", "sipp": "?", "kernel": "?"},
                                "?", "?", datetime.datetime.now(datetime.timezone.utc), 1.0)
        self.assertIn(f"| options | OPTIONS transaction | floor: sip_load relay | 4,000 | 300/300 | **{f(3)}** | "
                      f"{f(3)}–{f(5)} | {f(3)}; {f(5)}; {f(3)} | {f(1)} | {f(2)} |", report)
        self.assertIn(f"OPTIONS floor (`sip_load relay`, no SIP work, median): {f(3)} µs per transaction, "
                      f"0.30 of Kamailio's {f(10)} µs; a third of Kamailio's is {format(10 * tick / 300, ',.1f')} µs.",
                      report)
        self.assertIn("(round 1: sipwitness then Kamailio, then for OPTIONS the floor, ", report)


if __name__ == "__main__":
    unittest.main()
