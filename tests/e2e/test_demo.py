"""The README's first Quick start command: scripts/demo runs, shows what went
through sipwitness, and the verdict for each phone's flow explains it; then a
broken ALG between two lab-mode instances is named by the outer one."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean
from harness import REPO_ROOT, sipwitness_binary  # noqa: E402

UAC = os.environ.get("DIGEST_UAC_BIN") or str(REPO_ROOT / "build" / "digest_uac")


class Demo(unittest.TestCase):
    def test_demo_explains_each_phone(self):
        report_dir = tempfile.TemporaryDirectory(prefix="sipwitness-demo-")
        self.addCleanup(report_dir.cleanup)
        report = Path(report_dir.name) / "report.html"
        env = dict(os.environ, SIPWITNESS_BIN=sipwitness_binary(), DIGEST_UAC_BIN=os.path.abspath(UAC),
                   SIPWITNESS_DEMO_REPORT=str(report))
        result = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "demo")], env=env, capture_output=True,
                                text=True, timeout=120)
        out = result.stdout + result.stderr
        self.assertEqual(result.returncode, 0, out)
        # The trace of the exchange, with the digest parameters in short.
        self.assertRegex(out, r"<- upstream \S+ udp 401 Unauthorized \(REGISTER\) .*\[WWW-Authenticate Digest "
                              r"realm=demo\.example")
        self.assertRegex(out, r"-> upstream \S+ udp REGISTER sip:demo\.example .*\[Authorization Digest "
                              r"username=1001 realm=demo\.example")
        lines = [json.loads(l) for l in out.splitlines() if l.startswith('{"ts":')]
        got = {(v["method"], v["aor"]): v for v in lines}
        expected = {
            ("REGISTER", "sip:1001@demo.example"): ("ok_after_challenge", "certain", 200),
            ("INVITE", "sip:echo@demo.example"): ("ok", "certain", 200),
            ("REGISTER", "sip:1002@demo.example"): ("wrong_password", "likely", 401),
            ("REGISTER", "sip:1003@demo.example"): ("realm_mismatch", "certain", 401),
            ("REGISTER", "sip:1004@demo.example"): ("no_credentials", "certain", 401),
        }
        self.assertEqual(set(got), set(expected), out)
        for key, (verdict, confidence, status) in expected.items():
            with self.subTest(flow=key):
                v = got[key]
                self.assertEqual((v["verdict"], v["confidence"], v["final_status"]), (verdict, confidence, status))
                self.assertTrue(v["hint"])
        self.assertEqual(got[("REGISTER", "sip:1003@demo.example")]["evidence"]["credential_realm"], "pbx.local")
        # The human lines are printed too, one per flow (and one for the lab's flow, below).
        self.assertEqual(len(re.findall(r"^verdict ", out, re.M)), 6, out)
        # Offline, the pcap sipwitness wrote gives the same verdict per flow. A
        # flow whose silence the capture cut short is only "likely" offline.
        offline = re.findall(r"^\S+Z  (\w+) \((certain|likely)\)  (\w+) (\S+)  ", out, re.M)
        self.assertEqual({(m, aor): verdict for verdict, _, m, aor in offline},
                         {key: verdict for key, (verdict, _, _) in expected.items()}, out)
        self.assertRegex(out, r"relayed\.pcap \(pcap\): \d+ packets, \d+ SIP messages")
        self.assertRegex(out, r"(?m)^5 flows: ")
        # The lab: the outer instance names the ALG's rewrite, not a wrong password.
        self.assertRegex(out, r"(?m)^alg: udp 127\.0\.0\.1: rewrites Authorization uri=: sent \"sip:demo\.example\" "
                              r"arrived \"sip:demo\.example:5060\"")
        self.assertRegex(out, r"(?m)^verdict alg_rewrite \(certain\) REGISTER sip:1001@demo\.example .*"
                              r"field=Authorization uri=; sent=sip:demo\.example; arrived=sip:demo\.example:5060")
        self.assertRegex(out, r"(?m)^alg report: udp 127\.0\.0\.1: 2 sealed messages, 1 rewritten")
        html = report.read_text()
        for v in got.values():
            self.assertIn(v["call_id"], html)


if __name__ == "__main__":
    unittest.main()
