#!/usr/bin/env python3
"""Load: 1000 INVITE/ACK/BYE calls over UDP through sipwitness (100 calls/s),
none may fail on either side; sipwitness must exit cleanly afterwards."""

import os
import sys
import unittest
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import HOST, E2ETestCase  # noqa: E402

CALLS = int(os.environ.get("E2E_LOAD_CALLS", "1000"))
RATE = int(os.environ.get("E2E_LOAD_RATE", "100"))


class Load(E2ETestCase):
    def test_udp_calls(self):
        budget = CALLS / RATE + 40  # seconds: the run itself plus slack
        prov = self.start_sipp("uas_call.xml", transport="udp", calls=CALLS, timeout=budget,
                               name="provider", trace_messages=False)
        # info, not debug: per-message debug lines are not what is measured here
        with self.sipwitness(upstream_port=prov.port, upstream_transport="udp", level="info") as sw:
            phone = self.run_sipp("uac_call.xml", (HOST, sw.udp_port), transport="udp",
                                  calls=CALLS, rate=RATE, limit=500, service="2000",
                                  timeout=budget, name="phone", trace_messages=False)
            provr = prov.wait()
            self.assertTrue(sw.alive(), "sipwitness died under load")
            self.assertSippOk(phone, CALLS, sw)
            self.assertSippOk(provr, CALLS, sw)
            retrans = phone.stats.get("Retransmissions(C)"), provr.stats.get("Retransmissions(C)")
            sys.stderr.write(f"\nload: {CALLS} calls ok; SIPp retransmissions phone/provider: "
                             f"{retrans[0]}/{retrans[1]}\n")


if __name__ == "__main__":
    unittest.main()
