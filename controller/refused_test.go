package controller

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/ovsdb/vswitchd"
	"github.com/brtun/brtun/topology"
)

// TestRefusedBindingStallsNothing: a port whose interface sits on another
// bridge (br-tun here, a bridge brtun leaves alien ports on) is left out of
// h1's OVSDB transaction and reported on the port; a port created after it
// on the same host binds, the host's reconcile reports no error, and once
// the interface moves to br-int the port binds too.
func TestRefusedBindingStallsNothing(t *testing.T) {
	l := newLab(t, "h1", "h2")
	l.start(Options{})
	l.connectAll()
	l.waitApplied(l.addPort("h1", "a1", "02:00:00:00:01:01"))
	l.ovs["h1"].AddPort(t, BrTun, &vswitchd.Port{Name: "tap-bad"}, &vswitchd.Interface{Name: "tap-bad"})
	_, _, err := l.store.CreatePort(context.Background(), topology.Port{Network: "blue", Name: "bad", Host: "h1", Interface: "tap-bad", MAC: "02:00:00:00:01:09"})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return l.ctrl.PortError("h1", "tap-bad") != "" }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, "bind tap-bad: interface is not on br-int", l.ctrl.PortError("h1", "tap-bad"))

	// The host's other changes still commit: a new port on h1 binds, and a
	// new port on h2 reaches h1's flows.
	l.waitApplied(l.addPort("h1", "a3", "02:00:00:00:01:03"))
	l.waitApplied(l.addPort("h2", "a2", "02:00:00:00:01:02"))
	require.Eventually(t, func() bool { return l.ctrl.PortBound("h1", "tap-a3") }, 10*time.Second, 10*time.Millisecond)
	assert.True(t, l.ctrl.PortBound("h1", "tap-a1"))
	assert.Empty(t, l.ctrl.HostStatus("h1").LastError, "the refused binding is no error of the host")
	assert.False(t, l.ctrl.PortBound("h1", "tap-bad"))
	assert.Empty(t, l.ctrl.PortError("h1", "tap-a3"), "control: a bound port carries no error")
	assert.NotEmpty(t, l.ctrl.PortError("h1", "tap-bad"), "still refused")
	assert.Equal(t, 1.0, l.metric("brtun_refused_bindings", map[string]string{"host": "h1"}))
	assert.Equal(t, 0.0, l.metric("brtun_refused_bindings", map[string]string{"host": "h2"}), "control")

	// Deleting the bad port clears its error.
	_, err = l.store.DeletePort(context.Background(), "blue", "bad", nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return l.ctrl.PortError("h1", "tap-bad") == "" }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, 0.0, l.metric("brtun_refused_bindings", map[string]string{"host": "h1"}))
}
