package testbed

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// brtunPackage is what BrtunBinary builds.
const brtunPackage = "github.com/brtun/brtun/cmd/brtun"

// BrtunBinary builds cmd/brtun once per test process and returns the
// binary's path. The binary lives in /tmp/bt<PID>b-bin-<start time> (PID
// in base 36, the process's start time in clock ticks since boot, so that
// a later process with the same PID never finds an old binary): later
// calls of the same process find it, and a later test bed removes it once
// this process is gone.
func BrtunBinary(t TB) string {
	t.Helper()
	RemoveLeftoverDirs()
	dir := "/tmp/" + prefixRoot + pidTag() + "b-bin-" + startTime(t)
	bin := filepath.Join(dir, "brtun")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("testbed: %v", err)
	}
	tmp, err := os.CreateTemp(dir, "brtun-build-")
	if err != nil {
		t.Fatalf("testbed: %v", err)
	}
	_ = tmp.Close()
	if out, err := exec.Command("go", "build", "-o", tmp.Name(), brtunPackage).CombinedOutput(); err != nil {
		_ = os.Remove(tmp.Name())
		t.Fatalf("testbed: go build %s: %v: %s", brtunPackage, err, out)
	}
	// Two tests of one process that build at once both end with a whole binary.
	if err := os.Rename(tmp.Name(), bin); err != nil {
		t.Fatalf("testbed: %v", err)
	}
	return bin
}

// BrtunOptions configure StartBrtun.
type BrtunOptions struct {
	Binary string   // default: BrtunBinary
	Args   []string // what follows `brtun serve`
	Env    []string // added to the test's environment (later entries win)
	// API is the base URL of the REST API the flags set up, e.g.
	// http://127.0.0.1:PORT; Start polls API/healthz.
	API    string
	Client *http.Client // for /healthz; default http.DefaultClient
	// LogPath receives stdout and stderr, appended across restarts; empty:
	// they are kept in memory. Log returns them either way.
	LogPath string
	// Credential runs brtun as another user (nil: the test's own).
	Credential *syscall.Credential
}

// Brtun is a `brtun serve` process of a test.
type Brtun struct {
	API  string
	Args []string // what follows `brtun serve` on the next Start
	opts BrtunOptions
	proc *Proc
	mem  syncBuffer
}

// StartBrtun starts `brtun serve` with the given flags and waits until
// /healthz answers. A cleanup kills it (SIGKILL) and, when the test
// failed, shows the last lines of its log.
func StartBrtun(t TB, o BrtunOptions) *Brtun {
	t.Helper()
	if o.Binary == "" {
		o.Binary = BrtunBinary(t)
	}
	if o.Client == nil {
		o.Client = http.DefaultClient
	}
	b := &Brtun{API: o.API, Args: o.Args, opts: o}
	b.Start(t)
	t.Cleanup(func() {
		b.Kill()
		if t.Failed() {
			b.showLog(t)
		}
	})
	return b
}

// Start runs the process (again, after Kill or Stop) with the same flags
// and waits up to 20 s until /healthz answers; it fails the test when the
// process exits first.
func (b *Brtun) Start(t TB) {
	t.Helper()
	cmd := exec.Command(b.opts.Binary, append([]string{"serve"}, b.Args...)...)
	cmd.Env = append(os.Environ(), b.opts.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: b.opts.Credential}
	if b.opts.LogPath == "" {
		cmd.Stdout, cmd.Stderr = &b.mem, &b.mem
	}
	b.proc = StartProc(t, cmd, b.opts.LogPath)
	healthy := func() bool {
		resp, err := b.opts.Client.Get(b.API + "/healthz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	if !Poll(20*time.Second, 50*time.Millisecond, func() bool { return healthy() || b.proc.Exited() }) || b.proc.Exited() {
		b.Kill()
		t.Fatalf("testbed: brtun serve did not answer %s/healthz (exited: %v); its output:\n%s", b.API, b.proc.Exited(), b.Log())
	}
}

// PID is the process id of the running brtun.
func (b *Brtun) PID() int { return b.proc.PID() }

// Exited reports whether the process has exited.
func (b *Brtun) Exited() bool { return b.proc.Exited() }

// Kill ends brtun with SIGKILL, no goodbye to anyone.
func (b *Brtun) Kill() { b.proc.Kill() }

// Terminate sends SIGTERM and reports whether brtun exited within d.
func (b *Brtun) Terminate(d time.Duration) bool { return b.proc.Terminate(d) }

// Stop ends brtun with SIGTERM and returns its exit code; it fails the
// test when brtun is still there after d.
func (b *Brtun) Stop(t TB, d time.Duration) int {
	t.Helper()
	if !b.proc.Terminate(d) {
		b.Kill()
		t.Fatalf("testbed: brtun serve did not stop within %s of SIGTERM; its output:\n%s", d, b.Log())
	}
	return b.proc.ExitCode()
}

// Log is what brtun wrote to stdout and stderr.
func (b *Brtun) Log() string {
	if b.opts.LogPath == "" {
		return b.mem.String()
	}
	data, _ := os.ReadFile(b.opts.LogPath)
	return string(data)
}

// showLog logs brtun's last 60 lines of level info and above.
func (b *Brtun) showLog(t TB) {
	var keep []string
	for _, line := range strings.Split(b.Log(), "\n") {
		if line != "" && !strings.Contains(line, `"level":"debug"`) {
			keep = append(keep, line)
		}
	}
	if len(keep) > 60 {
		keep = keep[len(keep)-60:]
	}
	where := "memory"
	if b.opts.LogPath != "" {
		where = b.opts.LogPath
	}
	t.Logf("brtun log (%s), last lines:\n%s", where, strings.Join(keep, "\n"))
}

// startTime is this process's start time in clock ticks since boot, field
// 22 of /proc/self/stat.
func startTime(t TB) string {
	t.Helper()
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatalf("testbed: %v", err)
	}
	// Fields after the command name, which is in parentheses: state is field 3.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(f) < 20 {
		t.Fatalf("testbed: /proc/self/stat: %q", stat)
	}
	return f[19]
}
