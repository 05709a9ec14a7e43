#!/usr/bin/env bash
# make bench: brtun against Open vSwitch itself and against OVN, on this
# machine, in one session; the figures replace the generated section of
# docs/benchmarks.md. Needs root (private OVS and OVN daemons in /tmp).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "make bench needs root (it runs private ovsdb-server, ovs-vswitchd and OVN daemons)" >&2
  exit 1
fi
missing=()
for p in openvswitch-switch ovn-central ovn-host; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# BENCH_ARGS scales the run down for a quick try, e.g.
# "-networks 400 -latency-networks 120 -ops 20 -full-ops 2 -hosts 4 -peers 50 -populate 40".
read -ra extra <<<"${BENCH_ARGS:-}"
profiles=${BENCH_PROFILES:-/tmp/brtun-bench}
mkdir -p "$profiles"
go test -tags bench -count=1 -run '^TestBench$' -timeout 25m -v ./bench/ \
  -args -doc "$PWD/docs/benchmarks.md" -profiles "$profiles" "${extra[@]}" |
  tee "$profiles/bench.log" | grep --line-buffered -E '^(BENCH|--- |FAIL|ok|PASS)|Error|_test.go'
echo "full log: $profiles/bench.log; CPU profiles: go tool pprof -top $profiles/bulk.pprof (and resync.pprof)"
