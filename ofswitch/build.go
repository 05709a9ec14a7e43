package ofswitch

import (
	"encoding/binary"
	"fmt"

	"github.com/contiv/libOpenflow/common"
	of13 "github.com/contiv/libOpenflow/openflow13"
	"github.com/contiv/libOpenflow/util"
)

// This file builds every control message the package sends. Messages with a
// structure worth a library (hello elements, multipart, bundles) are encoded
// with libOpenflow; header-only messages and the role request are a few bytes
// built here. All of them carry xid 0 until a Conn sends them.

// ONF extension 230 (bundles in OpenFlow 1.3) identifiers.
const (
	onfExperimenterID uint32 = 0x4f4e4600
	onfBundleControl  uint32 = 2300
	onfBundleAdd      uint32 = 2301

	// bundleAddInnerOffset is where the inner message starts inside a bundle
	// add: header(8) experimenter(4) exp_type(4) bundle_id(4) pad(2) flags(2).
	bundleAddInnerOffset = 24
)

// Bundle control types (ONF extension 230 / OpenFlow 1.4 ofp_bundle_ctrl_type);
// brtun never closes a bundle explicitly, commit does that.
const (
	bundleOpenRequest    uint16 = 0
	bundleOpenReply      uint16 = 1
	bundleCommitRequest  uint16 = 4
	bundleCommitReply    uint16 = 5
	bundleDiscardRequest uint16 = 6
	bundleDiscardReply   uint16 = 7
)

// Bundle flags brtun always uses: all or nothing, in order.
const bundleFlags = of13.OFPBCT_ATOMIC | of13.OFPBCT_ORDERED

// rawMessage lets an already encoded message travel inside a libOpenflow
// container (a bundle add).
type rawMessage []byte

func (r rawMessage) Len() uint16                    { return uint16(len(r)) }
func (r rawMessage) MarshalBinary() ([]byte, error) { return []byte(r), nil }
func (r rawMessage) UnmarshalBinary([]byte) error {
	return fmt.Errorf("rawMessage is encode-only")
}

// marshal encodes a libOpenflow message and resets its xid to 0, because the
// library stamps xids from a process-wide counter and the Conn assigns its own.
func marshal(m util.Message) (Message, error) {
	b, err := m.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("encode openflow message: %w", err)
	}
	if len(b) < headerLen || int(binary.BigEndian.Uint16(b[2:4])) != len(b) {
		return nil, fmt.Errorf("encode openflow message: length field does not match %d encoded bytes", len(b))
	}
	out := Message(b)
	binary.BigEndian.PutUint32(out[4:8], 0)
	return out, nil
}

// buildHello announces OpenFlow 1.3 and only 1.3 (version bitmap element).
func buildHello() (Message, error) {
	h, err := common.NewHello(int(Version13))
	if err != nil {
		return nil, fmt.Errorf("build hello: %w", err)
	}
	bitmap := common.NewHelloElemVersionBitmap()
	bitmap.Bitmaps = []uint32{1 << Version13}
	h.Elements = []common.HelloElem{bitmap}
	return marshal(h)
}

// buildHelloFailed tells a peer that cannot speak 1.3 why it is disconnected.
func buildHelloFailed(reason string) Message {
	body := make([]byte, 4+len(reason))
	binary.BigEndian.PutUint16(body[0:2], 0) // OFPET_HELLO_FAILED
	binary.BigEndian.PutUint16(body[2:4], 0) // OFPHFC_INCOMPATIBLE
	copy(body[4:], reason)
	return newMessage(typeError, body)
}

func buildEchoRequest() Message     { return newMessage(typeEchoRequest, nil) }
func buildFeaturesRequest() Message { return newMessage(typeFeaturesRequest, nil) }
func buildBarrierRequest() Message  { return newMessage(typeBarrierRequest, nil) }

// buildEchoReply answers an echo request with its own payload (xid is set by
// the sender).
func buildEchoReply(req Message) Message { return newMessage(typeEchoReply, req.Body()) }

// buildRoleRequest encodes ofp_role_request: role, pad(4), generation_id.
func buildRoleRequest(role Role, generation uint64) Message {
	body := make([]byte, 16)
	binary.BigEndian.PutUint32(body[0:4], uint32(role))
	binary.BigEndian.PutUint64(body[8:16], generation)
	return newMessage(typeRoleRequest, body)
}

// FlowFilter selects the flows a dump returns. The zero value selects nothing
// useful (table 0 only, every cookie); use AllTables for every table.
type FlowFilter struct {
	Table      uint8  // a table number, or AllTables
	Cookie     uint64 // compared under CookieMask
	CookieMask uint64 // 0 matches every cookie
}

// AllTables is the wildcard table id (OFPTT_ALL) for dumps and deletes.
const AllTables uint8 = 0xff

// buildFlowStatsRequest encodes a multipart flow-stats request with an empty
// match, any out port and group, and the filter's table and cookie.
func buildFlowStatsRequest(f FlowFilter) (Message, error) {
	req := of13.NewFlowStatsRequest()
	req.TableId = f.Table
	req.Cookie = f.Cookie
	req.CookieMask = f.CookieMask
	mp := &of13.MultipartRequest{
		Header: common.Header{Version: Version13, Type: typeMultipartRequest},
		Type:   of13.MultipartType_Flow,
		Body:   req,
	}
	return marshal(mp)
}

// buildBundleControl encodes an ONF bundle control message.
func buildBundleControl(id uint32, ctrl uint16) (Message, error) {
	return marshal(of13.NewBundleControl(&of13.BundleControl{BundleID: id, Type: ctrl, Flags: bundleFlags}))
}

// buildBundleAdd wraps an encoded message into an ONF bundle add. The inner
// message's xid is set to the add's xid when the Conn sends it (see withXid).
func buildBundleAdd(id uint32, inner Message) (Message, error) {
	if err := checkBundleInner(inner); err != nil {
		return nil, err
	}
	out := make(Message, bundleAddInnerOffset+len(inner))
	putBundleAddHeader(out, id, len(inner))
	copy(out[bundleAddInnerOffset:], inner)
	return out, nil
}

// checkBundleInner checks that inner can travel inside a bundle add.
func checkBundleInner(inner Message) error {
	if len(inner) < headerLen {
		return fmt.Errorf("bundle add: inner message of %d bytes", len(inner))
	}
	if len(inner)+bundleAddInnerOffset > 0xffff {
		return fmt.Errorf("bundle add: inner message of %d bytes does not fit", len(inner))
	}
	return nil
}

// putBundleAddHeader writes the part of a bundle add before its inner
// message of innerLen bytes into dst (xid 0): header, ONF experimenter id,
// exp_type, bundle id, pad, flags.
func putBundleAddHeader(dst []byte, id uint32, innerLen int) {
	dst[0], dst[1] = Version13, typeExperimenter
	binary.BigEndian.PutUint16(dst[2:4], uint16(bundleAddInnerOffset+innerLen))
	binary.BigEndian.PutUint32(dst[4:8], 0)
	binary.BigEndian.PutUint32(dst[8:12], onfExperimenterID)
	binary.BigEndian.PutUint32(dst[12:16], onfBundleAdd)
	binary.BigEndian.PutUint32(dst[16:20], id)
	binary.BigEndian.PutUint16(dst[20:22], 0)
	binary.BigEndian.PutUint16(dst[22:24], bundleFlags)
}

// isBundleAdd reports whether m is an ONF bundle add message.
func isBundleAdd(m Message) bool {
	return len(m) >= bundleAddInnerOffset+headerLen && m.Type() == typeExperimenter &&
		binary.BigEndian.Uint32(m[8:12]) == onfExperimenterID &&
		binary.BigEndian.Uint32(m[12:16]) == onfBundleAdd
}
