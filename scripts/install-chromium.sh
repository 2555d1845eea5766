#!/usr/bin/env bash
# Makes headless Chromium available to the console's browser test and prints its path.
# Uses KEEL_CHROMIUM or /usr/bin/chromium when present; otherwise installs the Debian
# packages chromium and chromium-driver with apt-get (as root, or through sudo), first
# finishing an interrupted dpkg run if apt-get refuses.
set -euo pipefail

if [ -n "${KEEL_CHROMIUM:-}" ]; then
    echo "$KEEL_CHROMIUM"
    exit 0
fi
if [ -x /usr/bin/chromium ]; then
    echo /usr/bin/chromium
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-chromium: no /usr/bin/chromium and no apt-get; install Chromium and set KEEL_CHROMIUM" >&2
    exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
install() {
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver
}
# A machine whose package manager was interrupted refuses every install until dpkg
# finishes its pending configuration; finish it and try once more.
if ! install >&2; then
    echo "install-chromium: apt-get failed; finishing pending dpkg configuration and retrying" >&2
    DEBIAN_FRONTEND=noninteractive $sudo dpkg --configure -a >&2
    install >&2
fi
if [ ! -x /usr/bin/chromium ]; then
    echo "install-chromium: apt-get finished but /usr/bin/chromium is missing; set KEEL_CHROMIUM" >&2
    exit 1
fi
echo /usr/bin/chromium
