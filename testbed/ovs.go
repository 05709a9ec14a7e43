package testbed

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	ovsdbServer = "ovsdb-server"
	vswitchd    = "ovs-vswitchd"
	schemaPath  = "/usr/share/openvswitch/vswitch.ovsschema"
)

// NeedOVS fails the test (never skips it) when an Open vSwitch program is
// missing; `make deps` installs them.
func NeedOVS(t TB) {
	t.Helper()
	for _, bin := range []string{ovsdbServer, vswitchd, "ovsdb-tool", "ovs-vsctl", "ovs-ofctl", "ovs-appctl"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("testbed: %s not found: install openvswitch-switch (`make deps` does)", bin)
		}
	}
}

// Switch is one ovsdb-server and ovs-vswitchd pair with its own run
// directory Dir (database, sockets, pid and log files), in the network
// namespace Netns ("" for the test's own). OVS tools reach it from the
// root namespace through the unix sockets in Dir.
type Switch struct {
	Dir    string
	DBSock string // unix:<Dir>/db.sock
	Netns  string

	ovsdb   *Proc
	vswitch *Proc
}

// NewSwitch prepares a switch in dir (created) with a fresh database; its
// daemons are not started yet. A cleanup of t stops them.
func NewSwitch(t TB, dir, netns string) *Switch {
	t.Helper()
	NeedOVS(t)
	s := &Switch{Dir: dir, DBSock: "unix:" + dir + "/db.sock", Netns: netns}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("testbed: %v", err)
	}
	MustRun(t, nil, "ovsdb-tool", "create", dir+"/conf.db", schemaPath)
	t.Cleanup(func() { s.Stop(t) })
	return s
}

// StartOVS starts a private Open vSwitch in dir: ovsdb-server on a unix
// socket and ovs-vswitchd on the dummy datapath (--enable-dummy=override
// makes every system datapath and interface a dummy one, so bridges and
// ports need no kernel device). A cleanup stops both.
func StartOVS(t TB, dir string) *Switch {
	t.Helper()
	s := NewSwitch(t, dir, "")
	s.StartOVSDB(t)
	if _, err := s.Vsctl("--no-wait", "init"); err != nil {
		t.Fatalf("testbed: %v", err)
	}
	s.StartVswitchd(t, "--enable-dummy=override", "--disable-system")
	return s
}

// Env is the environment that points OVS tools at this switch's run
// directory (bridges' management sockets are <Dir>/<bridge>.mgmt).
func (s *Switch) Env() []string {
	return append(os.Environ(), "OVS_RUNDIR="+s.Dir, "OVS_LOGDIR="+s.Dir, "OVS_DBDIR="+s.Dir)
}

// StartOVSDB starts ovsdb-server on the unix socket DBSock, with more
// arguments (remotes, keys) when given, and waits until it answers.
func (s *Switch) StartOVSDB(t TB, args ...string) {
	t.Helper()
	base := []string{s.Dir + "/conf.db", "--remote=punix:" + s.Dir + "/db.sock",
		"--unixctl=" + s.Dir + "/ovsdb-server.ctl", "--pidfile=" + s.Dir + "/ovsdb-server.pid",
		"--log-file=" + s.Dir + "/ovsdb-server.log", "-vconsole:off"}
	s.ovsdb = s.start(t, ovsdbServer, append(base, args...)...)
	if !Poll(10*time.Second, 20*time.Millisecond, func() bool {
		_, err := Run(s.Env(), "ovs-vsctl", "--db="+s.DBSock, "--timeout=1", "--no-wait", "get", "Open_vSwitch", ".", "_uuid")
		return err == nil || strings.Contains(err.Error(), "no row")
	}) {
		t.Fatalf("testbed: ovsdb-server in %s did not come up; see its log there", s.Dir)
	}
}

// StartVswitchd starts ovs-vswitchd, with more arguments when given, and
// waits until it answers.
func (s *Switch) StartVswitchd(t TB, args ...string) {
	t.Helper()
	base := []string{s.DBSock, "--unixctl=" + s.Dir + "/ovs-vswitchd.ctl", "--pidfile=" + s.Dir + "/ovs-vswitchd.pid",
		"--log-file=" + s.Dir + "/ovs-vswitchd.log", "-vconsole:off"}
	s.vswitch = s.start(t, vswitchd, append(base, args...)...)
	if !Poll(10*time.Second, 20*time.Millisecond, func() bool { _, err := s.Appctl("version"); return err == nil }) {
		t.Fatalf("testbed: ovs-vswitchd in %s did not come up; see its log there", s.Dir)
	}
}

// start runs an OVS daemon in the foreground (no --detach) as a child of
// the test, in the switch's namespace; its console output goes to
// <Dir>/<daemon>.out.
func (s *Switch) start(t TB, bin string, args ...string) *Proc {
	t.Helper()
	argv := append([]string{bin}, args...)
	if s.Netns != "" {
		argv = append([]string{"ip", "netns", "exec", s.Netns}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = s.Env()
	return StartProc(t, cmd, s.Dir+"/"+bin+".out")
}

// StopOVSDB stops ovsdb-server (SIGTERM, then SIGKILL).
func (s *Switch) StopOVSDB(t TB) {
	t.Helper()
	s.ovsdb.Stop(t)
	s.ovsdb = nil
}

// StopVswitchd stops ovs-vswitchd (SIGTERM, then SIGKILL).
func (s *Switch) StopVswitchd(t TB) {
	t.Helper()
	s.vswitch.Stop(t)
	s.vswitch = nil
}

// Stop stops both daemons; stopped ones are left alone.
func (s *Switch) Stop(t TB) {
	s.vswitch.Stop(t)
	s.ovsdb.Stop(t)
	s.vswitch, s.ovsdb = nil, nil
}

// VswitchdRunning reports whether ovs-vswitchd was started and has not
// exited since.
func (s *Switch) VswitchdRunning() bool {
	return s.vswitch != nil && !s.vswitch.Exited()
}

// VswitchdPID is the PID of the running ovs-vswitchd (0 when stopped).
func (s *Switch) VswitchdPID() int {
	if s.vswitch == nil {
		return 0
	}
	return s.vswitch.PID()
}

// Vsctl runs ovs-vsctl against this switch's database.
func (s *Switch) Vsctl(args ...string) (string, error) {
	return Run(s.Env(), "ovs-vsctl", append([]string{"--db=" + s.DBSock, "--timeout=20"}, args...)...)
}

// Ofctl runs ovs-ofctl with OpenFlow 1.3. The argument after the command,
// when it is a bare bridge name (no ':' and no leading '-'), is replaced
// by that bridge's management socket.
func (s *Switch) Ofctl(args ...string) (string, error) {
	if len(args) >= 2 && !strings.Contains(args[1], ":") && !strings.HasPrefix(args[1], "-") {
		args = append([]string{args[0], s.BridgeTarget(args[1])}, args[2:]...)
	}
	return Run(s.Env(), "ovs-ofctl", append([]string{"-O", "OpenFlow13"}, args...)...)
}

// Appctl runs ovs-appctl against this switch's ovs-vswitchd.
func (s *Switch) Appctl(args ...string) (string, error) {
	return Run(s.Env(), "ovs-appctl", append([]string{"-t", s.Dir + "/ovs-vswitchd.ctl"}, args...)...)
}

// OVSDBAppctl runs ovs-appctl against this switch's ovsdb-server.
func (s *Switch) OVSDBAppctl(args ...string) (string, error) {
	return Run(s.Env(), "ovs-appctl", append([]string{"-t", s.Dir + "/ovsdb-server.ctl"}, args...)...)
}

// BridgeTarget is the OpenFlow management socket of a bridge, e.g.
// unix:/tmp/bt.../h1/br-tun.mgmt.
func (s *Switch) BridgeTarget(bridge string) string {
	return "unix:" + s.Dir + "/" + bridge + ".mgmt"
}

// AddBridge creates an OpenFlow 1.3 bridge with fail_mode secure on the
// dummy datapath, with more bridge settings when given (e.g.
// "other_config:datapath-id=00000000000000b7"), and waits for its
// management socket.
func (s *Switch) AddBridge(t TB, name string, settings ...string) {
	t.Helper()
	args := append([]string{"add-br", name, "--", "set", "bridge", name, "datapath_type=dummy",
		"protocols=OpenFlow13", "fail_mode=secure"}, settings...)
	if out, err := s.Vsctl(args...); err != nil {
		t.Fatalf("testbed: %v: %s", err, out)
	}
	sock := strings.TrimPrefix(s.BridgeTarget(name), "unix:")
	if !Poll(20*time.Second, 20*time.Millisecond, func() bool { _, err := os.Stat(sock); return err == nil }) {
		t.Fatalf("testbed: %s did not appear", sock)
	}
}

// AddDummyPorts adds dummy ports <bridge>-p<N> at the OpenFlow port
// numbers N to a bridge.
func (s *Switch) AddDummyPorts(t TB, bridge string, ofports ...uint32) {
	t.Helper()
	if len(ofports) == 0 {
		return
	}
	var args []string
	for _, p := range ofports {
		port := fmt.Sprintf("%s-p%d", bridge, p)
		args = append(args, "--", "add-port", bridge, port, "--", "set", "interface", port,
			"type=dummy", fmt.Sprintf("ofport_request=%d", p))
	}
	if out, err := s.Vsctl(args[1:]...); err != nil {
		t.Fatalf("testbed: %v: %s", err, out)
	}
}

// DumpFlows is a bridge's canonical dump (--no-stats --no-names): one flow
// a line, trimmed, sorted (flowLines).
func (s *Switch) DumpFlows(t TB, bridge string, args ...string) []string {
	t.Helper()
	out, err := s.Ofctl(append([]string{"dump-flows", bridge, "--no-stats", "--no-names", "-vconsole:off"}, args...)...)
	if err != nil {
		t.Fatalf("testbed: %v", err)
	}
	return flowLines(out)
}

// flowLines are the flows of a dump's output, trimmed and sorted: without
// the reply header, and without the tool's log lines ("2026-12-05T05:44:
// 38Z|00001|timeval|WARN|Unreasonably long 1723ms poll interval ..."),
// which ovs-ofctl writes to stderr, which Run returns with the output,
// when a dump of a large bridge keeps it busy.
func flowLines(out string) []string {
	vlogLine := regexp.MustCompile(`^\d{4}-\d\d-\d\dT[^|]*\|\d+\|`)
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "OFPST_FLOW") && !strings.HasPrefix(l, "NXST_FLOW") && !vlogLine.MatchString(l) {
			lines = append(lines, l)
		}
	}
	slices.Sort(lines)
	return lines
}

// LoadFlows writes flows (one a line, ovs-ofctl syntax) to a file in Dir
// and runs `ovs-ofctl --bundle CMD BRIDGE FILE`, CMD being add-flows or
// replace-flows: all of them in one transaction.
func (s *Switch) LoadFlows(t TB, cmd, bridge string, flows []string) {
	t.Helper()
	file := filepath.Join(s.Dir, bridge+".flows")
	if err := os.WriteFile(file, []byte(strings.Join(flows, "\n")+"\n"), 0o644); err != nil {
		t.Fatalf("testbed: %v", err)
	}
	if out, err := s.Ofctl(cmd, bridge, file, "--bundle"); err != nil {
		t.Fatalf("testbed: %v: %s", err, out)
	}
}

// FlowCount is the number of flows on a bridge, or of those matching match
// (e.g. "table=0"); -1 when it cannot be read.
func (s *Switch) FlowCount(bridge string, match ...string) int {
	out, err := s.Ofctl(append([]string{"dump-aggregate", bridge}, match...)...)
	if err != nil {
		return -1
	}
	m := regexp.MustCompile(`flow_count=(\d+)`).FindStringSubmatch(out)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// Ofport reads an interface's OpenFlow port number from OVSDB, waiting up
// to 10 s until ovs-vswitchd assigned one.
func (s *Switch) Ofport(t TB, iface string) int {
	t.Helper()
	var port int
	if !Poll(10*time.Second, 50*time.Millisecond, func() bool {
		out, err := s.Vsctl("get", "Interface", iface, "ofport")
		if err != nil {
			return false
		}
		port, err = strconv.Atoi(strings.TrimSpace(out))
		return err == nil && port > 0
	}) {
		t.Fatalf("testbed: %s: no ofport for %s", s.Dir, iface)
	}
	return port
}

// PortCounters returns rx and tx packet counts of a port of a bridge, read
// with ovs-ofctl dump-ports after ovs-appctl revalidator/wait so datapath
// statistics are current.
func (s *Switch) PortCounters(t TB, bridge, port string) (rx, tx uint64) {
	t.Helper()
	if out, err := s.Appctl("revalidator/wait"); err != nil {
		t.Fatalf("testbed: revalidator/wait: %v: %s", err, out)
	}
	ofport := s.Ofport(t, port)
	out, err := s.Ofctl("dump-ports", bridge, strconv.Itoa(ofport))
	if err != nil {
		t.Fatalf("testbed: dump-ports %s %s: %v: %s", bridge, port, err, out)
	}
	// dump-ports prints "rx pkts=N, bytes=..." and "tx pkts=N, bytes=...".
	r := regexp.MustCompile(`rx pkts=(\d+)`).FindStringSubmatch(out)
	x := regexp.MustCompile(`tx pkts=(\d+)`).FindStringSubmatch(out)
	if r == nil || x == nil {
		t.Fatalf("testbed: no rx/tx packet counters in %q", out)
	}
	rx, _ = strconv.ParseUint(r[1], 10, 64)
	tx, _ = strconv.ParseUint(x[1], 10, 64)
	return rx, tx
}

// Monitor runs `ovs-ofctl monitor BRIDGE [ARGS] watch:!initial` until the
// returned stop is called; stop waits 300 ms for late events and returns
// everything it printed. ARGS "65535" also asks for packet-ins. OVS 3.1
// prints each flow event with its table and cookie ("event=ADDED table=7
// cookie=0"), not the flow's match.
func (s *Switch) Monitor(t TB, bridge string, args ...string) (stop func() string) {
	t.Helper()
	var out syncBuffer
	argv := append([]string{"-O", "OpenFlow13", "monitor", s.BridgeTarget(bridge)}, args...)
	cmd := exec.Command("ovs-ofctl", append(argv, "watch:!initial")...)
	cmd.Env = s.Env()
	cmd.Stdout, cmd.Stderr = &out, &out
	p := StartProc(t, cmd, "")
	t.Cleanup(p.Kill)
	time.Sleep(300 * time.Millisecond) // let it subscribe before events happen
	var once sync.Once
	return func() string {
		once.Do(func() {
			time.Sleep(300 * time.Millisecond)
			_ = cmd.Process.Signal(syscall.SIGTERM)
			<-p.Done()
		})
		return out.String()
	}
}

// syncBuffer is a bytes.Buffer safe for a writer goroutine of exec and a
// reader in the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
