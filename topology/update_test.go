package topology

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestUpdatesCarryRevisions(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		h := mustHost(t, s, "h1", "192.0.2.1")
		mustHost(t, s, "h2", "192.0.2.2")
		n := mustNetwork(t, s, "blue", VXLAN, 5001)
		p := mustPort(t, s, Port{Network: "blue", Name: "vm1", Host: "h1", Interface: "tap1", MAC: "02:00:00:00:00:01"})
		assert.Equal(t, uint64(1), h.RevisionNumber)
		assert.Equal(t, uint64(3), n.RevisionNumber)
		assert.Equal(t, uint64(4), p.RevisionNumber)
		assert.True(t, p.Up(), "ports are up by default")
		require.NotNil(t, p.AdminStateUp, "the store answers admin_state_up set")

		// A host re-IP, conditional on the current revision.
		h, rev, err := s.UpdateHost(ctx, "h1", IfMatch{1}, func(h *Host) error {
			h.TunnelIP = "192.0.2.11"
			h.Tags = []string{"rack2", "rack1", "rack2"}
			return nil
		})
		require.NoError(t, err)
		assert.Equal(t, uint64(5), rev)
		assert.Equal(t, rev, h.RevisionNumber)
		assert.Equal(t, []string{"rack1", "rack2"}, h.Tags, "tags are stored sorted without duplicates")
		got, err := s.GetHost(ctx, "h1")
		require.NoError(t, err)
		assert.Equal(t, h, got)
		// The old tunnel IP is free, the new one taken.
		_, _, err = s.CreateHost(ctx, Host{Name: "h3", OVSDB: "tcp:198.51.100.3:6640", TunnelIP: "192.0.2.1"})
		require.NoError(t, err, "the old tunnel IP is free again")
		_, _, err = s.UpdateHost(ctx, "h2", nil, func(h *Host) error { h.TunnelIP = "192.0.2.11"; return nil })
		requireKind(t, err, ErrConflict, "")

		// A stale If-Match stores nothing.
		_, _, err = s.UpdateHost(ctx, "h1", IfMatch{1}, func(h *Host) error { h.Description = "x"; return nil })
		requireKind(t, err, ErrPrecondition, "")
		_, err = s.DeleteHost(ctx, "h1", true, IfMatch{1})
		requireKind(t, err, ErrPrecondition, "")
		got, err = s.GetHost(ctx, "h1")
		require.NoError(t, err)
		assert.Equal(t, h, got, "nothing changed")

		// Immutable fields name themselves.
		_, _, err = s.UpdateNetwork(ctx, "blue", nil, func(n *Network) error { n.Type = GRE; return nil })
		requireKind(t, err, ErrInvalid, "type")
		_, _, err = s.UpdateNetwork(ctx, "blue", nil, func(n *Network) error { n.SegmentID = 7; return nil })
		requireKind(t, err, ErrInvalid, "segment_id")
		_, _, err = s.UpdatePort(ctx, "blue", "vm1", nil, func(p *Port) error { p.LocalVLAN = 99; return nil })
		requireKind(t, err, ErrInvalid, "local_vlan")
		_, _, err = s.UpdateNetwork(ctx, "blue", nil, func(n *Network) error { n.Description = "bad\x00"; return nil })
		requireKind(t, err, ErrInvalid, "description")
		_, _, err = s.UpdateNetwork(ctx, "blue", nil, func(n *Network) error { n.Tags = []string{"a,b"}; return nil })
		requireKind(t, err, ErrInvalid, "tags[0]")

		n, rev, err = s.UpdateNetwork(ctx, "blue", IfMatch{2, n.RevisionNumber}, func(n *Network) error {
			n.MACLearning = false
			n.Description = "tenant blue"
			return nil
		})
		require.NoError(t, err)
		assert.Equal(t, rev, n.RevisionNumber)
		assert.False(t, n.MACLearning)
		assert.Equal(t, uint32(5001), n.SegmentID)

		p, rev, err = s.UpdatePort(ctx, "blue", "vm1", IfMatch{p.RevisionNumber}, func(p *Port) error {
			p.AdminStateUp = Bool(false)
			return nil
		})
		require.NoError(t, err)
		assert.Equal(t, rev, p.RevisionNumber)
		assert.False(t, p.Up())
		_, err = s.DeletePort(ctx, "blue", "vm1", IfMatch{rev - 1})
		requireKind(t, err, ErrPrecondition, "")
		_, err = s.DeletePort(ctx, "blue", "vm1", IfMatch{rev})
		require.NoError(t, err)
	})
}

func TestListPortsOfEveryNetwork(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		mustHost(t, s, "h1", "192.0.2.1")
		mustNetwork(t, s, "a", VXLAN, 1)
		mustNetwork(t, s, "a-b", VXLAN, 2)
		mustPort(t, s, Port{Network: "a-b", Name: "p1", Host: "h1", Interface: "tap1"})
		mustPort(t, s, Port{Network: "a", Name: "p2", Host: "h1", Interface: "tap2"})
		mustPort(t, s, Port{Network: "a", Name: "p1", Host: "h1", Interface: "tap3"})
		all, err := s.ListPorts(ctx, "")
		require.NoError(t, err)
		var got []string
		for _, p := range all {
			got = append(got, p.Network+"/"+p.Name)
		}
		assert.Equal(t, []string{"a/p1", "a/p2", "a-b/p1"}, got, "by network, then name")
		one, err := s.ListPorts(ctx, "a-b")
		require.NoError(t, err)
		assert.Len(t, one, 1, "control: one network's ports")
	})
}
