// Package flowtest helps test code that produces flows: golden files of
// compiled flow sets (rewritten with `go test ./flows/... -update`). The
// packet simulator tests use is flows/flowsim, which brtun trace uses too.
package flowtest

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
)

// updateFlag is the name of the flag that rewrites golden files.
const updateFlag = "update"

func init() {
	// Registered here so that every test binary using golden files accepts
	// -update; guarded so a package defining its own -update still works.
	if flag.Lookup(updateFlag) == nil {
		flag.Bool(updateFlag, false, "rewrite golden files under testdata/")
	}
}

// Updating reports whether the test run was asked to rewrite golden files.
func Updating() bool {
	f := flag.Lookup(updateFlag)
	return f != nil && f.Value.String() == "true"
}

// FormatSet renders a FlowSet for a golden file: each bridge's flows as
// dump-flows lines sorted by table, priority (highest first) and text, then
// the valid learned cookies and the skipped parts of the view.
func FormatSet(s flows.FlowSet) string {
	var b strings.Builder
	for _, br := range []flows.Bridge{flows.BrTun, flows.BrInt} {
		fmt.Fprintf(&b, "# %s\n", br)
		fs := append([]flows.Flow(nil), s.Flows(br)...)
		flows.SortFlows(fs)
		for _, f := range fs {
			b.WriteString(f.String())
			b.WriteByte('\n')
		}
	}
	b.WriteString("# learned cookies\n")
	for _, c := range s.LearnedCookies {
		fmt.Fprintf(&b, "%#x %s\n", c, flows.DecodeOwner(c))
	}
	b.WriteString("# skipped\n")
	for _, s := range s.Skipped {
		b.WriteString(s)
		b.WriteByte('\n')
	}
	return b.String()
}

// Golden compares got with testdata/NAME.golden, or rewrites that file when
// the test runs with -update.
func Golden(t testing.TB, name, got string) {
	t.Helper()
	golden(t, filepath.Join("testdata", name+".golden"), got, Updating())
}

func golden(t testing.TB, path, got string, update bool) {
	t.Helper()
	if update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "missing golden file: run go test with -update")
	require.Equal(t, string(want), got, "golden file %s differs (rerun with -update if the change is intended)", path)
}
