#!/usr/bin/env python3
"""Command line contract: --version, --help, `run --config F --check` and the
exit code 2 + `file:line:col: key.path: message` diagnostics for bad configs;
`analyze`'s exit codes, error lines and progress display."""

import json
import os
import pty
import re
import socket
import subprocess
import sys
import unittest
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import HOST, REPO_ROOT, SANITIZER_MARKERS, E2ETestCase, sipwitness_binary  # noqa: E402

CAPTURE = REPO_ROOT / "tests" / "data" / "captures" / "normal.pcap"  # one REGISTER flow, 401 then 200

GOOD = """\
listen:
  - { transport: udp, host: 127.0.0.1, port: 0 }
  - { transport: tcp, host: 127.0.0.1, port: 0 }
upstream: { uri: "sip:127.0.0.1:5099;transport=udp" }
log: { level: debug }
"""


class Cli(E2ETestCase):
    def sw(self, *args, timeout=20):
        binary = sipwitness_binary()
        self.assertTrue(Path(binary).exists(), f"binary not found: {binary} (set SIPWITNESS_BIN)")
        p = subprocess.run([binary, *args], capture_output=True, text=True, timeout=timeout,
                           cwd=self.tmp, stdin=subprocess.DEVNULL)
        for marker in SANITIZER_MARKERS:
            self.assertNotIn(marker, p.stderr, f"sanitizer report for {args}:\n{p.stderr}")
        self.assertGreaterEqual(p.returncode, 0, f"{args} died from signal {-p.returncode}\n{p.stderr}")
        return p

    def write(self, name, text):
        path = self.tmp / name
        path.write_text(text)
        return path

    def assertConfigError(self, text, key_path, line, name="bad.yaml"):
        path = self.write(name, text)
        p = self.sw("run", "--config", str(path), "--check")
        self.assertEqual(p.returncode, 2, f"bad config must exit 2\nstdout:{p.stdout}\nstderr:{p.stderr}")
        # file:line:col: key.path: message (the file as given on the command line)
        pattern = rf"{re.escape(str(path))}:{line}:\d+: {re.escape(key_path)}: \S"
        self.assertRegex(p.stderr, pattern,
                         f"expected `{path}:{line}:COL: {key_path}: message` on stderr")
        return p

    # -- version / help ----------------------------------------------------------
    def test_version(self):
        p = self.sw("--version")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout + p.stderr, r"\d+\.\d+\.\d+")

    def test_help(self):
        p = self.sw("--help")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("run", p.stdout)
        p = self.sw("run", "--help")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("--config", p.stdout)
        self.assertIn("--check", p.stdout)

    def test_bad_usage_exits_2(self):
        self.assertEqual(self.sw("no-such-subcommand").returncode, 2)
        good = self.write("good.yaml", GOOD)
        self.assertEqual(self.sw("run", "--config", str(good), "--check", "--no-such-flag").returncode, 2)

    # -- --check -----------------------------------------------------------------------
    def test_check_good_config(self):
        good = self.write("good.yaml", GOOD)
        p = self.sw("run", "--config", str(good), "--check")
        self.assertEqual(p.returncode, 0, f"stdout:{p.stdout}\nstderr:{p.stderr}")

    def test_check_minimal_config(self):
        # every key has a default, so an empty mapping is a valid config
        path = self.write("empty.yaml", "{}\n")
        p = self.sw("run", "--config", str(path), "--check")
        self.assertEqual(p.returncode, 0, f"stdout:{p.stdout}\nstderr:{p.stderr}")

    def test_unknown_key_in_listen(self):
        self.assertConfigError(
            "listen:\n"
            "  - { transport: udp, host: 127.0.0.1, port: 0, bogus: 1 }\n"
            'upstream: { uri: "sip:127.0.0.1:5099;transport=udp" }\n',
            "listen[0].bogus", 2)

    def test_unknown_key_second_listener(self):
        self.assertConfigError(
            "listen:\n"
            "  - { transport: udp, host: 127.0.0.1, port: 0 }\n"
            "  - transport: tcp\n"
            "    host: 127.0.0.1\n"
            "    prot: 5060\n"
            'upstream: { uri: "sip:127.0.0.1:5099;transport=udp" }\n',
            "listen[1].prot", 5)

    def test_unknown_top_level_key(self):
        self.assertConfigError(GOOD + "bogus_top: 1\n", "bogus_top", 6)

    def test_port_out_of_range(self):
        self.assertConfigError(
            "listen:\n"
            "  - { transport: udp, host: 127.0.0.1, port: 99999 }\n"
            'upstream: { uri: "sip:127.0.0.1:5099;transport=udp" }\n',
            "listen[0].port", 2)

    def test_bad_transport_value(self):
        self.assertConfigError(
            "listen:\n"
            "  - { transport: carrier-pigeon, host: 127.0.0.1, port: 0 }\n",
            "listen[0].transport", 2)

    def test_bad_log_level(self):
        self.assertConfigError(GOOD.replace("level: debug", "level: loud"), "log.level", 5)

    def test_yaml_syntax_error(self):
        path = self.write("broken.yaml", "listen: [ { transport: udp\n")
        p = self.sw("run", "--config", str(path), "--check")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertRegex(p.stderr, rf"{re.escape(str(path))}:\d+:\d+: ")

    def test_run_with_bad_config_exits_2(self):
        path = self.write("bad.yaml", "listen:\n  - { transport: udp, host: 127.0.0.1, port: 0, bogus: 1 }\n")
        p = self.sw("run", "--config", str(path))
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("listen[0].bogus", p.stderr)

    def test_port_in_use_exits_1(self):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
            busy.bind((HOST, 0))
            port = busy.getsockname()[1]
            self.assert_start_fails(GOOD.replace("  - { transport: udp, host: 127.0.0.1, port: 0 }",
                                                 f"  - {{ transport: udp, host: 127.0.0.1, port: {port} }}"),
                                    f"cannot listen on udp 127.0.0.1:{port}")

    def test_missing_config_file(self):
        p = self.sw("run", "--config", str(self.tmp / "does-not-exist.yaml"), "--check")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("does-not-exist.yaml", p.stderr)

    # -- analyze -----------------------------------------------------------------
    def test_analyze_truncated_capture_names_the_offset_and_keeps_the_verdicts(self):
        whole = CAPTURE.read_bytes()
        cut = self.tmp / "cut.pcap"
        cut.write_bytes(whole[:-20])
        p = self.sw("analyze", str(cut), "--format", "json")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertRegex(p.stderr, rf"{re.escape(str(cut))}: offset \d+: \S")
        lines = [json.loads(line) for line in p.stdout.splitlines()]
        self.assertEqual(len(lines), 1, p.stdout)  # the flow read before the cut still gets its verdict

    def test_analyze_unreadable_files_exit_2(self):
        binary = self.tmp / "garbage.bin"
        binary.write_bytes(bytes(range(256)) * 4)
        text = self.write("notes.txt", "hello\nthis is not a SIP trace\n")
        for path, reason in ((binary, "not a pcap, pcapng or text SIP trace"), (text, "no SIP message"),
                             (self.tmp / "absent.pcap", "cannot open")):
            with self.subTest(path=path.name):
                p = self.sw("analyze", str(path))
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn(f"{path}: offset 0: {reason}", p.stderr)
        # A good file beside a bad one: its verdicts come out, the exit code still says 2.
        p = self.sw("analyze", str(CAPTURE), str(binary), "--format", "json")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertEqual(json.loads(p.stdout.splitlines()[0])["verdict"], "ok_after_challenge")

    def test_analyze_unwritable_output_exits_1(self):
        p = self.sw("analyze", str(CAPTURE), "--out", str(self.tmp / "no-such-dir" / "report.html"))
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("cannot write", p.stderr)

    def test_analyze_shows_progress_only_on_a_terminal(self):
        p = self.sw("analyze", str(CAPTURE), "--format", "json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("%", p.stderr)
        main, side = pty.openpty()
        self.addCleanup(os.close, main)
        with subprocess.Popen([sipwitness_binary(), "analyze", str(CAPTURE), "--format", "json"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=side, cwd=self.tmp) as proc:
            os.close(side)
            out, _ = proc.communicate(timeout=20)
        shown = b""
        try:
            while chunk := os.read(main, 4096):
                shown += chunk
        except OSError:  # the terminal's other end is closed: all read
            pass
        self.assertEqual(proc.returncode, 0, shown)
        self.assertIn(b"analyze: " + str(CAPTURE).encode() + b" 100%", shown)
        self.assertEqual(len(out.splitlines()), 1, out)  # the verdicts stay clean on stdout


if __name__ == "__main__":
    unittest.main()
