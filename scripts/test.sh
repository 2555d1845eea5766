#!/usr/bin/env bash
# The one test command: installs what the tests need (valkey-server, Chromium), then runs the format check,
# clippy with warnings as errors, the engine's purity checks, the whole test suite and
# the madsim simulation of the coordinator and workers.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n== %s\n' "$*"; }

# KEEL_TEST_PRUNE=1 (set by .ci/run) deletes each build once no later step needs it: the
# suite links more than a hundred test binaries, and a CI machine's disk may be short.
prune() {
    if [ "${KEEL_TEST_PRUNE:-0}" = 1 ] && [ -z "${CARGO_TARGET_DIR:-}" ]; then
        rm -rf "$1"
    fi
}
prune_test_binaries() {
    if [ "${KEEL_TEST_PRUNE:-0}" = 1 ] && [ -z "${CARGO_TARGET_DIR:-}" ]; then
        find target/debug/deps -maxdepth 1 -type f -executable ! -name '*.*' -delete
    fi
}

step "toolchain components"
if command -v rustup >/dev/null 2>&1; then
    rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi

step "valkey-server"
KEEL_VALKEY_SERVER="$(scripts/install-valkey.sh)"
export KEEL_VALKEY_SERVER
echo "using $KEEL_VALKEY_SERVER"

step "chromium (the console's browser test)"
KEEL_CHROMIUM="$(scripts/install-chromium.sh)"
export KEEL_CHROMIUM
echo "using $KEEL_CHROMIUM"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "function lengths: none over 70 lines outside tests"
scripts/fn-lengths.sh 70

step "engine purity: builds alone and depends on no runtime or I/O crate"
cargo build -p keel-engine --locked
forbidden=$(cargo tree -p keel-engine -e normal --prefix none --locked \
    | grep -E '^(tokio|async-std|mio|redis|redb|tonic|hyper|reqwest|rand|getrandom) ' || true)
if [ -n "$forbidden" ]; then
    echo "keel-engine must not depend on: $forbidden" >&2
    exit 1
fi

step "cargo test"
cargo test --workspace --locked

step "nemesis: real keel serve, workers and valkey-server SIGKILLed during twenty jobs, a takeover"
# --workspace keeps the feature set of the step above, so nothing is rebuilt.
cargo test --workspace --test nemesis --locked -- --ignored --nocapture --test-threads=1
prune target/debug/incremental
prune_test_binaries

step "an engine panic through keel serve and keel admin (fault-injection build)"
cargo test -p keel-cli --features fault-injection --test engine_panic --locked
prune target/debug

step "madsim: coordinator and SDK workers under node kills, restarts and partitions"
RUSTFLAGS="--cfg madsim" CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/madsim" \
    cargo test -p keel-grpc --test madsim --locked
