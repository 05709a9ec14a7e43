package ofswitch

import (
	"encoding/binary"
	"fmt"

	"github.com/brtun/brtun/flows"
)

// PacketIn is a packet the switch sent to the controller (OFPT_PACKET_IN):
// the flow that sent it (table, cookie), the port it came in on, and the
// frame (brtun's own copy).
type PacketIn struct {
	Reason uint8
	Table  uint8
	Cookie uint64
	InPort uint32 // 0: the match carried no in_port
	Data   []byte
}

// packetInFixedLen is buffer_id, total_len, reason, table_id, cookie.
const packetInFixedLen = 16

// ParsePacketIn decodes a PACKET_IN. It checks every length before reading
// and never panics; a message that does not parse is ErrMalformed.
func ParsePacketIn(m Message) (PacketIn, error) {
	if len(m) < headerLen || m.Type() != typePacketIn {
		return PacketIn{}, fmt.Errorf("%w: not a PACKET_IN", ErrMalformed)
	}
	b := m.Body()
	if len(b) < packetInFixedLen+matchHeaderLen {
		return PacketIn{}, fmt.Errorf("%w: PACKET_IN of %d bytes", ErrMalformed, len(b))
	}
	pi := PacketIn{Reason: b[6], Table: b[7], Cookie: binary.BigEndian.Uint64(b[8:16])}
	match, rest, err := splitMatch(b[packetInFixedLen:])
	if err != nil {
		return PacketIn{}, fmt.Errorf("PACKET_IN match: %w", err)
	}
	entries, err := MatchEntries(match)
	if err != nil {
		return PacketIn{}, fmt.Errorf("PACKET_IN match: %w", err)
	}
	for _, e := range entries {
		if e.Class == classOXM && e.Field == 0 && len(e.Value) == 4 { // OXM in_port
			pi.InPort = binary.BigEndian.Uint32(e.Value)
		}
	}
	if len(rest) < 2 {
		return PacketIn{}, fmt.Errorf("%w: PACKET_IN without its padding", ErrMalformed)
	}
	pi.Data = append([]byte(nil), rest[2:]...)
	return pi, nil
}

// BuildPacketOut returns an OFPT_PACKET_OUT that sends frame out of port
// (an ordinary port), unbuffered, as if it came from the controller.
func BuildPacketOut(port uint32, frame []byte) (Message, error) {
	if port == 0 || port >= flows.PortMax {
		return nil, fmt.Errorf("packet-out to port %d: not an ordinary port", port)
	}
	action := appendOutput(nil, port)
	body := make([]byte, 16, 16+len(action)+len(frame))
	binary.BigEndian.PutUint32(body[0:4], 0xffffffff) // OFP_NO_BUFFER
	binary.BigEndian.PutUint32(body[4:8], flows.PortController)
	binary.BigEndian.PutUint16(body[8:10], uint16(len(action)))
	body = append(body, action...)
	body = append(body, frame...)
	if headerLen+len(body) > 0xffff {
		return nil, fmt.Errorf("packet-out of %d bytes does not fit a message", len(frame))
	}
	return newMessage(typePacketOut, body), nil
}

// PacketOut sends frame out of port. It does not wait: a switch that
// refuses it reports an error brtun logs.
func (c *Conn) PacketOut(port uint32, frame []byte) error {
	m, err := BuildPacketOut(port, frame)
	if err != nil {
		return err
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	m = withXid(m, c.takeXid())
	return c.writeLocked([]Message{m})
}
