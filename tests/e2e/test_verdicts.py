#!/usr/bin/env python3
"""End-to-end: the auth verdict log (DESIGN.md, "Verdict log").

    digest_uac ──REGISTER──▶ sipwitness ──REGISTER──▶ Kamailio (realm kam.test,
      (phone)   ◀──401/200──  (diag.verdict_log) ◀──   users 1001, 1002)

tests/tools/digest_uac is a phone that can be told to misbehave (wrong
password, another realm, another username, a late answer, no answer). For each
misbehaviour one REGISTER flow goes through sipwitness to a real Kamailio, and
the single verdict line sipwitness writes for that flow is checked field by
field. Every test also checks the whole verdict file: each line is a JSON
object with the contract's keys, and none carries a password or a full
32-hex digest (diag.redact is on by default). The human-readable twin of each
verdict must be in sipwitness's console log.

Load: E2E_VERDICT_FLOWS (default 10000) challenged REGISTER flows from a SIPp
phone through sipwitness to a SIPp registrar give as many valid JSON lines,
all ok_after_challenge.

What Kamailio 5.6 does (learned here; the tests depend on it):
* wrong password: pv_www_authenticate returns -2, www_challenge answers a
  fresh 401 (no stale); unknown username: our config re-challenges; a realm
  other than the challenged one: -5 (no credentials for that realm).
* a nonce is stale once its expiry second (issue time + nonce_expire) is in
  the past; the answer then fails with -4 before the password is checked.
  Kamailio adds stale=true to the next challenge only when the script passes
  flag 16 to www_challenge: a stock kamailio.cfg does not. kam.py's
  stale_on_expiry=True asks for it.
* its nonces carry the issue second and no per-request id (nonce_count and
  one_time_nonce are off), so two challenges in the same second carry the
  same nonce.
* it does not compare the digest uri= with the Request-URI.

Run:  SIPWITNESS_BIN=build/sipwitness DIGEST_UAC_BIN=build/digest_uac \\
          python3 tests/e2e/test_verdicts.py -v
E2E_KEEP=1 keeps the per-test directories (verdict file, configs, logs).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
import unittest
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "kamailio"))

import harness  # noqa: E402  (tests/e2e/harness.py)
import kam  # noqa: E402      (tests/e2e/kamailio/kam.py)

UAC = os.environ.get("DIGEST_UAC_BIN") or str(HERE.parent.parent / "build" / "digest_uac")
REALM = kam.DEFAULT_REALM  # kam.test
USERS = {"1001": "secret1001", "1002": "secret1002"}
USER, PASSWORD = "1001", USERS["1001"]
AOR = f"sip:{USER}@{REALM}"
FLOW_TIMEOUT_S = 2          # diag.flow_timeout
VERDICT_WAIT_S = 8.0        # poll the verdict file this long for a flow's line
NONCE_EXPIRE_S = 2          # Kamailio's nonce_expire for the expiry tests
LATE_ANSWER_S = 4           # >= nonce_expire + 1: always stale (second granularity)
LATE_FLOW_TIMEOUT_S = LATE_ANSWER_S + 4  # diag.flow_timeout for the late-answer tests
UAC_TIMEOUT_S = 30

VERDICTS = {
    "ok", "ok_after_challenge", "wrong_password", "realm_mismatch", "username_mismatch",
    "nonce_expired", "uri_mismatch", "alg_rewrite", "algorithm_unsupported", "no_credentials",
    "auth_loop", "forbidden", "unanswered",
}
KEYS = {"ts", "call_id", "method", "aor", "user", "source", "verdict", "confidence",
        "challenges", "final_status", "evidence", "hint"}
HEX32 = re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{32,}(?![0-9a-fA-F])")
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


class Uac:
    """One digest_uac run: its stdout parsed into what the tests need."""

    def __init__(self, proc: subprocess.CompletedProcess, argv: list[str], ended: float):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.argv = argv
        self.ended = ended  # time.monotonic() when it exited
        m = re.search(r"^local: (\S+) call-id: (\S+)$", proc.stdout, re.M)
        self.source = m.group(1) if m else None
        self.call_id = m.group(2) if m else None
        self.nonces = re.findall(r"^challenge: .* nonce=(\S+)$", proc.stdout, re.M)
        self.stale = re.findall(r"^challenge: .* stale=(\w+) ", proc.stdout, re.M)
        self.answers = re.findall(r"^answering: username=(\S*) realm=(\S*) uri=(\S*) "
                                  r"algorithm=(\S+)$", proc.stdout, re.M)

    def describe(self) -> str:
        return (f"digest_uac exit {self.returncode}: {' '.join(self.argv)}\n"
                f"--- stdout ---\n{self.stdout}--- stderr ---\n{self.stderr}")

    def responses(self, password: str) -> list[str]:
        """The response= digests it sent (MD5, qop=auth, as digest_uac computes them)."""
        out = []
        for i, ((username, realm, uri, _alg), nonce) in enumerate(zip(self.answers, self.nonces)):
            md5 = lambda s: hashlib.md5(s.encode()).hexdigest()  # noqa: E731
            ha1 = md5(f"{username}:{realm}:{password}")
            ha2 = md5(f"REGISTER:{uri}")
            out.append(md5(f"{ha1}:{nonce}:00000001:0a4f113b{i}:auth:{ha2}"))
        return out


class _Base(harness.E2ETestCase):
    @classmethod
    def setUpClass(cls):
        why = kam.missing_prerequisites()
        if why:
            raise unittest.SkipTest("; ".join(why))
        if not os.path.exists(UAC):
            raise AssertionError(f"digest_uac not built at {UAC} (set DIGEST_UAC_BIN)")

    def setUp(self):
        super().setUp()
        self.kam: kam.Kamailio | None = None
        self.sw: harness.Sipwitness | None = None
        self.uacs: list[Uac] = []
        self.verdict_path = self.tmp / "verdicts.jsonl"

    # ---- peers ---------------------------------------------------------------

    def start_kamailio(self, **kw) -> kam.Kamailio:
        self.kam = kam.Kamailio(port=harness.free_port("udp"), workdir=str(self.tmp / "kamailio"),
                                users=USERS, realm=REALM, **kw)
        self.addCleanup(self.kam.stop)  # registered after the harness cleanup: runs first
        self.kam.start()
        return self.kam

    def write_known_credentials(self) -> Path:
        path = self.tmp / "known.yaml"
        path.write_text('users:\n'
                        f'  - {{ username: "{USER}", password: "{PASSWORD}", realm: {REALM} }}\n')
        return path

    def diag_config(self, known: Path | None = None, flow_timeout: int = FLOW_TIMEOUT_S) -> str:
        text = ("diag:\n"
                f'  verdict_log: "{self.verdict_path}"\n'
                f"  flow_timeout: {flow_timeout}s\n")
        if known is not None:
            text += f'  known_credentials: "{known}"\n'
        return text

    def start_sipwitness(self, upstream_uri: str, known: Path | None = None,
                         flow_timeout: int = FLOW_TIMEOUT_S, **kw):
        kw.setdefault("level", "debug")
        return self.sipwitness(upstream_uri=upstream_uri, listen=("udp",),
                               extra_config=self.diag_config(known, flow_timeout), **kw)

    def uac(self, sw_port: int, *extra: str, password: str = PASSWORD) -> Uac:
        argv = [UAC, "--server", f"127.0.0.1:{sw_port}", "--domain", REALM, "--user", USER,
                "--password", password, *extra]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=UAC_TIMEOUT_S,
                              stdin=subprocess.DEVNULL)
        u = Uac(proc, argv, time.monotonic())
        self.uacs.append(u)
        self.assertIsNotNone(u.call_id, "digest_uac printed no 'local:' line\n" + u.describe())
        return u

    # ---- the verdict file ----------------------------------------------------

    def lines(self) -> list[str]:
        try:
            text = self.verdict_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return []
        # only complete lines: the writer may be mid-line
        return text.split("\n")[:-1] if not text.endswith("\n") else text.splitlines()

    def records(self) -> list[dict]:
        out = []
        for line in self.lines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # reported by assertLogWellFormed
        return out

    def wait_verdict(self, call_id: str, timeout: float = VERDICT_WAIT_S) -> tuple[dict, float]:
        """The verdict line for call_id (polled), and when it was first seen."""
        deadline = time.monotonic() + timeout
        while True:
            for rec in self.records():
                if rec.get("call_id") == call_id:
                    return rec, time.monotonic()
            if time.monotonic() > deadline:
                self.fail(f"no verdict line for call_id {call_id} within {timeout}s"
                          + self.context())
            time.sleep(0.05)

    def context(self) -> str:
        out = [""]
        for u in self.uacs:
            out.append("=== " + u.describe())
        out.append(f"=== verdict file {self.verdict_path}:\n" + "\n".join(self.lines()[-20:]))
        if self.kam is not None:
            out.append("=== kamailio log (E2E lines)\n" + "\n".join(
                l for l in self.kam.log().splitlines() if "E2E-" in l)[-4000:])
        if self.sw is not None:
            out.append("=== sipwitness log (tail)\n" + self.sw.log()[-8000:])
        return "\n".join(out)

    def assertLogWellFormed(self, secrets: tuple[str, ...] = (), digests: tuple[str, ...] = ()):
        """Every line is a JSON object with the contract's keys and types; no line
        holds a password, one of the digests sent, or any 32-hex run."""
        lines = self.lines()
        self.assertTrue(lines, "the verdict file is empty" + self.context())
        for n, line in enumerate(lines, 1):
            try:
                rec = json.loads(line)
            except ValueError as e:
                self.fail(f"verdict line {n} is not JSON ({e}): {line!r}")
            self.assertIsInstance(rec, dict, f"line {n}: {line}")
            self.assertEqual(set(rec) & KEYS, KEYS, f"line {n} misses keys: {line}")
            self.assertIn(rec["verdict"], VERDICTS, f"line {n}: {line}")
            self.assertIn(rec["confidence"], ("certain", "likely"), f"line {n}: {line}")
            self.assertRegex(rec["ts"], TS, f"line {n}: {line}")
            self.assertIsInstance(rec["challenges"], int, f"line {n}: {line}")
            self.assertIsInstance(rec["final_status"], int, f"line {n}: {line}")
            self.assertIsInstance(rec["evidence"], dict, f"line {n}: {line}")
            self.assertIsInstance(rec["hint"], str, f"line {n}: {line}")
            for s in secrets:
                self.assertNotIn(s, line, f"line {n} holds a password: {line}")
            for d in digests:
                self.assertNotIn(d, line.lower(), f"line {n} holds a full response digest: {line}")
            self.assertIsNone(HEX32.search(line), f"line {n} holds a 32-hex value: {line}")

    def assertVerdict(self, rec: dict, uac: Uac, *, verdict: str, confidence: str | None,
                      challenges: int, final_status: int, user: str,
                      evidence: dict | None = None) -> None:
        ctx = "\nverdict line: " + json.dumps(rec) + self.context()
        self.assertEqual(rec.get("verdict"), verdict, "verdict" + ctx)
        if confidence is not None:
            self.assertEqual(rec.get("confidence"), confidence, "confidence" + ctx)
        self.assertEqual(rec.get("method"), "REGISTER", "method" + ctx)
        self.assertEqual(rec.get("call_id"), uac.call_id, "call_id" + ctx)
        self.assertIn(AOR, rec.get("aor", ""), "aor" + ctx)
        self.assertEqual(rec.get("user"), user, "user" + ctx)
        self.assertEqual(rec.get("source"), uac.source, "source" + ctx)
        self.assertEqual(rec.get("challenges"), challenges, "challenges" + ctx)
        self.assertEqual(rec.get("final_status"), final_status, "final_status" + ctx)
        self.assertIsInstance(rec.get("hint"), str, "hint" + ctx)
        self.assertTrue(rec.get("hint"), "empty hint" + ctx)
        for k, v in (evidence or {}).items():
            self.assertIn(k, rec.get("evidence", {}), f"evidence.{k}" + ctx)
            self.assertEqual(rec["evidence"][k], v, f"evidence.{k}" + ctx)

    def finish(self, sw: harness.Sipwitness, rec: dict, uac: Uac, *, password: str = PASSWORD):
        """After sipwitness stopped: one line for this flow (none added at
        shutdown), the file well formed, the human line in the console log."""
        ctx = self.context()
        same = [r for r in self.records() if r.get("call_id") == uac.call_id]
        self.assertEqual(len(same), 1, "expected exactly one verdict line for the flow" + ctx)
        self.assertLogWellFormed(secrets=(password, PASSWORD, USERS["1002"]),
                                 digests=tuple(uac.responses(password)))
        self.assertRegex(sw.log(), rf"verdict {rec['verdict']}\b",
                         "no human-readable verdict line in sipwitness's log" + ctx)

    def run_flow(self, *uac_args: str, password: str = PASSWORD, known: Path | None = None,
                 expect_exit: int, kam_kw: dict | None = None,
                 flow_timeout: int = FLOW_TIMEOUT_S):
        """Kamailio, sipwitness, one digest_uac flow; returns (record, uac, seen_at)."""
        k = self.start_kamailio(**(kam_kw or {}))
        with self.start_sipwitness(k.uri, known, flow_timeout) as sw:
            self.sw = sw
            u = self.uac(sw.udp_port, *uac_args, password=password)
            self.assertEqual(u.returncode, expect_exit, u.describe() + self.context())
            rec, seen = self.wait_verdict(u.call_id,
                                          VERDICT_WAIT_S + flow_timeout - FLOW_TIMEOUT_S)
        self.finish(sw, rec, u, password=password)
        return rec, u, seen


class VerdictKamailioTest(_Base):
    """One REGISTER flow per test: digest_uac -> sipwitness -> Kamailio."""

    def test_right_password_ok_after_challenge(self):
        rec, u, _ = self.run_flow(expect_exit=0)
        self.assertIn("answer: SIP/2.0 200", u.stdout)
        self.assertVerdict(rec, u, verdict="ok_after_challenge", confidence="certain",
                           challenges=1, final_status=200, user=USER)

    def test_wrong_password_likely(self):
        rec, u, _ = self.run_flow(password="not-the-password", expect_exit=3)
        self.assertVerdict(rec, u, verdict="wrong_password", confidence="likely",
                           challenges=2, final_status=401, user=USER)

    def test_wrong_password_certain_with_known_credentials(self):
        known = self.write_known_credentials()
        rec, u, _ = self.run_flow(password="not-the-password", known=known, expect_exit=3)
        self.assertVerdict(rec, u, verdict="wrong_password", confidence="certain",
                           challenges=2, final_status=401, user=USER)

    def test_realm_mismatch(self):
        rec, u, _ = self.run_flow("--answer-realm", "other.test", expect_exit=3)
        self.assertVerdict(rec, u, verdict="realm_mismatch", confidence="certain",
                           challenges=2, final_status=401, user=USER,
                           evidence={"challenge_realm": REALM, "credential_realm": "other.test"})

    def test_username_mismatch(self):
        rec, u, _ = self.run_flow("--auth-user", "9999", expect_exit=3)
        self.assertVerdict(rec, u, verdict="username_mismatch", confidence="likely",
                           challenges=2, final_status=401, user="9999",
                           evidence={"credential_username": "9999", "aor_user": USER})

    def _late_answer(self, stale: bool, known: Path | None):
        # flow_timeout longer than the late answer: with the usual 2 s the flow
        # would end as no_credentials before the answer (and the answer would
        # open a second flow)
        rec, u, _ = self.run_flow("--delay-answer", str(LATE_ANSWER_S), known=known, expect_exit=3,
                                  kam_kw={"nonce_expire": NONCE_EXPIRE_S, "stale_on_expiry": stale},
                                  flow_timeout=LATE_FLOW_TIMEOUT_S)
        # what Kamailio did: a second challenge, stale=true only when asked for
        self.assertEqual(u.stale, ["false", "true" if stale else "false"], u.describe())
        self.assertIn("rc=-4", self.kam.log(), "Kamailio did not refuse an expired nonce"
                      + self.context())
        return rec, u

    def assertDelayEvidence(self, rec: dict) -> None:
        ev = rec.get("evidence", {})
        ctx = "\nverdict line: " + json.dumps(rec) + self.context()
        delays = {k: ev[k] for k in ("answer_delay_s", "nonce_age_s") if k in ev}
        self.assertTrue(delays, "evidence has neither answer_delay_s nor nonce_age_s" + ctx)
        for k, v in delays.items():
            self.assertIsInstance(v, (int, float), f"evidence.{k}" + ctx)
            self.assertGreaterEqual(v, LATE_ANSWER_S - 0.1, f"evidence.{k}" + ctx)

    def test_nonce_expired_stale_true(self):
        """Kamailio configured to say stale=true (www_challenge flag 16)."""
        rec, u = self._late_answer(stale=True, known=None)
        self.assertVerdict(rec, u, verdict="nonce_expired", confidence="certain",
                           challenges=2, final_status=401, user=USER, evidence={"stale": True})
        self.assertDelayEvidence(rec)

    def test_nonce_expired_stock_kamailio_with_known_credentials(self):
        """A stock Kamailio re-challenges an expired nonce without stale=true.
        With the password known, sipwitness can tell the answer was right, so
        the late answer (a fresh nonce in the next challenge) is the cause."""
        rec, u = self._late_answer(stale=False, known=self.write_known_credentials())
        self.assertVerdict(rec, u, verdict="nonce_expired", confidence=None,
                           challenges=2, final_status=401, user=USER)
        self.assertNotEqual(rec.get("evidence", {}).get("stale"), True, json.dumps(rec))
        self.assertDelayEvidence(rec)

    def test_no_credentials_after_flow_timeout(self):
        rec, u, seen = self.run_flow("--no-answer", expect_exit=4)
        self.assertVerdict(rec, u, verdict="no_credentials", confidence=None,
                           challenges=1, final_status=401, user="")
        # not before the flow timeout (minus scheduling slack)
        self.assertGreaterEqual(seen - u.ended, FLOW_TIMEOUT_S - 0.5,
                                "no_credentials written before flow_timeout" + self.context())


class VerdictLoadTest(_Base):
    """Many challenged REGISTER flows: SIPp phone -> sipwitness -> SIPp registrar."""

    FLOWS = int(os.environ.get("E2E_VERDICT_FLOWS", "10000"))
    RATE = int(os.environ.get("E2E_VERDICT_RATE", "500"))

    @classmethod
    def setUpClass(cls):  # SIPp only: no Kamailio, no digest_uac
        if not os.path.exists(kam.SIPP_BIN):
            raise unittest.SkipTest(f"sipp not found ({kam.SIPP_BIN})")

    def test_many_flows_give_valid_json_lines(self):
        flows, rate = self.FLOWS, self.RATE
        budget = flows / rate + 60
        started = time.monotonic()
        prov = self.start_sipp("provider_registrar_challenge.xml", calls=flows, timeout=budget,
                               name="registrar", trace_messages=False)
        with self.sipwitness(upstream_port=prov.port, listen=("udp",), level="info",
                             extra_config=self.diag_config()) as sw:
            self.sw = sw
            phone = self.run_sipp("phone_register_challenge.xml", (harness.HOST, sw.udp_port),
                                  calls=flows, rate=rate, limit=1000, timeout=budget,
                                  name="phone", trace_messages=False)
            provr = prov.wait()
            self.assertTrue(sw.alive(), "sipwitness died under load")
            self.assertSippOk(phone, flows, sw)
            self.assertSippOk(provr, flows, sw)
            sipp_done = time.monotonic()
            # flows end on their 200: every line should be there already; allow
            # the writer a little time to flush
            deadline = time.monotonic() + 20
            while len(self.lines()) < flows and time.monotonic() < deadline:
                time.sleep(0.1)
        elapsed = time.monotonic() - started
        lines = self.lines()
        sys.stderr.write(f"\nverdict load: {flows} flows at {rate}/s: {len(lines)} lines; "
                         f"SIPp {sipp_done - started:.1f}s, total {elapsed:.1f}s\n")
        self.assertEqual(len(lines), flows, "one verdict line per flow"
                         + "\n".join(lines[-5:]) + "\n" + sw.log()[-4000:])
        bad = []
        verdicts: dict[str, int] = {}
        call_ids = set()
        for n, line in enumerate(lines, 1):
            try:
                rec = json.loads(line)
            except ValueError as e:
                bad.append(f"line {n}: not JSON ({e}): {line!r}")
                continue
            if not isinstance(rec, dict) or set(rec) & KEYS != KEYS:
                bad.append(f"line {n}: keys: {line}")
                continue
            verdicts[rec["verdict"]] = verdicts.get(rec["verdict"], 0) + 1
            call_ids.add(rec["call_id"])
            if (rec["verdict"] != "ok_after_challenge" or rec["challenges"] != 1
                    or rec["final_status"] != 200 or rec["method"] != "REGISTER"):
                bad.append(f"line {n}: {line}")
            if HEX32.search(line) or "0123456789abcdef0123456789abcdef" in line:
                bad.append(f"line {n}: full digest: {line}")
        self.assertEqual(bad[:20], [], f"{len(bad)} bad lines; verdicts {verdicts}")
        self.assertEqual(len(call_ids), flows, "a flow got more than one line")


if __name__ == "__main__":
    unittest.main(verbosity=2)
