"""Debian tools the test suite and operators need besides the servers: headless Chromium with its
driver (the dashboard's browser test) and promtool (checks the Prometheus config and alert rules
in docs/ops). ``finstream stack install`` adds them with apt when missing (root only), so a fresh
CI machine has them; without root it says what to install instead.
"""

from __future__ import annotations

import os
import shutil

from stream.stack.procs import StackError, apt_install

CHROMEDRIVER = "/usr/bin/chromedriver"
# binary -> Debian package that provides it
PACKAGES = {
    "chromium": "chromium",
    "chromedriver": "chromium-driver",
    "promtool": "prometheus",
    "openssl": "openssl",
}  # openssl: certificates of a secured local stack (stream.stack.tls)


def chromium_binary() -> str:
    return shutil.which("chromium") or "/usr/bin/chromium"


def missing() -> list[str]:
    return [pkg for binary, pkg in PACKAGES.items() if shutil.which(binary) is None]


def install() -> list[str]:
    """apt-get the missing packages (no recommends; services not started). Returns what it installed."""
    pkgs = missing()
    if not pkgs:
        return []
    hint = f"apt-get install -y {' '.join(pkgs)}"
    if os.geteuid() != 0:
        raise StackError(f"{', '.join(pkgs)} not installed and we are not root. Install them with: {hint}")
    apt_install(pkgs, f"Try: {hint}")
    return pkgs
