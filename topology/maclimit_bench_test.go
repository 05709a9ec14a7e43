package topology

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// benchNetworks is the size of bench/'s REST throughput figure: 4000
// networks with a port on h1 and one on h2 (8000 ports).
const benchNetworks = 4000

// BenchmarkCreatePortLargeStore creates ports, one per operation, in a
// bbolt store (fsync on) that holds benchNetworks networks and twice as
// many ports, with --mac-learn-limit at serve's default (the
// bounded-MAC-table guard on) and, as the same-run reference, unbounded.
// Each port goes to h3 in another of the networks, so no network grows
// much during the run.
func BenchmarkCreatePortLargeStore(b *testing.B) {
	for _, c := range []struct {
		name  string
		limit int
	}{{"guard", 16384}, {"unbounded", 0}} {
		b.Run(c.name, func(b *testing.B) { benchCreatePort(b, c.limit) })
	}
}

func benchCreatePort(b *testing.B, macLearnLimit int) {
	ctx := context.Background()
	s := largeBoltStore(b, macLearnLimit)
	for i := 0; b.Loop(); i++ {
		n := fmt.Sprintf("net%04d", i%benchNetworks)
		_, _, err := s.CreatePort(ctx, Port{Network: n, Name: fmt.Sprintf("c%d", i), Host: "h3",
			Interface: fmt.Sprintf("c%d", i), MAC: fmt.Sprintf("02:01:%02x:%02x:%02x:01", i>>16&0xff, i>>8&0xff, i&0xff)})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreateNetworkLargeStore is one iteration of bench/'s REST
// throughput figure per operation, a network and a port in it on each of
// two hosts, in the store of BenchmarkCreatePortLargeStore (guard on). The
// ports go to h3 and h4: h1 and h2 have almost no local VLAN left.
func BenchmarkCreateNetworkLargeStore(b *testing.B) {
	ctx := context.Background()
	s := largeBoltStore(b, 16384)
	for i := 0; b.Loop(); i++ {
		n := fmt.Sprintf("new%04d", i)
		if _, _, err := s.CreateNetwork(ctx, Network{Name: n, Type: VXLAN, SegmentID: uint32(20000 + i)}); err != nil {
			b.Fatal(err)
		}
		for j, h := range []string{"h3", "h4"} {
			_, _, err := s.CreatePort(ctx, Port{Network: n, Name: fmt.Sprintf("%s-%d", h, i), Host: h,
				Interface: fmt.Sprintf("n%d-%d", j, i), MAC: fmt.Sprintf("02:02:%02x:%02x:%02x:%02x", j, i>>16&0xff, i>>8&0xff, i&0xff)})
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}

// largeBoltStore returns a bbolt store (fsync on) holding benchNetworks
// networks with a port on h1 and one on h2, and hosts h3 and h4 without
// ports, opened with --mac-learn-limit macLearnLimit.
func largeBoltStore(b *testing.B, macLearnLimit int) Store {
	b.Helper()
	ctx := context.Background()
	opened, err := OpenBoltStore(b.TempDir())
	require.NoError(b, err)
	populate := opened.(*store)
	b.Cleanup(func() { require.NoError(b, populate.Close()) })
	db := populate.be.(*boltBackend).db
	db.NoSync = true // filling the store is not what is measured
	for i, h := range []string{"h1", "h2", "h3", "h4"} {
		_, _, err := populate.CreateHost(ctx, Host{Name: h, OVSDB: "unix:/run/brtun-bench/" + h + "/db.sock", TunnelIP: fmt.Sprintf("192.0.2.%d", i+1)})
		require.NoError(b, err)
	}
	for i := range benchNetworks {
		n := fmt.Sprintf("net%04d", i)
		_, _, err := populate.CreateNetwork(ctx, Network{Name: n, Type: VXLAN, SegmentID: uint32(10000 + i)})
		require.NoError(b, err)
		for j, h := range []string{"h1", "h2"} {
			_, _, err := populate.CreatePort(ctx, Port{Network: n, Name: fmt.Sprintf("%s-%d", h, i), Host: h,
				Interface: fmt.Sprintf("tap%d-%d", j, i), MAC: fmt.Sprintf("02:00:%02x:%02x:00:%02x", i>>8, i&0xff, j+1)})
			require.NoError(b, err)
		}
	}
	db.NoSync = false
	// The daemon's store on the same state file.
	return newStore(populate.be, WithMACLearnLimit(macLearnLimit))
}
