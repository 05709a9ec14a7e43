package topology

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBoltStateSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := OpenBoltStore(dir)
	require.NoError(t, err)
	mustHost(t, s, "h1", "192.0.2.1")
	mustNetwork(t, s, "blue", VXLAN, 0)
	mustNetwork(t, s, "red", VXLAN, 0)
	mustPort(t, s, Port{Network: "red", Name: "vm1", Host: "h1", Interface: "tap0", IPs: []string{"198.18.0.1"}})
	before, err := s.Snapshot(ctx)
	require.NoError(t, err)
	require.NoError(t, s.Close())

	s, err = OpenBoltStore(dir)
	require.NoError(t, err)
	defer s.Close()
	after, err := s.Snapshot(ctx)
	require.NoError(t, err)
	assert.Equal(t, before, after)

	// Allocations continue from the persisted state.
	assert.Equal(t, uint32(3), mustNetwork(t, s, "green", VXLAN, 0).SegmentID)
	assert.Equal(t, uint16(2), mustPort(t, s, Port{Network: "blue", Name: "vm2", Host: "h1", Interface: "tap1"}).LocalVLAN)
	_, _, err = s.CreatePort(ctx, Port{Network: "blue", Name: "vm3", Host: "h1", Interface: "tap0"})
	requireKind(t, err, ErrConflict, "")
	rev, err := s.Revision(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint64(6), rev)
}

func TestBoltFileIsLocked(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenBoltStore(dir)
	require.NoError(t, err)
	defer s.Close()
	_, err = OpenBoltStore(dir)
	require.Error(t, err, "a second store on the same data dir must fail")
	assert.Contains(t, err.Error(), "open state file")
}
