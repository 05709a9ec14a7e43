//go:build integration

// Command demo shows brtun at work on three simulated hosts: two tenants whose
// VMs use the same IP addresses, one on VXLAN and one on GRE with the same
// segment id, set up entirely with the brtun CLI. Ports are created with no
// MAC or IP: brtun generates the MAC and allocates the address from the
// tenant's subnet, and each VM takes its address by DHCP from brtun (busybox
// udhcpc). A container (a network namespace) joins tenant-a through the
// brtun-cni plugin, run as a container runtime runs it. Pings succeed inside
// each tenant and fail across tenants. Everything is torn down on exit; with
// DEMO_KEEP=1 the demo stays up until it is interrupted.
//
// Run it with `make demo` (as root; it installs Open vSwitch when missing).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/brtun/brtun/testbed"
	"github.com/brtun/brtun/testbed/lab"
)

func main() {
	var o options
	flag.StringVar(&o.brtun, "brtun", "", "brtun binary to use (default: build ./cmd/brtun)")
	flag.StringVar(&o.cni, "cni", "", "brtun-cni binary to use (default: build ./cmd/brtun-cni)")
	flag.Parse()
	o.keep = os.Getenv("DEMO_KEEP") == "1"
	if err := run(os.Stdout, o); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

type options struct {
	brtun string // path of the brtun binary; built when empty
	cni   string // path of the brtun-cni binary; built when empty
	keep  bool   // stay up until interrupted
}

// runner lets the lab run outside go test: Fatalf unwinds to run, which
// then runs every cleanup.
type runner struct {
	out      io.Writer
	cleanups []func()
	failed   bool
}

type fatal string

func (r *runner) Helper()                         {}
func (r *runner) Logf(format string, args ...any) { fmt.Fprintf(r.out, "  "+format+"\n", args...) }
func (r *runner) Cleanup(f func())                { r.cleanups = append(r.cleanups, f) }
func (r *runner) Failed() bool                    { return r.failed }
func (r *runner) Fatalf(format string, args ...any) {
	r.failed = true
	panic(fatal(fmt.Sprintf(format, args...)))
}

func (r *runner) teardown() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
	r.cleanups = nil
}

// tenantVM is one VM of the demo; ip is the address brtun allocates it
// (the lowest free one of its tenant's subnet, in creation order).
type tenantVM struct {
	name, tenant, ip string
	host             int // 1-based
}

var vms = []tenantVM{
	{"a1", "tenant-a", "198.18.0.2", 1},
	{"a2", "tenant-a", "198.18.0.3", 2},
	{"a3", "tenant-a", "198.18.0.4", 3},
	{"b1", "tenant-b", "198.18.0.2", 1},
	{"b2", "tenant-b", "198.18.0.3", 2},
}

// udhcpcScript applies a lease from busybox udhcpc.
const udhcpcScript = `#!/bin/sh
case "$1" in
  bound|renew) ip addr replace "$ip/$subnet" dev "$interface" ;;
esac
exit 0
`

// The demo's container: brtun-cni attaches it to tenant-a on h1, and
// brtun allocates it the next free address of tenant-a's subnet.
const (
	ctrName = "c1"
	ctrHost = 1
	ctrIP   = "198.18.0.5"
)

// check is one ping of the demo and what it must do.
type check struct {
	from, to, why string
	want          bool
}

var checks = []check{
	{"a1", "198.18.0.3", "tenant-a, h1 -> h2 over VXLAN", true},
	{"a1", "198.18.0.4", "tenant-a, h1 -> h3 over VXLAN", true},
	{"c1", "198.18.0.4", "tenant-a, container on h1 -> a3 on h3 over VXLAN", true},
	{"a2", ctrIP, "tenant-a, a2 on h2 -> the container on h1", true},
	{"b1", "198.18.0.3", "tenant-b, h1 -> h2 over GRE, same IP as a2", true},
	{"b1", "198.18.0.4", "only tenant-a has .4: tenant-b must not reach it", false},
}

func run(w io.Writer, o options) (err error) {
	r := &runner{out: w}
	defer r.teardown()
	defer func() {
		if p := recover(); p != nil {
			f, ok := p.(fatal)
			if !ok {
				panic(p)
			}
			err = errors.New(string(f))
		}
	}()
	step := func(format string, args ...any) { fmt.Fprintf(w, "\n== "+format+"\n", args...) }

	step("starting three simulated hosts (network namespaces with their own OVS, userspace datapath)")
	l := lab.New(r, lab.Options{Hosts: 3})
	for _, h := range l.Hosts {
		fmt.Fprintf(w, "  %s: management %s, tunnel IP %s, OVSDB %s\n", h.Name, h.MgmtIP, h.TunnelIP, h.OVSDB)
	}
	bin := o.brtun
	if bin == "" {
		bin = testbed.BrtunBinary(r)
	}

	cniBin := o.cni
	if cniBin == "" {
		cniBin = filepath.Join(l.Dir, "brtun-cni")
		if out, err := exec.Command("go", "build", "-o", cniBin, "github.com/brtun/brtun/cmd/brtun-cni").CombinedOutput(); err != nil {
			r.Fatalf("go build brtun-cni: %v: %s", err, out)
		}
	}

	step("starting brtun serve")
	// The API listens on the management LAN: brtun-cni calls it from h1.
	api := fmt.Sprintf("http://%s:%d", l.ControllerIP, testbed.FreePort(r, l.ControllerIP))
	of := "tcp:" + l.ControllerIP + ":6653"
	testbed.StartBrtun(r, testbed.BrtunOptions{
		Binary: bin, API: api, LogPath: filepath.Join(l.Dir, "brtun.log"),
		Args: []string{"--api-listen", strings.TrimPrefix(api, "http://"), "--openflow-listen", of,
			"--openflow-advertise", of, "--data-dir", filepath.Join(l.Dir, "brtun-data")},
	})
	fmt.Fprintf(w, "  REST API %s, OpenFlow tcp:%s:6653, log %s/brtun.log\n", api, l.ControllerIP, l.Dir)
	cli := func(args ...string) string {
		fmt.Fprintf(w, "$ brtun %s\n", strings.Join(args, " "))
		out, err := exec.Command(bin, append([]string{"--server", api}, args...)...).CombinedOutput()
		fmt.Fprint(w, indent(string(out)))
		if err != nil {
			r.Fatalf("brtun %s: %v", strings.Join(args, " "), err)
		}
		return string(out)
	}

	step("registering the hosts")
	for _, h := range l.Hosts {
		cli("host", "add", h.Name, "--ovsdb", h.OVSDB, "--tunnel-ip", h.TunnelIP, "--datapath-type", h.DatapathType)
	}
	step("creating two tenant networks with the same segment id, one VXLAN and one GRE")
	cli("net", "create", "tenant-a", "--type", "vxlan", "--segment", "5001")
	cli("net", "create", "tenant-b", "--type", "gre", "--segment", "5001")

	step("giving both tenants the same subnet, 198.18.0.0/24; brtun answers their DHCP")
	cli("subnet", "create", "tenant-a", "v4", "--cidr", "198.18.0.0/24", "--dns", "198.18.0.53")
	cli("subnet", "create", "tenant-b", "v4", "--cidr", "198.18.0.0/24", "--dns", "198.18.0.54")

	step("starting VMs (namespaces), binding them without MAC or IP, and leasing their addresses by DHCP")
	script := filepath.Join(l.Dir, "udhcpc.sh")
	if err := os.WriteFile(script, []byte(udhcpcScript), 0o755); err != nil {
		r.Fatalf("write %s: %v", script, err)
	}
	pingers := map[string]func(ip string) bool{}
	for _, v := range vms {
		h := l.Hosts[v.host-1]
		vm := l.AddVM(r, h, lab.VMOptions{Name: v.name, Quiet: true})
		pingers[v.name] = func(ip string) bool { ok, _ := vm.Ping(ip, 3); return ok }
		var port struct {
			MAC string   `json:"mac"`
			IPs []string `json:"ips"`
		}
		out := cli("port", "add", v.tenant, v.name, "--host", h.Name, "--interface", vm.HostIface, "--wait", "30s", "-o", "json")
		if err := json.Unmarshal([]byte(out), &port); err != nil || port.MAC == "" {
			r.Fatalf("port add %s: no MAC in %q (%v)", v.name, out, err)
		}
		for _, args := range [][]string{{"link", "set", "eth0", "down"}, {"link", "set", "eth0", "address", port.MAC}, {"link", "set", "eth0", "up"}} {
			if out, err := vm.Run(append([]string{"ip"}, args...)...); err != nil {
				r.Fatalf("%s: ip %v: %v: %s", v.name, args, err, out)
			}
		}
		out, err := vm.Run("busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-t", "5", "-T", "1", "-s", script)
		fmt.Fprintf(w, "  %s (%s): %s", v.name, port.MAC, indent(lastLine(out)))
		if err != nil {
			r.Fatalf("%s: udhcpc: %v: %s", v.name, err, out)
		}
		if got, _ := vm.Run("ip", "-4", "-o", "addr", "show", "dev", "eth0"); !strings.Contains(got, " "+v.ip+"/24") {
			r.Fatalf("%s: leased address is not %s: %s", v.name, v.ip, got)
		}
	}
	cli("host", "list")

	step("attaching a container (a network namespace) to tenant-a on h%d with the brtun-cni plugin, as a container runtime would", ctrHost)
	ctr := attachContainer(r, w, l, l.Hosts[ctrHost-1], cniBin, api)
	pingers[ctrName] = func(ip string) bool {
		_, err := testbed.Run(nil, "ip", "netns", "exec", ctr, "ping", "-c", "3", "-i", "0.2", "-W", "1", ip)
		return err == nil
	}
	cli("port", "list", "tenant-a", "--tag", "brtun-cni")

	step("pinging inside and across tenants")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  FROM\tTO\tEXPECTED\tGOT\tCHECK\tWHY")
	var failures []string
	for _, c := range checks {
		ok := pingers[c.from](c.to)
		verdict := "ok"
		if ok != c.want {
			verdict = "WRONG"
			failures = append(failures, fmt.Sprintf("%s -> %s: want reachable=%v, got %v", c.from, c.to, c.want, ok))
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", c.from, c.to, reach(c.want), reach(ok), verdict, c.why)
	}
	_ = tw.Flush()

	step("br-tun flows of h1, table 3 (tunnel type + id -> local VLAN), read from the switch")
	cli("flows", "h1", "--bridge", "br-tun", "--table", "3")

	if len(failures) > 0 {
		return fmt.Errorf("%d checks went wrong: %s", len(failures), strings.Join(failures, "; "))
	}
	fmt.Fprintln(w, "\nDemo passed: each tenant reaches its own VMs and nothing of the other tenant.")
	if o.keep {
		explain(w, l, api, bin)
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		<-ctx.Done()
		stop()
		fmt.Fprintln(w, "\ntearing down")
	}
	return nil
}

// cniConf is brtun-cni's network configuration for tenant-a on host.
const cniConf = `{"cniVersion":"1.0.0","name":"tenant-a","type":"brtun-cni","server":%q,"network":"tenant-a","host":%q}`

// attachContainer makes a network namespace standing for a container and
// runs brtun-cni's ADD for it from host h's namespace, with the CNI
// environment and configuration a runtime passes; the plugin creates the
// veth, registers its host end as a brtun port and configures the
// container's eth0 with the port's MAC and address. It returns the
// namespace's name.
func attachContainer(r *runner, w io.Writer, l *lab.Lab, h *lab.Host, cniBin, api string) string {
	ctr := l.Prefix + ctrName
	if _, err := testbed.Run(nil, "ip", "netns", "add", ctr); err != nil {
		r.Fatalf("%v", err)
	}
	r.Cleanup(func() { _, _ = testbed.Run(nil, "ip", "netns", "del", ctr) })
	conf := fmt.Sprintf(cniConf, api, h.Name)
	env := []string{"CNI_COMMAND=ADD", "CNI_CONTAINERID=demo-" + ctrName, "CNI_NETNS=/run/netns/" + ctr, "CNI_IFNAME=eth0", "CNI_PATH=" + filepath.Dir(cniBin)}
	fmt.Fprintf(w, "$ ip netns exec %s env %s brtun-cni <<< '%s'\n", h.Netns, strings.Join(env, " "), conf)
	cmd := exec.Command("ip", append([]string{"netns", "exec", h.Netns, "env"}, append(env, cniBin)...)...)
	cmd.Stdin = strings.NewReader(conf)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		r.Fatalf("brtun-cni ADD: %v: %s%s", err, out, stderr.String())
	}
	var res struct {
		Interfaces []struct {
			Name    string `json:"name"`
			MAC     string `json:"mac"`
			Sandbox string `json:"sandbox"`
		} `json:"interfaces"`
		IPs []struct {
			Address string `json:"address"`
			Gateway string `json:"gateway"`
		} `json:"ips"`
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res.IPs) == 0 {
		r.Fatalf("brtun-cni ADD printed no address: %s (%v)", out, err)
	}
	for _, i := range res.Interfaces {
		if i.Sandbox != "" {
			fmt.Fprintf(w, "  %s: %s %s, gateway %s, MAC %s (all from brtun)\n", ctrName, i.Name, res.IPs[0].Address, res.IPs[0].Gateway, i.MAC)
		}
	}
	if res.IPs[0].Address != ctrIP+"/24" {
		r.Fatalf("the container got %s, not %s/24", res.IPs[0].Address, ctrIP)
	}
	return ctr
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func reach(ok bool) string {
	if ok {
		return "reachable"
	}
	return "no answer"
}

func indent(s string) string {
	if s == "" {
		return ""
	}
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ") + "\n"
}

// explain tells a DEMO_KEEP user how to look around and how to stop.
func explain(w io.Writer, l *lab.Lab, api, bin string) {
	h1 := l.Hosts[0]
	fmt.Fprintf(w, `
The demo stays up (DEMO_KEEP=1). From another terminal, as root:
  %[1]s --server %[2]s host list
  %[1]s --server %[2]s net list
  %[1]s --server %[2]s flows h1 --bridge br-tun
  curl -s %[2]s/v1/hosts/h1 ; open %[2]s/ui in a browser on this machine
  ip netns exec %[3]s ping 198.18.0.3          # VM a1 (tenant-a) on h1 -> a2
  ip netns exec %[7]s ping 198.18.0.4           # the brtun-cni container on h1 -> a3
  ovs-ofctl -O OpenFlow13 dump-flows %[4]s
  ovs-vsctl --db=%[5]s show
Tear it all down: press Ctrl-C here, or run: kill %[6]d
`, bin, api, l.Prefix+"va1", h1.BridgeTarget("br-tun"), h1.DBSock, os.Getpid(), l.Prefix+ctrName)
}
