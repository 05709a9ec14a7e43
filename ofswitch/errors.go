package ofswitch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// ErrClosed is returned by calls on a connection that is closed or closes
// while the call waits. The connection's Err tells why it closed.
var ErrClosed = errors.New("openflow connection closed")

// errorTypeName names an ofp_error_type as ovs-ofctl does.
func errorTypeName(t uint16) string {
	switch t {
	case 0:
		return "HELLO_FAILED"
	case 1:
		return "BAD_REQUEST"
	case 2:
		return "BAD_ACTION"
	case 3:
		return "BAD_INSTRUCTION"
	case 4:
		return "BAD_MATCH"
	case 5:
		return "FLOW_MOD_FAILED"
	case 6:
		return "GROUP_MOD_FAILED"
	case 7:
		return "PORT_MOD_FAILED"
	case 8:
		return "TABLE_MOD_FAILED"
	case 9:
		return "QUEUE_OP_FAILED"
	case 10:
		return "SWITCH_CONFIG_FAILED"
	case 11:
		return "ROLE_REQUEST_FAILED"
	case 12:
		return "METER_MOD_FAILED"
	case 13:
		return "TABLE_FEATURES_FAILED"
	case errorTypeExperimenter:
		return "EXPERIMENTER"
	default:
		return fmt.Sprintf("TYPE_%d", t)
	}
}

// errorTypeExperimenter is OFPET_EXPERIMENTER.
const errorTypeExperimenter uint16 = 0xffff

// OFError is an OFPT_ERROR message from the switch, attributed to the request
// (by xid) that caused it.
type OFError struct {
	Xid  uint32 // xid of the offending request
	Type uint16 // ofp_error_type
	// Code is the ofp_error_code; for OFPET_EXPERIMENTER it is the exp_code
	// (e.g. 2300.. for ONF bundle errors).
	Code         uint16
	Experimenter uint32 // experimenter id, only for OFPET_EXPERIMENTER
	Data         []byte // (the start of) the offending request, or a reason text
}

// Error renders the error the way ovs-ofctl names the type.
func (e *OFError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "switch error %s code %d (xid %#x", errorTypeName(e.Type), e.Code, e.Xid)
	if e.Type == errorTypeExperimenter {
		fmt.Fprintf(&b, ", experimenter %#x", e.Experimenter)
	}
	b.WriteString(")")
	if e.Type == 0 && len(e.Data) > 0 { // HELLO_FAILED carries ASCII text
		fmt.Fprintf(&b, ": %q", string(e.Data))
	}
	return b.String()
}

// parseError decodes an OFPT_ERROR message (ofp_error_msg or, for type
// OFPET_EXPERIMENTER, ofp_error_experimenter_msg).
func parseError(m Message) (*OFError, error) {
	body := m.Body()
	if len(body) < 4 {
		return nil, fmt.Errorf("%w: error message body of %d bytes", ErrMalformed, len(body))
	}
	e := &OFError{
		Xid:  m.Xid(),
		Type: binary.BigEndian.Uint16(body[0:2]),
		Code: binary.BigEndian.Uint16(body[2:4]),
	}
	data := body[4:]
	if e.Type == errorTypeExperimenter {
		if len(data) < 4 {
			return nil, fmt.Errorf("%w: experimenter error without experimenter id", ErrMalformed)
		}
		e.Experimenter = binary.BigEndian.Uint32(data[0:4])
		data = data[4:]
	}
	e.Data = append([]byte(nil), data...)
	return e, nil
}

// FailedMessage is one message of a batch or bundle that the switch refused.
type FailedMessage struct {
	Index int      // position in the slice the caller passed
	Err   *OFError // what the switch said
}

// BatchError lists the messages of a batch or bundle that the switch refused.
// For a bundle it also means the bundle was discarded: nothing was installed.
type BatchError struct {
	Failed []FailedMessage
}

// Error summarises the failures (the first few in full).
func (e *BatchError) Error() string {
	const show = 3
	var b strings.Builder
	fmt.Fprintf(&b, "%d message(s) refused by the switch", len(e.Failed))
	for i, f := range e.Failed {
		if i == show {
			fmt.Fprintf(&b, "; and %d more", len(e.Failed)-show)
			break
		}
		fmt.Fprintf(&b, "; #%d: %v", f.Index, f.Err)
	}
	return b.String()
}
