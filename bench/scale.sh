#!/usr/bin/env bash
# make bench-scale: the real brtun binary against BENCH_SCALE_HOSTS (default
# 1000) hollow hosts in BENCH_SCALE_MODE (default flow: brtun runs with
# --tunnel-ports flow; per-peer: brtun's default), then per-peer tunnel ports
# at growing host counts until they stop fitting. `bench/scale.sh real`
# (make bench-scale-real): BENCH_SCALE_REAL_HOSTS (default 100) real lab hosts
# beside as many hollow hosts. The table replaces the generated section of
# docs/benchmarks.md. Needs root (ovsdb-servers, network namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "make bench-scale needs root (it runs ovsdb-servers and, for real hosts, network namespaces)" >&2
  exit 1
fi
test=TestBenchScale
timeout=20m
if [ "${1:-}" = real ]; then
  test=TestBenchScaleReal
  timeout=40m
fi
# BENCH_SCALE_ARGS adds test flags, e.g. "-scale-idle 20s -scale-per-peer-budget 0".
read -ra extra <<<"${BENCH_SCALE_ARGS:-}"
profiles=${BENCH_PROFILES:-/tmp/brtun-bench}
mkdir -p "$profiles"
go test -tags bench -count=1 -run "^${test}\$" -timeout "$timeout" -v ./bench/ \
  -args -doc "$PWD/docs/benchmarks.md" -profiles "$profiles" "${extra[@]}" |
  tee "$profiles/scale.log" | grep --line-buffered -E '^(BENCH|--- |FAIL|ok|PASS|\|)|Error|_test.go'
echo "full log: $profiles/scale.log; heap profiles: go tool pprof -top $profiles/scale-*-heap.pprof"
