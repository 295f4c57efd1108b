#!/usr/bin/env python3
"""bench/compare end to end at smoke-test sizes (--quick, about 30 s).

The load comparison is not a test of speed (CI machines are shared and noisy):
this checks that the tool itself works, so a result in bench/RESULTS.md can
always be reproduced. Both proxies go through every scenario, the report has
each of its tables with a row per scenario and proxy, every fixed-rate run
completed all its calls, and --results appends the report to the file.

Needs bench/sip_load next to the sipwitness binary (the release build; the
sanitizer build has no benchmarks, so the test is skipped there), Kamailio
and SIPp.
"""

from __future__ import annotations

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
        for heading in ("### Proxy CPU per call at a fixed rate", "### Memory after the fixed-rate run",
                        "### Maximum sustained rate", "### Response time",
                        "### Memory per live flow (sipwitness)", "### sipwitness / Kamailio"):
            self.assertIn(heading, report)
        for scenario in SCENARIOS:
            for proxy in ("sipwitness", "Kamailio"):
                # the fixed-rate row: every call of the run completed
                row = re.search(rf"^\| {scenario} \| [^|]+ \| {proxy} \| [\d,]+ \| ([\d,]+)/([\d,]+) \| "
                                rf"\*\*[\d.,]+\*\* \|", report, re.M)
                self.assertIsNotNone(row, f"no CPU row for {scenario} / {proxy}:\n{report}")
                self.assertEqual(row.group(1), row.group(2), row.group(0))
            self.assertRegex(report, rf"(?m)^\| {scenario} \| [\d.]+ \| ")  # the ratio row
        flows = re.search(r"^\| [\d,]+ \| [\d,]+ \| [\d,]+ \| \*\*([\d,]+)\*\* \|$", report, re.M)
        self.assertIsNotNone(flows, report)


if __name__ == "__main__":
    unittest.main()
