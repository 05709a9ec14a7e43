//go:build integration

// Command demo shows brtun at work on three simulated hosts: two tenants whose
// VMs use the same IP addresses, one on VXLAN and one on GRE with the same
// segment id, set up entirely with the brtun CLI. Ports are created with no
// MAC or IP: brtun generates the MAC and allocates the address from the
// tenant's subnet, and each VM takes its address by DHCP from brtun (busybox
// udhcpc). Pings succeed inside each tenant and fail across tenants. Everything is torn down on exit; with
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
	flag.Parse()
	o.keep = os.Getenv("DEMO_KEEP") == "1"
	if err := run(os.Stdout, o); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

type options struct {
	brtun string // path of the brtun binary; built when empty
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

// check is one ping of the demo and what it must do.
type check struct {
	from, to, why string
	want          bool
}

var checks = []check{
	{"a1", "198.18.0.3", "tenant-a, h1 -> h2 over VXLAN", true},
	{"a1", "198.18.0.4", "tenant-a, h1 -> h3 over VXLAN", true},
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

	step("starting brtun serve")
	api := fmt.Sprintf("http://127.0.0.1:%d", testbed.FreePort(r, "127.0.0.1"))
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
	vmByName := map[string]*lab.VM{}
	for _, v := range vms {
		h := l.Hosts[v.host-1]
		vm := l.AddVM(r, h, lab.VMOptions{Name: v.name, Quiet: true})
		vmByName[v.name] = vm
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

	step("pinging inside and across tenants")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  FROM\tTO\tEXPECTED\tGOT\tCHECK\tWHY")
	var failures []string
	for _, c := range checks {
		ok, _ := vmByName[c.from].Ping(c.to, 3)
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
  ovs-ofctl -O OpenFlow13 dump-flows %[4]s
  ovs-vsctl --db=%[5]s show
Tear it all down: press Ctrl-C here, or run: kill %[6]d
`, bin, api, l.Prefix+"va1", h1.BridgeTarget("br-tun"), h1.DBSock, os.Getpid())
}
