#!/usr/bin/env python3
"""bench/soak end to end at smoke-test size (20 s, rates given, about 25 s).

Not a test of the soak's criteria (20 s is no soak, and the RSS of a process
that has just started still grows): this checks that the tool works, so a
result in bench/RESULTS.md can always be reproduced. Every good call and
registration succeeds, every kind of hostile traffic is sent and the
scanners get their answers, the report has its tables and verdict line, and
--results appends it.

Skipped where bench/sip_load is not beside the sipwitness binary (the
sanitizer build has no benchmarks, and a soak there measures the sanitizer).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

SOAK = harness.REPO_ROOT / "bench" / "soak"


class BenchSoak(unittest.TestCase):
    def test_short_run_reports_every_measure(self):
        sipwitness = Path(harness.sipwitness_binary())
        if not (sipwitness.parent / "sip_load").exists():
            self.skipTest(f"no sip_load beside {sipwitness} (a build without benchmarks)")
        with tempfile.TemporaryDirectory(prefix="sipwitness-soak-test-") as tmp:
            results = Path(tmp) / "RESULTS.md"
            results.write_text("# Benchmark results\n")
            proc = subprocess.run(
                [sys.executable, str(SOAK), "--sipwitness", str(sipwitness), "--duration", "20",
                 "--warmup", "5", "--call-rate", "40", "--register-rate", "40",
                 "--results", str(results)],
                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180)
            report = proc.stdout
            appended = results.read_text()
        # exit 1 is a FAIL verdict (RSS still growing 5 s after the start is allowed here)
        self.assertIn(proc.returncode, (0, 1), proc.stderr[-4000:])
        self.assertTrue(appended.startswith("# Benchmark results\n"))
        self.assertIn(report.strip(), appended)
        for scen in ("INVITE call", "REGISTER through the 407"):
            row = re.search(rf"^\| {scen}[^|]* \| ([\d,]+) \| ([\d,]+) \| \*\*0\*\* \|", report, re.M)
            self.assertIsNotNone(row, f"no row without failures for {scen}:\n{report}")
            self.assertEqual(row.group(1), row.group(2), row.group(0))
            self.assertEqual(row.group(1), "800", row.group(0))  # 40/s for 20 s
        for kind, answer in (("options sweep", "200"), ("invite flood", "404"),
                             ("register brute force", "407"), ("malformed", None)):
            row = re.search(rf"^\| {kind} \| ([\d,]+) \| ([^|]*) \|", report, re.M)
            self.assertIsNotNone(row, f"no row for {kind}:\n{report}")
            self.assertGreater(int(row.group(1).replace(",", "")), 0, row.group(0))
            if answer:
                self.assertIn(f"{answer}: ", row.group(2), row.group(0))
        self.assertRegex(report, r"RSS spread \(max/min - 1\) / drift")
        self.assertRegex(report, r"\*\*Result: (PASS|FAIL)\.\*\* Good calls and registrations lost: 0 \(pass\)")


if __name__ == "__main__":
    unittest.main()
