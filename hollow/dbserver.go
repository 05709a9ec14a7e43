package hollow

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// SchemaPath is where Debian's openvswitch-common installs the schema.
const SchemaPath = "/usr/share/openvswitch/vswitch.ovsschema"

// DBServer is a real ovsdb-server holding one hollow host's database, run
// as a child of this process (killed with it).
type DBServer struct {
	// Dir holds the database, the socket and the log.
	Dir string
	// Socket is the server's unix socket, "unix:DIR/db.sock": the address
	// both the hollow vswitchd and brtun use.
	Socket string
	// TCP is the "tcp:IP:PORT" address brtun can use when DBServerOptions
	// asked for one, else "".
	TCP string

	cmd  *exec.Cmd
	done chan struct{}
}

// DBServerOptions configure StartDBServer.
type DBServerOptions struct {
	Dir string // created if missing; a database already there is reused
	// TCPListen adds a passive TCP remote, "IP:PORT", e.g. for a brtun on
	// another machine.
	TCPListen string
}

// StartDBServer creates the database when needed (ovsdb-tool create, then
// `ovs-vsctl init`, as a host's packaging does) and starts ovsdb-server.
func StartDBServer(ctx context.Context, o DBServerOptions) (*DBServer, error) {
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	s := &DBServer{Dir: o.Dir, Socket: "unix:" + filepath.Join(o.Dir, "db.sock"), done: make(chan struct{})}
	db := filepath.Join(o.Dir, "conf.db")
	fresh := false
	if _, err := os.Stat(db); os.IsNotExist(err) {
		if out, err := exec.CommandContext(ctx, "ovsdb-tool", "create", db, SchemaPath).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("ovsdb-tool create %s: %w: %s", db, err, out)
		}
		fresh = true
	}
	args := []string{db,
		"--remote=p" + s.Socket,
		"--unixctl=" + filepath.Join(o.Dir, "ovsdb-server.ctl"),
		"--log-file=" + filepath.Join(o.Dir, "ovsdb-server.log"), "-vconsole:off",
	}
	if o.TCPListen != "" {
		host, port, err := net.SplitHostPort(o.TCPListen)
		if err != nil {
			return nil, fmt.Errorf("tcp listen %q: %w", o.TCPListen, err)
		}
		args = append(args, fmt.Sprintf("--remote=ptcp:%s:%s", port, host))
		s.TCP = "tcp:" + o.TCPListen
	}
	s.cmd = exec.Command("ovsdb-server", args...)
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start ovsdb-server: %w", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	if err := s.waitUp(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	if fresh {
		if out, err := exec.CommandContext(ctx, "ovs-vsctl", "--db="+s.Socket, "--no-wait", "init").CombinedOutput(); err != nil {
			s.Stop()
			return nil, fmt.Errorf("ovs-vsctl init: %w: %s", err, out)
		}
	}
	return s, nil
}

// waitUp waits until the socket accepts connections.
func (s *DBServer) waitUp(ctx context.Context) error {
	path := strings.TrimPrefix(s.Socket, "unix:")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if nc, err := net.Dial("unix", path); err == nil {
			_ = nc.Close()
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("ovsdb-server exited; see %s/ovsdb-server.log", s.Dir)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ovsdb-server did not open %s within 10s", s.Socket)
		}
	}
}

// PID is the ovsdb-server's process id.
func (s *DBServer) PID() int { return s.cmd.Process.Pid }

// Stop ends the ovsdb-server (SIGTERM, SIGKILL after 5 s).
func (s *DBServer) Stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// RSS returns the resident set size of a process in bytes (VmRSS in
// /proc/PID/status): shared library pages count in full for every process.
func RSS(pid int) (int64, error) {
	return procKB(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:")
}

// PSS returns the proportional set size of a process in bytes (Pss in
// /proc/PID/smaps_rollup): pages shared by N processes count 1/N each, so
// the PSS of many ovsdb-servers adds up to the memory they really take.
func PSS(pid int) (int64, error) {
	return procKB(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Pss:")
}

// procKB reads a "Key: N kB" line of a /proc file, in bytes.
func procKB(path, key string) (int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(rest)
			if len(f) < 1 {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s: %w", path, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no %s line in %s", key, path)
}
