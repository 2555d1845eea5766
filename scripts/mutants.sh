#!/usr/bin/env bash
# Mutation testing: cargo-mutants mutates one crate's code a piece at a time and runs
# its tests; a mutant the tests do not catch ("missed") is a change in behaviour no test
# would notice. Sharded so the work can be spread over runs or machines, resumable (a
# finished shard is kept and skipped), and checked against a list of survivors known to
# be equivalent to the original code.
#
#   scripts/mutants.sh                      every shard of keel-engine, one after another
#   scripts/mutants.sh --shard 3/32         one shard (of thirty-two)
#   scripts/mutants.sh --package keel-sim   the simulator's checks (the files that judge
#                                           a run), against the simulator's tests
#   scripts/mutants.sh --summary            only report what finished shards found
#   scripts/mutants.sh --again              run finished shards again
#   scripts/mutants.sh --in-place           mutate this checkout's files and build in its
#                                           target/ instead of a fresh copy per shard
#                                           (each shard's baseline build then takes
#                                           seconds, not a minute and a half); use a
#                                           worktree of its own (git worktree add
#                                           ../keel-mutants HEAD) with no local changes
#
# Results go to mutants.out/<package>/shard-<k>-of-<n>/ (git-ignored), and each finished
# shard's outcome lists and revision to mutants-record/<package>/ (checked in), so a run
# too long for one sitting adds up across checkouts: a recorded shard is skipped while
# the crate's files are as they were at its revision. The summary gives
# caught, missed, timeouts and unviable mutants and the kill rate, caught / (caught +
# missed + timeouts). A missed mutant that is not in <crate>/mutants-survivors.txt
# (lines "<file>: <mutation>", '#' comments; line numbers left out so the list survives
# edits) fails the run: either add a test that catches it, or list it with the reason it
# changes nothing. cargo-mutants is installed into .tools/ when missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

package=keel-engine
shards=32
only=""
again=0
summary_only=0
in_place=0
while [ $# -gt 0 ]; do
    case "$1" in
        --package) package="$2"; shift 2 ;;
        --shard) only="$2"; shift 2 ;;
        --shards) shards="$2"; shift 2 ;;
        --again) again=1; shift ;;
        --summary) summary_only=1; shift ;;
        --in-place) in_place=1; shift ;;
        -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
        *) echo "mutants.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$package" in
    keel-engine) crate_dir=engine ;;
    keel-sim) crate_dir=sim ;;
    *) echo "mutants.sh: --package must be keel-engine or keel-sim" >&2; exit 2 ;;
esac

# In place, a mutant is written into the checkout while its tests run, and a run that
# is killed can leave one behind: start only from a clean tree, so one would show.
placement=()
if [ "$in_place" -eq 1 ] && [ "$summary_only" -eq 0 ]; then
    if ! git diff --quiet HEAD -- . ; then
        echo "mutants.sh: --in-place needs a checkout without local changes (git status shows them;" >&2
        echo "a killed run can leave a mutant behind: git diff)" >&2
        exit 2
    fi
    placement=(--in-place)
fi

tool=.tools/cargo-mutants/bin/cargo-mutants
if [ "$summary_only" -eq 0 ] && [ ! -x "$tool" ]; then
    echo "installing cargo-mutants into .tools/cargo-mutants" >&2
    cargo install --locked cargo-mutants --root .tools/cargo-mutants >&2
fi

# The simulator's files that judge a run: its checks and the expectations of scenarios.
sim_checks=(check check_pace checks checks_workers beliefs outcomes shadow durable data_checks result_checks
    read_checks rate_checks schedule_checks budget_checks budget_checks_history stream_checks
    edge_checks expect stats)

out_root="mutants.out/$package"
record_root="mutants-record/$package"
mkdir -p "$out_root"

# Whether a recorded shard still describes this checkout: the crate's files are as
# they were at the revision it was made on.
current() {
    local rev
    rev=$(cat "$1/revision" 2>/dev/null) || return 1
    git cat-file -e "$rev^{commit}" 2>/dev/null && git diff --quiet "$rev" -- "$crate_dir"
}

# cargo-mutants rewrites outcomes.json as it goes; an interrupted shard's has no end
# time and is run again.
finished() { grep -qs '"end_time": "' "$1/mutants.out/outcomes.json"; }

# Keeps a finished shard's outcome lists and revision in the checked-in record, unless
# the crate had local changes when it ran (its revision would not name what it tested).
record_shard() {
    local from="$1" to="$2"
    if ! current "$from"; then
        echo "$from: not recorded: $crate_dir differs from its revision" >&2
        return 0
    fi
    mkdir -p "$to"
    cp "$from/revision" "$to/revision"
    for list in caught missed timeout unviable; do
        cp "$from/mutants.out/$list.txt" "$to/$list.txt" 2>/dev/null || : > "$to/$list.txt"
    done
}

# A mutant that fails a property test sends proptest shrinking, which can outlast the
# timeout and turn a caught mutant into a "timeout"; a few seconds of shrinking is
# plenty to fail the test.
export PROPTEST_MAX_SHRINK_TIME="${PROPTEST_MAX_SHRINK_TIME:-5000}"

run_shard() {
    local k="$1" n="$2"
    local dir="$out_root/shard-$k-of-$n"
    local record="$record_root/shard-$k-of-$n"
    if finished "$dir" && [ "$again" -eq 0 ]; then
        echo "shard $k/$n: done before, kept ($dir)" >&2
        record_shard "$dir" "$record"
        return 0
    fi
    if [ "$again" -eq 0 ] && current "$record"; then
        echo "shard $k/$n: recorded at $(cat "$record/revision"), $crate_dir unchanged since" >&2
        return 0
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    echo "shard $k/$n of $package" >&2
    # Status 2 (mutants missed) and 3 (timeouts) are reported below, not errors here.
    local status=0
    # The engine's fault-injection hooks and the tests that use them are compiled
    # only with its feature; without it, a mutant of a hook is never built or tested.
    local features=()
    if [ "$package" = keel-engine ]; then
        features=(--features fault-injection)
    fi
    # In the simulator only the checks are mutated: a mutant of the simulated world
    # changes which runs are generated, not whether a broken engine is caught.
    local files=()
    if [ "$package" = keel-sim ]; then
        for f in "${sim_checks[@]}"; do files+=(--file "sim/src/$f.rs"); done
    fi
    # Which mutants fall in a shard depends on the code: the revision is kept so the
    # summary can say whether the shards it adds up were made on one.
    git rev-parse --short HEAD > "$dir/revision" 2>/dev/null || echo unknown > "$dir/revision"
    "$tool" mutants --package "$package" --shard "$k/$n" --output "$dir" \
        "${features[@]}" "${files[@]}" "${placement[@]}" --timeout-multiplier 3 >&2 || status=$?
    case "$status" in
        0 | 2 | 3) record_shard "$dir" "$record" ;;
        *) echo "shard $k/$n: cargo-mutants failed with status $status" >&2; return "$status" ;;
    esac
}

if [ "$summary_only" -eq 0 ]; then
    if [ -n "$only" ]; then
        run_shard "${only%/*}" "${only#*/}"
    else
        for ((k = 0; k < shards; k++)); do
            run_shard "$k" "$shards"
        done
    fi
fi

# The summary adds up the recorded shards that still describe this checkout, once the
# record has every finished shard.
for dir in "$out_root"/shard-*; do
    if finished "$dir"; then record_shard "$dir" "$record_root/${dir##*/}"; fi
done
shard_dirs=()
stale=0
for d in "$record_root"/shard-*; do
    [ -d "$d" ] || continue
    if current "$d"; then shard_dirs+=("$d"); else stale=$((stale + 1)); fi
done
if [ "$stale" -gt 0 ]; then
    echo "$stale recorded shards left out: $crate_dir changed since they were made" >&2
fi
count() { for d in "${shard_dirs[@]}"; do cat "$d/$1"; done 2>/dev/null | grep -c . || true; }
caught=$(count caught.txt)
missed=$(count missed.txt)
timeout=$(count timeout.txt)
unviable=$(count unviable.txt)
viable=$((caught + missed + timeout))
if [ "$viable" -eq 0 ]; then
    echo "no finished shard of this revision of $crate_dir under $record_root" >&2
    exit 1
fi
echo "$package: $caught caught, $missed missed, $timeout timeouts, $unviable unviable; kill rate $((100 * caught / viable))% of $viable viable (${#shard_dirs[@]} shards)"
revisions=$( (for d in "${shard_dirs[@]}"; do cat "$d/revision"; done 2>/dev/null || true) | sort | uniq -c | awk '{printf "%s%s (%s shards)", sep, $2, $1; sep=", "}')
echo "made on: ${revisions:-no recorded revision}"

survivors="$crate_dir/mutants-survivors.txt"
unlisted=$( (for d in "${shard_dirs[@]}"; do cat "$d/missed.txt"; done 2>/dev/null || true) \
    | sed -E 's/^([^:]+):[0-9]+:[0-9]+: /\1: /' \
    | sort -u \
    | while IFS= read -r line; do
        grep -qxF "$line" <(grep -v '^#' "$survivors" 2>/dev/null | sed 's/ *#.*$//') || echo "$line"
    done)
if [ -n "$unlisted" ]; then
    echo "missed mutants not listed in $survivors:"
    echo "$unlisted" | sed 's/^/  /'
    exit 1
fi
echo "every missed mutant is listed in $survivors"
