#!/usr/bin/env python3
"""bench/compare end to end at smoke-test sizes (--quick, about 40 s).

The load comparison is not a test of speed (CI machines are shared and noisy):
this checks that the tool itself works, so a result in bench/RESULTS.md can
always be reproduced. Both proxies go through every scenario, the report has
each of its tables with a row per scenario and proxy, every fixed-rate run
completed all its calls, each CPU row has its rounds (median, min–max, each
round's value) and each ratio row its paired-rounds ratio, each proxy's
response-time row is followed by the generator alone at the same rate and
count, and --results appends the report to the file.

A second test feeds the report three made-up rounds per proxy (no processes):
the median, the range, the median round's user/sys split and memory, and the
median of the paired ratios must be the ones worked out by hand.

Needs bench/sip_load next to the sipwitness binary (the release build; the
sanitizer build has no benchmarks, so the end-to-end test is skipped there),
Kamailio and SIPp.
"""

from __future__ import annotations

import datetime
import importlib.machinery
import importlib.util
import re
import subprocess
import sys
import tempfile
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
                # and one value per round (--quick: one round)
                row = re.search(rf"^\| {scenario} \| [^|]+ \| {proxy} \| {NUM} \| ({NUM})/({NUM}) \| "
                                rf"\*\*({NUM})\*\* \| ({NUM})–({NUM}) \| ([^|]+) \| {NUM} \| {NUM} \| ",
                                report, re.M)
                self.assertIsNotNone(row, f"no CPU row for {scenario} / {proxy}:\n{report}")
                self.assertEqual(row.group(1), row.group(2), row.group(0))
                median, low, high, each = row.group(3, 4, 5, 6)
                self.assertEqual(each.strip().split("; "), [median], row.group(0))
                self.assertEqual((low, high), (median, median), row.group(0))
            # the ratio row: ratio of the medians, then the paired rounds' median (min–max, rounds)
            self.assertRegex(report, rf"(?m)^\| {scenario} \| [\d.]+ \| [\d.]+ \([\d.]+–[\d.]+, 1 round\) \| ")
        for proxy in ("sipwitness", "Kamailio"):
            # each proxy's sip_load row, then the generator alone at the same rate and count
            rows = re.search(rf"^\| {proxy} \| ({NUM}) \| {NUM}/({NUM}) \| .*\n"
                             rf"\| none \(generator alone, same rate as {proxy}\) \| ({NUM}) \| "
                             rf"({NUM})/({NUM}) \| \*\*{NUM}\*\* \| {NUM} \| \*\*{NUM}\*\* \|",
                             report, re.M)
            self.assertIsNotNone(rows, f"no same-rate generator row after {proxy}'s:\n{report}")
            self.assertEqual(rows.group(1, 2), rows.group(3, 5), rows.group(0))
            self.assertEqual(rows.group(4), rows.group(5), rows.group(0))  # all answered
        self.assertRegex(report, rf"(?m)^\| none \(generator alone, half its own max\) \| {NUM} \| ")
        flows = re.search(r"^\| [\d,]+ \| [\d,]+ \| [\d,]+ \| \*\*([\d,]+)\*\* \|$", report, re.M)
        self.assertIsNotNone(flows, report)

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


if __name__ == "__main__":
    unittest.main()
