package ofswitch

import (
	"context"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// packetIn builds a PACKET_IN as OVS sends it for output:CONTROLLER.
func packetIn(table uint8, cookie uint64, inPort uint32, data []byte) Message {
	match := MatchBytes(InPortEntry(inPort))
	body := make([]byte, 16+len(match)+2+len(data))
	binary.BigEndian.PutUint32(body[0:4], 0xffffffff)
	binary.BigEndian.PutUint16(body[4:6], uint16(len(data)))
	body[6] = 1 // OFPR_ACTION
	body[7] = table
	binary.BigEndian.PutUint64(body[8:16], cookie)
	copy(body[16:], match)
	copy(body[16+len(match)+2:], data)
	return newMessage(typePacketIn, body)
}

func TestParsePacketIn(t *testing.T) {
	frame := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9}
	pi, err := ParsePacketIn(packetIn(20, 0xb74000006b43d6b1, 7, frame))
	require.NoError(t, err)
	assert.Equal(t, PacketIn{Reason: 1, Table: 20, Cookie: 0xb74000006b43d6b1, InPort: 7, Data: frame}, pi)

	m := packetIn(20, 1, 7, frame)
	for n := headerLen; n < len(m)-len(frame)-2; n++ {
		short := append(Message(nil), m[:n]...)
		binary.BigEndian.PutUint16(short[2:4], uint16(n))
		_, err := ParsePacketIn(short)
		assert.ErrorIs(t, err, ErrMalformed, "truncated to %d bytes", n)
	}
	_, err = ParsePacketIn(newMessage(typeEchoRequest, nil))
	assert.ErrorIs(t, err, ErrMalformed)
}

func TestBuildPacketOut(t *testing.T) {
	frame := []byte{0xde, 0xad, 0xbe, 0xef}
	m, err := BuildPacketOut(3, frame)
	require.NoError(t, err)
	assert.Equal(t, typePacketOut, m.Type())
	b := m.Body()
	assert.Equal(t, uint32(0xffffffff), binary.BigEndian.Uint32(b[0:4]), "unbuffered")
	assert.Equal(t, uint32(0xfffffffd), binary.BigEndian.Uint32(b[4:8]), "in_port CONTROLLER")
	require.Equal(t, uint16(16), binary.BigEndian.Uint16(b[8:10]))
	assert.Equal(t, uint32(3), binary.BigEndian.Uint32(b[20:24]), "output:3")
	assert.Equal(t, frame, []byte(b[32:]))
	_, err = BuildPacketOut(0xfffffffd, frame)
	assert.Error(t, err, "reserved ports are refused")
}

func FuzzParsePacketIn(f *testing.F) {
	f.Add([]byte(packetIn(20, 1, 7, []byte{1, 2, 3})))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < headerLen {
			return
		}
		_, _ = ParsePacketIn(Message(b))
	})
}

// TestPacketInToPacketOutOverAConn: a PACKET_IN from the switch reaches
// OnMessage on the reader goroutine, a PacketOut sent from there reaches the
// switch, and the connection keeps answering (echo) afterwards.
func TestPacketInToPacketOutOverAConn(t *testing.T) {
	opts := testOptions(t)
	opts.OnMessage = func(c *Conn, m Message) {
		pi, err := ParsePacketIn(m)
		if assert.NoError(t, err) {
			assert.NoError(t, c.PacketOut(pi.InPort, pi.Data))
		}
	}
	c, f := dialFake(t, 1, opts)
	frame := []byte{0xaa, 0xbb, 0xcc}
	require.NoError(t, f.write(packetIn(20, 1, 4, frame)))
	for {
		m := f.read()
		if m.Type() == typeEchoRequest {
			continue
		}
		require.Equal(t, typePacketOut, m.Type())
		assert.Equal(t, uint32(4), binary.BigEndian.Uint32(m.Body()[20:24]))
		assert.Equal(t, frame, []byte(m.Body()[32:]))
		break
	}
	f.serve(func(Message) {})
	_, err := c.Echo(context.Background())
	require.NoError(t, err, "the connection still works")
}
