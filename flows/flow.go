// Package flows is the br-tun/br-int pipeline as data: the table
// declarations, the compiler from one host's view to the complete desired
// flow set, and the canonical text form of a flow, which is exactly a line of
// `ovs-ofctl -O OpenFlow13 dump-flows --no-stats --no-names` on OVS 3.1.
//
// The package is pure: no I/O and no OpenFlow library. ofswitch
// encodes Flow values into FlowMods and decodes flow stats back into them.
package flows

import (
	"bytes"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// DefaultPriority is OpenFlow's default flow priority; OVS omits it when
// printing a flow.
const DefaultPriority uint16 = 0x8000

// Flow is one OpenFlow 1.3 flow entry. Its identity is Key() (table,
// priority, match); cookie, timeouts and actions are its content. Empty
// Actions (nil or zero length) means drop. Timeouts are zero for every flow
// brtun installs; they are there so flows created by learn() decode
// faithfully. Compare flows with Equal, Key, SameContent and SameValues,
// which agree with how OVS prints them.
type Flow struct {
	Table       uint8
	Priority    uint16
	Cookie      uint64
	IdleTimeout uint16
	HardTimeout uint16
	Match       Match
	Actions     []Action
}

// Key is a flow's identity on a switch: OpenFlow's strict match is table,
// priority and match. It is comparable and usable as a map key.
type Key struct {
	Table    uint8
	Priority uint16
	Match    string // Match.String()
}

// String prints the key as "table=N,priority=P,MATCH".
func (k Key) String() string {
	s := "table=" + strconv.Itoa(int(k.Table)) + ",priority=" + strconv.Itoa(int(k.Priority))
	if k.Match != "" {
		s += "," + k.Match
	}
	return s
}

// Key returns the flow's identity.
func (f Flow) Key() Key { return Key{Table: f.Table, Priority: f.Priority, Match: f.Match.String()} }

// String prints the flow exactly as one line of
// `ovs-ofctl -O OpenFlow13 dump-flows --no-stats --no-names` on OVS 3.1,
// without the leading space:
// "cookie=0x..., table=3, priority=1,reg0=0x1/0xff,tun_id=0x1 actions=...".
func (f Flow) String() string {
	var b strings.Builder
	b.Grow(128)
	if f.Cookie != 0 {
		b.WriteString("cookie=0x")
		b.WriteString(strconv.FormatUint(f.Cookie, 16))
		b.WriteString(", ")
	}
	if f.Table != 0 {
		b.WriteString("table=")
		b.WriteString(strconv.Itoa(int(f.Table)))
		b.WriteString(", ")
	}
	if f.IdleTimeout != 0 {
		b.WriteString("idle_timeout=")
		b.WriteString(strconv.Itoa(int(f.IdleTimeout)))
		b.WriteString(", ")
	}
	if f.HardTimeout != 0 {
		b.WriteString("hard_timeout=")
		b.WriteString(strconv.Itoa(int(f.HardTimeout)))
		b.WriteString(", ")
	}
	var m strings.Builder
	if f.Priority != DefaultPriority {
		m.WriteString("priority=")
		m.WriteString(strconv.Itoa(int(f.Priority)))
		m.WriteByte(',')
	}
	f.Match.format(&m)
	if ms := strings.TrimSuffix(m.String(), ","); ms != "" {
		b.WriteString(ms)
		b.WriteByte(' ')
	}
	b.WriteString("actions=")
	formatActions(&b, f.Actions)
	return b.String()
}

// ActionsString prints only the actions, as after "actions=" in a dump.
func (f Flow) ActionsString() string {
	var b strings.Builder
	formatActions(&b, f.Actions)
	return b.String()
}

// Equal reports whether two flows are the same entry with the same content,
// that is whether OVS prints them identically.
func (f Flow) Equal(g Flow) bool { return f.String() == g.String() }

// SameContent reports whether two flows with the same Key need no change:
// cookie, timeouts and actions are equal. Actions that are the same values
// render the same, so only lists that differ as values (a decoded flow may
// hold another value for the same action) are compared as text: a resync
// compares every flow of a switch.
func (f Flow) SameContent(g Flow) bool {
	return f.sameHeader(g) && (sameActions(f.Actions, g.Actions) || f.ActionsString() == g.ActionsString())
}

// SameValues reports whether g's cookie, timeouts and actions are the same
// values as f's: SameContent without the comparison as text, which costs
// the rendering of both action lists when they differ as values. A flow
// compiled twice from the same inputs has the same values.
func (f Flow) SameValues(g Flow) bool {
	return f.sameHeader(g) && sameActions(f.Actions, g.Actions)
}

func (f Flow) sameHeader(g Flow) bool {
	return f.Cookie == g.Cookie && f.IdleTimeout == g.IdleTimeout && f.HardTimeout == g.HardTimeout
}

// sameActions reports whether two action lists hold the same values, as
// reflect.DeepEqual would (nil and empty byte strings aside, which render
// alike), without reflection for brtun's own action types: a reconcile
// compares every flow of a bridge whose flows changed.
func sameActions(a, b []Action) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !sameAction(a[i], b[i]) {
			return false
		}
	}
	return true
}

func sameAction(a, b Action) bool {
	switch x := a.(type) {
	case SetField:
		y, ok := b.(SetField)
		return ok && x.Field == y.Field && bytes.Equal(x.Value, y.Value)
	case Learn:
		y, ok := b.(Learn)
		return ok && x.Table == y.Table && x.IdleTimeout == y.IdleTimeout && x.HardTimeout == y.HardTimeout &&
			x.Priority == y.Priority && x.Cookie == y.Cookie && slices.Equal(x.Specs, y.Specs)
	case Raw:
		y, ok := b.(Raw)
		return ok && bytes.Equal(x.Bytes, y.Bytes)
	case Output, InPort, Normal, ToController, Meter, GotoTable, Resubmit, PushVLAN, PopVLAN, Load, Move:
		return a == b // comparable values
	}
	if t := reflect.TypeOf(a); t == nil || !t.Comparable() {
		return reflect.DeepEqual(a, b)
	}
	return a == b
}

// SortFlows orders flows by table, then priority (highest first), then
// match, then their whole text: the order of the golden files.
func SortFlows(fs []Flow) {
	type keyed struct {
		key  Key
		text string
		flow Flow
	}
	ks := make([]keyed, len(fs))
	for i, f := range fs {
		ks[i] = keyed{key: f.Key(), text: f.String(), flow: f}
	}
	sort.SliceStable(ks, func(a, b int) bool {
		ka, kb := ks[a].key, ks[b].key
		switch {
		case ka.Table != kb.Table:
			return ka.Table < kb.Table
		case ka.Priority != kb.Priority:
			return ka.Priority > kb.Priority
		case ka.Match != kb.Match:
			return ka.Match < kb.Match
		}
		return ks[a].text < ks[b].text
	})
	for i := range ks {
		fs[i] = ks[i].flow
	}
}

// Strings returns the String of each flow, in order.
func Strings(fs []Flow) []string {
	out := make([]string, len(fs))
	for i := range fs {
		out[i] = fs[i].String()
	}
	return out
}
