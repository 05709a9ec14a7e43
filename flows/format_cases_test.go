package flows_test

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
)

// formatCase is a flow and the line OVS 3.1 prints for it in
// `ovs-ofctl -O OpenFlow13 dump-flows --no-stats --no-names`. The lines were
// taken from OVS 3.1.0, and the integration test loads every case into a
// real bridge and checks the dump again.
type formatCase struct {
	name string
	flow flows.Flow
	want string
}

func ip6(s string) flows.IPv6 { return flows.IPv6(netip.MustParseAddr(s).As16()) }

func formatCases() []formatCase {
	m := func(s string) flows.MAC {
		x, err := flows.ParseMAC(s)
		if err != nil {
			panic(err) // constant test input
		}
		return x
	}
	return []formatCase{
		{
			name: "default priority, empty match",
			flow: flows.Flow{Table: 40, Priority: flows.DefaultPriority},
			want: "table=40, actions=drop",
		},
		{
			name: "table 0, default priority, no cookie",
			flow: flows.Flow{Priority: flows.DefaultPriority, Match: flows.Match{InPort: flows.Ptr(uint32(7))}, Actions: []flows.Action{flows.Normal{}}},
			want: "in_port=7 actions=NORMAL",
		},
		{
			name: "many fields in OVS's order",
			flow: flows.Flow{
				Table: 30, Priority: 5, Cookie: 1,
				Match: flows.Match{
					EthType: flows.Ptr(flows.EthTypeARP),
					Reg0:    flows.Exact32(3),
					TunID:   &flows.MaskedU64{Value: 5, Mask: 0xff},
					InPort:  flows.Ptr(uint32(3)),
					VLANTCI: flows.VLANMatch(3),
					EthSrc:  flows.ExactMAC(m("02:00:00:00:00:01")),
					EthDst:  flows.ExactMAC(m("02:00:00:00:00:02")),
					ARPSPA:  flows.ExactIPv4(flows.IPv4{198, 18, 0, 1}),
					ARPTPA:  &flows.MaskedIPv4{Value: flows.IPv4{198, 18, 0, 0}, Mask: flows.IPv4{255, 255, 255, 0}},
					ARPOp:   flows.Ptr(uint16(2)),
				},
				Actions: []flows.Action{
					flows.Normal{},
					flows.Resubmit{Table: 3},
					flows.SetUint(flows.FieldReg0, 0xfff),
					flows.Load{Dst: flows.Whole(flows.FieldReg0), Value: 5},
					flows.Load{Dst: flows.Whole(flows.FieldEthDst), Value: 0xffffffffffff},
				},
			},
			want: "cookie=0x1, table=30, priority=5,arp,reg0=0x3,tun_id=0x5/0xff,in_port=3,dl_vlan=3," +
				"dl_src=02:00:00:00:00:01,dl_dst=02:00:00:00:00:02,arp_spa=198.18.0.1,arp_tpa=198.18.0.0/24,arp_op=2 " +
				"actions=NORMAL,resubmit(,3),set_field:0xfff->reg0,load:0x5->NXM_NX_REG0[],load:0xffffffffffff->NXM_OF_ETH_DST[]",
		},
		{
			name: "vlan_tci forms",
			flow: flows.Flow{Table: 31, Priority: 7, Match: flows.Match{VLANTCI: &flows.MaskedU16{Value: 3, Mask: 0x0fff}}},
			want: "table=31, priority=7,vlan_tci=0x0003/0x0fff actions=drop",
		},
		{
			name: "untagged",
			flow: flows.Flow{Table: 31, Priority: 8, Match: flows.Match{VLANTCI: &flows.MaskedU16{Value: 0, Mask: 0x1000}}},
			want: "table=31, priority=8,vlan_tci=0x0000/0x1000 actions=drop",
		},
		{
			name: "exact tci",
			flow: flows.Flow{Table: 31, Priority: 9, Match: flows.Match{VLANTCI: flows.Exact16(0x1005)}},
			want: "table=31, priority=9,dl_vlan=5,dl_vlan_pcp=0 actions=drop",
		},
		{
			name: "ip shorthand with dl_vlan",
			flow: flows.Flow{Table: 31, Priority: 6, Match: flows.Match{EthType: flows.Ptr(flows.EthTypeIPv4), VLANTCI: &flows.MaskedU16{Value: 0x1003, Mask: 0x1fff}}},
			want: "table=31, priority=6,ip,dl_vlan=3 actions=drop",
		},
		{
			name: "tcp and masked dl_src",
			flow: flows.Flow{Table: 31, Priority: 5, Match: flows.Match{
				EthType: flows.Ptr(flows.EthTypeIPv4), IPProto: flows.Ptr(flows.IPProtoTCP), VLANTCI: flows.VLANMatch(3),
				EthSrc: flows.MaskedMACOf(m("02:00:00:00:00:01"), m("ff:ff:ff:00:00:00")),
			}},
			want: "table=31, priority=5,tcp,dl_vlan=3,dl_src=02:00:00:00:00:00/ff:ff:ff:00:00:00 actions=drop",
		},
		{
			name: "igmp",
			flow: flows.Flow{Table: 31, Priority: 14, Match: flows.Match{EthType: flows.Ptr(flows.EthTypeIPv4), IPProto: flows.Ptr(uint8(2))}},
			want: "table=31, priority=14,ip,nw_proto=2 actions=drop",
		},
		{
			name: "icmp",
			flow: flows.Flow{Table: 31, Priority: 17, Match: flows.Match{EthType: flows.Ptr(flows.EthTypeIPv4), IPProto: flows.Ptr(flows.IPProtoICMP)}},
			want: "table=31, priority=17,icmp actions=drop",
		},
		{
			name: "udp",
			flow: flows.Flow{Table: 31, Priority: 18, Match: flows.Match{EthType: flows.Ptr(flows.EthTypeIPv4), IPProto: flows.Ptr(flows.IPProtoUDP)}},
			want: "table=31, priority=18,udp actions=drop",
		},
		{
			name: "sctp",
			flow: flows.Flow{Table: 31, Priority: 15, Match: flows.Match{EthType: flows.Ptr(flows.EthTypeIPv4), IPProto: flows.Ptr(uint8(132))}},
			want: "table=31, priority=15,sctp actions=drop",
		},
		{
			name: "sctp6",
			flow: flows.Flow{Table: 31, Priority: 16, Match: flows.Match{EthType: flows.Ptr(flows.EthTypeIPv6), IPProto: flows.Ptr(uint8(132))}},
			want: "table=31, priority=16,sctp6 actions=drop",
		},
		{
			name: "other dl_type",
			flow: flows.Flow{Table: 31, Priority: 10, Match: flows.Match{EthType: flows.Ptr(uint16(0x1234))}},
			want: "table=31, priority=10,dl_type=0x1234 actions=drop",
		},
		{
			name: "udp6",
			flow: flows.Flow{Table: 31, Priority: 12, Match: flows.Match{EthType: flows.Ptr(flows.EthTypeIPv6), IPProto: flows.Ptr(flows.IPProtoUDP)}},
			want: "table=31, priority=12,udp6 actions=drop",
		},
		{
			name: "ipv6 with another protocol",
			flow: flows.Flow{Table: 31, Priority: 13, Match: flows.Match{EthType: flows.Ptr(flows.EthTypeIPv6), IPProto: flows.Ptr(uint8(50))}},
			want: "table=31, priority=13,ipv6,nw_proto=50 actions=drop",
		},
		{
			name: "zero values print as 0",
			flow: flows.Flow{Table: 32, Priority: 1, Match: flows.Match{Reg0: flows.Exact32(0), TunID: flows.Exact64(0)},
				Actions: []flows.Action{flows.SetTunID(0), flows.Load{Dst: flows.Bitrange(flows.FieldReg0, 5, 1), Value: 1}}},
			want: "table=32, priority=1,reg0=0,tun_id=0 actions=set_field:0->tun_id,load:0x1->NXM_NX_REG0[5]",
		},
		{
			name: "wide tun_id, non-CIDR arp mask",
			flow: flows.Flow{Table: 32, Priority: 2, Match: flows.Match{
				EthType: flows.Ptr(flows.EthTypeARP), TunID: flows.Exact64(0xffffffffff),
				ARPSPA: &flows.MaskedIPv4{Value: flows.IPv4{198, 0, 0, 0}, Mask: flows.IPv4{255, 0, 255, 0}},
			}},
			want: "table=32, priority=2,arp,tun_id=0xffffffffff,arp_spa=198.0.0.0/255.0.255.0 actions=drop",
		},
		{
			name: "moves, pushes and reserved ports",
			flow: flows.Flow{Table: 33, Priority: 3, Cookie: 0xb710000000000000,
				Match: flows.Match{InPort: flows.Ptr(flows.PortLocal)},
				Actions: []flows.Action{
					flows.PushVLAN{EtherType: 0x88a8},
					flows.Move{Src: flows.Bitrange(flows.FieldReg0, 0, 8), Dst: flows.Bitrange(flows.FieldTunID, 8, 8)},
					flows.SetMAC(flows.FieldEthDst, m("02:00:00:00:00:09")),
					flows.Output{Port: flows.PortLocal},
					flows.InPort{},
					flows.Output{Port: 65280 - 1},
					flows.GotoTable{Table: 40},
				}},
			want: "cookie=0xb710000000000000, table=33, priority=3,in_port=LOCAL actions=push_vlan:0x88a8," +
				"move:NXM_NX_REG0[0..7]->NXM_NX_TUN_ID[8..15],set_field:02:00:00:00:00:09->eth_dst,LOCAL,IN_PORT,output:65279,goto_table:40",
		},
		{
			name: "ipv6 set_field and nd_sll",
			flow: flows.Flow{Table: 34, Priority: 4, Match: flows.Match{
				EthType: flows.Ptr(flows.EthTypeIPv6), IPProto: flows.Ptr(flows.IPProtoICMPv6),
				ICMPv6Type: flows.Ptr(uint8(135)), NDTarget: flows.Ptr(ip6("2001:db8:100::5")),
			}, Actions: []flows.Action{
				flows.SetIPv6(flows.FieldIPv6Dst, ip6("2001:db8:100::6")),
				flows.SetMAC(flows.FieldNDSLL, m("02:00:00:00:00:0a")),
			}},
			want: "table=34, priority=4,icmp6,icmp_type=135,nd_target=2001:db8:100::5 actions=set_field:2001:db8:100::6->ipv6_dst,set_field:02:00:00:00:00:0a->nd_sll",
		},
		{
			name: "learn with defaults and immediate matches",
			flow: flows.Flow{Table: 35, Priority: 1, Actions: []flows.Action{flows.Learn{
				Table: 36, IdleTimeout: 10, Priority: flows.DefaultPriority,
				Specs: []flows.LearnSpec{
					{Kind: flows.LearnMatchValue, Dst: flows.Bitrange(flows.FieldReg0, 0, 8), Value: 5},
					{Kind: flows.LearnMatchValue, Dst: flows.Whole(flows.FieldTunID), Value: 0x64},
					{Kind: flows.LearnMatchField, Dst: flows.Bitrange(flows.FieldReg0, 8, 8), Src: flows.Bitrange(flows.FieldTunID, 0, 8)},
					{Kind: flows.LearnLoadValue, Dst: flows.Bitrange(flows.FieldReg0, 16, 8), Value: 0x2a},
				},
			}}},
			want: "table=35, priority=1 actions=learn(table=36,idle_timeout=10,NXM_NX_REG0[0..7]=0x5,tun_id=0x64," +
				"NXM_NX_REG0[8..15]=NXM_NX_TUN_ID[0..7],load:0x2a->NXM_NX_REG0[16..23])",
		},
		{
			name: "flow timeouts",
			flow: flows.Flow{Table: 36, Priority: 1, IdleTimeout: 10, HardTimeout: 300, Cookie: 0xb751001000001389,
				Match:   flows.Match{VLANTCI: &flows.MaskedU16{Value: 1, Mask: 0x0fff}, EthDst: flows.ExactMAC(m("62:13:fd:12:5e:dd"))},
				Actions: []flows.Action{flows.Load{Dst: flows.Whole(flows.FieldVLANTCI)}, flows.Load{Dst: flows.Whole(flows.FieldTunID), Value: 1}, flows.Output{Port: 2}}},
			want: "cookie=0xb751001000001389, table=36, idle_timeout=10, hard_timeout=300, priority=1,vlan_tci=0x0001/0x0fff,dl_dst=62:13:fd:12:5e:dd " +
				"actions=load:0->NXM_OF_VLAN_TCI[],load:0x1->NXM_NX_TUN_ID[],output:2",
		},
	}
}

func TestFlowStringMatchesOVS(t *testing.T) {
	for _, tc := range formatCases() {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.flow.String())
		})
	}
}

func TestStringOfMalformedFlowsDoesNotPanic(t *testing.T) {
	// A decoder may hand over values no compiler would make; printing them
	// must not panic (they never equal a desired flow anyway).
	f := flows.Flow{
		Table: 9, Priority: 1,
		Match: flows.Match{Raw: []byte{0xde, 0xad}},
		Actions: []flows.Action{
			nil,
			flows.SetField{Field: flows.Field(200), Value: []byte{1, 2}},
			flows.SetField{Field: flows.FieldEthSrc, Value: []byte{1}},
			flows.Load{Dst: flows.Subfield{Field: 0, Offset: 3, Bits: 0}},
			flows.Move{},
			flows.Learn{Specs: []flows.LearnSpec{{Kind: 99}, {Kind: flows.LearnMatchValue}, {Kind: flows.LearnMatchField}}},
			flows.Raw{Bytes: []byte{0xbe, 0xef}},
		},
	}
	var s string
	require.NotPanics(t, func() { s = f.String() })
	assert.Equal(t, "table=9, priority=1,raw_match=0xdead actions=<nil>,set_field:0x102->field200,set_field:0x1->eth_src,"+
		"load:0->FIELD0[3..2],move:FIELD0[]->FIELD0[],learn(table=0,priority=0,unknown_spec(99),field0=0,FIELD0[]),raw_action(0xbeef)", s)
	require.Error(t, flows.ValidateFlows(flows.BrTun, []flows.Flow{f}))
}
