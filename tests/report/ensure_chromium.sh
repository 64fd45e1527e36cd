#!/bin/sh
# Install Debian's chromium for the headless-browser report test when it is absent (CI).
# Usage: sh tests/report/ensure_chromium.sh   (needs root or sudo; a no-op when chromium exists)
set -e
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
command -v chromium
