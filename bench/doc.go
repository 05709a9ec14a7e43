// Package bench holds brtun's benchmarks against the physical limit (what
// Open vSwitch itself accepts) and a peer (OVN), and brtun-cni's against
// the containernetworking reference plugins, as docs/benchmarks.md
// describes them. They run with `make bench` (bench/run.sh) and
// `make bench-cni` (TestCNIBench, on a lab of testbed/lab), behind the
// build tag `bench`, never in `make test`: they take minutes, need root and
// start private Open vSwitch and OVN daemons.
// Each figure is a ratio to a reference measured in the same run; the
// results replace the generated sections of docs/benchmarks.md.
package bench
