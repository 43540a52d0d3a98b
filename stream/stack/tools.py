"""Debian tools the test suite and operators need besides the servers: headless Chromium with its
driver (the dashboard's browser test) and promtool (checks the Prometheus config and alert rules
in docs/ops). ``finstream stack install`` adds them with apt when missing (root only), so a fresh
CI machine has them; without root it says what to install instead.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from stream.stack.procs import StackError

CHROMEDRIVER = "/usr/bin/chromedriver"
# binary -> Debian package that provides it
PACKAGES = {"chromium": "chromium", "chromedriver": "chromium-driver", "promtool": "prometheus",
            "openssl": "openssl"}  # openssl: certificates of a secured local stack (stream.stack.tls)


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
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    policy = Path("/usr/sbin/policy-rc.d")
    made_policy = not policy.exists()
    if made_policy:  # keep the prometheus package from starting a system Prometheus on :9090
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *pkgs]
    try:
        if subprocess.run(cmd, env=env).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, check=False)
            if subprocess.run(cmd, env=env).returncode != 0:
                raise StackError(f"apt-get could not install {', '.join(pkgs)}. Try: {hint}")
    finally:
        if made_policy:
            policy.unlink(missing_ok=True)
    return pkgs
