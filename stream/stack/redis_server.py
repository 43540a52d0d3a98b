"""Debian's ``redis-server`` started by hand with its own flags (never the systemd service).

Persistent (append-only file): the worker's state survives a Redis restart. Optionally TLS
(``rediss://`` URL, certificates from ``stream.stack.tls``) and an ACL user with a password (the
user and password in FINSTREAM_REDIS_URL); see :func:`config` and docs/security.md.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from urllib.parse import urlsplit

from stream.settings import Settings
from stream.stack import tls
from stream.stack.procs import Refusal, StackError, apt_install

NAME = "redis"
HINT = "Install it with: apt-get install -y redis-server (as root)"


def binary() -> str | None:
    return shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if Path(p).exists()), None
    )


def install() -> bool:
    """Install redis-server via apt when missing (root only). True if it installed something."""
    if binary():
        return False
    if os.geteuid() != 0:
        raise StackError(f"redis-server is not installed and we are not root. {HINT}")
    apt_install(["redis-server"], HINT)
    return True


def stack_dir(settings: Settings) -> Path:
    return settings.stack_path / NAME


def pid_file(settings: Settings) -> Path:
    return stack_dir(settings) / "redis.pid"


def log_file(settings: Settings) -> Path:
    return stack_dir(settings) / "redis.log"


def marker(settings: Settings) -> str:
    return "redis-server"  # redis rewrites its process title to "redis-server 127.0.0.1:<port>"


def ports(settings: Settings) -> list[int]:
    return [settings.redis_host_port[1]]


# Data commands, scripts and connection handshakes on any key (each deployment picks its own key
# prefix; production narrows ``~*`` to ``~<prefix>:*``); nothing administrative or dangerous.
ACL_RULES = "~* resetchannels -@all +@read +@write +@keyspace +@scripting +@connection -@dangerous"


def config(settings: Settings) -> str:
    """redis.conf for the local server, written 0600 (it may hold a password, which a command line
    would show to every local user). Persistence: append-only file, fsync every second, so a
    restart keeps the worker's state (issue 7 item 4); ``noeviction``: a full Redis refuses writes
    (the worker retries) instead of silently dropping state keys."""
    url = urlsplit(settings.redis_url.get_secret_value())
    _, port = settings.redis_host_port
    data = stack_dir(settings) / "data"
    lines = [
        "bind 127.0.0.1",
        f"dir {data}",
        "daemonize no",
        'logfile ""',
        "protected-mode yes",
        "appendonly yes",
        "appendfsync everysec",
        'save ""',
        "maxmemory-policy noeviction",
    ]
    if url.scheme == "rediss":
        t = tls.ensure_server_tls(settings)
        lines += [
            "port 0",
            f"tls-port {port}",
            f"tls-cert-file {t.cert}",
            f"tls-key-file {t.key}",
            f"tls-ca-cert-file {t.ca}",
            f"tls-auth-clients {'optional' if settings.redis_ssl_certfile else 'no'}",
        ]
    else:
        lines.append(f"port {port}")
    user, password = url.username, url.password
    if password and any(c.isspace() or c in "\"'" for c in password + (user or "")):
        raise StackError("the local stack's Redis user/password must not contain spaces or quotes")
    if user and user != "default":
        # The worker's own ACL user with what the worker needs and no administration (docs/security.md);
        # the passwordless default user is switched off.
        # The password is stored as its SHA-256 (Redis ACL ``#<hash>``): the file does not reveal it.
        digest = hashlib.sha256(password.encode()).hexdigest() if password else None
        lines += [f"user {user} on {'#' + digest if digest else 'nopass'} {ACL_RULES}", "user default off"]
    elif password:
        lines.append(f"requirepass {password}")
    return "".join(f"{line}\n" for line in lines)


def prepare(settings: Settings) -> list[str]:
    """Write redis.conf and return the server's argv (installing it first when possible)."""
    host, port = settings.redis_host_port
    if host not in ("127.0.0.1", "localhost"):
        raise StackError(f"FINSTREAM_REDIS_URL points at {host}; `finstream stack` only runs a local Redis")
    install()
    exe = binary()
    if not exe:
        raise StackError(f"redis-server not found. {HINT}")
    (stack_dir(settings) / "data").mkdir(parents=True, exist_ok=True)
    conf = stack_dir(settings) / "redis.conf"
    conf.write_text(config(settings))
    conf.chmod(0o600)
    return [exe, str(conf)]


def client(settings: Settings, timeout: float = 2.0):
    from stream.state.redis_store import connect

    return connect(settings, sync=True, socket_timeout=timeout, socket_connect_timeout=timeout)


def explain(settings: Settings, exc: BaseException) -> str:
    """One line saying why Redis refused us, naming the setting to fix; never the password.
    Credential and certificate problems come back as :class:`Refusal` (waiting will not fix them)."""
    import redis

    where = f"Redis at {settings.redis_url_redacted}"
    text = " ".join(str(exc).split())
    password = urlsplit(settings.redis_url.get_secret_value()).password
    kind = Refusal
    if (
        "NOAUTH" in text
        or "Authentication required" in text
        or (isinstance(exc, redis.AuthenticationError) and not password)
    ):
        line = f"{where} requires a user and password: put them in FINSTREAM_REDIS_URL (rediss://user:password@host:port/0)"
    elif isinstance(exc, redis.AuthenticationError) or "WRONGPASS" in text or "invalid username-password" in text:
        line = (
            f"{where} refused user {settings.redis_username or 'default'!r}: wrong username or password "
            "(FINSTREAM_REDIS_URL)"
        )
    elif "CERTIFICATE_VERIFY_FAILED" in text:
        line = f"{where}: its TLS certificate is not trusted; set FINSTREAM_REDIS_SSL_CAFILE to the CA that signed it"
    elif settings.redis_tls and ("SSL" in text or "EOF" in text):
        line = f"{where}: TLS handshake failed ({text}); does the server speak TLS on that port?"
    else:
        kind = str
        line = f"{where} is not reachable: {text}"
    return kind(line.replace(password, "***") if password else line)


def check(settings: Settings, timeout: float = 2.0) -> str | None:
    """None when the server accepts our credentials and answers PING, else why not."""
    try:
        with client(settings, timeout) as r:
            r.ping()
        return None
    except Exception as exc:
        return explain(settings, exc)


def ready(settings: Settings, timeout: float = 2.0) -> bool:
    """True when the server answers PING."""
    return check(settings, timeout) is None
