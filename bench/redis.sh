#!/usr/bin/env bash
# Distributed throughput and latency on one local redis-server (appendonly,
# fsync every second), all in the same run:
#   - BullMQ (npm bullmq) processing 100,000 no-op jobs, at several concurrencies
#   - flowhost: a 100,000-element map of a trivial task on 2 worker processes
#   - flowhost: one-task run latency, submit to result (p50, p99)
#   - the bare Redis Streams loop (XADD pipelined, XREADGROUP COUNT 1000 + XACK): the ceiling
#   bench/redis.sh [COUNT]
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-6}
mkdir -p bench/out

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
dir=$(mktemp -d)
redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --appendonly yes --appendfsync everysec --save "" --daemonize yes --logfile "$dir/redis.log"
trap 'redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.1; done

(cd bench/bullmq && npm install --no-audit --no-fund --silent)
for c in 50 200 500; do
  for _ in $(seq "$count"); do
    REDIS_PORT=$port N=100000 CONCURRENCY=$c node bench/bullmq/bench.mjs
  done
done | tee bench/out/bullmq.jsonl
python3 - bench/out/bullmq.jsonl <<'PY'
import json, statistics, sys, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    r = json.loads(line); rows[r["concurrency"]].append(r)
for c, rs in sorted(rows.items()):
    print(f"bullmq concurrency {c}: median {statistics.median(r['jobs_per_s'] for r in rs):,.0f} jobs/s "
          f"(add+process), {statistics.median(r['process_jobs_per_s'] for r in rs):,.0f} jobs/s (process only), n={len(rs)}")
PY

go test -run '^$' -bench 'Redis|Streams' -benchtime 3x -count "$count" ./bench/ | tee bench/out/redis.txt
go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da bench/out/redis.txt
