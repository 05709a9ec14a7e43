#!/usr/bin/env bash
# make bench: brtun against Open vSwitch itself and against OVN, on this
# machine, in one session; the figures replace the generated section of
# docs/benchmarks.md. Needs root (private OVS and OVN daemons in /tmp).
# `bench/run.sh dhcp` (make bench-dhcp): brtun's DHCP against dnsmasq on a
# lab of real OVS hosts with real DHCP clients; its own section.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-all}" in
  all)
    test=TestBench timeout=25m target="make bench" log=bench.log
    packages=(openvswitch-switch ovn-central ovn-host) ;;
  dhcp)
    test=TestBenchDHCP timeout=20m target="make bench-dhcp" log=bench-dhcp.log
    packages=(openvswitch-switch iproute2 ethtool dnsmasq-base isc-dhcp-client busybox-static) ;;
  *)
    echo "usage: $0 [all|dhcp]" >&2
    exit 2 ;;
esac
if [ "$(id -u)" != 0 ]; then
  echo "$target needs root (it runs private Open vSwitch daemons, and network namespaces or OVN)" >&2
  exit 1
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# BENCH_ARGS scales the run down for a quick try, e.g.
# "-networks 400 -latency-networks 120 -ops 20 -full-ops 2 -hosts 4 -peers 50 -populate 40",
# or for dhcp "-dhcp-vms 20 -dhcp-storms 2".
read -ra extra <<<"${BENCH_ARGS:-}"
profiles=${BENCH_PROFILES:-/tmp/brtun-bench}
mkdir -p "$profiles"
go test -tags bench -count=1 -run "^$test\$" -timeout "$timeout" -v ./bench/ \
  -args -doc "$PWD/docs/benchmarks.md" -profiles "$profiles" "${extra[@]}" |
  tee "$profiles/$log" | grep --line-buffered -E '^(BENCH|--- |FAIL|ok|PASS)|Error|_test.go'
if [ "$test" = TestBench ]; then
  echo "full log: $profiles/$log; CPU profiles: go tool pprof -top $profiles/bulk.pprof (and resync.pprof)"
else
  echo "full log: $profiles/$log"
fi
