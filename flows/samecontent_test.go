package flows_test

import (
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/topology"
)

// TestSameContentComparesActionsAsValues: SameContent, which compares the
// actions without reflection, agrees with a comparison by reflect.DeepEqual
// (then by text) for every pair of flows of compiled sets in both
// tunnel-port modes, and for pairs that differ only inside an action's
// byte string or learn specs; SameValues agrees with reflect.DeepEqual of
// the actions for the same pairs.
func TestSameContentComparesActionsAsValues(t *testing.T) {
	byReflection := func(f, g flows.Flow) bool {
		return f.Cookie == g.Cookie && f.IdleTimeout == g.IdleTimeout && f.HardTimeout == g.HardTimeout &&
			(reflect.DeepEqual(f.Actions, g.Actions) || f.ActionsString() == g.ActionsString())
	}
	var all []flows.Flow
	for _, mode := range []topology.TunnelPortMode{topology.PerPeerTunnels, topology.FlowTunnels} {
		for _, h := range []string{"h1", "h2"} {
			set := remotePorts().withMode(mode).compile(t, h)
			all = append(append(all, set.BrTun...), set.BrInt...)
		}
	}
	same := 0
	for _, f := range all {
		for _, g := range all {
			g.Cookie, g.IdleTimeout, g.HardTimeout = f.Cookie, f.IdleTimeout, f.HardTimeout
			want := byReflection(f, g)
			require.Equal(t, want, f.SameContent(g), "%s\n%s", f, g)
			require.Equal(t, reflect.DeepEqual(f.Actions, g.Actions), f.SameValues(g), "%s\n%s", f, g)
			if want {
				same++
			}
		}
	}
	assert.Greater(t, same, len(all), "control: flows other than each with itself have the same actions")

	learn := flows.Learn{Table: 20, Cookie: 7, Specs: []flows.LearnSpec{{Kind: flows.LearnOutput, Src: flows.Whole(flows.FieldInPort)}}}
	other := learn
	other.Specs = []flows.LearnSpec{{Kind: flows.LearnOutput, Src: flows.Whole(flows.FieldReg0)}}
	pairs := []struct {
		a, b flows.Action
		same bool
	}{
		{flows.SetTunID(5001), flows.SetTunID(5001), true},
		{flows.SetTunID(5001), flows.SetTunID(5002), false},
		{flows.SetVLANVID(3), flows.SetTunID(3), false},
		{learn, learn, true},
		{learn, other, false},
		{flows.Raw{Bytes: []byte{1, 2}}, flows.Raw{Bytes: []byte{1, 2}}, true},
		{flows.Raw{Bytes: []byte{1, 2}}, flows.Raw{Bytes: []byte{1, 3}}, false},
		{flows.Output{Port: 1}, flows.Output{Port: 1}, true},
		{flows.Output{Port: 1}, flows.Output{Port: 2}, false},
		{flows.Output{Port: 1}, flows.Resubmit{Table: 1}, false},
	}
	for _, p := range pairs {
		f := flows.Flow{Table: 1, Priority: 1, Actions: []flows.Action{flows.PopVLAN{}, p.a}}
		g := flows.Flow{Table: 1, Priority: 1, Actions: []flows.Action{flows.PopVLAN{}, p.b}}
		assert.Equal(t, p.same, f.SameContent(g), "%s / %s", f.ActionsString(), g.ActionsString())
		assert.Equal(t, byReflection(f, g), f.SameContent(g), "%s / %s", f.ActionsString(), g.ActionsString())
		assert.Equal(t, p.same, f.SameValues(g), "%s / %s", f.ActionsString(), g.ActionsString())
	}

	// Actions that render alike as other values: the same content, not
	// the same values.
	f := flows.Flow{Table: 1, Priority: 1, Actions: []flows.Action{flows.InPort{}}}
	g := flows.Flow{Table: 1, Priority: 1, Actions: []flows.Action{flows.Output{Port: flows.PortInPort}}}
	require.Equal(t, f.ActionsString(), g.ActionsString())
	assert.True(t, f.SameContent(g), "the same content")
	assert.False(t, f.SameValues(g), "other values")
	g.Cookie = 1
	assert.False(t, f.SameContent(g), "control: another cookie is other content")
	assert.False(t, flows.Flow{Actions: f.Actions}.SameValues(flows.Flow{Cookie: 1, Actions: f.Actions}), "and other values")
}
