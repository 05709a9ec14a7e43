#!/usr/bin/env bash
# two-tenants.sh: two tenants on three hosts, with the same addresses in both
# networks, built with nothing but the brtun CLI and the REST API.
#
#   hosts     h1, h2, h3: OVSDB tcp:198.51.100.N:6640, tunnel IP 192.0.2.N
#   networks  tenant-a (VXLAN, VNI 100) and tenant-b (GRE, key 100)
#   ports     on host hN: aN in tenant-a on interface taN, bN in tenant-b on
#             interface tbN; both VMs have 198.18.0.N/24
#
# Afterwards VM aN reaches aM at 198.18.0.M and never bM: the overlapping
# tenants stay apart. The topology page is at $BRTUN_SERVER/ui.
#
# Prerequisites:
#   - `brtun serve` runs with its REST API at $BRTUN_SERVER (default
#     http://127.0.0.1:8080); `brtun` and `curl` are on PATH.
#   - Hosts h1..h3 run Open vSwitch; ovsdb-server listens on
#     tcp:198.51.100.N:6640 (`ovs-vsctl set-manager ptcp:6640:198.51.100.N`),
#     192.0.2.N is the host's underlay address, and the host reaches brtun's
#     OpenFlow address (`brtun serve --openflow-advertise`).
#   - On host hN the VM interfaces taN and tbN exist (a VM's tap device or the
#     host end of a veth pair). brtun plugs them into br-int itself.
#   - Hosts on the userspace datapath (like the test lab): DATAPATH_TYPE=netdev.
#
# Usage: two-tenants.sh [up|down]    (down removes everything up made)
#
# Environment:
#   BRTUN_SERVER   REST API address              (default http://127.0.0.1:8080)
#   BRTUN          the CLI                       (default brtun)
#   WAIT           how long each write waits until every bridge it touches has
#                  applied it; empty: do not wait (default 10s)
#   DATAPATH_TYPE  the hosts' OVS datapath type  (default system: kernel module)
#   OVSDB_PORT     the hosts' OVSDB TCP port     (default 6640)
set -euo pipefail

BRTUN=${BRTUN:-brtun}
export BRTUN_SERVER=${BRTUN_SERVER:-http://127.0.0.1:8080}
WAIT=${WAIT-10s}
DATAPATH_TYPE=${DATAPATH_TYPE:-system}
OVSDB_PORT=${OVSDB_PORT:-6640}
HOSTS=(1 2 3)

wait_flag=()
wait_query=""
if [[ -n $WAIT ]]; then
  wait_flag=(--wait "$WAIT")
  wait_query="?wait=$WAIT"
fi

up() {
  # CLI writes print the stored object; the tables at the end show it all.
  echo "== hosts"
  for n in "${HOSTS[@]}"; do
    "$BRTUN" host add "h$n" --ovsdb "tcp:198.51.100.$n:$OVSDB_PORT" --tunnel-ip "192.0.2.$n" \
      --datapath-type "$DATAPATH_TYPE" "${wait_flag[@]}" >/dev/null
  done

  echo "== networks: one with the CLI, one with the REST API"
  "$BRTUN" net create tenant-a --type vxlan --segment 100 "${wait_flag[@]}" >/dev/null
  curl --silent --show-error --fail-with-body -X POST "$BRTUN_SERVER/v1/networks$wait_query" \
    -H 'Content-Type: application/json' -d '{"name": "tenant-b", "type": "gre", "segment_id": 100}'

  echo "== ports: the same IP in both tenants on every host"
  for n in "${HOSTS[@]}"; do
    "$BRTUN" port add tenant-a "a$n" --host "h$n" --interface "ta$n" \
      --mac "02:00:00:00:0a:0$n" --ip "198.18.0.$n" "${wait_flag[@]}" >/dev/null
    "$BRTUN" port add tenant-b "b$n" --host "h$n" --interface "tb$n" \
      --mac "02:00:00:00:0b:0$n" --ip "198.18.0.$n" "${wait_flag[@]}" >/dev/null
  done

  echo "== result"
  "$BRTUN" host list
  "$BRTUN" net list
  "$BRTUN" port list tenant-a
  "$BRTUN" port list tenant-b
  echo "Topology page: $BRTUN_SERVER/ui"
}

down() {
  # --cascade deletes the networks' ports with them.
  "$BRTUN" net rm tenant-a --cascade "${wait_flag[@]}"
  "$BRTUN" net rm tenant-b --cascade "${wait_flag[@]}"
  for n in "${HOSTS[@]}"; do
    "$BRTUN" host rm "h$n" "${wait_flag[@]}"
  done
}

case ${1:-up} in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 [up|down]" >&2; exit 2 ;;
esac
