"""Interop: sipwitness's auth library answers a real Kamailio's 401 challenge.

tests/tools/digest_uac (a REGISTER client built on auth/: parse_challenges,
compute_ha1, compute_response) registers to Kamailio with MD5 and with SHA-256;
a wrong password is refused by Kamailio (a second 401)."""

from __future__ import annotations

import os
import subprocess
import sys
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "kamailio"))

import kam  # noqa: E402

UAC = os.environ.get("DIGEST_UAC_BIN") or str(HERE.parent.parent / "build" / "digest_uac")


def run_uac(kamailio: "kam.Kamailio", password: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [UAC, "--server", f"127.0.0.1:{kamailio.port}", "--domain", kamailio.realm, "--user", "1001",
         "--password", password],
        capture_output=True, text=True, timeout=20)


class KamailioInterop(unittest.TestCase):
    def setUp(self):
        missing = kam.missing_prerequisites()
        if missing:
            self.fail("missing: " + ", ".join(missing))  # the setup script installs them
        if not os.path.exists(UAC):
            self.fail(f"digest_uac not built at {UAC} (set DIGEST_UAC_BIN)")

    def test_registers_with_each_algorithm_kamailio_offers(self):
        for algorithm in ("MD5", "SHA-256"):
            with self.subTest(algorithm=algorithm), kam.Kamailio(algorithm=algorithm) as kamailio:
                result = run_uac(kamailio, "secret1001")
                self.assertEqual(result.returncode, 0, result.stdout + result.stderr + kamailio.log()[-3000:])
                self.assertIn(f"algorithm={algorithm} qop=auth", result.stdout)
                self.assertIn("answer: SIP/2.0 200 OK", result.stdout)

    def test_wrong_password_is_refused(self):
        with kam.Kamailio() as kamailio:
            result = run_uac(kamailio, "not-the-password")
            self.assertEqual(result.returncode, 3, result.stdout + result.stderr)
            self.assertIn("answer: SIP/2.0 401", result.stdout)


if __name__ == "__main__":
    unittest.main()
