//go:build bench

package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// ovn is a private OVN with one chassis: NB and SB ovsdb-servers on unix
// sockets, ovn-northd, and ovn-controller on the private OVS chassis.
type ovn struct {
	dir     string
	nb, sb  string
	chassis *ovs
}

func startOVN(t testing.TB, root string) *ovn {
	t.Helper()
	n := &ovn{dir: filepath.Join(root, "ovn")}
	must(t, os.MkdirAll(n.dir, 0o755))
	n.nb, n.sb = "unix:"+n.dir+"/nb.sock", "unix:"+n.dir+"/sb.sock"
	for _, db := range []string{"nb", "sb"} {
		mustRun(t, "ovsdb-tool", "create", n.dir+"/"+db+".db", "/usr/share/ovn/ovn-"+db+".ovsschema")
		n.daemon(t, "ovsdb-server", n.dir+"/"+db+".db", "--remote=punix:"+n.dir+"/"+db+".sock",
			"--unixctl="+n.dir+"/"+db+".ctl", "--log-file="+n.dir+"/"+db+".log", "-vconsole:off")
	}
	waitTrue(t, 10*time.Second, func() bool { _, err := n.nbctl("--timeout=1", "show"); return err == nil }, "OVN NB database")
	n.daemon(t, "ovn-northd", "--ovnnb-db="+n.nb, "--ovnsb-db="+n.sb,
		"--unixctl="+n.dir+"/northd.ctl", "--log-file="+n.dir+"/northd.log", "-vconsole:off")

	n.chassis = startOVS(t, root, "ovn-hv")
	_, err := n.chassis.vsctl("set", "Open_vSwitch", ".",
		"external_ids:system-id=hv1", "external_ids:ovn-remote="+n.sb,
		"external_ids:ovn-encap-type=geneve", "external_ids:ovn-encap-ip=192.0.2.1",
		"external_ids:ovn-bridge-datapath-type=system")
	must(t, err)
	ctl := exec.Command("ovn-controller", n.chassis.DB,
		"--log-file="+n.dir+"/ovn-controller.log", "-vconsole:off")
	ctl.Env = append(n.chassis.env(), "OVN_RUNDIR="+n.dir)
	ctl.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	must(t, ctl.Start())
	go func() { _ = ctl.Wait() }()
	t.Cleanup(func() { stopProc(t, ctl) })
	waitTrue(t, 30*time.Second, func() bool {
		_, err := n.chassis.vsctl("br-exists", "br-int")
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
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	must(t, cmd.Start())
	go func() { _ = cmd.Wait() }()
	t.Cleanup(func() { stopProc(t, cmd) })
}

func (n *ovn) nbctl(args ...string) (string, error) {
	return runEnv(os.Environ(), "ovn-nbctl", append([]string{"--db=" + n.nb}, args...)...)
}

// addSwitch is the peer's single-network operation: a logical switch with
// one port bound on the chassis, until the chassis has its flows
// (`--wait=hv`). The interface is added to br-int first, as a hypervisor
// agent would, so the binding happens within the measured command.
func (n *ovn) addSwitch(i int) (time.Duration, error) {
	sw, port := fmt.Sprintf("ls%d", i), fmt.Sprintf("lp%d", i)
	start := time.Now()
	if _, err := n.chassis.vsctl("--no-wait", "add-port", "br-int", port, "--", "set", "Interface", port, "external_ids:iface-id="+port); err != nil {
		return 0, err
	}
	if _, err := n.nbctl("--wait=hv", "--timeout=60", "ls-add", sw, "--", "lsp-add", sw, port,
		"--", "lsp-set-addresses", port, fmt.Sprintf("02:00:00:%02x:%02x:01 198.18.0.1", i>>8&0xff, i&0xff)); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

func (n *ovn) delSwitch(i int) error {
	if _, err := n.chassis.vsctl("--no-wait", "del-port", "br-int", fmt.Sprintf("lp%d", i)); err != nil {
		return err
	}
	_, err := n.nbctl("--wait=hv", "--timeout=60", "ls-del", fmt.Sprintf("ls%d", i))
	return err
}
