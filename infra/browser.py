"""What the browser tests need on the machine: Debian's headless Chromium and axe-core from npm.

Both are installed when missing, as the broker's jars are fetched: Chromium with apt (as root; otherwise
the error says what to install), axe-core with npm into var/tools/npm (a pinned version, once).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from infra.proc import TOOLS, InfraError, require

CHROMIUM = Path(os.environ.get("DMP_CHROMIUM", "/usr/bin/chromium"))
AXE_VERSION = "4.10.3"
NPM_HOME = TOOLS / "npm"


def ensure_chromium() -> Path:
    """Debian's `chromium` package; installed with apt-get when this runs as root and it is missing."""
    if CHROMIUM.exists():
        return CHROMIUM
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        raise InfraError(f"{CHROMIUM} is missing. Install Debian's headless browser: apt-get install -y chromium")
    print("Installing Chromium from Debian's packages (once)...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in ([apt, "update", "-qq"], [apt, "install", "-y", "-qq", "chromium"]):
        result = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
        if result.returncode != 0:
            raise InfraError(f"{' '.join(cmd)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    if not CHROMIUM.exists():
        raise InfraError(f"apt installed chromium but {CHROMIUM} is not there")
    return CHROMIUM


def ensure_axe() -> Path:
    """axe-core's built `axe.min.js`, installed from npm into var/tools/npm once."""
    script = NPM_HOME / "node_modules" / "axe-core" / "axe.min.js"
    marker = NPM_HOME / f".axe-{AXE_VERSION}"
    if script.exists() and marker.exists():
        return script
    npm = require("npm", "Install Node.js and npm (Debian: apt-get install npm).")
    print(f"Installing axe-core {AXE_VERSION} from npm (once)...", flush=True)
    NPM_HOME.mkdir(parents=True, exist_ok=True)
    cmd = [npm, "install", "--prefix", str(NPM_HOME), "--no-audit", "--no-fund", "--no-save",
           f"axe-core@{AXE_VERSION}"]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not script.exists():
        raise InfraError(f"npm could not install axe-core {AXE_VERSION}:\n{result.stdout}\n{result.stderr}")
    marker.write_text(AXE_VERSION)
    return script
