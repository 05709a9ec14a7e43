package testbed

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Proc is a program the test started as its child. The kernel kills it
// (SIGKILL) when the test process dies, so it cannot outlive a test that
// timed out or was killed.
type Proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

// StartProc starts cmd as a child with a parent-death signal. With logPath
// set, its stdout and stderr are appended to that file; otherwise they go
// wherever cmd.Stdout and cmd.Stderr point (nowhere when nil). Other
// cmd.SysProcAttr settings (a Credential) are kept. It does not
// register a cleanup: the owner stops it.
func StartProc(t TB, cmd *exec.Cmd, logPath string) *Proc {
	t.Helper()
	var logf *os.File
	if logPath != "" {
		f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatalf("testbed: %v", err)
		}
		logf = f
		cmd.Stdout, cmd.Stderr = f, f
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	p := &Proc{name: cmd.Args[0], cmd: cmd, done: make(chan struct{})}
	if len(cmd.Args) > 4 && cmd.Args[0] == "ip" && cmd.Args[1] == "netns" {
		p.name = cmd.Args[4] // ip netns exec NS PROGRAM ...
	}
	if err := cmd.Start(); err != nil {
		if logf != nil {
			_ = logf.Close()
		}
		t.Fatalf("testbed: start %s: %v", p.name, err)
	}
	go func() {
		_ = cmd.Wait()
		if logf != nil {
			_ = logf.Close()
		}
		close(p.done)
	}()
	return p
}

// PID is the process id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited and its output is written.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ExitCode is the exit code of an exited process (-1 when a signal ended it).
func (p *Proc) ExitCode() int {
	<-p.done
	return p.cmd.ProcessState.ExitCode()
}

// Kill sends SIGKILL (no goodbye to anyone) and waits until it is gone.
func (p *Proc) Kill() {
	if p == nil || p.Exited() {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Terminate sends SIGTERM and waits up to d; it reports whether the process
// exited in time.
func (p *Proc) Terminate(d time.Duration) bool {
	if p == nil || p.Exited() {
		return true
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// Stop ends the process with SIGTERM, and with SIGKILL when it is still
// there 5 s later.
func (p *Proc) Stop(t TB) {
	if p == nil || p.Terminate(5*time.Second) {
		return
	}
	t.Logf("testbed: %s (pid %d) ignored SIGTERM; killing it", p.name, p.PID())
	p.Kill()
}

// Run runs a program with env (nil: the test's own environment) and
// returns its combined output; the error carries the command line and
// the output.
func Run(env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// MustRun is Run that fails the test on an error.
func MustRun(t TB, env []string, name string, args ...string) string {
	t.Helper()
	out, err := Run(env, name, args...)
	if err != nil {
		t.Fatalf("testbed: %v", err)
	}
	return out
}

// Poll checks cond every step until it holds (true) or d has passed (false).
func Poll(d, step time.Duration, cond func() bool) bool {
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

// FreePort returns a TCP port that was free on ip a moment ago.
func FreePort(t TB, ip string) int {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("testbed: free port on %s: %v", ip, err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
