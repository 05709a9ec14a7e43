package flowsim_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/flows/flowsim"
)

func TestSimPicksHighestPriorityAndFollowsGotoAndResubmit(t *testing.T) {
	sim := flowsim.New([]flows.Flow{
		{Table: 0, Priority: 1, Actions: []flows.Action{flows.Output{Port: 9}}},
		{Table: 0, Priority: 5, Match: flows.Match{InPort: flows.Ptr(uint32(1))},
			Actions: []flows.Action{flows.Resubmit{Table: 7}, flows.Output{Port: 2}, flows.GotoTable{Table: 3}}},
		{Table: 7, Priority: 1, Actions: []flows.Action{flows.SetTunID(0x77), flows.Output{Port: 4}}},
		{Table: 3, Priority: 1, Actions: []flows.Action{flows.PushVLAN{EtherType: flows.EthTypeVLAN}, flows.SetVLANVID(12), flows.InPort{}, flows.PopVLAN{}, flows.Normal{}}},
	})
	res, err := sim.Run(flowsim.Packet{InPort: 1})
	require.NoError(t, err)
	assert.Equal(t, []uint32{4, 2, 1, flows.PortNormal}, res.Ports())
	assert.Equal(t, uint64(0x77), res.Outputs[0].Packet.TunID, "resubmit's changes stay")
	vid, tagged := res.Outputs[2].Packet.VLAN()
	assert.True(t, tagged)
	assert.Equal(t, uint16(12), vid)
	_, tagged = res.Outputs[3].Packet.VLAN()
	assert.False(t, tagged, "outputs are snapshots")
	assert.Len(t, res.Trace, 3, "table 0, resubmitted 7, then 3")

	res, err = sim.Run(flowsim.Packet{InPort: 2})
	require.NoError(t, err)
	assert.Equal(t, []uint32{9}, res.Ports(), "lower priority catches the rest")

	res, err = sim.Run(flowsim.Packet{InPort: 1, EthType: flows.EthTypeARP})
	require.NoError(t, err)
	assert.Len(t, res.Outputs, 4)
}

func TestSimMissDrops(t *testing.T) {
	sim := flowsim.New([]flows.Flow{{Table: 0, Priority: 1, Match: flows.Match{InPort: flows.Ptr(uint32(1))}, Actions: []flows.Action{flows.Output{Port: 2}}}})
	res, err := sim.Run(flowsim.Packet{InPort: 3})
	require.NoError(t, err)
	assert.Empty(t, res.Outputs)
	assert.Equal(t, []string{"table=0 miss (no flow): drop"}, res.Trace)
}

func TestSimRejectsAmbiguityAndLoops(t *testing.T) {
	ambiguous := flowsim.New([]flows.Flow{
		{Table: 0, Priority: 1, Match: flows.Match{InPort: flows.Ptr(uint32(1))}},
		{Table: 0, Priority: 1, Match: flows.Match{TunID: flows.Exact64(1)}},
	})
	_, err := ambiguous.Run(flowsim.Packet{InPort: 1, TunID: 1})
	assert.ErrorContains(t, err, "both match")

	loop := flowsim.New([]flows.Flow{{Table: 0, Priority: 1, Actions: []flows.Action{flows.Resubmit{Table: 0}}}})
	_, err = loop.Run(flowsim.Packet{})
	assert.ErrorContains(t, err, "nested resubmits")

	backwards := flowsim.New([]flows.Flow{
		{Table: 0, Priority: 1, Actions: []flows.Action{flows.GotoTable{Table: 1}}},
		{Table: 1, Priority: 1, Actions: []flows.Action{flows.GotoTable{Table: 0}}},
	})
	_, err = backwards.Run(flowsim.Packet{})
	assert.ErrorContains(t, err, "does not go forward")

	raw := flowsim.New([]flows.Flow{{Table: 0, Priority: 1, Actions: []flows.Action{flows.Raw{Bytes: []byte{1}}}}})
	_, err = raw.Run(flowsim.Packet{})
	assert.ErrorContains(t, err, "not simulated")

	untagged := flowsim.New([]flows.Flow{{Table: 0, Priority: 1, Actions: []flows.Action{flows.SetVLANVID(3)}}})
	_, err = untagged.Run(flowsim.Packet{})
	assert.ErrorContains(t, err, "untagged")
}

func TestSimLearnAddsAndReplaces(t *testing.T) {
	learn := flows.LearnFromTunnel(0xb751001000000005)
	sim := flowsim.New([]flows.Flow{
		{Table: 0, Priority: 1, Actions: []flows.Action{learn}},
		{Table: 20, Priority: 0, Actions: []flows.Action{flows.Output{Port: 99}}},
	})
	src := flows.MAC{2, 0, 0, 0, 0, 1}
	_, err := sim.Run(flowsim.Packet{InPort: 4, TunID: 5, VLANTCI: flows.VLANCFI | 3, EthSrc: src})
	require.NoError(t, err)
	learned := sim.Learned()
	require.Len(t, learned, 1)
	assert.Equal(t, "cookie=0xb751001000000005, table=20, hard_timeout=300, priority=1,vlan_tci=0x0003/0x0fff,"+
		"dl_dst=02:00:00:00:00:01 actions=load:0->NXM_OF_VLAN_TCI[],load:0x5->NXM_NX_TUN_ID[],output:4", learned[0].String())

	// The same MAC seen on another port replaces the entry (same key).
	_, err = sim.Run(flowsim.Packet{InPort: 6, TunID: 5, VLANTCI: flows.VLANCFI | 3, EthSrc: src})
	require.NoError(t, err)
	learned = sim.Learned()
	require.Len(t, learned, 1)
	assert.Contains(t, learned[0].String(), "output:6")
	assert.Len(t, sim.Table(20), 2)

	// The learned entry is used: table 20 sends to 6, untagged, tun_id 5.
	direct := flowsim.New(append(sim.Table(20), flows.Flow{Table: 0, Priority: 1, Actions: []flows.Action{flows.GotoTable{Table: 20}}}))
	res, err := direct.Run(flowsim.Packet{InPort: 1, VLANTCI: flows.VLANCFI | 3, EthDst: src})
	require.NoError(t, err)
	require.Equal(t, []uint32{6}, res.Ports())
	assert.Equal(t, uint16(0), res.Outputs[0].Packet.VLANTCI)
	assert.Equal(t, uint64(5), res.Outputs[0].Packet.TunID)
	// Another VLAN misses the entry.
	res, err = direct.Run(flowsim.Packet{InPort: 1, VLANTCI: flows.VLANCFI | 4, EthDst: src})
	require.NoError(t, err)
	assert.Equal(t, []uint32{99}, res.Ports())
}

func TestSimMovesWholeAndPartialFields(t *testing.T) {
	sim := flowsim.New([]flows.Flow{{Table: 0, Priority: 1, Actions: []flows.Action{
		flows.Move{Src: flows.Whole(flows.FieldIPv6Src), Dst: flows.Whole(flows.FieldIPv6Dst)},
		flows.Move{Src: flows.Bitrange(flows.FieldReg0, 0, 8), Dst: flows.Bitrange(flows.FieldTunID, 8, 8)},
		flows.Load{Dst: flows.Bitrange(flows.FieldReg0, 4, 4), Value: 0xf},
		flows.Output{Port: 1},
	}}})
	res, err := sim.Run(flowsim.Packet{IPv6Src: flows.IPv6{0x20, 0x01, 15: 1}, Reg0: 0xab, TunID: 0xff0000})
	require.NoError(t, err)
	p := res.Outputs[0].Packet
	assert.Equal(t, flows.IPv6{0x20, 0x01, 15: 1}, p.IPv6Dst)
	assert.Equal(t, uint64(0xffab00), p.TunID)
	assert.Equal(t, uint32(0xfb), p.Reg0)
}

func TestSimSkipsOutputToTheInputPort(t *testing.T) {
	sim := flowsim.New([]flows.Flow{{Table: 0, Priority: 1, Actions: []flows.Action{flows.Output{Port: 3}, flows.Output{Port: 4}}}})
	res, err := sim.Run(flowsim.Packet{InPort: 3})
	require.NoError(t, err)
	assert.Equal(t, []uint32{4}, res.Ports(), "OVS drops output:N to the input port")
	assert.Equal(t, []string{"table 0: output:3 skipped: it is the input port (only IN_PORT sends back)"}, res.Notes)
	res, err = sim.Run(flowsim.Packet{InPort: 5})
	require.NoError(t, err)
	assert.Equal(t, []uint32{3, 4}, res.Ports(), "control: from another port both go")
	assert.Empty(t, res.Notes)
}
