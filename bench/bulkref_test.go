//go:build bench

package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/brtun/brtun/testbed"
	"github.com/brtun/brtun/topology"
)

// TestBulkReferences is the evidence behind the bulk benchmark's reference
// (docs/benchmarks.md, issue 23): on h1 holding -networks networks it times
// brtun's bulk install (as benchBulk does) and `ovs-ofctl --bundle` of the
// same flows into
//   - fresh bridges without ports, one after the other (bulk's reference
//     until 2026-12-05), with datapath_type system and netdev;
//   - h1's own bridges, emptied, brtun stopped: one after the other, both at
//     once, both at once over TCP instead of the unix socket, and one after
//     the other with the strict deletes of learned entries brtun sent before
//     2026-12-05 added to br-tun's bundle;
//   - fresh bridges in an ovs-vswitchd that has no port at all;
//
// -reps times, interleaved, each with ovs-vswitchd's CPU time. It prints the
// medians (lines "BULKREF") and checks every flow count.
//
//	go test -tags bench -run TestBulkReferences -v ./bench/ -args -networks 2000 -reps 5
func TestBulkReferences(t *testing.T) {
	root := testbed.RunDir(t)
	h1, h2, h3 := startOVS(t, root, "h1"), startOVS(t, root, "h2"), startOVS(t, root, "h3")
	hosts := []topology.Host{
		{Name: "h1", OVSDB: h1.DBSock, TunnelIP: "192.0.2.1", DatapathType: "system"},
		{Name: "h2", OVSDB: h2.DBSock, TunnelIP: "192.0.2.2", DatapathType: "system"},
	}
	rev := preload(t, filepath.Join(root, "b", "data"), hosts, 1, *flagNetworks)
	// bulk empties the bridges with del-flows while brtun runs: a flow
	// monitor would repair that at once, before the timed reconnect. So
	// this brtun runs without, as its --drift-interval 1h keeps drift
	// checks out of the clocks (what monitors cost: docs/benchmarks.md,
	// issue 23 item 4).
	b := startBrtunOn(t, testbed.BrtunBinary(t), filepath.Join(root, "b"), "127.0.0.1", "--log-level", "info", "--flow-monitor=false")
	b.waitApplied(10*time.Minute, rev, "h1", "h2")
	h1.waitIdle(t, 3*time.Minute)

	bridges := []string{"br-tun", "br-int"}
	want := map[string]int{}
	dir := filepath.Join(root, "bulk")
	must(t, os.MkdirAll(dir, 0o755))
	var shadowDeletes []string // what brtun sent before: one per registered remote entry
	for _, br := range bridges {
		lines := h1.DumpFlows(t, br)
		want[br] = len(lines)
		must(t, os.WriteFile(filepath.Join(dir, br+".flows"), []byte(strings.Join(lines, "\n")+"\n"), 0o644))
		if br != "br-tun" {
			continue
		}
		for _, l := range lines {
			if strings.Contains(l, "table=20") && strings.Contains(l, "priority=2,") && strings.Contains(l, "dl_dst=") {
				shadowDeletes = append(shadowDeletes, "flow delete_strict "+strings.Replace(strictMatch(l), "priority=2,", "priority=1,", 1))
			}
		}
		adds := make([]string, len(lines))
		for i, l := range lines {
			adds[i] = "flow add " + l
		}
		must(t, os.WriteFile(filepath.Join(dir, "br-tun.bundle"), []byte(strings.Join(append(adds, shadowDeletes...), "\n")+"\n"), 0o644))
	}
	fmt.Printf("BULKREF flows: br-tun %d, br-int %d; %d learned-entry deletes in the br-tun.bundle variant\n", want["br-tun"], want["br-int"], len(shadowDeletes))

	// A passive TCP listener on each of h1's bridges beside brtun's
	// controller, set while brtun is stopped (brtun puts its own controller
	// rows back).
	tcp := map[string]string{}
	for _, br := range bridges {
		tcp[br] = fmt.Sprintf("tcp:127.0.0.1:%d", testbed.FreePort(t, "127.0.0.1"))
	}
	listen := func() {
		for _, br := range bridges {
			out, err := h1.Vsctl("--timeout=300", "get-controller", br)
			must(t, err)
			var targets []string
			for _, f := range strings.Fields(out) {
				if !strings.HasPrefix(f, "ptcp:") {
					targets = append(targets, f)
				}
			}
			port := tcp[br][strings.LastIndexByte(tcp[br], ':')+1:]
			_, err = h1.Vsctl(append([]string{"--timeout=300", "set-controller", br}, append(targets, "ptcp:"+port+":127.0.0.1")...)...)
			must(t, err)
		}
	}

	type sample struct{ wall, cpu time.Duration }
	results := map[string][]sample{}
	var order []string
	record := func(name string, wall time.Duration, cpu float64) {
		if _, ok := results[name]; !ok {
			order = append(order, name)
		}
		results[name] = append(results[name], sample{wall, time.Duration(cpu * float64(time.Second))})
		fmt.Printf("BULKREF   %-48s %6.2f s, ovs-vswitchd CPU %5.2f s (load %s)\n", name, wall.Seconds(), cpu, loadAverage())
	}
	// load runs cmd for each bridge (at once or one after the other) and
	// returns the wall time and sw's ovs-vswitchd CPU time.
	load := func(sw *ovs, atOnce bool, cmd func(br string) (string, error)) (time.Duration, float64) {
		pid := sw.VswitchdPID()
		c0, start := cpuSeconds(pid), time.Now()
		errs := make([]error, len(bridges))
		var wg sync.WaitGroup
		for i, br := range bridges {
			wg.Add(1)
			run := func() {
				defer wg.Done()
				if out, err := cmd(br); err != nil {
					errs[i] = fmt.Errorf("%s: %w: %s", br, err, out)
				}
			}
			if atOnce {
				go run()
			} else {
				run()
			}
		}
		wg.Wait()
		wall, cpu := time.Since(start), cpuSeconds(pid)-c0
		for _, err := range errs {
			must(t, err)
		}
		return wall, cpu
	}
	addFlows := func(sw *ovs, target, br string) (string, error) {
		return sw.Ofctl("add-flows", target, filepath.Join(dir, br+".flows"), "--bundle")
	}
	checkCounts := func(sw *ovs, prefix string) {
		for _, br := range bridges {
			if got := sw.FlowCount(prefix + br); got != want[br] {
				t.Fatalf("%s%s holds %d flows, want %d", prefix, br, got, want[br])
			}
		}
	}
	fresh := func(sw *ovs, name, dpType string, atOnce bool) {
		for _, br := range bridges {
			_, err := sw.Vsctl("--timeout=300", "add-br", "ref-"+br, "--", "set", "bridge", "ref-"+br, "datapath_type="+dpType)
			must(t, err)
		}
		time.Sleep(time.Second) // the new bridges' reconfiguration is not timed
		wall, cpu := load(sw, atOnce, func(br string) (string, error) { return addFlows(sw, "ref-"+br, br) })
		checkCounts(sw, "ref-")
		for _, br := range bridges {
			_, err := sw.Vsctl("--timeout=300", "del-br", "ref-"+br)
			must(t, err)
		}
		record(name, wall, cpu)
	}
	own := func(name string, atOnce bool, cmd func(br string) (string, error)) {
		for _, br := range bridges {
			_, err := h1.Ofctl("del-flows", br)
			must(t, err)
		}
		time.Sleep(time.Second)
		wall, cpu := load(h1, atOnce, cmd)
		checkCounts(h1, "")
		record(name, wall, cpu)
	}
	for r := 0; r < *flagReps; r++ {
		for _, br := range bridges {
			_, err := h1.Ofctl("del-flows", br)
			must(t, err)
		}
		time.Sleep(time.Second)
		off, c0 := b.logSize(), cpuSeconds(h1.VswitchdPID())
		_, err := h1.Appctl("bridge/reconnect")
		must(t, err)
		var d time.Duration
		waitTrue(t, 3*time.Minute, func() bool {
			var done bool
			d, done = installTime(b.logSince(off), "h1")
			return done
		}, "brtun's install")
		record("brtun (its log; CPU includes the reconnect wait)", d, cpuSeconds(h1.VswitchdPID())-c0)
		checkCounts(h1, "")

		fresh(h1, "fresh bridges without ports, system, one by one", "system", false)
		fresh(h1, "fresh bridges without ports, netdev, one by one", "netdev", false)
		fresh(h3, "fresh bridges, ovs-vswitchd without ports, one by one", "system", false)
		fresh(h3, "fresh bridges, ovs-vswitchd without ports, at once", "system", true)
		b.Kill()
		listen()
		own("own bridges, brtun stopped, one by one", false, func(br string) (string, error) { return addFlows(h1, br, br) })
		own("own bridges, brtun stopped, at once", true, func(br string) (string, error) { return addFlows(h1, br, br) })
		own("own bridges, brtun stopped, at once, TCP", true, func(br string) (string, error) { return addFlows(h1, tcp[br], br) })
		own("own bridges, brtun stopped, one by one, + deletes", false, func(br string) (string, error) {
			if br == "br-tun" {
				return h1.Ofctl("bundle", br, filepath.Join(dir, "br-tun.bundle"))
			}
			return addFlows(h1, br, br)
		})
		b.Start()
		b.waitApplied(5*time.Minute, 1, "h1", "h2") // a new process starts at applied revision 0
	}
	for _, name := range order {
		var walls, cpus []time.Duration
		for _, s := range results[name] {
			walls, cpus = append(walls, s.wall), append(cpus, s.cpu)
		}
		fmt.Printf("BULKREF median of %d: %-48s %6.2f s, ovs-vswitchd CPU %5.2f s\n", len(walls), name, median(walls).Seconds(), median(cpus).Seconds())
	}
}
