"""Certificates for the local stack's TLS listeners, made with ``openssl`` on first start.

Why generated here and not shipped: a key committed to a repository is public. Each stack directory
gets its own throw-away CA (``tls/ca.pem``, which clients name in FINSTREAM_KAFKA_SSL_CAFILE /
FINSTREAM_REDIS_SSL_CAFILE) and one server certificate for 127.0.0.1 / localhost signed by it.
Keys are written 0600 and never leave the stack directory.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from stream.settings import Settings
from stream.stack.procs import StackError, require_binary

HINT = "The local stack makes its TLS certificates with openssl: apt-get install -y openssl"
DAYS = "825"


@dataclass(frozen=True)
class ServerTLS:
    ca: Path  # CA certificate (PEM): what clients trust
    cert: Path  # server certificate (PEM)
    key: Path  # server private key (PEM, PKCS#8, unencrypted, 0600)
    keystore: Path  # key + certificate in one PEM file: Kafka's PEM keystore


def tls_dir(settings: Settings) -> Path:
    return settings.stack_path / "tls"


def _openssl(*args: str) -> None:
    exe = require_binary("openssl", HINT)
    done = subprocess.run([exe, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise StackError(f"openssl {args[0]} failed: {(done.stdout + done.stderr)[-1500:]}")


def ensure_server_tls(settings: Settings) -> ServerTLS:
    """The stack's CA and server certificate, created once per stack directory."""
    d = tls_dir(settings)
    t = ServerTLS(d / "ca.pem", d / "server.pem", d / "server-key.pem", d / "server-keystore.pem")
    if all(p.exists() for p in (t.ca, t.cert, t.key, t.keystore)):
        return t
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    ca_key, csr, ext = d / "ca-key.pem", d / "server.csr", d / "server.ext"
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(ca_key),
        "-out",
        str(t.ca),
        "-days",
        DAYS,
        "-subj",
        "/CN=finstream local stack CA",
    )
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(t.key), "-out", str(csr), "-subj", "/CN=localhost")
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(t.ca),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-out",
        str(t.cert),
        "-days",
        DAYS,
        "-extfile",
        str(ext),
    )
    t.keystore.write_text(t.key.read_text() + t.cert.read_text())
    for p in (ca_key, t.key, t.keystore):
        os.chmod(p, 0o600)
    csr.unlink(missing_ok=True)
    return t
