#!/usr/bin/env bash
# Installs the independent feed validators used by tests/validators/:
#   - jing (Debian package, Java) for tests/fixtures/validators/atom.rnc
#   - Python feedparser + jsonschema for tests/validators/feedcheck.py
# Idempotent; meant to run as root on Debian bookworm with access to Debian's
# packages and PyPI only. Safe to run again: it installs only what is missing.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

apt_updated=0
apt_install() { # apt_install PKG... (updates the package lists once, if needed)
  if [ "$apt_updated" -eq 0 ]; then
    $SUDO apt-get update -qq
    apt_updated=1
  fi
  $SUDO apt-get install -y -qq "$@"
}

# 1. jing (Depends: default-jre | java-runtime, so a JRE comes with it).
if ! command -v jing >/dev/null 2>&1; then
  apt_install jing
fi
if ! command -v java >/dev/null 2>&1; then
  apt_install default-jre-headless
fi

# 2. python3 itself.
if ! command -v python3 >/dev/null 2>&1; then
  apt_install python3
fi

# 3. feedparser + jsonschema for whichever python3 is first on PATH.
have_py_modules() { python3 -c 'import feedparser, jsonschema' >/dev/null 2>&1; }
if ! have_py_modules; then
  py="$(command -v python3)"
  if [ "$(readlink -f "$py")" = "$(readlink -f /usr/bin/python3 2>/dev/null || true)" ]; then
    # Debian's own python3 is externally managed (PEP 668): use its packages.
    apt_install python3-feedparser python3-jsonschema
  else
    # A separate interpreter (pyenv, venv, ...): install from PyPI.
    python3 -m pip --version >/dev/null 2>&1 || python3 -m ensurepip --upgrade
    python3 -m pip install --quiet feedparser jsonschema
  fi
fi
if ! have_py_modules; then
  # Last resort for an externally managed interpreter without Debian packages.
  python3 -m pip install --quiet --break-system-packages feedparser jsonschema
fi

# 4. Report what is there; fail loudly if anything is still missing.
command -v jing >/dev/null
command -v java >/dev/null
python3 - <<'EOF'
import feedparser, jsonschema, sys
from importlib.metadata import version
print("install-validators: python3 %s, feedparser %s, jsonschema %s"
      % (sys.version.split()[0], feedparser.__version__, version("jsonschema")))
EOF
echo "install-validators: jing $(dpkg-query -W -f='${Version}' jing 2>/dev/null || echo '?') at $(command -v jing), java at $(command -v java)"
