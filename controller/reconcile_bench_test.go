package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/ovsdb"
	"github.com/brtun/brtun/ovsdb/ovsdbtest"
	"github.com/brtun/brtun/topology"
)

// touchedHost is a controller driven by hand (no Run, no queue workers)
// whose host h0001 has an in-memory OVSDB and both switches connected: a
// benchmark calls its real reconcile directly. The other hosts are in the
// desired state only; nothing reconciles them.
type touchedHost struct {
	ctrl *Controller
	addr string
	sw   map[string]*testSwitch
	rev  uint64
}

// newTouchedHost starts h0001's OVSDB, gives the controller snap (its
// hosts' OVSDB address h0001's) and reconciles h0001 until it succeeds.
func newTouchedHost(tb testing.TB, mode topology.TunnelPortMode, snap topology.Snapshot) *touchedHost {
	tb.Helper()
	srv := ovsdbtest.Start(tb, ovsdbtest.Options{})
	c, err := New(Options{Store: topology.NewMemoryStore(), TunnelPorts: mode, OVSDBTimeout: 30 * time.Second})
	require.NoError(tb, err)
	th := &touchedHost{ctrl: c, addr: srv.Addr(), sw: map[string]*testSwitch{}}
	th.set(snap)
	for _, b := range bridgeNames {
		th.sw[b] = newTestSwitch(ovsdb.DatapathID("h0001", b), nil)
		c.AddSwitch(th.sw[b])
	}
	ctx := context.Background()
	require.Eventually(tb, func() bool {
		err := c.reconcileHost(ctx, "h0001")
		if err != nil && !errors.Is(err, errConnecting) {
			tb.Logf("reconcile: %v", err)
		}
		return err == nil
	}, 60*time.Second, 10*time.Millisecond, "h0001 reconciles")
	th.reconcile(tb)
	return th
}

// set makes snap, at the next revision and with every host's OVSDB at
// h0001's, the controller's desired state.
func (th *touchedHost) set(snap topology.Snapshot) {
	th.rev++
	snap.Revision = th.rev
	for i := range snap.Hosts {
		snap.Hosts[i].OVSDB = th.addr
	}
	th.ctrl.setSnapshot(snap)
}

// reconcile reconciles h0001 and fails unless it succeeds.
func (th *touchedHost) reconcile(tb testing.TB) {
	tb.Helper()
	require.NoError(tb, th.ctrl.reconcileHost(context.Background(), "h0001"))
}

// driftDue asks for h0001's drift check, as checkDrift does.
func (th *touchedHost) driftDue() {
	th.ctrl.mu.Lock()
	defer th.ctrl.mu.Unlock()
	hs := th.ctrl.hosts["h0001"]
	hs.driftDue = true
	for _, bs := range hs.bridges {
		bs.needDump = true
	}
}

// BenchmarkTouchedHostReconcile is the reconcile of the host a revision
// touches, at N hosts that all carry one network ("wide") which the host
// carries too (bench/scale_test.go's shape): port, a port added to or
// removed from a network only h0001 carries (the `?wait` of a port at N
// hosts: h0001's bindings and br-int change); remote, a port added to or
// removed from wide on h0002 (h0001's flows change, its OVSDB does not:
// what each host does for a port in the network on every host); drift,
// the drift check's full reconcile of an unchanged host, with a dump of
// both bridges.
func BenchmarkTouchedHostReconcile(b *testing.B) {
	withRemote := func(snap topology.Snapshot) topology.Snapshot {
		snap.Ports = append(slices.Clone(snap.Ports), topology.Port{Network: "wide", Name: "wx", Host: "h0002",
			Interface: "tap-wx", MAC: mac(99999), LocalVLAN: 1}) // after every w%04d
		return snap
	}
	for _, mode := range []topology.TunnelPortMode{topology.FlowTunnels} {
		for _, n := range []int{2, 1000} {
			small := wideSnapshot(n, 1)
			alternate := map[string]topology.Snapshot{"port": wideSnapshot(n, 2), "remote": withRemote(small)}
			for _, op := range []string{"port", "remote"} {
				b.Run(fmt.Sprintf("%s/hosts=%d/%s", mode, n, op), func(b *testing.B) {
					th := newTouchedHost(b, mode, small)
					applies := th.sw[BrInt].count("apply")
					i := 0
					for b.Loop() {
						b.StopTimer()
						if i%2 == 0 {
							th.set(alternate[op])
						} else {
							th.set(small)
						}
						i++
						b.StartTimer()
						th.reconcile(b)
					}
					require.Greater(b, th.sw[BrInt].count("apply"), applies, "control: the port's flows were sent")
				})
			}
			b.Run(fmt.Sprintf("%s/hosts=%d/drift", mode, n), func(b *testing.B) {
				th := newTouchedHost(b, mode, small)
				dumps := th.sw[BrTun].count("dump")
				for b.Loop() {
					b.StopTimer()
					th.driftDue()
					b.StartTimer()
					th.reconcile(b)
				}
				require.Greater(b, th.sw[BrTun].count("dump"), dumps, "control: the drift check dumped br-tun")
			})
		}
	}
}
