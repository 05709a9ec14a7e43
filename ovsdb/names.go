package ovsdb

import "github.com/brtun/brtun/topology"

// Bridge and port names brtun manages on every host. topology names them
// (the API refuses VM ports on them: topology.OwnedInterface).
const (
	// BridgeInt is the integration bridge holding VM ports.
	BridgeInt = topology.BridgeInt
	// BridgeTun is the tunnel bridge holding tunnel ports.
	BridgeTun = topology.BridgeTun
	// PatchTun is the patch port on br-int leading to br-tun.
	PatchTun = topology.PatchTun
	// PatchInt is the patch port on br-tun leading to br-int.
	PatchInt = topology.PatchInt
)

// Keys brtun writes into external_ids and other_config columns.
const (
	// KeyOwner marks rows brtun created (value OwnerBrtun).
	KeyOwner = "brtun-owner"
	// OwnerBrtun is the value of KeyOwner.
	OwnerBrtun = "brtun"
	// KeyRole says what an owned Port is for (one of the role* values).
	KeyRole = "brtun-role"
	// KeyPeer records the peer host name on a tunnel Port.
	KeyPeer = "brtun-peer"
	// KeyNetwork is the network of a binding (Port other_config) or of an
	// operator-marked interface (Interface external_ids).
	KeyNetwork = "brtun-network"
	// KeyPort is the brtun port name of a binding (Port other_config) or of an
	// operator-marked interface (Interface external_ids).
	KeyPort = "brtun-port"
	// KeyVLAN records the local VLAN of a binding (Port other_config).
	KeyVLAN = "brtun-vlan"
	// KeyAttachedMAC is the MAC of the VM behind an interface, as set by
	// hypervisors in Interface external_ids.
	KeyAttachedMAC = "attached-mac"
)

// Roles of owned ports (external_ids:brtun-role).
const (
	roleBridge = "bridge" // a bridge's own internal port
	rolePatch  = "patch"
	roleTunnel = "tunnel"
	roleVM     = "vm" // a br-int port brtun created for a binding
)

// DeadVLAN is the tag UnbindPort leaves on a port brtun did not create: an
// untagged port on br-int would be a trunk of every local VLAN (Neutron uses
// the same dead VLAN).
const DeadVLAN = 4095

// Other_config keys on bridges.
const (
	keyDatapathID    = "datapath-id"
	keyDisableInBand = "disable-in-band"
)

// Interface options of tunnel ports.
const (
	optRemoteIP  = "remote_ip"
	optLocalIP   = "local_ip"
	optInKey     = "in_key"
	optOutKey    = "out_key"
	optKey       = "key"
	optDFDefault = "df_default"
	optDstPort   = "dst_port"
	optPeer      = "peer"
)

// DefaultDatapathType is used when HostSpec.DatapathType is empty.
const DefaultDatapathType = "system"
