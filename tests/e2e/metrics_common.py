"""Reading sipwitness's /metrics in the e2e tests (test_metrics.py, test_workers.py)."""

from __future__ import annotations

import re
import urllib.error
import urllib.request

from harness import HOST

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def scrape(port: int, path: str = "/metrics", method: str = "GET", timeout: float = 5.0):
    """(status, content type, body) of an HTTP request to the metrics listener."""
    req = urllib.request.Request(f"http://{HOST}:{port}{path}", method=method,
                                 data=b"x" if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def parse(text: str) -> dict[str, float]:
    """Samples by 'name{labels}'; asserts the line structure of the format."""
    samples, typed = {}, set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        assert m.group(1) in typed, f"sample before its # TYPE: {line!r}"
        samples[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return samples
