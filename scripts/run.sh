#!/usr/bin/env bash
# The main job: a local Keel cluster runs an example job end to end. Builds `keel`,
# starts a coordinator on loopback with its embedded log in a temporary directory,
# starts two workers, submits a job, follows it to the end and shows its status table;
# then data flows: those workers stop, a worker that runs each task's command with `sh`
# starts, the map-reduce word count (examples/wordcount.toml) runs, and its result is
# printed with `keel result`; a build's stderr is followed live with `keel logs -f`
# (examples/build-log.toml); last, a consumer counts a producer's lines as they stream
# (examples/live-count.toml). Then everything stops.
# Usage: scripts/run.sh [job.toml]   (default examples/etl-chain.toml)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

job="${1:-examples/etl-chain.toml}"
cargo build --release -p keel-cli
keel="$PWD/target/release/keel"

dir="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
url="http://127.0.0.1:$port"

"$keel" serve --listen "127.0.0.1:$port" --data-dir "$dir/data" >"$dir/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done

# Each task's payload is its command line; the workers print it instead of running it
# (the example commands are illustrations), taking a moment per task.
exec_cmd='echo "task $KEEL_TASK_ID attempt $KEEL_ATTEMPT: $KEEL_PAYLOAD"; sleep 0.2'
echo_workers=()
for n in 1 2; do
    "$keel" worker --coordinator "$url" --id "worker-$n" --concurrency 2 \
        --all-lanes --capability net:warehouse --capability cpu:avx2 --capability gpu \
        --capability gpu-mem:80g --capability cuda:12 --capability accel:inferentia2 \
        --state-dir "$dir/state" --exec "$exec_cmd" >"$dir/worker-$n.log" 2>&1 &
    pids+=($!)
    echo_workers+=($!)
done

job_id="$("$keel" submit "$job" --coordinator "$url" --wait)"
"$keel" status "$job_id" --coordinator "$url"

# Data between tasks: the map tasks' outputs are the reduce task's inputs, as files in
# $KEEL_INPUTS_DIR. The printing workers drain and stop first, so every task of the
# word count really runs.
for pid in "${echo_workers[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
for pid in "${echo_workers[@]}"; do wait "$pid" 2>/dev/null || true; done
"$keel" worker --coordinator "$url" --id shell-worker --concurrency 3 \
    --state-dir "$dir/state" --exec sh --stream-stderr >"$dir/shell-worker.log" 2>&1 &
shell_worker=$!
pids+=($shell_worker)
count_id="$("$keel" submit examples/wordcount.toml --coordinator "$url" --wait)"
echo "word count (keel result $count_id):"
"$keel" result "$count_id" --coordinator "$url"

# Output streams: the same worker appends each command's stderr lines to its task's
# stream, and `keel logs -f` prints them as they come until the task has ended.
build_id="$("$keel" submit examples/build-log.toml --coordinator "$url")"
echo "build log (keel logs $build_id compile -f):"
"$keel" logs "$build_id" compile -f --coordinator "$url"
# Waits for the progress task to end; its stream keeps only the newest frame.
"$keel" logs "$build_id" progress -f --coordinator "$url" >/dev/null 2>&1
echo "progress, a newest-wins stream (keel logs $build_id progress):"
"$keel" logs "$build_id" progress --coordinator "$url"

# Streaming edges: the consumer reads the producer's stderr lines on its stdin while
# both run. Its stdin carries frames, so the worker runs each task's command file
# instead of feeding the command to `sh` on stdin; the `sh` worker drains first.
kill -TERM "$shell_worker" 2>/dev/null || true
wait "$shell_worker" 2>/dev/null || true
"$keel" worker --coordinator "$url" --id stream-worker --concurrency 2 \
    --state-dir "$dir/state" --exec 'sh "$KEEL_PAYLOAD_FILE"' --stream-stderr \
    >"$dir/stream-worker.log" 2>&1 &
pids+=($!)
echo "live count of a stream, checked in order (examples/live-count.toml):"
"$keel" submit examples/live-count.toml --coordinator "$url" --wait --result
