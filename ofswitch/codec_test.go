package ofswitch

import (
	"encoding/binary"
	"testing"

	of13 "github.com/contiv/libOpenflow/openflow13"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/topology"
)

// testView is a host with a VXLAN and a GRE network (one learning), tunnels
// to two peers, and remote ports with IPv4 and IPv6 addresses, so Compile
// emits every kind of flow brtun has.
func testView() flows.View {
	return flows.View{
		Host:           "h1",
		PatchIntOfport: 1,
		Tunnels: []flows.TunnelPort{
			{Ofport: 2, PeerHost: "h2", RemoteIP: "192.0.2.2", Type: topology.VXLAN},
			{Ofport: 3, PeerHost: "h3", RemoteIP: "192.0.2.3", Type: topology.VXLAN},
			{Ofport: 4, PeerHost: "h2", RemoteIP: "192.0.2.2", Type: topology.GRE},
		},
		Networks: []flows.NetworkView{
			{Name: "blue", Type: topology.VXLAN, SegmentID: 5001, LocalVLAN: 1, MACLearning: true, Peers: []string{"h2", "h3"}},
			{Name: "red", Type: topology.GRE, SegmentID: 5001, LocalVLAN: 2, Peers: []string{"h2"}},
		},
		RemotePorts: []flows.RemotePort{
			{Network: "blue", Name: "vm2", Host: "h2", MAC: "02:00:00:00:00:02", IPs: []string{"198.18.0.2", "2001:db8:100::2"}},
			{Network: "red", Name: "vm3", Host: "h2", MAC: "02:00:00:00:00:03", IPs: []string{"198.18.0.3"}},
		},
		PatchTunOfport: 1,
		LocalPorts: []flows.LocalPort{
			{Network: "blue", Name: "vm1", Ofport: 2, LocalVLAN: 1, MAC: "02:00:00:00:00:01",
				IPs: []string{"198.18.0.1", "2001:db8:100::1"}, PortSecurity: true,
				AllowedAddressPairs: []topology.AddressPair{
					{IPAddress: "198.18.0.100"},
					{IPAddress: "198.18.1.0/24", MACAddress: "02:00:00:00:00:99"},
					{IPAddress: "2001:db8:100::100"},
				}},
			{Network: "blue", Name: "appl", Ofport: 3, LocalVLAN: 1, MAC: "02:00:00:00:00:04"},
			{Network: "red", Name: "vm5", Ofport: 4, LocalVLAN: 2, MAC: "02:00:00:00:00:05", IPs: []string{"198.18.0.5"}, PortSecurity: true},
		},
	}
}

// extraFlows are shapes the compiler does not emit today but the codec
// supports: resubmit, whole-field loads, NORMAL, timeouts, masks.
func extraFlows() []flows.Flow {
	return []flows.Flow{
		{Table: 5, Priority: 7, Cookie: 0xb7, Match: flows.Match{InPort: flows.Ptr(uint32(3))},
			Actions: []flows.Action{flows.Resubmit{Table: 20}, flows.Load{Dst: flows.Whole(flows.FieldReg0), Value: 0x1234}}},
		{Table: 6, Priority: flows.DefaultPriority, IdleTimeout: 10, HardTimeout: 300,
			Match: flows.Match{
				VLANTCI: &flows.MaskedU16{Value: 0x0001, Mask: 0x0fff},
				EthSrc:  flows.MaskedMACOf(flows.MAC{2, 0, 0, 0, 0, 9}, flows.MAC{0xff, 0xff, 0xff, 0, 0, 0}),
				TunID:   &flows.MaskedU64{Value: 0x100, Mask: 0xff00},
			},
			Actions: []flows.Action{flows.Normal{}}},
		{Table: 7, Priority: 0, Match: flows.Match{
			EthType: flows.Ptr(flows.EthTypeARP),
			ARPSPA:  &flows.MaskedIPv4{Value: flows.IPv4{198, 18, 0, 0}, Mask: flows.IPv4{255, 255, 255, 0}},
		}, Actions: []flows.Action{flows.Load{Dst: flows.Bitrange(flows.FieldTunID, 8, 16), Value: 0xabcd}, flows.InPort{}}},
		// The shapes of flow-based tunnel ports: tun_src matched, tun_dst
		// set, and learned from tun_src.
		{Table: 8, Priority: 3, Cookie: 0xb7, Match: flows.Match{InPort: flows.Ptr(uint32(2)), TunSrc: &flows.IPv4{192, 0, 2, 2}},
			Actions: []flows.Action{
				flows.LearnFromFlowTunnel(flows.LearnedCookie(topology.VXLAN, 5001, 1)),
				flows.SetIPv4(flows.FieldTunIPv4Dst, flows.IPv4{192, 0, 2, 3}), flows.Output{Port: 2},
			}},
	}
}

// allTestFlows is one bridge's worth of flows: the compiled br-tun plus
// extraFlows (br-int's single flow has the same key as br-tun's table-0
// miss, so it is tested on its own).
func allTestFlows(t *testing.T) []flows.Flow {
	t.Helper()
	set := flows.Compile(testView())
	require.Empty(t, set.Skipped)
	return append(append([]flows.Flow{}, set.BrTun...), extraFlows()...)
}

// flowStatsOf turns an encoded ADD flow mod into the flow-stats entry a
// switch would report for it (same match and instructions).
func flowStatsOf(t *testing.T, fm Message) FlowStats {
	t.Helper()
	body := fm.Body()
	matchLen := int(binary.BigEndian.Uint16(body[42:44]))
	padded := (matchLen + 7) / 8 * 8
	return FlowStats{
		Table:        body[16],
		Cookie:       binary.BigEndian.Uint64(body[0:8]),
		IdleTimeout:  binary.BigEndian.Uint16(body[18:20]),
		HardTimeout:  binary.BigEndian.Uint16(body[20:22]),
		Priority:     binary.BigEndian.Uint16(body[22:24]),
		Match:        body[40+4 : 40+matchLen],
		Instructions: body[40+padded:],
	}
}

func TestEncodeDecodeRoundTripsEveryKindOfFlow(t *testing.T) {
	kinds := map[string]bool{}
	for _, f := range append(allTestFlows(t), flows.Compile(testView()).BrInt...) {
		fm, err := Encode(f, Add)
		require.NoError(t, err, f.String())
		assert.Equal(t, typeFlowMod, fm.Type())
		assert.Equal(t, len(fm), int(binary.BigEndian.Uint16(fm[2:4])))

		got, err := DecodeFlow(flowStatsOf(t, fm))
		require.NoError(t, err, f.String())
		assert.Equal(t, f, got, "round trip of %s", f)
		assert.Equal(t, f.String(), got.String())
		for _, a := range f.Actions {
			kinds[actionKind(a)] = true
		}
	}
	for _, want := range []string{"Output", "InPort", "Normal", "GotoTable", "Resubmit", "PushVLAN", "PopVLAN", "SetField", "Load", "Move", "Learn"} {
		assert.True(t, kinds[want], "test flows include a %s action", want)
	}
}

func actionKind(a flows.Action) string {
	switch a.(type) {
	case flows.Output:
		return "Output"
	case flows.InPort:
		return "InPort"
	case flows.Normal:
		return "Normal"
	case flows.GotoTable:
		return "GotoTable"
	case flows.Resubmit:
		return "Resubmit"
	case flows.PushVLAN:
		return "PushVLAN"
	case flows.PopVLAN:
		return "PopVLAN"
	case flows.SetField:
		return "SetField"
	case flows.Load:
		return "Load"
	case flows.Move:
		return "Move"
	case flows.Learn:
		return "Learn"
	}
	return "other"
}

func TestEncodeCommands(t *testing.T) {
	f := flows.Flow{Table: 3, Priority: 1, Cookie: 0xb71, HardTimeout: 5,
		Match:   flows.Match{TunID: flows.Exact64(1)},
		Actions: []flows.Action{flows.GotoTable{Table: 10}}}

	for cmd, want := range map[Command]struct {
		command uint8
		cookie  uint64
		hard    uint16
		instrs  bool
	}{
		Add:          {of13.FC_ADD, 0xb71, 5, true},
		ModifyStrict: {of13.FC_MODIFY_STRICT, 0, 0, true},
		DeleteStrict: {of13.FC_DELETE_STRICT, 0, 0, false},
	} {
		t.Run(cmd.String(), func(t *testing.T) {
			fm, err := Encode(f, cmd)
			require.NoError(t, err)
			body := fm.Body()
			assert.Equal(t, want.command, body[17])
			assert.Equal(t, want.cookie, binary.BigEndian.Uint64(body[0:8]))
			assert.Zero(t, binary.BigEndian.Uint64(body[8:16]), "cookie mask")
			assert.Equal(t, uint8(3), body[16])
			assert.Equal(t, want.hard, binary.BigEndian.Uint16(body[20:22]))
			assert.Equal(t, uint16(1), binary.BigEndian.Uint16(body[22:24]))
			assert.Equal(t, uint32(0xffffffff), binary.BigEndian.Uint32(body[24:28]), "buffer id")
			assert.Equal(t, uint32(0xffffffff), binary.BigEndian.Uint32(body[28:32]), "out port")
			assert.Equal(t, uint32(0xffffffff), binary.BigEndian.Uint32(body[32:36]), "out group")
			s := flowStatsOf(t, fm)
			assert.Equal(t, want.instrs, len(s.Instructions) > 0)
		})
	}

	del, err := EncodeDeleteByCookie(20, 0xb75<<52, 0xfff<<52)
	require.NoError(t, err)
	body := del.Body()
	assert.Equal(t, uint8(of13.FC_DELETE), body[17])
	assert.Equal(t, uint8(20), body[16])
	assert.Equal(t, uint64(0xb75<<52), binary.BigEndian.Uint64(body[0:8]))
	assert.Equal(t, uint64(0xfff<<52), binary.BigEndian.Uint64(body[8:16]))
	assert.Empty(t, flowStatsOf(t, del).Match, "no match fields")

	_, err = EncodeDeleteByCookie(20, 0, 0)
	assert.Error(t, err, "a zero mask would delete everything")
}

func TestEncodeRefusesWhatCannotBeInstalled(t *testing.T) {
	for name, f := range map[string]flows.Flow{
		"goto not last":  {Actions: []flows.Action{flows.GotoTable{Table: 3}, flows.Output{Port: 1}}},
		"raw action":     {Actions: []flows.Action{flows.Raw{Bytes: []byte{0, 18, 0, 8, 0, 0, 0, 0}}}},
		"nil action":     {Actions: []flows.Action{nil}},
		"load too wide":  {Actions: []flows.Action{flows.Load{Dst: flows.Bitrange(flows.FieldReg0, 0, 8), Value: 0x100}}},
		"bad subfield":   {Actions: []flows.Action{flows.Load{Dst: flows.Bitrange(flows.FieldReg0, 30, 8), Value: 1}}},
		"set_field size": {Actions: []flows.Action{flows.SetField{Field: flows.FieldTunID, Value: []byte{1}}}},
		"move widths":    {Actions: []flows.Action{flows.Move{Src: flows.Whole(flows.FieldEthSrc), Dst: flows.Whole(flows.FieldReg0)}}},
		"bad raw match":  {Match: flows.Match{Raw: []byte{0x80, 0, 0, 8, 1}}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Encode(f, Add)
			assert.Error(t, err)
		})
	}
	_, err := Encode(flows.Flow{}, Command(9))
	assert.Error(t, err)
}

func TestDecodeKeepsUnknownsRaw(t *testing.T) {
	// An in_port match plus an IPv4 destination match (brtun does not model it),
	// and actions brtun does not model: dec_ttl, output to CONTROLLER with
	// a max_len other than brtun's (65535, which decodes as ToController),
	// NXAST_NOTE, a write-actions instruction.
	match := []byte{
		0x80, 0x00, 0x00, 0x04, 0, 0, 0, 5, // OXM in_port=5
		0x80, 0x00, 0x18, 0x04, 198, 18, 0, 1, // OXM ipv4_dst
	}
	decTTL := []byte{0, 24, 0, 8, 0, 0, 0, 0}
	toController := []byte{0, 0, 0, 16, 0xff, 0xff, 0xff, 0xfd, 0x00, 0x80, 0, 0, 0, 0, 0, 0}
	note := []byte{0xff, 0xff, 0, 16, 0, 0, 0x23, 0x20, 0, 8, 'h', 'i', 0, 0, 0, 0}
	popVLAN := []byte{0, 18, 0, 8, 0, 0, 0, 0}
	apply := append([]byte{0, 4, 0, 0, 0, 0, 0, 0}, append(append(append(append([]byte{}, popVLAN...), decTTL...), toController...), note...)...)
	binary.BigEndian.PutUint16(apply[2:4], uint16(len(apply)))
	write := []byte{0, 3, 0, 24, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}

	f, err := DecodeFlow(FlowStats{Table: 4, Priority: 9, Match: match, Instructions: append(apply, write...)})
	require.NoError(t, err)
	assert.Equal(t, uint32(5), *f.Match.InPort)
	assert.Equal(t, match[8:], f.Match.Raw)
	require.Len(t, f.Actions, 5)
	assert.Equal(t, flows.PopVLAN{}, f.Actions[0])
	assert.Equal(t, flows.Raw{Bytes: decTTL}, f.Actions[1])
	assert.Equal(t, flows.Raw{Bytes: toController}, f.Actions[2])
	assert.Equal(t, flows.Raw{Bytes: note}, f.Actions[3])
	assert.Equal(t, flows.Raw{Bytes: write}, f.Actions[4])
	assert.Contains(t, f.String(), "raw_match=")

	// The raw match entry goes back verbatim, so the flow can be deleted.
	fm, err := Encode(f, DeleteStrict)
	require.NoError(t, err)
	assert.Equal(t, match, flowStatsOf(t, fm).Match)
}

func TestDecodeRefusesBrokenStructure(t *testing.T) {
	for name, s := range map[string]FlowStats{
		"match entry past end":   {Match: []byte{0x80, 0, 0, 8, 0, 0}},
		"match header cut":       {Match: []byte{0x80, 0}},
		"odd masked entry":       {Match: []byte{0x80, 0, 0x01, 3, 1, 2, 3}},
		"instruction past end":   {Instructions: []byte{0, 4, 0, 16, 0, 0, 0, 0}},
		"instruction length 4":   {Instructions: []byte{0, 1, 0, 4}},
		"action length 0":        {Instructions: []byte{0, 4, 0, 16, 0, 0, 0, 0, 0, 18, 0, 0, 0, 0, 0, 0}},
		"action past apply":      {Instructions: []byte{0, 4, 0, 16, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 1}},
		"action length not x8":   {Instructions: []byte{0, 4, 0, 16, 0, 0, 0, 0, 0, 18, 0, 4, 0, 0, 0, 0}},
		"instruction header cut": {Instructions: []byte{0, 4}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeFlow(s)
			assert.ErrorIs(t, err, ErrMalformed)
		})
	}
}

func TestDecodeLearnedFlowLoads(t *testing.T) {
	// What OVS reports for a flow created by table 10's learn(): loads as
	// NXAST_REG_LOAD2 entries (a whole vlan_tci, a whole tun_id).
	loadTCI := []byte{0xff, 0xff, 0, 16, 0, 0, 0x23, 0x20, 0, 33, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00}
	loadTun := []byte{0xff, 0xff, 0, 24, 0, 0, 0x23, 0x20, 0, 33, 0x00, 0x01, 0x20, 0x08, 0, 0, 0, 0, 0, 0, 0x13, 0x89, 0, 0}
	// A masked REG_LOAD2: reg0[0..7] = 2.
	loadReg := []byte{0xff, 0xff, 0, 24, 0, 0, 0x23, 0x20, 0, 33, 0x00, 0x01, 0x01, 0x08, 0, 0, 0, 2, 0, 0, 0, 0xff, 0, 0}
	apply := append(append(append([]byte{0, 4, 0, 0, 0, 0, 0, 0}, loadTCI...), loadTun...), loadReg...)
	binary.BigEndian.PutUint16(apply[2:4], uint16(len(apply)))
	f, err := DecodeFlow(FlowStats{Table: 20, Instructions: apply})
	require.NoError(t, err)
	assert.Equal(t, []flows.Action{
		flows.Load{Dst: flows.Whole(flows.FieldVLANTCI), Value: 0},
		flows.Load{Dst: flows.Whole(flows.FieldTunID), Value: 5001},
		flows.Load{Dst: flows.Bitrange(flows.FieldReg0, 0, 8), Value: 2},
	}, f.Actions)
	assert.Equal(t, "load:0->NXM_OF_VLAN_TCI[],load:0x1389->NXM_NX_TUN_ID[],load:0x2->NXM_NX_REG0[0..7]", f.ActionsString())
}
