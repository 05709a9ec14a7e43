package controller

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/topology"
)

// TestWaitAppliedNamesWhatIsNotApplied: WaitApplied returns once every
// bridge a revision touched applied it, and names the bridges that did
// not when its context ends first; a disconnected bridge the revision did
// not touch holds nothing up.
func TestWaitAppliedNamesWhatIsNotApplied(t *testing.T) {
	l := newLab(t, "h1", "h2", "h3")
	l.start(Options{})
	for _, h := range []string{"h1", "h3"} {
		for _, b := range bridgeNames {
			l.connect(h, b)
		}
	}
	l.waitApplied(l.addPort("h1", "a1", "02:00:00:00:01:01")) // h2 is not connected, and not touched

	rev := l.addPort("h2", "a2", "02:00:00:00:01:02")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	pending, err := l.ctrl.WaitApplied(ctx, rev)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, []string{"h2/br-int", "h2/br-tun"}, pending, "h1's br-tun applied its new remote port")

	for _, b := range bridgeNames {
		l.connect("h2", b)
	}
	l.waitApplied(rev)
}

// TestUntouchedHostsSeeARevisionAtOnce: a host that has seen the previous
// revision and whose inputs the new one leaves alone has seen it too, with
// no reconcile, so ?wait does not wait for its queue turn or for a drift
// check in progress; a touched host, and one that still owes a reconcile
// of the previous revision, have not.
func TestUntouchedHostsSeeARevisionAtOnce(t *testing.T) {
	c, err := New(Options{Store: topology.NewMemoryStore()})
	require.NoError(t, err)
	seen := func() map[string]uint64 {
		c.mu.Lock()
		defer c.mu.Unlock()
		out := map[string]uint64{}
		for name, hs := range c.hosts {
			out[name] = hs.seenRev
		}
		return out
	}
	snap := testSnapshot() // revision 7: h1 and h2 carry blue, h2 and h3 red, h1 green
	c.setSnapshot(snap)
	require.Equal(t, map[string]uint64{"h1": 0, "h2": 0, "h3": 0}, seen(), "new hosts have seen nothing")
	c.mu.Lock()
	for _, hs := range c.hosts {
		hs.seenRev = 7 // as their reconciles would
	}
	c.mu.Unlock()

	snap.Revision = 8
	snap.Ports[5].IPs = []string{"10.3.0.22"} // r2, on h2: red changes
	c.setSnapshot(snap)
	require.Equal(t, map[string]uint64{"h1": 8, "h2": 7, "h3": 7}, seen(), "h1 does not carry red; h2 and h3 do")

	snap.Revision = 9
	snap.Ports[4].MAC = "02:00:00:00:02:01" // g1, on h1 alone: green changes
	c.setSnapshot(snap)
	require.Equal(t, map[string]uint64{"h1": 8, "h2": 7, "h3": 7}, seen(),
		"h1 is touched; h2 and h3 are not, but still owe revision 8")
}
