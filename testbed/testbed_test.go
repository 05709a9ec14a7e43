package testbed

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewPrefixNamesItsOwner(t *testing.T) {
	p := NewPrefix()
	assert.Len(t, p, 8, "leaves room in a 15-character interface name")
	pid, ok := PrefixOwner(p + "h12")
	require.True(t, ok)
	assert.Equal(t, os.Getpid(), pid)

	_, ok = PrefixOwner("br-int")
	assert.False(t, ok, "a name the test bed did not make has no owner")
}

// deadPID is the PID of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	require.NoError(t, cmd.Run())
	require.False(t, Running(cmd.Process.Pid))
	return cmd.Process.Pid
}

func TestRemoveLeftoverDirsKeepsLiveOwners(t *testing.T) {
	gone := filepath.Join("/tmp", fmt.Sprintf("%s%05sz-unittest", prefixRoot, strconv.FormatInt(int64(deadPID(t)), 36)))
	require.NoError(t, os.MkdirAll(gone, 0o755))
	t.Cleanup(func() { _ = os.RemoveAll(gone) })
	mine := RunDir(t)

	RemoveLeftoverDirs()
	assert.NoDirExists(t, gone, "the owner is gone")
	assert.DirExists(t, mine, "this process still runs")
}

func TestRunDirRemovedAfterAPassingTest(t *testing.T) {
	var dir string
	t.Run("inner", func(t *testing.T) {
		dir = RunDir(t)
		assert.DirExists(t, dir)
		assert.Less(t, len(dir+"/h1/br-tun.mgmt"), 108, "unix socket paths fit")
	})
	assert.NoDirExists(t, dir)
}

func TestProcTerminateAndKill(t *testing.T) {
	polite := StartProc(t, exec.Command("sleep", "30"), "")
	assert.True(t, polite.Terminate(5*time.Second), "sleep ends on SIGTERM")
	assert.Equal(t, -1, polite.ExitCode(), "a signal ended it")

	log := filepath.Join(t.TempDir(), "out")
	stubborn := StartProc(t, exec.Command("sh", "-c", `trap "" TERM; echo ready; while :; do sleep 0.1; done`), log)
	require.True(t, Poll(5*time.Second, 10*time.Millisecond, func() bool {
		b, _ := os.ReadFile(log)
		return string(b) == "ready\n"
	}), "the trap is set")
	assert.False(t, stubborn.Terminate(300*time.Millisecond), "it ignores SIGTERM")
	assert.False(t, stubborn.Exited())
	stubborn.Kill()
	assert.True(t, stubborn.Exited())
}

func TestPoll(t *testing.T) {
	n := 0
	assert.True(t, Poll(time.Second, time.Millisecond, func() bool { n++; return n == 3 }))
	assert.Equal(t, 3, n)
	assert.False(t, Poll(20*time.Millisecond, time.Millisecond, func() bool { return false }))
}

func TestBrtunBuiltOnceStartedKilledRestarted(t *testing.T) {
	bin := BrtunBinary(t)
	info, err := os.Stat(bin)
	require.NoError(t, err)
	again := BrtunBinary(t)
	require.Equal(t, bin, again)
	info2, err := os.Stat(again)
	require.NoError(t, err)
	assert.Equal(t, info.ModTime(), info2.ModTime(), "built once per process")

	addr := "127.0.0.1:" + strconv.Itoa(FreePort(t, "127.0.0.1"))
	b := StartBrtun(t, BrtunOptions{
		Binary: bin,
		Args:   []string{"--api-listen", addr, "--openflow-listen", "tcp:127.0.0.1:" + strconv.Itoa(FreePort(t, "127.0.0.1"))},
		Env:    []string{"BRTUN_DATA_DIR=" + t.TempDir()},
		API:    "http://" + addr,
	})
	first := b.PID()
	b.Kill()
	assert.True(t, b.Exited())
	b.Start(t) // polls /healthz again
	assert.NotEqual(t, first, b.PID(), "a new process")
	assert.Equal(t, 0, b.Stop(t, 10*time.Second), "SIGTERM is a clean exit; output:\n%s", b.Log())
	assert.NotEmpty(t, b.Log(), "its output is kept")
}

// A dump's output as Run returns it, with ovs-ofctl's stderr log lines
// mixed in (it logs a long poll interval when a large dump keeps it busy):
// only the flows remain.
func TestFlowLinesLeaveOutTheToolsLog(t *testing.T) {
	out := " cookie=0x2, table=0, priority=1 actions=drop\n" +
		"2026-12-05T05:44:38Z|00001|timeval|WARN|Unreasonably long 1723ms poll interval (57ms user, 1607ms system)\n" +
		"2026-12-05T05:44:38Z|00015|coverage|INFO|100 events never hit\n" +
		" table=1, priority=0 actions=resubmit(,2)\n"
	assert.Equal(t, []string{"cookie=0x2, table=0, priority=1 actions=drop", "table=1, priority=0 actions=resubmit(,2)"}, flowLines(out))
}
