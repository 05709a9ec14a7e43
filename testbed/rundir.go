package testbed

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
)

// prefixRoot starts every name the test bed gives in shared places.
const prefixRoot = "bt"

// NewPrefix returns "bt" + this process's PID in 5 base-36 digits + one
// random character: short enough for interface names (15 characters), and
// telling RemoveLeftovers whose it is.
func NewPrefix() string {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	var b [1]byte
	_, _ = rand.Read(b[:])
	return prefixRoot + pidTag() + string(digits[int(b[0])%len(digits)])
}

// pidTag is this process's PID in 5 base-36 digits.
func pidTag() string {
	return fmt.Sprintf("%05s", strconv.FormatInt(int64(os.Getpid()), 36))
}

// RunDir creates a fresh run directory /tmp/<prefix>-<random> for daemons'
// databases, sockets, pid and log files. A cleanup removes it, unless the
// test failed: then its logs stay and the first test bed of a later
// process removes them. Leftover directories of owners that are gone are
// removed first.
func RunDir(t TB) string {
	t.Helper()
	RemoveLeftoverDirs()
	dir, err := os.MkdirTemp("/tmp", NewPrefix()+"-")
	if err != nil {
		t.Fatalf("testbed: %v", err)
	}
	t.Cleanup(func() { RemoveRunDir(t, dir) })
	return dir
}

// RemoveRunDir removes dir, or keeps it and says so when t failed.
func RemoveRunDir(t TB, dir string) {
	if t.Failed() {
		t.Logf("testbed: logs of the failed run are kept in %s (removed by a later run)", dir)
		return
	}
	_ = os.RemoveAll(dir)
}

// PrefixOwner returns the PID a name made by NewPrefix carries; ok is
// false for any other name (never touch those).
func PrefixOwner(name string) (pid int, ok bool) {
	// Group 1 is the owner's PID in base 36.
	m := regexp.MustCompile(`^` + prefixRoot + `([0-9a-z]{5})[0-9a-z]`).FindStringSubmatch(name)
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimLeft(m[1], "0"), 36, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	return int(n), true
}

// Running reports whether a process with this PID exists.
func Running(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}

// RemoveLeftoverDirs deletes run directories whose owner process is gone
// (never this process's own). Testbed/lab also removes leftover
// namespaces and links.
func RemoveLeftoverDirs() {
	dirs, _ := filepath.Glob("/tmp/" + prefixRoot + "*")
	for _, d := range dirs {
		if pid, ok := PrefixOwner(filepath.Base(d)); ok && pid != os.Getpid() && !Running(pid) {
			_ = os.RemoveAll(d)
		}
	}
}
