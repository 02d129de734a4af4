#!/bin/sh
# Installs Debian's Chromium for the browser checks (make screenshots, tests/ui). Playwright drives this
# system browser (its own browser download is not used). Needs root (or sudo) and apt-get.
set -eu
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_browser.sh: no apt-get here; install Chromium yourself (set CHROMIUM_PATH if not /usr/bin/chromium)" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "install_browser.sh: Chromium is missing and installing it needs root: sudo apt-get install chromium" >&2
        exit 1
    fi
fi
echo "installing Debian's chromium (apt-get) ..."
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
command -v chromium
