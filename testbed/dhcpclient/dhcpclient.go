// Package dhcpclient runs Debian's real DHCP clients inside a VM's network
// namespace for brtun's tests and benchmarks: ISC dhclient (package
// isc-dhcp-client, DHCPv4 and DHCPv6) and busybox udhcpc (busybox-static).
// Every client is given a script that records each call as one line of
// key=value pairs (an Event) and applies the address it was given, so that
// renewals, which are unicast from the leased address, can be sent.
//
// It imports nothing of brtun but testbed: the dhcp package's own
// real-client test, the integration tests and the benchmarks share it.
package dhcpclient

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/brtun/brtun/testbed"
)

// script records every call of a client script (dhclient's reasons in
// upper case, udhcpc's in lower case as its first argument) in the file
// named first, and applies the address. It also keeps the environment of
// the last call per reason (file.env.REASON) for failure reports.
const script = `#!/bin/sh
out=%s
env | sort > "$out.env.${reason:-$1}"
{
  printf 'reason=%%s' "${reason:-$1}"
  for v in new_ip_address new_subnet_mask new_routers new_domain_name_servers new_interface_mtu \
           new_rfc3442_classless_static_routes new_dhcp_lease_time new_dhcp_server_identifier \
           new_ip6_address new_ip6_prefixlen new_dhcp6_name_servers \
           ip subnet router dns mtu staticroutes lease serverid; do
    eval "val=\${$v}"
    [ -n "$val" ] && printf ' %%s=%%s' "$v" "$(echo $val | tr ' ' ',')"
  done
  echo
} >> "$out"
case "${reason:-$1}" in
  BOUND|RENEW|REBIND|REBOOT) ip addr replace "$new_ip_address/$new_subnet_mask" dev "$interface" ;;
  BOUND6|RENEW6|REBIND6) ip -6 addr replace "$new_ip6_address/128" dev "$interface" ;;
  bound|renew) ip addr replace "$ip/$subnet" dev "$interface" ;;
esac
exit 0
`

// Kind is a DHCPv4 client program.
type Kind string

// The DHCPv4 clients this package runs.
const (
	Dhclient Kind = "dhclient" // ISC dhclient
	Udhcpc   Kind = "udhcpc"   // busybox udhcpc
)

// Binaries are the programs the clients need, for a test's precondition
// check (`make deps` installs them).
func Binaries() []string { return []string{"dhclient", "busybox"} }

// Client runs DHCP clients in one namespace.
type Client struct {
	Netns string // the VM's network namespace
	Iface string // the interface the clients configure (eth0)
	Dir   string // scripts, lease and pid files, event files, logs
}

// New returns a client for interface eth0 of netns, keeping its files in
// dir (created).
func New(t testbed.TB, netns, dir string) *Client {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("dhcpclient: %v", err)
	}
	return &Client{Netns: netns, Iface: "eth0", Dir: dir}
}

// Event is one call of a client script: "reason" and the variables the
// client set (dhclient's new_*, udhcpc's ip, subnet, router, dns, mtu,
// staticroutes, lease, serverid), lists joined by commas.
type Event map[string]string

// IP is the leased IPv4 address, whichever client reported it.
func (e Event) IP() string {
	if ip := e["new_ip_address"]; ip != "" {
		return ip
	}
	return e["ip"]
}

// Script writes a recording script for the client run called name and
// returns its path and the path of the file its events go to.
func (c *Client) Script(t testbed.TB, name string) (scriptPath, events string) {
	t.Helper()
	events = filepath.Join(c.Dir, name+".events")
	scriptPath = filepath.Join(c.Dir, name+".sh")
	if err := os.WriteFile(scriptPath, []byte(fmt.Sprintf(script, events)), 0o755); err != nil {
		t.Fatalf("dhcpclient: %v", err)
	}
	return scriptPath, events
}

// Run runs a command in the namespace and returns its combined output.
func (c *Client) Run(args ...string) (string, error) {
	return testbed.Run(nil, "ip", append([]string{"netns", "exec", c.Netns}, args...)...)
}

// Start starts a long-running command (a client in the foreground) in the
// namespace, its output in name.log. A cleanup kills it by its PID and,
// when the test failed, logs its output and the recorded environments.
func (c *Client) Start(t testbed.TB, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", c.Netns}, args...)...)
	logf, err := os.Create(filepath.Join(c.Dir, name+".log"))
	if err != nil {
		t.Fatalf("dhcpclient: %v", err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		t.Fatalf("dhcpclient: start %s in %s: %v", name, c.Netns, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = logf.Close()
		if t.Failed() {
			out, _ := os.ReadFile(logf.Name())
			envs, _ := filepath.Glob(filepath.Join(c.Dir, "*.env.*"))
			var env strings.Builder
			for _, f := range envs {
				b, _ := os.ReadFile(f)
				fmt.Fprintf(&env, "%s:\n%s", filepath.Base(f), b)
			}
			t.Logf("%s %s output:\n%s\nscript environments:\n%s", c.Netns, name, out, env.String())
		}
	})
	return cmd
}

// Dhclient is the command line of a foreground dhclient (-d) for run name
// with the given script (-4, or -6 when v6), its pid and lease files in
// Dir, and any extra flags (-1: one try).
func (c *Client) Dhclient(name, scriptPath string, v6 bool, extra ...string) []string {
	family := "-4"
	if v6 {
		family = "-6"
	}
	args := []string{"dhclient", family, "-d", "-v", "-sf", scriptPath,
		"-pf", filepath.Join(c.Dir, name+".pid"), "-lf", filepath.Join(c.Dir, name+".leases")}
	return append(append(args, extra...), c.Iface)
}

// Udhcpc is the command line of a foreground busybox udhcpc asking for
// the MTU and classless routes, with the given script and extra flags.
func (c *Client) Udhcpc(scriptPath string, extra ...string) []string {
	args := []string{"busybox", "udhcpc", "-i", c.Iface, "-f", "-O", "mtu", "-O", "staticroutes", "-s", scriptPath}
	return append(args, extra...)
}

// Lease is the outcome of a one-shot client run.
type Lease struct {
	Took  time.Duration // from starting the client until it reported the lease
	At    time.Time     // when it reported the lease
	Event Event         // the bound event
}

// Once runs a client of kind until it holds a lease and returns how long
// that took and what it was given; it gives up after timeout. The run is
// called name (its files in Dir); a fresh lease file makes it start with a
// DHCPDISCOVER. dhclient (-1, not -d) forks into the background once bound
// and its first process exits, which ends the clock; the background one is
// then stopped (`dhclient -x`). udhcpc runs with -n -q: it exits once bound.
func (c *Client) Once(t testbed.TB, kind Kind, name string, timeout time.Duration) (Lease, error) {
	t.Helper()
	scriptPath, events := c.Script(t, name)
	pid, leases := filepath.Join(c.Dir, name+".pid"), filepath.Join(c.Dir, name+".leases")
	_ = os.Remove(leases)
	_ = os.Remove(events)
	var args []string
	switch kind {
	case Dhclient:
		args = []string{"dhclient", "-4", "-1", "-sf", scriptPath, "-pf", pid, "-lf", leases, c.Iface}
	case Udhcpc:
		tries := max(1, int(timeout/time.Second))
		args = c.Udhcpc(scriptPath, "-n", "-q", "-t", strconv.Itoa(tries), "-T", "1")
	default:
		return Lease{}, fmt.Errorf("dhcpclient: unknown client %q", kind)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", c.Netns}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	out, err := cmd.CombinedOutput()
	at := time.Now()
	took := at.Sub(start)
	if kind == Dhclient {
		// Stop the background dhclient (also after a failure: -1 may have
		// left one retrying). Without a pid file there is none.
		if _, statErr := os.Stat(pid); statErr == nil {
			if stopOut, stopErr := c.Run("dhclient", "-x", "-pf", pid, "-lf", leases, c.Iface); stopErr != nil {
				return Lease{}, fmt.Errorf("dhcpclient: stop %s in %s: %w: %s", name, c.Netns, stopErr, stopOut)
			}
		}
	}
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("no lease within %s", timeout)
		}
		return Lease{Took: took}, fmt.Errorf("dhcpclient: %s %s in %s: %w: %s", kind, name, c.Netns, err, strings.TrimSpace(string(out)))
	}
	reason := map[Kind]string{Dhclient: "BOUND", Udhcpc: "bound"}[kind]
	for _, e := range Events(events) {
		if e["reason"] == reason {
			return Lease{Took: took, At: at, Event: e}, nil
		}
	}
	return Lease{Took: took}, fmt.Errorf("dhcpclient: %s %s in %s exited without a %s event: %v: %s", kind, name, c.Netns, reason, Events(events), out)
}

// Events reads the script calls recorded in file, complete lines only.
func Events(file string) []Event {
	b, _ := os.ReadFile(file)
	lines := strings.Split(string(b), "\n")
	// The last element is an unfinished line (or empty): the script may
	// still be writing it.
	var out []Event
	for _, line := range lines[:len(lines)-1] {
		e := Event{}
		for _, kv := range strings.Fields(line) {
			k, v, _ := strings.Cut(kv, "=")
			e[k] = v
		}
		out = append(out, e)
	}
	return out
}

// Count is the number of recorded calls with reason.
func Count(file, reason string) int {
	n := 0
	for _, e := range Events(file) {
		if e["reason"] == reason {
			n++
		}
	}
	return n
}

// WaitEvent waits up to timeout for the n-th (from 1) recorded call with
// reason and returns it; it fails the test when none comes.
func WaitEvent(t testbed.TB, file, reason string, n int, timeout time.Duration) Event {
	t.Helper()
	var found Event
	ok := testbed.Poll(timeout, 100*time.Millisecond, func() bool {
		seen := 0
		for _, e := range Events(file) {
			if e["reason"] == reason {
				if seen++; seen == n {
					found = e
					return true
				}
			}
		}
		return false
	})
	if !ok {
		t.Fatalf("dhcpclient: no %s event #%d in %s within %s: %v", reason, n, file, timeout, Events(file))
	}
	return found
}
