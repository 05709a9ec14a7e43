package ofswitch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Version13 is the OpenFlow wire version brtun speaks (OpenFlow 1.3).
const Version13 uint8 = 4

// headerLen is the size of the OpenFlow header every message starts with.
const headerLen = 8

// OpenFlow 1.3 message types (ofp_type) this package sends or understands.
const (
	typeHello            uint8 = 0
	typeError            uint8 = 1
	typeEchoRequest      uint8 = 2
	typeEchoReply        uint8 = 3
	typeExperimenter     uint8 = 4
	typeFeaturesRequest  uint8 = 5
	typeFeaturesReply    uint8 = 6
	typeGetConfigReply   uint8 = 8
	typePacketIn         uint8 = 10
	typeFlowRemoved      uint8 = 11
	typePortStatus       uint8 = 12
	typePacketOut        uint8 = 13
	typeFlowMod          uint8 = 14
	typeMultipartRequest uint8 = 18
	typeMultipartReply   uint8 = 19
	typeBarrierRequest   uint8 = 20
	typeBarrierReply     uint8 = 21
	typeRoleRequest      uint8 = 24
	typeRoleReply        uint8 = 25
)

// ErrMalformed marks a message that cannot be read or parsed: a bad length, a
// truncated body, garbage. A connection that delivers one is closed.
var ErrMalformed = errors.New("malformed openflow message")

// Message is one complete OpenFlow message as it travels on the wire: the
// 8-byte header (version, type, length, xid) followed by the body. Messages
// built by this package carry xid 0; the Conn assigns the real xid when it
// sends them and never modifies the caller's slice.
type Message []byte

// Version returns the OpenFlow version byte of the message.
func (m Message) Version() uint8 { return m[0] }

// Type returns the ofp_type of the message.
func (m Message) Type() uint8 { return m[1] }

// Xid returns the transaction id of the message.
func (m Message) Xid() uint32 { return binary.BigEndian.Uint32(m[4:8]) }

// Body returns the bytes after the header.
func (m Message) Body() []byte { return m[headerLen:] }

// newMessage builds a message of the given type with an OpenFlow 1.3 header
// (xid 0) followed by body.
func newMessage(typ uint8, body []byte) Message {
	m := make(Message, headerLen+len(body))
	m[0] = Version13
	m[1] = typ
	binary.BigEndian.PutUint16(m[2:4], uint16(len(m)))
	copy(m[headerLen:], body)
	return m
}

// readMessage reads one framed message: the 8-byte header, then as many bytes
// as its length field says. A length below 8 is malformed, and so is a version
// other than version when version is not 0: checked before the body is read,
// so garbage is refused at once instead of waiting for a bogus length. EOF in
// the middle of a message is reported as io.ErrUnexpectedEOF.
func readMessage(r io.Reader, version uint8) (Message, error) {
	var hdr [headerLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	length := int(binary.BigEndian.Uint16(hdr[2:4]))
	if length < headerLen {
		return nil, fmt.Errorf("%w: header length %d below %d (type %d, xid %#x)",
			ErrMalformed, length, headerLen, hdr[1], binary.BigEndian.Uint32(hdr[4:8]))
	}
	if version != 0 && hdr[0] != version {
		return nil, fmt.Errorf("%w: version %d in a header on a version %d connection (type %d, length %d)",
			ErrMalformed, hdr[0], version, hdr[1], length)
	}
	m := make(Message, length)
	copy(m, hdr[:])
	if _, err := io.ReadFull(r, m[headerLen:]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("read body of type %d (%d bytes): %w", hdr[1], length, err)
	}
	return m, nil
}

// withXid returns a copy of m whose header carries xid. When the message is a
// bundle add, the inner message gets the same xid, as OVS requires.
func withXid(m Message, xid uint32) Message {
	out := make(Message, len(m))
	copy(out, m)
	binary.BigEndian.PutUint32(out[4:8], xid)
	if isBundleAdd(out) {
		binary.BigEndian.PutUint32(out[bundleAddInnerOffset+4:bundleAddInnerOffset+8], xid)
	}
	return out
}

// typeName renders an ofp_type for log lines.
func typeName(t uint8) string {
	switch t {
	case typeHello:
		return "HELLO"
	case typeError:
		return "ERROR"
	case typeEchoRequest:
		return "ECHO_REQUEST"
	case typeEchoReply:
		return "ECHO_REPLY"
	case typeExperimenter:
		return "EXPERIMENTER"
	case typeFeaturesRequest:
		return "FEATURES_REQUEST"
	case typeFeaturesReply:
		return "FEATURES_REPLY"
	case typePacketIn:
		return "PACKET_IN"
	case typeFlowRemoved:
		return "FLOW_REMOVED"
	case typePortStatus:
		return "PORT_STATUS"
	case typeFlowMod:
		return "FLOW_MOD"
	case typeMultipartRequest:
		return "MULTIPART_REQUEST"
	case typeMultipartReply:
		return "MULTIPART_REPLY"
	case typeBarrierRequest:
		return "BARRIER_REQUEST"
	case typeBarrierReply:
		return "BARRIER_REPLY"
	case typeRoleRequest:
		return "ROLE_REQUEST"
	case typeRoleReply:
		return "ROLE_REPLY"
	default:
		return fmt.Sprintf("TYPE_%d", t)
	}
}
