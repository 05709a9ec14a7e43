package flowtest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
)

// recorder is a testing.TB that records failures instead of stopping.
type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Errorf(string, ...any) { r.failed = true }
func (r *recorder) FailNow()              { r.failed = true }

func TestFormatSet(t *testing.T) {
	set := flows.FlowSet{
		BrTun:          []flows.Flow{{Table: 3, Priority: 0}, {Table: 0, Priority: 1, Cookie: flows.PipelineCookie()}},
		BrInt:          []flows.Flow{{Priority: 0, Actions: []flows.Action{flows.Normal{}}}},
		LearnedCookies: []uint64{flows.LearnedCookie("vxlan", 9, 2)},
		Skipped:        []string{"something"},
	}
	assert.Equal(t, "# br-tun\n"+
		"cookie=0xb710000000000000, priority=1 actions=drop\n"+
		"table=3, priority=0 actions=drop\n"+
		"# br-int\n"+
		"priority=0 actions=NORMAL\n"+
		"# learned cookies\n"+
		"0xb751002000000009 learned:vxlan:9:vlan=2\n"+
		"# skipped\n"+
		"something\n", FormatSet(set))
	assert.Equal(t, uint8(3), set.BrTun[0].Table, "FormatSet does not reorder its input")
}

func TestGoldenComparesAndRewrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "testdata", "x.golden")

	golden(t, path, "one\n", true)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "one\n", string(data), "update writes the file")

	same := &recorder{TB: t}
	golden(same, path, "one\n", false)
	assert.False(t, same.failed)

	differs := &recorder{TB: t}
	golden(differs, path, "two\n", false)
	assert.True(t, differs.failed, "a difference fails the test")

	missing := &recorder{TB: t}
	golden(missing, filepath.Join(t.TempDir(), "nope.golden"), "one\n", false)
	assert.True(t, missing.failed, "a missing golden file fails the test")
}
