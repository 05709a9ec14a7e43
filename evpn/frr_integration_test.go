//go:build integration

package evpn

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/brtun/brtun/testbed"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
)

// Addresses of this test (address plan: 198.51.100.0/24 management,
// 192.0.2.0/24 underlay, 198.18.0.0/15 tenants).
var (
	speakerIP = netip.MustParseAddr("198.51.100.253") // root namespace
	frrMgmtIP = netip.MustParseAddr("198.51.100.9")
	frrVTEP   = netip.MustParseAddr("192.0.2.9")
	ovsHost1  = netip.MustParseAddr("192.0.2.1") // tunnel IPs of brtun hosts we advertise
	ovsHost2  = netip.MustParseAddr("192.0.2.2")
)

const (
	vmMAC   = "02:00:00:00:09:01" // behind FRR's kernel VTEP
	portA   = "02:00:00:00:01:01" // brtun port on host 1, blue
	portB   = "02:00:00:00:01:02" // brtun port on host 2, blue
	portRed = "02:00:00:00:02:01" // brtun port on host 1, VNI 5002 which FRR does not carry
)

// frrLab is a network namespace running FRR (zebra and bgpd) with a Linux
// bridge and a kernel VXLAN device for VNI 5001, joined to the root
// namespace by a veth. It holds the integration lab lock (it puts a
// 198.51.100.0/24 address in the root namespace, like the OVS lab).
type frrLab struct {
	t      *testing.T
	prefix string
	ns     string
	vmNS   string
	dir    string
	frr    *testbed.FRR
}

func run(args ...string) (string, error) {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (f *frrLab) must(args ...string) string {
	f.t.Helper()
	out, err := run(args...)
	require.NoError(f.t, err)
	return out
}

func (f *frrLab) nsExec(args ...string) (string, error) {
	return run(append([]string{"ip", "netns", "exec", f.ns}, args...)...)
}

// newFRRLab starts FRR; bgpExtra are more `router bgp` lines.
func newFRRLab(t *testing.T, bgpExtra ...string) *frrLab {
	require.Zero(t, os.Geteuid(), "the FRR test needs root (network namespaces); run it as root")
	for _, bin := range []string{"ip", "bridge", "/usr/lib/frr/zebra", "/usr/lib/frr/bgpd", "vtysh"} {
		_, err := exec.LookPath(bin)
		require.NoError(t, err, "%s missing: apt-get install -y frr iproute2 (make deps)", bin)
	}
	lock, err := os.OpenFile("/run/brtun-lab.lock", os.O_CREATE|os.O_RDWR, 0o644)
	require.NoError(t, err)
	require.NoError(t, syscall.Flock(int(lock.Fd()), syscall.LOCK_EX))
	t.Cleanup(func() { _ = lock.Close() })

	// "bt" + PID in base 36 + a random character: the OVS lab's leftover
	// cleanup recognises these names once this process is gone.
	var b [1]byte
	_, _ = rand.Read(b[:])
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	p := fmt.Sprintf("bt%05s%c", strconv.FormatInt(int64(os.Getpid()), 36), digits[int(b[0])%len(digits)])
	f := &frrLab{t: t, prefix: p, ns: p + "f", vmNS: p + "v", dir: "/tmp/" + p + "frr"}
	t.Cleanup(f.teardown)

	f.must("ip", "netns", "add", f.ns)
	f.must("ip", "netns", "add", f.vmNS)
	f.must("ip", "-n", f.ns, "link", "set", "lo", "up")
	// Management and underlay share one veth: FRR reaches the speaker and
	// the advertised tunnel IPs (192.0.2.0/24 is connected) over it.
	f.must("ip", "link", "add", p+"r", "type", "veth", "peer", "name", "eth0", "netns", f.ns)
	f.must("ip", "addr", "add", speakerIP.String()+"/24", "dev", p+"r")
	f.must("ip", "link", "set", p+"r", "up")
	f.must("ip", "-n", f.ns, "addr", "add", frrMgmtIP.String()+"/24", "dev", "eth0")
	f.must("ip", "-n", f.ns, "addr", "add", frrVTEP.String()+"/24", "dev", "eth0")
	f.must("ip", "-n", f.ns, "link", "set", "eth0", "up")
	// The kernel VTEP, as in peers.md.
	f.must("ip", "-n", f.ns, "link", "add", "br5001", "type", "bridge", "stp_state", "0")
	f.must("ip", "-n", f.ns, "link", "add", "vx5001", "type", "vxlan", "id", "5001", "dstport", "4789", "local", frrVTEP.String(), "nolearning")
	f.must("ip", "-n", f.ns, "link", "set", "vx5001", "master", "br5001")
	f.must("ip", "-n", f.ns, "link", "set", "vx5001", "type", "bridge_slave", "learning", "off")
	f.must("ip", "-n", f.ns, "link", "set", "vx5001", "up")
	f.must("ip", "-n", f.ns, "link", "set", "br5001", "up")
	// A VM behind the bridge.
	f.must("ip", "-n", f.ns, "link", "add", "vm1", "type", "veth", "peer", "name", "eth0", "netns", f.vmNS)
	f.must("ip", "-n", f.ns, "link", "set", "vm1", "master", "br5001")
	f.must("ip", "-n", f.ns, "link", "set", "vm1", "up")
	f.must("ip", "-n", f.vmNS, "link", "set", "eth0", "address", vmMAC)
	f.must("ip", "-n", f.vmNS, "addr", "add", "198.18.0.9/24", "dev", "eth0")
	// The VM sends only what a test makes it send. With IPv6 its link-up
	// sent DAD, router solicitations and MLD reports for about ten seconds;
	// one of them is the likely reason FRR's bridge learnt the MAC as local
	// again just after TestFRRMACMobility moved it away, once (FRR then
	// outbid the move).
	f.must("ip", "netns", "exec", f.vmNS, "sysctl", "-q", "-w", "net.ipv6.conf.eth0.disable_ipv6=1")
	f.must("ip", "-n", f.vmNS, "link", "set", "eth0", "up")
	// The VM pings a neighbour it knows: each ping is one frame. Without it
	// the kernel's ARP retries went on for seconds after a ping, with the
	// same effect.
	f.must("ip", "-n", f.vmNS, "neigh", "replace", "198.18.0.99", "lladdr", "02:00:00:00:09:99", "dev", "eth0", "nud", "permanent")

	require.NoError(t, os.MkdirAll(f.dir, 0o755))
	bgpd := fmt.Sprintf(`hostname %[1]sb
router bgp 65000
 bgp router-id %[2]s
 no bgp default ipv4-unicast
 timers bgp 1 3
%[4]s neighbor %[3]s remote-as 65000
 neighbor %[3]s timers connect 1
 address-family l2vpn evpn
  neighbor %[3]s activate
  advertise-all-vni
 exit-address-family
`, p, frrMgmtIP, speakerIP, strings.Join(bgpExtra, ""))
	f.frr = testbed.StartFRR(t, testbed.FRROptions{Netns: f.ns, Dir: f.dir, BGPD: bgpd})
	return f
}

func (f *frrLab) startDaemon(name string) { f.frr.Start(f.t, name) }

// kill stops one of the daemons this test started, by the PID it wrote.
func (f *frrLab) kill(name string, sig syscall.Signal) { f.frr.Kill(name, sig) }

func (f *frrLab) teardown() {
	if f.frr != nil {
		f.frr.Stop(f.t) // logs FRR's state when the test failed
	}
	_, _ = run("ip", "netns", "del", f.vmNS)
	_, _ = run("ip", "netns", "del", f.ns)
	_, _ = run("ip", "link", "del", f.prefix+"r")
	_ = os.RemoveAll(f.dir)
}

// fdb returns `bridge fdb show dev vx5001` in FRR's namespace.
func (f *frrLab) fdb() string {
	out, _ := run("bridge", "-n", f.ns, "fdb", "show", "dev", "vx5001")
	return out
}

func hasFDB(fdb, mac string, dst netip.Addr) bool {
	for _, l := range strings.Split(fdb, "\n") {
		if strings.HasPrefix(l, mac+" ") && strings.Contains(l, " dst "+dst.String()+" ") {
			return true
		}
	}
	return false
}

// latest keeps the last State the speaker reported.
type latest struct {
	mu sync.Mutex
	st State
	n  int
}

func (l *latest) set(s State) { l.mu.Lock(); l.st = s; l.n++; l.mu.Unlock() }
func (l *latest) get() State  { l.mu.Lock(); defer l.mu.Unlock(); return l.st }

func (l *latest) network(vni uint32) ImportedNetwork {
	n, _ := l.get().Imported.Network(vni)
	return n
}

func hasVTEP(n ImportedNetwork, ip netip.Addr) bool {
	return slices.ContainsFunc(n.VTEPs, func(v RemoteVTEP) bool { return v.IP == ip })
}

func findMAC(n ImportedNetwork, mac string) (RemoteMAC, bool) {
	i := slices.IndexFunc(n.MACs, func(m RemoteMAC) bool { return m.MAC == mac })
	if i < 0 {
		return RemoteMAC{}, false
	}
	return n.MACs[i], true
}

func desiredFor(macs ...MAC) Desired {
	return Desired{Networks: map[uint32]Network{
		5001: {VTEPs: []netip.Addr{ovsHost1, ovsHost2}, MACs: macs},
		5002: {VTEPs: []netip.Addr{ovsHost1}, MACs: []MAC{{MAC: portRed, VTEP: ovsHost1}}},
	}}
}

// TestFRRPeering peers the speaker with FRR over iBGP and checks both
// directions against the kernel: FRR installs our type-2/type-3 routes into
// its VXLAN FDB, we import its type-3 and type-2 routes, a withdrawal leaves
// the FDB within 3 s, and a killed bgpd takes its routes away until it is
// back.
func TestFRRPeering(t *testing.T) {
	f := newFRRLab(t)
	var st latest
	ctx := context.Background()
	blueA := MAC{MAC: portA, IPs: []netip.Addr{netip.MustParseAddr("198.18.0.11")}, VTEP: ovsHost1}
	blueB := MAC{MAC: portB, VTEP: ovsHost2}
	s, err := Start(ctx, Options{
		Config: Config{ASN: 65000, RouterID: speakerIP, ListenAddress: speakerIP, ListenPort: 179,
			HoldTime: 3 * time.Second, KeepaliveInterval: time.Second, ConnectRetry: time.Second},
		Logger:   zaptest.NewLogger(t),
		OnUpdate: st.set,
	}, desiredFor(blueA, blueB), []Peer{{Address: frrMgmtIP, ASN: 65000}})
	require.NoError(t, err)
	defer s.Stop()

	established := func() bool {
		ps, ok, err := s.PeerStatus(ctx, frrMgmtIP)
		return err == nil && ok && ps.State == "established"
	}
	require.Eventually(t, established, 30*time.Second, 100*time.Millisecond, "session with FRR")

	// The VM behind FRR speaks once, so the bridge learns its MAC.
	_, _ = run("ip", "netns", "exec", f.vmNS, "ping", "-c", "1", "-W", "1", "198.18.0.99")

	// Export: FRR's zebra puts our routes into the kernel FDB.
	require.Eventually(t, func() bool {
		fdb := f.fdb()
		return hasFDB(fdb, portA, ovsHost1) && hasFDB(fdb, portB, ovsHost2) &&
			hasFDB(fdb, "00:00:00:00:00:00", ovsHost1) && hasFDB(fdb, "00:00:00:00:00:00", ovsHost2)
	}, 15*time.Second, 100*time.Millisecond, "FDB of vx5001:\n%s", f.fdb())
	assert.NotContains(t, f.fdb(), portRed, "VNI 5002's MAC (route target 65000:5002) must not reach VNI 5001")

	// Import: FRR's type-3 and the VM's type-2, next hop = FRR's VTEP IP.
	require.Eventually(t, func() bool {
		n := st.network(5001)
		_, ok := findMAC(n, vmMAC)
		return hasVTEP(n, frrVTEP) && ok
	}, 15*time.Second, 100*time.Millisecond, "imported: %+v", st.get().Imported)
	n := st.network(5001)
	m, _ := findMAC(n, vmMAC)
	assert.Equal(t, frrVTEP, m.VTEP)
	assert.Equal(t, frrMgmtIP, m.Peer)
	assert.Equal(t, RemoteVTEP{IP: frrVTEP, Peer: frrMgmtIP, RD: n.VTEPs[0].RD}, n.VTEPs[0])
	assert.Len(t, n.VTEPs, 1, "only FRR's VTEP; our own are not imported")
	_, has5002 := st.get().Imported.Network(5002)
	assert.False(t, has5002, "FRR does not carry VNI 5002: nothing imported there")
	ps, _, err := s.PeerStatus(ctx, frrMgmtIP)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, ps.Received, uint64(2))
	assert.GreaterOrEqual(t, ps.Advertised, uint64(6), "3 type-3, 3 type-2 for blue (+ VNI 5002)")
	assert.False(t, ps.Since.IsZero())

	// Withdrawal: port B goes away; its FDB entry leaves within 3 s, port A stays.
	start := time.Now()
	require.NoError(t, s.SetDesired(ctx, desiredFor(blueA)))
	require.Eventually(t, func() bool { return !hasFDB(f.fdb(), portB, ovsHost2) }, 3*time.Second, 50*time.Millisecond,
		"withdrawn MAC still in the FDB:\n%s", f.fdb())
	t.Logf("withdrawal reached the kernel FDB in %v", time.Since(start).Round(time.Millisecond))
	assert.True(t, hasFDB(f.fdb(), portA, ovsHost1), "positive control: port A is still installed")

	// bgpd killed: the session drops and FRR's routes leave our import.
	f.kill("bgpd", syscall.SIGKILL)
	require.Eventually(t, func() bool { return !established() }, 10*time.Second, 100*time.Millisecond, "session still up")
	require.Eventually(t, func() bool {
		n := st.network(5001)
		_, ok := findMAC(n, vmMAC)
		return !hasVTEP(n, frrVTEP) && !ok
	}, 10*time.Second, 100*time.Millisecond, "FRR's routes still imported: %+v", st.get().Imported)

	// bgpd back: session, imports and FDB entries come back.
	f.startDaemon("bgpd")
	require.Eventually(t, established, 30*time.Second, 100*time.Millisecond, "session with restarted FRR")
	nb, err := f.nsExec("vtysh", "--vty_socket", f.dir, "-c", "show bgp neighbors "+speakerIP.String())
	require.NoError(t, err)
	assert.Contains(t, nb, "L2VPN EVPN(preserved)", "the new session's OPEN carries the graceful restart F bit again")
	_, _ = run("ip", "netns", "exec", f.vmNS, "ping", "-c", "1", "-W", "1", "198.18.0.99")
	require.Eventually(t, func() bool {
		n := st.network(5001)
		_, ok := findMAC(n, vmMAC)
		return hasVTEP(n, frrVTEP) && ok
	}, 20*time.Second, 100*time.Millisecond, "imports after bgpd restart: %+v", st.get().Imported)
	require.Eventually(t, func() bool {
		fdb := f.fdb()
		return hasFDB(fdb, portA, ovsHost1) && hasFDB(fdb, "00:00:00:00:00:00", ovsHost1)
	}, 15*time.Second, 100*time.Millisecond, "FDB after bgpd restart:\n%s", f.fdb())
	assert.False(t, hasFDB(f.fdb(), portB, ovsHost2), "the withdrawn MAC stays away")
}

// Environment of the speaker process TestFRRSpeakerRestart runs.
const (
	envStates  = "BRTUN_EVPN_TEST_STATES"  // file the process appends every State to, one JSON line each
	envRestore = "BRTUN_EVPN_TEST_RESTORE" // file holding the State to restore, if any
)

// TestMain runs the speaker process of TestFRRSpeakerRestart when the test
// binary is started as one, and the tests otherwise.
func TestMain(m *testing.M) {
	if path := os.Getenv(envStates); path != "" {
		if err := speakerProcess(path, os.Getenv(envRestore)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	os.Exit(m.Run())
}

// speakerConfig is the speaker of the FRR tests.
var speakerConfig = Config{ASN: 65000, RouterID: speakerIP, ListenAddress: speakerIP, ListenPort: 179,
	HoldTime: 3 * time.Second, KeepaliveInterval: time.Second, ConnectRetry: time.Second,
	GracefulRestart: GracefulRestart{RestartTime: 60 * time.Second, DeferralTime: 10 * time.Second}}

// speakerProcess runs a speaker until it is killed, as brtun would.
func speakerProcess(statesPath, restorePath string) error {
	out, err := os.OpenFile(statesPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	var restore *State
	if restorePath != "" {
		b, err := os.ReadFile(restorePath)
		if err != nil {
			return err
		}
		restore = &State{}
		if err := json.Unmarshal(b, restore); err != nil {
			return err
		}
	}
	var mu sync.Mutex
	write := func(st State) {
		b, _ := json.Marshal(st)
		mu.Lock()
		_, _ = out.Write(append(b, '\n'))
		mu.Unlock()
	}
	blueA := MAC{MAC: portA, IPs: []netip.Addr{netip.MustParseAddr("198.18.0.11")}, VTEP: ovsHost1}
	_, err = Start(context.Background(), Options{Config: speakerConfig, OnUpdate: write, Restore: restore},
		desiredFor(blueA), []Peer{{Address: frrMgmtIP, ASN: 65000}})
	if err != nil {
		return err
	}
	select {}
}

// states reads the States a speaker process wrote.
func states(t *testing.T, path string) []State {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []State
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var st State
		require.NoError(t, json.Unmarshal(sc.Bytes(), &st))
		out = append(out, st)
	}
	return out
}

// startSpeakerProcess runs the test binary as a speaker process; it dies
// with the test (parent-death signal) and is killed by its PID at cleanup.
func startSpeakerProcess(t *testing.T, statesPath, restorePath string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envStates+"="+statesPath, envRestore+"="+restorePath)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	return cmd
}

// frrSession returns FRR's view of its session with the speaker.
func (f *frrLab) frrSession() string {
	out, err := f.nsExec("vtysh", "--vty_socket", f.dir, "-c", "show bgp neighbors "+speakerIP.String()+" json")
	if err != nil {
		return ""
	}
	var v map[string]struct {
		BgpState string `json:"bgpState"`
	}
	if json.Unmarshal([]byte(out), &v) != nil {
		return ""
	}
	return v[speakerIP.String()].BgpState
}

func importsVM(st State) bool {
	n, _ := st.Imported.Network(5001)
	_, ok := findMAC(n, vmMAC)
	return ok && hasVTEP(n, frrVTEP)
}

// TestFRRSpeakerRestart SIGKILLs a speaker process and starts it again with
// the State it stored: the new speaker reports FRR's routes from its first
// State on and never loses them, its sessions carry the graceful restart R
// and F bits for EVPN, FRR's routes come back into its FDB, and once FRR's
// End-of-RIB has come the held copy gives way to the live routes (a
// withdrawal by FRR is seen).
//
// FRR 8.4 itself does not keep EVPN routes across our restart: it retains a
// restarting peer's routes only for unicast, multicast and VPN families
// (FOREACH_AFI_SAFI_NSF in lib/zebra.h), so its FDB loses our entries when
// the session drops, even with `bgp graceful-restart` and
// `preserve-fw-state` configured as here. The test measures and logs that
// gap rather than asserting it away.
func TestFRRSpeakerRestart(t *testing.T) {
	// FRR as an explicit graceful restart helper that preserves forwarding
	// state: it still drops our EVPN routes at once.
	f := newFRRLab(t, " bgp graceful-restart\n", " bgp graceful-restart preserve-fw-state\n", " bgp graceful-restart restart-time 30\n")
	_, _ = run("ip", "netns", "exec", f.vmNS, "ping", "-c", "1", "-W", "1", "198.18.0.99")
	run1 := filepath.Join(f.dir, "states1.jsonl")
	run2 := filepath.Join(f.dir, "states2.jsonl")
	p1 := startSpeakerProcess(t, run1, "")

	ourRoutes := func() bool {
		fdb := f.fdb()
		return hasFDB(fdb, portA, ovsHost1) && hasFDB(fdb, "00:00:00:00:00:00", ovsHost1)
	}
	require.Eventually(t, ourRoutes, 30*time.Second, 100*time.Millisecond, "FDB:\n%s", f.fdb())
	require.Eventually(t, func() bool {
		l := states(t, run1)
		return len(l) > 0 && importsVM(l[len(l)-1])
	}, 20*time.Second, 100*time.Millisecond, "first speaker never imported FRR's routes")
	nb, err := f.nsExec("vtysh", "--vty_socket", f.dir, "-c", "show bgp neighbors "+speakerIP.String())
	require.NoError(t, err)
	assert.Contains(t, nb, "L2VPN EVPN(preserved)", "our OPEN carries the F bit for EVPN")
	assert.Contains(t, nb, "R bit: True")
	assert.Contains(t, nb, "Local GR Mode: Restart", "positive control: FRR runs graceful restart itself")
	l := states(t, run1)
	stored := l[len(l)-1]
	b, err := json.Marshal(stored)
	require.NoError(t, err)
	restorePath := filepath.Join(f.dir, "restore.json")
	require.NoError(t, os.WriteFile(restorePath, b, 0o644))

	// Watch FRR's FDB from now on.
	var missing, present int
	stop := make(chan struct{})
	watched := make(chan struct{})
	t0 := time.Now()
	go func() {
		defer close(watched)
		was := true
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			now := ourRoutes()
			if now {
				present++
			} else {
				missing++
			}
			if now != was {
				t.Logf("%v after the kill: our routes in FRR's FDB: %v", time.Since(t0).Round(time.Millisecond), now)
				was = now
			}
		}
	}()

	require.NoError(t, p1.Process.Signal(syscall.SIGKILL))
	_, _ = p1.Process.Wait()
	require.Eventually(t, func() bool { return f.frrSession() != "Established" }, 10*time.Second, 50*time.Millisecond,
		"FRR did not notice the killed speaker")
	t.Logf("%v after the kill: FRR sees the session down", time.Since(t0).Round(time.Millisecond))
	time.Sleep(2 * time.Second) // brtun is down for a while

	startSpeakerProcess(t, run2, restorePath)
	require.Eventually(t, func() bool { return len(states(t, run2)) > 0 }, 10*time.Second, 50*time.Millisecond)
	assert.Equal(t, stored.Imported, states(t, run2)[0].Imported, "the restarted speaker reports the stored imports at once")
	require.Eventually(t, func() bool { return f.frrSession() == "Established" }, 30*time.Second, 100*time.Millisecond,
		"session after the restart")
	time.Sleep(3 * time.Second) // End-of-RIB both ways, stale routes swept
	close(stop)
	<-watched
	t.Logf("FRR's FDB lacked our routes in %d of %d polls (50 ms apart) across the restart", missing, missing+present)
	assert.True(t, ourRoutes(), "our routes are back in FRR's FDB after the restart:\n%s", f.fdb())
	assert.Greater(t, present, 0, "positive control: the FDB was polled")
	for i, st := range states(t, run2) {
		assert.True(t, importsVM(st), "State %d of the restarted speaker lost FRR's routes: %+v", i, st.Imported)
	}

	// The held copy is gone after FRR's End-of-RIB: FRR withdrawing the VM's
	// MAC removes it (a held copy would have kept it).
	f.must("bridge", "-n", f.ns, "fdb", "del", vmMAC, "dev", "vm1", "master")
	require.Eventually(t, func() bool {
		l := states(t, run2)
		n, _ := l[len(l)-1].Imported.Network(5001)
		_, ok := findMAC(n, vmMAC)
		return !ok && hasVTEP(n, frrVTEP)
	}, 10*time.Second, 100*time.Millisecond, "FRR's withdrawal of the VM MAC was not imported")
	assert.True(t, ourRoutes(), "positive control: our routes are still in FRR's FDB")
}

// TestFRRMACMobility moves the VM's MAC between FRR's bridge and a brtun
// port and back (RFC 7432 MAC mobility against FRR's implementation): each
// side's higher sequence number wins, with no stale entry on either side.
func TestFRRMACMobility(t *testing.T) {
	f := newFRRLab(t)
	var st latest
	ctx := context.Background()
	blueA := MAC{MAC: portA, VTEP: ovsHost1}
	s, err := Start(ctx, Options{Config: speakerConfig, Logger: zaptest.NewLogger(t), OnUpdate: st.set},
		desiredFor(blueA), []Peer{{Address: frrMgmtIP, ASN: 65000}})
	require.NoError(t, err)
	defer s.Stop()

	// The VM is behind FRR: imported at FRR's VTEP.
	_, _ = run("ip", "netns", "exec", f.vmNS, "ping", "-c", "1", "-W", "1", "198.18.0.99")
	require.Eventually(t, func() bool {
		m, ok := findMAC(st.network(5001), vmMAC)
		return ok && m.VTEP == frrVTEP
	}, 30*time.Second, 100*time.Millisecond, "imported: %+v", st.get().Imported)
	m, _ := findMAC(st.network(5001), vmMAC)
	frrSeq := m.Seq

	// It moves to a brtun port on host 2: we advertise above FRR's number
	// and win; FRR points its FDB at host 2 and the MAC leaves our import.
	require.NoError(t, s.SetDesired(ctx, desiredFor(blueA, MAC{MAC: vmMAC, VTEP: ovsHost2})))
	seqOf := func(mac string) LocalSeq {
		for _, l := range st.get().Seqs {
			if l.MAC == mac && l.VNI == 5001 {
				return l
			}
		}
		return LocalSeq{}
	}
	assert.Equal(t, LocalSeq{VNI: 5001, MAC: vmMAC, VTEP: ovsHost2, Seq: frrSeq + 1}, seqOf(vmMAC))
	require.Eventually(t, func() bool { return hasFDB(f.fdb(), vmMAC, ovsHost2) }, 5*time.Second, 50*time.Millisecond,
		"FRR did not move the MAC to host 2:\n%s", f.fdb())
	require.Eventually(t, func() bool {
		_, ok := findMAC(st.network(5001), vmMAC)
		return !ok
	}, 5*time.Second, 50*time.Millisecond, "FRR's stale route for the moved MAC is still imported: %+v", st.get().Imported)
	assert.True(t, hasFDB(f.fdb(), portA, ovsHost1), "positive control: port A untouched")

	// It moves back behind FRR (the VM speaks there): FRR advertises above
	// our number, our route is superseded and withdrawn, the import points at FRR.
	back := time.Now()
	require.Eventually(t, func() bool {
		_, _ = run("ip", "netns", "exec", f.vmNS, "ping", "-c", "1", "-W", "1", "198.18.0.99")
		m, ok := findMAC(st.network(5001), vmMAC)
		return ok && m.VTEP == frrVTEP
	}, 15*time.Second, 100*time.Millisecond, "MAC did not move back to FRR: %+v\n%s", st.get().Imported, f.fdb())
	t.Logf("the move back behind FRR was imported after %v", time.Since(back).Round(time.Millisecond))
	m, _ = findMAC(st.network(5001), vmMAC)
	assert.Greater(t, m.Seq, frrSeq+1, "FRR advertised above our sequence number")
	assert.True(t, seqOf(vmMAC).Superseded, "our route is superseded: %+v", seqOf(vmMAC))
	// The bridge forwards to the VM's port again, not into the tunnel.
	// (FRR 8.4's zebra leaves the vxlan device's own "self" entry for the
	// MAC behind; the bridge no longer sends that MAC to the device, so it
	// carries no traffic. Logged, not asserted.)
	assert.Eventually(t, func() bool {
		return bridgeEntry(f, vmMAC) == "vm1"
	}, 3*time.Second, 50*time.Millisecond, "bridge entry of the VM MAC is on %q, not vm1", bridgeEntry(f, vmMAC))
	if hasFDB(f.fdb(), vmMAC, ovsHost2) {
		t.Logf("FRR left the vxlan self entry %s dst %v (inert)", vmMAC, ovsHost2)
	}
	assert.True(t, hasFDB(f.fdb(), portA, ovsHost1), "positive control: port A untouched")
	assert.Equal(t, "vx5001", bridgeEntry(f, portA), "positive control: port A is forwarded into the tunnel")
}

// bridgeEntry returns the port of br5001's forwarding entry for mac.
func bridgeEntry(f *frrLab, mac string) string {
	out, _ := run("bridge", "-n", f.ns, "fdb", "show", "br", "br5001")
	for _, l := range strings.Split(out, "\n") {
		fs := strings.Fields(l)
		if len(fs) >= 3 && fs[0] == mac && fs[1] == "dev" && slices.Contains(fs, "master") {
			return fs[2]
		}
	}
	return ""
}
