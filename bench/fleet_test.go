//go:build bench

package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/hollow"
	"github.com/brtun/brtun/testbed/lab"
)

// brTunFlood is br-tun's flood table (docs/pipeline.md).
const brTunFlood = 21

// fleetHost is one host of a scale run, hollow or real.
type fleetHost struct {
	name, ovsdb, tunnelIP, dpType string
	// flood is how many outputs br-tun's flood flows hold (the largest
	// number over the network flows of table 21); -1 when unknown.
	flood func() int
	// iface returns the interface the index-th port of the host binds.
	iface func(t testing.TB, index int) string
}

// fleet is the set of hosts one scale run manages.
type fleet struct {
	kind         string // "hollow" or "real"
	controllerIP string // where brtun listens for OpenFlow
	hosts        []*fleetHost
	// watch starts counting the flow changes on every bridge of the
	// fleet; stop returns how many happened since.
	watch func(t testing.TB) (stop func() int)
	// memory is the fleet's own memory per host (bytes): the hollow
	// process share and the ovsdb-servers' PSS; 0 for real hosts.
	memory func() (hollowPerHost, ovsdbPerHost float64)
	close  func()
}

// tunnelIP of hollow host i (1-based): they never send a packet, and the
// underlay 192.0.2.0/24 of the address plan holds only 254 hosts, so their
// tunnel addresses come from 198.19.0.0/16 (in the plan's 198.18.0.0/15).
func hollowTunnelIP(i int) string { return fmt.Sprintf("198.19.%d.%d", i/250, i%250+1) }

// startHollowFleet starts n hollow hosts (a real ovsdb-server each, a hollow
// vswitchd in this process) named prefix1..prefixN.
func startHollowFleet(t testing.TB, dir, prefix string, n int) *fleet {
	t.Helper()
	type started struct {
		db *hollow.DBServer
		h  *hollow.Host
	}
	all := make([]started, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	for i := range n {
		go func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			name := fmt.Sprintf("%s%d", prefix, i+1)
			db, err := hollow.StartDBServer(context.Background(), hollow.DBServerOptions{Dir: filepath.Join(dir, name)})
			if err != nil {
				errs <- fmt.Errorf("hollow host %s: %w", name, err)
				return
			}
			all[i] = started{db: db, h: hollow.Start(hollow.Options{Name: name, OVSDB: db.Socket})}
			errs <- nil
		}()
	}
	var failed []string
	for range n {
		if err := <-errs; err != nil {
			failed = append(failed, err.Error())
		}
	}
	f := &fleet{kind: "hollow", controllerIP: "127.0.0.1"}
	var once sync.Once
	f.close = func() {
		once.Do(func() {
			var wg sync.WaitGroup
			for _, s := range all {
				if s.db == nil {
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					s.h.Close()
					s.db.Stop()
				}()
			}
			wg.Wait()
		})
	}
	t.Cleanup(f.close)
	if len(failed) > 0 {
		t.Fatalf("%d of %d hollow hosts did not start; first: %s", len(failed), n, failed[0])
	}
	for i, s := range all {
		h := s.h
		f.hosts = append(f.hosts, &fleetHost{
			name: h.Name(), ovsdb: s.db.Socket, tunnelIP: hollowTunnelIP(i + 1), dpType: "netdev",
			flood: func() int {
				b := h.Bridge("br-tun")
				if b == nil {
					return -1
				}
				return floodOutputs(b.TableFlows(brTunFlood))
			},
			iface: func(_ testing.TB, index int) string { return fmt.Sprintf("tap%d", index) },
		})
	}
	flowMods := func() uint64 {
		var sum uint64
		for _, s := range all {
			for _, br := range s.h.BridgeNames() {
				if b := s.h.Bridge(br); b != nil {
					sum += b.FlowMods()
				}
			}
		}
		return sum
	}
	f.watch = func(testing.TB) func() int {
		before := flowMods()
		return func() int { return int(flowMods() - before) }
	}
	f.memory = func() (float64, float64) {
		self, _ := hollow.RSS(os.Getpid())
		var pss int64
		for _, s := range all {
			if v, err := hollow.PSS(s.db.PID()); err == nil {
				pss += v
			}
		}
		// The hollow vswitchds share this process with the harness and
		// etcd; its RSS divided is an upper bound of their share.
		return float64(self) / float64(n), float64(pss) / float64(n)
	}
	return f
}

// floodOutputs is the largest number of outputs of a network's flood flow
// (priority 1) among the given flows of br-tun's table 21.
func floodOutputs(fs []flows.Flow) int {
	most := 0
	for _, f := range fs {
		if f.Table == brTunFlood && f.Priority == 1 {
			most = max(most, strings.Count(f.ActionsString(), "output:"))
		}
	}
	return most
}

// startRealFleet builds a lab of n real hosts (ovsdb-server and
// ovs-vswitchd in network namespaces, testbed/lab).
func startRealFleet(t testing.TB, n int) *fleet {
	t.Helper()
	l := lab.New(t, lab.Options{Hosts: n})
	f := &fleet{kind: "real", controllerIP: l.ControllerIP, close: l.Close}
	vms := map[string]string{}
	var mu sync.Mutex
	for _, h := range l.Hosts {
		f.hosts = append(f.hosts, &fleetHost{
			name: h.Name, ovsdb: h.OVSDB, tunnelIP: h.TunnelIP, dpType: h.DatapathType,
			flood: func() int {
				out, err := h.Ofctl("dump-flows", "br-tun", fmt.Sprintf("table=%d", brTunFlood))
				if err != nil {
					return -1
				}
				most := 0
				for _, line := range strings.Split(out, "\n") {
					if strings.Contains(line, "priority=1,") {
						most = max(most, strings.Count(line, "output:"))
					}
				}
				return most
			},
			// A port on a real host needs a device: a VM (veth pair) per
			// index, made once and bound again by later operations.
			iface: func(t testing.TB, index int) string {
				key := fmt.Sprintf("%s/%d", h.Name, index)
				mu.Lock()
				defer mu.Unlock()
				if name, ok := vms[key]; ok {
					return name
				}
				vm := l.AddVM(t, h, lab.VMOptions{Name: fmt.Sprintf("v%d", len(vms)+1), Quiet: true})
				vms[key] = vm.HostIface
				return vm.HostIface
			},
		})
	}
	f.watch = func(t testing.TB) func() int {
		var stops []func() string
		for _, h := range l.Hosts {
			stops = append(stops, h.Monitor(t, "br-tun", "65535"), h.Monitor(t, "br-int", "65535"))
		}
		return func() int {
			total := 0
			for _, stop := range stops {
				ev, _ := flowEvents(stop())
				total += ev
			}
			return total
		}
	}
	f.memory = func() (float64, float64) { return 0, 0 }
	return f
}

// raiseNoFile lifts this process's open-file limit to its hard limit (the
// hollow vswitchds hold several sockets per host here) and fails when even
// that is below need. brtun, a Go program, raises its own limit the same way.
func raiseNoFile(t testing.TB, need uint64) {
	t.Helper()
	var lim syscall.Rlimit
	must(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim))
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		must(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim))
	}
	if lim.Max < need {
		t.Fatalf("RLIMIT_NOFILE hard limit %d is below the %d open files this run needs: raise it (ulimit -Hn, or LimitNOFILE) and run again", lim.Max, need)
	}
}

// memAvailable is MemAvailable of /proc/meminfo in bytes.
func memAvailable() float64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			var kb float64
			_, _ = fmt.Sscanf(strings.TrimSpace(v), "%f", &kb)
			return kb * 1024
		}
	}
	return 0
}
