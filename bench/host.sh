#!/usr/bin/env bash
# Runs the task-host benchmarks (a trivial task under a bare wazero call,
# the Extism Go SDK and flowhost, in the same run) COUNT times and prints
# their medians with benchstat.
#   bench/host.sh [COUNT] [BENCH-REGEXP]
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-6}
pattern=${2:-.}
out=bench/out/host.txt
mkdir -p bench/out
go test -run '^$' -bench "$pattern" -benchtime 1s -count "$count" ./bench/ | tee "$out"
go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da "$out"
