#!/bin/sh
# Installs Debian's chromium for the dashboard's browser tests (tests/dashboard), which drive it through
# Playwright's executable_path: Playwright's own browser downloads are not reachable from CI.
set -eu
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
    SUDO="sudo"
fi
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends chromium
