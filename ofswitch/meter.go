package ofswitch

import (
	"context"
	"encoding/binary"
	"fmt"
)

// OpenFlow 1.3 meter constants brtun uses.
const (
	typeMeterMod            uint8  = 29
	multipartTypeMeterConf  uint16 = 10
	meterCommandAdd         uint16 = 0
	meterCommandModify      uint16 = 1
	meterCommandDelete      uint16 = 2
	meterBandDrop           uint16 = 1
	MeterFlagPktps          uint16 = 1 << 1 // rates in packets per second
	MeterFlagBurst          uint16 = 1 << 2 // the band's burst size applies
	meterAll                uint32 = 0xffffffff
	meterConfigFixedLen            = 8
	meterBandLen                   = 16
	meterConfigRequestLen          = 8
	multipartRequestHeadLen        = 8
)

// Meter is an OpenFlow meter with one drop band: packets over Rate (per
// second, with MeterFlagPktps) beyond a burst of Burst are dropped.
type Meter struct {
	ID    uint32
	Flags uint16
	Rate  uint32
	Burst uint32
}

// buildMeterMod encodes an OFPT_METER_MOD with one drop band.
func buildMeterMod(cmd uint16, m Meter) Message {
	b := make([]byte, 8, 8+meterBandLen)
	binary.BigEndian.PutUint16(b[0:2], cmd)
	binary.BigEndian.PutUint16(b[2:4], m.Flags)
	binary.BigEndian.PutUint32(b[4:8], m.ID)
	b = binary.BigEndian.AppendUint16(b, meterBandDrop)
	b = binary.BigEndian.AppendUint16(b, meterBandLen)
	b = binary.BigEndian.AppendUint32(b, m.Rate)
	b = binary.BigEndian.AppendUint32(b, m.Burst)
	b = append(b, 0, 0, 0, 0)
	return newMessage(typeMeterMod, b)
}

// buildMeterConfigRequest asks for the configuration of every meter.
func buildMeterConfigRequest() Message {
	b := make([]byte, multipartRequestHeadLen+meterConfigRequestLen)
	binary.BigEndian.PutUint16(b[0:2], multipartTypeMeterConf)
	binary.BigEndian.PutUint32(b[8:12], meterAll)
	return newMessage(typeMultipartRequest, b)
}

// parseMeterConfig reads OFPMP_METER_CONFIG entries; a meter's first drop
// band gives Rate and Burst.
func parseMeterConfig(b []byte) ([]Meter, error) {
	var out []Meter
	for off := 0; off < len(b); {
		if len(b)-off < meterConfigFixedLen {
			return nil, fmt.Errorf("%w: meter config at offset %d: %d bytes left", ErrMalformed, off, len(b)-off)
		}
		length := int(binary.BigEndian.Uint16(b[off:]))
		if length < meterConfigFixedLen || length > len(b)-off {
			return nil, fmt.Errorf("%w: meter config of length %d at offset %d", ErrMalformed, length, off)
		}
		e := b[off : off+length]
		off += length
		m := Meter{Flags: binary.BigEndian.Uint16(e[2:4]), ID: binary.BigEndian.Uint32(e[4:8])}
		bands := e[meterConfigFixedLen:]
		for len(bands) > 0 {
			if len(bands) < 4 {
				return nil, fmt.Errorf("%w: meter band header of %d bytes", ErrMalformed, len(bands))
			}
			typ, blen := binary.BigEndian.Uint16(bands[0:2]), int(binary.BigEndian.Uint16(bands[2:4]))
			if blen < 4 || blen > len(bands) {
				return nil, fmt.Errorf("%w: meter band of length %d", ErrMalformed, blen)
			}
			if typ == meterBandDrop && blen >= 12 && m.Rate == 0 {
				m.Rate = binary.BigEndian.Uint32(bands[4:8])
				m.Burst = binary.BigEndian.Uint32(bands[8:12])
			}
			bands = bands[blen:]
		}
		out = append(out, m)
	}
	return out, nil
}

// DumpMeters returns the configuration of every meter of the switch.
func (c *Conn) DumpMeters(ctx context.Context) ([]Meter, error) {
	cl, err := c.roundTrip(ctx, buildMeterConfigRequest(), typeMultipartReply, true)
	if err != nil {
		return nil, fmt.Errorf("dump meters: %w", err)
	}
	var out []Meter
	for _, part := range cl.parts {
		r, err := parseMultipartReply(part)
		if err == nil && r.Type != multipartTypeMeterConf {
			err = fmt.Errorf("%w: multipart reply of type %d to a meter-config request", ErrMalformed, r.Type)
		}
		var ms []Meter
		if err == nil {
			ms, err = parseMeterConfig(r.Body)
		}
		if err != nil {
			return nil, fmt.Errorf("dump meters: %w", err)
		}
		out = append(out, ms...)
	}
	return out, nil
}

// SetMeter adds (add) or modifies a meter and waits for the switch to
// accept it (a barrier); a refusal is the error.
func (c *Conn) SetMeter(ctx context.Context, m Meter, add bool) error {
	cmd := meterCommandModify
	if add {
		cmd = meterCommandAdd
	}
	if err := c.SendBatch(ctx, []Message{buildMeterMod(cmd, m)}); err != nil {
		return fmt.Errorf("meter %d: %w", m.ID, err)
	}
	return nil
}

// DeleteMeter deletes meter id and waits for the switch to accept it (a
// barrier). The switch also deletes every flow that still names it.
func (c *Conn) DeleteMeter(ctx context.Context, id uint32) error {
	if err := c.SendBatch(ctx, []Message{buildMeterMod(meterCommandDelete, Meter{ID: id})}); err != nil {
		return fmt.Errorf("delete meter %d: %w", id, err)
	}
	return nil
}
