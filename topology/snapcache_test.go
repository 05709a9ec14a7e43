package topology

import (
	"context"
	"fmt"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// portOf returns the port named name of snap.
func portOf(t *testing.T, snap Snapshot, name string) Port {
	t.Helper()
	for _, p := range snap.Ports {
		if p.Name == name {
			return p
		}
	}
	require.Failf(t, "no such port", "%s at revision %d", name, snap.Revision)
	return Port{}
}

// Snapshots decode only the objects whose stored bytes changed: an
// unchanged port is the very value of the snapshot before (its slices
// share memory), a changed one is decoded anew, a new one appears, a
// deleted one is gone, and every snapshot equals a full decode of the
// same state.
func TestSnapshotDecodesOnlyWhatChanged(t *testing.T) {
	ctx := context.Background()
	st, err := OpenBoltStore(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	s := st.(*store)
	full := func() Snapshot {
		var snap Snapshot
		require.NoError(t, s.read(ctx, func(tx txn) error {
			var err error
			snap, err = readSnapshot(tx)
			return err
		}))
		return snap
	}
	for i, h := range []string{"h1", "h2"} {
		_, _, err := s.CreateHost(ctx, Host{Name: h, OVSDB: fmt.Sprintf("tcp:198.51.100.%d:6640", i+1), TunnelIP: fmt.Sprintf("192.0.2.%d", i+1)})
		require.NoError(t, err)
	}
	_, _, err = s.CreateNetwork(ctx, Network{Name: "blue", Type: VXLAN, SegmentID: 5001})
	require.NoError(t, err)
	for _, name := range []string{"a1", "a2"} {
		_, _, err := s.CreatePort(ctx, Port{Network: "blue", Name: name, Host: "h1", Interface: "tap-" + name, IPs: []string{"198.18.0." + name[1:]}})
		require.NoError(t, err)
	}
	before, err := s.Snapshot(ctx)
	require.NoError(t, err)
	assert.Equal(t, full(), before)

	_, _, err = s.UpdatePort(ctx, "blue", "a2", nil, func(p *Port) error {
		p.IPs = []string{"198.18.0.12"}
		return nil
	})
	require.NoError(t, err)
	_, _, err = s.CreatePort(ctx, Port{Network: "blue", Name: "a3", Host: "h2", Interface: "tap-a3", IPs: []string{"198.18.0.3"}})
	require.NoError(t, err)
	after, err := s.Snapshot(ctx)
	require.NoError(t, err)
	assert.Equal(t, full(), after)

	a1, a2 := portOf(t, before, "a1"), portOf(t, before, "a2")
	assert.Equal(t, unsafe.SliceData(a1.IPs), unsafe.SliceData(portOf(t, after, "a1").IPs), "a1 did not change: reused")
	assert.NotEqual(t, unsafe.SliceData(a2.IPs), unsafe.SliceData(portOf(t, after, "a2").IPs), "a2 changed: decoded anew")
	assert.Equal(t, []string{"198.18.0.12"}, portOf(t, after, "a2").IPs)
	assert.Equal(t, []string{"198.18.0.2"}, a2.IPs, "the snapshot before keeps what it read")
	assert.Equal(t, []string{"198.18.0.3"}, portOf(t, after, "a3").IPs)

	_, err = s.DeletePort(ctx, "blue", "a3", nil)
	require.NoError(t, err)
	last, err := s.Snapshot(ctx)
	require.NoError(t, err)
	assert.Equal(t, full(), last)
	assert.Len(t, last.Ports, 2)
	assert.NotContains(t, s.snaps.ports, key("blue", "a3"), "a deleted port leaves the cache")
	assert.Len(t, s.snaps.hosts, 2)
}

// BenchmarkSnapshotLargeStore reads the store of
// BenchmarkCreatePortLargeStore (4000 networks, 8000 ports) whole: full
// decodes every object, the same-run reference; cached is Store.Snapshot
// with nothing changed since its last read (a revision changes a few
// objects: one decode each on top of this).
func BenchmarkSnapshotLargeStore(b *testing.B) {
	ctx := context.Background()
	s := largeBoltStore(b, 0).(*store)
	b.Run("full", func(b *testing.B) {
		for b.Loop() {
			err := s.read(ctx, func(tx txn) error {
				_, err := readSnapshot(tx)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.Snapshot(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}
