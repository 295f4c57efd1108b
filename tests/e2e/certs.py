"""Test PKI for the TLS end-to-end tests, made with the `openssl` command line.

    pki = certs.TestPki(directory)      # everything below, in about 0.2 s
    pki.ca.cert                         # CA (self-signed, CA:TRUE)
    pki.server                          # sipwitness's listener: CN=localhost,
                                        #   SAN DNS:localhost, IP:127.0.0.1
    pki.provider                        # the TLS provider: CN=provider.test,
                                        #   SAN DNS:provider.test, URI:sip:provider.test
    pki.phone                           # a phone's client certificate (CN=phone-1001)
    pki.stranger                        # self-signed, CN=stranger.test (not from the CA)
    pki.wrong_name                      # from the CA, but for wrong.test only
    pki.issue("server-2", cn=..., dns=[...], ips=[...], uris=[...])  # one more

Every leaf is a `Cert` (cert, key: paths; combined(): cert+key in one PEM, as
baresip's sip_certificate wants it; serial: int). Keys are EC P-256 (fast),
certificates valid for two days from now, SHA-256. Leaves carry both
serverAuth and clientAuth, so any of them can stand on either side.

Nothing here is committed: the tests generate a fresh PKI per run in a
temporary directory (private keys included) and delete it afterwards.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

OPENSSL = shutil.which("openssl") or "openssl"
OPENSSL_TIMEOUT = 20.0

_serials = itertools.count(0x5100 + (os.getpid() % 0x1000) * 0x100)


class PkiError(RuntimeError):
    pass


@dataclass
class Cert:
    name: str
    cert: Path
    key: Path
    serial: int
    cn: str

    def combined(self) -> Path:
        """cert + key in one PEM file (baresip's sip_certificate); made on first use."""
        path = self.cert.with_name(f"{self.name}.combined.pem")
        if not path.exists():
            path.write_bytes(self.cert.read_bytes() + self.key.read_bytes())
            path.chmod(0o600)
        return path


def openssl(*args: str, cwd: Path | None = None) -> str:
    try:
        proc = subprocess.run([OPENSSL, *args], capture_output=True, text=True, cwd=cwd,
                              timeout=OPENSSL_TIMEOUT, stdin=subprocess.DEVNULL)
    except FileNotFoundError as e:
        raise PkiError(f"openssl not found ({OPENSSL})") from e
    if proc.returncode != 0:
        raise PkiError(f"openssl {' '.join(args)}: exit {proc.returncode}\n{proc.stderr}")
    return proc.stdout


def _key(path: Path) -> None:
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path))
    path.chmod(0o600)


def _san(dns=(), ips=(), uris=()) -> str:
    parts = [f"DNS:{d}" for d in dns] + [f"IP:{i}" for i in ips] + [f"URI:{u}" for u in uris]
    return ",".join(parts)


class TestPki:
    """A CA and the leaves the TLS tests need, generated into `directory`."""

    __test__ = False  # not a unittest/pytest test class

    def __init__(self, directory: str | Path):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca = self._make_ca("ca", "sipwitness e2e test CA")
        self.server = self.issue("server", cn="localhost", dns=["localhost"], ips=["127.0.0.1"])
        self.provider = self.issue("provider", cn="provider.test", dns=["provider.test"],
                                   uris=["sip:provider.test"])
        self.phone = self.issue("phone", cn="phone-1001", dns=["phone-1001.example.test"])
        self.stranger = self.self_signed("stranger", cn="stranger.test", dns=["stranger.test"])
        self.wrong_name = self.issue("wrong-name", cn="wrong.test", dns=["wrong.test"],
                                     uris=["sip:wrong.test"])

    # -- building blocks ------------------------------------------------------
    def _make_ca(self, name: str, cn: str) -> Cert:
        cert, key = self.dir / f"{name}.pem", self.dir / f"{name}.key"
        _key(key)
        serial = next(_serials)
        openssl("req", "-x509", "-new", "-key", str(key), "-sha256", "-days", "2",
                "-subj", f"/O=sipwitness e2e/CN={cn}", "-set_serial", str(serial),
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                "-out", str(cert))
        return Cert(name, cert, key, serial, cn)

    def _extfile(self, name: str, san: str) -> Path:
        ext = self.dir / f"{name}.ext"
        lines = ["basicConstraints=critical,CA:FALSE",
                 "keyUsage=critical,digitalSignature,keyAgreement",
                 "extendedKeyUsage=serverAuth,clientAuth",
                 "subjectKeyIdentifier=hash"]
        if san:
            lines.append(f"subjectAltName={san}")
        ext.write_text("\n".join(lines) + "\n")
        return ext

    def issue(self, name: str, *, cn: str, dns=(), ips=(), uris=(), ca: Cert | None = None) -> Cert:
        """A leaf signed by the CA (or `ca`): name.pem / name.key in the directory."""
        ca = ca or self.ca
        cert, key, csr = self.dir / f"{name}.pem", self.dir / f"{name}.key", self.dir / f"{name}.csr"
        _key(key)
        openssl("req", "-new", "-key", str(key), "-subj", f"/O=sipwitness e2e/CN={cn}", "-out", str(csr))
        serial = next(_serials)
        openssl("x509", "-req", "-in", str(csr), "-CA", str(ca.cert), "-CAkey", str(ca.key),
                "-set_serial", str(serial), "-days", "2", "-sha256",
                "-extfile", str(ext := self._extfile(name, _san(dns, ips, uris))), "-out", str(cert))
        csr.unlink()
        ext.unlink()
        return Cert(name, cert, key, serial, cn)

    def self_signed(self, name: str, *, cn: str, dns=(), ips=(), uris=()) -> Cert:
        """A self-signed leaf (CA:FALSE): trusted by nobody."""
        cert, key = self.dir / f"{name}.pem", self.dir / f"{name}.key"
        _key(key)
        serial = next(_serials)
        args = ["req", "-x509", "-new", "-key", str(key), "-sha256", "-days", "2",
                "-subj", f"/O=sipwitness e2e/CN={cn}", "-set_serial", str(serial),
                "-addext", "basicConstraints=critical,CA:FALSE",
                "-addext", "extendedKeyUsage=serverAuth,clientAuth"]
        san = _san(dns, ips, uris)
        if san:
            args += ["-addext", f"subjectAltName={san}"]
        openssl(*args, "-out", str(cert))
        return Cert(name, cert, key, serial, cn)

    @staticmethod
    def text(cert: Cert | Path) -> str:
        """`openssl x509 -text` of a certificate (for failure messages)."""
        path = cert.cert if isinstance(cert, Cert) else cert
        return openssl("x509", "-in", str(path), "-noout", "-text")


if __name__ == "__main__":  # python3 certs.py DIR: make a PKI there and describe it
    import sys
    import time

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "pki")
    t0 = time.monotonic()
    pki = TestPki(target)
    print(f"generated in {time.monotonic() - t0:.2f}s into {target}")
    for c in (pki.ca, pki.server, pki.provider, pki.phone, pki.stranger, pki.wrong_name):
        print(f"{c.name:12} serial={c.serial:#x} CN={c.cn} {c.cert}")
