package ofswitch

import (
	"encoding/binary"
	"fmt"
	"io"
)

// This file is the switch side of the protocol: what a simulated switch
// (package hollow) needs to read a controller's requests and to answer them
// the way Open vSwitch does. It reuses the package's framing and parsers;
// answers are built by hand because they are plain structures.

// Message types as a switch sees them (ofp_type, OpenFlow 1.3).
const (
	TypeHello            = typeHello
	TypeError            = typeError
	TypeEchoRequest      = typeEchoRequest
	TypeEchoReply        = typeEchoReply
	TypeExperimenter     = typeExperimenter
	TypeFeaturesRequest  = typeFeaturesRequest
	TypeFeaturesReply    = typeFeaturesReply
	TypeGetConfigRequest = uint8(7)
	TypeGetConfigReply   = typeGetConfigReply
	TypeSetConfig        = uint8(9)
	TypePacketIn         = typePacketIn
	TypePortStatus       = typePortStatus
	TypePacketOut        = typePacketOut
	TypeFlowMod          = typeFlowMod
	TypeMultipartRequest = typeMultipartRequest
	TypeMultipartReply   = typeMultipartReply
	TypeBarrierRequest   = typeBarrierRequest
	TypeBarrierReply     = typeBarrierReply
	TypeRoleRequest      = typeRoleRequest
	TypeRoleReply        = typeRoleReply
	TypeMeterMod         = uint8(29)
)

// Multipart types (ofp_multipart_type) a switch answers.
const (
	MultipartDesc          uint16 = 0
	MultipartFlow                 = multipartTypeFlow
	MultipartMeter         uint16 = 9
	MultipartMeterConfig   uint16 = 10
	MultipartMeterFeatures uint16 = 11
	MultipartPortDesc      uint16 = 13
)

// Bundle control types (ONF extension 230), as a switch sees them.
const (
	BundleOpenRequest    = bundleOpenRequest
	BundleOpenReply      = bundleOpenReply
	BundleCloseRequest   = uint16(2)
	BundleCloseReply     = uint16(3)
	BundleCommitRequest  = bundleCommitRequest
	BundleCommitReply    = bundleCommitReply
	BundleDiscardRequest = bundleDiscardRequest
	BundleDiscardReply   = bundleDiscardReply
)

// ONF bundle error codes (exp_code of an OFPET_EXPERIMENTER error with the
// ONF experimenter id), as OVS sends them on OpenFlow 1.3.
const (
	BundleErrBadID        uint16 = 2302
	BundleErrClosed       uint16 = 2304
	BundleErrBadType      uint16 = 2306
	BundleErrBadFlags     uint16 = 2307
	BundleErrMsgBadLen    uint16 = 2308
	BundleErrMsgBadXid    uint16 = 2309
	BundleErrMsgUnsup     uint16 = 2310
	BundleErrMsgFailed    uint16 = 2313
	onfExperimenterErrLen        = 8
)

// ReadFrame reads one framed message of any version (the first message of a
// connection) or, with version set, of that version only.
func ReadFrame(r io.Reader, version uint8) (Message, error) {
	return readMessage(r, version)
}

// Reply builds a message of type typ carrying xid and body.
func Reply(typ uint8, xid uint32, body []byte) Message {
	m := newMessage(typ, body)
	binary.BigEndian.PutUint32(m[4:8], xid)
	return m
}

// SwitchHello is the HELLO a switch sends: OpenFlow 1.3 in a version bitmap.
func SwitchHello() (Message, error) { return buildHello() }

// NegotiateVersion checks a controller's HELLO the way the controller side
// does: the negotiated version must be OpenFlow 1.3.
func NegotiateVersion(m Message) (uint8, error) { return negotiateVersion(m) }

// ErrorReply builds an OFPT_ERROR answering req: type, code and (the start
// of) the offending message, as OVS sends it (at most 64 bytes of it).
func ErrorReply(req Message, typ, code uint16) Message {
	data := req
	if len(data) > 64 {
		data = data[:64]
	}
	body := make([]byte, 4+len(data))
	binary.BigEndian.PutUint16(body[0:2], typ)
	binary.BigEndian.PutUint16(body[2:4], code)
	copy(body[4:], data)
	return Reply(typeError, req.Xid(), body)
}

// BundleErrorReply builds the experimenter error OVS sends for an ONF bundle
// failure (expCode is one of the BundleErr* codes) answering req.
func BundleErrorReply(req Message, expCode uint16) Message {
	data := req
	if len(data) > 64 {
		data = data[:64]
	}
	body := make([]byte, onfExperimenterErrLen+len(data))
	binary.BigEndian.PutUint16(body[0:2], errorTypeExperimenter)
	binary.BigEndian.PutUint16(body[2:4], expCode)
	binary.BigEndian.PutUint32(body[4:8], onfExperimenterID)
	copy(body[8:], data)
	return Reply(typeError, req.Xid(), body)
}

// FlowMod is an OFPT_FLOW_MOD as a switch reads it. Match holds the OXM
// entries (without the ofp_match header and padding), Instructions the raw
// instruction list; both are copies.
type FlowMod struct {
	Cookie       uint64
	CookieMask   uint64
	Table        uint8
	Command      uint8 // OFPFC_ADD (0) .. OFPFC_DELETE_STRICT (4)
	IdleTimeout  uint16
	HardTimeout  uint16
	Priority     uint16
	BufferID     uint32
	OutPort      uint32
	OutGroup     uint32
	Flags        uint16
	Match        []byte
	Instructions []byte
}

// Flow-mod commands (ofp_flow_mod_command).
const (
	FlowAdd          uint8 = 0
	FlowModify       uint8 = 1
	FlowModifyStrict uint8 = 2
	FlowDelete       uint8 = 3
	FlowDeleteStrict uint8 = 4
)

// ParseFlowMod decodes an OFPT_FLOW_MOD. The match entries are checked to be
// whole; instructions are checked by DecodeFlow.
func ParseFlowMod(m Message) (FlowMod, error) {
	if m.Type() != typeFlowMod {
		return FlowMod{}, fmt.Errorf("%w: %s is not a flow mod", ErrMalformed, typeName(m.Type()))
	}
	if len(m) < flowModFixedLen+matchHeaderLen {
		return FlowMod{}, fmt.Errorf("%w: flow mod of %d bytes", ErrMalformed, len(m))
	}
	fm := FlowMod{
		Cookie:      binary.BigEndian.Uint64(m[8:16]),
		CookieMask:  binary.BigEndian.Uint64(m[16:24]),
		Table:       m[24],
		Command:     m[25],
		IdleTimeout: binary.BigEndian.Uint16(m[26:28]),
		HardTimeout: binary.BigEndian.Uint16(m[28:30]),
		Priority:    binary.BigEndian.Uint16(m[30:32]),
		BufferID:    binary.BigEndian.Uint32(m[32:36]),
		OutPort:     binary.BigEndian.Uint32(m[36:40]),
		OutGroup:    binary.BigEndian.Uint32(m[40:44]),
		Flags:       binary.BigEndian.Uint16(m[44:46]),
	}
	match, rest, err := splitMatch(m[flowModFixedLen:])
	if err != nil {
		return FlowMod{}, fmt.Errorf("flow mod: %w", err)
	}
	fm.Match = match
	fm.Instructions = append([]byte(nil), rest...)
	return fm, nil
}

// splitMatch reads an ofp_match (type OXM) at the start of b and returns its
// entries (checked to be whole) and what follows its padding.
func splitMatch(b []byte) (match, rest []byte, err error) {
	if len(b) < matchHeaderLen {
		return nil, nil, fmt.Errorf("%w: match header needs 4 bytes, %d left", ErrMalformed, len(b))
	}
	typ := binary.BigEndian.Uint16(b[0:2])
	length := int(binary.BigEndian.Uint16(b[2:4]))
	padded := (length + 7) / 8 * 8
	if typ != matchTypeOXM || length < matchHeaderLen || padded > len(b) {
		return nil, nil, fmt.Errorf("%w: match type %d length %d in %d bytes", ErrMalformed, typ, length, len(b))
	}
	match = append([]byte(nil), b[matchHeaderLen:length]...)
	if _, err := MatchEntries(match); err != nil {
		return nil, nil, err
	}
	return match, b[padded:], nil
}

// MatchEntry is one OXM/NXM entry of a match. Mask is nil for an exact one.
type MatchEntry struct {
	Class uint16
	Field uint8
	Value []byte
	Mask  []byte
}

// MatchEntries splits the OXM entries of a match (copies).
func MatchEntries(b []byte) ([]MatchEntry, error) {
	var out []MatchEntry
	for off := 0; off < len(b); {
		t, n, err := readTLV(b[off:])
		if err != nil {
			return nil, fmt.Errorf("match entry at offset %d: %w", off, err)
		}
		out = append(out, MatchEntry{Class: t.class, Field: t.field, Value: t.value, Mask: t.mask})
		off += n
	}
	return out, nil
}

// FlowStatsRequest is the body of an OFPMP_FLOW request.
type FlowStatsRequest struct {
	Table      uint8
	OutPort    uint32
	OutGroup   uint32
	Cookie     uint64
	CookieMask uint64
	Match      []byte
}

// MultipartRequest is an OFPT_MULTIPART_REQUEST: its type, flags and body.
type MultipartRequest struct {
	Type  uint16
	Flags uint16
	Body  []byte
}

// ParseMultipartRequest splits a multipart request.
func ParseMultipartRequest(m Message) (MultipartRequest, error) {
	body := m.Body()
	if len(body) < 8 {
		return MultipartRequest{}, fmt.Errorf("%w: multipart request body of %d bytes", ErrMalformed, len(body))
	}
	return MultipartRequest{
		Type:  binary.BigEndian.Uint16(body[0:2]),
		Flags: binary.BigEndian.Uint16(body[2:4]),
		Body:  body[8:],
	}, nil
}

// ParseFlowStatsRequest decodes the body of an OFPMP_FLOW request.
func ParseFlowStatsRequest(body []byte) (FlowStatsRequest, error) {
	if len(body) < 32+matchHeaderLen {
		return FlowStatsRequest{}, fmt.Errorf("%w: flow stats request body of %d bytes", ErrMalformed, len(body))
	}
	r := FlowStatsRequest{
		Table:      body[0],
		OutPort:    binary.BigEndian.Uint32(body[4:8]),
		OutGroup:   binary.BigEndian.Uint32(body[8:12]),
		Cookie:     binary.BigEndian.Uint64(body[16:24]),
		CookieMask: binary.BigEndian.Uint64(body[24:32]),
	}
	match, _, err := splitMatch(body[32:])
	if err != nil {
		return FlowStatsRequest{}, fmt.Errorf("flow stats request: %w", err)
	}
	r.Match = match
	return r, nil
}

// AppendFlowStats appends the wire form of one ofp_flow_stats entry.
func AppendFlowStats(b []byte, s FlowStats) []byte {
	matchLen := matchHeaderLen + len(s.Match)
	padded := (matchLen + 7) / 8 * 8
	length := flowStatsFixedLen + padded + len(s.Instructions)
	e := make([]byte, length)
	binary.BigEndian.PutUint16(e[0:2], uint16(length))
	e[2] = s.Table
	binary.BigEndian.PutUint32(e[4:8], uint32(s.Duration.Seconds()))
	binary.BigEndian.PutUint32(e[8:12], uint32(s.Duration.Nanoseconds()%1e9))
	binary.BigEndian.PutUint16(e[12:14], s.Priority)
	binary.BigEndian.PutUint16(e[14:16], s.IdleTimeout)
	binary.BigEndian.PutUint16(e[16:18], s.HardTimeout)
	binary.BigEndian.PutUint16(e[18:20], s.Flags)
	binary.BigEndian.PutUint64(e[24:32], s.Cookie)
	binary.BigEndian.PutUint64(e[32:40], s.Packets)
	binary.BigEndian.PutUint64(e[40:48], s.Bytes)
	binary.BigEndian.PutUint16(e[48:50], matchTypeOXM)
	binary.BigEndian.PutUint16(e[50:52], uint16(matchLen))
	copy(e[52:], s.Match)
	copy(e[flowStatsFixedLen+padded:], s.Instructions)
	return append(b, e...)
}

// MultipartReply builds one part of an OFPT_MULTIPART_REPLY; more sets
// OFPMPF_REPLY_MORE (further parts follow).
func MultipartReply(xid uint32, typ uint16, more bool, body []byte) Message {
	b := make([]byte, 8+len(body))
	binary.BigEndian.PutUint16(b[0:2], typ)
	if more {
		binary.BigEndian.PutUint16(b[2:4], 1)
	}
	copy(b[8:], body)
	return Reply(typeMultipartReply, xid, b)
}

// MatchBytes wraps OXM entries into an ofp_match with its header and
// padding, as PACKET_IN carries it.
func MatchBytes(entries []byte) []byte {
	length := matchHeaderLen + len(entries)
	b := make([]byte, (length+7)/8*8)
	binary.BigEndian.PutUint16(b[0:2], matchTypeOXM)
	binary.BigEndian.PutUint16(b[2:4], uint16(length))
	copy(b[4:], entries)
	return b
}

// InPortEntry is the OXM entry in_port=port.
func InPortEntry(port uint32) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint32(b[0:4], uint32(oxmInPort))
	binary.BigEndian.PutUint32(b[4:8], port)
	return b
}

// BundleCtrl is an ONF bundle control message.
type BundleCtrl struct {
	ID    uint32
	Type  uint16
	Flags uint16
}

// IsBundleControl and IsBundleAdd tell ONF bundle messages apart.
func IsBundleControl(m Message) bool { return isBundleControl(m) }

// IsBundleAdd reports whether m is an ONF bundle add message.
func IsBundleAdd(m Message) bool { return isBundleAdd(m) }

// ParseBundleControl decodes an ONF bundle control message.
func ParseBundleControl(m Message) (BundleCtrl, error) {
	r, err := parseBundleReply(m)
	if err != nil {
		return BundleCtrl{}, err
	}
	return BundleCtrl{ID: r.BundleID, Type: r.Type, Flags: binary.BigEndian.Uint16(m.Body()[14:16])}, nil
}

// BundleControlReply answers a bundle control request.
func BundleControlReply(xid uint32, c BundleCtrl) Message {
	body := make([]byte, 16)
	binary.BigEndian.PutUint32(body[0:4], onfExperimenterID)
	binary.BigEndian.PutUint32(body[4:8], onfBundleControl)
	binary.BigEndian.PutUint32(body[8:12], c.ID)
	binary.BigEndian.PutUint16(body[12:14], c.Type)
	binary.BigEndian.PutUint16(body[14:16], c.Flags)
	return Reply(typeExperimenter, xid, body)
}

// BundleAdd is an ONF bundle add message with its inner message.
type BundleAdd struct {
	ID    uint32
	Flags uint16
	Inner Message
}

// ParseBundleAdd decodes an ONF bundle add; the inner message must be whole.
func ParseBundleAdd(m Message) (BundleAdd, error) {
	if !isBundleAdd(m) {
		return BundleAdd{}, fmt.Errorf("%w: not a bundle add", ErrMalformed)
	}
	inner := m[bundleAddInnerOffset:]
	length := int(binary.BigEndian.Uint16(inner[2:4]))
	if length < headerLen || length > len(inner) {
		return BundleAdd{}, fmt.Errorf("%w: bundle add inner message length %d in %d bytes", ErrMalformed, length, len(inner))
	}
	return BundleAdd{
		ID:    binary.BigEndian.Uint32(m[16:20]),
		Flags: binary.BigEndian.Uint16(m[22:24]),
		Inner: append(Message(nil), inner[:length]...),
	}, nil
}

// ParseRoleRequest decodes an OFPT_ROLE_REQUEST (same layout as the reply).
func ParseRoleRequest(m Message) (Role, uint64, error) { return parseRoleReply(m) }

// RoleReply answers a role request.
func RoleReply(xid uint32, role Role, generation uint64) Message {
	m := buildRoleRequest(role, generation)
	m[1] = typeRoleReply
	binary.BigEndian.PutUint32(m[4:8], xid)
	return m
}

// FeaturesReply answers a features request.
func FeaturesReply(xid uint32, f Features) Message {
	body := make([]byte, 24)
	binary.BigEndian.PutUint64(body[0:8], f.DatapathID)
	binary.BigEndian.PutUint32(body[8:12], f.NBuffers)
	body[12] = f.NTables
	body[13] = f.AuxiliaryID
	binary.BigEndian.PutUint32(body[16:20], f.Capabilities)
	return Reply(typeFeaturesReply, xid, body)
}

// ParseFlowStatsBody walks the entries of a flow-stats reply body.
func ParseFlowStatsBody(b []byte) ([]FlowStats, error) { return parseFlowStats(b) }

// MultipartExperimenter is OFPMP_EXPERIMENTER, the multipart type of ONF's
// flow monitor (monitor.go).
const MultipartExperimenter = multipartTypeExperimenter

// Nicira experimenter error codes OVS sends for flow monitors on OpenFlow
// 1.3 (OFPET_EXPERIMENTER with the Nicira id, NX1.2-1.3 in OVS's
// ofp-errors.h).
const (
	MonitorErrExists  uint16 = 6 // OFPMOFC_MONITOR_EXISTS
	MonitorErrBadFlag uint16 = 7 // OFPMOFC_BAD_FLAGS
	MonitorErrUnknown uint16 = 8 // OFPMOFC_UNKNOWN_MONITOR
)

// MonitorErrorReply builds the experimenter error OVS sends for a flow
// monitor failure (one of the MonitorErr* codes) answering req.
func MonitorErrorReply(req Message, expCode uint16) Message {
	e := BundleErrorReply(req, expCode)
	binary.BigEndian.PutUint32(e[headerLen+4:headerLen+8], nxVendor)
	return e
}

// FlowMonitorSpec is one monitor of a flow monitor request as a switch
// reads it; Match holds the OXM entries (none: every flow).
type FlowMonitorSpec struct {
	FlowMonitorRequest
	Match []byte
}

// ParseFlowMonitorRequest decodes the monitors of an ONF 1870 flow monitor
// request from the body of an OFPMP_EXPERIMENTER multipart request. ok is
// false for another experimenter's multipart request.
func ParseFlowMonitorRequest(body []byte) (specs []FlowMonitorSpec, ok bool, err error) {
	if len(body) < 8 || binary.BigEndian.Uint32(body[0:4]) != onfExperimenterID || binary.BigEndian.Uint32(body[4:8]) != onfFlowMonitor {
		return nil, false, nil
	}
	b := body[8:]
	for off := 0; off < len(b); {
		e := b[off:]
		if len(e) < flowMonitorRequestLen+matchHeaderLen {
			return nil, true, fmt.Errorf("%w: flow monitor at offset %d: %d bytes left", ErrMalformed, off, len(e))
		}
		matchType := binary.BigEndian.Uint16(e[16:18])
		matchLen := int(binary.BigEndian.Uint16(e[18:20]))
		padded := (matchLen + 7) / 8 * 8
		if matchType != matchTypeOXM || matchLen < matchHeaderLen || flowMonitorRequestLen+padded > len(e) {
			return nil, true, fmt.Errorf("%w: flow monitor at offset %d: match type %d length %d", ErrMalformed, off, matchType, matchLen)
		}
		specs = append(specs, FlowMonitorSpec{
			FlowMonitorRequest: FlowMonitorRequest{
				ID:    binary.BigEndian.Uint32(e[0:4]),
				Flags: MonitorFlags(binary.BigEndian.Uint16(e[4:6])),
				Table: e[12],
			},
			Match: append([]byte(nil), e[flowMonitorRequestLen+matchHeaderLen:flowMonitorRequestLen+matchLen]...),
		})
		off += flowMonitorRequestLen + padded
	}
	return specs, true, nil
}

// ValidMonitorFlags reports whether OVS accepts flags in a monitor: at
// least one of add, delete and modify, and no unknown bit.
func ValidMonitorFlags(f MonitorFlags) bool {
	return f&(MonitorAdd|MonitorDelete|MonitorModify) != 0 && f&^monitorAllFlags == 0
}

// FlowMonitorReply builds an ONF 1870 multipart reply carrying updates
// (FlowUpdateAdded entries; none for the empty reply to a request without
// MonitorInitial).
func FlowMonitorReply(xid uint32, updates []byte) Message {
	body := make([]byte, 8, 8+len(updates))
	binary.BigEndian.PutUint32(body[0:4], onfExperimenterID)
	binary.BigEndian.PutUint32(body[4:8], onfFlowMonitor)
	return MultipartReply(xid, multipartTypeExperimenter, false, append(body, updates...))
}

// FlowUpdateAdded builds the nx_flow_update_full OVS sends for a flow that
// is there (the initial flows of a monitor): match holds the OXM entries,
// instructions are included when the monitor asked for actions.
func FlowUpdateAdded(table uint8, priority, idle, hard uint16, cookie uint64, match, instructions []byte) []byte {
	m := MatchBytes(match)
	u := make([]byte, flowUpdateFullLen, flowUpdateFullLen+len(m)+len(instructions))
	binary.BigEndian.PutUint16(u[0:2], uint16(cap(u)))
	binary.BigEndian.PutUint16(u[2:4], nxfmeAdded)
	binary.BigEndian.PutUint16(u[6:8], priority)
	binary.BigEndian.PutUint16(u[8:10], idle)
	binary.BigEndian.PutUint16(u[10:12], hard)
	binary.BigEndian.PutUint16(u[12:14], uint16(matchHeaderLen+len(match)))
	u[14] = table
	binary.BigEndian.PutUint64(u[16:24], cookie)
	return append(append(u, m...), instructions...)
}

// ParseFlowMonitorCancel returns the monitor id of an ONF 1870 cancel; ok
// is false for another experimenter message.
func ParseFlowMonitorCancel(m Message) (id uint32, ok bool, err error) {
	eid, typ, err := parseExperimenter(m)
	if err != nil || eid != onfExperimenterID || typ != onfFlowMonitor {
		return 0, false, nil
	}
	body := m.Body()
	if len(body) < 12 {
		return 0, true, fmt.Errorf("%w: flow monitor cancel of %d bytes", ErrMalformed, len(m))
	}
	return binary.BigEndian.Uint32(body[8:12]), true, nil
}
