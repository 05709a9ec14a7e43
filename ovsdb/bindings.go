package ovsdb

import (
	"context"
	"fmt"
	"strconv"

	"github.com/brtun/brtun/ovsdb/vswitchd"
)

// Binding attaches an interface to a network on br-int through a host-local
// VLAN.
type Binding struct {
	// Interface is the OVS interface name (a tap device, a veth end, ...).
	Interface string
	// Port is the brtun port name, recorded in other_config:brtun-port.
	Port string
	// Network is the brtun network, recorded in other_config:brtun-network.
	Network string
	// VLAN is the host-local VLAN, 1..4094, set as the port's tag and
	// recorded in other_config:brtun-vlan; or DeadVLAN for a port that is
	// administratively down: the port stays bound, NORMAL delivers it
	// nothing.
	VLAN int
}

// BindPort tags an interface's br-int port with b.VLAN and records the
// binding in the port's other_config, so it survives restarts of brtun and
// OVS. An interface not in OVSDB yet gets a br-int port that brtun owns; an
// interface on another bridge is an error.
func (c *Client) BindPort(ctx context.Context, b Binding) error {
	return c.Update(ctx, func(t *Txn) error { return t.BindPort(b) })
}

// UnbindPort removes the binding of an interface. A port brtun created for
// the binding is removed from br-int; a port someone else added stays with
// tag DeadVLAN, because an untagged br-int port would be a trunk of every
// local VLAN. Unbinding an interface without a binding changes nothing.
func (c *Client) UnbindPort(ctx context.Context, iface string) error {
	return c.Update(ctx, func(t *Txn) error { return t.UnbindPort(iface) })
}

// BindPort adds the binding b to t.
func (t *Txn) BindPort(b Binding) error {
	if b.Interface == "" || b.Network == "" {
		return fmt.Errorf("bind port: interface and network are required")
	}
	if (b.VLAN < 1 || b.VLAN > 4094) && b.VLAN != DeadVLAN {
		return fmt.Errorf("bind %s: VLAN %d is outside 1..4094 (or %d for a port that is down)", b.Interface, b.VLAN, DeadVLAN)
	}
	switch b.Interface {
	case BridgeInt, BridgeTun, PatchTun, PatchInt:
		return fmt.Errorf("bind %s: the interface is one of brtun's own", b.Interface)
	}
	if err := t.claim(b.Interface); err != nil {
		return fmt.Errorf("bind %s: %w", b.Interface, err)
	}
	if !t.bridgeExists(BridgeInt) {
		return fmt.Errorf("bind %s: bridge %s does not exist (EnsureHost first)", b.Interface, BridgeInt)
	}
	t.note("bind %s vlan %d", b.Interface, b.VLAN)
	otherConfig := map[string]string{
		KeyNetwork: b.Network,
		KeyPort:    b.Port,
		KeyVLAN:    strconv.Itoa(b.VLAN),
	}
	vlan := b.VLAN

	iface := t.st.ifaceByName[b.Interface]
	if iface == nil {
		if t.st.portByName[b.Interface] != nil {
			return fmt.Errorf("bind %s: a port of that name exists without that interface", b.Interface)
		}
		ifaceRef, portRef := t.namedUUID(), t.namedUUID()
		if err := t.insert(&vswitchd.Interface{
			UUID: ifaceRef, Name: b.Interface, ExternalIDs: map[string]string{KeyOwner: OwnerBrtun},
		}); err != nil {
			return fmt.Errorf("bind %s: %w", b.Interface, err)
		}
		if err := t.insert(&vswitchd.Port{
			UUID: portRef, Name: b.Interface, Interfaces: []string{ifaceRef}, Tag: &vlan, OtherConfig: otherConfig,
			ExternalIDs: map[string]string{KeyOwner: OwnerBrtun, KeyRole: roleVM},
		}); err != nil {
			return fmt.Errorf("bind %s: %w", b.Interface, err)
		}
		return t.addPort(BridgeInt, portRef)
	}

	port := t.st.portOfIface(iface)
	if port == nil {
		return fmt.Errorf("bind %s: interface has no port", b.Interface)
	}
	if br := t.st.bridgeOfPort(port); br == nil || br.Name != BridgeInt {
		return fmt.Errorf("bind %s: interface is not on %s", b.Interface, BridgeInt)
	}
	if owned(port.ExternalIDs) && port.ExternalIDs[KeyRole] != roleVM {
		return fmt.Errorf("bind %s: port %s is one of brtun's own (%s)", b.Interface, port.Name, port.ExternalIDs[KeyRole])
	}
	if len(port.Interfaces) != 1 {
		return fmt.Errorf("bind %s: port %s has %d interfaces", b.Interface, port.Name, len(port.Interfaces))
	}
	want := &vswitchd.Port{UUID: port.UUID}
	var fields []any
	if port.Tag == nil || *port.Tag != vlan {
		want.Tag = &vlan
		fields = append(fields, &want.Tag)
	}
	if port.VLANMode != nil && *port.VLANMode != vswitchd.PortVLANModeAccess {
		access := vswitchd.PortVLANModeAccess
		want.VLANMode = &access
		fields = append(fields, &want.VLANMode)
	}
	if merged, changed := withKeys(port.OtherConfig, otherConfig); changed {
		want.OtherConfig = merged
		fields = append(fields, &want.OtherConfig)
	}
	if len(fields) == 0 {
		return nil
	}
	if err := t.update(want, fields...); err != nil {
		return fmt.Errorf("bind %s: %w", b.Interface, err)
	}
	return nil
}

// UnbindPort adds the removal of iface's binding to t.
func (t *Txn) UnbindPort(iface string) error {
	if err := t.claim(iface); err != nil {
		return fmt.Errorf("unbind %s: %w", iface, err)
	}
	i := t.st.ifaceByName[iface]
	if i == nil {
		return nil
	}
	port := t.st.portOfIface(i)
	if port == nil {
		return nil
	}
	br := t.st.bridgeOfPort(port)
	if br == nil || br.Name != BridgeInt {
		return nil
	}
	t.note("unbind %s", iface)
	if owned(port.ExternalIDs) && port.ExternalIDs[KeyRole] == roleVM {
		t.removePort(br, port)
		return nil
	}
	if _, bound := port.OtherConfig[KeyNetwork]; !bound {
		return nil
	}
	dead := DeadVLAN
	want := &vswitchd.Port{UUID: port.UUID, Tag: &dead}
	want.OtherConfig, _ = withKeys(port.OtherConfig, nil, KeyNetwork, KeyPort, KeyVLAN)
	if err := t.update(want, &want.Tag, &want.OtherConfig); err != nil {
		return fmt.Errorf("unbind %s: %w", iface, err)
	}
	return nil
}
