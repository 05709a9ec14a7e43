package controller

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/ovsdb"
)

// gatedSwitch is a testSwitch whose applies wait until gate is closed;
// applying is closed when the first one starts.
type gatedSwitch struct {
	*testSwitch
	gate, applying chan struct{}
	once           sync.Once
}

func (s *gatedSwitch) Apply(ctx context.Context, changes []Change, purge []uint64) error {
	s.once.Do(func() { close(s.applying) })
	select {
	case <-s.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.testSwitch.Apply(ctx, changes, purge)
}

// A host's two bridges are programmed side by side: br-tun's bundle is on
// its way while br-int's is not acknowledged yet (ovs-vswitchd then takes
// both in the same main-loop passes), and both end applied.
func TestBothBridgesOfAHostApplySideBySide(t *testing.T) {
	l := newLab(t, "h1", "h2")
	l.start(Options{})
	l.connect("h2", BrInt)
	l.connect("h2", BrTun)
	gate := make(chan struct{})
	var sws []*gatedSwitch
	for _, b := range bridgeNames {
		sw := &gatedSwitch{testSwitch: newTestSwitch(ovsdb.DatapathID("h1", b), nil), gate: gate, applying: make(chan struct{})}
		l.ctrl.AddSwitch(sw)
		sws = append(sws, sw)
	}
	rev := l.addPort("h1", "a1", "02:00:00:00:01:01")
	for i, sw := range sws {
		select {
		case <-sw.applying:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no apply started while the other bridge's apply waits", bridgeNames[i])
		}
	}
	close(gate)
	l.waitApplied(rev)
	for i, sw := range sws {
		assert.NotEmpty(t, sw.flows(), "%s holds its flows", bridgeNames[i])
	}
}

// A switch whose dump finds it empty (a restarted ovs-vswitchd) gets no
// strict deletes of learned entries shadowing registered ports: nothing
// could have learned them. A switch that holds flows gets them (positive
// control).
func TestEmptySwitchGetsNoLearnedShadowDeletes(t *testing.T) {
	l := newLab(t, "h1", "h2")
	l.start(Options{})
	sw := l.connectAll()
	l.addPort("h1", "a1", "02:00:00:00:01:01")
	l.waitApplied(l.addPort("h2", "a2", "02:00:00:00:01:02"))
	l.settle()
	shadows := 0
	for _, f := range sw[bridgeRef{"h1", BrTun}].flows() {
		if _, ok := flows.LearnedShadow(f); ok {
			shadows++
		}
	}
	require.Positive(t, shadows, "h1's br-tun has registered entries of h2's port")
	deletes := func(sw *testSwitch) int {
		sw.mu.Lock()
		defer sw.mu.Unlock()
		n := 0
		for _, ch := range sw.applied[0] {
			if ch.Op == OpDeleteStrict {
				n++
			}
		}
		return n
	}

	empty := l.connect("h1", BrTun)
	require.Eventually(t, func() bool { return empty.count("apply") == 1 }, 10*time.Second, 10*time.Millisecond)
	assert.Zero(t, deletes(empty), "an empty switch gets adds only")

	stray := flow(2, 100, 0)
	held := l.connect("h1", BrTun, stray)
	require.Eventually(t, func() bool { return held.count("apply") == 1 }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, 1+shadows, deletes(held), "a switch holding flows gets the stray's delete and one per registered entry")
	l.settle()
	want := sw[bridgeRef{"h1", BrTun}].flows()
	assert.Equal(t, want, empty.flows())
	assert.Equal(t, want, held.flows())
}

// Both switches of a host come back together (a restart of brtun or
// ovs-vswitchd), one a moment after the other. The second joins the
// reconcile the first began: its bundle is sent while the first's is not
// acknowledged yet, not by the next reconcile after it, and only once.
func TestLateSwitchJoinsTheReconcileUnderWay(t *testing.T) {
	l := newLab(t, "h1")
	l.start(Options{})
	rev := l.addPort("h1", "a1", "02:00:00:00:01:01")
	l.settle() // the host's OVSDB is known; no switch is connected
	brInt := &gatedSwitch{testSwitch: newTestSwitch(ovsdb.DatapathID("h1", BrInt), nil), gate: make(chan struct{}), applying: make(chan struct{})}
	l.ctrl.AddSwitch(brInt)
	select {
	case <-brInt.applying:
	case <-time.After(10 * time.Second):
		t.Fatal("br-int's apply did not start")
	}
	l.settle() // the reconcile waits for br-int's bundle

	brTun := l.connect("h1", BrTun)
	require.Eventually(t, func() bool { return brTun.count("apply") == 1 }, 10*time.Second, 10*time.Millisecond,
		"br-tun's bundle is sent while br-int's waits")
	assert.Zero(t, brInt.count("apply"), "br-int's bundle is still waiting")
	close(brInt.gate)
	l.waitApplied(rev)
	l.settle()
	assert.Equal(t, 1, brTun.count("apply"), "br-tun got its flows once")
	assert.NotEmpty(t, brTun.flows())
	assert.NotEmpty(t, brInt.flows())
}
