#!/usr/bin/env bash
# Lists functions longer than a bound (default 70 lines), longest first, outside tests:
# files under tests/ directories, `#[cfg(test)]` modules (inline, or in the `*_tests.rs`
# files they are read from) and the fuzz crate are skipped.
# Lengths count the lines from `fn` to its closing brace, as rustfmt lays them out.
# Usage: scripts/fn-lengths.sh [BOUND]   (exits 1 when a function is over BOUND lines)
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 - "${1:-70}" <<'PY'
import re, subprocess, sys
bound = int(sys.argv[1])
files = subprocess.run(["git", "ls-files", "*.rs"], capture_output=True, text=True, check=True).stdout.split()
fn_re = re.compile(r'^(\s*)(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?(extern\s+"C"\s+)?fn\s+(\w+)')
rows = []
for path in files:
    if "/tests/" in path or path.startswith(("tests/", "fuzz/")) or path.endswith("_tests.rs"):
        continue
    lines = open(path, encoding="utf-8").read().split("\n")
    skip_until = None
    pending_cfg_test = False
    for i, line in enumerate(lines):
        if skip_until is not None:
            if line == skip_until:
                skip_until = None
            continue
        stripped = line.strip()
        if stripped.startswith("#[cfg(test)]"):
            pending_cfg_test = True
            continue
        if pending_cfg_test and re.match(r'\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{', line):
            skip_until = line[: len(line) - len(line.lstrip())] + "}"
            pending_cfg_test = False
            continue
        if stripped and not stripped.startswith("#["):
            pending_cfg_test = False
        m = fn_re.match(line)
        if not m:
            continue
        k = i
        while not lines[k].rstrip().endswith(("{", ";", "}")):
            k += 1
        if lines[k].rstrip().endswith(";"):
            continue  # a declaration without a body
        close = m.group(1) + "}"
        for j in range(i, len(lines)):
            if lines[j] == close or (j == i and stripped.endswith("}")):
                rows.append((j - i + 1, path, i + 1, m.group(8)))
                break
rows.sort(key=lambda r: (-r[0], r[1], r[2]))
over = [r for r in rows if r[0] > bound]
for n, path, line, name in over:
    print(f"{n:4} {path}:{line} {name}")
print(f"{len(over)} functions over {bound} lines, of {len(rows)}")
sys.exit(1 if over else 0)
PY
