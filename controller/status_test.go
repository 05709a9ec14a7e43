package controller

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
