// Package lab runs simulated hypervisors for brtun's integration tests: each
// host is a network namespace with its own ovsdb-server and ovs-vswitchd on
// the userspace (netdev) datapath, a management NIC on a shared management LAN
// and an underlay NIC enslaved to an OVS bridge br-phy that holds the tunnel
// IP. VMs are further namespaces joined to their host by a veth pair whose host
// end is left in the host namespace, ready to be bound to br-int.
//
// Address plan: host N has 198.51.100.N on the management LAN and 192.0.2.N
// on the underlay; the root namespace holds 198.51.100.254 (where a
// controller under test listens). Tenants use 198.18.0.0/15.
//
// Hygiene: every namespace, root-namespace link and run directory carries a
// prefix from testbed.NewPrefix ("bt" + the owner's PID in base 36 + one
// random character). Daemons are children of the test process with a
// parent-death signal; a cleanup removes everything on the way out, and New
// first removes leftovers whose owner process is gone. Only one lab runs at
// a time on a machine (the management LAN puts one address in the root
// namespace): New takes an exclusive lock on a lock file and holds it until
// the lab is torn down.
package lab

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/brtun/brtun/testbed"
)

// Fixed parts of the address plan.
const (
	ControllerIP = "198.51.100.254"
	mgmtPrefix   = "198.51.100."
	underlayNet  = "192.0.2."
	lockPath     = "/run/brtun-lab.lock"
	ovsdbPort    = 6640
)

// TB is what the lab needs of its caller: *testing.T and *testing.B satisfy
// it, and so can a program (the demo) that runs a lab outside go test.
type TB = testbed.TB

// Options configures a lab.
type Options struct {
	Hosts        int    // number of hosts, h1..hN (1..200)
	DatapathType string // OVS datapath type of br-phy; "netdev" (default)
	// ColdUnderlay leaves the hosts' tunnel neighbour caches as a fresh
	// ovs-vswitchd has them, empty (see learnUnderlay): only for a test of
	// what that costs.
	ColdUnderlay bool
}

// Lab is a set of simulated hosts on a management LAN and an underlay LAN.
type Lab struct {
	Prefix       string
	Dir          string // run directory, /tmp/<prefix>
	ControllerIP string
	Hosts        []*Host

	t            TB
	coldUnderlay bool
	mgmtBr       string
	underBr      string
	vms          []*VM
	// kernelHosts are hosts without OVS (kernel.go).
	kernelHosts []*KernelHost
	lock        *os.File
	closed      sync.Once
}

// New builds a lab with opts.Hosts hosts and registers its teardown with
// t.Cleanup. It fails the test (never skips) when the lab cannot be built,
// for example without root or without Open vSwitch installed.
func New(t TB, opts Options) *Lab {
	t.Helper()
	if opts.Hosts < 1 || opts.Hosts > 200 {
		t.Fatalf("lab: Hosts must be 1..200, got %d", opts.Hosts)
	}
	if opts.DatapathType == "" {
		opts.DatapathType = "netdev"
	}
	if os.Geteuid() != 0 {
		t.Fatalf("lab: integration tests need root (network namespaces, OVS); run them as root, e.g. via `make integration`")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatalf("lab: ip not found: install iproute2 (`make deps` does)")
	}
	testbed.NeedOVS(t)

	l := &Lab{t: t, ControllerIP: ControllerIP, coldUnderlay: opts.ColdUnderlay}
	l.takeLock()
	t.Cleanup(l.Close)
	removeLeftovers(t)

	// A failed lab of this process keeps its run directory (and so its
	// prefix) for its logs: claim a prefix whose directory does not exist.
	for attempt := 0; ; attempt++ {
		l.Prefix = testbed.NewPrefix()
		l.Dir = "/tmp/" + l.Prefix
		err := os.Mkdir(l.Dir, 0o755)
		if err == nil {
			break
		}
		if !os.IsExist(err) || attempt == 100 {
			t.Fatalf("lab: %v", err)
		}
	}
	l.mgmtBr = l.Prefix + "m"
	l.underBr = l.Prefix + "u"

	l.mustRun("ip", "link", "add", l.mgmtBr, "type", "bridge")
	l.mustRun("ip", "addr", "add", ControllerIP+"/24", "dev", l.mgmtBr)
	l.mustRun("ip", "link", "set", l.mgmtBr, "up")
	l.mustRun("ip", "link", "add", l.underBr, "type", "bridge")
	// The root namespace must not answer ARP on the underlay for addresses
	// it holds elsewhere: a machine whose own NIC has 192.0.2.N would else
	// claim host N's tunnel IP towards the lab's kernel VTEPs.
	if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+l.underBr+"/arp_ignore", []byte("1"), 0o644); err != nil {
		t.Fatalf("lab: arp_ignore on %s: %v", l.underBr, err)
	}
	l.mustRun("ip", "link", "set", l.underBr, "up")

	for i := 1; i <= opts.Hosts; i++ {
		l.Hosts = append(l.Hosts, l.addHost(i, opts.DatapathType))
	}
	l.learnUnderlay(t, "")
	return l
}

// learnUnderlay writes the underlay MAC address of every other host (OVS
// hosts and kernel VTEPs) into each OVS host's tunnel neighbour cache, as
// a host whose NIC has been talking would hold it; with only set (a tunnel
// IP), just the entries to and from that host (a kernel VTEP added, an
// ovs-vswitchd restarted). OVS's userspace tunnels drop a packet towards a
// remote missing from that cache (they send an ARP request instead), and
// they learn entries only from ARP replies addressed to the bridge, and
// only once the switch has a tunnel port: without this the first packet in
// each direction between two hosts is lost, and a test's first ping
// depends on its VM's ARP retry a second later (that failed a CI run). OVS
// 3.1 keeps such entries through tnl/neigh/flush. OVS hosts whose
// ovs-vswitchd is not running are left out: their restart runs this for
// them.
func (l *Lab) learnUnderlay(t TB, only string) {
	t.Helper()
	if l.coldUnderlay {
		return
	}
	type peer struct{ ip, mac string }
	var peers []peer
	// Only the userspace datapath needs the entries, and every lab host
	// has the same datapath type.
	userspace := func(h *Host) bool { return h.DatapathType == "netdev" && h.VswitchdRunning() }
	for _, h := range l.Hosts {
		if userspace(h) {
			peers = append(peers, peer{h.TunnelIP, h.phyMAC})
		}
	}
	for _, k := range l.kernelHosts {
		peers = append(peers, peer{k.TunnelIP, k.eth1MAC})
	}
	// One shell per host, a few at a time: a 100-host lab sets 9,900
	// entries (18 s).
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		fails []string
		slots = make(chan struct{}, 4)
	)
	for _, h := range l.Hosts {
		if !userspace(h) {
			continue
		}
		var cmds []string
		for _, p := range peers {
			if p.ip == h.TunnelIP || (only != "" && h.TunnelIP != only && p.ip != only) {
				continue
			}
			cmds = append(cmds, fmt.Sprintf("ovs-appctl -t %s/ovs-vswitchd.ctl tnl/neigh/set br-phy %s %s", h.Dir, p.ip, p.mac))
		}
		if len(cmds) == 0 {
			continue
		}
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer func() { <-slots; wg.Done() }()
			if _, err := testbed.Run(h.Env(), "sh", "-ec", strings.Join(cmds, "\n")); err != nil {
				mu.Lock()
				fails = append(fails, fmt.Sprintf("%s: %v", h.Name, err)) // err holds the output
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(fails) > 0 {
		t.Fatalf("lab: tunnel neighbours: %s", strings.Join(fails, "; "))
	}
}

// Host returns the host with the given name (h1, h2, ...).
func (l *Lab) Host(name string) *Host {
	for _, h := range l.Hosts {
		if h.Name == name {
			return h
		}
	}
	l.t.Fatalf("lab: no host %q", name)
	return nil
}

func (l *Lab) addHost(i int, dpType string) *Host {
	t := l.t
	netns := fmt.Sprintf("%sh%d", l.Prefix, i)
	h := &Host{
		Name:         fmt.Sprintf("h%d", i),
		Index:        i,
		MgmtIP:       fmt.Sprintf("%s%d", mgmtPrefix, i),
		TunnelIP:     fmt.Sprintf("%s%d", underlayNet, i),
		DatapathType: dpType,
		t:            t,
		lab:          l,
	}
	h.OVSDB = fmt.Sprintf("tcp:%s:%d", h.MgmtIP, ovsdbPort)

	l.mustRun("ip", "netns", "add", netns)
	h.Switch = testbed.NewSwitch(t, fmt.Sprintf("%s/h%d", l.Dir, i), netns)
	h.mustExec("ip", "link", "set", "lo", "up")

	mgmt := fmt.Sprintf("%sm%d", l.Prefix, i)
	l.mustRun("ip", "link", "add", mgmt, "type", "veth", "peer", "name", "eth0", "netns", h.Netns)
	l.mustRun("ip", "link", "set", mgmt, "master", l.mgmtBr, "up")
	h.mgmtLink = mgmt
	h.mustExec("ip", "addr", "add", h.MgmtIP+"/24", "dev", "eth0")
	h.mustExec("ip", "link", "set", "eth0", "up")

	under := fmt.Sprintf("%su%d", l.Prefix, i)
	l.mustRun("ip", "link", "add", under, "type", "veth", "peer", "name", "eth1", "netns", h.Netns)
	l.mustRun("ip", "link", "set", under, "master", l.underBr, "up")
	// eth1 is br-phy's port: the host's kernel must not answer ARP for the
	// tunnel IP there with eth1's own MAC, as it would (the NIC's frames
	// reach it beside ovs-vswitchd's packet socket; a DPDK NIC's would
	// not). A kernel VTEP that took that answer sent its VXLAN packets to
	// eth1's MAC, which br-phy does not terminate.
	h.mustExec("sysctl", "-q", "-w", "net.ipv4.conf.eth1.arp_ignore=1")
	h.mustExec("ip", "link", "set", "eth1", "up")

	h.StartOVSDB(t)
	if _, err := h.Vsctl("--no-wait", "init"); err != nil {
		t.Fatalf("lab: ovs-vsctl init on %s: %v", h.Name, err)
	}
	h.StartVswitchd(t)

	if _, err := h.Vsctl("add-br", "br-phy", "--", "set", "bridge", "br-phy", "datapath_type="+dpType,
		"--", "add-port", "br-phy", "eth1"); err != nil {
		t.Fatalf("lab: br-phy on %s: %v", h.Name, err)
	}
	h.upPhy(t)
	return h
}

// VMOptions describes a VM: a namespace with one NIC, eth0.
type VMOptions struct {
	Name      string // short, unique in the lab (e.g. "a1"); at most 8 characters
	MAC       string // eth0's MAC address
	CIDR      string // eth0's IPv4 address with prefix length, e.g. 198.18.0.1/24
	IPv6CIDR  string // optional IPv6 address, e.g. 2001:db8:100::1/64
	MTU       int    // default 1400, leaving room for tunnel overhead
	HostIface string // name of the host end; default "t" + Name
	// Quiet makes eth0 send nothing of its own accord from the moment it
	// comes up: IPv6 off for an IPv4-only VM; no router solicitations for a
	// dual-stack one. Set afterwards, a solicitation or MLD report the
	// kernel already scheduled could still leave once the port is bound.
	Quiet bool
}

// VM is a namespace standing in for a virtual machine on a host.
type VM struct {
	Name      string
	Host      *Host // nil for a VM behind a KernelHost
	Netns     string
	MAC       string
	IP        string // IPv4 address without prefix length
	HostIface string // the veth end in the host namespace, to bind to br-int
}

// AddVM creates a VM on host h. Its host-side interface is left in the host's
// namespace, up, and not attached to any bridge.
func (l *Lab) AddVM(t TB, h *Host, o VMOptions) *VM {
	t.Helper()
	if o.Name == "" || len(o.Name) > 8 {
		t.Fatalf("lab: VM name %q must be 1..8 characters", o.Name)
	}
	if o.MTU == 0 {
		o.MTU = 1400
	}
	if o.HostIface == "" {
		o.HostIface = "t" + o.Name
	}
	vm := &VM{Name: o.Name, Host: h, Netns: l.Prefix + "v" + o.Name, MAC: o.MAC, HostIface: o.HostIface}
	vm.IP, _, _ = strings.Cut(o.CIDR, "/")
	l.mustRun("ip", "netns", "add", vm.Netns)
	l.vms = append(l.vms, vm)
	mtu := strconv.Itoa(o.MTU)
	l.mustRun("ip", "link", "add", "name", o.HostIface, "netns", h.Netns, "mtu", mtu,
		"type", "veth", "peer", "name", "eth0", "netns", vm.Netns, "mtu", mtu)
	// The host-side end carries no IPv6: the host's kernel would send its
	// own router solicitations and MLD reports on it, which br-int's
	// counters of the port count as frames delivered to the VM.
	h.mustExec("sysctl", "-q", "-w", "net.ipv6.conf."+o.HostIface+".disable_ipv6=1")
	h.mustExec("ip", "link", "set", o.HostIface, "up")
	vm.mustExec(t, "ip", "link", "set", "lo", "up")
	if o.MAC != "" {
		vm.mustExec(t, "ip", "link", "set", "eth0", "address", o.MAC)
	}
	if o.CIDR != "" {
		vm.mustExec(t, "ip", "addr", "add", o.CIDR, "dev", "eth0")
	}
	if o.IPv6CIDR != "" {
		// nodad: the address is usable at once, no duplicate detection delay.
		vm.mustExec(t, "ip", "addr", "add", o.IPv6CIDR, "dev", "eth0", "nodad")
	}
	if o.Quiet {
		quiet := []string{"sysctl", "-q", "-w", "net.ipv6.conf.eth0.disable_ipv6=1"}
		if o.IPv6CIDR != "" {
			quiet = []string{"sysctl", "-q", "-w", "net.ipv6.conf.eth0.accept_ra=0", "net.ipv6.conf.eth0.router_solicitations=0"}
		}
		vm.mustExec(t, quiet...)
	}
	vm.mustExec(t, "ip", "link", "set", "eth0", "up")
	return vm
}

// Run runs a command inside the VM and returns its combined output.
func (vm *VM) Run(args ...string) (string, error) {
	return testbed.Run(nil, "ip", append([]string{"netns", "exec", vm.Netns}, args...)...)
}

// Ping sends count ICMP echo requests at 5/s from the VM to ip and reports
// whether at least one answer came back, with ping's output.
func (vm *VM) Ping(ip string, count int) (bool, string) {
	out, err := vm.Run("ping", "-c", strconv.Itoa(count), "-i", "0.2", "-W", "1", ip)
	return err == nil, out
}

func (vm *VM) mustExec(t TB, args ...string) {
	t.Helper()
	if out, err := vm.Run(args...); err != nil {
		t.Fatalf("lab: in VM %s: %v: %s", vm.Name, err, out)
	}
}

func (l *Lab) mustRun(name string, args ...string) {
	l.t.Helper()
	if _, err := testbed.Run(nil, name, args...); err != nil {
		l.t.Fatalf("lab: %v", err)
	}
}

// Close tears the lab down now, releasing the lab lock, so that a test can
// build another lab after it (the lock is per open file: a second New in
// the same process waits for the first lab's Close). New registers it with
// t.Cleanup; it runs once.
func (l *Lab) Close() { l.closed.Do(l.teardown) }

// teardown stops every daemon and removes every namespace, link and
// directory of this lab, also after a failure.
func (l *Lab) teardown() {
	for _, h := range l.Hosts {
		h.Stop(l.t)
	}
	for _, vm := range l.vms {
		_, _ = testbed.Run(nil, "ip", "netns", "del", vm.Netns)
	}
	for _, h := range l.Hosts {
		_, _ = testbed.Run(nil, "ip", "netns", "del", h.Netns)
	}
	for _, k := range l.kernelHosts {
		k.stopFRR(l.t)
		_, _ = testbed.Run(nil, "ip", "netns", "del", k.Netns)
	}
	if l.mgmtBr != "" {
		_, _ = testbed.Run(nil, "ip", "link", "del", l.mgmtBr)
		_, _ = testbed.Run(nil, "ip", "link", "del", l.underBr)
	}
	if l.Dir != "" {
		testbed.RemoveRunDir(l.t, l.Dir)
	}
	if l.lock != nil {
		_ = l.lock.Close() // releases the flock
	}
}

func (l *Lab) takeLock() {
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		l.t.Fatalf("lab: lock %s: %v", lockPath, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		_ = f.Close()
		l.t.Fatalf("lab: lock %s: %v", lockPath, err)
	}
	l.lock = f
}

// stale reports whether a name made by testbed.NewPrefix belongs to a lab
// that is gone: its owner process is, or it is this process's own (only one
// lab runs at a time, and this one has not made anything yet).
func stale(name string) bool {
	pid, ok := testbed.PrefixOwner(name)
	return ok && (pid == os.Getpid() || !testbed.Running(pid))
}

// removeLeftovers deletes namespaces and links of labs that are gone, and
// kills processes still running inside those namespaces (found by
// namespace, never by name), and run directories whose owner is gone.
func removeLeftovers(t TB) {
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		name := e.Name()
		if !stale(name) {
			continue
		}
		if pids, err := testbed.Run(nil, "ip", "netns", "pids", name); err == nil {
			for _, f := range strings.Fields(pids) {
				if pid, err := strconv.Atoi(f); err == nil {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		if _, err := testbed.Run(nil, "ip", "netns", "del", name); err != nil {
			t.Logf("lab: removing leftover netns %s: %v", name, err)
		}
	}
	if out, err := testbed.Run(nil, "ip", "-o", "link", "show"); err == nil {
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			if stale(name) {
				_, _ = testbed.Run(nil, "ip", "link", "del", name)
			}
		}
	}
	testbed.RemoveLeftoverDirs()
}
