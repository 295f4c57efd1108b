#!/usr/bin/env python3
"""Relay over UDP: phone SIPp -> sipwitness -> provider SIPp, all on UDP.

REGISTER (plain and challenged), INVITE/ACK/BYE, 20 sequential calls, an
incoming call from the provider to the registered phone (by contact and by
AOR), CANCEL of a ringing call. See relay_common.RelayTests for the asserts.
"""

import sys
import unittest
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, str(Path(__file__).resolve().parent))

import relay_common  # noqa: E402


class RelayUdp(relay_common.RelayTests):
    transport = "udp"


if __name__ == "__main__":
    unittest.main()
