package ovsdb

import (
	"fmt"
	"maps"
	"sort"
	"strconv"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/brtun/brtun/ovsdb/vswitchd"
)

// Txn collects the changes of one OVSDB transaction. Its methods (EnsureHost,
// EnsureTunnels, BindPort, UnbindPort) compare the desired state with the
// snapshot taken when the transaction began, plus what earlier calls on the
// same Txn added, and append only the operations needed; nothing reaches the
// database before Client.Update commits. A Txn is used by one goroutine.
type Txn struct {
	api client.API
	st  *state
	seq int

	ops     []ovsdb.Operation
	summary []string
	// conflicts are desired rows that were skipped because the name is
	// taken by a row brtun must not touch; the rest is still committed.
	conflicts []error

	claimed    map[string]bool             // interface names handled in this Txn
	newRoot    *vswitchd.OpenvSwitch       // root row created by this Txn
	newBridges map[string]*vswitchd.Bridge // bridges created by this Txn, by name
	newOrder   []string                    // creation order of newBridges
	portAdds   map[string][]string         // existing bridge UUID -> port refs
	portDels   map[string][]string         // existing bridge UUID -> port UUIDs
	rootAdds   []string                    // bridge refs to add to the root row
}

func newTxn(api client.API, st *state) *Txn {
	return &Txn{
		api:        api,
		st:         st,
		claimed:    map[string]bool{},
		newBridges: map[string]*vswitchd.Bridge{},
		portAdds:   map[string][]string{},
		portDels:   map[string][]string{},
	}
}

// ConflictError lists desired rows that were not created or changed because
// rows brtun does not own already use their names. Everything else in the
// transaction was applied.
type ConflictError struct {
	Conflicts []error
}

func (e *ConflictError) Error() string {
	msgs := make([]string, len(e.Conflicts))
	for i, c := range e.Conflicts {
		msgs[i] = c.Error()
	}
	return "conflicting rows left alone: " + strings.Join(msgs, "; ")
}

// Unwrap returns the individual conflicts.
func (e *ConflictError) Unwrap() []error { return e.Conflicts }

// namedUUID returns a fresh name for a row inserted by this transaction.
func (t *Txn) namedUUID() string {
	t.seq++
	return "brtun_row" + strconv.Itoa(t.seq)
}

func (t *Txn) note(format string, args ...any) {
	t.summary = append(t.summary, fmt.Sprintf(format, args...))
}

func (t *Txn) conflict(format string, args ...any) {
	t.conflicts = append(t.conflicts, fmt.Errorf(format, args...))
}

func (t *Txn) insert(m model.Model) error {
	ops, err := t.api.Create(m)
	if err != nil {
		return fmt.Errorf("build insert: %w", err)
	}
	t.ops = append(t.ops, ops...)
	return nil
}

// update sets the given fields of the row whose UUID m carries.
func (t *Txn) update(m model.Model, fields ...any) error {
	ops, err := t.api.Where(m).Update(m, fields...)
	if err != nil {
		return fmt.Errorf("build update: %w", err)
	}
	t.ops = append(t.ops, ops...)
	return nil
}

func (t *Txn) mutate(m model.Model, mutations ...model.Mutation) error {
	ops, err := t.api.Where(m).Mutate(m, mutations...)
	if err != nil {
		return fmt.Errorf("build mutate: %w", err)
	}
	t.ops = append(t.ops, ops...)
	return nil
}

// claim records that this transaction handles interface name; handling the
// same name twice in one transaction is a caller error.
func (t *Txn) claim(name string) error {
	if t.claimed[name] {
		return fmt.Errorf("interface %s is changed twice in one transaction", name)
	}
	t.claimed[name] = true
	return nil
}

// bridgeExists reports whether a bridge exists or is created by this Txn.
func (t *Txn) bridgeExists(name string) bool {
	return t.st.bridgeByName[name] != nil || t.newBridges[name] != nil
}

// addPort attaches a port (UUID or named UUID) to a bridge.
func (t *Txn) addPort(bridge, portRef string) error {
	if nb := t.newBridges[bridge]; nb != nil {
		nb.Ports = append(nb.Ports, portRef)
		return nil
	}
	b := t.st.bridgeByName[bridge]
	if b == nil {
		return fmt.Errorf("bridge %s does not exist", bridge)
	}
	t.portAdds[b.UUID] = append(t.portAdds[b.UUID], portRef)
	return nil
}

// removePort detaches a port from its bridge; OVSDB then deletes the
// unreferenced Port and Interface rows.
func (t *Txn) removePort(b *vswitchd.Bridge, p *vswitchd.Port) {
	t.portDels[b.UUID] = append(t.portDels[b.UUID], p.UUID)
}

// finish appends the operations that were collected per row (bridge
// inserts, port set mutations, the root row) and returns all operations.
func (t *Txn) finish() ([]ovsdb.Operation, error) {
	for _, name := range t.newOrder {
		if err := t.insert(t.newBridges[name]); err != nil {
			return nil, err
		}
	}
	switch {
	case t.newRoot != nil:
		t.newRoot.Bridges = append(t.newRoot.Bridges, t.rootAdds...)
		if err := t.insert(t.newRoot); err != nil {
			return nil, err
		}
	case len(t.rootAdds) > 0:
		root := &vswitchd.OpenvSwitch{UUID: t.st.root.UUID}
		if err := t.mutate(root, model.Mutation{Field: &root.Bridges, Mutator: ovsdb.MutateOperationInsert, Value: t.rootAdds}); err != nil {
			return nil, err
		}
	}
	for _, uuid := range sortedKeys(t.portAdds) {
		b := &vswitchd.Bridge{UUID: uuid}
		if err := t.mutate(b, model.Mutation{Field: &b.Ports, Mutator: ovsdb.MutateOperationInsert, Value: unique(t.portAdds[uuid])}); err != nil {
			return nil, err
		}
	}
	for _, uuid := range sortedKeys(t.portDels) {
		b := &vswitchd.Bridge{UUID: uuid}
		if err := t.mutate(b, model.Mutation{Field: &b.Ports, Mutator: ovsdb.MutateOperationDelete, Value: unique(t.portDels[uuid])}); err != nil {
			return nil, err
		}
	}
	return t.ops, nil
}

// comment is the transaction comment ovsdb-tool show-log prints.
func (t *Txn) comment() string {
	return "brtun: " + strings.Join(t.summary, "; ")
}

// conflictErr returns the conflicts as one error, or nil.
func (t *Txn) conflictErr() error {
	if len(t.conflicts) == 0 {
		return nil
	}
	return &ConflictError{Conflicts: t.conflicts}
}

// portSpec is the desired state of a single-interface port brtun owns.
type portSpec struct {
	bridge    string
	name      string // port and interface name
	ifaceType string
	options   map[string]string // interface options, owned entirely
	role      string
	portIDs   map[string]string // port external_ids besides owner and role
	// adopt takes over a port of that name already on the bridge that
	// brtun does not own (a bridge's internal port made by ovs-vsctl, a
	// patch port made by hand); otherwise such a port is a conflict.
	adopt bool
}

// ensurePort creates the port or brings an existing one to spec.
func (t *Txn) ensurePort(s portSpec) error {
	if err := t.claim(s.name); err != nil {
		return err
	}
	portIDs := map[string]string{KeyOwner: OwnerBrtun, KeyRole: s.role}
	maps.Copy(portIDs, s.portIDs)
	ifaceIDs := map[string]string{KeyOwner: OwnerBrtun}

	port := t.st.portByName[s.name]
	iface := t.st.ifaceByName[s.name]
	if port == nil && iface == nil {
		ifaceRef, portRef := t.namedUUID(), t.namedUUID()
		if err := t.insert(&vswitchd.Interface{
			UUID: ifaceRef, Name: s.name, Type: s.ifaceType, Options: s.options, ExternalIDs: ifaceIDs,
		}); err != nil {
			return err
		}
		if err := t.insert(&vswitchd.Port{
			UUID: portRef, Name: s.name, Interfaces: []string{ifaceRef}, ExternalIDs: portIDs,
		}); err != nil {
			return err
		}
		return t.addPort(s.bridge, portRef)
	}
	if port == nil {
		t.conflict("interface %s already exists on another port", s.name)
		return nil
	}
	if b := t.st.bridgeOfPort(port); b == nil || b.Name != s.bridge {
		t.conflict("port %s exists outside %s", s.name, s.bridge)
		return nil
	}
	if !owned(port.ExternalIDs) && !s.adopt {
		t.conflict("port %s on %s is not owned by brtun", s.name, s.bridge)
		return nil
	}
	iface = t.st.firstIface(port)
	if iface == nil || iface.Name != s.name {
		t.conflict("port %s on %s does not hold exactly interface %s", s.name, s.bridge, s.name)
		return nil
	}
	if ids, changed := withKeys(port.ExternalIDs, portIDs); changed {
		p := &vswitchd.Port{UUID: port.UUID, ExternalIDs: ids}
		if err := t.update(p, &p.ExternalIDs); err != nil {
			return err
		}
	}
	return t.ensureIface(iface, s.ifaceType, s.options, ifaceIDs)
}

// ensureIface brings type, options and external_ids of an interface to the
// desired values, in one update when anything differs.
func (t *Txn) ensureIface(iface *vswitchd.Interface, ifaceType string, options, ids map[string]string) error {
	want := &vswitchd.Interface{UUID: iface.UUID}
	var fields []any
	if iface.Type != ifaceType {
		want.Type = ifaceType
		fields = append(fields, &want.Type)
	}
	if !sameMap(iface.Options, options) {
		want.Options = options
		fields = append(fields, &want.Options)
	}
	if merged, changed := withKeys(iface.ExternalIDs, ids); changed {
		want.ExternalIDs = merged
		fields = append(fields, &want.ExternalIDs)
	}
	if len(fields) == 0 {
		return nil
	}
	return t.update(want, fields...)
}

// withKeys returns a copy of cur with the keys of set applied and the keys
// in del removed, and whether that differs from cur.
func withKeys(cur, set map[string]string, del ...string) (map[string]string, bool) {
	out := maps.Clone(cur)
	if out == nil {
		out = map[string]string{}
	}
	changed := false
	for k, v := range set {
		if old, ok := out[k]; !ok || old != v {
			out[k] = v
			changed = true
		}
	}
	for _, k := range del {
		if _, ok := out[k]; ok {
			delete(out, k)
			changed = true
		}
	}
	return out, changed
}

// sameMap treats nil and empty maps as equal.
func sameMap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	return maps.Equal(a, b)
}

// unique returns the strings without repeats, in first-seen order (an
// OVSDB set must not hold duplicates).
func unique(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// sameStrings compares two string sets.
func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	x := append([]string(nil), a...)
	y := append([]string(nil), b...)
	sort.Strings(x)
	sort.Strings(y)
	for i := range x {
		if x[i] != y[i] {
			return false
		}
	}
	return true
}
