// Package bench holds brtun's benchmarks against the physical limit (what
// Open vSwitch itself accepts) and a peer (OVN), as
// docs/benchmarks.md describes them. They run with `make bench`
// (bench/run.sh), behind the build tag `bench`, never in `make test`: they
// take minutes, need root and start private Open vSwitch and OVN daemons.
// Each figure is a ratio to a reference measured in the same run; the
// results replace the generated section of docs/benchmarks.md.
package bench
