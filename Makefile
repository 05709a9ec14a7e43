# brtun: build, test and benchmark targets. `make test` is what CI runs.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

GO          ?= go
BIN         ?= bin/brtun
BIN_CNI     ?= bin/brtun-cni
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# What `brtun version` and the brtun_build_info metric say; without git, or
# when built with plain `go build`, brtun reports Go's VCS stamp or "dev".
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# Packages that hold tests behind the `integration` build tag.
INTEGRATION_PKGS = $(shell grep -rl --include='*_test.go' '^//go:build integration' . | xargs -r -n1 dirname | sort -u)
INTEGRATION_TIMEOUT ?= 45m
FUZZTIME ?= 2m
# OS packages the tests need; the Debian package names.
# podman and runc: brtun-cni's podman test (busybox-static makes its image); containernetworking-plugins: its host-local IPAM test.
TEST_DEPS := openvswitch-switch iproute2 iputils-ping arping tcpdump shellcheck systemd curl chromium ndisc6 python3-scapy isc-dhcp-client busybox-static frr ethtool podman runc containernetworking-plugins

.PHONY: all build build-cni hollow demo test test-unit integration deps lint bench bench-cni bench-dhcp bench-evpn bench-scale bench-scale-real fuzz generate clean

all: build

build: build-cni
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/brtun

## build-cni: the CNI plugin; install it as /opt/cni/bin/brtun-cni (docs/operations.md).
build-cni:
	$(GO) build -o $(BIN_CNI) ./cmd/brtun-cni

## hollow: build bin/brtun-hollow, which runs N hollow hosts (real ovsdb-server, simulated
## ovs-vswitchd) in one process for scale tests; see hollow/README.md.
hollow:
	$(GO) build -o bin/brtun-hollow ./cmd/brtun-hollow

## demo: three simulated hosts and brtun, two tenants with overlapping IPs set up with the CLI
## (ports without MAC or IP, addresses by DHCP from brtun), a container attached by brtun-cni, pings inside and across tenants, a flow dump; cleans up on exit. DEMO_KEEP=1 stays up until Ctrl-C.
demo: deps build
	@if [ "$$(id -u)" != 0 ]; then echo "make demo needs root (network namespaces, OVS daemons)" >&2; exit 1; fi
	$(GO) run -tags integration ./integration/demo --brtun $(BIN) --cni $(BIN_CNI)

## test: everything CI checks, on a fresh machine as root: OS packages, lint, unit and integration tests.
test: deps lint test-unit integration

## test-unit: unit tests with the race detector; no root, no OVS.
test-unit:
	$(GO) test -race -count=1 ./...

## integration: tests that run real Open vSwitch in network namespaces (root).
integration:
	@if [ "$$(id -u)" != 0 ]; then echo "make integration needs root (network namespaces, OVS daemons)" >&2; exit 1; fi
	$(GO) test -tags integration -p 1 -count=1 -timeout $(INTEGRATION_TIMEOUT) $(INTEGRATION_PKGS)

## deps: install the OS packages the tests need when any is missing (Debian, root).
deps:
	@missing=""; for p in $(TEST_DEPS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

## lint: formatting, go vet and staticcheck (also over the integration- and bench-tagged code).
lint:
	@bad=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$bad" ]; then echo "gofmt: not formatted: $$bad" >&2; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags integration ./...
	$(GO) vet -tags bench ./bench/
	$(GO) run $(STATICCHECK) ./...
	$(GO) run $(STATICCHECK) -tags integration ./...
	$(GO) run $(STATICCHECK) -tags bench ./bench/

## bench: brtun against OVS itself and OVN (bench/run.sh, root, < 15 min); figures go to docs/benchmarks.md.
bench:
	bench/run.sh

## bench-evpn: BGP EVPN convergence of brtun beside a second FRR as the same-run reference
## (root, FRR, about 3 min; BENCH_EVPN_ARGS e.g. "-evpn-macs 200 -evpn-reps 3"); figures go to docs/benchmarks.md.
bench-evpn: deps
	$(GO) test -tags bench -count=1 -run '^TestBenchEVPN$$' -timeout 15m -v ./bench/ -args -doc "$(CURDIR)/docs/benchmarks.md" $(BENCH_EVPN_ARGS)

## bench-dhcp: brtun's DHCP against dnsmasq on a lab of real OVS hosts with dhclient and udhcpc
## (bench/run.sh dhcp, root, about 5 min); figures go to docs/benchmarks.md.
bench-dhcp:
	bench/run.sh dhcp

## bench-cni: CNI ADD/DEL latency of brtun-cni against bridge + host-local on a lab host (root, about a minute); figures go to docs/benchmarks.md.
bench-cni: deps
	@if [ "$$(id -u)" != 0 ]; then echo "make bench-cni needs root (network namespaces, OVS daemons)" >&2; exit 1; fi
	$(GO) test -tags bench -count=1 -run '^TestCNIBench$$' -timeout 20m -v ./bench/ -args -doc "$(CURDIR)/docs/benchmarks.md" $(BENCH_ARGS) | \
	  grep --line-buffered -E '^(BENCH|--- |FAIL|ok|PASS)|Error|_test.go'

## bench-scale: brtun against BENCH_SCALE_HOSTS (1000) hollow hosts in BENCH_SCALE_MODE (flow, or per-peer),
## then per-peer tunnel ports at growing host counts (bench/scale.sh, root; about 10 min, the goal is 15, docs/benchmarks.md issue 21 item 4); figures go to docs/benchmarks.md.
bench-scale:
	bench/scale.sh

## bench-scale-real: the same figures at BENCH_SCALE_REAL_HOSTS (100) real lab hosts beside as many hollow hosts.
bench-scale-real:
	bench/scale.sh real

## fuzz: each fuzz target for FUZZTIME (default 2m). The committed seeds run in `make test`.
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
	  for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | cut -d' ' -f2); do \
	    echo "== $$pkg $$f ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

## generate: regenerate generated code (OVSDB models).
generate:
	$(GO) generate ./...

clean:
	rm -rf bin
