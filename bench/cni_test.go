//go:build bench

package bench

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/brtun/brtun/testbed"
	"github.com/brtun/brtun/testbed/lab"
)

var flagCNIContainers = flag.Int("cni-containers", 100, "TestCNIBench: containers attached and detached by each plugin")

// The reference plugins: Debian's containernetworking-plugins.
const refPluginDir = "/usr/lib/cni"

// TestCNIBench (make bench-cni): CNI ADD and DEL latency of brtun-cni
// against the containernetworking reference chain, `bridge` with
// `host-local` IPAM, in the same run on the same lab host (a namespace
// with its own OVS on the userspace datapath, the real brtun daemon).
// Each plugin attaches -cni-containers network namespaces one after
// another, then detaches them; the two plugins alternate container by
// container, so the load of a shared machine falls on both alike. The
// plugins run as a runtime runs them: libcni (as podman and containerd
// use it) executes the plugin binary in the host's network namespace, a
// conflist of cniVersion 1.0.0, the result cache in a private directory.
// brtun-cni's ADD returns once brtun bound the port (flows on br-int);
// the reference's once the veth is on the Linux bridge. Positive
// controls: brtun-cni's containers reach a VM on another host, the
// reference's reach each other; after DEL nothing of either is left.
func TestCNIBench(t *testing.T) {
	n := *flagCNIContainers
	if n < 2 || n > 200 {
		t.Fatalf("-cni-containers must be 2..200 (one /24 each), got %d", n)
	}
	for _, p := range []string{"bridge", "host-local"} {
		if _, err := os.Stat(filepath.Join(refPluginDir, p)); err != nil {
			t.Fatalf("%s/%s not found: install containernetworking-plugins (`make deps` does)", refPluginDir, p)
		}
	}
	began := time.Now()
	l := lab.New(t, lab.Options{Hosts: 2})
	h1, h2 := l.Hosts[0], l.Hosts[1]
	binDir := filepath.Join(l.Dir, "cni-bin")
	must(t, os.MkdirAll(binDir, 0o755))
	if out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, "brtun-cni"), "github.com/brtun/brtun/cmd/brtun-cni").CombinedOutput(); err != nil {
		t.Fatalf("go build brtun-cni: %v: %s", err, out)
	}
	b := startBrtunOn(t, testbed.BrtunBinary(t), filepath.Join(l.Dir, "brtun"), l.ControllerIP)
	for _, h := range l.Hosts {
		b.mustDo("POST", "/v1/hosts", map[string]any{"name": h.Name, "ovsdb": h.OVSDB, "tunnel_ip": h.TunnelIP, "datapath_type": h.DatapathType})
	}
	b.mustDo("POST", "/v1/networks", map[string]any{"name": "blue", "type": "vxlan", "segment_id": 5001})
	b.mustDo("POST", "/v1/networks/blue/subnets", map[string]any{"name": "v4", "cidr": "198.18.0.0/24"})
	vm := l.AddVM(t, h2, lab.VMOptions{Name: "vm", MAC: "02:00:00:00:0a:01", CIDR: "198.18.0.254/24", MTU: 1450, Quiet: true})
	b.mustDo("POST", "/v1/networks/blue/ports?wait=60s", map[string]any{
		"name": "vm", "host": h2.Name, "interface": vm.HostIface, "mac": vm.MAC, "ips": []string{vm.IP}})

	brtunList := confList(t, map[string]any{"type": "brtun-cni", "server": b.API, "network": "blue", "host": h1.Name}, "blue")
	refList := confList(t, map[string]any{
		"type": "bridge", "bridge": "cnibr0", "isGateway": true,
		"ipam": map[string]any{"type": "host-local", "subnet": "198.18.1.0/24", "dataDir": filepath.Join(l.Dir, "host-local")},
	}, "ref")
	cni := libcni.NewCNIConfigWithCacheDir([]string{binDir, refPluginDir}, filepath.Join(l.Dir, "cni-cache"), nil)
	hostNS := "/run/netns/" + h1.Netns

	type plugin struct {
		name      string
		list      *libcni.NetworkConfigList
		ctrs      []*libcni.RuntimeConf
		add, del  []time.Duration
		addresses []string // of the first two containers
	}
	plugins := []*plugin{{name: "brtun-cni", list: brtunList}, {name: "bridge + host-local", list: refList}}
	for pi, p := range plugins {
		for i := range n {
			netns := fmt.Sprintf("%sc%d-%d", l.Prefix, pi, i)
			testbed.MustRun(t, nil, "ip", "netns", "add", netns)
			t.Cleanup(func() { _, _ = testbed.Run(nil, "ip", "netns", "del", netns) })
			p.ctrs = append(p.ctrs, &libcni.RuntimeConf{ContainerID: fmt.Sprintf("bench-%d-%d", pi, i), NetNS: "/run/netns/" + netns, IfName: "eth0"})
		}
	}
	// inHost runs a CNI operation from h1's namespace, as a runtime on h1
	// would, and times it.
	inHost := func(op func() error) (time.Duration, error) {
		var d time.Duration
		err := ns.WithNetNSPath(hostNS, func(ns.NetNS) error {
			start := time.Now()
			err := op()
			d = time.Since(start)
			return err
		})
		return d, err
	}
	ctx := context.Background()

	var profiled func()
	vswitchd := h1.VswitchdPID()
	cpuBrtun, cpuOVS, addStart := cpuSeconds(b.pid()), cpuSeconds(vswitchd), time.Now()
	for i := range n {
		if i == n*7/10 && *flagProfiles != "" {
			// brtun's CPU while the host's br-int fills up.
			profiled = b.profile(10*time.Second, filepath.Join(*flagProfiles, "cni-add.pprof"))
		}
		for k := range plugins {
			p := plugins[(i+k)%2] // alternate which plugin goes first
			var res any
			d, err := inHost(func() error {
				r, err := cni.AddNetworkList(ctx, p.list, p.ctrs[i])
				res = r
				return err
			})
			if err != nil {
				t.Fatalf("%s ADD of container %d: %v", p.name, i, err)
			}
			p.add = append(p.add, d)
			if i < 2 {
				p.addresses = append(p.addresses, resultIPv4(t, res))
			}
		}
	}

	addWall := time.Since(addStart)
	cpuBrtun, cpuOVS = cpuSeconds(b.pid())-cpuBrtun, cpuSeconds(vswitchd)-cpuOVS
	if profiled != nil {
		profiled()
	}

	// Positive controls: the containers are on their networks.
	ports := cniPorts(t, b, h1.Name)
	if len(ports) != n {
		t.Fatalf("brtun holds %d brtun-cni ports on h1, want %d", len(ports), n)
	}
	ctrNS := func(p *plugin, i int) string { return strings.TrimPrefix(p.ctrs[i].NetNS, "/run/netns/") }
	pings := []struct{ from, to, what string }{
		{ctrNS(plugins[0], 0), vm.IP, "brtun-cni container 0 on h1 -> VM on h2"},
		{ctrNS(plugins[0], n-1), vm.IP, "brtun-cni container " + fmt.Sprint(n-1) + " on h1 -> VM on h2"},
		{ctrNS(plugins[1], 0), plugins[1].addresses[1], "reference container 0 -> reference container 1"},
	}
	for _, pg := range pings {
		ok := testbed.Poll(20*time.Second, 200*time.Millisecond, func() bool {
			_, err := testbed.Run(nil, "ip", "netns", "exec", pg.from, "ping", "-c", "1", "-W", "1", pg.to)
			return err == nil
		})
		if !ok {
			t.Fatalf("%s: no answer", pg.what)
		}
	}

	floor := ovsPortFloor(t, h1, 3)

	for i := range n {
		for k := range plugins {
			p := plugins[(i+k)%2]
			d, err := inHost(func() error { return cni.DelNetworkList(ctx, p.list, p.ctrs[i]) })
			if err != nil {
				t.Fatalf("%s DEL of container %d: %v", p.name, i, err)
			}
			p.del = append(p.del, d)
		}
	}
	if left := cniPorts(t, b, h1.Name); len(left) != 0 {
		t.Fatalf("%d brtun-cni ports left on h1 after DEL", len(left))
	}
	// h1's own veths are its NICs, eth0 and eth1; the containers' are gone.
	links, err := h1.Exec("ip", "-o", "link", "show", "type", "veth")
	must(t, err)
	for _, line := range strings.Split(strings.TrimSpace(links), "\n") {
		if name, _, _ := strings.Cut(strings.Fields(line)[1], "@"); name != "eth0" && name != "eth1" {
			t.Fatalf("a container's veth is left on h1 after DEL: %s", line)
		}
	}
	if ips, _ := filepath.Glob(filepath.Join(l.Dir, "host-local", "ref", "198.18.1.*")); len(ips) != 0 {
		t.Fatalf("host-local still holds %v after DEL", ips)
	}

	rep := &report{}
	mine, ref := plugins[0], plugins[1]
	// The first and last containers, before percentiles sorts the samples.
	tens := min(10, n/2)
	trend := fmt.Sprintf("ADD p50 of the first %d containers and of the last %d: brtun-cni %.0f and %.0f ms (its host's br-int holding 1..%d and %d..%d container ports), bridge + host-local %.0f and %.0f ms.",
		tens, tens, msf(percentiles(slices.Clone(mine.add[:tens])).p50), msf(percentiles(slices.Clone(mine.add[n-tens:])).p50), tens, n-tens+1, n,
		msf(percentiles(slices.Clone(ref.add[:tens])).p50), msf(percentiles(slices.Clone(ref.add[n-tens:])).p50))
	for _, op := range []struct {
		name       string
		brtun, ref []time.Duration
	}{{"ADD", mine.add, ref.add}, {"DEL", mine.del, ref.del}} {
		bl, rl := percentiles(op.brtun), percentiles(op.ref)
		rep.rows = append(rep.rows, [4]string{op.name, fmtLat(bl), fmtLat(rl),
			fmt.Sprintf("**%.2fx** p50, **%.2fx** p99", secs(bl.p50)/secs(rl.p50), secs(bl.p99)/secs(rl.p99))})
		fmt.Printf("BENCH CNI %s brtun-cni %s (max %.0f ms), bridge + host-local %s (max %.0f ms), ratio p50 %.2fx p99 %.2fx\n",
			op.name, fmtLat(bl), secs(bl.max)*1e3, fmtLat(rl), secs(rl.max)*1e3, secs(bl.p50)/secs(rl.p50), secs(bl.p99)/secs(rl.p99))
	}
	rep.note("%s", trend)
	rep.note("CPU during the %.0f s of ADDs (both plugins): brtun %.1f s, h1's ovs-vswitchd %.1f s.", addWall.Seconds(), cpuBrtun, cpuOVS)
	rep.note("what OVS alone needs to bind one more interface on h1 once its br-int holds all %d container ports: `ovs-vsctl add-port` of a veth end (which waits until ovs-vswitchd applied it) took %.0f ms (median of %d); brtun-cni's ADD waits for the same on top of brtun's own work.", n, msf(floor.p50), 3)
	rep.note("%d containers (network namespaces) per plugin on lab host h1 (its own ovsdb-server and ovs-vswitchd, userspace datapath, in a namespace), attached one after another and then detached one after another, the two plugins alternating container by container; p99 is the sorted sample at index %d of %d.", n, int(0.99*float64(n)), n)
	rep.note("brtun-cni: network blue (VXLAN) with subnet 198.18.0.0/24, addresses and MACs allocated by brtun; ADD answers once brtun reports the port bound (its interface on br-int with an ofport and its local VLAN); the real brtun daemon on the management network; containers 0 and %d pinged a VM on h2 through the overlay.", n-1)
	rep.note("reference: `bridge` (isGateway, Linux bridge cnibr0 in h1's namespace) with `host-local` (198.18.1.0/24), Debian's containernetworking-plugins %s; its containers 0 and 1 pinged each other.", debVersion("containernetworking-plugins"))
	rep.note("both driven by libcni %s (what podman and containerd use) from h1's network namespace, conflist cniVersion 1.0.0; the time is libcni's AddNetworkList / DelNetworkList, plugin process start included.", moduleVersion("github.com/containernetworking/cni"))
	rep.note("whole run: %.0f s on %d CPUs (%s); the machine was shared with other jobs, so the absolute times are loose; the ratios, measured interleaved, are what to compare.", time.Since(began).Seconds(), runtime.NumCPU(), machine())
	if *flagDoc != "" {
		must(t, writeDoc(*flagDoc, cniSection(), rep))
	}
}

// cniSection is TestCNIBench's section of docs/benchmarks.md.
func cniSection() docSection {
	return docSection{
		target:  "make bench-cni",
		command: "`make bench-cni` (= `go test -tags bench -run TestCNIBench ./bench/ -args -doc docs/benchmarks.md`)",
		heading: "## Container attach and detach: brtun-cni against bridge + host-local (latest run)",
		header:  "| CNI command | brtun-cni | bridge + host-local, same run | ratio |",
		tools:   []string{"ovs-vswitchd"},
	}
}

// ovsPortFloor times `ovs-vsctl add-port br-int` of a fresh veth end on h,
// reps times (each removed again, untimed): what ovs-vswitchd needs to take
// one more interface there, brtun not involved.
func ovsPortFloor(t *testing.T, h *lab.Host, reps int) latency {
	t.Helper()
	var ds []time.Duration
	for i := range reps {
		name := fmt.Sprintf("floor%d", i)
		_, err := h.Exec("ip", "link", "add", name, "type", "veth", "peer", "name", name+"p")
		must(t, err)
		_, err = h.Exec("ip", "link", "set", name, "up")
		must(t, err)
		start := time.Now()
		_, err = h.Vsctl("add-port", "br-int", name, "--", "set", "Port", name, "tag=4095")
		ds = append(ds, time.Since(start))
		must(t, err)
		h.Ofport(t, name) // fails the test unless the interface is on br-int
		_, err = h.Vsctl("del-port", "br-int", name)
		must(t, err)
		_, err = h.Exec("ip", "link", "del", name)
		must(t, err)
	}
	return percentiles(ds)
}

// msf is d in milliseconds.
func msf(d time.Duration) float64 { return secs(d) * 1e3 }

// confList builds a conflist of cniVersion 1.0.0 with one plugin.
func confList(t *testing.T, plugin map[string]any, name string) *libcni.NetworkConfigList {
	t.Helper()
	data, err := json.Marshal(map[string]any{"cniVersion": "1.0.0", "name": name, "plugins": []any{plugin}})
	must(t, err)
	list, err := libcni.NetworkConfFromBytes(data)
	must(t, err)
	return list
}

// resultIPv4 is the first IPv4 address of an ADD result, without prefix.
func resultIPv4(t *testing.T, res any) string {
	t.Helper()
	data, err := json.Marshal(res)
	must(t, err)
	var r struct {
		IPs []struct {
			Address string `json:"address"`
		} `json:"ips"`
	}
	must(t, json.Unmarshal(data, &r))
	for _, ip := range r.IPs {
		if a, _, _ := strings.Cut(ip.Address, "/"); !strings.Contains(a, ":") {
			return a
		}
	}
	t.Fatalf("no IPv4 address in the result %s", data)
	return ""
}

// cniPorts lists brtun-cni's ports on a host.
func cniPorts(t *testing.T, b *brtun, host string) []json.RawMessage {
	t.Helper()
	var list struct {
		Ports []json.RawMessage `json:"ports"`
	}
	must(t, b.get("/v1/ports?tags=brtun-cni&host="+host, &list))
	return list.Ports
}

func debVersion(pkg string) string {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Version}", pkg).Output()
	if err != nil {
		return "(version unknown)"
	}
	return string(out)
}

func moduleVersion(path string) string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", path).Output()
	if err != nil {
		return "(version unknown)"
	}
	return strings.TrimSpace(string(out))
}
