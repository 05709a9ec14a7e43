// Package evpn is brtun's BGP EVPN speaker (RFC 7432, RFC 8365 VXLAN): it
// advertises the VTEPs (type-3) and MACs (type-2) the caller wants, imports
// what its peers advertise, and reports both as plain values. It is the only
// importer of GoBGP; nothing outside it sees a BGP type. See README.md.
package evpn

import (
	"fmt"
	"net"
	"net/netip"
	"time"
)

// Config is the speaker's own identity and session defaults.
type Config struct {
	ASN      uint32
	RouterID netip.Addr
	// ListenAddress is where the speaker accepts sessions and the source of
	// the sessions it opens; the zero value listens on all addresses.
	ListenAddress netip.Addr
	// ListenPort is the TCP port to listen on; 0 means 179, -1 no listener.
	ListenPort int32
	// Timers of every session; zero values mean GoBGP's (hold 90 s,
	// keepalive 30 s, connect retry 120 s).
	HoldTime          time.Duration
	KeepaliveInterval time.Duration
	ConnectRetry      time.Duration
	GracefulRestart   GracefulRestart
}

// GracefulRestart configures RFC 4724 graceful restart.
type GracefulRestart struct {
	// Disabled turns the capability off (it is advertised by default).
	Disabled bool
	// RestartTime is advertised to peers: how long they keep our routes
	// after the session drops (default 120 s). It is also how long restored
	// imported routes are held when a peer does not come back.
	RestartTime time.Duration
	// DeferralTime bounds how long a restarted speaker waits for its peers'
	// End-of-RIB before it sends its own routes (default 60 s).
	DeferralTime time.Duration
}

func (g GracefulRestart) restartTime() time.Duration {
	if g.RestartTime <= 0 {
		return 120 * time.Second
	}
	return g.RestartTime
}

func (g GracefulRestart) deferralTime() time.Duration {
	if g.DeferralTime <= 0 {
		return 60 * time.Second
	}
	return g.DeferralTime
}

// Peer is a BGP neighbor, keyed by its address.
type Peer struct {
	Address  netip.Addr
	ASN      uint32
	Password string // TCP MD5 signature (RFC 2385); empty for none
}

// Desired is everything the speaker should advertise, per VNI.
type Desired struct {
	Networks map[uint32]Network
}

// Network is one EVPN-enabled VXLAN network (one EVI, VLAN-based service).
type Network struct {
	// RouteTarget is exported with every route of the network and selects
	// the routes imported into it, as "ASN:N" or "IP:N"; empty means
	// ASN:VNI (the low 16 bits of a 4-byte ASN, as FRR derives it).
	RouteTarget string
	// VTEPs are the tunnel IPs of the hosts carrying the network: one
	// type-3 route each (PMSI ingress replication, label = VNI).
	VTEPs []netip.Addr
	// MACs are the local MACs: type-2 routes for the MAC alone and for the
	// MAC with each of its IPs, next hop = VTEP.
	MACs []MAC
}

// MAC is a local MAC behind one of the caller's VTEPs.
type MAC struct {
	MAC  string // any form net.ParseMAC accepts
	IPs  []netip.Addr
	VTEP netip.Addr // tunnel IP of the host the MAC is behind
	// Seq is the lowest MAC mobility sequence number to advertise; the
	// speaker raises it when the MAC moved (see README.md).
	Seq uint32
}

// Imported is what the speaker learned from its peers for the networks of
// the current Desired: deduplicated and sorted, so two equal sets are equal
// values (reflect.DeepEqual) and can be stored as JSON.
type Imported struct {
	Networks []ImportedNetwork `json:"networks"`
}

// ImportedNetwork holds the remote VTEPs and MACs of one VNI.
type ImportedNetwork struct {
	VNI   uint32       `json:"vni"`
	VTEPs []RemoteVTEP `json:"vteps,omitempty"` // sorted by IP
	MACs  []RemoteMAC  `json:"macs,omitempty"`  // sorted by MAC
}

// RemoteVTEP is a type-3 route: a VTEP that wants the network's BUM traffic.
type RemoteVTEP struct {
	IP   netip.Addr `json:"ip"`
	Peer netip.Addr `json:"peer"` // the BGP neighbor it came from
	RD   string     `json:"rd"`
}

// RemoteMAC is the winning type-2 route(s) of one MAC.
type RemoteMAC struct {
	MAC  string       `json:"mac"` // lower case, colon separated
	IPs  []netip.Addr `json:"ips,omitempty"`
	VTEP netip.Addr   `json:"vtep"` // next hop: where to tunnel to
	Seq  uint32       `json:"seq"`
	Peer netip.Addr   `json:"peer"`
	RD   string       `json:"rd"`
}

// Network returns the imported network of vni, if any.
func (im Imported) Network(vni uint32) (ImportedNetwork, bool) {
	for _, n := range im.Networks {
		if n.VNI == vni {
			return n, true
		}
	}
	return ImportedNetwork{}, false
}

// LocalSeq is the sequence number the speaker advertises for a local MAC.
type LocalSeq struct {
	VNI  uint32     `json:"vni"`
	MAC  string     `json:"mac"`
	VTEP netip.Addr `json:"vtep"`
	Seq  uint32     `json:"seq"`
	// Superseded is true while a remote route with a sequence number at
	// least as high wins: the MAC moved into the fabric, and the speaker
	// withdraws its own route.
	Superseded bool `json:"superseded,omitempty"`
}

// State is what the caller stores so that a restart changes nothing: hand it
// back to Start and the speaker reports the same Imported at once, holds each
// peer's part until that peer's End-of-RIB, and advertises the same sequence
// numbers.
type State struct {
	Imported Imported   `json:"imported"`
	Seqs     []LocalSeq `json:"seqs,omitempty"` // sorted by VNI, MAC
}

// PeerStatus is one neighbor's session as GoBGP sees it.
type PeerStatus struct {
	Address netip.Addr `json:"address"`
	ASN     uint32     `json:"asn"`
	// State is the BGP FSM state: idle, connect, active, opensent,
	// openconfirm or established.
	State string `json:"state"`
	// Since is when the session last came up (zero when never).
	Since time.Time `json:"since,omitzero"`
	// Received, Accepted and Advertised count EVPN routes.
	Received   uint64 `json:"routes_received"`
	Accepted   uint64 `json:"routes_accepted"`
	Advertised uint64 `json:"routes_advertised"`
}

// normalMAC returns the canonical lower-case form of an Ethernet MAC.
func normalMAC(s string) (string, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return "", fmt.Errorf("invalid MAC %q", s)
	}
	return hw.String(), nil
}
