package topology

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/topology/etcdtest"
)

// backends runs a test against every Store implementation.
func backends(t *testing.T, test func(t *testing.T, s Store)) {
	t.Helper()
	backendsWith(t, nil, test)
}

// backendsWith runs test against each backend opened with opts.
func backendsWith(t *testing.T, opts []Option, test func(t *testing.T, s Store)) {
	t.Helper()
	t.Run("memory", func(t *testing.T) {
		s := NewMemoryStore(opts...)
		t.Cleanup(func() { require.NoError(t, s.Close()) })
		test(t, s)
	})
	t.Run("bolt", func(t *testing.T) {
		s, err := OpenBoltStore(t.TempDir(), opts...)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, s.Close()) })
		test(t, s)
	})
	t.Run("etcd", func(t *testing.T) {
		s := newTestEtcdStore(t, etcdClient(t, etcdtest.Start(t)), DefaultEtcdPrefix, opts...)
		test(t, s)
	})
}

func mustHost(t *testing.T, s Store, name, ip string) Host {
	t.Helper()
	h, _, err := s.CreateHost(context.Background(), Host{Name: name, OVSDB: "unix:/run/brtun-test/" + name + "/db.sock", TunnelIP: ip})
	require.NoError(t, err)
	return h
}

func mustNetwork(t *testing.T, s Store, name string, nt NetworkType, seg uint32) Network {
	t.Helper()
	n, _, err := s.CreateNetwork(context.Background(), Network{Name: name, Type: nt, SegmentID: seg, MACLearning: true})
	require.NoError(t, err)
	return n
}

func mustPort(t *testing.T, s Store, p Port) Port {
	t.Helper()
	p, _, err := s.CreatePort(context.Background(), p)
	require.NoError(t, err)
	return p
}

func requireKind(t *testing.T, err error, kind error, field string) {
	t.Helper()
	require.Error(t, err)
	require.ErrorIs(t, err, kind, "error %v", err)
	var te *Error
	require.True(t, errors.As(err, &te))
	assert.Equal(t, field, te.Field, "field of %v", err)
}

func TestHostCRUD(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		h, rev, err := s.CreateHost(ctx, Host{Name: "h1", OVSDB: "tcp:198.51.100.1:6640", TunnelIP: "192.0.2.1"})
		require.NoError(t, err)
		assert.Equal(t, uint64(1), rev)
		assert.Equal(t, Host{Name: "h1", OVSDB: "tcp:198.51.100.1:6640", TunnelIP: "192.0.2.1", DatapathType: "system",
			Meta: Meta{Tags: []string{}, RevisionNumber: 1}}, h)

		h2, rev, err := s.CreateHost(ctx, Host{Name: "h2", OVSDB: "unix:/run/h2/db.sock", TunnelIP: "2001:DB8::2", DatapathType: "netdev"})
		require.NoError(t, err)
		assert.Equal(t, uint64(2), rev)
		assert.Equal(t, "2001:db8::2", h2.TunnelIP, "tunnel IP is stored canonical")

		got, err := s.GetHost(ctx, "h2")
		require.NoError(t, err)
		assert.Equal(t, h2, got)

		hosts, err := s.ListHosts(ctx)
		require.NoError(t, err)
		assert.Equal(t, []Host{h, h2}, hosts)

		_, _, err = s.CreateHost(ctx, Host{Name: "h1", OVSDB: "tcp:198.51.100.9:6640", TunnelIP: "192.0.2.9"})
		requireKind(t, err, ErrConflict, "")
		_, _, err = s.CreateHost(ctx, Host{Name: "h3", OVSDB: "tcp:198.51.100.3:6640", TunnelIP: "192.0.2.1"})
		requireKind(t, err, ErrConflict, "")
		assert.Contains(t, err.Error(), `used by host "h1"`)

		rev, err = s.DeleteHost(ctx, "h1", false, nil)
		require.NoError(t, err)
		assert.Equal(t, uint64(3), rev)
		_, err = s.GetHost(ctx, "h1")
		requireKind(t, err, ErrNotFound, "")
		_, err = s.DeleteHost(ctx, "h1", false, nil)
		requireKind(t, err, ErrNotFound, "")

		// The tunnel IP of a deleted host is free again.
		mustHost(t, s, "h3", "192.0.2.1")
		cur, err := s.Revision(ctx)
		require.NoError(t, err)
		assert.Equal(t, uint64(4), cur, "failed writes do not take revisions")
	})
}

func TestHostValidation(t *testing.T) {
	good := Host{Name: "h1", OVSDB: "tcp:198.51.100.1:6640", TunnelIP: "192.0.2.1"}
	cases := []struct {
		name  string
		edit  func(h *Host)
		field string
	}{
		{"empty name", func(h *Host) { h.Name = "" }, "name"},
		{"upper case name", func(h *Host) { h.Name = "H1" }, "name"},
		{"name starting with dash", func(h *Host) { h.Name = "-h" }, "name"},
		{"name with slash", func(h *Host) { h.Name = "a/b" }, "name"},
		{"name of 64 characters", func(h *Host) { h.Name = "a123456789012345678901234567890123456789012345678901234567890123" }, "name"},
		{"ovsdb without scheme", func(h *Host) { h.OVSDB = "198.51.100.1:6640" }, "ovsdb"},
		{"ovsdb unknown scheme", func(h *Host) { h.OVSDB = "udp:198.51.100.1:6640" }, "ovsdb"},
		{"ovsdb host name", func(h *Host) { h.OVSDB = "tcp:example.org:6640" }, "ovsdb"},
		{"ovsdb bad port", func(h *Host) { h.OVSDB = "tcp:198.51.100.1:99999" }, "ovsdb"},
		{"ovsdb relative unix", func(h *Host) { h.OVSDB = "unix:db.sock" }, "ovsdb"},
		{"missing tunnel ip", func(h *Host) { h.TunnelIP = "" }, "tunnel_ip"},
		{"bad tunnel ip", func(h *Host) { h.TunnelIP = "192.0.2.300" }, "tunnel_ip"},
		{"multicast tunnel ip", func(h *Host) { h.TunnelIP = "224.0.0.1" }, "tunnel_ip"},
		{"bad datapath type", func(h *Host) { h.DatapathType = "Net dev" }, "datapath_type"},
	}
	backends(t, func(t *testing.T, s Store) {
		for _, c := range cases {
			h := good
			c.edit(&h)
			_, _, err := s.CreateHost(context.Background(), h)
			requireKind(t, err, ErrInvalid, c.field)
		}
		for _, addr := range []string{"tcp:198.51.100.1", "ssl:[2001:db8::1]:6640", "tcp:[2001:db8::1]", "unix:/tmp/x/db.sock"} {
			h := good
			h.OVSDB = addr
			h.Name = fmt.Sprintf("ok%d", len(addr))
			h.TunnelIP = fmt.Sprintf("192.0.2.%d", len(addr))
			_, _, err := s.CreateHost(context.Background(), h)
			assert.NoError(t, err, addr)
		}
		hosts, err := s.ListHosts(context.Background())
		require.NoError(t, err)
		assert.Len(t, hosts, 4)
	})
}

func TestNetworkSegments(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		assert.Equal(t, uint32(1), mustNetwork(t, s, "a", VXLAN, 0).SegmentID)
		assert.Equal(t, uint32(3), mustNetwork(t, s, "b", VXLAN, 3).SegmentID)
		assert.Equal(t, uint32(2), mustNetwork(t, s, "c", VXLAN, 0).SegmentID, "lowest free")
		assert.Equal(t, uint32(4), mustNetwork(t, s, "d", VXLAN, 0).SegmentID)
		assert.Equal(t, uint32(1), mustNetwork(t, s, "e", GRE, 0).SegmentID, "segments are per type")
		assert.Equal(t, uint32(3), mustNetwork(t, s, "f", GRE, 3).SegmentID, "same segment, other type")
		assert.Equal(t, VXLAN.MaxSegment(), mustNetwork(t, s, "g", VXLAN, VXLAN.MaxSegment()).SegmentID)
		assert.Equal(t, GRE.MaxSegment(), mustNetwork(t, s, "h", GRE, GRE.MaxSegment()).SegmentID)

		_, _, err := s.CreateNetwork(ctx, Network{Name: "x", Type: VXLAN, SegmentID: 3})
		requireKind(t, err, ErrConflict, "")
		assert.Contains(t, err.Error(), `network "b"`)
		_, _, err = s.CreateNetwork(ctx, Network{Name: "a", Type: GRE, SegmentID: 99})
		requireKind(t, err, ErrConflict, "")
		_, _, err = s.CreateNetwork(ctx, Network{Name: "x", Type: VXLAN, SegmentID: VXLAN.MaxSegment() + 1})
		requireKind(t, err, ErrInvalid, "segment_id")
		_, _, err = s.CreateNetwork(ctx, Network{Name: "x", Type: "stt"})
		requireKind(t, err, ErrInvalid, "type")
		_, _, err = s.CreateNetwork(ctx, Network{Name: "X", Type: VXLAN})
		requireKind(t, err, ErrInvalid, "name")

		_, err = s.DeleteNetwork(ctx, "c", false, nil)
		require.NoError(t, err)
		assert.Equal(t, uint32(2), mustNetwork(t, s, "c2", VXLAN, 0).SegmentID, "a deleted network's segment is free again")

		got, err := s.GetNetwork(ctx, "b")
		require.NoError(t, err)
		assert.Equal(t, Network{Name: "b", Type: VXLAN, SegmentID: 3, MACLearning: true, Meta: Meta{Tags: []string{}, RevisionNumber: got.RevisionNumber}}, got)
		assert.NotZero(t, got.RevisionNumber)
		networks, err := s.ListNetworks(ctx)
		require.NoError(t, err)
		var names []string
		for _, n := range networks {
			names = append(names, n.Name)
		}
		assert.Equal(t, []string{"a", "b", "c2", "d", "e", "f", "g", "h"}, names)
		_, err = s.GetNetwork(ctx, "nope")
		requireKind(t, err, ErrNotFound, "")
		_, err = s.DeleteNetwork(ctx, "nope", true, nil)
		requireKind(t, err, ErrNotFound, "")
	})
}

func TestPortLocalVLANs(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		mustHost(t, s, "h1", "192.0.2.1")
		mustHost(t, s, "h2", "192.0.2.2")
		for _, n := range []string{"blue", "red", "green"} {
			mustNetwork(t, s, n, VXLAN, 0)
		}
		p1 := mustPort(t, s, Port{Network: "blue", Name: "vm1", Host: "h1", Interface: "tap1", MAC: "02:00:00:00:00:01", IPs: []string{"198.18.0.1"}})
		assert.Equal(t, uint16(1), p1.LocalVLAN)
		p2 := mustPort(t, s, Port{Network: "red", Name: "vm2", Host: "h1", Interface: "tap2"})
		assert.Equal(t, uint16(2), p2.LocalVLAN)
		p3 := mustPort(t, s, Port{Network: "blue", Name: "vm3", Host: "h1", Interface: "tap3"})
		assert.Equal(t, uint16(1), p3.LocalVLAN, "second port of a network on a host shares its VLAN")
		p4 := mustPort(t, s, Port{Network: "red", Name: "vm4", Host: "h2", Interface: "tap1"})
		assert.Equal(t, uint16(1), p4.LocalVLAN, "VLANs are per host; same interface name on another host is fine")

		// blue keeps VLAN 1 on h1 until its last port there leaves.
		_, err := s.DeletePort(ctx, "blue", "vm1", nil)
		require.NoError(t, err)
		assert.Equal(t, uint16(3), mustPort(t, s, Port{Network: "green", Name: "vm5", Host: "h1", Interface: "tap5"}).LocalVLAN)
		_, err = s.DeletePort(ctx, "blue", "vm3", nil)
		require.NoError(t, err)
		assert.Equal(t, uint16(1), mustPort(t, s, Port{Network: "blue", Name: "vm6", Host: "h1", Interface: "tap6"}).LocalVLAN,
			"released VLAN 1 is the lowest free again")

		snap, err := s.Snapshot(ctx)
		require.NoError(t, err)
		assert.Equal(t, map[string]uint16{"blue": 1, "red": 2, "green": 3}, snap.LocalVLANs("h1"))
		assert.Equal(t, map[string]uint16{"red": 1}, snap.LocalVLANs("h2"))

		got, err := s.GetPort(ctx, "red", "vm2")
		require.NoError(t, err)
		assert.Equal(t, p2, got)
		ports, err := s.ListPorts(ctx, "red")
		require.NoError(t, err)
		assert.Equal(t, []Port{p2, p4}, ports)
	})
}

func TestPortMoveBetweenHosts(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		mustHost(t, s, "h1", "192.0.2.1")
		mustHost(t, s, "h2", "192.0.2.2")
		mustNetwork(t, s, "blue", VXLAN, 0)
		mustNetwork(t, s, "red", GRE, 0)
		mustPort(t, s, Port{Network: "red", Name: "r1", Host: "h2", Interface: "tap9"})
		mustPort(t, s, Port{Network: "blue", Name: "vm1", Host: "h1", Interface: "tap0", MAC: "02:00:00:00:00:01"})

		moved, _, err := replacePort(ctx, s, Port{Network: "blue", Name: "vm1", Host: "h2", Interface: "tap7", MAC: "02:00:00:00:00:01", IPs: []string{"198.18.0.1"}})
		require.NoError(t, err)
		assert.Equal(t, uint16(2), moved.LocalVLAN, "VLAN on the new host")
		snap, err := s.Snapshot(ctx)
		require.NoError(t, err)
		assert.Empty(t, snap.LocalVLANs("h1"), "old host released the VLAN")

		// The old interface is free, the new one is taken.
		mustPort(t, s, Port{Network: "blue", Name: "vm2", Host: "h1", Interface: "tap0"})
		_, _, err = s.CreatePort(ctx, Port{Network: "red", Name: "r2", Host: "h2", Interface: "tap7"})
		requireKind(t, err, ErrConflict, "")

		// Same host: VLAN unchanged, interface rename ok, keeping own claims ok.
		same, _, err := replacePort(ctx, s, Port{Network: "blue", Name: "vm1", Host: "h2", Interface: "tap8", MAC: "02:00:00:00:00:01", IPs: []string{"198.18.0.1"}})
		require.NoError(t, err)
		assert.Equal(t, uint16(2), same.LocalVLAN)

		_, _, err = replacePort(ctx, s, Port{Network: "blue", Name: "nope", Host: "h2", Interface: "tap5"})
		requireKind(t, err, ErrNotFound, "")
		_, _, err = replacePort(ctx, s, Port{Network: "blue", Name: "vm1", Host: "h9", Interface: "tap5"})
		requireKind(t, err, ErrInvalid, "host")
		_, _, err = replacePort(ctx, s, Port{Network: "blue", Name: "vm1", Host: "h1", Interface: "tap0"})
		requireKind(t, err, ErrConflict, "")
		got, err := s.GetPort(ctx, "blue", "vm1")
		require.NoError(t, err)
		assert.Equal(t, same, got, "rejected updates change nothing")
	})
}

func TestPortValidationAndConflicts(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		mustHost(t, s, "h1", "192.0.2.1")
		mustNetwork(t, s, "blue", VXLAN, 0)
		p := mustPort(t, s, Port{Network: "blue", Name: "vm1", Host: "h1", Interface: "tap0", MAC: "02:AB:00:00:00:01", IPs: []string{"198.18.0.1", "2001:DB8:100::1"}})
		assert.Equal(t, "02:ab:00:00:00:01", p.MAC)
		assert.Equal(t, []string{"198.18.0.1", "2001:db8:100::1"}, p.IPs)
		before, err := s.Snapshot(ctx)
		require.NoError(t, err)

		good := Port{Network: "blue", Name: "vm2", Host: "h1", Interface: "tap1"}
		invalids := []struct {
			edit  func(p *Port)
			field string
		}{
			{func(p *Port) { p.Name = "VM2" }, "name"},
			{func(p *Port) { p.Interface = "" }, "interface"},
			{func(p *Port) { p.Interface = "a-very-long-name0" }, "interface"},
			{func(p *Port) { p.Interface = "tap/0" }, "interface"},
			{func(p *Port) { p.MAC = "02:00:00:00:00" }, "mac"},
			{func(p *Port) { p.MAC = "01:00:00:00:00:01" }, "mac"},
			{func(p *Port) { p.MAC = "00:00:00:00:00:00" }, "mac"},
			{func(p *Port) { p.IPs = []string{"198.18.0.2", "nope"} }, "ips[1]"},
			{func(p *Port) { p.IPs = []string{"198.18.0.2", "198.18.0.2"} }, "ips[1]"},
			{func(p *Port) { p.IPs = []string{"fe80::1%eth0"} }, "ips[0]"},
			{func(p *Port) { p.Host = "h9" }, "host"},
		}
		for _, c := range invalids {
			q := good
			c.edit(&q)
			_, _, err := s.CreatePort(ctx, q)
			requireKind(t, err, ErrInvalid, c.field)
		}
		conflicts := []func(p *Port){
			func(p *Port) { p.Name = "vm1" },
			func(p *Port) { p.Interface = "tap0" },
			func(p *Port) { p.MAC = "02:ab:00:00:00:01" },
			func(p *Port) { p.IPs = []string{"2001:db8:100:0::1"} },
		}
		for _, edit := range conflicts {
			q := good
			edit(&q)
			_, _, err := s.CreatePort(ctx, q)
			requireKind(t, err, ErrConflict, "")
		}
		q := good
		q.Network = "nope"
		_, _, err = s.CreatePort(ctx, q)
		requireKind(t, err, ErrNotFound, "")
		_, err = s.ListPorts(ctx, "nope")
		requireKind(t, err, ErrNotFound, "")
		_, err = s.GetPort(ctx, "blue", "nope")
		requireKind(t, err, ErrNotFound, "")
		_, err = s.DeletePort(ctx, "blue", "nope", nil)
		requireKind(t, err, ErrNotFound, "")

		after, err := s.Snapshot(ctx)
		require.NoError(t, err)
		assert.Equal(t, before, after, "rejected changes store nothing")

		// The same MAC and IP are fine in another network.
		mustNetwork(t, s, "red", VXLAN, 0)
		mustPort(t, s, Port{Network: "red", Name: "vm1", Host: "h1", Interface: "tap9", MAC: "02:ab:00:00:00:01", IPs: []string{"198.18.0.1"}})
	})
}

func TestCascadeDeletes(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		mustHost(t, s, "h1", "192.0.2.1")
		mustHost(t, s, "h2", "192.0.2.2")
		mustNetwork(t, s, "blue", VXLAN, 0)
		mustNetwork(t, s, "red", VXLAN, 0)
		mustPort(t, s, Port{Network: "blue", Name: "a", Host: "h1", Interface: "tap0"})
		mustPort(t, s, Port{Network: "blue", Name: "b", Host: "h1", Interface: "tap1"})
		mustPort(t, s, Port{Network: "red", Name: "c", Host: "h1", Interface: "tap2"})
		mustPort(t, s, Port{Network: "blue", Name: "d", Host: "h2", Interface: "tap0"})

		_, err := s.DeleteHost(ctx, "h1", false, nil)
		requireKind(t, err, ErrConflict, "")
		assert.Contains(t, err.Error(), "3 port(s) on 2 network(s)")
		_, err = s.DeleteNetwork(ctx, "blue", false, nil)
		requireKind(t, err, ErrConflict, "")

		_, err = s.DeleteHost(ctx, "h1", true, nil)
		require.NoError(t, err)
		snap, err := s.Snapshot(ctx)
		require.NoError(t, err)
		require.Len(t, snap.Ports, 1)
		assert.Equal(t, "d", snap.Ports[0].Name)
		assert.Len(t, snap.Hosts, 1)

		// h1 comes back with nothing left over: its interfaces and VLANs are free.
		mustHost(t, s, "h1", "192.0.2.1")
		assert.Equal(t, uint16(1), mustPort(t, s, Port{Network: "red", Name: "c", Host: "h1", Interface: "tap0"}).LocalVLAN)

		_, err = s.DeleteNetwork(ctx, "blue", true, nil)
		require.NoError(t, err)
		snap, err = s.Snapshot(ctx)
		require.NoError(t, err)
		require.Len(t, snap.Ports, 1)
		assert.Empty(t, snap.LocalVLANs("h2"))
		_, err = s.DeleteHost(ctx, "h2", false, nil)
		require.NoError(t, err, "h2 has no ports left")
	})
}

func TestSnapshotOrderAndLookups(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		mustHost(t, s, "h1", "192.0.2.1")
		mustHost(t, s, "h0", "192.0.2.2")
		mustNetwork(t, s, "a", VXLAN, 0)
		mustNetwork(t, s, "a.b", VXLAN, 0)
		mustNetwork(t, s, "a-c", GRE, 0)
		mustPort(t, s, Port{Network: "a", Name: "z", Host: "h1", Interface: "t1"})
		mustPort(t, s, Port{Network: "a.b", Name: "y", Host: "h1", Interface: "t2"})
		mustPort(t, s, Port{Network: "a-c", Name: "x", Host: "h1", Interface: "t3"})
		mustPort(t, s, Port{Network: "a", Name: "b", Host: "h0", Interface: "t1"})
		snap, err := s.Snapshot(context.Background())
		require.NoError(t, err)
		assert.Equal(t, uint64(9), snap.Revision)
		var order []string
		for _, p := range snap.Ports {
			order = append(order, p.Network+"/"+p.Name)
		}
		assert.Equal(t, []string{"a/b", "a/z", "a-c/x", "a.b/y"}, order)
		h, ok := snap.Host("h0")
		assert.True(t, ok)
		assert.Equal(t, "192.0.2.2", h.TunnelIP)
		_, ok = snap.Host("h5")
		assert.False(t, ok)
		n, ok := snap.Network("a-c")
		assert.True(t, ok)
		assert.Equal(t, GRE, n.Type)
		_, ok = snap.Network("b")
		assert.False(t, ok)
	})
}

func TestLocalVLANExhaustion(t *testing.T) {
	s := NewMemoryStore()
	defer s.Close()
	ctx := context.Background()
	mustHost(t, s, "h1", "192.0.2.1")
	for i := 1; i <= int(MaxLocalVLAN)+1; i++ {
		name := fmt.Sprintf("n%d", i)
		mustNetwork(t, s, name, VXLAN, 0)
		p, _, err := s.CreatePort(ctx, Port{Network: name, Name: "p", Host: "h1", Interface: fmt.Sprintf("t%d", i)})
		if i <= int(MaxLocalVLAN) {
			require.NoError(t, err)
			require.Equal(t, uint16(i), p.LocalVLAN)
			continue
		}
		requireKind(t, err, ErrConflict, "")
		assert.Contains(t, err.Error(), "no free local VLAN")
	}
	_, err := s.DeletePort(ctx, "n100", "p", nil)
	require.NoError(t, err)
	p := mustPort(t, s, Port{Network: "n4095", Name: "p", Host: "h1", Interface: "t4095"})
	assert.Equal(t, uint16(100), p.LocalVLAN)
}

func TestWatch(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx, cancel := context.WithCancel(context.Background())
		mustHost(t, s, "h1", "192.0.2.1")
		ch := s.Watch(ctx)
		assert.Equal(t, uint64(1), receive(t, ch), "the current revision first")

		mustNetwork(t, s, "a", VXLAN, 0)
		assert.Equal(t, uint64(2), receive(t, ch))

		// A slow reader sees only the newest revision.
		mustNetwork(t, s, "b", VXLAN, 0)
		mustNetwork(t, s, "c", VXLAN, 0)
		assert.Equal(t, uint64(4), receive(t, ch))
		select {
		case rev := <-ch:
			t.Fatalf("unexpected revision %d", rev)
		default:
		}

		// A rejected write is not announced.
		_, _, err := s.CreateNetwork(context.Background(), Network{Name: "c", Type: VXLAN})
		require.Error(t, err)
		select {
		case rev := <-ch:
			t.Fatalf("unexpected revision %d", rev)
		case <-time.After(50 * time.Millisecond):
		}

		cancel()
		requireClosed(t, ch)

		other := s.Watch(context.Background())
		assert.Equal(t, uint64(4), receive(t, other))
		require.NoError(t, s.Close())
		requireClosed(t, other)
		requireClosed(t, s.Watch(context.Background()))
	})
}

func receive(t *testing.T, ch <-chan uint64) uint64 {
	t.Helper()
	select {
	case rev, ok := <-ch:
		require.True(t, ok, "channel closed")
		return rev
	case <-time.After(5 * time.Second):
		t.Fatal("no revision within 5s")
		return 0
	}
}

func requireClosed(t *testing.T, ch <-chan uint64) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("channel not closed within 5s")
		}
	}
}

func TestConcurrentWrites(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		mustHost(t, s, "h1", "192.0.2.1")
		const n = 40
		revs := make(chan uint64, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				name := fmt.Sprintf("n%d", i)
				_, rev, err := s.CreateNetwork(ctx, Network{Name: name, Type: VXLAN})
				assert.NoError(t, err)
				_, _, err = s.CreatePort(ctx, Port{Network: name, Name: "p", Host: "h1", Interface: fmt.Sprintf("t%d", i)})
				assert.NoError(t, err)
				revs <- rev
			})
		}
		wg.Wait()
		close(revs)
		seen := make(map[uint64]bool)
		for rev := range revs {
			assert.False(t, seen[rev], "revision %d returned twice", rev)
			seen[rev] = true
		}
		snap, err := s.Snapshot(ctx)
		require.NoError(t, err)
		assert.Equal(t, uint64(1+2*n), snap.Revision)
		segs := make(map[uint32]bool)
		vlans := make(map[uint16]bool)
		for _, nw := range snap.Networks {
			segs[nw.SegmentID] = true
		}
		for _, p := range snap.Ports {
			vlans[p.LocalVLAN] = true
		}
		assert.Len(t, segs, n, "distinct segments")
		assert.Len(t, vlans, n, "distinct local VLANs")
	})
}

func TestCanceledContext(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, _, err := s.CreateHost(ctx, Host{Name: "h1", OVSDB: "tcp:198.51.100.1:6640", TunnelIP: "192.0.2.1"})
		require.ErrorIs(t, err, context.Canceled)
		_, err = s.ListHosts(ctx)
		require.ErrorIs(t, err, context.Canceled)
	})
}

// replacePort updates p's host, interface, MAC and IPs, as PUT does.
func replacePort(ctx context.Context, s Store, p Port) (Port, uint64, error) {
	return s.UpdatePort(ctx, p.Network, p.Name, nil, func(cur *Port) error {
		cur.Host, cur.Interface, cur.MAC, cur.IPs = p.Host, p.Interface, p.MAC, p.IPs
		return nil
	})
}
