package ofswitch

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// meterStatsEntry encodes one OFPMP_METER entry with the given band drops.
func meterStatsEntry(id uint32, in uint64, bands ...uint64) []byte {
	b := make([]byte, meterStatsFixedLen)
	binary.BigEndian.PutUint32(b[0:4], id)
	binary.BigEndian.PutUint16(b[4:6], uint16(meterStatsFixedLen+meterBandStatsLen*len(bands)))
	binary.BigEndian.PutUint32(b[12:16], 1) // flow_count
	binary.BigEndian.PutUint64(b[16:24], in)
	binary.BigEndian.PutUint64(b[24:32], in*60)
	for _, d := range bands {
		b = binary.BigEndian.AppendUint64(b, d)
		b = binary.BigEndian.AppendUint64(b, d*60)
	}
	return b
}

func TestParseMeterStats(t *testing.T) {
	body := append(meterStatsEntry(1, 10, 2), meterStatsEntry(0x10004, 1000, 600)...)
	body = append(body, meterStatsEntry(7, 5)...) // no band
	got, err := parseMeterStats(body)
	require.NoError(t, err)
	assert.Equal(t, []MeterStats{{ID: 1, In: 10, Dropped: 2}, {ID: 0x10004, In: 1000, Dropped: 600}, {ID: 7, In: 5}}, got)

	for name, bad := range map[string][]byte{
		"short":           meterStatsEntry(1, 1, 1)[:30],
		"length too long": func() []byte { b := meterStatsEntry(1, 1, 1); binary.BigEndian.PutUint16(b[4:6], 80); return b }(),
		"length not bands": func() []byte {
			b := append(meterStatsEntry(1, 1, 1), 0, 0, 0, 0)
			binary.BigEndian.PutUint16(b[4:6], meterStatsFixedLen+meterBandStatsLen+4)
			return b
		}(),
	} {
		_, err := parseMeterStats(bad)
		assert.ErrorIs(t, err, ErrMalformed, name)
	}
	req := buildMeterStatsRequest()
	assert.Equal(t, typeMultipartRequest, req.Type())
	assert.Equal(t, multipartTypeMeterStats, binary.BigEndian.Uint16(req.Body()[0:2]))
	assert.Equal(t, meterAll, binary.BigEndian.Uint32(req.Body()[8:12]))
}
