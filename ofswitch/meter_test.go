package ofswitch

import (
	"context"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
)

func TestMeterModAndConfigRoundTrip(t *testing.T) {
	m := Meter{ID: 1, Flags: MeterFlagPktps | MeterFlagBurst, Rate: 2000, Burst: 500}
	mod := buildMeterMod(meterCommandAdd, m)
	assert.Equal(t, typeMeterMod, mod.Type())
	assert.Equal(t, 8+16, len(mod.Body()))
	// A meter config entry is the meter_mod body less the command, with a
	// length in its place.
	entry := append([]byte(nil), mod.Body()...)
	binary.BigEndian.PutUint16(entry[0:2], uint16(len(entry)))
	got, err := parseMeterConfig(entry)
	require.NoError(t, err)
	assert.Equal(t, []Meter{m}, got)
	for n := 1; n < len(entry); n++ {
		short := append([]byte(nil), entry[:n]...)
		if n >= 2 {
			binary.BigEndian.PutUint16(short[0:2], uint16(n))
		}
		_, err := parseMeterConfig(short)
		if n != meterConfigFixedLen { // a meter without bands is well-formed
			assert.Error(t, err, "%d bytes", n)
		}
	}
}

func TestMeterInstructionEncodesFirstAndDecodes(t *testing.T) {
	f := flows.Flow{Table: 20, Priority: 2, Cookie: 1, Actions: []flows.Action{flows.Meter{ID: 1}, flows.ToController{}}}
	m, err := Encode(f, Add)
	require.NoError(t, err)
	fm, err := ParseFlowMod(m)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(fm.Instructions), 8)
	assert.Equal(t, []byte{0, instrMeter, 0, 8, 0, 0, 0, 1}, fm.Instructions[:8], "the meter instruction comes first")
	actions, err := decodeInstructions(fm.Instructions)
	require.NoError(t, err)
	assert.Equal(t, f.Actions, actions)

	_, err = Encode(flows.Flow{Table: 20, Actions: []flows.Action{flows.ToController{}, flows.Meter{ID: 1}}}, Add)
	assert.Error(t, err, "a meter after other actions")
}

func TestDumpAndSetMetersOverAConn(t *testing.T) {
	c, f := dialFake(t, 1, testOptions(t))
	want := Meter{ID: 1, Flags: MeterFlagPktps | MeterFlagBurst, Rate: 2000, Burst: 500}
	var mods []Message
	f.serve(func(m Message) {
		switch m.Type() {
		case typeMultipartRequest:
			entry := append([]byte(nil), buildMeterMod(0, want).Body()...)
			binary.BigEndian.PutUint16(entry[0:2], uint16(len(entry)))
			body := make([]byte, 8, 8+len(entry))
			binary.BigEndian.PutUint16(body[0:2], multipartTypeMeterConf)
			_ = f.write(withXid(newMessage(typeMultipartReply, append(body, entry...)), m.Xid()))
		case typeMeterMod:
			mods = append(mods, m)
		case typeBarrierRequest:
			_ = f.write(withXid(newMessage(typeBarrierReply, nil), m.Xid()))
		}
	})
	ctx := context.Background()
	got, err := c.DumpMeters(ctx)
	require.NoError(t, err)
	assert.Equal(t, []Meter{want}, got)
	require.NoError(t, c.SetMeter(ctx, want, false))
	require.Len(t, mods, 1)
	assert.Equal(t, meterCommandModify, binary.BigEndian.Uint16(mods[0].Body()[0:2]))
	require.NoError(t, c.DeleteMeter(ctx, 0x10005))
	require.Len(t, mods, 2)
	assert.Equal(t, meterCommandDelete, binary.BigEndian.Uint16(mods[1].Body()[0:2]))
	assert.Equal(t, uint32(0x10005), binary.BigEndian.Uint32(mods[1].Body()[4:8]))
}
