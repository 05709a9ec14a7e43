package ofswitch

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"time"

	"github.com/brtun/brtun/flows"
)

// This file parses what a switch sends. Every function checks lengths before
// it reads, copies what it keeps, and returns an error wrapping ErrMalformed
// instead of panicking. The Conn still runs them under recover().

// negotiateVersion applies the OpenFlow 1.3 version negotiation to a peer's
// HELLO: with a version bitmap both sides must have 1.3 in it; without one the
// lower of the two header versions must be 1.3, i.e. the peer's is 1.3 or newer.
func negotiateVersion(m Message) (uint8, error) {
	if m.Type() != typeHello {
		return 0, fmt.Errorf("expected HELLO, got %s", typeName(m.Type()))
	}
	body := m.Body()
	var bitmap []byte
	for off := 0; off+4 <= len(body); {
		typ := binary.BigEndian.Uint16(body[off : off+2])
		length := int(binary.BigEndian.Uint16(body[off+2 : off+4]))
		if length < 4 || off+length > len(body) {
			return 0, fmt.Errorf("%w: hello element length %d at offset %d of %d", ErrMalformed, length, off, len(body))
		}
		if typ == 1 { // OFPHET_VERSIONBITMAP
			bitmap = body[off+4 : off+length]
		}
		off += (length + 7) / 8 * 8
	}
	if bitmap != nil {
		if len(bitmap) >= 4 && binary.BigEndian.Uint32(bitmap[0:4])&(1<<Version13) != 0 {
			return Version13, nil
		}
		return 0, fmt.Errorf("peer's version bitmap %x does not include OpenFlow 1.3", bitmap)
	}
	if m.Version() < Version13 {
		return 0, fmt.Errorf("peer speaks OpenFlow wire version %d, brtun needs %d (1.3)", m.Version(), Version13)
	}
	return Version13, nil
}

// Features is what a switch reports in its FEATURES_REPLY.
type Features struct {
	DatapathID   uint64
	NBuffers     uint32
	NTables      uint8
	AuxiliaryID  uint8
	Capabilities uint32
}

// parseFeatures decodes an OpenFlow 1.3 FEATURES_REPLY.
func parseFeatures(m Message) (Features, error) {
	body := m.Body()
	if len(body) < 24 {
		return Features{}, fmt.Errorf("%w: features reply body of %d bytes, want 24", ErrMalformed, len(body))
	}
	return Features{
		DatapathID:   binary.BigEndian.Uint64(body[0:8]),
		NBuffers:     binary.BigEndian.Uint32(body[8:12]),
		NTables:      body[12],
		AuxiliaryID:  body[13],
		Capabilities: binary.BigEndian.Uint32(body[16:20]),
	}, nil
}

// Role is a controller role (ofp_controller_role).
type Role uint32

// Controller roles. OVS treats every new connection as RoleEqual.
const (
	RoleNoChange  Role = 0
	RoleEqual     Role = 1
	RolePrimary   Role = 2 // OFPCR_ROLE_MASTER
	RoleSecondary Role = 3 // OFPCR_ROLE_SLAVE
)

// String names the role.
func (r Role) String() string {
	switch r {
	case RoleNoChange:
		return "nochange"
	case RoleEqual:
		return "equal"
	case RolePrimary:
		return "primary"
	case RoleSecondary:
		return "secondary"
	default:
		return fmt.Sprintf("role(%d)", uint32(r))
	}
}

// parseRoleReply decodes an OFPT_ROLE_REPLY: role, pad(4), generation_id.
func parseRoleReply(m Message) (Role, uint64, error) {
	body := m.Body()
	if len(body) < 16 {
		return 0, 0, fmt.Errorf("%w: role reply body of %d bytes, want 16", ErrMalformed, len(body))
	}
	return Role(binary.BigEndian.Uint32(body[0:4])), binary.BigEndian.Uint64(body[8:16]), nil
}

// multipartReply is the fixed part of an OFPT_MULTIPART_REPLY.
type multipartReply struct {
	Type uint16
	More bool
	Body []byte
}

// multipartTypeFlow is OFPMP_FLOW.
const multipartTypeFlow uint16 = 1

// parseMultipartReply splits a multipart reply into type, MORE flag and body.
// Flow-stats and flow-monitor bodies are checked entry by entry here, so a
// broken one is caught by the reader and not by whoever asked for it.
func parseMultipartReply(m Message) (multipartReply, error) {
	body := m.Body()
	if len(body) < 8 {
		return multipartReply{}, fmt.Errorf("%w: multipart reply body of %d bytes", ErrMalformed, len(body))
	}
	r := multipartReply{
		Type: binary.BigEndian.Uint16(body[0:2]),
		More: binary.BigEndian.Uint16(body[2:4])&1 != 0, // OFPMPF_REPLY_MORE
		Body: body[8:],
	}
	if r.Type == multipartTypeFlow {
		if _, err := parseFlowStats(r.Body); err != nil {
			return multipartReply{}, err
		}
	}
	if updates, ok := isFlowMonitorReply(r); ok {
		if _, err := parseFlowUpdates(updates); err != nil {
			return multipartReply{}, err
		}
	}
	return r, nil
}

// bundleReply is an ONF bundle control message sent by the switch.
type bundleReply struct {
	BundleID uint32
	Type     uint16
}

// parseExperimenter returns the experimenter id and type of an
// OFPT_EXPERIMENTER message.
func parseExperimenter(m Message) (id, typ uint32, err error) {
	body := m.Body()
	if len(body) < 8 {
		return 0, 0, fmt.Errorf("%w: experimenter message body of %d bytes", ErrMalformed, len(body))
	}
	return binary.BigEndian.Uint32(body[0:4]), binary.BigEndian.Uint32(body[4:8]), nil
}

// isBundleControl reports whether m is an ONF bundle control message.
func isBundleControl(m Message) bool {
	id, typ, err := parseExperimenter(m)
	return err == nil && id == onfExperimenterID && typ == onfBundleControl
}

// parseBundleReply decodes an ONF bundle control message (bundle_id, type,
// flags after the experimenter header).
func parseBundleReply(m Message) (bundleReply, error) {
	if !isBundleControl(m) {
		return bundleReply{}, fmt.Errorf("%w: not a bundle control message", ErrMalformed)
	}
	body := m.Body()
	if len(body) < 16 {
		return bundleReply{}, fmt.Errorf("%w: bundle control body of %d bytes", ErrMalformed, len(body))
	}
	return bundleReply{
		BundleID: binary.BigEndian.Uint32(body[8:12]),
		Type:     binary.BigEndian.Uint16(body[12:14]),
	}, nil
}

// FlowStats is one entry of a flow-stats reply (ofp_flow_stats), walked by its
// own length fields. Match holds the OXM fields (without the ofp_match header
// and padding) and Instructions the raw instruction list; both share the
// memory of the reply they were read from, which nothing else uses.
type FlowStats struct {
	Table        uint8
	Priority     uint16
	Cookie       uint64
	IdleTimeout  uint16
	HardTimeout  uint16
	Flags        uint16
	Duration     time.Duration
	Packets      uint64
	Bytes        uint64
	Match        []byte
	Instructions []byte
}

// Key hashes, with seed, what the flow is: its table, priority, cookie,
// timeouts, flags, match and instructions, but not its counters or age. Two
// reports of the same flow have the same key; two different flows have the
// same key with odds of 2^-64 (the seed is the caller's and unknown to the
// switch).
func (s FlowStats) Key(seed maphash.Seed) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	var fixed [19]byte
	fixed[0] = s.Table
	binary.BigEndian.PutUint16(fixed[1:], s.Priority)
	binary.BigEndian.PutUint64(fixed[3:], s.Cookie)
	binary.BigEndian.PutUint16(fixed[11:], s.IdleTimeout)
	binary.BigEndian.PutUint16(fixed[13:], s.HardTimeout)
	binary.BigEndian.PutUint16(fixed[15:], s.Flags)
	binary.BigEndian.PutUint16(fixed[17:], uint16(len(s.Match))) // where the match ends and the instructions begin
	_, _ = h.Write(fixed[:])
	_, _ = h.Write(s.Match)
	_, _ = h.Write(s.Instructions)
	return h.Sum64()
}

// FlowKey is the Key of f as a switch that reports flows the way OVS does
// gives it: a flow-stats entry holding Encode's match and instructions
// (appendMatch uses the headers OVS reports). A switch that reports f
// otherwise gives it another key; the caller learns that one from a dump.
func FlowKey(seed maphash.Seed, f flows.Flow) (uint64, error) {
	m, err := Encode(f, Add)
	if err != nil {
		return 0, err
	}
	fm, err := ParseFlowMod(m)
	if err != nil {
		return 0, err
	}
	return FlowStats{Table: fm.Table, Priority: fm.Priority, Cookie: fm.Cookie, IdleTimeout: fm.IdleTimeout,
		HardTimeout: fm.HardTimeout, Flags: fm.Flags, Match: fm.Match, Instructions: fm.Instructions}.Key(seed), nil
}

// Fixed sizes of ofp_flow_stats and ofp_match.
const (
	flowStatsFixedLen = 48
	matchHeaderLen    = 4
	matchTypeOXM      = 1
)

// parseFlowStats walks the entries of a flow-stats reply body.
// Match and Instructions share body's memory. The entries are counted first
// so that the result is allocated once: a dump holds tens of thousands.
func parseFlowStats(body []byte) ([]FlowStats, error) {
	n := 0
	for off := 0; off+2 <= len(body); n++ {
		length := int(binary.BigEndian.Uint16(body[off:]))
		if length == 0 {
			break // malformed: reported below
		}
		off += length
	}
	out := make([]FlowStats, 0, n)
	for off := 0; off < len(body); {
		if len(body)-off < flowStatsFixedLen+8 {
			return nil, fmt.Errorf("%w: flow stats entry at offset %d: %d bytes left", ErrMalformed, off, len(body)-off)
		}
		e := body[off:]
		length := int(binary.BigEndian.Uint16(e[0:2]))
		if length < flowStatsFixedLen+8 || length > len(e) {
			return nil, fmt.Errorf("%w: flow stats entry at offset %d has length %d (%d bytes left)", ErrMalformed, off, length, len(e))
		}
		e = e[:length]
		matchType := binary.BigEndian.Uint16(e[48:50])
		matchLen := int(binary.BigEndian.Uint16(e[50:52]))
		padded := (matchLen + 7) / 8 * 8
		if matchType != matchTypeOXM || matchLen < matchHeaderLen || flowStatsFixedLen+padded > length {
			return nil, fmt.Errorf("%w: flow stats entry at offset %d: match type %d length %d in entry of %d",
				ErrMalformed, off, matchType, matchLen, length)
		}
		sec := binary.BigEndian.Uint32(e[4:8])
		nsec := binary.BigEndian.Uint32(e[8:12])
		out = append(out, FlowStats{
			Table:        e[2],
			Duration:     time.Duration(sec)*time.Second + time.Duration(nsec),
			Priority:     binary.BigEndian.Uint16(e[12:14]),
			IdleTimeout:  binary.BigEndian.Uint16(e[14:16]),
			HardTimeout:  binary.BigEndian.Uint16(e[16:18]),
			Flags:        binary.BigEndian.Uint16(e[18:20]),
			Cookie:       binary.BigEndian.Uint64(e[24:32]),
			Packets:      binary.BigEndian.Uint64(e[32:40]),
			Bytes:        binary.BigEndian.Uint64(e[40:48]),
			Match:        e[flowStatsFixedLen+matchHeaderLen : flowStatsFixedLen+matchLen : flowStatsFixedLen+matchLen],
			Instructions: e[flowStatsFixedLen+padded : length : length],
		})
		off += length
	}
	return out, nil
}
