#!/usr/bin/env bash
# Set up everything sohoa needs on a fresh Debian/Ubuntu machine: system packages, a virtualenv
# in .venv and the project installed into it. Safe to run again; it only installs what is missing.
#   scripts/bootstrap.sh          runtime (Tesseract with Vietnamese, Poppler, fonts)
#   scripts/bootstrap.sh --test   + what the test suite needs (SeaweedFS S3 server, docker-compose)
set -euo pipefail
cd "$(dirname "$0")/.."

with_test=0
[ "${1:-}" = "--test" ] && with_test=1

apt_packages=(tesseract-ocr tesseract-ocr-vie tesseract-ocr-osd poppler-utils fonts-liberation2
              fonts-dejavu-core python3-venv)
# chromium: the browser tests (Playwright, executable_path); softhsm2: the PKCS#11 signing test;
# libnss3-tools: certutil, an NSS database with the TEST CA for pdfsig
[ "$with_test" = 1 ] && apt_packages+=(docker-compose chromium softhsm2 libnss3-tools)

missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "bootstrap: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
if [ "$with_test" = 1 ]; then
  .venv/bin/python -m pip install -q -e ".[test]"
else
  .venv/bin/python -m pip install -q -e .
fi
# Byte-compile the project once: an editable install does not, and where PYTHONDONTWRITEBYTECODE is
# set every `sohoa` command compiled ~30 modules from source again (~60 ms of each start-up).
.venv/bin/python -m compileall -q -j 0 cli pipeline models storage flows web >/dev/null
echo "bootstrap: ready ($(.venv/bin/python --version), $(tesseract --version 2>&1 | head -n1))" >&2
