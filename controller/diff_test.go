package controller

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/topology"
)

func flow(table uint8, prio uint16, cookie uint64, actions ...flows.Action) flows.Flow {
	return flows.Flow{Table: table, Priority: prio, Cookie: cookie, Actions: actions}
}

func TestDiffSendsNothingForFlowsThatAreRight(t *testing.T) {
	set := []flows.Flow{flow(0, 0, 1), flow(21, 0, 1)}
	assert.Empty(t, Diff(set, set, nil))
}

// The same keyed flows (a drift check whose dump held what was installed)
// diff to nothing at once; another list of them that differs in one flow
// still diffs to that flow.
func TestDiffKeyedOfTheSameFlows(t *testing.T) {
	set := keyed([]flows.Flow{flow(0, 0, 1), flow(21, 0, 1), flow(22, 0, 1)})
	assert.Empty(t, diffKeyed(set, set, nil, nil))
	assert.Empty(t, diffKeyed(set, slices.Clone(set), nil, nil), "the same flows in other memory")
	other := slices.Clone(set)
	other[1] = keyed([]flows.Flow{flow(21, 0, 1, flows.Output{Port: 3})})[0]
	assert.Equal(t, []Change{{Op: OpModifyStrict, Flow: set[1].flow}}, diffKeyed(set, other, nil, nil))
}

func TestDiffAddsModifiesAndDeletes(t *testing.T) {
	desired := []flows.Flow{flow(0, 0, 1), flow(2, 0, 1), flow(3, 0, 1)}
	installed := []flows.Flow{
		flow(0, 0, 1),                        // right
		flow(2, 0, 1, flows.Output{Port: 3}), // same identity and cookie, other actions
		flow(3, 0, 7),                        // same identity, other cookie
		flow(9, 5, 1),                        // stray
	}
	desired = append(desired, flow(4, 0, 1))
	got := Diff(desired, installed, nil)
	assert.Equal(t, []Change{
		{Op: OpDeleteStrict, Flow: installed[3]},
		{Op: OpModifyStrict, Flow: desired[1]},
		{Op: OpAdd, Flow: desired[2]}, // a modify cannot change a cookie in OpenFlow 1.3
		{Op: OpAdd, Flow: desired[3]},
	}, got)
}

func TestDiffKeepsWhatKeepAccepts(t *testing.T) {
	learned := flow(20, 1, 0xabc)
	stale := flow(20, 1, 0xdef)
	stale.Priority = 2 // another identity
	keep := func(f flows.Flow) bool { return f.Cookie == 0xabc }
	got := Diff(nil, []flows.Flow{learned, stale}, keep)
	assert.Equal(t, []Change{{Op: OpDeleteStrict, Flow: stale}}, got)
}

// BenchmarkDiffResync is a resync that finds nothing to do: the compiled
// br-tun of a host with 4094 networks diffed against the same flows dumped.
func BenchmarkDiffResync(b *testing.B) {
	v := flows.View{Host: "h1", PatchIntOfport: 1}
	v.Tunnels = []flows.TunnelPort{{Ofport: 2, PeerHost: "h2", Type: topology.VXLAN, RemoteIP: "192.0.2.2"}}
	for i := range 4094 {
		v.Networks = append(v.Networks, flows.NetworkView{
			Name: fmt.Sprintf("net%04d", i), Type: topology.VXLAN, SegmentID: uint32(10000 + i),
			LocalVLAN: uint16(i + 1), MACLearning: true, Peers: []string{"h2"},
		})
	}
	desired := flows.Compile(v).BrTun
	installed := slices.Clone(desired)
	b.ReportAllocs()
	for b.Loop() {
		if got := Diff(desired, installed, nil); len(got) != 0 {
			b.Fatalf("%d changes", len(got))
		}
	}
}

// A registered port's table 20 entry that moves tunnel, appears or goes
// brings the strict delete of the learned entry for its VLAN and MAC; other
// changes bring none.
func TestStaleLearnedFollowsRegisteredEntries(t *testing.T) {
	mac, err := flows.ParseMAC("02:00:00:00:0b:01")
	assert.NoError(t, err)
	entry := func(tunnel uint32) flows.Flow {
		return flows.Flow{Table: flows.TableUnicast, Priority: 2, Cookie: flows.PortCookie("blue", "x"),
			Match:   flows.Match{VLANTCI: flows.VLANMatch(5), EthDst: flows.ExactMAC(mac)},
			Actions: []flows.Action{flows.PopVLAN{}, flows.SetTunID(5001), flows.Output{Port: tunnel}}}
	}
	shadow, ok := flows.LearnedShadow(entry(7))
	assert.True(t, ok)
	del := Change{Op: OpDeleteStrict, Flow: shadow}
	other := flow(21, 1, 9, flows.Output{Port: 3})

	assert.Equal(t, []Change{del}, staleLearned(Diff([]flows.Flow{entry(8)}, []flows.Flow{entry(7)}, nil)), "moved between tunnels")
	assert.Equal(t, []Change{del}, staleLearned(Diff(nil, []flows.Flow{entry(7)}, nil)), "moved here (or away)")
	assert.Equal(t, []Change{del}, staleLearned(Diff([]flows.Flow{entry(7)}, nil, nil)), "appeared")
	assert.Empty(t, staleLearned(Diff([]flows.Flow{entry(7)}, []flows.Flow{entry(7)}, nil)), "unchanged")
	assert.Empty(t, staleLearned(Diff([]flows.Flow{other}, nil, nil)), "not a registered entry")
}
