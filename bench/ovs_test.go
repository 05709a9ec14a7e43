//go:build bench

package bench

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/brtun/brtun/testbed"
)

// ovs is a private Open vSwitch on the dummy datapath (testbed.StartOVS) in
// root/name, name being the host brtun knows it as.
type ovs struct {
	*testbed.Switch
	name string
}

func startOVS(t testing.TB, root, name string) *ovs {
	t.Helper()
	return &ovs{Switch: testbed.StartOVS(t, filepath.Join(root, name)), name: name}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func waitTrue(t testing.TB, d time.Duration, cond func() bool, what string) {
	t.Helper()
	if !testbed.Poll(d, 10*time.Millisecond, cond) {
		t.Fatalf("timed out after %s waiting for %s", d, what)
	}
}
