package ovsdb

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/brtun/brtun/ovsdb/vswitchd"
)

// HostSpec is the desired bridge setup of one host.
type HostSpec struct {
	// Name is the host name; with the bridge name it determines each
	// bridge's datapath id (see DatapathID).
	Name string
	// DatapathType is the OVS datapath type of both bridges, used verbatim:
	// "system" (the default when empty), "netdev", "dummy", ...
	DatapathType string
	// ControllerTargets are the OpenFlow controller targets of both bridges
	// (e.g. "tcp:198.51.100.254:6653"). The bridges get exactly these; an
	// empty non-nil list removes every controller, and nil leaves the
	// bridges' controllers as the operator set them (ovs-vsctl
	// set-controller).
	ControllerTargets []string
	// Tables are the Flow_Table rows of each bridge, by bridge name
	// (BridgeInt, BridgeTun): the tables' names and limits. Each listed
	// table number gets a row brtun owns; other numbers are left alone.
	Tables map[string][]TableSpec
	// MACTableSize is br-int's other_config:mac-table-size, the bound of
	// its NORMAL MAC learning table; 0 leaves the key as it is.
	MACTableSize int
}

// DatapathID returns the datapath id brtun gives a bridge of a host, so the
// controller can tell which switch connected. It is never zero.
func DatapathID(host, bridge string) uint64 {
	sum := sha256.Sum256([]byte("brtun-dpid\x00" + host + "\x00" + bridge))
	id := binary.BigEndian.Uint64(sum[:8])
	if id == 0 {
		id = 1
	}
	return id
}

// FormatDatapathID renders a datapath id the way OVS stores it: 16 lower-case
// hex digits.
func FormatDatapathID(id uint64) string {
	return fmt.Sprintf("%016x", id)
}

// ParseDatapathID parses 16 hex digits (an optional 0x prefix is accepted).
func ParseDatapathID(s string) (uint64, error) {
	s = strings.TrimPrefix(s, "0x")
	if len(s) != 16 {
		return 0, fmt.Errorf("datapath id %q: want 16 hex digits", s)
	}
	id, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("datapath id %q: %w", s, err)
	}
	return id, nil
}

// EnsureHost creates or repairs br-int and br-tun as spec says, in one
// transaction, and waits until ovs-vswitchd applied it. A second call with
// the same spec sends nothing.
func (c *Client) EnsureHost(ctx context.Context, spec HostSpec) error {
	return c.Update(ctx, func(t *Txn) error { return t.EnsureHost(spec) })
}

// EnsureHost adds to t what brings br-int and br-tun to spec: each bridge
// with its datapath type, fail_mode secure, protocols OpenFlow10 and
// OpenFlow13, other_config disable-in-band=true and datapath-id, the
// controller targets (out-of-band), its internal port, and the patch pair
// patch-tun <-> patch-int. Existing bridges are adopted; other_config and
// external_ids keys brtun does not manage are kept.
func (t *Txn) EnsureHost(spec HostSpec) error {
	if spec.Name == "" {
		return fmt.Errorf("ensure host: empty host name")
	}
	dpType := spec.DatapathType
	if dpType == "" {
		dpType = DefaultDatapathType
	}
	if t.st.root != nil && len(t.st.root.DatapathTypes) > 0 && !slices.Contains(t.st.root.DatapathTypes, dpType) {
		return fmt.Errorf("ensure host %s: datapath type %q is not supported by ovs-vswitchd (it has %v)",
			spec.Name, dpType, t.st.root.DatapathTypes)
	}
	targets, err := controllerTargets(spec.ControllerTargets)
	if err != nil {
		return fmt.Errorf("ensure host %s: %w", spec.Name, err)
	}
	for br, tables := range spec.Tables {
		if br != BridgeInt && br != BridgeTun {
			return fmt.Errorf("ensure host %s: tables of unknown bridge %q", spec.Name, br)
		}
		if err := validTables(tables); err != nil {
			return fmt.Errorf("ensure host %s: %s: %w", spec.Name, br, err)
		}
	}
	if spec.MACTableSize < 0 {
		return fmt.Errorf("ensure host %s: negative MAC table size %d", spec.Name, spec.MACTableSize)
	}
	t.note("ensure host %s", spec.Name)
	for _, br := range []string{BridgeInt, BridgeTun} {
		b := bridgeSpec{
			name: br, dpType: dpType, dpid: DatapathID(spec.Name, br), targets: targets, tables: spec.Tables[br],
		}
		if br == BridgeInt {
			b.macTableSize = macTableSize(spec.MACTableSize)
		}
		if err := t.ensureBridge(b); err != nil {
			return fmt.Errorf("ensure %s on %s: %w", br, spec.Name, err)
		}
		if err := t.ensurePort(portSpec{
			bridge: br, name: br, ifaceType: "internal", role: roleBridge, adopt: true,
		}); err != nil {
			return fmt.Errorf("ensure %s on %s: %w", br, spec.Name, err)
		}
	}
	for _, p := range []struct{ bridge, name, peer string }{
		{BridgeInt, PatchTun, PatchInt},
		{BridgeTun, PatchInt, PatchTun},
	} {
		if err := t.ensurePort(portSpec{
			bridge: p.bridge, name: p.name, ifaceType: "patch", role: rolePatch, adopt: true,
			options: map[string]string{optPeer: p.peer},
		}); err != nil {
			return fmt.Errorf("ensure %s on %s: %w", p.name, spec.Name, err)
		}
	}
	return nil
}

// controllerTargets validates and de-duplicates controller targets.
func controllerTargets(in []string) ([]string, error) {
	if in == nil {
		return nil, nil // leave the bridges' controllers alone
	}
	out := []string{}
	for _, target := range in {
		method, rest, ok := strings.Cut(target, ":")
		if !ok || rest == "" {
			return nil, fmt.Errorf("controller target %q: want METHOD:ARGS", target)
		}
		switch method {
		case "tcp", "ssl", "unix", "ptcp", "pssl", "punix":
		default:
			return nil, fmt.Errorf("controller target %q: unknown method %q", target, method)
		}
		if !slices.Contains(out, target) {
			out = append(out, target)
		}
	}
	slices.Sort(out)
	return out, nil
}

// sameDatapathType treats "" as "system", as ovs-vswitchd does.
func sameDatapathType(a, b string) bool {
	norm := func(s string) string {
		if s == "" {
			return DefaultDatapathType
		}
		return s
	}
	return norm(a) == norm(b)
}

// bridgeSpec is the desired state of one bridge.
type bridgeSpec struct {
	name, dpType string
	dpid         uint64
	targets      []string // nil: leave the controllers alone
	tables       []TableSpec
	macTableSize string // other_config:mac-table-size; "": leave it alone
}

func (t *Txn) ensureBridge(s bridgeSpec) error {
	name, dpType, targets := s.name, s.dpType, s.targets
	otherConfig := map[string]string{
		keyDisableInBand: "true",
		keyDatapathID:    FormatDatapathID(s.dpid),
	}
	if s.macTableSize != "" {
		otherConfig[keyMACTableSize] = s.macTableSize
	}
	ids := map[string]string{KeyOwner: OwnerBrtun}
	protocols := []string{vswitchd.BridgeProtocolsOpenflow10, vswitchd.BridgeProtocolsOpenflow13}
	secure := vswitchd.BridgeFailModeSecure

	b := t.st.bridgeByName[name]
	if b == nil {
		ctrl, _, err := t.ensureControllers(nil, targets)
		if err != nil {
			return err
		}
		tables, _, err := t.ensureFlowTables(nil, s.tables)
		if err != nil {
			return err
		}
		nb := &vswitchd.Bridge{
			UUID: t.namedUUID(), Name: name, DatapathType: dpType, FailMode: &secure,
			Protocols: protocols, OtherConfig: otherConfig, ExternalIDs: ids, Controller: ctrl,
			FlowTables: tables,
		}
		t.newBridges[name] = nb
		t.newOrder = append(t.newOrder, name)
		t.addToRoot(nb.UUID)
		return nil
	}

	want := &vswitchd.Bridge{UUID: b.UUID}
	var fields []any
	if !sameDatapathType(b.DatapathType, dpType) {
		want.DatapathType = dpType
		fields = append(fields, &want.DatapathType)
	}
	if b.FailMode == nil || *b.FailMode != secure {
		want.FailMode = &secure
		fields = append(fields, &want.FailMode)
	}
	if !sameStrings(b.Protocols, protocols) {
		want.Protocols = protocols
		fields = append(fields, &want.Protocols)
	}
	if merged, changed := withKeys(b.OtherConfig, otherConfig); changed {
		want.OtherConfig = merged
		fields = append(fields, &want.OtherConfig)
	}
	if merged, changed := withKeys(b.ExternalIDs, ids); changed {
		want.ExternalIDs = merged
		fields = append(fields, &want.ExternalIDs)
	}
	if targets != nil { // nil: the operator manages the bridge's controllers
		ctrl, changed, err := t.ensureControllers(b.Controller, targets)
		if err != nil {
			return err
		}
		if changed {
			want.Controller = ctrl
			fields = append(fields, &want.Controller)
		}
	}
	if tables, changed, err := t.ensureFlowTables(b.FlowTables, s.tables); err != nil {
		return err
	} else if changed {
		want.FlowTables = tables
		fields = append(fields, &want.FlowTables)
	}
	if len(fields) > 0 {
		if err := t.update(want, fields...); err != nil {
			return err
		}
	}
	if t.st.root == nil || !slices.Contains(t.st.root.Bridges, b.UUID) {
		t.addToRoot(b.UUID)
	}
	return nil
}

// addToRoot lists a bridge in the Open_vSwitch row, creating the row when
// the database has none yet.
func (t *Txn) addToRoot(bridgeRef string) {
	if t.st.root == nil && t.newRoot == nil {
		// next_cfg starts at 1 so that waiting for cur_cfg >= 1 waits
		// for ovs-vswitchd to apply this first configuration.
		t.newRoot = &vswitchd.OpenvSwitch{UUID: t.namedUUID(), NextCfg: 1}
	}
	t.rootAdds = append(t.rootAdds, bridgeRef)
}

// The connection settings of every Controller row brtun writes. OVS
// reconnects to a controller that went away after 1, 2, 4, ... seconds up to
// max_backoff (default 8 s), so after a restart of brtun its switches came
// back spread over up to 8 s. With the schema's minimum of 1 s, every switch
// tries once a second while brtun is down and is back within about a second
// of brtun's return; the cost is one refused TCP connection per bridge and
// second while brtun is down (see docs/operations.md). inactivity_probe is
// 10 s, twice OVS's default (Neutron's OVS agent sets the same,
// of_inactivity_probe): OVS probes a controller it heard nothing from for
// 10 s and drops it after another 10 s, which only matters when brtun
// vanishes without closing its sockets (a crashed or partitioned machine).
// On an idle connection these probes are the only keepalive traffic
// (brtun's own echo comes later, ofswitch.Options.EchoInterval), so the
// interval sets the idle cost: 2 echoes per host every 10 s instead of 5.
const (
	ControllerMaxBackoffMs      = 1000
	ControllerInactivityProbeMs = 10000
)

// ensureControllers returns the Controller references a bridge should hold
// (existing rows reused by target, new rows inserted) and whether they differ
// from current.
func (t *Txn) ensureControllers(current []string, targets []string) ([]string, bool, error) {
	byTarget := map[string]*vswitchd.Controller{}
	for _, uuid := range current {
		if c := t.st.controllers[uuid]; c != nil {
			byTarget[c.Target] = c
		}
	}
	oob := vswitchd.ControllerConnectionModeOutOfBand
	backoff, probe := ControllerMaxBackoffMs, ControllerInactivityProbeMs
	ids := map[string]string{KeyOwner: OwnerBrtun}
	var refs []string
	changed := false
	for _, target := range targets {
		c := byTarget[target]
		if c == nil {
			ref := t.namedUUID()
			if err := t.insert(&vswitchd.Controller{
				UUID: ref, Target: target, ConnectionMode: &oob, ExternalIDs: ids,
				MaxBackoff: &backoff, InactivityProbe: &probe,
			}); err != nil {
				return nil, false, err
			}
			refs = append(refs, ref)
			changed = true
			continue
		}
		refs = append(refs, c.UUID)
		want := &vswitchd.Controller{UUID: c.UUID}
		var fields []any
		if c.ConnectionMode == nil || *c.ConnectionMode != oob {
			want.ConnectionMode = &oob
			fields = append(fields, &want.ConnectionMode)
		}
		if c.MaxBackoff == nil || *c.MaxBackoff != backoff {
			want.MaxBackoff = &backoff
			fields = append(fields, &want.MaxBackoff)
		}
		if c.InactivityProbe == nil || *c.InactivityProbe != probe {
			want.InactivityProbe = &probe
			fields = append(fields, &want.InactivityProbe)
		}
		if merged, ch := withKeys(c.ExternalIDs, ids); ch {
			want.ExternalIDs = merged
			fields = append(fields, &want.ExternalIDs)
		}
		if len(fields) > 0 {
			if err := t.update(want, fields...); err != nil {
				return nil, false, err
			}
		}
	}
	if len(refs) != len(current) {
		changed = true
	}
	return refs, changed, nil
}
