#!/usr/bin/env python3
"""`sipwitness analyze FILE --format html --out PATH`: the report of a hand-written
multi-flow text trace (tests/data/traces/analyze_multi_flow.txt), read as HTML and
rendered by headless Chromium (Debian package `chromium`): every Call-ID shows its
verdict, hostile text from the trace stays text, nothing is fetched from outside,
and a screenshot of the page has real content. The Chromium checks are skipped,
with the reason, when the `chromium` binary is absent."""

import os
import shutil
import signal
import struct
import subprocess
import sys
import unittest
from html.parser import HTMLParser
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import REPO_ROOT, SANITIZER_MARKERS, E2ETestCase, sipwitness_binary  # noqa: E402

TRACE = REPO_ROOT / "tests" / "data" / "traces" / "analyze_multi_flow.txt"
CHROMIUM = shutil.which("chromium")
NO_CHROMIUM = "chromium is not installed (Debian package `chromium`): the report is not rendered"
CHROMIUM_TIMEOUT = 90  # seconds; the whole process group is killed after it

# Call-ID -> (verdict, confidence) for the trace, from FlowTracker::analyze. The
# INVITE's confidence is left to the analyzer: the trace ends before flow_timeout,
# so whether the phone gave up is an inference about time the capture never saw.
EXPECTED = {
    "reg-1001-7f3a@192.0.2.10": ("ok_after_challenge", "certain"),  # 401, right answer, 200
    "reg-1003-41c8@192.0.2.13": ("realm_mismatch", "certain"),  # answers for pbx.local
    "inv-1001-2000-9b2e@192.0.2.10": ("no_credentials", None),  # 407, ACK, nothing more
    "reg-1002-d05f@192.0.2.12": ("wrong_password", "likely"),  # consistent answer, fresh 401
    "inv-1001-3000-5c71@192.0.2.10": ("ok_after_challenge", "certain"),  # 407, retry, 200, BYE
}

HOSTILE_CALL_ID = '<script>alert("x")</script>@evil.example'


def hostile_trace() -> bytes:
    """One REGISTER challenged and never answered, whose Call-ID and display
    name are HTML (both legal SIP: Call-ID words allow < > " and /)."""
    headers = [
        "Via: SIP/2.0/UDP 192.0.2.66:5060;branch=z9hG4bK-evil-1",
        'From: "Tom & <b>Jerry</b>" <sip:666@example.test>;tag=e666',
        "To: <sip:666@example.test>",
        f"Call-ID: {HOSTILE_CALL_ID}",
    ]
    request = ["REGISTER sip:example.test SIP/2.0", *headers, "CSeq: 1 REGISTER", "Max-Forwards: 70",
               "Content-Length: 0"]
    challenge = ["SIP/2.0 401 Unauthorized", *headers[:2], "To: <sip:666@example.test>;tag=s1", headers[3],
                 "CSeq: 1 REGISTER", 'WWW-Authenticate: Digest realm="<i>evil</i>", nonce="n&1", algorithm=MD5',
                 "Content-Length: 0"]
    return ("\r\n".join(request) + "\r\n\r\n\r\n" + "\r\n".join(challenge) + "\r\n\r\n").encode()


class Report(HTMLParser):
    """What a reader sees per call section: its attributes, the Call-ID, the
    verdict names and confidences, and all of its text; plus every tag name and
    every URL-bearing attribute of the page."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.sections: list[dict] = []
        self.tags: list[str] = []
        self.urls: list[str] = []
        self._depth = 0  # open <section> elements inside the current call section
        self._capture: str | None = None  # the field the current text belongs to
        self._capture_tag = ""
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        for name in ("src", "href", "xlink:href", "action", "data", "poster"):
            if a.get(name):
                self.urls.append(a[name])
        cls = (a.get("class") or "").split()
        if tag == "section" and "call" in cls and not self._depth:
            self.sections.append({"id": a.get("id"), "verdict_attr": a.get("data-verdict"),
                                  "call_id_attr": a.get("data-call-id"), "classes": cls,
                                  "call_id": "", "kinds": [], "confs": [], "text": "", "ladder": False})
            self._depth = 1
            return
        if tag == "section" and self._depth:
            self._depth += 1
        if not self._depth:
            return
        if tag == "svg" and (a.get("aria-label") or "").startswith("Ladder diagram"):
            self.sections[-1]["ladder"] = True
        field = None
        if tag == "code" and "cid" in cls:
            field = "call_id"
        elif tag == "span" and "kind" in cls:
            field = "kinds"
        elif tag == "span" and "conf" in cls:
            field = "confs"
        if field:
            self._capture, self._capture_tag = field, tag
            if field != "call_id":
                self.sections[-1][field].append("")

    def handle_endtag(self, tag):
        if self._capture and tag == self._capture_tag:
            self._capture = None
        if tag == "section" and self._depth:
            self._depth -= 1

    def handle_data(self, data):
        if not self._depth:
            return
        s = self.sections[-1]
        s["text"] += data
        if self._capture == "call_id":
            s["call_id"] += data
        elif self._capture:
            s[self._capture][-1] += data


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise AssertionError(f"{path} is not a PNG")
    return struct.unpack(">II", data[16:24])


class AnalyzeHtml(E2ETestCase):
    def analyze(self, trace: Path, out: Path) -> str:
        binary = sipwitness_binary()
        self.assertTrue(Path(binary).exists(), f"binary not found: {binary} (set SIPWITNESS_BIN)")
        p = subprocess.run([binary, "analyze", str(trace), "--format", "html", "--out", str(out)],
                           capture_output=True, text=True, timeout=60, cwd=self.tmp, stdin=subprocess.DEVNULL)
        for marker in SANITIZER_MARKERS:
            self.assertNotIn(marker, p.stderr, f"sanitizer report:\n{p.stderr}")
        self.assertEqual(p.returncode, 0, f"analyze failed\nstdout:{p.stdout}\nstderr:{p.stderr}")
        self.assertTrue(out.is_file(), f"no report written at {out}")
        return out.read_text(encoding="utf-8")

    def chromium(self, *args: str) -> subprocess.CompletedProcess:
        """Headless Chromium in its own profile and process group, bounded in time."""
        profile = self.tmp / f"chromium-profile-{len(list(self.tmp.glob('chromium-profile-*')))}"
        cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
               "--no-first-run", "--no-default-browser-check", "--disable-extensions",
               "--disable-background-networking", "--disable-sync", "--hide-scrollbars", *args]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                cwd=self.tmp, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=CHROMIUM_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the browser and the helpers it started
            proc.communicate()
            self.fail(f"chromium did not finish within {CHROMIUM_TIMEOUT}s: {' '.join(cmd)}")
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # helpers that outlived the browser
            except ProcessLookupError:
                pass
        return subprocess.CompletedProcess(cmd, proc.returncode, out.decode("utf-8", "replace"),
                                           err.decode("utf-8", "replace"))

    def dump_dom(self, page: Path) -> str:
        p = self.chromium("--virtual-time-budget=5000", "--dump-dom", page.resolve().as_uri())
        self.assertEqual(p.returncode, 0, f"chromium --dump-dom failed:\n{p.stderr[-3000:]}")
        self.assertIn("</html>", p.stdout, f"no DOM from chromium:\n{p.stderr[-3000:]}")
        return p.stdout

    def assertSelfContained(self, page: Report, text: str, where: str) -> None:
        lowered = text.lower()
        for needle in ("http://", "https://", "javascript:", "@import"):
            self.assertNotIn(needle, lowered, f"{where}: {needle!r} in the page")
        self.assertNotIn("script", page.tags, f"{where}: a <script> element")
        for tag in ("link", "img", "iframe", "object", "embed"):
            self.assertNotIn(tag, page.tags, f"{where}: a <{tag}> element")
        for url in page.urls:
            self.assertTrue(url.startswith("#"), f"{where}: a link out of the page: {url!r}")

    def assertVerdicts(self, page: Report, where: str) -> None:
        by_call_id = {s["call_id_attr"]: s for s in page.sections}
        self.assertEqual(sorted(by_call_id), sorted(EXPECTED), f"{where}: call sections")
        for call_id, (kind, confidence) in EXPECTED.items():
            with self.subTest(where=where, call_id=call_id):
                s = by_call_id[call_id]
                self.assertTrue(s["id"] and s["id"].startswith("call-"), s["id"])
                self.assertEqual(s["verdict_attr"], kind)
                self.assertEqual(s["call_id"], call_id)  # shown as text, not only as an attribute
                self.assertEqual(s["kinds"], [kind])
                if confidence:
                    self.assertEqual(s["confs"], [confidence])
                self.assertIn("pass" if kind.startswith("ok") else "fail", s["classes"])
                self.assertTrue(s["ladder"], "no ladder diagram in the section")
        realm = by_call_id["reg-1003-41c8@192.0.2.13"]["text"]
        self.assertIn("pbx.local", realm)  # the evidence: the realm the phone answered for
        self.assertIn("example.test", realm)
        invite = by_call_id["inv-1001-2000-9b2e@192.0.2.10"]["text"]
        self.assertIn("407 Proxy Authentication Required", invite)  # the arrow's label in the diagram
        self.assertIn("SHA-256", invite)  # offered algorithms

    def test_report_lists_every_call_with_its_verdict(self):
        out = self.tmp / "report.html"
        text = self.analyze(TRACE, out)
        page = Report(text)
        self.assertSelfContained(page, text, "report.html")
        self.assertVerdicts(page, "report.html")
        # Arrows highlighted: the 7 challenges (401/407) and the 4 credentialed retries in the trace.
        self.assertEqual(text.count('<g class="m chal"'), 7)
        self.assertEqual(text.count('<g class="m cred"'), 4)
        self.assertIn("analyze_multi_flow.txt", text)
        self.assertIn("26 SIP messages", text)

    @unittest.skipUnless(CHROMIUM, NO_CHROMIUM)
    def test_report_renders_in_chromium(self):
        out = self.tmp / "report.html"
        self.analyze(TRACE, out)
        dom = self.dump_dom(out)
        page = Report(dom)
        self.assertSelfContained(page, dom, "rendered DOM")
        self.assertVerdicts(page, "rendered DOM")

        shot = self.tmp / "report.png"
        p = self.chromium(f"--screenshot={shot}", "--window-size=1280,2000", out.resolve().as_uri())
        self.assertEqual(p.returncode, 0, f"chromium --screenshot failed:\n{p.stderr[-3000:]}")
        self.assertTrue(shot.is_file(), f"no screenshot written:\n{p.stderr[-3000:]}")
        self.assertEqual(png_size(shot), (1280, 2000))
        # A blank page of that size compresses to a few KiB; the report's text,
        # colours and diagrams do not.
        blank = self.tmp / "blank.html"
        blank.write_text("<!DOCTYPE html><html><body></body></html>")
        blank_shot = self.tmp / "blank.png"
        self.chromium(f"--screenshot={blank_shot}", "--window-size=1280,2000", blank.resolve().as_uri())
        self.assertTrue(blank_shot.is_file())
        self.assertGreater(shot.stat().st_size, 40_000)
        self.assertGreater(shot.stat().st_size, 10 * blank_shot.stat().st_size)

    def test_hostile_text_stays_text(self):
        trace = self.tmp / "hostile.txt"
        trace.write_bytes(hostile_trace())
        out = self.tmp / "hostile.html"
        text = self.analyze(trace, out)
        pages = [("hostile.html", text)]
        if CHROMIUM:
            pages.append(("rendered DOM", self.dump_dom(out)))
        for where, html in pages:
            with self.subTest(where=where):
                page = Report(html)
                self.assertSelfContained(page, html, where)
                self.assertEqual(len(page.sections), 1)
                s = page.sections[0]
                self.assertEqual(s["call_id_attr"], HOSTILE_CALL_ID)
                self.assertEqual(s["call_id"], HOSTILE_CALL_ID)
                self.assertEqual(s["kinds"], ["no_credentials"])
                # Markup in the challenge is shown as text (evidence and the arrow's auth line).
                self.assertIn("<i>evil</i>", s["text"])


if __name__ == "__main__":
    unittest.main()
