// Package dhcp answers the address configuration requests of VMs: DHCPv4,
// DHCPv6 and IPv6 router solicitations. It is pure: each function takes an
// Ethernet frame received from a VM port, that port, the subnets of its
// network and the answering configuration, and returns the Ethernet frame to
// send back to that port, or none. It keeps no state and does no I/O; the
// controller feeds it packet-ins and sends its answers as packet-outs.
//
// It is the only importer of github.com/insomniacslk/dhcp (message and option
// encoding) and uses github.com/gopacket/gopacket for Ethernet, IP, UDP and
// ICMPv6 framing.
package dhcp

import (
	"errors"
	"net"
	"net/netip"
	"time"
)

// AddressMode is how the VMs on an IPv6 subnet get their addresses.
type AddressMode string

// IPv6 address modes, as in the subnets API.
const (
	// ModeNone: no router advertisement and no DHCPv6 for this subnet.
	ModeNone AddressMode = ""
	// ModeSLAAC: addresses by SLAAC (autonomous prefix), no DHCPv6.
	ModeSLAAC AddressMode = "slaac"
	// ModeStateful: addresses and other configuration by DHCPv6 (M and O flags).
	ModeStateful AddressMode = "dhcpv6-stateful"
	// ModeStateless: addresses by SLAAC, other configuration (DNS) by DHCPv6 (O flag).
	ModeStateless AddressMode = "dhcpv6-stateless"
)

// Route is a host route handed to VMs (DHCPv4 option 121).
type Route struct {
	Destination netip.Prefix
	NextHop     netip.Addr
}

// Subnet is one subnet of the port's network, as far as answering needs it.
type Subnet struct {
	// CIDR is the subnet's prefix (IPv4 or IPv6).
	CIDR netip.Prefix
	// Gateway is the subnet's router; the zero Addr means none.
	Gateway netip.Addr
	// DNSServers are handed out by DHCPv4, DHCPv6 and the RA's RDNSS option.
	DNSServers []netip.Addr
	// HostRoutes are handed out by DHCPv4 (option 121); IPv6 ones are ignored.
	HostRoutes []Route
	// EnableDHCP off means brtun does not answer for this subnet at all
	// (no DHCPv4, no DHCPv6, no router advertisement).
	EnableDHCP bool
	// IPv6AddressMode is the IPv6 address mode (IPv6 subnets only).
	IPv6AddressMode AddressMode
	// ServerIP is the DHCPv4 server identifier (and reply source) when the
	// subnet has no gateway; ignored when it has one.
	ServerIP netip.Addr
}

// Port is the VM port a frame came from.
type Port struct {
	// MAC is the port's registered MAC; frames and requests for any other
	// MAC get no answer.
	MAC net.HardwareAddr
	// IPs are the port's addresses; the one lying in a DHCP-enabled subnet of
	// the requested family is the one handed out.
	IPs []netip.Addr
}

// Config is how brtun answers, the same for every subnet.
type Config struct {
	// LeaseTime is the DHCPv4 lease and the DHCPv6 valid lifetime (> 0).
	LeaseTime time.Duration
	// MTU is the network's MTU, sent as DHCPv4 option 26 and in the RA's MTU
	// option; 0 leaves both out.
	MTU int
	// ServerMAC is the source MAC of every answer; the router's IPv6
	// link-local address (RA source, DHCPv6 server address) and the DHCPv6
	// server DUID (DUID-LL) derive from it.
	ServerMAC net.HardwareAddr
}

// Lifetimes in router advertisements. A periodic RA must be sent well within
// RouterLifetime (RFC 4861's default interval is at most 600 s).
const (
	// RouterLifetime is the RA router lifetime when a subnet has a gateway,
	// and the lifetime of the RDNSS option (RFC 4861 default 3 x 600 s).
	RouterLifetime = 1800 * time.Second
	// PrefixValidLifetime and PrefixPreferredLifetime are the prefix
	// information lifetimes (radvd's defaults).
	PrefixValidLifetime     = 86400 * time.Second
	PrefixPreferredLifetime = 14400 * time.Second
)

// Reasons for no answer. Answer wraps them, so callers can count them with
// errors.Is. A frame that is no DHCP or router solicitation at all, and a
// message that needs no answer (DHCPRELEASE, DHCPDECLINE), give nil, nil.
var (
	// ErrMalformed: the frame claims to be DHCP/DHCPv6/RS but does not parse
	// or violates its protocol's validity rules.
	ErrMalformed = errors.New("malformed request")
	// ErrUnknownMAC: the frame's source MAC or the request's client hardware
	// address is not the port's MAC.
	ErrUnknownMAC = errors.New("unknown MAC")
	// ErrNoAddress: the port has no address of the requested family in a
	// subnet that answers (DHCP enabled, right IPv6 mode).
	ErrNoAddress = errors.New("port has no address to hand out")
	// ErrNotForUs: the client addressed another server (server identifier).
	ErrNotForUs = errors.New("request addressed to another server")
	// ErrConfig: the configuration cannot produce an answer (no lease time,
	// no server MAC, a gateway-less IPv4 subnet without ServerIP).
	ErrConfig = errors.New("bad answering configuration")
)
