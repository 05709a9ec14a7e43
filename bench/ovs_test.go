//go:build bench

package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ovs is a private Open vSwitch: its own ovsdb-server and ovs-vswitchd in
// dir, the OVSDB on a unix socket, the dummy datapath (--enable-dummy=override
// makes every system datapath and interface a dummy one, so ports need no
// kernel device). Daemons are children with a parent-death signal.
type ovs struct {
	name  string
	dir   string
	DB    string      // unix:DIR/db.sock
	procs []*exec.Cmd // its daemons, in start order
}

func startOVS(t testing.TB, root, name string) *ovs {
	t.Helper()
	o := &ovs{name: name, dir: filepath.Join(root, name)}
	o.DB = "unix:" + o.dir + "/db.sock"
	must(t, os.MkdirAll(o.dir, 0o755))
	mustRun(t, "ovsdb-tool", "create", o.dir+"/conf.db", "/usr/share/openvswitch/vswitch.ovsschema")
	o.startOVSDB(t)
	mustRun(t, "ovs-vsctl", "--db="+o.DB, "--no-wait", "init")
	o.startVswitchd(t)
	return o
}

func (o *ovs) env() []string {
	return append(os.Environ(), "OVS_RUNDIR="+o.dir, "OVS_LOGDIR="+o.dir, "OVS_DBDIR="+o.dir)
}

func (o *ovs) startOVSDB(t testing.TB) {
	t.Helper()
	o.daemon(t, "ovsdb-server", o.dir+"/conf.db", "--remote=punix:"+o.dir+"/db.sock",
		"--unixctl="+o.dir+"/ovsdb-server.ctl", "--log-file="+o.dir+"/ovsdb-server.log", "-vconsole:off")
	waitTrue(t, 10*time.Second, func() bool {
		_, err := o.vsctl("--timeout=1", "--no-wait", "show")
		return err == nil
	}, "ovsdb-server of "+o.name)
}

func (o *ovs) startVswitchd(t testing.TB) {
	t.Helper()
	o.daemon(t, "ovs-vswitchd", o.DB, "--enable-dummy=override", "--disable-system",
		"--unixctl="+o.dir+"/ovs-vswitchd.ctl", "--log-file="+o.dir+"/ovs-vswitchd.log", "-vconsole:off")
	waitTrue(t, 10*time.Second, func() bool { _, err := o.appctl("version"); return err == nil }, "ovs-vswitchd of "+o.name)
}

func (o *ovs) daemon(t testing.TB, bin string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = o.env()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	must(t, cmd.Start())
	go func() { _ = cmd.Wait() }()
	t.Cleanup(func() { stopProc(t, cmd) })
	o.procs = append(o.procs, cmd)
	return cmd
}

// stop ends the daemons before the test does (the cleanup then finds
// them gone).
func (o *ovs) stop(t testing.TB) {
	for i := len(o.procs) - 1; i >= 0; i-- {
		stopProc(t, o.procs[i])
	}
}

func (o *ovs) vsctl(args ...string) (string, error) {
	return runEnv(o.env(), "ovs-vsctl", append([]string{"--db=" + o.DB}, args...)...)
}

func (o *ovs) ofctl(cmd, bridge string, args ...string) (string, error) {
	return runEnv(o.env(), "ovs-ofctl", append([]string{"-O", "OpenFlow13", cmd, o.mgmt(bridge)}, args...)...)
}

func (o *ovs) appctl(args ...string) (string, error) {
	return runEnv(o.env(), "ovs-appctl", append([]string{"-t", o.dir + "/ovs-vswitchd.ctl"}, args...)...)
}

func (o *ovs) mgmt(bridge string) string { return "unix:" + o.dir + "/" + bridge + ".mgmt" }

var flowCountRe = regexp.MustCompile(`flow_count=(\d+)`)

// flowCount is the number of flows on a bridge, or of those matching match
// (e.g. "table=0"); -1 when it cannot be read.
func (o *ovs) flowCount(bridge string, match ...string) int {
	out, err := o.ofctl("dump-aggregate", bridge, match...)
	if err != nil {
		return -1
	}
	m := flowCountRe.FindStringSubmatch(out)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// flowLines dumps a bridge without statistics, one flow a line.
func (o *ovs) flowLines(t testing.TB, bridge string) []string {
	t.Helper()
	out, err := o.ofctl("dump-flows", bridge, "--no-stats", "--no-names")
	must(t, err)
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "OFPST_FLOW") && !strings.HasPrefix(l, "NXST_FLOW") {
			lines = append(lines, l)
		}
	}
	return lines
}

// monitor runs `ovs-ofctl monitor BRIDGE watch:` (and packet-ins) until stop.
func (o *ovs) monitor(t testing.TB, bridge string) (stop func() string) {
	t.Helper()
	path := filepath.Join(o.dir, fmt.Sprintf("monitor-%s-%d.txt", bridge, time.Now().UnixNano()))
	f, err := os.Create(path)
	must(t, err)
	cmd := exec.Command("ovs-ofctl", "-O", "OpenFlow13", "monitor", o.mgmt(bridge), "65535", "watch:!initial")
	cmd.Env = o.env()
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	must(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	time.Sleep(300 * time.Millisecond) // let it subscribe
	return func() string {
		time.Sleep(300 * time.Millisecond)
		_ = cmd.Process.Kill()
		<-done
		_ = f.Close()
		b, _ := os.ReadFile(path)
		return string(b)
	}
}

func stopProc(t testing.TB, cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	if cmd.ProcessState != nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if syscall.Kill(cmd.Process.Pid, 0) != nil {
			return
		}
		if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid)); err != nil || strings.Contains(string(st), ") Z ") {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
}

func runEnv(env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func mustRun(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := runEnv(os.Environ(), name, args...)
	must(t, err)
	return out
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func waitTrue(t testing.TB, d time.Duration, cond func() bool, what string) {
	t.Helper()
	if !poll(d, 10*time.Millisecond, cond) {
		t.Fatalf("timed out after %s waiting for %s", d, what)
	}
}

// poll checks cond every step until it holds or d passes.
func poll(d, step time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(step)
	}
}
