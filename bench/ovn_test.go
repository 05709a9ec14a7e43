//go:build bench

package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/brtun/brtun/testbed"
)

// ovn is a private OVN with one chassis: NB and SB ovsdb-servers on unix
// sockets, ovn-northd, and ovn-controller on the private OVS chassis.
type ovn struct {
	dir     string
	nb, sb  string
	chassis *ovs
	procs   []*testbed.Proc // NB, SB, northd, ovn-controller
	// hvOnly is the latency of the last ovnLatency run up to
	// `--wait=hv` alone, without waiting for ovn-installed.
	hvOnly latency
}

func startOVN(t testing.TB, root string) *ovn {
	t.Helper()
	n := &ovn{dir: filepath.Join(root, "ovn")}
	must(t, os.MkdirAll(n.dir, 0o755))
	n.nb, n.sb = "unix:"+n.dir+"/nb.sock", "unix:"+n.dir+"/sb.sock"
	for _, db := range []string{"nb", "sb"} {
		testbed.MustRun(t, nil, "ovsdb-tool", "create", n.dir+"/"+db+".db", "/usr/share/ovn/ovn-"+db+".ovsschema")
		n.daemon(t, "ovsdb-server", n.dir+"/"+db+".db", "--remote=punix:"+n.dir+"/"+db+".sock",
			"--unixctl="+n.dir+"/"+db+".ctl", "--log-file="+n.dir+"/"+db+".log", "-vconsole:off")
	}
	waitTrue(t, 10*time.Second, func() bool { _, err := n.nbctl("--timeout=1", "show"); return err == nil }, "OVN NB database")
	n.daemon(t, "ovn-northd", "--ovnnb-db="+n.nb, "--ovnsb-db="+n.sb,
		"--unixctl="+n.dir+"/northd.ctl", "--log-file="+n.dir+"/northd.log", "-vconsole:off")

	n.chassis = startOVS(t, root, "ovn-hv")
	_, err := n.chassis.Vsctl("set", "Open_vSwitch", ".",
		"external_ids:system-id=hv1", "external_ids:ovn-remote="+n.sb,
		"external_ids:ovn-encap-type=geneve", "external_ids:ovn-encap-ip=192.0.2.1",
		"external_ids:ovn-bridge-datapath-type=system")
	must(t, err)
	ctl := exec.Command("ovn-controller", n.chassis.DBSock,
		"--log-file="+n.dir+"/ovn-controller.log", "-vconsole:off")
	ctl.Env = append(n.chassis.Env(), "OVN_RUNDIR="+n.dir)
	p := testbed.StartProc(t, ctl, "")
	t.Cleanup(func() { p.Stop(t) })
	n.procs = append(n.procs, p)
	waitTrue(t, 30*time.Second, func() bool {
		_, err := n.chassis.Vsctl("br-exists", "br-int")
		return err == nil
	}, "ovn-controller to create br-int")
	_, err = n.nbctl("--wait=hv", "--timeout=30", "sync")
	must(t, err)
	return n
}

func (n *ovn) daemon(t testing.TB, bin string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "OVS_RUNDIR="+n.dir, "OVN_RUNDIR="+n.dir, "OVS_LOGDIR="+n.dir)
	p := testbed.StartProc(t, cmd, "")
	t.Cleanup(func() { p.Stop(t) })
	n.procs = append(n.procs, p)
}

// stop ends OVN and its chassis, so they cost nothing in later phases.
func (n *ovn) stop(t testing.TB) {
	for i := len(n.procs) - 1; i >= 0; i-- {
		n.procs[i].Stop(t)
	}
	n.chassis.Stop(t)
}

// preload creates count logical switches, each with one port bound on the
// chassis (one ovs-vsctl and one ovn-nbctl transaction), and waits until
// ovn-controller has installed every port (external_ids:ovn-installed).
func (n *ovn) preload(t testing.TB, count int) {
	t.Helper()
	var vs, nb []string
	for i := 0; i < count; i++ {
		sw, port := fmt.Sprintf("pls%d", i), fmt.Sprintf("plp%d", i)
		vs = append(vs, "--", "add-port", "br-int", port, "--", "set", "Interface", port, "external_ids:iface-id="+port)
		nb = append(nb, "--", "ls-add", sw, "--", "lsp-add", sw, port,
			"--", "lsp-set-addresses", port, fmt.Sprintf("02:00:01:%02x:%02x:01 198.18.0.1", i>>8&0xff, i&0xff))
	}
	if count == 0 {
		return
	}
	_, err := n.nbctl(append([]string{"--timeout=900"}, nb[1:]...)...)
	must(t, err)
	_, err = n.chassis.Vsctl(append([]string{"--timeout=900"}, vs[1:]...)...)
	must(t, err)
	waitTrue(t, 15*time.Minute, func() bool { return n.installed() >= count }, "OVN to install the preloaded ports")
}

// installed counts the chassis interfaces ovn-controller marked installed.
func (n *ovn) installed() int {
	out, err := n.chassis.Vsctl("--columns=name", "find", "Interface", "external_ids:ovn-installed=true")
	if err != nil {
		return -1
	}
	return strings.Count(out, "name ")
}

func (n *ovn) nbctl(args ...string) (string, error) {
	return testbed.Run(nil, "ovn-nbctl", append([]string{"--db=" + n.nb}, args...)...)
}

// addSwitch is the peer's single-network operation: a logical switch with
// one port bound on the chassis. The interface is added to br-int first, as
// a hypervisor agent would, so the binding happens within the measured
// operation. hv is the time until `ovn-nbctl --wait=hv` returned (the
// chassis processed the change); ready until ovn-controller also marked the
// interface `ovn-installed`, its signal that the port's flows are in OVS,
// which is what brtun's ?wait promises for a port.
func (n *ovn) addSwitch(i int) (hv, ready time.Duration, err error) {
	sw, port := fmt.Sprintf("ls%d", i), fmt.Sprintf("lp%d", i)
	start := time.Now()
	if _, err := n.chassis.Vsctl("--no-wait", "add-port", "br-int", port, "--", "set", "Interface", port, "external_ids:iface-id="+port); err != nil {
		return 0, 0, err
	}
	// ovs-vsctl wait-until watches the database; nothing polls.
	var readyAt time.Time
	installed := make(chan error, 1)
	go func() {
		_, err := n.chassis.Vsctl("--timeout=60", "--no-wait", "wait-until", "Interface", port, "external_ids:ovn-installed=true")
		readyAt = time.Now()
		installed <- err
	}()
	if _, err := n.nbctl("--wait=hv", "--timeout=60", "ls-add", sw, "--", "lsp-add", sw, port,
		"--", "lsp-set-addresses", port, fmt.Sprintf("02:00:00:%02x:%02x:01 198.18.0.1", i>>8&0xff, i&0xff)); err != nil {
		<-installed
		return 0, 0, err
	}
	hv = time.Since(start)
	if err := <-installed; err != nil {
		return 0, 0, err
	}
	return hv, max(hv, readyAt.Sub(start)), nil
}

// TestOVNAtScale is the peer at the full scale, outside `make bench` (its
// set-up alone takes minutes): OVN with -ovn-networks logical switches, each
// with a port bound on the chassis, then -full-ops single-network
// operations. Run it with
// `go test -tags bench -run TestOVNAtScale -timeout 30m -v ./bench/ -args -ovn-networks 4094`.
func TestOVNAtScale(t *testing.T) {
	o := startOVN(t, testbed.RunDir(t))
	start := time.Now()
	o.preload(t, *flagOVNPreset)
	fmt.Printf("BENCH OVN: %d logical switches, each with a port bound on the chassis, installed after %.0f s\n", *flagOVNPreset, time.Since(start).Seconds())
	lat := ovnLatency(t, o, *flagFullOps)
	fmt.Printf("BENCH OVN at %d: %d operations until ovn-installed: p50 %.2f s, max %.2f s; until --wait=hv: p50 %.2f s, max %.2f s\n",
		*flagOVNPreset, *flagFullOps, secs(lat.p50), secs(lat.max), secs(o.hvOnly.p50), secs(o.hvOnly.max))
}
