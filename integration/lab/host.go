//go:build integration

package lab

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Host is one simulated hypervisor: a namespace with its own OVS daemons.
type Host struct {
	Name         string // h1, h2, ...
	Index        int    // N in the address plan
	MgmtIP       string // 198.51.100.N
	TunnelIP     string // 192.0.2.N, on br-phy
	OVSDB        string // tcp:198.51.100.N:6640, reachable from the root namespace
	DBSock       string // unix:<Dir>/db.sock
	DatapathType string // datapath type to give br-int and br-tun ("netdev")
	Netns        string
	Dir          string // run directory: database, sockets, pid and log files

	t        TB
	mgmtLink string // root-namespace end of the management veth (<prefix>mN)
	phyUp    bool   // br-phy holds the tunnel IP (restored after restarts)
	ovsdb    *daemon
	vswitch  *daemon
}

// daemon is an OVS daemon running in the foreground as our child.
type daemon struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

// Env is the environment that points OVS tools at this host's run directory.
func (h *Host) Env() []string {
	return append(os.Environ(), "OVS_RUNDIR="+h.Dir, "OVS_LOGDIR="+h.Dir, "OVS_DBDIR="+h.Dir)
}

// Vsctl runs ovs-vsctl against this host's database.
func (h *Host) Vsctl(args ...string) (string, error) {
	return h.tool("ovs-vsctl", append([]string{"--db=" + h.DBSock, "--timeout=20"}, args...)...)
}

// Ofctl runs ovs-ofctl with OpenFlow 1.3. A bridge name given as the
// argument after the command is replaced by its management socket.
func (h *Host) Ofctl(args ...string) (string, error) {
	if len(args) >= 2 && strings.HasPrefix(args[1], "br-") {
		args = append([]string{args[0], h.BridgeTarget(args[1])}, args[2:]...)
	}
	return h.tool("ovs-ofctl", append([]string{"-O", "OpenFlow13"}, args...)...)
}

// Appctl runs ovs-appctl against this host's ovs-vswitchd.
func (h *Host) Appctl(args ...string) (string, error) {
	return h.tool("ovs-appctl", append([]string{"-t", h.Dir + "/ovs-vswitchd.ctl"}, args...)...)
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
	if out, err := h.tool("ovs-appctl", "-t", h.Dir+"/ovsdb-server.ctl", cmd, remote); err != nil {
		t.Fatalf("lab: %s %s on %s: %v: %s", cmd, remote, h.Name, err, out)
	}
}

// BridgeTarget is the OpenFlow management socket of a bridge on this host,
// e.g. unix:/tmp/bt.../h1/br-tun.mgmt.
func (h *Host) BridgeTarget(bridge string) string {
	return "unix:" + h.Dir + "/" + bridge + ".mgmt"
}

// Exec runs a command inside the host's namespace.
func (h *Host) Exec(args ...string) (string, error) {
	return run("ip", append([]string{"netns", "exec", h.Netns}, args...)...)
}

// Ofport reads an interface's OpenFlow port number from OVSDB, waiting up to
// 10 s until ovs-vswitchd assigned one.
func (h *Host) Ofport(t TB, iface string) int {
	t.Helper()
	var port int
	ok := waitFor(10*time.Second, func() bool {
		out, err := h.Vsctl("get", "Interface", iface, "ofport")
		if err != nil {
			return false
		}
		port, err = strconv.Atoi(strings.TrimSpace(out))
		return err == nil && port > 0
	})
	if !ok {
		t.Fatalf("lab: %s: no ofport for %s", h.Name, iface)
	}
	return port
}

// PortCounters returns rx and tx packet counts of a port of a bridge, read
// with ovs-ofctl dump-ports after ovs-appctl revalidator/wait so datapath
// statistics are current.
func (h *Host) PortCounters(t TB, bridge, port string) (rx, tx uint64) {
	t.Helper()
	if out, err := h.Appctl("revalidator/wait"); err != nil {
		t.Fatalf("lab: revalidator/wait on %s: %v: %s", h.Name, err, out)
	}
	ofport := h.Ofport(t, port)
	out, err := h.Ofctl("dump-ports", bridge, strconv.Itoa(ofport))
	if err != nil {
		t.Fatalf("lab: dump-ports %s %s on %s: %v: %s", bridge, port, h.Name, err, out)
	}
	rx, tx, err = parsePortCounters(out)
	if err != nil {
		t.Fatalf("lab: %s: %v in %q", h.Name, err, out)
	}
	return rx, tx
}

// dump-ports prints "rx pkts=N, bytes=..." and "tx pkts=N, bytes=...".
var (
	rxPkts = regexp.MustCompile(`rx pkts=(\d+)`)
	txPkts = regexp.MustCompile(`tx pkts=(\d+)`)
)

// parsePortCounters reads the rx and tx packet counts from dump-ports output.
func parsePortCounters(out string) (rx, tx uint64, err error) {
	r, t := rxPkts.FindStringSubmatch(out), txPkts.FindStringSubmatch(out)
	if r == nil || t == nil {
		return 0, 0, fmt.Errorf("no rx/tx packet counters")
	}
	rx, _ = strconv.ParseUint(r[1], 10, 64)
	tx, _ = strconv.ParseUint(t[1], 10, 64)
	return rx, tx, nil
}

// StartOVSDB starts this host's ovsdb-server (unix socket and ptcp on the
// management IP) and waits until it answers. Like Debian's ovs-ctl, it also
// serves the remotes of `ovs-vsctl set-manager` (e.g. pssl:6641:IP) with the
// key and certificates of `ovs-vsctl set-ssl`.
func (h *Host) StartOVSDB(t TB) {
	t.Helper()
	h.ovsdb = h.start(t, ovsdbServer, h.Dir+"/conf.db",
		"--remote=punix:"+h.Dir+"/db.sock",
		fmt.Sprintf("--remote=ptcp:%d:%s", ovsdbPort, h.MgmtIP),
		"--remote=db:Open_vSwitch,Open_vSwitch,manager_options",
		"--private-key=db:Open_vSwitch,SSL,private_key",
		"--certificate=db:Open_vSwitch,SSL,certificate",
		"--ca-cert=db:Open_vSwitch,SSL,ca_cert",
		"--unixctl="+h.Dir+"/ovsdb-server.ctl",
		"--pidfile="+h.Dir+"/ovsdb-server.pid",
		"--log-file="+h.Dir+"/ovsdb-server.log", "-vconsole:off")
	if !waitFor(10*time.Second, func() bool {
		_, err := h.tool("ovs-vsctl", "--db="+h.DBSock, "--timeout=1", "--no-wait", "get", "Open_vSwitch", ".", "_uuid")
		return err == nil || strings.Contains(fmt.Sprint(err), "no row")
	}) {
		t.Fatalf("lab: ovsdb-server on %s did not come up; see %s/ovsdb-server.log", h.Name, h.Dir)
	}
}

// StartVswitchd starts this host's ovs-vswitchd and waits until it answers.
func (h *Host) StartVswitchd(t TB) {
	t.Helper()
	h.vswitch = h.start(t, vswitchd, h.DBSock,
		"--unixctl="+h.Dir+"/ovs-vswitchd.ctl",
		"--pidfile="+h.Dir+"/ovs-vswitchd.pid",
		"--log-file="+h.Dir+"/ovs-vswitchd.log", "-vconsole:off")
	if !waitFor(10*time.Second, func() bool {
		_, err := h.Appctl("version")
		return err == nil
	}) {
		t.Fatalf("lab: ovs-vswitchd on %s did not come up; see %s/ovs-vswitchd.log", h.Name, h.Dir)
	}
	if h.phyUp {
		h.upPhy(t)
	}
}

// upPhy gives br-phy the tunnel IP. ovs-vswitchd recreates the br-phy
// device when it restarts, as a host's network configuration would, so this
// runs again after every restart.
func (h *Host) upPhy(t TB) {
	t.Helper()
	if !waitFor(10*time.Second, func() bool { _, err := h.Exec("ip", "link", "show", "br-phy"); return err == nil }) {
		t.Fatalf("lab: br-phy did not appear on %s", h.Name)
	}
	h.mustExec("ip", "addr", "replace", h.TunnelIP+"/24", "dev", "br-phy")
	h.mustExec("ip", "link", "set", "br-phy", "up")
	h.phyUp = true
}

// Monitor runs `ovs-ofctl monitor BRIDGE watch:!initial` on this host until
// the returned stop is called; stop returns everything it printed. OVS 3.1
// prints each event with its table and cookie ("event=ADDED table=7
// cookie=0"), not the flow's match.
func (h *Host) Monitor(t TB, bridge string) (stop func() string) {
	t.Helper()
	var out strings.Builder
	cmd := exec.Command("ovs-ofctl", "-O", "OpenFlow13", "monitor", h.BridgeTarget(bridge), "watch:!initial")
	cmd.Env = h.Env()
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("lab: ovs-ofctl monitor on %s: %v", h.Name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	time.Sleep(300 * time.Millisecond) // let it connect before events happen
	var once bool
	return func() string {
		if !once {
			once = true
			_ = cmd.Process.Signal(syscall.SIGTERM)
			<-done
		}
		return out.String()
	}
}

// StopOVSDB stops this host's ovsdb-server (SIGTERM, then SIGKILL).
func (h *Host) StopOVSDB(t TB) {
	t.Helper()
	h.ovsdb.stop(t)
	h.ovsdb = nil
}

// StopVswitchd stops this host's ovs-vswitchd (SIGTERM, then SIGKILL).
func (h *Host) StopVswitchd(t TB) {
	t.Helper()
	h.vswitch.stop(t)
	h.vswitch = nil
}

// VswitchdPID is the PID of the running ovs-vswitchd (0 when stopped).
func (h *Host) VswitchdPID() int {
	if h.vswitch == nil {
		return 0
	}
	return h.vswitch.cmd.Process.Pid
}

func (h *Host) stopAll() {
	if h.vswitch != nil {
		h.vswitch.stop(h.t)
		h.vswitch = nil
	}
	if h.ovsdb != nil {
		h.ovsdb.stop(h.t)
		h.ovsdb = nil
	}
}

// start runs an OVS daemon in the host namespace in the foreground, as a
// child that the kernel kills when the test process dies.
func (h *Host) start(t TB, bin string, args ...string) *daemon {
	t.Helper()
	logf, err := os.OpenFile(h.Dir+"/"+bin+".out", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", h.Netns, bin}, args...)...)
	cmd.Env = h.Env()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		t.Fatalf("lab: start %s on %s: %v", bin, h.Name, err)
	}
	d := &daemon{name: bin, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		_ = logf.Close()
		close(d.done)
	}()
	return d
}

func (d *daemon) stop(t TB) {
	if d == nil {
		return
	}
	select {
	case <-d.done:
		return
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(5 * time.Second):
		t.Logf("lab: %s (pid %d) ignored SIGTERM; killing it", d.name, d.cmd.Process.Pid)
		_ = d.cmd.Process.Kill()
		<-d.done
	}
}

func (h *Host) tool(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = h.Env()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
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
	if out, err := run("ip", "link", "set", h.mgmtLink, "down"); err != nil {
		t.Fatalf("lab: cut management of %s: %v: %s", h.Name, err, out)
	}
}

// RestoreManagement brings the management veth cut by CutManagement back up.
func (h *Host) RestoreManagement(t TB) {
	t.Helper()
	if out, err := run("ip", "link", "set", h.mgmtLink, "up"); err != nil {
		t.Fatalf("lab: restore management of %s: %v: %s", h.Name, err, out)
	}
}
