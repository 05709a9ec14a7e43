//go:build bench

package bench

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/brtun/brtun/testbed"
	"github.com/brtun/brtun/testbed/dhcpclient"
	"github.com/brtun/brtun/testbed/lab"
)

var (
	flagDHCPVMs    = flag.Int("dhcp-vms", 100, "TestBenchDHCP: VMs on the lab, and leases per client and server (a multiple of 4, at most 248)")
	flagDHCPStorms = flag.Int("dhcp-storms", 2, "TestBenchDHCP: boots of all VMs at once per client and server (even)")
)

// dhcpSection is TestBenchDHCP's section of docs/benchmarks.md.
func dhcpSection() docSection {
	return docSection{
		target:  "make bench-dhcp",
		command: "`make bench-dhcp` (= `bench/run.sh dhcp`: `go test -tags bench -run TestBenchDHCP -timeout 20m ./bench/ -args -doc docs/benchmarks.md`)",
		heading: "## DHCP against dnsmasq (latest run)",
		tools:   []string{"ovs-vswitchd", "dnsmasq"},
	}
}

// The lab's DHCP plan: one network, one IPv4 subnet; dnsmasq hands out
// what brtun does (each port's own address, the gateway as router, the
// DNS server, the network's MTU, the same lease time).
const (
	dhcpCIDR      = "198.18.0.0/24"
	dhcpGateway   = "198.18.0.1"
	dhcpDNS       = "198.18.0.53"
	dhcpLease     = time.Hour
	dhcpNetwork   = "bench"
	dhcpSubnet    = "v4"
	dhcpVXLANMTU  = 1450
	dhcpLeaseWait = 30 * time.Second
)

// dhcpServer is who answers the lab's DHCP: brtun, or dnsmasq on a port of
// the same network while the subnet's enable_dhcp is off.
type dhcpServer string

const (
	serverBrtun   dhcpServer = "brtun"
	serverDnsmasq dhcpServer = "dnsmasq"
)

// abba is the order of n runs alternating between brtun and dnsmasq as
// A B B A A B B A ..., so that a drift of the machine's load over the run
// weighs on both alike.
func abba(n int) []dhcpServer {
	out := make([]dhcpServer, n)
	for i := range out {
		if (i+1)/2%2 == 0 {
			out[i] = serverBrtun
		} else {
			out[i] = serverDnsmasq
		}
	}
	return out
}

// benchVM is a VM of the DHCP lab with the address its port holds.
type benchVM struct {
	*lab.VM
	client *dhcpclient.Client
	ip     string
}

// dhcpLab is the lab, brtun, dnsmasq and the VMs of TestBenchDHCP.
type dhcpLab struct {
	t       *testing.T
	lab     *lab.Lab
	b       *brtun
	server  *lab.VM // dnsmasq's
	vms     []*benchVM
	current dhcpServer
}

// TestBenchDHCP measures brtun's DHCPv4 service against dnsmasq
// (`--no-ping`) on the same lab in the same run: two lab hosts (real OVS,
// userspace datapath), -dhcp-vms VMs split between them on one VXLAN
// network with one subnet, and dnsmasq in a further VM on h1 on the same
// network, handing out the same address per MAC (a hosts file made from
// the ports) and the same options. brtun answers while the subnet's
// enable_dhcp is on; turning it off removes br-int's catch flows, and the
// VMs' broadcasts reach dnsmasq instead. Two real clients, ISC dhclient and
// busybox udhcpc, each one-shot from a fresh lease file:
//
//   - lease time: each VM leases once per client and server, one after
//     another, in blocks of a quarter of the VMs alternating A B B A A B B A
//     between the servers; p50 and p99 of the client's wall time from its
//     start until it has bound;
//   - boot storm: all VMs start the client at once; time from the start
//     until the last VM has bound, -dhcp-storms times per client and
//     server, alternating A B B A.
//
// Every lease is checked: the VM's port address, the gateway as router.
func TestBenchDHCP(t *testing.T) {
	n := *flagDHCPVMs
	if n < 4 || n%4 != 0 || n > 248 || *flagDHCPStorms < 2 || *flagDHCPStorms%2 != 0 {
		t.Fatalf("want -dhcp-vms a multiple of 4 from 4 to 248 and -dhcp-storms even and at least 2; got %d and %d", n, *flagDHCPStorms)
	}
	for _, bin := range append(dhcpclient.Binaries(), "dnsmasq") {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s missing: make bench-dhcp installs it (packages isc-dhcp-client busybox-static dnsmasq-base)", bin)
		}
	}
	began, load0 := time.Now(), loadAverage()
	rep := &report{}
	d := newDHCPLab(t, n)
	d.startDnsmasq()

	type result struct{ brtun, dnsmasq latency }
	seq := map[dhcpclient.Kind]result{}
	for _, kind := range []dhcpclient.Kind{dhcpclient.Dhclient, dhcpclient.Udhcpc} {
		took := map[dhcpServer][]time.Duration{}
		quarter := n / 4
		for i, srv := range abba(8) {
			d.serve(srv)
			k := i / 2 // this server's block number: each VM leases once per server
			for _, vm := range d.vms[k*quarter : (k+1)*quarter] {
				took[srv] = append(took[srv], d.lease(vm, kind, fmt.Sprintf("seq-%s-%s", kind, srv)))
			}
		}
		r := result{brtun: percentiles(took[serverBrtun]), dnsmasq: percentiles(took[serverDnsmasq])}
		seq[kind] = r
		rep.row(fmt.Sprintf("lease p50 %s", kind), ms(r.brtun.p50), ms(r.dnsmasq.p50)+" dnsmasq", secs(r.brtun.p50)/secs(r.dnsmasq.p50), "<= 1.5x")
		rep.row(fmt.Sprintf("lease p99 %s", kind), ms(r.brtun.p99), ms(r.dnsmasq.p99)+" dnsmasq", secs(r.brtun.p99)/secs(r.dnsmasq.p99), "<= 1.5x")
	}

	storms := map[dhcpclient.Kind]map[dhcpServer][]storm{}
	for _, kind := range []dhcpclient.Kind{dhcpclient.Dhclient, dhcpclient.Udhcpc} {
		storms[kind] = map[dhcpServer][]storm{}
		for i, srv := range abba(2 * *flagDHCPStorms) {
			d.serve(srv)
			storms[kind][srv] = append(storms[kind][srv], d.storm(kind, fmt.Sprintf("storm%d-%s-%s", i, kind, srv)))
		}
		bs, ds := storms[kind][serverBrtun], storms[kind][serverDnsmasq]
		rep.row(fmt.Sprintf("boot %d %s", n, kind), fmtStorms(bs), fmtStorms(ds)+" dnsmasq",
			secs(meanLast(bs))/secs(meanLast(ds)), fmt.Sprintf("all %d leased", n))
	}

	rep.note("lab: 2 hosts (ovsdb-server + ovs-vswitchd each, userspace datapath, in network namespaces), %d VMs (network namespaces on veths, half on each host) on one VXLAN network with subnet %s; brtun's answers go packet-in -> brtun -> packet-out over OpenFlow on the lab's management network; dnsmasq %s runs in a further VM on h1 (port security off, TX checksum offload off: the userspace datapath would tunnel its frames with unfinished UDP checksums, which dhclient drops) on the same network and reaches the VMs on h2 through the tunnel. dnsmasq flags: `--no-ping --dhcp-authoritative --quiet-dhcp --port=0 --dhcp-range=198.18.0.0,static,255.255.255.0,1h` and a hosts file of every port's MAC and address, router, DNS server and MTU %d as brtun sends them; brtun with `--dhcp-lease-time 1h --log-level warn` and its default limits.",
		n, dhcpCIDR, dnsmasqVersion(), dhcpVXLANMTU)
	rep.note("lease: wall time of a one-shot client in a VM (`ip netns exec` included) from its start until it has bound, a fresh lease file each time, so every lease is DISCOVER, OFFER, REQUEST, ACK; dhclient `-1` (its first process exits once bound; the background one is then stopped with `-x`), udhcpc `-n -q -T 1`. %d leases per client and server, one after another, each VM once, alternating between the servers in blocks of %d (A B B A A B B A). Every lease carried the VM's port address and the gateway %s as router.",
		n, n/4, dhcpGateway)
	for _, kind := range []dhcpclient.Kind{dhcpclient.Dhclient, dhcpclient.Udhcpc} {
		r := seq[kind]
		rep.note("%s: brtun p50 %s p99 %s max %s; dnsmasq p50 %s p99 %s max %s.", kind,
			ms(r.brtun.p50), ms(r.brtun.p99), ms(r.brtun.max), ms(r.dnsmasq.p50), ms(r.dnsmasq.p99), ms(r.dnsmasq.max))
	}
	rep.note("boot: all %d VMs start the one-shot client at the same moment (%d runs per client and server, A B B A); the figure is the time from the start until the last VM has bound (each run listed), the ratio that of the means; every VM leased its own address in every run. p50 of a VM's lease within the storms: %s.",
		n, *flagDHCPStorms, stormMedians(storms))
	rep.note("machine: load average %s at the start and %s at the end (1, 5, 15 min) on %d CPUs shared with other jobs: the absolute times are this machine's under load, the same-run ratios are what counts. Whole run %.0f s.",
		load0, loadAverage(), runtime.NumCPU(), time.Since(began).Seconds())
	if *flagDoc != "" {
		must(t, writeDoc(*flagDoc, dhcpSection(), rep))
	}
}

// newDHCPLab builds the lab, starts brtun on it and creates the network,
// the subnet, dnsmasq's VM and n VMs with their ports (addresses by IPAM).
func newDHCPLab(t *testing.T, n int) *dhcpLab {
	t.Helper()
	l := lab.New(t, lab.Options{Hosts: 2})
	root := testbed.RunDir(t)
	d := &dhcpLab{t: t, lab: l, current: serverBrtun}
	d.b = startBrtunOn(t, testbed.BrtunBinary(t), filepath.Join(root, "b"), l.ControllerIP, "--dhcp-lease-time", dhcpLease.String())
	for _, h := range l.Hosts {
		d.b.mustDo("POST", "/v1/hosts", map[string]any{"name": h.Name, "ovsdb": h.OVSDB, "tunnel_ip": h.TunnelIP, "datapath_type": h.DatapathType})
	}
	d.b.mustDo("POST", "/v1/networks", map[string]any{"name": dhcpNetwork, "type": "vxlan", "segment_id": 5001})
	d.b.mustDo("POST", "/v1/networks/"+dhcpNetwork+"/subnets", map[string]any{"name": dhcpSubnet, "cidr": dhcpCIDR, "dns_servers": []string{dhcpDNS}})

	d.server = l.AddVM(t, l.Hosts[0], lab.VMOptions{Name: "dnsmasq", MAC: "02:00:00:dc:ff:01", Quiet: true})
	srvIP, rev := d.port(d.server, false)
	_, err := d.server.Run("ip", "addr", "add", srvIP+"/24", "dev", "eth0")
	must(t, err)
	// The kernel leaves dnsmasq's UDP checksums to the veth's offload; the
	// userspace datapath tunnels such frames to h2 with the checksum
	// unfinished, and dhclient drops them: the kernel computes them itself
	// with TX offload off.
	_, err = d.server.Run("ethtool", "-K", "eth0", "tx", "off")
	must(t, err)
	for i := 1; i <= n; i++ {
		vm := l.AddVM(t, l.Hosts[i%2], lab.VMOptions{Name: fmt.Sprintf("v%03d", i), MAC: fmt.Sprintf("02:00:00:dc:%02x:%02x", i>>8, i&0xff), Quiet: true})
		var ip string
		ip, rev = d.port(vm, true)
		d.vms = append(d.vms, &benchVM{VM: vm, client: dhcpclient.New(t, vm.Netns, filepath.Join(l.Dir, "dhcp", vm.Name)), ip: ip})
	}
	d.b.waitApplied(5*time.Minute, rev, "h1", "h2")
	return d
}

// port creates vm's port on the network, its address left to IPAM, and
// returns that address and the store's revision.
func (d *dhcpLab) port(vm *lab.VM, security bool) (string, uint64) {
	d.t.Helper()
	var p struct {
		IPs []string `json:"ips"`
	}
	_, rev, err := d.b.call("POST", "/v1/networks/"+dhcpNetwork+"/ports", map[string]any{
		"name": vm.Name, "host": vm.Host.Name, "interface": vm.HostIface, "mac": vm.MAC, "port_security_enabled": security}, &p)
	must(d.t, err)
	if len(p.IPs) != 1 {
		d.t.Fatalf("port %s got addresses %v, want one", vm.Name, p.IPs)
	}
	return p.IPs[0], rev
}

// startDnsmasq runs dnsmasq in its VM for the whole run: while brtun
// answers, br-int sends the VMs' requests to brtun only, so it sees none.
func (d *dhcpLab) startDnsmasq() {
	t := d.t
	vm := d.server
	dir := filepath.Join(d.lab.Dir, "dnsmasq")
	must(t, os.MkdirAll(dir, 0o755))
	var hosts strings.Builder
	for _, v := range d.vms {
		fmt.Fprintf(&hosts, "%s,%s\n", v.MAC, v.ip)
	}
	must(t, os.WriteFile(filepath.Join(dir, "hosts"), []byte(hosts.String()), 0o644))
	cmd := exec.Command("ip", "netns", "exec", vm.Netns, "dnsmasq",
		"--keep-in-foreground", "--log-facility=-", "--conf-file=/dev/null", "--no-ping", "--quiet-dhcp", "--port=0",
		"--interface=eth0", "--bind-interfaces", "--dhcp-authoritative",
		"--pid-file="+filepath.Join(dir, "pid"), "--dhcp-leasefile="+filepath.Join(dir, "leases"),
		"--dhcp-range=198.18.0.0,static,255.255.255.0,"+fmt.Sprint(int(dhcpLease.Seconds())),
		"--dhcp-hostsfile="+filepath.Join(dir, "hosts"),
		"--dhcp-option=option:router,"+dhcpGateway, "--dhcp-option=option:dns-server,"+dhcpDNS,
		fmt.Sprintf("--dhcp-option=option:mtu,%d", dhcpVXLANMTU))
	logPath := filepath.Join(dir, "dnsmasq.log")
	p := testbed.StartProc(t, cmd, logPath)
	t.Cleanup(func() {
		p.Stop(t)
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			t.Logf("dnsmasq log:\n%s", out)
		}
	})
	waitTrue(t, 10*time.Second, func() bool {
		out, err := vm.Run("ss", "-Hluan", "sport", "=", ":67")
		return err == nil && strings.Contains(out, ":67")
	}, "dnsmasq to listen on udp 67")
}

// serve makes srv the lab's DHCP server: the subnet's enable_dhcp on for
// brtun, off for dnsmasq, and waits until both hosts applied it.
func (d *dhcpLab) serve(srv dhcpServer) {
	d.t.Helper()
	if srv == d.current {
		return
	}
	var st struct{}
	_, rev, err := d.b.call("PATCH", "/v1/networks/"+dhcpNetwork+"/subnets/"+dhcpSubnet, map[string]any{"enable_dhcp": srv == serverBrtun}, &st)
	must(d.t, err)
	d.b.waitApplied(time.Minute, rev, "h1", "h2")
	d.current = srv
}

// lease runs one one-shot client of kind in vm, checks what it was given
// and returns how long it took.
func (d *dhcpLab) lease(vm *benchVM, kind dhcpclient.Kind, name string) time.Duration {
	d.t.Helper()
	_, err := vm.Run("ip", "addr", "flush", "dev", "eth0")
	must(d.t, err)
	l, err := vm.client.Once(d.t, kind, name, dhcpLeaseWait)
	must(d.t, err)
	d.check(vm, l)
	return l.Took
}

func (d *dhcpLab) check(vm *benchVM, l dhcpclient.Lease) {
	d.t.Helper()
	router := l.Event["new_routers"] + l.Event["router"]
	if l.Event.IP() != vm.ip || router != dhcpGateway {
		d.t.Fatalf("%s leased %q with router %q from %s, want %s and %s: %v", vm.Name, l.Event.IP(), router, d.current, vm.ip, dhcpGateway, l.Event)
	}
}

// storm is one boot of all VMs at once: when each VM had bound, from the
// common start.
type storm struct{ each []time.Duration }

func (s storm) last() time.Duration { return percentiles(append([]time.Duration(nil), s.each...)).max }

// storm starts the client of kind in every VM at once and waits until all
// have bound.
func (d *dhcpLab) storm(kind dhcpclient.Kind, name string) storm {
	t := d.t
	t.Helper()
	for _, vm := range d.vms {
		_, err := vm.Run("ip", "addr", "flush", "dev", "eth0")
		must(t, err)
	}
	gate := make(chan struct{})
	s := storm{each: make([]time.Duration, len(d.vms))}
	errs := make([]error, len(d.vms))
	leases := make([]dhcpclient.Lease, len(d.vms))
	var wg sync.WaitGroup
	var start time.Time
	for i, vm := range d.vms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			leases[i], errs[i] = vm.client.Once(t, kind, name, dhcpLeaseWait)
			s.each[i] = leases[i].At.Sub(start) // not the stopping of dhclient's background process
		}()
	}
	start = time.Now()
	close(gate)
	wg.Wait()
	for i, vm := range d.vms {
		must(t, errs[i])
		d.check(vm, leases[i])
	}
	return s
}

func meanLast(runs []storm) time.Duration {
	var sum time.Duration
	for _, r := range runs {
		sum += r.last()
	}
	return sum / time.Duration(len(runs))
}

func fmtStorms(runs []storm) string {
	parts := make([]string, len(runs))
	for i, r := range runs {
		parts[i] = fmt.Sprintf("%.2f s", secs(r.last()))
	}
	return "last lease " + strings.Join(parts, ", ")
}

// stormMedians is the median lease of a VM within the storms, per client
// and server.
func stormMedians(storms map[dhcpclient.Kind]map[dhcpServer][]storm) string {
	var parts []string
	for _, kind := range []dhcpclient.Kind{dhcpclient.Dhclient, dhcpclient.Udhcpc} {
		for _, srv := range []dhcpServer{serverBrtun, serverDnsmasq} {
			var all []time.Duration
			for _, r := range storms[kind][srv] {
				all = append(all, r.each...)
			}
			parts = append(parts, fmt.Sprintf("%s from %s %s", kind, srv, ms(percentiles(all).p50)))
		}
	}
	return strings.Join(parts, ", ")
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", secs(d)*1e3) }

// dnsmasqVersion is "2.90" from "Dnsmasq version 2.90  Copyright ...".
func dnsmasqVersion() string {
	out, _ := exec.Command("dnsmasq", "--version").Output()
	if f := strings.Fields(string(out)); len(f) >= 3 {
		return f[2]
	}
	return "(unknown version)"
}
