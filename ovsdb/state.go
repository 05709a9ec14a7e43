package ovsdb

import (
	"errors"
	"fmt"
	"sort"

	"github.com/ovn-kubernetes/libovsdb/cache"
	"github.com/ovn-kubernetes/libovsdb/model"

	"github.com/brtun/brtun/ovsdb/vswitchd"
)

// state is a read-only snapshot of the monitored tables, indexed the ways
// brtun looks rows up. The rows are shared with libovsdb's cache (which
// copies rows before changing them): never modify them. A state is never
// changed once built (a session's readers share it, see session.view).
type state struct {
	root        *vswitchd.OpenvSwitch // nil while the table is empty
	roots       map[string]*vswitchd.OpenvSwitch
	bridges     map[string]*vswitchd.Bridge
	ports       map[string]*vswitchd.Port
	ifaces      map[string]*vswitchd.Interface
	controllers map[string]*vswitchd.Controller
	flowTables  map[string]*vswitchd.FlowTable

	bridgeByName map[string]*vswitchd.Bridge
	portByName   map[string]*vswitchd.Port
	ifaceByName  map[string]*vswitchd.Interface
	portBridge   map[string]string // port UUID -> bridge UUID
	ifacePort    map[string]string // interface UUID -> port UUID
}

// errNoCache: libovsdb dropped the cache because the connection is gone.
var errNoCache = errors.New("no cache: connection gone")

// snapshot indexes the current content of a libovsdb cache.
func snapshot(tc *cache.TableCache) (*state, error) {
	if tc == nil {
		return nil, errNoCache
	}
	roots, err := rowsOf[*vswitchd.OpenvSwitch](tc, vswitchd.OpenvSwitchTable)
	if err != nil {
		return nil, err
	}
	bridges, err := rowsOf[*vswitchd.Bridge](tc, vswitchd.BridgeTable)
	if err != nil {
		return nil, err
	}
	ports, err := rowsOf[*vswitchd.Port](tc, vswitchd.PortTable)
	if err != nil {
		return nil, err
	}
	ifaces, err := rowsOf[*vswitchd.Interface](tc, vswitchd.InterfaceTable)
	if err != nil {
		return nil, err
	}
	controllers, err := rowsOf[*vswitchd.Controller](tc, vswitchd.ControllerTable)
	if err != nil {
		return nil, err
	}
	flowTables, err := rowsOf[*vswitchd.FlowTable](tc, vswitchd.FlowTableTable)
	if err != nil {
		return nil, err
	}
	st := newState(roots, bridges, ports, ifaces, controllers)
	st.flowTables = flowTables
	return st, nil
}

// newState indexes rows keyed by UUID. It copes with whatever a server may
// send: dangling references, rows referenced twice, repeated names.
func newState(roots map[string]*vswitchd.OpenvSwitch, bridges map[string]*vswitchd.Bridge,
	ports map[string]*vswitchd.Port, ifaces map[string]*vswitchd.Interface,
	controllers map[string]*vswitchd.Controller,
) *state {
	st := &state{
		roots:        roots,
		bridges:      bridges,
		ports:        ports,
		ifaces:       ifaces,
		controllers:  controllers,
		bridgeByName: map[string]*vswitchd.Bridge{},
		portByName:   map[string]*vswitchd.Port{},
		ifaceByName:  map[string]*vswitchd.Interface{},
		portBridge:   map[string]string{},
		ifacePort:    map[string]string{},
	}
	// The table holds at most one row (maxRows 1); pick the smallest UUID
	// should a broken server ever send more, so the choice is stable.
	for _, uuid := range sortedKeys(roots) {
		st.root = roots[uuid]
		break
	}
	// Iterating in UUID order keeps the choice stable when names repeat.
	for _, uuid := range sortedKeys(bridges) {
		b := bridges[uuid]
		st.bridgeByName[b.Name] = b
		for _, p := range b.Ports {
			st.portBridge[p] = uuid
		}
	}
	for _, uuid := range sortedKeys(ports) {
		p := ports[uuid]
		st.portByName[p.Name] = p
		for _, i := range p.Interfaces {
			st.ifacePort[i] = uuid
		}
	}
	for _, uuid := range sortedKeys(ifaces) {
		st.ifaceByName[ifaces[uuid].Name] = ifaces[uuid]
	}
	return st
}

// rowsOf returns the rows of one table keyed by UUID.
func rowsOf[T model.Model](tc *cache.TableCache, table string) (map[string]T, error) {
	rc := tc.Table(table)
	if rc == nil {
		return nil, fmt.Errorf("table %s is not in the cache", table)
	}
	out := map[string]T{}
	for uuid, m := range rc.RowsShallow() {
		row, ok := m.(T)
		if !ok {
			return nil, fmt.Errorf("table %s: row %s has unexpected type %T", table, uuid, m)
		}
		out[uuid] = row
	}
	return out, nil
}

// inCache reports whether tc holds exactly the rows st was built from.
// libovsdb stores a new object for every row it adds or changes, so
// comparing the objects finds any change.
func (st *state) inCache(tc *cache.TableCache) (bool, error) {
	if tc == nil {
		return false, errNoCache
	}
	for _, check := range []func() (bool, error){
		func() (bool, error) { return sameRows(tc, vswitchd.OpenvSwitchTable, st.roots) },
		func() (bool, error) { return sameRows(tc, vswitchd.BridgeTable, st.bridges) },
		func() (bool, error) { return sameRows(tc, vswitchd.PortTable, st.ports) },
		func() (bool, error) { return sameRows(tc, vswitchd.InterfaceTable, st.ifaces) },
		func() (bool, error) { return sameRows(tc, vswitchd.ControllerTable, st.controllers) },
		func() (bool, error) { return sameRows(tc, vswitchd.FlowTableTable, st.flowTables) },
	} {
		if same, err := check(); err != nil || !same {
			return false, err
		}
	}
	return true, nil
}

// sameRows reports whether a table of the cache holds exactly the objects of
// rows.
func sameRows[T model.Model](tc *cache.TableCache, table string, rows map[string]T) (bool, error) {
	rc := tc.Table(table)
	if rc == nil {
		return false, fmt.Errorf("table %s is not in the cache", table)
	}
	cur := rc.RowsShallow()
	if len(cur) != len(rows) {
		return false, nil
	}
	for uuid, m := range cur {
		row, ok := rows[uuid]
		if !ok || model.Model(row) != m {
			return false, nil
		}
	}
	return true, nil
}

// bridgeOfPort returns the bridge holding a port, or nil.
func (st *state) bridgeOfPort(p *vswitchd.Port) *vswitchd.Bridge {
	return st.bridges[st.portBridge[p.UUID]]
}

// portOfIface returns the port holding an interface, or nil.
func (st *state) portOfIface(i *vswitchd.Interface) *vswitchd.Port {
	return st.ports[st.ifacePort[i.UUID]]
}

// firstIface returns the interface of a single-interface port, or nil.
func (st *state) firstIface(p *vswitchd.Port) *vswitchd.Interface {
	if len(p.Interfaces) != 1 {
		return nil
	}
	return st.ifaces[p.Interfaces[0]]
}

// portsOn returns the ports of a bridge sorted by name.
func (st *state) portsOn(b *vswitchd.Bridge) []*vswitchd.Port {
	var out []*vswitchd.Port
	for _, uuid := range b.Ports {
		if p := st.ports[uuid]; p != nil {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// owned reports whether external_ids mark a row as brtun's.
func owned(externalIDs map[string]string) bool {
	return externalIDs[KeyOwner] == OwnerBrtun
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
