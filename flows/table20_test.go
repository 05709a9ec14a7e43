package flows

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLearnedShadow(t *testing.T) {
	mac, err := ParseMAC("02:00:00:00:0b:01")
	require.NoError(t, err)
	registered := Flow{
		Table: TableUnicast, Priority: 2, Cookie: PortCookie("blue", "x"),
		Match:   Match{VLANTCI: VLANMatch(5), EthDst: ExactMAC(mac)},
		Actions: []Action{PopVLAN{}, SetTunID(5001), Output{Port: 7}},
	}
	shadow, ok := LearnedShadow(registered)
	require.True(t, ok)
	// learn()'s NXM_OF_VLAN_TCI[0..11] and NXM_OF_ETH_DST[] give this
	// match, as ovs-ofctl dumps learned entries.
	assert.Equal(t, "table=20, priority=1,vlan_tci=0x0005/0x0fff,dl_dst=02:00:00:00:0b:01 actions=drop", shadow.String())

	for name, f := range map[string]Flow{
		"learned entry": shadow,
		"miss flow":     {Table: TableUnicast, Priority: 0, Actions: []Action{GotoTable{Table: TableFlood}}},
		"another table": {Table: TableFlood, Priority: 2, Match: registered.Match},
		"masked dl_dst": {Table: TableUnicast, Priority: 2, Match: Match{VLANTCI: VLANMatch(5), EthDst: MaskedMACOf(mac, MAC{0xff})}},
		"no VLAN match": {Table: TableUnicast, Priority: 2, Match: Match{EthDst: ExactMAC(mac)}},
	} {
		_, ok := LearnedShadow(f)
		assert.False(t, ok, name)
	}
}
