// Package testbed is what brtun's tests run against: private Open vSwitch
// daemons (on the dummy datapath here, in network namespaces in testbed/lab),
// the brtun daemon itself (built once per test process, started, health
// checked, killed and restarted), and wrappers around the OVS tools
// (ovs-vsctl, ovs-ofctl, ovs-appctl) aimed at one switch's run directory.
//
// It is an ordinary package, not a _test file, so that every test package
// (integration/, bench/, flows/, ofswitch/, cmd/brtun, examples/) and the
// demo program share one copy. It carries no build tag and imports nothing
// of brtun: it only starts programs.
//
// Hygiene: every run directory, and in testbed/lab every namespace and
// root-namespace link, is named by NewPrefix: "bt" + the owner's PID in
// base 36 + one random character. Daemons are children of the test process
// with a parent-death signal, so they die with it even when cleanups do not
// run (a timeout, a kill), and RemoveLeftoverDirs (and the lab, for its
// namespaces and links) deletes what owners that are gone left behind. Run
// directories sit right under /tmp: unix socket paths are limited to 108
// bytes. A test bed fails a test that cannot get what it needs; it never
// skips one and never installs anything (`make deps` does).
package testbed

// TB is what the test bed needs of its caller: *testing.T and *testing.B
// satisfy it, and so can a program (the demo) that runs a lab outside go
// test.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Cleanup(func())
	Failed() bool
}
