package testbed

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// FRROptions configures FRR daemons in a network namespace.
type FRROptions struct {
	Netns string // the namespace to run in (it must exist)
	Dir   string // configuration, PID files, logs and vty sockets; short (unix socket paths)
	BGPD  string // bgpd.conf; "log file" is added
	Zebra string // zebra.conf besides its log file; may be empty
}

// FRR is zebra and bgpd of Debian's frr package (8.4) running in one
// namespace. The packaged service does not start without systemd, so the
// daemons run as `-d` with files owned by user frr (as root they fail on
// the frrvty group). They are not children of the test: Stop (or a lab's
// leftover cleanup, which kills what runs in a stale namespace) ends them.
type FRR struct {
	Netns string
	Dir   string
}

// EVPNBGPD is the bgpd.conf of an FRR VTEP in the tests: iBGP in asn with
// every peer, router-id routerID, the l2vpn evpn family only, every local
// VNI advertised, and the short timers tests use (keepalive 1 s, hold 3 s,
// connect retry 1 s).
func EVPNBGPD(name, routerID string, asn int, peers ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "hostname %s\nrouter bgp %d\n bgp router-id %s\n no bgp default ipv4-unicast\n timers bgp 1 3\n", name, asn, routerID)
	for _, p := range peers {
		fmt.Fprintf(&b, " neighbor %s remote-as %d\n neighbor %s timers connect 1\n", p, asn, p)
	}
	b.WriteString(" address-family l2vpn evpn\n")
	for _, p := range peers {
		fmt.Fprintf(&b, "  neighbor %s activate\n", p)
	}
	b.WriteString("  advertise-all-vni\n exit-address-family\n")
	return b.String()
}

// StartFRR writes the configuration and starts zebra, then bgpd.
func StartFRR(t TB, o FRROptions) *FRR {
	t.Helper()
	for _, bin := range []string{"/usr/lib/frr/zebra", "/usr/lib/frr/bgpd", "vtysh"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("testbed: %s missing: apt-get install -y frr (make deps)", bin)
		}
	}
	f := &FRR{Netns: o.Netns, Dir: o.Dir}
	if err := os.MkdirAll(f.Dir, 0o755); err != nil {
		t.Fatalf("testbed: %v", err)
	}
	confs := map[string]string{
		"zebra": fmt.Sprintf("log file %s/zebra.log\n%s", f.Dir, o.Zebra),
		"bgpd":  fmt.Sprintf("log file %s/bgpd.log\n%s", f.Dir, o.BGPD),
	}
	for name, conf := range confs {
		if err := os.WriteFile(filepath.Join(f.Dir, name+".conf"), []byte(conf), 0o644); err != nil {
			t.Fatalf("testbed: %v", err)
		}
	}
	MustRun(t, nil, "chown", "-R", "frr:frr", f.Dir)
	f.Start(t, "zebra")
	if !Poll(10*time.Second, 50*time.Millisecond, func() bool {
		_, err := os.Stat(filepath.Join(f.Dir, "zserv.api"))
		return err == nil
	}) {
		t.Fatalf("testbed: zebra did not open its socket in %s", f.Dir)
	}
	f.Start(t, "bgpd")
	return f
}

// Start starts one daemon ("zebra" or "bgpd") and waits for its PID file.
func (f *FRR) Start(t TB, name string) {
	t.Helper()
	out, err := Run(nil, "ip", "netns", "exec", f.Netns, "/usr/lib/frr/"+name, "-d",
		"-f", filepath.Join(f.Dir, name+".conf"), "-i", filepath.Join(f.Dir, name+".pid"),
		"-z", filepath.Join(f.Dir, "zserv.api"), "--vty_socket", f.Dir, "-P", "0")
	if err != nil {
		t.Fatalf("testbed: start %s: %v: %s", name, err, out)
	}
	if f.PID(name) == 0 {
		t.Fatalf("testbed: %s wrote no PID file", name)
	}
}

// PID reads a daemon's PID file (waiting up to 2.5 s); 0 when there is none.
func (f *FRR) PID(name string) int {
	for range 50 {
		b, err := os.ReadFile(filepath.Join(f.Dir, name+".pid"))
		if err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				return pid
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return 0
}

// Kill sends sig to a daemon this FRR started, by its PID file, and waits
// until it is gone.
func (f *FRR) Kill(name string, sig syscall.Signal) {
	pid := f.PID(name)
	if pid == 0 {
		return
	}
	_ = syscall.Kill(pid, sig)
	Poll(5*time.Second, 50*time.Millisecond, func() bool { return syscall.Kill(pid, 0) != nil })
	_ = os.Remove(filepath.Join(f.Dir, name+".pid"))
}

// Vtysh runs vtysh commands (each a -c) and returns the output.
func (f *FRR) Vtysh(cmds ...string) (string, error) {
	args := []string{"netns", "exec", f.Netns, "vtysh", "--vty_socket", f.Dir}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	return Run(nil, "ip", args...)
}

// LogTail returns the last n lines of a daemon's log.
func (f *FRR) LogTail(name string, n int) string {
	b, _ := os.ReadFile(filepath.Join(f.Dir, name+".log"))
	lines := strings.Split(string(b), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// Stop logs FRR's view when the test failed, then stops bgpd and zebra.
func (f *FRR) Stop(t TB) {
	if t.Failed() {
		out, _ := f.Vtysh("show bgp l2vpn evpn", "show evpn mac vni all", "show bgp summary")
		t.Logf("FRR state in %s:\n%s", f.Netns, out)
		for _, l := range []string{"bgpd", "zebra"} {
			t.Logf("%s.log (tail):\n%s", l, f.LogTail(l, 40))
		}
	}
	f.Kill("bgpd", syscall.SIGTERM)
	f.Kill("zebra", syscall.SIGTERM)
}
