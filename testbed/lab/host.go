package lab

import (
	"fmt"
	"strings"
	"time"

	"github.com/brtun/brtun/testbed"
)

// Host is one simulated hypervisor: a namespace (Netns) with its own OVS
// daemons, whose run directory Dir holds the database, sockets, pid and log
// files. The OVS tool wrappers (Vsctl, Ofctl, Appctl, Monitor,
// PortCounters, ...) come with the embedded testbed.Switch.
type Host struct {
	*testbed.Switch
	Name         string // h1, h2, ...
	Index        int    // N in the address plan
	MgmtIP       string // 198.51.100.N
	TunnelIP     string // 192.0.2.N, on br-phy
	OVSDB        string // tcp:198.51.100.N:6640, reachable from the root namespace
	DatapathType string // datapath type to give br-int and br-tun ("netdev")

	t        TB
	lab      *Lab
	mgmtLink string // root-namespace end of the management veth (<prefix>mN)
	phyUp    bool   // br-phy holds the tunnel IP (restored after restarts)
	phyMAC   string // br-phy's MAC, read when it got the tunnel IP
}

// CloseOVSDBRemote stops ovsdb-server listening on the management network
// (and drops the sessions there), so brtun cannot reach this host's OVSDB
// while ovs-vswitchd, on the unix socket, runs on unaffected.
func (h *Host) CloseOVSDBRemote(t TB) {
	t.Helper()
	h.ovsdbRemote(t, "ovsdb-server/remove-remote")
}

// OpenOVSDBRemote undoes CloseOVSDBRemote.
func (h *Host) OpenOVSDBRemote(t TB) {
	t.Helper()
	h.ovsdbRemote(t, "ovsdb-server/add-remote")
}

func (h *Host) ovsdbRemote(t TB, cmd string) {
	t.Helper()
	remote := fmt.Sprintf("ptcp:%d:%s", ovsdbPort, h.MgmtIP)
	if out, err := h.OVSDBAppctl(cmd, remote); err != nil {
		t.Fatalf("lab: %s %s on %s: %v: %s", cmd, remote, h.Name, err, out)
	}
}

// Exec runs a command inside the host's namespace.
func (h *Host) Exec(args ...string) (string, error) {
	return testbed.Run(nil, "ip", append([]string{"netns", "exec", h.Netns}, args...)...)
}

// StartOVSDB starts this host's ovsdb-server (unix socket and ptcp on the
// management IP) and waits until it answers. Like Debian's ovs-ctl, it also
// serves the remotes of `ovs-vsctl set-manager` (e.g. pssl:6641:IP) with the
// key and certificates of `ovs-vsctl set-ssl`.
func (h *Host) StartOVSDB(t TB) {
	t.Helper()
	h.Switch.StartOVSDB(t,
		fmt.Sprintf("--remote=ptcp:%d:%s", ovsdbPort, h.MgmtIP),
		"--remote=db:Open_vSwitch,Open_vSwitch,manager_options",
		"--private-key=db:Open_vSwitch,SSL,private_key",
		"--certificate=db:Open_vSwitch,SSL,certificate",
		"--ca-cert=db:Open_vSwitch,SSL,ca_cert")
}

// StartVswitchd starts this host's ovs-vswitchd and waits until it answers.
// After a restart it gives br-phy the tunnel IP again and writes the
// tunnel neighbour entries between this host and the others
// (Lab.learnUnderlay).
func (h *Host) StartVswitchd(t TB) {
	t.Helper()
	h.Switch.StartVswitchd(t)
	if h.phyUp {
		h.upPhy(t)
		h.lab.learnUnderlay(t, h.TunnelIP)
	}
}

// upPhy gives br-phy the tunnel IP. ovs-vswitchd recreates the br-phy
// device when it restarts, as a host's network configuration would, so this
// runs again after every restart.
func (h *Host) upPhy(t TB) {
	t.Helper()
	if !testbed.Poll(10*time.Second, 50*time.Millisecond, func() bool { _, err := h.Exec("ip", "link", "show", "br-phy"); return err == nil }) {
		t.Fatalf("lab: br-phy did not appear on %s", h.Name)
	}
	h.mustExec("ip", "addr", "replace", h.TunnelIP+"/24", "dev", "br-phy")
	h.mustExec("ip", "link", "set", "br-phy", "up")
	h.phyUp = true
	h.phyMAC = linkMAC(t, h.Name, "br-phy", h.Exec)
}

// linkMAC is the MAC address of device dev in a namespace that exec runs
// commands in.
func linkMAC(t TB, host, dev string, exec func(...string) (string, error)) string {
	t.Helper()
	out, err := exec("cat", "/sys/class/net/"+dev+"/address")
	if err != nil {
		t.Fatalf("lab: MAC of %s on %s: %v", dev, host, err)
	}
	return strings.TrimSpace(out)
}

func (h *Host) mustExec(args ...string) {
	h.t.Helper()
	if out, err := h.Exec(args...); err != nil {
		h.t.Fatalf("lab: on %s: %v: %s", h.Name, err, out)
	}
}

// CutManagement takes the root-namespace end of this host's management veth
// down: the controller can no longer reach the host's OVSDB and the
// switches cannot reach the controller. The underlay (tunnels) is not
// touched. RestoreManagement undoes it; the lab's teardown deletes the link
// either way.
func (h *Host) CutManagement(t TB) {
	t.Helper()
	if _, err := testbed.Run(nil, "ip", "link", "set", h.mgmtLink, "down"); err != nil {
		t.Fatalf("lab: cut management of %s: %v", h.Name, err)
	}
}

// RestoreManagement brings the management veth cut by CutManagement back up.
func (h *Host) RestoreManagement(t TB) {
	t.Helper()
	if _, err := testbed.Run(nil, "ip", "link", "set", h.mgmtLink, "up"); err != nil {
		t.Fatalf("lab: restore management of %s: %v", h.Name, err)
	}
}
