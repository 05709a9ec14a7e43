package hollow

import (
	"sort"

	"github.com/brtun/brtun/ofswitch"
)

// Flow monitors (ONF extension 1870, what brtun asks of every bridge it
// masters). OVS reports the changes of other connections and learn(); a
// hollow bridge has no other writer and learns nothing, so after the reply
// to the request (empty, or the flows there now with MonitorInitial) it
// never sends an update, which is what OVS would send in its place. brtun's
// own changes would come back abbreviated, which brtun ignores; they are
// not sent either.

// handleFlowMonitor answers an ONF 1870 request as OVS does: each monitor
// is checked (flags, table, an id not in use on this connection) before any
// is added; the reply lists the initial flows of those that ask for them.
// A monitor with a match is refused (BAD_REQUEST/BAD_MULTIPART): brtun
// watches whole tables and the hollow table does not filter updates by
// match.
func (c *ctrlConn) handleFlowMonitor(m ofswitch.Message, specs []ofswitch.FlowMonitorSpec) ofswitch.Message {
	b := c.b
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range specs {
		switch {
		case !ofswitch.ValidMonitorFlags(s.Flags):
			return ofswitch.MonitorErrorReply(m, ofswitch.MonitorErrBadFlag)
		case s.Table != ofswitch.AllTables && s.Table >= 254:
			return ofswitch.ErrorReply(m, errBadRequest, codeBadTableIDRequest)
		case len(s.Match) > 0:
			return ofswitch.ErrorReply(m, errBadRequest, codeBadMultipart)
		case c.monitors[s.ID]:
			return ofswitch.MonitorErrorReply(m, ofswitch.MonitorErrExists)
		}
	}
	if c.monitors == nil {
		c.monitors = map[uint32]bool{}
	}
	var updates []byte
	for _, s := range specs {
		c.monitors[s.ID] = true
		if s.Flags&ofswitch.MonitorInitial != 0 {
			updates = append(updates, b.table.initialUpdates(s)...)
		}
	}
	return ofswitch.FlowMonitorReply(m.Xid(), updates)
}

// handleFlowMonitorCancel removes a monitor; an unknown id is refused.
func (c *ctrlConn) handleFlowMonitorCancel(m ofswitch.Message, id uint32) ofswitch.Message {
	c.b.mu.Lock()
	defer c.b.mu.Unlock()
	if !c.monitors[id] {
		return ofswitch.MonitorErrorReply(m, ofswitch.MonitorErrUnknown)
	}
	delete(c.monitors, id)
	return nil
}

// initialUpdates are the flows of the monitor's table(s) as "added"
// updates, in a stable order, with their instructions if it asks for
// actions.
func (t *flowTable) initialUpdates(s ofswitch.FlowMonitorSpec) []byte {
	entries := make([]*flowEntry, 0, len(t.byKey))
	for _, e := range t.byKey {
		if s.Table == ofswitch.AllTables || e.mod.Table == s.Table {
			entries = append(entries, e)
		}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].key.String() < entries[j].key.String() })
	var out []byte
	for _, e := range entries {
		var instructions []byte
		if s.Flags&ofswitch.MonitorActions != 0 {
			instructions = e.mod.Instructions
		}
		out = append(out, ofswitch.FlowUpdateAdded(e.mod.Table, e.mod.Priority, e.mod.IdleTimeout, e.mod.HardTimeout, e.mod.Cookie, e.mod.Match, instructions)...)
	}
	return out
}
