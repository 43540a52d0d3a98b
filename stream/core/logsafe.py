"""What may reach a log line: positions, reasons, and ids only as pseudonyms, all on one line.

A log is read by more people than the data it describes, and a line is the unit operators and
log shippers trust: so record values never go into a log message, an id goes in only as a
keyed hash, and every control character is escaped so that nothing from the wire can start a
new (forged) line.
"""

from __future__ import annotations

import hashlib
import logging
import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def escape(text: str) -> str:
    """``text`` with every control character (newline included) written as a visible escape."""
    return _CONTROL.sub(
        lambda m: (
            m.group().encode("unicode_escape").decode("ascii")
            if m.group() not in "\u2028\u2029"
            else f"\\u{ord(m.group()):04x}"
        ),
        text,
    )


def has_control(text: str) -> bool:
    return _CONTROL.search(text) is not None


def pseudonym(entity_id: str, secret: bytes | None = None) -> str:
    """A stand-in for an id in logs: the deployment's keyed pseudonym (``stream.core.pseudonyms``,
    the same as in its Redis key and outputs) when a secret is set, else a plain SHA-256 prefix
    (never the id itself, though a list of candidate ids can reverse it: set the secret)."""
    if secret:
        from stream.core.pseudonyms import pseudonym as keyed

        return keyed(secret, entity_id)
    return hashlib.sha256(entity_id.encode()).hexdigest()[:32]


class OneLineRecord(logging.LogRecord):
    """A log record whose message can never span lines: whatever a handler or formatter is
    installed (Faust installs its own), the message is escaped; tracebacks keep their lines."""

    def getMessage(self) -> str:
        return escape(super().getMessage())


def install_one_line_logging() -> None:
    logging.setLogRecordFactory(OneLineRecord)
