package ofswitch

import (
	"context"
	"encoding/binary"
	"fmt"
)

// OpenFlow 1.3 meter statistics (OFPMP_METER).
const multipartTypeMeterStats uint16 = 9

// Sizes of an OFPMP_METER entry's fixed part and of one band's counters.
const (
	meterStatsFixedLen = 40
	meterBandStatsLen  = 16
)

// MeterStats are one meter's counters: the packets that reached it and
// those its first band dropped.
type MeterStats struct {
	ID      uint32
	In      uint64 // packet_in_count
	Dropped uint64 // the first band's packet_band_count
}

// buildMeterStatsRequest asks for the statistics of every meter.
func buildMeterStatsRequest() Message {
	b := make([]byte, multipartRequestHeadLen+meterConfigRequestLen)
	binary.BigEndian.PutUint16(b[0:2], multipartTypeMeterStats)
	binary.BigEndian.PutUint32(b[8:12], meterAll)
	return newMessage(typeMultipartRequest, b)
}

// parseMeterStats reads OFPMP_METER entries.
func parseMeterStats(b []byte) ([]MeterStats, error) {
	var out []MeterStats
	for off := 0; off < len(b); {
		if len(b)-off < meterStatsFixedLen {
			return nil, fmt.Errorf("%w: meter stats entry of %d bytes", ErrMalformed, len(b)-off)
		}
		e := b[off:]
		n := int(binary.BigEndian.Uint16(e[4:6]))
		if n < meterStatsFixedLen || n > len(e) || (n-meterStatsFixedLen)%meterBandStatsLen != 0 {
			return nil, fmt.Errorf("%w: meter stats entry length %d", ErrMalformed, n)
		}
		s := MeterStats{ID: binary.BigEndian.Uint32(e[0:4]), In: binary.BigEndian.Uint64(e[16:24])}
		if n > meterStatsFixedLen {
			s.Dropped = binary.BigEndian.Uint64(e[meterStatsFixedLen : meterStatsFixedLen+8])
		}
		out = append(out, s)
		off += n
	}
	return out, nil
}

// DumpMeterStats returns the statistics of every meter of the switch.
func (c *Conn) DumpMeterStats(ctx context.Context) ([]MeterStats, error) {
	cl, err := c.roundTrip(ctx, buildMeterStatsRequest(), typeMultipartReply, true)
	if err != nil {
		return nil, fmt.Errorf("dump meter stats: %w", err)
	}
	var out []MeterStats
	for _, part := range cl.parts {
		r, err := parseMultipartReply(part)
		if err == nil && r.Type != multipartTypeMeterStats {
			err = fmt.Errorf("%w: multipart reply of type %d to a meter-stats request", ErrMalformed, r.Type)
		}
		var ms []MeterStats
		if err == nil {
			ms, err = parseMeterStats(r.Body)
		}
		if err != nil {
			return nil, fmt.Errorf("dump meter stats: %w", err)
		}
		out = append(out, ms...)
	}
	return out, nil
}
