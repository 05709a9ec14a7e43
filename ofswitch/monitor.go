package ofswitch

import (
	"context"
	"encoding/binary"
	"fmt"

	"go.uber.org/zap"

	"github.com/brtun/brtun/flows"
)

// Flow monitors: the switch reports changes of its flows as they happen.
//
// For OpenFlow 1.3, OVS offers them as ONF extension 1870 (EXT-187), the
// layout `ovs-ofctl -O OpenFlow13 monitor` sends; OVS's NXST_FLOW_MONITOR
// is for OpenFlow 1.0 to 1.2 and refused on a 1.3 connection, and the
// OpenFlow 1.4 message does not exist in 1.3. libOpenflow has no encoder or
// decoder for any of them, so they are written and read here by hand, after
// OVS 3.1's lib/ofp-monitor.c and include/openflow/openflow-1.3.h:
//
//   - the request is a multipart request of type OFPMP_EXPERIMENTER with
//     experimenter ONF and exp_type 1870, followed by one
//     onf_flow_monitor_request per monitor (id, flags, match_len, out_port,
//     table_id, 3 zero bytes) and its padded ofp_match;
//   - the updates come as multipart replies of the same type, with the
//     request's xid for the initial reply and xid 0 afterwards, each a list
//     of nx_flow_update_full (length, event, reason, priority, idle and hard
//     timeouts, match_len, table_id, pad, cookie, then an ofp_match and
//     instructions) or nx_flow_update_abbrev (length, event, xid) entries;
//   - OVS pauses the updates of a connection that falls 128 KiB behind
//     with an OFPT_EXPERIMENTER ONF 1871 and, once the backlog has drained,
//     sends what changed meanwhile and an ONF 1872 (resumed);
//   - a monitor is cancelled by an OFPT_EXPERIMENTER ONF 1870 carrying its id.
//
// A request OVS refuses once it has read past the header (an id still in
// use on the connection, bad flags, a bad table) is answered with a garbled
// error: OVS 3.1's handle_flow_monitor_request hands the request's body,
// not its header, to the error encoder, so the reply carries a version and
// length read from the body (seen: version 1, length 27375), which the
// reader takes for a malformed message and closes the connection on. So a
// caller must send only requests OVS accepts: EncodeFlowMonitorRequest
// refuses bad flags, and ids must not be reused on a connection. The
// request is pinned by testdata/monitor.golden and checked against real
// OVS in ovs_integration_test.go.

// ONF extension 1870 identifiers.
const (
	onfFlowMonitor        uint32 = 1870 // multipart type; also the cancel message
	onfFlowMonitorPaused  uint32 = 1871
	onfFlowMonitorResumed uint32 = 1872

	multipartTypeExperimenter uint16 = 0xffff

	flowMonitorRequestLen = 16 // onf_flow_monitor_request without its match
	flowUpdateFullLen     = 24 // nx_flow_update_full without match and instructions
	flowUpdateAbbrevLen   = 8  // nx_flow_update_abbrev
)

// MonitorFlags say what a flow monitor reports (onf_flow_monitor_flags).
type MonitorFlags uint16

// The monitor flags. At least one of MonitorAdd, MonitorDelete and
// MonitorModify must be set.
const (
	MonitorInitial MonitorFlags = 1 << 0 // the flows that match now, in the reply to the request
	MonitorAdd     MonitorFlags = 1 << 1 // flows as they are added
	MonitorDelete  MonitorFlags = 1 << 2 // flows as they are removed
	MonitorModify  MonitorFlags = 1 << 3 // flows as their actions change
	MonitorActions MonitorFlags = 1 << 4 // updates carry the flow's instructions
	MonitorOwn     MonitorFlags = 1 << 5 // this connection's own changes in full, not abbreviated

	monitorAllFlags = MonitorInitial | MonitorAdd | MonitorDelete | MonitorModify | MonitorActions | MonitorOwn
)

// FlowMonitorRequest is one monitor: the flows of Table (AllTables for
// every table) that Flags asks for. Monitors are per connection; an ID may
// be used once per connection until the monitor is cancelled.
type FlowMonitorRequest struct {
	ID    uint32
	Table uint8
	Flags MonitorFlags
}

// FlowEvent is what a FlowUpdate reports.
type FlowEvent uint8

// The flow events.
const (
	// FlowAdded: a flow was added (or, in the updates after MonitorResumed
	// and the reply with MonitorInitial, is there).
	FlowAdded FlowEvent = iota + 1
	// FlowDeleted: a flow was removed; Reason says why.
	FlowDeleted
	// FlowModified: a flow's actions were changed.
	FlowModified
	// FlowAbbrev: a change made by a message of this very connection,
	// named by its Xid (without MonitorOwn). OVS sends one per burst of
	// changes: a bundle commit of thousands of flow_mods gives one.
	FlowAbbrev
	// MonitorPaused: the switch stopped sending updates because this
	// connection fell behind; anything may change until MonitorResumed.
	MonitorPaused
	// MonitorResumed: updates flow again. The switch sent what changed
	// meanwhile just before, as FlowAdded updates (deletions are lost).
	MonitorResumed
)

// String names the event.
func (e FlowEvent) String() string {
	switch e {
	case FlowAdded:
		return "added"
	case FlowDeleted:
		return "deleted"
	case FlowModified:
		return "modified"
	case FlowAbbrev:
		return "abbrev"
	case MonitorPaused:
		return "paused"
	case MonitorResumed:
		return "resumed"
	}
	return fmt.Sprintf("event(%d)", uint8(e))
}

// Wire values of nx_flow_update_header.event.
const (
	nxfmeAdded    = 0
	nxfmeDeleted  = 1
	nxfmeModified = 2
	nxfmeAbbrev   = 3
)

// FlowUpdate is one report of a flow monitor.
type FlowUpdate struct {
	Event FlowEvent
	// Flow is the flow concerned (FlowAdded, FlowDeleted, FlowModified):
	// table, priority, cookie, timeouts and match, and its actions if the
	// monitor asked for them (MonitorActions; never for a deletion).
	Flow flows.Flow
	// Reason is why a flow was removed (FlowDeleted): OFPRR_IDLE_TIMEOUT
	// (0), OFPRR_HARD_TIMEOUT (1), OFPRR_DELETE (2), OVS's eviction (5)...
	Reason uint16
	// Xid names this connection's message behind a FlowAbbrev.
	Xid uint32
}

// EncodeFlowMonitorRequest builds the ONF 1870 multipart request for the
// monitors, each without a match (every flow of its table).
func EncodeFlowMonitorRequest(reqs ...FlowMonitorRequest) (Message, error) {
	if len(reqs) == 0 {
		return nil, fmt.Errorf("flow monitor request without a monitor")
	}
	b := make([]byte, headerLen, headerLen+16+len(reqs)*(flowMonitorRequestLen+8))
	b[0], b[1] = Version13, typeMultipartRequest
	b = binary.BigEndian.AppendUint16(b, multipartTypeExperimenter)
	b = append(b, 0, 0, 0, 0, 0, 0) // flags, pad
	b = binary.BigEndian.AppendUint32(b, onfExperimenterID)
	b = binary.BigEndian.AppendUint32(b, onfFlowMonitor)
	for _, r := range reqs {
		if r.Flags&(MonitorAdd|MonitorDelete|MonitorModify) == 0 || r.Flags&^monitorAllFlags != 0 {
			return nil, fmt.Errorf("flow monitor %d: bad flags %#x", r.ID, uint16(r.Flags))
		}
		b = binary.BigEndian.AppendUint32(b, r.ID)
		b = binary.BigEndian.AppendUint16(b, uint16(r.Flags))
		b = binary.BigEndian.AppendUint16(b, matchHeaderLen) // match_len: an empty ofp_match
		b = binary.BigEndian.AppendUint32(b, 0xffffffff)     // out_port: OFPP_ANY, any port
		b = append(b, r.Table, 0, 0, 0)
		b = append(b, 0, matchTypeOXM, 0, matchHeaderLen, 0, 0, 0, 0) // ofp_match, padded
	}
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
	return b, nil
}

// EncodeFlowMonitorCancel builds the ONF 1870 message that cancels monitor id.
func EncodeFlowMonitorCancel(id uint32) Message {
	body := make([]byte, 12)
	binary.BigEndian.PutUint32(body[0:4], onfExperimenterID)
	binary.BigEndian.PutUint32(body[4:8], onfFlowMonitor)
	binary.BigEndian.PutUint32(body[8:12], id)
	return newMessage(typeExperimenter, body)
}

// isFlowMonitorReply reports whether a multipart reply carries flow updates
// and returns them, still encoded.
func isFlowMonitorReply(r multipartReply) ([]byte, bool) {
	if r.Type != multipartTypeExperimenter || len(r.Body) < 8 ||
		binary.BigEndian.Uint32(r.Body[0:4]) != onfExperimenterID || binary.BigEndian.Uint32(r.Body[4:8]) != onfFlowMonitor {
		return nil, false
	}
	return r.Body[8:], true
}

// monitorPauseEvent reports whether an experimenter message is ONF's
// paused or resumed, and which.
func monitorPauseEvent(m Message) (FlowEvent, bool) {
	id, typ, err := parseExperimenter(m)
	switch {
	case err != nil || id != onfExperimenterID:
		return 0, false
	case typ == onfFlowMonitorPaused:
		return MonitorPaused, true
	case typ == onfFlowMonitorResumed:
		return MonitorResumed, true
	}
	return 0, false
}

// parseFlowUpdates decodes the flow updates of a monitor reply. Like a
// flow-stats reply, only a structural error (a length that does not add
// up) is an error; matches and actions brtun does not model decode to Raw.
func parseFlowUpdates(b []byte) ([]FlowUpdate, error) {
	var out []FlowUpdate
	for off := 0; off < len(b); {
		if len(b)-off < 4 {
			return nil, fmt.Errorf("%w: flow update at offset %d: %d bytes left", ErrMalformed, off, len(b)-off)
		}
		length := int(binary.BigEndian.Uint16(b[off:]))
		event := binary.BigEndian.Uint16(b[off+2:])
		if length < flowUpdateAbbrevLen || length%8 != 0 || length > len(b)-off {
			return nil, fmt.Errorf("%w: flow update at offset %d has length %d (%d bytes left)", ErrMalformed, off, length, len(b)-off)
		}
		e := b[off : off+length]
		off += length
		switch event {
		case nxfmeAbbrev:
			if length != flowUpdateAbbrevLen {
				return nil, fmt.Errorf("%w: abbreviated flow update of %d bytes", ErrMalformed, length)
			}
			out = append(out, FlowUpdate{Event: FlowAbbrev, Xid: binary.BigEndian.Uint32(e[4:8])})
		case nxfmeAdded, nxfmeDeleted, nxfmeModified:
			u, err := parseFlowUpdateFull(e)
			if err != nil {
				return nil, err
			}
			u.Event = [...]FlowEvent{nxfmeAdded: FlowAdded, nxfmeDeleted: FlowDeleted, nxfmeModified: FlowModified}[event]
			out = append(out, u)
		default:
			return nil, fmt.Errorf("%w: flow update event %d", ErrMalformed, event)
		}
	}
	return out, nil
}

// parseFlowUpdateFull decodes one nx_flow_update_full whose ofp_match is
// OXM (OpenFlow 1.3).
func parseFlowUpdateFull(e []byte) (FlowUpdate, error) {
	if len(e) < flowUpdateFullLen+8 {
		return FlowUpdate{}, fmt.Errorf("%w: full flow update of %d bytes", ErrMalformed, len(e))
	}
	match := e[flowUpdateFullLen:]
	matchType := binary.BigEndian.Uint16(match[0:2])
	matchLen := int(binary.BigEndian.Uint16(match[2:4]))
	padded := (matchLen + 7) / 8 * 8
	if matchType != matchTypeOXM || matchLen < matchHeaderLen || padded > len(match) {
		return FlowUpdate{}, fmt.Errorf("%w: flow update match type %d length %d in %d bytes", ErrMalformed, matchType, matchLen, len(match))
	}
	m, err := decodeMatch(match[matchHeaderLen:matchLen])
	if err != nil {
		return FlowUpdate{}, err
	}
	actions, err := decodeInstructions(match[padded:])
	if err != nil {
		return FlowUpdate{}, err
	}
	return FlowUpdate{
		Reason: binary.BigEndian.Uint16(e[4:6]),
		Flow: flows.Flow{
			Table:       e[14],
			Priority:    binary.BigEndian.Uint16(e[6:8]),
			Cookie:      binary.BigEndian.Uint64(e[16:24]),
			IdleTimeout: binary.BigEndian.Uint16(e[8:10]),
			HardTimeout: binary.BigEndian.Uint16(e[10:12]),
			Match:       m,
			Actions:     actions,
		},
	}, nil
}

// MonitorFlows starts the flow monitors in reqs and returns once the switch
// accepted them. From then on onUpdate receives every update of this
// connection's monitors, from the initial flows on (MonitorInitial), in the
// order the switch sent them, on the connection's reader goroutine: it must
// return quickly and must not call Close. A later call replaces onUpdate.
// A switch that does not support flow monitors refuses with an *OFError.
func (c *Conn) MonitorFlows(ctx context.Context, onUpdate func([]FlowUpdate), reqs ...FlowMonitorRequest) error {
	req, err := EncodeFlowMonitorRequest(reqs...)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.onFlowUpdate = onUpdate
	c.mu.Unlock()
	if _, err := c.roundTrip(ctx, req, typeMultipartReply, true); err != nil {
		return fmt.Errorf("flow monitor: %w", err)
	}
	return nil
}

// CancelFlowMonitor cancels monitor id and returns once the switch has
// processed the cancel (an unknown id is refused with an *OFError).
func (c *Conn) CancelFlowMonitor(ctx context.Context, id uint32) error {
	failed, err := c.sendWithBarrier(ctx, []Message{EncodeFlowMonitorCancel(id)}, 0)
	if err != nil {
		return fmt.Errorf("cancel flow monitor %d: %w", id, err)
	}
	if len(failed) > 0 {
		return fmt.Errorf("cancel flow monitor %d: %w", id, failed[0].Err)
	}
	return nil
}

// flowUpdates hands the updates of a flow-monitor reply, the reply to the
// request or a later unsolicited one, to the connection's update callback,
// and reports whether r was one. The reader checked it already
// (parseMultipartReply).
func (c *Conn) flowUpdates(r multipartReply) bool {
	body, ok := isFlowMonitorReply(r)
	if !ok {
		return false
	}
	updates, err := parseFlowUpdates(body)
	if err != nil {
		c.log.Warn("dropping a flow monitor reply", zap.Error(err))
		return true
	}
	c.toMonitor(updates)
	return true
}

// monitorPaused hands the switch's flow-monitor paused or resumed message
// to the update callback and reports whether m was one.
func (c *Conn) monitorPaused(m Message) bool {
	if m.Type() != typeExperimenter {
		return false
	}
	ev, ok := monitorPauseEvent(m)
	if ok {
		c.toMonitor([]FlowUpdate{{Event: ev}})
	}
	return ok
}

// toMonitor calls the update callback, if there is one.
func (c *Conn) toMonitor(updates []FlowUpdate) {
	c.mu.Lock()
	fn := c.onFlowUpdate
	c.mu.Unlock()
	switch {
	case len(updates) == 0:
	case fn == nil:
		c.log.Debug("flow monitor message without a monitor", zap.Int("updates", len(updates)))
	default:
		fn(updates)
	}
}
