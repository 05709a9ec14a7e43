package topology

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"strings"
)

// Names of what brtun creates on every host: its two bridges (each with
// its internal port of the same name) and the patch pair between them. The
// ovsdb package creates them under these names; tunnel ports are named by
// TunnelPortName (per-peer) and FlowTunnelPortName (flow-based). No VM port
// may use any of them (OwnedInterface).
const (
	// BridgeInt is the integration bridge holding VM ports.
	BridgeInt = "br-int"
	// BridgeTun is the tunnel bridge holding tunnel ports.
	BridgeTun = "br-tun"
	// PatchTun is the patch port on br-int leading to br-tun.
	PatchTun = "patch-tun"
	// PatchInt is the patch port on br-tun leading to br-int.
	PatchInt = "patch-int"
)

// tunnelPortDigits is the number of hex digits after the type's name and
// the dash in a tunnel port name.
const tunnelPortDigits = 8

// TunnelPortName returns the br-tun port name of a tunnel: the type's name, a
// dash and 8 hex digits, which for an IPv4 peer are its address (vxlan-c0000202,
// as Neutron names them) and for an IPv6 peer a hash of it.
func TunnelPortName(typ NetworkType, peer netip.Addr) string {
	peer = peer.Unmap()
	if peer.Is4() {
		a := peer.As4()
		return string(typ) + "-" + hex.EncodeToString(a[:])
	}
	a := peer.As16()
	sum := sha256.Sum256(a[:])
	return string(typ) + "-" + hex.EncodeToString(sum[:tunnelPortDigits/2])
}

// OwnedInterface reports whether name is an interface brtun itself creates
// on a host (a bridge, a patch port, or a tunnel port of any tunnel type
// towards any peer), which no VM port may bind.
func OwnedInterface(name string) bool {
	switch name {
	case BridgeInt, BridgeTun, PatchTun, PatchInt:
		return true
	}
	for _, tt := range tunnelTypes {
		if digits, ok := strings.CutPrefix(name, string(tt.Name)+"-"); ok && (isTunnelPortDigits(digits) || digits == flowTunnelSuffix) {
			return true
		}
	}
	return false
}

// flowTunnelSuffix follows the type's name and a dash in the name of a
// flow-based tunnel port.
const flowTunnelSuffix = "flow"

// FlowTunnelPortName returns the br-tun port name of the flow-based tunnel
// port of a type (vxlan-flow): with --tunnel-ports flow, the one port of
// that type, towards every peer.
func FlowTunnelPortName(typ NetworkType) string { return string(typ) + "-" + flowTunnelSuffix }

// isTunnelPortDigits reports whether s is what TunnelPortName puts after
// the dash: tunnelPortDigits lower-case hex digits.
func isTunnelPortDigits(s string) bool {
	if len(s) != tunnelPortDigits {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9') && !(s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}
