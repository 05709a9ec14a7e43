package flows_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/topology"
)

func TestValidateAcceptsCompiledSets(t *testing.T) {
	for _, c := range []cluster{oneNetwork(), sharedSegment(), partialPeers(), remotePorts()} {
		for _, h := range c.hosts {
			require.NoError(t, flows.Validate(flows.Compile(c.view(h))), "host %s", h)
		}
	}
	require.NoError(t, flows.Validate(flows.Compile(flows.View{})), "an empty view still has a valid pipeline")
}

func TestValidateRejects(t *testing.T) {
	net := flows.NetworkCookie(topology.VXLAN, 1)
	cases := []struct {
		name string
		flow flows.Flow
		want string
	}{
		{
			name: "undeclared table",
			flow: flows.Flow{Table: 4, Priority: 1, Cookie: net},
			want: "table 4 is not declared",
		},
		{
			name: "undeclared priority",
			flow: flows.Flow{Table: flows.TableTunnelIn, Priority: 7, Cookie: net, Match: flows.Match{TunID: flows.Exact64(9)}},
			want: "priority 7 not declared",
		},
		{
			name: "learned priority in table 20 is for learn() only",
			flow: flows.Flow{Table: flows.TableUnicast, Priority: 1, Cookie: net, Match: flows.Match{EthDst: flows.ExactMAC(flows.MAC{2})}},
			want: "priority 1 not declared",
		},
		{
			name: "undeclared match field",
			flow: flows.Flow{Table: flows.TableTunnelIn, Priority: 1, Cookie: net, Match: flows.Match{InPort: flows.Ptr(uint32(2))}},
			want: "match field in_port not declared",
		},
		{
			name: "undeclared goto",
			flow: flows.Flow{Table: flows.TableDispatch, Priority: 1, Cookie: net, Match: flows.Match{InPort: flows.Ptr(uint32(9))},
				Actions: []flows.Action{flows.GotoTable{Table: flows.TableLearn}}},
			want: "goto_table:10 not declared",
		},
		{
			name: "goto not last",
			flow: flows.Flow{Table: flows.TableDispatch, Priority: 1, Cookie: net, Match: flows.Match{InPort: flows.Ptr(uint32(9))},
				Actions: []flows.Action{flows.GotoTable{Table: flows.TableTunnelIn}, flows.Output{Port: 3}}},
			want: "goto_table must be the last action",
		},
		{
			name: "undeclared resubmit",
			flow: flows.Flow{Table: flows.TableTunnelIn, Priority: 1, Cookie: net, Match: flows.Match{TunID: flows.Exact64(9)},
				Actions: []flows.Action{flows.Resubmit{Table: flows.TableDispatch}}},
			want: "resubmit to 0 not declared",
		},
		{
			name: "non-canonical mask",
			flow: flows.Flow{Table: flows.TableTunnelIn, Priority: 1, Cookie: net,
				Match: flows.Match{Reg0: &flows.MaskedU32{Value: 0x101, Mask: 0xff}, TunID: flows.Exact64(9)}},
			want: "reg0 0x101/0xff not canonical",
		},
		{
			name: "zero mask",
			flow: flows.Flow{Table: flows.TableOutbound, Priority: 1, Cookie: net, Match: flows.Match{EthDst: &flows.MaskedMAC{}},
				Actions: []flows.Action{flows.GotoTable{Table: flows.TableUnicast}}},
			want: "dl_dst 00:00:00:00:00:00/00:00:00:00:00:00 not canonical",
		},
		{
			name: "ARP field without arp",
			flow: flows.Flow{Table: flows.TableFlood, Priority: 2, Cookie: net, Match: flows.Match{ARPTPA: flows.ExactIPv4(flows.IPv4{198, 18, 0, 1})}},
			want: "ARP fields need arp",
		},
		{
			name: "nd_tll in a solicitation flow (OVS refuses it)",
			flow: flows.Flow{Table: flows.TableFlood, Priority: 2, Cookie: net, Match: flows.Match{
				EthType: flows.Ptr(flows.EthTypeIPv6), IPProto: flows.Ptr(flows.IPProtoICMPv6),
				ICMPv6Type: flows.Ptr(uint8(135)), NDTarget: flows.Ptr(flows.IPv6{0x20, 1}),
			}, Actions: []flows.Action{flows.SetMAC(flows.FieldNDTLL, flows.MAC{2})}},
			want: "set_field nd_tll: prerequisites not met",
		},
		{
			name: "set_field value of the wrong size",
			flow: flows.Flow{Table: flows.TableTunnelIn, Priority: 1, Cookie: net, Match: flows.Match{TunID: flows.Exact64(9)},
				Actions: []flows.Action{flows.SetField{Field: flows.FieldTunID, Value: []byte{1}}}},
			want: "value has 1 bytes, want 8",
		},
		{
			name: "load does not fit",
			flow: flows.Flow{Table: flows.TableDispatch, Priority: 1, Cookie: net, Match: flows.Match{InPort: flows.Ptr(uint32(9))},
				Actions: []flows.Action{flows.Load{Dst: flows.TunnelTypeReg(), Value: 0x100}}},
			want: "load value 0x100 does not fit 8 bits",
		},
		{
			name: "move widths differ",
			flow: flows.Flow{Table: flows.TableDispatch, Priority: 1, Cookie: net, Match: flows.Match{InPort: flows.Ptr(uint32(9))},
				Actions: []flows.Action{flows.Move{Src: flows.Whole(flows.FieldEthSrc), Dst: flows.Whole(flows.FieldReg0)}}},
			want: "move of 48 bits into 32 bits",
		},
		{
			name: "output to a reserved port number",
			flow: flows.Flow{Table: flows.TableDispatch, Priority: 1, Cookie: net, Match: flows.Match{InPort: flows.Ptr(uint32(9))},
				Actions: []flows.Action{flows.Output{Port: flows.PortInPort}}},
			want: "use an ordinary port",
		},
		{
			name: "raw action",
			flow: flows.Flow{Table: flows.TableDispatch, Priority: 1, Cookie: net, Match: flows.Match{InPort: flows.Ptr(uint32(9))},
				Actions: []flows.Action{flows.Raw{Bytes: []byte{1, 2}}}},
			want: "raw action bytes",
		},
		{
			name: "raw match",
			flow: flows.Flow{Table: flows.TableDispatch, Priority: 1, Cookie: net, Match: flows.Match{InPort: flows.Ptr(uint32(9)), Raw: []byte{1}}},
			want: "raw match bytes",
		},
		{
			name: "foreign cookie",
			flow: flows.Flow{Table: flows.TableDispatch, Priority: 1, Cookie: 0x1234, Match: flows.Match{InPort: flows.Ptr(uint32(9))}},
			want: "cookie 0x1234 is not brtun's",
		},
		{
			name: "learned cookie on a compiled flow",
			flow: flows.Flow{Table: flows.TableDispatch, Priority: 1, Cookie: flows.LearnedCookie(topology.GRE, 1, 1), Match: flows.Match{InPort: flows.Ptr(uint32(9))}},
			want: "is a learned cookie",
		},
		{
			name: "learn into an undeclared table with a plain cookie",
			flow: flows.Flow{Table: flows.TableLearn, Priority: 1, Cookie: net, Match: flows.Match{VLANTCI: flows.VLANMatch(9)},
				Actions: []flows.Action{flows.Learn{Table: flows.TableFlood, Cookie: net, Specs: flows.LearnFromTunnel(0).Specs}}},
			want: "learn into table 21 not declared",
		},
		{
			name: "learn spec widths differ",
			flow: flows.Flow{Table: flows.TableLearn, Priority: 1, Cookie: net, Match: flows.Match{VLANTCI: flows.VLANMatch(9)},
				Actions: []flows.Action{flows.Learn{Table: flows.TableUnicast, Cookie: flows.LearnedCookie(topology.VXLAN, 1, 9), Specs: []flows.LearnSpec{
					{Kind: flows.LearnMatchField, Dst: flows.Whole(flows.FieldEthDst), Src: flows.Whole(flows.FieldTunID)},
				}}}},
			want: "learn spec 0: 64 source bits for 48 destination bits",
		},
		{
			name: "wrong miss flow",
			flow: flows.Flow{Table: flows.TableUnicast, Priority: 0, Cookie: flows.PipelineCookie()},
			want: "priority 0 is the table miss",
		},
		{
			name: "timeouts on a compiled flow",
			flow: flows.Flow{Table: flows.TableDispatch, Priority: 1, Cookie: net, HardTimeout: 5, Match: flows.Match{InPort: flows.Ptr(uint32(9))}},
			want: "timeouts are only for learned flows",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			set := flows.Compile(oneNetwork().view("h1"))
			if tc.flow.Priority == 0 {
				// replace the table's miss rather than adding a second one
				for i, f := range set.BrTun {
					if f.Table == tc.flow.Table && f.Priority == 0 {
						set.BrTun[i] = tc.flow
					}
				}
			} else {
				set.BrTun = append(set.BrTun, tc.flow)
			}
			err := flows.Validate(set)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestValidateRejectsSetProblems(t *testing.T) {
	base := func() flows.FlowSet { return flows.Compile(oneNetwork().view("h1")) }

	dup := base()
	dup.BrTun = append(dup.BrTun, dup.BrTun[0])
	assert.ErrorContains(t, flows.Validate(dup), "another flow has the same table, priority and match")

	noMiss := base()
	for i, f := range noMiss.BrTun {
		if f.Table == flows.TableFlood && f.Priority == 0 {
			noMiss.BrTun = append(noMiss.BrTun[:i], noMiss.BrTun[i+1:]...)
			break
		}
	}
	assert.ErrorContains(t, flows.Validate(noMiss), "br-tun table 21 (flood): 0 miss flows, want 1")

	noNormal := base()
	noNormal.BrInt = nil
	assert.ErrorContains(t, flows.Validate(noNormal), "br-int table 30 (forward): 0 miss flows, want 1")

	wrongBridge := base()
	wrongBridge.BrInt = append(wrongBridge.BrInt, flows.Flow{Table: flows.TableNDReply, Priority: 1, Cookie: flows.PipelineCookie()})
	assert.ErrorContains(t, flows.Validate(wrongBridge), "br-int: ")

	badCookies := base()
	badCookies.LearnedCookies = []uint64{flows.PipelineCookie()}
	assert.ErrorContains(t, flows.Validate(badCookies), "is not a learned cookie")
}

// TestValidateKeyedFlowsIsValidateFlows: given the flows' keys,
// ValidateKeyedFlows finds what ValidateFlows finds, a duplicate included,
// and ValidateLearnedCookies what Validate finds in the learned cookies.
func TestValidateKeyedFlowsIsValidateFlows(t *testing.T) {
	keysOf := func(fs []flows.Flow) []flows.Key {
		keys := make([]flows.Key, len(fs))
		for i, f := range fs {
			keys[i] = f.Key()
		}
		return keys
	}
	set := flows.Compile(oneNetwork().view("h1"))
	require.NoError(t, flows.ValidateKeyedFlows(flows.BrTun, set.BrTun, keysOf(set.BrTun)), "control: a compiled set is valid")
	dup := append(set.BrTun[:len(set.BrTun):len(set.BrTun)], set.BrTun[0])
	want := flows.ValidateFlows(flows.BrTun, dup)
	require.ErrorContains(t, want, "another flow has the same table, priority and match")
	assert.Equal(t, want.Error(), flows.ValidateKeyedFlows(flows.BrTun, dup, keysOf(dup)).Error())
	assert.ErrorContains(t, flows.ValidateKeyedFlows(flows.BrTun, dup, keysOf(set.BrTun)), "keys for")

	require.NoError(t, flows.ValidateLearnedCookies(set.LearnedCookies), "control: compiled cookies are valid")
	assert.ErrorContains(t, flows.ValidateLearnedCookies([]uint64{flows.PipelineCookie()}), "is not a learned cookie")
}
