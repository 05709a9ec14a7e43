package hollow

import (
	"maps"
	"sort"
	"time"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/ofswitch"
)

// flowEntry is one installed flow: the bytes the controller sent and its
// identity, nothing decoded (a thousand hosts of flows live in one process;
// what a rare filter needs is decoded then). It is never changed once in a
// table; a modify replaces it, so a table is copied for a bundle by its map.
type flowEntry struct {
	mod     ofswitch.FlowMod // table, priority, cookie, timeouts, match, instructions
	key     flows.Key
	created time.Time
}

// entries decodes the match entries (checked when the flow was installed).
func (e *flowEntry) entries() []ofswitch.MatchEntry {
	m, _ := ofswitch.MatchEntries(e.mod.Match)
	return m
}

// outputsTo is the out_port/out_group filter of a modify, delete or dump.
func (e *flowEntry) outputsTo(outPort, outGroup uint32) bool {
	if outPort == ofppAny && outGroup == ofpgAny {
		return true
	}
	f, err := ofswitch.DecodeFlow(e.stats(time.Time{}))
	return err == nil && outputsTo(f, outPort, outGroup)
}

// flowTable is a bridge's flows, all tables, by strict identity.
type flowTable struct {
	byKey map[flows.Key]*flowEntry
}

func newFlowTable() *flowTable { return &flowTable{byKey: map[flows.Key]*flowEntry{}} }

// clone copies the table for a bundle: entries are shared, never mutated.
func (t *flowTable) clone() *flowTable { return &flowTable{byKey: maps.Clone(t.byKey)} }

// ofError is an OpenFlow error type and code to answer with.
type ofError struct{ typ, code uint16 }

// flowOp is a checked flow mod, ready to apply.
type flowOp struct {
	mod   ofswitch.FlowMod
	key   flows.Key
	match []ofswitch.MatchEntry
}

// parseFlowOp decodes and checks a flow mod the way OVS does before it
// touches a table: structure, command, table id, goto_table going forward.
func parseFlowOp(m ofswitch.Message) (flowOp, *ofError) {
	fm, err := ofswitch.ParseFlowMod(m)
	if err != nil {
		return flowOp{}, &ofError{errBadRequest, codeBadLen}
	}
	if fm.Command > ofswitch.FlowDeleteStrict {
		return flowOp{}, &ofError{errFlowModFailed, codeBadCommand}
	}
	isDelete := fm.Command == ofswitch.FlowDelete || fm.Command == ofswitch.FlowDeleteStrict
	if fm.Table >= 254 && !(isDelete && fm.Table == ofswitch.AllTables) {
		return flowOp{}, &ofError{errFlowModFailed, codeBadTableID}
	}
	f, err := ofswitch.DecodeFlow(ofswitch.FlowStats{
		Table: fm.Table, Priority: fm.Priority, Cookie: fm.Cookie,
		IdleTimeout: fm.IdleTimeout, HardTimeout: fm.HardTimeout,
		Match: fm.Match, Instructions: fm.Instructions,
	})
	if err != nil {
		return flowOp{}, &ofError{errBadRequest, codeBadLen}
	}
	if !isDelete {
		if e := checkFlow(f); e != nil {
			return flowOp{}, e
		}
		for _, a := range f.Actions {
			if g, ok := a.(flows.GotoTable); ok && g.Table <= fm.Table {
				return flowOp{}, &ofError{errBadInstruction, codeBadTableID}
			}
		}
	}
	entries, err := ofswitch.MatchEntries(fm.Match)
	if err != nil {
		return flowOp{}, &ofError{errBadRequest, codeBadLen}
	}
	return flowOp{mod: fm, key: f.Key(), match: entries}, nil
}

// apply carries out a checked flow mod with OpenFlow 1.3 semantics as OVS
// implements them: add replaces the flow with the same table, priority and
// match; modify changes only the instructions of matching flows (their
// cookie stays) and adds nothing when none matches; delete removes the
// matching flows; the non-strict forms select by match subsumption, every
// form except add by cookie under cookie_mask and by out_port/out_group.
func (t *flowTable) apply(op flowOp, now time.Time) {
	fm := op.mod
	switch fm.Command {
	case ofswitch.FlowAdd:
		t.byKey[op.key] = &flowEntry{mod: fm, key: op.key, created: now}
	case ofswitch.FlowModify, ofswitch.FlowModifyStrict:
		for _, e := range t.selectFor(op, fm.Command == ofswitch.FlowModifyStrict) {
			mod := e.mod
			mod.Instructions = fm.Instructions
			t.byKey[e.key] = &flowEntry{mod: mod, key: e.key, created: e.created}
		}
	case ofswitch.FlowDelete, ofswitch.FlowDeleteStrict:
		for _, e := range t.selectFor(op, fm.Command == ofswitch.FlowDeleteStrict) {
			delete(t.byKey, e.key)
		}
	}
}

// selectFor returns the flows a modify or delete acts on.
func (t *flowTable) selectFor(op flowOp, strict bool) []*flowEntry {
	fm := op.mod
	var out []*flowEntry
	consider := func(e *flowEntry) {
		if fm.CookieMask != 0 && e.mod.Cookie&fm.CookieMask != fm.Cookie&fm.CookieMask {
			return
		}
		isDelete := fm.Command == ofswitch.FlowDelete || fm.Command == ofswitch.FlowDeleteStrict
		if isDelete && !e.outputsTo(fm.OutPort, fm.OutGroup) {
			return
		}
		out = append(out, e)
	}
	if strict {
		if e := t.byKey[op.key]; e != nil {
			consider(e)
		}
		return out
	}
	for _, e := range t.byKey {
		if fm.Table != ofswitch.AllTables && e.mod.Table != fm.Table {
			continue
		}
		if len(op.match) == 0 || subsumes(op.match, e.entries()) {
			consider(e)
		}
	}
	return out
}

// outputsTo is the out_port/out_group filter: OFPP_ANY and OFPG_ANY accept
// every flow; a port accepts flows with an output to it.
func outputsTo(f flows.Flow, outPort, outGroup uint32) bool {
	if outGroup != ofpgAny {
		return false // brtun's flows use no groups
	}
	if outPort == ofppAny {
		return true
	}
	for _, a := range f.Actions {
		if o, ok := a.(flows.Output); ok && o.Port == outPort {
			return true
		}
	}
	return false
}

// subsumes reports whether a flow with match entries have lies inside the
// (wider or equal) request match want: every field of want is in have, at
// least as specific, with equal bits under want's mask.
func subsumes(want, have []ofswitch.MatchEntry) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			if h.Class != w.Class || h.Field != w.Field || len(h.Value) != len(w.Value) {
				continue
			}
			found = true
			for i := range w.Value {
				wm, hm := byte(0xff), byte(0xff)
				if w.Mask != nil {
					wm = w.Mask[i]
				}
				if h.Mask != nil {
					hm = h.Mask[i]
				}
				if wm&^hm != 0 || w.Value[i]&wm != h.Value[i]&wm {
					return false
				}
			}
			break
		}
		if !found {
			return false
		}
	}
	return true
}

// sorted returns the flows of a table (or AllTables) in dump order: table,
// then priority from high to low, then match text.
func (t *flowTable) sorted(table uint8) []*flowEntry {
	var out []*flowEntry
	for _, e := range t.byKey {
		if table == ofswitch.AllTables || e.mod.Table == table {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.mod.Table != b.mod.Table {
			return a.mod.Table < b.mod.Table
		}
		if a.mod.Priority != b.mod.Priority {
			return a.mod.Priority > b.mod.Priority
		}
		return a.key.Match < b.key.Match
	})
	return out
}

// stats is the flow-stats entry of a flow, as the switch reports it.
func (e *flowEntry) stats(now time.Time) ofswitch.FlowStats {
	return ofswitch.FlowStats{
		Table: e.mod.Table, Priority: e.mod.Priority, Cookie: e.mod.Cookie,
		IdleTimeout: e.mod.IdleTimeout, HardTimeout: e.mod.HardTimeout, Flags: e.mod.Flags,
		Duration: now.Sub(e.created), Match: e.mod.Match, Instructions: e.mod.Instructions,
	}
}

// decoded returns the flows of a table (or AllTables) decoded from the very
// flow-stats entries a dump sends.
func (t *flowTable) decoded(table uint8) []flows.Flow {
	now := time.Now()
	var out []flows.Flow
	for _, e := range t.sorted(table) {
		var buf []byte
		buf = ofswitch.AppendFlowStats(buf, e.stats(now))
		entries, err := ofswitch.ParseFlowStatsBody(buf)
		if err != nil || len(entries) != 1 {
			continue // cannot happen: the entry was checked when installed
		}
		f, err := ofswitch.DecodeFlow(entries[0])
		if err != nil {
			continue
		}
		out = append(out, f)
	}
	return out
}

// flowStatsReply answers an OFPMP_FLOW request, split into parts of at
// most 64 KiB like OVS, the last one without the MORE flag.
func (t *flowTable) flowStatsReply(xid uint32, req ofswitch.FlowStatsRequest) ([]ofswitch.Message, error) {
	match, err := ofswitch.MatchEntries(req.Match)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	const maxBody = 0xffff - 16 // header and multipart header
	var parts []ofswitch.Message
	var body []byte
	for _, e := range t.sorted(req.Table) {
		if req.CookieMask != 0 && e.mod.Cookie&req.CookieMask != req.Cookie&req.CookieMask {
			continue
		}
		if !e.outputsTo(req.OutPort, req.OutGroup) || len(match) > 0 && !subsumes(match, e.entries()) {
			continue
		}
		entry := ofswitch.AppendFlowStats(nil, e.stats(now))
		if len(body)+len(entry) > maxBody && len(body) > 0 {
			parts = append(parts, ofswitch.MultipartReply(xid, ofswitch.MultipartFlow, true, body))
			body = nil
		}
		body = append(body, entry...)
	}
	return append(parts, ofswitch.MultipartReply(xid, ofswitch.MultipartFlow, false, body)), nil
}
