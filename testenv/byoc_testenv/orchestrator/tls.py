"""A throw-away self-signed certificate, like the one go-livepeer makes for its HTTPS port.

Made with the ``openssl`` command line (the ``cryptography`` package is not a dependency here). The
certificate names ``localhost`` and ``127.0.0.1`` and is its own CA, so a client can either skip
verification (what registrars do by default against orchestrators) or trust ``cert_file`` as a CA bundle.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


class CertificateError(RuntimeError):
    pass


@dataclass(frozen=True)
class SelfSignedCertificate:
    directory: Path
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts exactly this certificate."""
        return ssl.create_default_context(cafile=str(self.cert_file))

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def make_self_signed(common_name: str = "localhost", days: int = 2) -> SelfSignedCertificate:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise CertificateError("the openssl command is needed to make a TLS certificate")
    directory = Path(tempfile.mkdtemp(prefix="byoc-test-orch-tls-"))
    cert, key = directory / "cert.pem", directory / "key.pem"
    cmd = [
        openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(key), "-out", str(cert), "-days", str(days), "-subj", f"/CN={common_name}",
        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,digitalSignature,keyCertSign",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0:
        shutil.rmtree(directory, ignore_errors=True)
        raise CertificateError(f"openssl failed: {proc.stderr.strip()}")
    return SelfSignedCertificate(directory, cert, key)
