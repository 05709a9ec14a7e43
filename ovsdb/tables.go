package ovsdb

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/brtun/brtun/ovsdb/vswitchd"
)

// TableSpec is the Flow_Table row brtun wants for one OpenFlow table of a
// bridge (Bridge.flow_tables maps the table number to it).
type TableSpec struct {
	// ID is the OpenFlow table number.
	ID uint8
	// Name is what ovs-ofctl --names prints instead of the number.
	Name string
	// OwnLimit says brtun owns the row's flow_limit, overflow_policy and
	// groups, as FlowLimit and EvictionGroups say. Otherwise they are left
	// as they are (an operator's limit on a table stays).
	OwnLimit bool
	// FlowLimit bounds the table's flows when positive; the table then
	// evicts (overflow_policy=evict). OVS evicts only flows with a timeout,
	// first from the eviction group holding the most flows, and in a group
	// the flows that expire first. 0: no limit.
	FlowLimit int
	// EvictionGroups are the subfields that group flows for eviction
	// (Flow_Table groups), e.g. "NXM_OF_VLAN_TCI[0..11]"; only used with a
	// FlowLimit.
	EvictionGroups []string
}

// Other_config key of br-int that bounds its MAC learning table.
const keyMACTableSize = "mac-table-size"

// validTables checks the table specs of one bridge.
func validTables(specs []TableSpec) error {
	seen := map[uint8]bool{}
	for _, s := range specs {
		switch {
		case s.ID > 254:
			return fmt.Errorf("table %d: OVS numbers tables 0..254", s.ID)
		case seen[s.ID]:
			return fmt.Errorf("table %d is declared twice", s.ID)
		case s.FlowLimit < 0:
			return fmt.Errorf("table %d: negative flow limit %d", s.ID, s.FlowLimit)
		case !s.OwnLimit && s.FlowLimit != 0:
			return fmt.Errorf("table %d: a flow limit brtun does not own", s.ID)
		case s.FlowLimit == 0 && len(s.EvictionGroups) > 0:
			return fmt.Errorf("table %d: eviction groups without a flow limit", s.ID)
		}
		seen[s.ID] = true
	}
	return nil
}

// flowTableRow is the Flow_Table row spec describes (UUID left empty); a
// new row of a table whose limit brtun does not own has no limit.
func flowTableRow(s TableSpec) *vswitchd.FlowTable {
	name := s.Name
	row := &vswitchd.FlowTable{Name: &name, ExternalIDs: map[string]string{KeyOwner: OwnerBrtun}, Groups: []string{}}
	if s.OwnLimit && s.FlowLimit > 0 {
		limit := s.FlowLimit
		evict := vswitchd.FlowTableOverflowPolicyEvict
		row.FlowLimit = &limit
		row.OverflowPolicy = &evict
		row.Groups = slices.Clone(s.EvictionGroups)
	}
	return row
}

// ensureFlowTables returns the flow_tables map a bridge should hold (cur
// plus the rows of specs: existing rows updated in place, missing ones
// inserted) and whether the map itself differs from cur. Table numbers not
// in specs keep their rows.
func (t *Txn) ensureFlowTables(cur map[int]string, specs []TableSpec) (map[int]string, bool, error) {
	out := map[int]string{}
	for k, v := range cur {
		out[k] = v
	}
	changed := false
	for _, s := range specs {
		want := flowTableRow(s)
		row := t.st.flowTables[cur[int(s.ID)]]
		if row == nil {
			want.UUID = t.namedUUID()
			if err := t.insert(want); err != nil {
				return nil, false, err
			}
			out[int(s.ID)] = want.UUID
			changed = true
			continue
		}
		upd := &vswitchd.FlowTable{UUID: row.UUID}
		var fields []any
		if !sameOptional(row.Name, want.Name) {
			upd.Name = want.Name
			fields = append(fields, &upd.Name)
		}
		if s.OwnLimit && !sameOptional(row.FlowLimit, want.FlowLimit) {
			upd.FlowLimit = want.FlowLimit
			fields = append(fields, &upd.FlowLimit)
		}
		if s.OwnLimit && !sameOptional(row.OverflowPolicy, want.OverflowPolicy) {
			upd.OverflowPolicy = want.OverflowPolicy
			fields = append(fields, &upd.OverflowPolicy)
		}
		if s.OwnLimit && !sameStrings(row.Groups, want.Groups) {
			upd.Groups = want.Groups
			fields = append(fields, &upd.Groups)
		}
		if merged, ch := withKeys(row.ExternalIDs, want.ExternalIDs); ch {
			upd.ExternalIDs = merged
			fields = append(fields, &upd.ExternalIDs)
		}
		if len(fields) > 0 {
			if err := t.update(upd, fields...); err != nil {
				return nil, false, err
			}
		}
	}
	return out, changed, nil
}

// sameOptional compares two optional OVSDB values.
func sameOptional[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// macTableSize is the other_config value for a MAC table size, "" for none.
func macTableSize(n int) string {
	if n <= 0 {
		return ""
	}
	return strconv.Itoa(n)
}
