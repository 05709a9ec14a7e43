package ovsdb

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/topology"
)

func TestFactsEqual(t *testing.T) {
	base := func() Facts {
		return Facts{
			Connected: true,
			Bridges:   map[string]BridgeFacts{BridgeTun: {Name: BridgeTun, DatapathID: 7, PatchOFPort: 1}},
			Tunnels:   []TunnelPort{{Name: "vxlan-1", Type: topology.VXLAN, PeerName: "h2", PeerIP: "198.51.100.2", OFPort: 2}},
			Bindings:  []BoundPort{{Interface: "tap-a", Port: "a", Network: "blue", VLAN: 1, OFPort: 3}},
			Marked:    []MarkedInterface{{Interface: "tap-m", Network: "blue", Port: "m"}},
		}
	}
	require.True(t, base().Equal(base()), "the same facts, in other lists")
	require.True(t, Facts{}.Equal(Facts{Tunnels: []TunnelPort{}, Bridges: map[string]BridgeFacts{}}), "nil and empty are the same")
	changes := map[string]func(f *Facts){
		"connected":   func(f *Facts) { f.Connected = false },
		"bridge":      func(f *Facts) { f.Bridges[BridgeTun] = BridgeFacts{Name: BridgeTun, DatapathID: 7, PatchOFPort: 2} },
		"tunnel":      func(f *Facts) { f.Tunnels[0].OFPort = 9 },
		"tunnel gone": func(f *Facts) { f.Tunnels = nil },
		"binding":     func(f *Facts) { f.Bindings[0].VLAN = 0 },
		"marked":      func(f *Facts) { f.Marked[0].Bridge = BridgeInt },
	}
	for name, change := range changes {
		t.Run(name, func(t *testing.T) {
			f := base()
			change(&f)
			require.False(t, base().Equal(f))
			require.False(t, f.Equal(base()))
		})
	}
	// A new field must be compared by Equal: add it there, then here.
	var fields []string
	for f := range reflect.TypeFor[Facts]().Fields() {
		fields = append(fields, f.Name)
	}
	require.Equal(t, []string{"Connected", "Bridges", "Tunnels", "Bindings", "Marked"}, fields)
}

// BenchmarkFactsEqual compares the facts of a host with 999 per-peer
// tunnel ports (1000 hosts) as the controller does on every revision:
// Equal against reflect.DeepEqual, which it replaced there.
func BenchmarkFactsEqual(b *testing.B) {
	facts := func() Facts {
		f := Facts{Connected: true, Bridges: map[string]BridgeFacts{BridgeTun: {Name: BridgeTun, PatchOFPort: 1}}}
		for i := range 999 {
			f.Tunnels = append(f.Tunnels, TunnelPort{Name: fmt.Sprintf("vxlan-%08x", i), Type: topology.VXLAN,
				PeerName: fmt.Sprintf("h%04d", i), PeerIP: fmt.Sprintf("198.19.%d.%d", i/256, i%256), OFPort: i + 2})
		}
		return f
	}
	a, c := facts(), facts()
	b.Run("Equal", func(b *testing.B) {
		for b.Loop() {
			if !a.Equal(c) {
				b.Fatal("not equal")
			}
		}
	})
	b.Run("reflect.DeepEqual", func(b *testing.B) {
		for b.Loop() {
			if !reflect.DeepEqual(a, c) {
				b.Fatal("not equal")
			}
		}
	})
}
