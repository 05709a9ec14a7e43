//go:build bench

package bench

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/brtun/brtun/testbed"
	"github.com/brtun/brtun/testbed/lab"
	"github.com/brtun/brtun/topology"
)

var (
	flagEVPNMACs = flag.Int("evpn-macs", 500, "TestBenchEVPN: MACs that appear at once behind the first FRR")
	flagEVPNReps = flag.Int("evpn-reps", 3, "TestBenchEVPN: repetitions of each measurement (median reported)")
)

const (
	evpnASN = 65000
	evpnVNI = 5001
)

// evpnLab is two OVS hosts managed by brtun and two FRR kernel VTEPs, all
// in VNI 5001 (network blue with evpn).
type evpnLab struct {
	t      *testing.T
	lab    *lab.Lab
	b      *testbed.Brtun
	f1, f2 *lab.KernelHost
	// fv1 and fv2 are the host-side interfaces of a VM behind f1 and f2:
	// static bridge entries on them make MACs appear behind that FRR.
	fv1, fv2 string
}

func startEVPNLab(t *testing.T) *evpnLab {
	l := lab.New(t, lab.Options{Hosts: 2})
	e := &evpnLab{t: t, lab: l}
	e.f1, e.f2 = l.AddKernelHost(t, "f9", 9), l.AddKernelHost(t, "f8", 8)
	for i, k := range []*lab.KernelHost{e.f1, e.f2} {
		other := e.f2
		if i == 1 {
			other = e.f1
		}
		k.AddVNI(t, evpnVNI)
		vm := k.AddVM(t, evpnVNI, lab.VMOptions{Name: "fv" + k.Name, MAC: fmt.Sprintf("02:00:00:00:09:%02x", k.Index), CIDR: fmt.Sprintf("198.18.0.%d/24", 200+k.Index), Quiet: true})
		if i == 0 {
			e.fv1 = vm.HostIface
		} else {
			e.fv2 = vm.HostIface
		}
		// iBGP with brtun and with the other FRR (a full mesh, so each FRR
		// learns the other's MACs directly: the reference path).
		k.StartFRR(t, testbed.EVPNBGPD(l.Prefix+k.Name, k.MgmtIP, evpnASN, lab.ControllerIP, other.MgmtIP))
	}
	apiPort, ofPort := testbed.FreePort(t, "127.0.0.1"), testbed.FreePort(t, lab.ControllerIP)
	of := fmt.Sprintf("tcp:%s:%d", lab.ControllerIP, ofPort)
	e.b = testbed.StartBrtun(t, testbed.BrtunOptions{
		Args: []string{"--api-listen", fmt.Sprintf("127.0.0.1:%d", apiPort), "--openflow-listen", of, "--openflow-advertise", of,
			"--data-dir", filepath.Join(l.Dir, "brtun-data"), "--drift-interval", "1h", "--log-level", "warn",
			"--bgp-asn", fmt.Sprint(evpnASN), "--bgp-router-id", lab.ControllerIP, "--bgp-listen-address", lab.ControllerIP,
			"--bgp-listen-port", "179"},
		API:     fmt.Sprintf("http://127.0.0.1:%d", apiPort),
		LogPath: filepath.Join(l.Dir, "brtun.log"),
	})
	b := &brtun{Brtun: e.b, t: t, client: http.DefaultClient}
	for _, h := range l.Hosts {
		b.mustDo("POST", "/v1/hosts", map[string]any{"name": h.Name, "ovsdb": h.OVSDB, "tunnel_ip": h.TunnelIP, "datapath_type": h.DatapathType})
	}
	b.mustDo("POST", "/v1/networks", map[string]any{"name": "blue", "type": topology.VXLAN, "segment_id": evpnVNI, "evpn": true})
	for _, k := range []*lab.KernelHost{e.f1, e.f2} {
		b.mustDo("POST", "/v1/bgp/peers", map[string]any{"address": k.MgmtIP, "asn": evpnASN})
	}
	var rev uint64
	for i, h := range l.Hosts {
		vm := l.AddVM(t, h, lab.VMOptions{Name: fmt.Sprintf("a%d", i+1), MAC: fmt.Sprintf("02:00:00:00:01:%02x", i+1), CIDR: fmt.Sprintf("198.18.0.%d/24", i+1), Quiet: true})
		rev = b.mustDo("POST", "/v1/networks/blue/ports", map[string]any{"name": vm.Name, "host": h.Name, "interface": vm.HostIface, "mac": vm.MAC, "ips": []string{vm.IP}})
	}
	b.waitApplied(2*time.Minute, rev, "h1", "h2")
	// Every session is up: a MAC behind each FRR reaches the other FRR and
	// both OVS hosts, and brtun's port MACs reach both FRRs.
	w1, w2 := "02:c0:00:00:00:09", "02:c0:00:00:00:08"
	e.staticMACs(e.f1, e.fv1, "add", []string{w1})
	e.staticMACs(e.f2, e.fv2, "add", []string{w2})
	checks := map[string]func() bool{
		"FRR 2 has FRR 1's MAC":   func() bool { return e.fdbHas(e.f2, w1, e.f1.TunnelIP) },
		"FRR 1 has FRR 2's MAC":   func() bool { return e.fdbHas(e.f1, w2, e.f2.TunnelIP) },
		"FRR 1 has h1's port MAC": func() bool { return e.fdbHas(e.f1, "02:00:00:00:01:01", l.Hosts[0].TunnelIP) },
		"FRR 2 has h2's port MAC": func() bool { return e.fdbHas(e.f2, "02:00:00:00:01:02", l.Hosts[1].TunnelIP) },
		"the OVS hosts have both": func() bool { return e.hostsHave([]string{w1, w2}) },
	}
	var missing []string
	ready := testbed.Poll(2*time.Minute, 100*time.Millisecond, func() bool {
		missing = missing[:0]
		for what, ok := range checks {
			if !ok() {
				missing = append(missing, what)
			}
		}
		return len(missing) == 0
	})
	if !ready {
		dump, _ := l.Hosts[0].Ofctl("dump-flows", "br-tun", "table=20", "--no-names")
		t.Fatalf("BGP sessions up and the initial MACs everywhere; still missing: %v\nFRR 1 FDB:\n%s\nFRR 2 FDB:\n%s\nh1 br-tun table 20:\n%s", missing, fdb(e.f1), fdb(e.f2), dump)
	}
	return e
}

// fdb returns `bridge fdb show dev vx5001` of a kernel host.
func fdb(k *lab.KernelHost) string { return k.FDB(evpnVNI) }

// fdbHas reports whether k's VXLAN FDB sends mac to dst.
func (e *evpnLab) fdbHas(k *lab.KernelHost, mac, dst string) bool {
	for _, l := range strings.Split(fdb(k), "\n") {
		if strings.HasPrefix(l, mac+" ") && strings.Contains(l, " dst "+dst+" ") {
			return true
		}
	}
	return false
}

// fdbHasAll reports whether k's VXLAN FDB holds every MAC of macs.
func fdbHasAll(k *lab.KernelHost, macs []string) bool {
	got := map[string]bool{}
	for _, l := range strings.Split(fdb(k), "\n") {
		if m, _, ok := strings.Cut(l, " "); ok && strings.Contains(l, " dst ") {
			got[m] = true
		}
	}
	for _, m := range macs {
		if !got[m] {
			return false
		}
	}
	return true
}

// hostsHave reports whether br-tun's table 20 on both OVS hosts has an
// entry for every MAC of macs.
func (e *evpnLab) hostsHave(macs []string) bool {
	for _, h := range e.lab.Hosts {
		if !hostHas(h, macs) {
			return false
		}
	}
	return true
}

// hostHas reports whether br-tun's table 20 on h has an entry (priority 2:
// registered and imported MACs) for every MAC of macs.
func hostHas(h *lab.Host, macs []string) bool {
	out, err := h.Ofctl("dump-flows", "br-tun", "table=20", "--no-names")
	if err != nil {
		return false
	}
	got := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		if _, rest, ok := strings.Cut(l, "dl_dst="); ok && strings.Contains(l, "priority=2,") {
			got[strings.FieldsFunc(rest, func(r rune) bool { return r == ',' || r == ' ' })[0]] = true
		}
	}
	for _, m := range macs {
		if !got[m] {
			return false
		}
	}
	return true
}

// staticMACs adds (or deletes) static bridge entries for macs on the port
// iface of k's bridge, in one `bridge -batch`: zebra sees them as local
// MACs and bgpd advertises them.
func (e *evpnLab) staticMACs(k *lab.KernelHost, iface, op string, macs []string) {
	var b strings.Builder
	for _, m := range macs {
		fmt.Fprintf(&b, "fdb %s %s dev %s master static\n", op, m, iface)
	}
	path := filepath.Join(e.lab.Dir, "fdb-batch")
	must(e.t, os.WriteFile(path, []byte(b.String()), 0o644))
	k.Must(e.t, "bridge", "-batch", path)
}

// race polls each condition every 20 ms from t0 on, concurrently, and
// returns how long each took to hold (it fails the test after d). A poll
// of an FRR FDB (`bridge fdb show`) takes a few ms, one of an OVS table
// (`ovs-ofctl dump-flows`) tens of ms on a loaded machine: brtun's figures
// carry the larger polling error.
func race(t *testing.T, t0 time.Time, d time.Duration, conds ...func() bool) []time.Duration {
	out := make([]time.Duration, len(conds))
	var wg sync.WaitGroup
	for i, c := range conds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Since(t0) < d {
				if c() {
					out[i] = time.Since(t0)
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
			out[i] = -1
		}()
	}
	wg.Wait()
	for i, o := range out {
		if o < 0 {
			t.Fatalf("condition %d did not hold within %s", i, d)
		}
	}
	return out
}

// rounded lists durations to the millisecond.
func rounded(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}

func macsFor(rep, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("02:a0:%02x:%02x:%02x:%02x", rep, n>>8&0xff, i>>8&0xff, i&0xff)
	}
	return out
}

// TestBenchEVPN measures BGP EVPN convergence with a second FRR as the
// reference, in one run (docs/benchmarks.md): n MACs appear behind the
// first FRR; the time until the second FRR's kernel FDB holds them all,
// beside the time until both brtun hosts' table 20 does (they forward to
// them then). And one brtun port bound (POST of the port) until both FRRs'
// kernel FDBs hold its MAC, beside one MAC appearing behind the second FRR
// until the first FRR's FDB holds it.
func TestBenchEVPN(t *testing.T) {
	began := time.Now()
	e := startEVPNLab(t)
	rep := &report{}
	b := &brtun{Brtun: e.b, t: t, client: http.DefaultClient}
	reps := *flagEVPNReps

	for _, n := range []int{1, *flagEVPNMACs} {
		var ref, got []time.Duration
		for r := range reps {
			macs := macsFor(r, n)
			t0 := time.Now()
			e.staticMACs(e.f1, e.fv1, "add", macs)
			h1, h2 := e.lab.Hosts[0], e.lab.Hosts[1]
			d := race(t, t0, 2*time.Minute, func() bool { return fdbHasAll(e.f2, macs) },
				func() bool { return hostHas(h1, macs) }, func() bool { return hostHas(h2, macs) })
			ref, got = append(ref, d[0]), append(got, max(d[1], d[2]))
			e.staticMACs(e.f1, e.fv1, "del", macs)
			waitTrue(t, 2*time.Minute, func() bool { return !e.hostsHave(macs[:1]) && !fdbHasAll(e.f2, macs[:1]) }, "MACs withdrawn")
		}
		mr, mg := median(ref), median(got)
		rep.row(fmt.Sprintf("evpn %d MAC(s)", n), fmt.Sprintf("%.0f ms to both hosts' table 20", float64(mg.Milliseconds())),
			fmt.Sprintf("%.0f ms to the 2nd FRR's kernel FDB", float64(mr.Milliseconds())), secs(mg)/secs(mr), "<= 1.0x")
		rep.note("evpn %d MAC(s): brtun %v (the later of the two hosts), reference %v", n, rounded(got), rounded(ref))
	}

	var ref, got []time.Duration
	for r := range reps {
		name := fmt.Sprintf("p%d", r)
		vm := e.lab.AddVM(t, e.lab.Hosts[0], lab.VMOptions{Name: name, MAC: fmt.Sprintf("02:00:00:00:05:%02x", r), CIDR: fmt.Sprintf("198.18.0.%d/24", 50+r), Quiet: true})
		t0 := time.Now()
		b.mustDo("POST", "/v1/networks/blue/ports", map[string]any{"name": name, "host": "h1", "interface": vm.HostIface, "mac": vm.MAC, "ips": []string{vm.IP}})
		h1 := e.lab.Hosts[0].TunnelIP
		got = append(got, race(t, t0, time.Minute, func() bool { return e.fdbHas(e.f1, vm.MAC, h1) && e.fdbHas(e.f2, vm.MAC, h1) })[0])

		mac := fmt.Sprintf("02:b0:00:00:00:%02x", r)
		t0 = time.Now()
		e.staticMACs(e.f2, e.fv2, "add", []string{mac})
		ref = append(ref, race(t, t0, time.Minute, func() bool { return e.fdbHas(e.f1, mac, e.f2.TunnelIP) })[0])
	}
	mr, mg := median(ref), median(got)
	rep.row("evpn bind", fmt.Sprintf("%.0f ms port POST to both FRRs' kernel FDB", float64(mg.Milliseconds())),
		fmt.Sprintf("%.0f ms new MAC behind FRR 2 to FRR 1's FDB", float64(mr.Milliseconds())), secs(mg)/secs(mr), "none")
	rep.note("evpn bind: brtun %v, reference %v", rounded(got), rounded(ref))
	frrV, _ := exec.Command("/usr/lib/frr/bgpd", "--version").Output()
	first, _, _ := strings.Cut(string(frrV), "\n")
	load, _ := os.ReadFile("/proc/loadavg")
	rep.note("whole run: %.0f s on %d CPUs (%s; %s), load average at the end %s; iBGP full mesh (brtun, FRR 1, FRR 2), `timers bgp 1 3`; %d repetitions, medians",
		time.Since(began).Seconds(), runtime.NumCPU(), machine(), strings.TrimSpace(first), strings.Join(strings.Fields(string(load))[:3], " "), reps)
	if *flagDoc != "" {
		must(t, writeDoc(*flagDoc, evpnSection(), rep))
	}
}

// evpnSection is TestBenchEVPN's section of docs/benchmarks.md.
func evpnSection() docSection {
	return docSection{
		target:  "make bench-evpn",
		command: "`make bench-evpn` (`go test -tags bench -run TestBenchEVPN ./bench/ -args -doc docs/benchmarks.md`)",
		heading: "## BGP EVPN convergence (latest `make bench-evpn` run)",
		tools:   []string{"ovs-vswitchd"},
	}
}
