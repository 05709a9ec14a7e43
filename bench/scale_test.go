//go:build bench

package bench

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/brtun/brtun/northbound"
	"github.com/brtun/brtun/testbed"
	"github.com/brtun/brtun/topology/etcdtest"
)

var (
	flagScaleHosts    = flag.Int("scale-hosts", envInt("BENCH_SCALE_HOSTS", 1000), "TestBenchScale: hollow hosts (env BENCH_SCALE_HOSTS)")
	flagScaleMode     = flag.String("scale-mode", envString("BENCH_SCALE_MODE", "flow"), "tunnel port mode: per-peer, or a mode given to brtun as --tunnel-ports MODE (env BENCH_SCALE_MODE)")
	flagScaleOps      = flag.Int("scale-ops", envInt("BENCH_SCALE_OPS", 100), "single-port ?wait operations at 1 host and at N hosts (env BENCH_SCALE_OPS)")
	flagScaleIdle     = flag.Duration("scale-idle", 60*time.Second, "window of the idle CPU figure (brtun's default drift interval is 5 min: a 60 s window holds a fifth of a round of drift checks)")
	flagScaleBudget   = flag.Duration("scale-per-peer-budget", 5*time.Minute, "per-peer series at growing host counts after the main run (0: none)")
	flagScaleSeries   = flag.String("scale-per-peer-counts", "250,500,1000,2000,4000", "host counts of the per-peer series, tried in order until one does not fit")
	flagScaleReal     = flag.Int("scale-real", envInt("BENCH_SCALE_REAL_HOSTS", 100), "TestBenchScaleReal: real lab hosts, and as many hollow hosts beside them (env BENCH_SCALE_REAL_HOSTS)")
	flagScaleLease    = flag.Duration("scale-lease-ttl", 5*time.Second, "--etcd-lease-ttl of the replicas (brtun's default)")
	flagScaleWorkers  = flag.Int("scale-clients", 16, "parallel REST clients registering hosts and binding ports")
	flagScaleRepl     = flag.Bool("scale-replicas", true, "also run the three-replica part (etcd)")
	flagScaleBin      = flag.String("scale-brtun", "", "brtun binary to run (default: built from this tree), e.g. an older build for a before/after figure")
	flagScaleWideOps  = flag.Int("scale-wide-ops", 20, "at most this many of the ?wait operations in the network on every host (each makes every host reconcile)")
	flagScaleWideTime = flag.Duration("scale-wide-budget", 2*time.Minute, "at N hosts the ?wait operations in the network on every host stop after this long, at least 3 done (each, and the removal after it, makes every host reconcile: about 13 s each at 1000 hosts; 0: no limit)")
	flagScaleNoNet    = flag.Bool("scale-no-network", false, "register the hosts and measure memory and idle CPU with no network (so no tunnel port): the fixed cost per host, where per-peer ports do not fit")
	flagScaleReplWait = flag.Duration("scale-replica-wait", 3*time.Minute, "longest wait for the replicas to apply the state, and after the kill")
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func envString(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

const perPeer = "per-peer"

// scaleResult holds the figures of one scale run.
type scaleResult struct {
	kind, mode string
	hosts      int

	register     time.Duration // all POST /v1/hosts answered
	registerAll  time.Duration // from the first POST until every bridge applied
	bind         time.Duration // all N ports bound (POST answered)
	flood        time.Duration // from the last bind answered until every host held the complete flood list
	lat1, latN   latency       // a port in a network only h1 carries
	wide1, wideN latency       // a port in the network every host carries
	restart      time.Duration // from the restarted process's start until every bridge applied
	restartMods  int
	restartCtl   int // positive control: flow changes of one port bound afterwards
	rss, heap    float64
	goroutines   float64
	idleCPU      float64       // cores
	idle         time.Duration // its window
	hollowMem    float64       // per host
	ovsdbPSS     float64       // per host
	split        []int         // bridges per replica
	failover     time.Duration
	failoverMods int
	failoverCtl  int
	replicaRSS   float64 // sum over the three replicas, before the kill
	replicaErr   string  // why the replica part did not finish
	noNetwork    bool    // hosts registered only (-scale-no-network): no tunnel port, no latency, no restart
	wall         time.Duration
}

// TestBenchScale is `make bench-scale`: the real brtun binary against
// -scale-hosts hollow hosts in -scale-mode, then per-peer tunnel ports at
// growing host counts until they stop fitting. The table goes into the
// generated section of docs/benchmarks.md.
func TestBenchScale(t *testing.T) {
	began := time.Now()
	root := testbed.RunDir(t)
	bin := scaleBinary(t)
	checkMode(t, bin, *flagScaleMode)
	n := *flagScaleHosts
	checkFits(t, n, *flagScaleMode, nil)

	fleet := startHollowFleet(t, filepath.Join(root, "hollow"), "h", n)
	var main *scaleResult
	if *flagScaleNoNet {
		main = runRegisteredOnly(t, bin, filepath.Join(root, "main"), fleet, *flagScaleMode, *flagScaleIdle)
	} else {
		main = runScale(t, bin, filepath.Join(root, "main"), fleet, *flagScaleMode, *flagScaleOps, *flagScaleIdle, *flagScaleRepl)
	}
	results := []*scaleResult{main}

	var series []*scaleResult
	var stopped string
	if *flagScaleBudget > 0 {
		series, stopped = perPeerSeries(t, bin, root, main)
	}
	sec := scaleSection("make bench-scale", fmt.Sprintf("`make bench-scale` (= `bench/scale.sh`: `go test -tags bench -run '^TestBenchScale$' ./bench/`, BENCH_SCALE_HOSTS=%d BENCH_SCALE_MODE=%s)", n, *flagScaleMode), append(results, series...))
	if stopped != "" {
		sec += "\n- per-peer series: " + stopped + "\n"
	}
	sec += fmt.Sprintf("- whole run: %.0f s on %s.\n", time.Since(began).Seconds(), machine())
	fmt.Print(sec)
	if *flagDoc != "" {
		must(t, writeSection(*flagDoc, "make bench-scale", "## Scale: hollow hosts (latest `make bench-scale`)", sec))
	}
}

// TestBenchScaleReal is `make bench-scale-real`: the same figures at
// -scale-real real lab hosts and as many hollow hosts, in -scale-mode and
// in per-peer mode, so the hollow figures stand on real OVS.
func TestBenchScaleReal(t *testing.T) {
	began := time.Now()
	root := testbed.RunDir(t)
	bin := scaleBinary(t)
	modes := []string{*flagScaleMode}
	if *flagScaleMode != perPeer {
		modes = append(modes, perPeer)
	}
	checkMode(t, bin, *flagScaleMode)
	n := *flagScaleReal
	var results []*scaleResult
	for _, mode := range modes {
		hf := startHollowFleet(t, filepath.Join(root, "hollow-"+mode), "h", n)
		results = append(results, runScale(t, bin, filepath.Join(root, "hollow-b-"+mode), hf, mode, *flagScaleOps, *flagScaleIdle, true))
		hf.close()
		rf := startRealFleet(t, n)
		results = append(results, runScale(t, bin, filepath.Join(root, "real-b-"+mode), rf, mode, *flagScaleOps, *flagScaleIdle, true))
		rf.close() // the next mode's lab waits for the lab lock
	}
	sec := scaleSection("make bench-scale-real", fmt.Sprintf("`make bench-scale-real` (= `bench/scale.sh real`: `go test -tags bench -run '^TestBenchScaleReal$' ./bench/`, BENCH_SCALE_REAL_HOSTS=%d)", n), results)
	sec += fmt.Sprintf("- whole run: %.0f s on %s.\n", time.Since(began).Seconds(), machine())
	fmt.Print(sec)
	if *flagDoc != "" {
		must(t, writeSection(*flagDoc, "make bench-scale-real", "## Scale: real lab hosts beside hollow hosts (latest `make bench-scale-real`)", sec))
	}
}

// scaleBinary is -scale-brtun, or brtun built from this tree.
func scaleBinary(t testing.TB) string {
	if *flagScaleBin != "" {
		return *flagScaleBin
	}
	return testbed.BrtunBinary(t)
}

// checkMode fails with a clear message when brtun does not know
// --tunnel-ports (per-peer mode needs no flag: it is brtun's default).
func checkMode(t testing.TB, bin, mode string) {
	t.Helper()
	if mode == perPeer {
		return
	}
	out, err := exec.Command(bin, "serve", "--tunnel-ports", mode, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("BENCH_SCALE_MODE=%s: this brtun binary (%s) rejects `serve --tunnel-ports %s`: %v: %s\n"+
			"(flow-based tunnel ports are issue 21 item 3; run with BENCH_SCALE_MODE=per-peer on a build without them)",
			mode, bin, mode, err, strings.TrimSpace(string(out)))
	}
}

// checkFits fails (or, with a non-nil reason, reports) when n hollow hosts
// would not fit this machine's memory or file descriptors. prev, when
// given, is a smaller per-peer run whose per-host costs are scaled.
func checkFits(t testing.TB, n int, mode string, prev *scaleResult) string {
	t.Helper()
	// Per host: ovsdb-server ~6.5 MB RSS (PSS less), hollow ~1 MB, brtun's
	// goal 1 MB (today 3-4 MB); three replicas hold three times brtun's part.
	perHost := (6.5 + 1 + 3*4) * 1e6
	if prev != nil {
		grow := 1.0
		if mode == perPeer {
			grow = float64(n) / float64(prev.hosts) // rows and flows per host grow with N
		}
		perHost = (prev.ovsdbPSS + prev.hollowMem + max(prev.rss, prev.replicaRSS)/float64(prev.hosts)) * grow
	}
	need, avail := perHost*float64(n), memAvailable()
	if need > 0.9*avail {
		reason := fmt.Sprintf("%d hosts need about %.1f GB (%.1f MB per host) and %.1f GB are available", n, need/1e9, perHost/1e6, avail/1e9)
		if prev == nil {
			t.Fatal(reason)
		}
		return reason
	}
	// This process: one OVSDB socket and up to 2 bridges x 3 controllers
	// per host, plus the ovsdb-servers' pipes.
	raiseNoFile(t, uint64(10*n+1024))
	return ""
}

// perPeerSeries runs per-peer mode at growing host counts (the counts above
// the main run when that was per-peer too) until one does not fit: memory,
// or the time left of -scale-per-peer-budget. It returns the runs and why it
// stopped.
func perPeerSeries(t *testing.T, bin, root string, main *scaleResult) ([]*scaleResult, string) {
	deadline := time.Now().Add(*flagScaleBudget)
	var out []*scaleResult
	last := main
	if main.mode != perPeer || main.noNetwork {
		last = nil // no per-peer figure yet
	}
	for _, s := range strings.Split(*flagScaleSeries, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		must(t, err)
		if last != nil && n <= last.hosts {
			continue
		}
		if last != nil {
			if reason := checkFits(t, n, perPeer, last); reason != "" {
				return out, fmt.Sprintf("stops before %d hosts: memory: %s (measured at %d hosts and scaled by the host count, per-peer rows and flows per host growing with N).", n, reason, last.hosts)
			}
			// Work per host grows with N in per-peer mode: N hosts cost
			// about (n/last)^2 of the last run.
			guess := time.Duration(float64(last.wall) * float64(n*n) / float64(last.hosts*last.hosts))
			if left := time.Until(deadline); guess > left {
				return out, fmt.Sprintf("stops before %d hosts: time: the %d-host run took %.0f s, so %d hosts would take about %.0f s (work per host grows with N), more than the %.0f s left of the %s budget.",
					n, last.hosts, last.wall.Seconds(), n, guess.Seconds(), left.Seconds(), *flagScaleBudget)
			}
		}
		dir := filepath.Join(root, fmt.Sprintf("pp%d", n))
		f := startHollowFleet(t, filepath.Join(dir, "hollow"), "h", n)
		r := runScale(t, bin, filepath.Join(dir, "b"), f, perPeer, 20, 15*time.Second, *flagScaleRepl)
		f.close()
		out = append(out, r)
		last = r
		if time.Now().After(deadline) {
			return out, fmt.Sprintf("stops after %d hosts: the %s budget is used up.", n, *flagScaleBudget)
		}
	}
	return out, ""
}

// runScale plays the scale scenario on a fleet:
//  1. brtun with one host: single-port ?wait latency;
//  2. the other hosts registered (rate, time until all applied);
//  3. a port on every host in one network: time from the last bind until
//     every host holds the complete flood list;
//  4. the latency again at N hosts;
//  5. idle: RSS, heap, goroutines, CPU over the idle window;
//  6. SIGKILL and restart: time until every bridge applied, flow changes;
//  7. (replicas) the state migrated to etcd, three replicas: split,
//     one killed, takeover time, flow changes.
func runScale(t *testing.T, bin, dir string, f *fleet, mode string, ops int, idle time.Duration, replicas bool) *scaleResult {
	began := time.Now()
	n := len(f.hosts)
	r := &scaleResult{kind: f.kind, mode: mode, hosts: n}
	logf := func(format string, args ...any) {
		fmt.Printf("BENCH scale %s %d %s: [%.0f s] %s\n", f.kind, n, mode, time.Since(began).Seconds(), fmt.Sprintf(format, args...))
	}
	if *flagProfiles != "" {
		must(t, os.MkdirAll(*flagProfiles, 0o755))
	}
	b := startScaleBrtun(t, bin, dir, f.controllerIP, mode, nil)

	// 1. One host.
	h1 := f.hosts[0]
	b.mustDo("POST", "/v1/hosts", hostRegistration(h1))
	b.mustDo("POST", "/v1/networks", map[string]any{"name": "wide", "type": "vxlan", "segment_id": 5000})
	rev := b.mustDo("POST", "/v1/networks/wide/ports?wait=60s", widePort(t, h1, 1))
	b.waitApplied(2*time.Minute, rev, h1.name)
	b.mustDo("POST", "/v1/networks", map[string]any{"name": "solo", "type": "vxlan", "segment_id": 5002})
	r.lat1, _ = portLatency(t, b, h1, "solo", ops, 0)
	r.wide1, _ = portLatency(t, b, h1, "wide", min(ops, *flagScaleWideOps), 0)
	logf("latency at 1 host: %s; in the network on every host %s", fmtLat(r.lat1), fmtLat(r.wide1))

	// 2. Registration.
	start := time.Now()
	rev = parallel(t, *flagScaleWorkers, f.hosts[1:], func(h *fleetHost) (uint64, error) {
		_, rev, err := b.do("POST", "/v1/hosts", hostRegistration(h))
		return rev, err
	})
	r.register = time.Since(start)
	waitAllApplied(t, b, n, rev, 10*time.Minute)
	r.registerAll = time.Since(start)
	logf("registered %d hosts in %.1f s (%.0f/s), all applied after %.1f s", n-1, r.register.Seconds(), float64(n-1)/r.register.Seconds(), r.registerAll.Seconds())

	// 3. A port on every host.
	start = time.Now()
	var lastBind atomic.Int64
	parallel(t, *flagScaleWorkers, f.hosts[1:], func(h *fleetHost) (uint64, error) {
		_, rev, err := b.do("POST", "/v1/networks/wide/ports", widePort(t, h, hostIndex(h)))
		lastBind.Store(time.Now().UnixNano())
		return rev, err
	})
	r.bind = time.Since(start)
	done := time.Unix(0, lastBind.Load())
	pending := slices.Clone(f.hosts)
	ok := testbed.Poll(10*time.Minute, 50*time.Millisecond, func() bool {
		pending = slices.DeleteFunc(pending, func(h *fleetHost) bool { return h.flood() == n-1 })
		return len(pending) == 0
	})
	if !ok {
		t.Fatalf("%d hosts never held the complete flood list (%d outputs); %s holds %d", len(pending), n-1, pending[0].name, pending[0].flood())
	}
	r.flood = time.Since(done)
	logf("bound %d ports in %.1f s; every flood list complete %.2f s after the last bind", n-1, r.bind.Seconds(), r.flood.Seconds())

	// 4. Latency at N hosts (with a CPU profile of its first 10 s).
	var profiled func()
	if *flagProfiles != "" {
		profiled = b.profile(10*time.Second, filepath.Join(*flagProfiles, fmt.Sprintf("scale-%s-%s-%d-latency-cpu.pprof", f.kind, mode, n)))
	}
	r.wideN, _ = portLatency(t, b, h1, "wide", min(ops, *flagScaleWideOps), *flagScaleWideTime)
	if profiled != nil {
		profiled()
	}
	logf("latency at %d hosts in the network on every host: %s", n, fmtLat(r.wideN))
	if *flagProfiles != "" {
		// The whole series, to see what a slow operation meets.
		profiled = b.profile(time.Duration(ops)*80*time.Millisecond+5*time.Second, filepath.Join(*flagProfiles, fmt.Sprintf("scale-%s-%s-%d-solo-cpu.pprof", f.kind, mode, n)))
	}
	r.latN, rev = portLatency(t, b, h1, "solo", ops, 0)
	if profiled != nil {
		profiled()
	}
	logf("latency at %d hosts: %s; in the network on every host %s", n, fmtLat(r.latN), fmtLat(r.wideN))

	// 5. Idle.
	measureIdle(t, b, f, mode, idle, r)
	logf("idle measured")

	// 6. SIGKILL and restart.
	stop := f.watch(t)
	b.Kill()
	start = time.Now()
	b.Start()
	waitAllApplied(t, b, n, rev, 10*time.Minute)
	r.restart = time.Since(start)
	time.Sleep(2 * time.Second) // a late flow_mod would still count
	r.restartMods = stop()
	r.restartCtl = controlChange(t, b, f, h1)
	logf("restart: every bridge applied %.2f s after the process started; %d flow changes (positive control: %d)", r.restart.Seconds(), r.restartMods, r.restartCtl)
	if r.restartCtl == 0 {
		t.Fatalf("positive control: binding a port after the restart changed no flow, so the flow-change count proves nothing")
	}

	if replicas {
		b.Kill()
		runReplicas(t, bin, dir, f, mode, r, logf)
	} else {
		b.Kill()
	}
	r.wall = time.Since(began)
	return r
}

// runRegisteredOnly registers every host of the fleet and measures brtun
// idle, with no network: no host has a tunnel port.
func runRegisteredOnly(t *testing.T, bin, dir string, f *fleet, mode string, idle time.Duration) *scaleResult {
	began := time.Now()
	n := len(f.hosts)
	r := &scaleResult{kind: f.kind, mode: mode, hosts: n, noNetwork: true}
	if *flagProfiles != "" {
		must(t, os.MkdirAll(*flagProfiles, 0o755))
	}
	b := startScaleBrtun(t, bin, dir, f.controllerIP, mode, nil)
	b.mustDo("POST", "/v1/hosts", hostRegistration(f.hosts[0]))
	start := time.Now()
	rev := parallel(t, *flagScaleWorkers, f.hosts[1:], func(h *fleetHost) (uint64, error) {
		_, rev, err := b.do("POST", "/v1/hosts", hostRegistration(h))
		return rev, err
	})
	r.register = time.Since(start)
	waitAllApplied(t, b, n, rev, 10*time.Minute)
	r.registerAll = time.Since(start)
	fmt.Printf("BENCH scale %s %d %s, no network: registered %d hosts in %.1f s, all applied after %.1f s\n", f.kind, n, mode, n-1, r.register.Seconds(), r.registerAll.Seconds())
	measureIdle(t, b, f, mode, idle, r)
	b.Kill()
	r.wall = time.Since(began)
	return r
}

// measureIdle waits 5 s, then takes brtun's CPU over idle, its RSS, heap
// and goroutines, and the fleet's memory (and profiles, with -profiles).
func measureIdle(t *testing.T, b *brtun, f *fleet, mode string, idle time.Duration, r *scaleResult) {
	n := len(f.hosts)
	time.Sleep(5 * time.Second)
	cpu0, t0 := cpuSeconds(b.pid()), time.Now()
	reads0, writes0 := syscalls(b.pid())
	if *flagProfiles != "" {
		b.profile(idle, filepath.Join(*flagProfiles, fmt.Sprintf("scale-%s-%s-%d-idle-cpu.pprof", f.kind, mode, n)))()
	} else {
		time.Sleep(idle)
	}
	r.idleCPU, r.idle = (cpuSeconds(b.pid())-cpu0)/time.Since(t0).Seconds(), idle
	reads, writes := syscalls(b.pid())
	window := time.Since(t0).Seconds()
	r.rss = rssBytes(b.pid())
	m := b.metrics("go_")
	r.heap, r.goroutines = m["go_memstats_heap_inuse_bytes"], m["go_goroutines"]
	r.hollowMem, r.ovsdbPSS = f.memory()
	if *flagProfiles != "" {
		b.save(t, "/debug/pprof/heap", filepath.Join(*flagProfiles, fmt.Sprintf("scale-%s-%s-%d-heap.pprof", f.kind, mode, n)))
	}
	fmt.Printf("BENCH scale %s %d %s: idle: %.3f cores, %.0f read and %.0f write syscalls a second, RSS %.0f MB (%.2f MB/host), heap %.0f MB, %.0f goroutines (%.1f/host)\n",
		f.kind, n, mode, r.idleCPU, float64(reads-reads0)/window, float64(writes-writes0)/window, r.rss/1e6, r.rss/1e6/float64(n), r.heap/1e6, r.goroutines, r.goroutines/float64(n))
}

// syscalls returns the read and write system calls the process made so
// far (/proc/PID/io syscr, syscw): a measure of keepalive traffic that,
// unlike CPU time, does not depend on how busy the machine is.
func syscalls(pid int) (reads, writes int64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "syscr: "); ok {
			reads, _ = strconv.ParseInt(v, 10, 64)
		}
		if v, ok := strings.CutPrefix(line, "syscw: "); ok {
			writes, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return reads, writes
}

// runReplicas migrates the state into etcd and runs three replicas: the
// split of the bridges, then one replica killed.
func runReplicas(t *testing.T, bin, dir string, f *fleet, mode string, r *scaleResult, logf func(string, ...any)) {
	n := len(f.hosts)
	etcd := etcdtest.Start(t)
	if out, err := exec.Command(bin, "store", "migrate", "--data-dir", filepath.Join(dir, "data"), "--etcd-endpoints", etcd.Endpoint()).CombinedOutput(); err != nil {
		t.Fatalf("brtun store migrate: %v: %s", err, out)
	}
	names := []string{"a", "b", "c"}
	ofPorts := map[string]int{}
	var targets []string
	for _, name := range names {
		ofPorts[name] = testbed.FreePort(t, f.controllerIP)
		targets = append(targets, fmt.Sprintf("tcp:%s:%d", f.controllerIP, ofPorts[name]))
	}
	reps := map[string]*brtun{}
	for _, name := range names {
		reps[name] = startScaleBrtun(t, bin, filepath.Join(dir, "replica-"+name), f.controllerIP, mode, &replicaOptions{
			name: name, etcd: etcd.Endpoint(), ofPort: ofPorts[name], advertise: strings.Join(targets, ","),
		})
	}
	// The split is measured once every replica knows the other two (the
	// first one up masters every bridge until then).
	var joined string
	if !testbed.Poll(*flagScaleReplWait, 200*time.Millisecond, func() bool {
		for _, name := range names {
			var st northbound.ClusterStatus
			if err := reps[name].get("/v1/cluster", &st); err != nil {
				joined = err.Error()
				return false
			}
			healthy := 0
			for _, rs := range st.Replicas {
				if rs.Healthy {
					healthy++
				}
			}
			if len(st.Replicas) != len(names) || healthy != len(names) {
				joined = fmt.Sprintf("replica %s sees %+v", name, st.Replicas)
				return false
			}
		}
		return true
	}) {
		t.Errorf("the three replicas never all saw each other healthy: %s", joined)
	}
	// A write through one replica: its revision is what all must apply.
	// While three replicas start at once on hundreds of hosts, the embedded
	// etcd (in this busy process) can answer too late for the API, which
	// says 503 and stores nothing: try again for a while.
	var rev uint64
	for deadline := time.Now().Add(time.Minute); ; {
		status, got, err := reps["a"].do("POST", "/v1/networks", map[string]any{"name": "after-migrate", "type": "vxlan", "segment_id": 5001})
		if status == http.StatusServiceUnavailable && time.Now().Before(deadline) {
			logf("write through replica a refused (%v); retrying", err)
			time.Sleep(2 * time.Second)
			continue
		}
		must(t, err)
		rev = got
		break
	}
	live := slices.Clone(names)
	stopAll := func() {
		for _, name := range live {
			reps[name].Kill()
		}
		etcd.Stop()
	}
	masters, err := waitReplicasApplied(reps, live, n, rev, *flagScaleReplWait)
	if err != nil {
		r.replicaErr = "the three replicas never all applied the migrated state: " + err.Error()
		t.Error(r.replicaErr)
		stopAll()
		return
	}
	count := map[string]int{}
	for _, m := range masters {
		count[m]++
	}
	for _, name := range names {
		r.split = append(r.split, count[name])
		r.replicaRSS += rssBytes(reps[name].pid())
	}
	logf("3 replicas: bridges per replica %v; replicas' RSS together %.0f MB", r.split, r.replicaRSS/1e6)

	stop := f.watch(t)
	victim := "b"
	reps[victim].Kill()
	start := time.Now()
	live = slices.DeleteFunc(live, func(s string) bool { return s == victim })
	if _, err := waitReplicasApplied(reps, live, n, rev, *flagScaleReplWait); err != nil {
		r.replicaErr = fmt.Sprintf("replica %s killed: its bridges were not all taken over: %v", victim, err)
		t.Error(r.replicaErr)
		stopAll()
		return
	}
	r.failover = time.Since(start)
	time.Sleep(2 * time.Second)
	r.failoverMods = stop()
	r.failoverCtl = controlChange(t, reps["a"], f, f.hosts[0])
	logf("replica %s killed: its %d bridges taken over and applied in %.2f s (lease TTL %s); %d flow changes (positive control: %d)",
		victim, count[victim], r.failover.Seconds(), *flagScaleLease, r.failoverMods, r.failoverCtl)
	if r.failoverCtl == 0 {
		t.Fatalf("positive control: binding a port after the failover changed no flow")
	}
	stopAll()
}

// controlChange binds one more port on h in network "solo", which only h
// carries, and returns the flow changes that caused over the whole fleet
// (the positive control of a "0 flow changes" figure: the same watch
// counts them), then removes it. (A port in the network on every host
// made every host reconcile, twice about 15 s at 1000 hosts, for the same
// proof.)
func controlChange(t *testing.T, b *brtun, f *fleet, h *fleetHost) int {
	stop := f.watch(t)
	body := widePort(t, h, 2)
	body["name"] = "control"
	b.mustDo("POST", "/v1/networks/solo/ports?wait=60s", body)
	time.Sleep(time.Second) // real hosts: the monitors print asynchronously
	changes := stop()
	b.mustDo("DELETE", "/v1/networks/solo/ports/control?wait=60s", nil)
	return changes
}

type replicaOptions struct {
	name, etcd, advertise string
	ofPort                int
}

// startScaleBrtun starts brtun for a scale run: API on loopback, OpenFlow
// on ip; bolt in dir/data, or etcd with rep.
func startScaleBrtun(t testing.TB, bin, dir, ip, mode string, rep *replicaOptions) *brtun {
	t.Helper()
	must(t, os.MkdirAll(dir, 0o755))
	apiPort := testbed.FreePort(t, "127.0.0.1")
	b := &brtun{t: t, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 5 * time.Minute}}
	args := []string{"--api-listen", fmt.Sprintf("127.0.0.1:%d", apiPort), "--log-level", "warn", "--pprof"}
	if rep == nil {
		ofPort := testbed.FreePort(t, ip)
		args = append(args, "--openflow-listen", fmt.Sprintf("tcp:%s:%d", ip, ofPort),
			"--openflow-advertise", fmt.Sprintf("tcp:%s:%d", ip, ofPort), "--data-dir", filepath.Join(dir, "data"))
	} else {
		args = append(args, "--openflow-listen", fmt.Sprintf("tcp:%s:%d", ip, rep.ofPort), "--openflow-advertise", rep.advertise,
			"--data-dir", filepath.Join(dir, "data"), "--store", "etcd", "--etcd-endpoints", rep.etcd,
			"--replica-name", rep.name, "--etcd-lease-ttl", flagScaleLease.String())
	}
	if mode != perPeer {
		args = append(args, "--tunnel-ports", mode)
	}
	b.Brtun = testbed.StartBrtun(t, testbed.BrtunOptions{
		Binary: bin, Args: args, API: fmt.Sprintf("http://127.0.0.1:%d", apiPort), Client: b.client,
		LogPath: filepath.Join(dir, "brtun.log"),
	})
	return b
}

func hostRegistration(h *fleetHost) map[string]any {
	return map[string]any{"name": h.name, "ovsdb": h.ovsdb, "tunnel_ip": h.tunnelIP, "datapath_type": h.dpType}
}

// hostIndex is the number in a host's name (h17 -> 17).
func hostIndex(h *fleetHost) int {
	i, _ := strconv.Atoi(strings.TrimLeft(h.name, "abcdefghijklmnopqrstuvwxyz"))
	return i
}

// widePort is host h's port in network "wide"; index picks the interface.
func widePort(t testing.TB, h *fleetHost, index int) map[string]any {
	i := hostIndex(h)
	v := 4*i + index // index is 1..3: unique per host and index
	return map[string]any{
		"name": fmt.Sprintf("w%s-%d", h.name, index), "host": h.name, "interface": h.iface(t, index),
		"mac": fmt.Sprintf("02:00:%02x:%02x:%02x:01", i>>8&0xff, i&0xff, index&0xff),
		"ips": []string{fmt.Sprintf("198.18.%d.%d", v/250, v%250+1)},
	}
}

// portLatency binds a port on h in network with ?wait, ops times, or
// fewer when budget (if positive) runs out with at least 3 done, removing
// it (with ?wait, not timed) after each. It also returns the revision of
// the last removal. It prints the operations that took more than five
// times the median, with their wall-clock time (to find what they met in
// brtun's log).
func portLatency(t testing.TB, b *brtun, h *fleetHost, network string, ops int, budget time.Duration) (latency, uint64) {
	var ds []time.Duration
	var starts []time.Time
	var rev uint64
	body := widePort(t, h, 3)
	body["name"] = "lat"
	began := time.Now()
	for i := range ops {
		if budget > 0 && i >= 3 && time.Since(began) > budget {
			break
		}
		start := time.Now()
		b.mustDo("POST", "/v1/networks/"+network+"/ports?wait=60s", body)
		ds = append(ds, time.Since(start))
		starts = append(starts, start)
		rev = b.mustDo("DELETE", "/v1/networks/"+network+"/ports/lat?wait=60s", nil)
	}
	if len(ds) == 0 {
		return latency{}, rev
	}
	med := median(ds)
	for i, d := range ds {
		if d > 5*med && d > 50*time.Millisecond {
			fmt.Printf("BENCH scale: slow ?wait in %s: %d ms (median %d ms) at %s\n", network, d.Milliseconds(), med.Milliseconds(), starts[i].UTC().Format("15:04:05.000"))
		}
	}
	return percentiles(ds), rev
}

// parallel runs do for every host with w clients and returns the largest
// revision answered; it fails the test on the first error.
func parallel(t testing.TB, w int, hosts []*fleetHost, do func(*fleetHost) (uint64, error)) uint64 {
	t.Helper()
	var maxRev atomic.Uint64
	var failed atomic.Value
	work := make(chan *fleetHost)
	var wg sync.WaitGroup
	for range w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for h := range work {
				if failed.Load() != nil {
					continue
				}
				rev, err := do(h)
				if err != nil {
					failed.Store(err)
					continue
				}
				for old := maxRev.Load(); rev > old && !maxRev.CompareAndSwap(old, rev); old = maxRev.Load() {
				}
			}
		}()
	}
	for _, h := range hosts {
		work <- h
	}
	close(work)
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		t.Fatal(err)
	}
	return maxRev.Load()
}

// hostListView is the part of GET /v1/hosts a scale run reads.
type hostListView struct {
	Hosts []struct {
		Name   string `json:"name"`
		Status struct {
			OVSDB   string `json:"ovsdb"`
			Bridges map[string]struct {
				OpenFlow        string `json:"openflow"`
				AppliedRevision uint64 `json:"applied_revision"`
				Master          string `json:"master"`
			} `json:"bridges"`
		} `json:"status"`
	} `json:"hosts"`
	NextMarker string `json:"next_marker"`
}

// hostList reads every page of GET /v1/hosts.
func (b *brtun) hostList() (hostListView, error) {
	var all hostListView
	marker := ""
	for {
		path := "/v1/hosts?limit=1000"
		if marker != "" {
			path += "&marker=" + marker
		}
		resp, err := b.client.Get(b.API + path)
		if err != nil {
			return all, err
		}
		var page hostListView
		err = json.NewDecoder(resp.Body).Decode(&page)
		_ = resp.Body.Close()
		if err != nil {
			return all, err
		}
		all.Hosts = append(all.Hosts, page.Hosts...)
		if page.NextMarker == "" {
			return all, nil
		}
		marker = page.NextMarker
	}
}

// waitAllApplied waits until brtun reports all n hosts' OVSDB and both
// bridges connected with revision rev applied.
func waitAllApplied(t testing.TB, b *brtun, n int, rev uint64, d time.Duration) {
	t.Helper()
	var last string
	ok := testbed.Poll(d, 100*time.Millisecond, func() bool {
		v, err := b.hostList()
		if err != nil {
			last = err.Error()
			return false
		}
		if len(v.Hosts) != n {
			last = fmt.Sprintf("%d hosts listed, want %d", len(v.Hosts), n)
			return false
		}
		behind := 0
		for _, h := range v.Hosts {
			for _, br := range []string{"br-int", "br-tun"} {
				st := h.Status.Bridges[br]
				if h.Status.OVSDB != "connected" || st.OpenFlow != "connected" || st.AppliedRevision < rev {
					behind++
					last = fmt.Sprintf("%s/%s: ovsdb=%s openflow=%s applied=%d, want %d", h.Name, br, h.Status.OVSDB, st.OpenFlow, st.AppliedRevision, rev)
				}
			}
		}
		if behind > 0 {
			last = fmt.Sprintf("%d bridges behind, e.g. %s", behind, last)
		}
		return behind == 0
	})
	if !ok {
		t.Fatalf("timed out after %s waiting for every bridge to apply revision %d: %s", d, rev, last)
	}
}

// waitReplicasApplied waits until every bridge of the n hosts has one master
// among the live replicas, all live replicas agree on it, both bridges of a
// host have the same, and the master reports it connected with rev applied. It returns the masters.
func waitReplicasApplied(reps map[string]*brtun, live []string, n int, rev uint64, d time.Duration) (map[string]string, error) {
	var last string
	var masters map[string]string
	ok := testbed.Poll(d, 100*time.Millisecond, func() bool {
		views := map[string]hostListView{}
		masters = map[string]string{}
		for _, name := range live {
			v, err := reps[name].hostList()
			if err != nil || len(v.Hosts) != n {
				last = fmt.Sprintf("%s lists %d hosts (%v)", name, len(v.Hosts), err)
				return false
			}
			views[name] = v
			for _, h := range v.Hosts {
				for _, br := range []string{"br-int", "br-tun"} {
					ref, m := h.Name+"/"+br, h.Status.Bridges[br].Master
					if old, seen := masters[ref]; seen && old != m {
						last = fmt.Sprintf("replicas disagree on the master of %s: %s, %s", ref, old, m)
						return false
					}
					masters[ref] = m
				}
			}
		}
		// A host's two bridges go together (docs/operations.md).
		for ref, m := range masters {
			if host, ok := strings.CutSuffix(ref, "/br-int"); ok && masters[host+"/br-tun"] != m {
				last = fmt.Sprintf("the bridges of %s are on different replicas: br-int on %q, br-tun on %q", host, m, masters[host+"/br-tun"])
				return false
			}
		}
		// The master's own view of each bridge.
		for _, name := range live {
			for _, h := range views[name].Hosts {
				for _, br := range []string{"br-int", "br-tun"} {
					ref := h.Name + "/" + br
					m := masters[ref]
					if !slices.Contains(live, m) {
						last = fmt.Sprintf("%s is mastered by %q, not a live replica", ref, m)
						return false
					}
					if m != name {
						continue
					}
					st := h.Status.Bridges[br]
					if h.Status.OVSDB != "connected" || st.OpenFlow != "connected" || st.AppliedRevision < rev {
						last = fmt.Sprintf("%s on its master %s: ovsdb=%s openflow=%s applied=%d, want %d", ref, m, h.Status.OVSDB, st.OpenFlow, st.AppliedRevision, rev)
						return false
					}
				}
			}
		}
		return true
	})
	if !ok {
		return nil, fmt.Errorf("timed out after %s waiting for the replicas to apply revision %d: %s", d, rev, last)
	}
	return masters, nil
}

// save writes a GET of path on brtun's API to file.
func (b *brtun) save(t testing.TB, path, file string) {
	resp, err := b.client.Get(b.API + path)
	if err != nil {
		t.Logf("GET %s: %v", path, err)
		return
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	must(t, os.MkdirAll(filepath.Dir(file), 0o755))
	must(t, os.WriteFile(file, data, 0o644))
}

// fmtOps is fmtLat with the number of operations.
func fmtOps(l latency) string { return fmt.Sprintf("%s (%d ops)", fmtLat(l), l.n) }

// scaleSection renders the results as the generated section's body.
func scaleSection(target, command string, rs []*scaleResult) string {
	var s strings.Builder
	fmt.Fprintf(&s, "_Generated by `%s` on %s (%s). The machine was shared with other jobs: compare ratios within the run, not absolute times._\n\n", target, time.Now().UTC().Format("2006-01-02 15:04 UTC"), machine())
	fmt.Fprintf(&s, "Command: %s\n\n", command)
	s.WriteString("| hosts | tunnel ports | register (POSTs; until all applied) | flood list complete after last bind | port `?wait` p50/p99 at 1 host | at N hosts | ratio p99 (goal <= 1.5x) | port `?wait` in the network on every host: 1 host; N hosts | restart: all applied, flow changes | brtun RSS per host (goal <= 1 MB) | goroutines per host | idle CPU (goal < 5%) | 3 replicas: bridges each (within 10%) | failover (goal <= TTL + 2 s), flow changes |\n")
	s.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		split, fail := "—", "—"
		if r.replicaErr != "" {
			split, fail = "**failed** (below)", "—"
		}
		if len(r.split) > 0 {
			lo, hi := slices.Min(r.split), slices.Max(r.split)
			mean := float64(2*r.hosts) / float64(len(r.split))
			split = fmt.Sprintf("%v (spread %.0f%%)", r.split, 100*float64(hi-lo)/mean)
			fail = fmt.Sprintf("%.2f s (TTL %s), %d", r.failover.Seconds(), *flagScaleLease, r.failoverMods)
		}
		if r.noNetwork {
			fmt.Fprintf(&s, "| %d %s, no network | %s | %.1f s = %.0f hosts/s; %.1f s | — | — | — | — | — | — | **%.2f MB** (%.0f MB) | %.1f | **%.1f%%** | — | — |\n",
				r.hosts, r.kind, r.mode, r.register.Seconds(), float64(r.hosts-1)/r.register.Seconds(), r.registerAll.Seconds(),
				r.rss/1e6/float64(r.hosts), r.rss/1e6, r.goroutines/float64(r.hosts), 100*r.idleCPU)
			continue
		}
		fmt.Fprintf(&s, "| %d %s | %s | %.1f s = %.0f hosts/s; %.1f s | %.2f s | %s | %s | **%.2fx** | %s; %s | %.2f s, %d | **%.2f MB** (%.0f MB) | %.1f | **%.1f%%** | %s | %s |\n",
			r.hosts, r.kind, r.mode, r.register.Seconds(), float64(r.hosts-1)/r.register.Seconds(), r.registerAll.Seconds(),
			r.flood.Seconds(), fmtLat(r.lat1), fmtLat(r.latN), secs(r.latN.p99)/secs(r.lat1.p99), fmtLat(r.wide1), fmtOps(r.wideN),
			r.restart.Seconds(), r.restartMods, r.rss/1e6/float64(r.hosts), r.rss/1e6, r.goroutines/float64(r.hosts),
			100*r.idleCPU, split, fail)
	}
	s.WriteString("\n")
	s.WriteString("- `?wait` latency: POST of one port on h1 with `?wait=60s` (a DELETE with `?wait` after each, not timed), " +
		"in a network only h1 carries (the ratio: every other host only takes the revision) and in the network that has a port on every host " +
		"(every host gains a flow for the new port, so all N reconcile; at N hosts that series stops after -scale-wide-budget, " + flagScaleWideTime.String() + ", with at least 3 done: each operation and the removal after it take about 13 s at 1000 hosts). Restart: SIGKILL, then from the new process's start until every bridge applied; " +
		"flow changes counted on the switches (hollow: flow_mods applied; real: `ovs-ofctl monitor`).\n")
	for _, r := range rs {
		if r.noNetwork {
			fmt.Fprintf(&s, "- %d %s hosts, %s, no network (so no tunnel port anywhere): hosts registered and idle only; Go heap in use %.0f MB; idle window %s; hollow side per host: %.2f MB of the harness process's RSS, ovsdb-server PSS %.2f MB; run took %.0f s.\n",
				r.hosts, r.kind, r.mode, r.heap/1e6, r.idle, r.hollowMem/1e6, r.ovsdbPSS/1e6, r.wall.Seconds())
			continue
		}
		fmt.Fprintf(&s, "- %d %s hosts, %s: %d ports bound in %.1f s; Go heap in use %.0f MB; idle window %s; ", r.hosts, r.kind, r.mode, r.hosts-1, r.bind.Seconds(), r.heap/1e6, r.idle)
		if r.kind == "hollow" {
			fmt.Fprintf(&s, "hollow side per host: %.2f MB of the harness process's RSS, ovsdb-server PSS %.2f MB; ", r.hollowMem/1e6, r.ovsdbPSS/1e6)
		}
		fmt.Fprintf(&s, "positive controls (one port bound afterwards on h1, in a network only h1 carries): %d flow changes after the restart", r.restartCtl)
		if len(r.split) > 0 {
			fmt.Fprintf(&s, ", %d after the failover; the three replicas' RSS together %.0f MB", r.failoverCtl, r.replicaRSS/1e6)
		}
		fmt.Fprintf(&s, "; run took %.0f s.\n", r.wall.Seconds())
		if r.replicaErr != "" {
			fmt.Fprintf(&s, "- %d %s hosts, %s, three replicas: **%s**\n", r.hosts, r.kind, r.mode, r.replicaErr)
		}
	}
	return s.String()
}
