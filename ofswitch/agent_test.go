package ofswitch

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
)

// The switch-side codec reads what the controller side encodes, and the
// flow-stats entries it writes decode back to the same flows.
func TestSwitchSideCodecRoundTrips(t *testing.T) {
	f := flows.Flow{Table: 21, Priority: 2, Cookie: 0xb7,
		Match:   flows.Match{VLANTCI: &flows.MaskedU16{Value: 0x1001, Mask: 0x1fff}, EthDst: &flows.MaskedMAC{Value: flows.MAC{2, 0, 0, 0, 0, 1}, Mask: flows.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}},
		Actions: []flows.Action{flows.PopVLAN{}, flows.SetField{Field: flows.FieldTunID, Value: []byte{0, 0, 0, 0, 0, 0, 0x13, 0x89}}, flows.Output{Port: 2}}}
	m, err := Encode(f, Add)
	require.NoError(t, err)
	fm, err := ParseFlowMod(m)
	require.NoError(t, err)
	assert.Equal(t, FlowAdd, fm.Command)
	assert.Equal(t, f.Cookie, fm.Cookie)
	entries, err := MatchEntries(fm.Match)
	require.NoError(t, err)
	assert.Len(t, entries, 2)

	body := AppendFlowStats(nil, FlowStats{Table: fm.Table, Priority: fm.Priority, Cookie: fm.Cookie, Match: fm.Match, Instructions: fm.Instructions})
	stats, err := ParseFlowStatsBody(body)
	require.NoError(t, err)
	require.Len(t, stats, 1)
	got, err := DecodeFlow(stats[0])
	require.NoError(t, err)
	assert.Equal(t, f.String(), got.String())

	reply := MultipartReply(7, MultipartFlow, true, body)
	mp, err := parseMultipartReply(reply)
	require.NoError(t, err)
	assert.True(t, mp.More)
	assert.Equal(t, uint32(7), reply.Xid())

	_, err = ParseFlowMod(m[:40])
	assert.ErrorIs(t, err, ErrMalformed, "a truncated flow mod is malformed")
}
