package topology

import (
	"fmt"
	"net"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds of the description and tags every object carries.
const (
	MaxDescription = 255 // bytes
	MaxTags        = 32
	MaxTag         = 60 // bytes
)

// MaxDeviceID bounds a port's device_id.
const MaxDeviceID = 255 // bytes

// normalizeMeta validates an object's description and tags and returns the
// tags sorted without duplicates (never nil).
func normalizeMeta(m Meta) (Meta, error) {
	if len(m.Description) > MaxDescription || !printable(m.Description) {
		return Meta{}, invalid("description", "want at most %d bytes of printable UTF-8", MaxDescription)
	}
	if len(m.Tags) > MaxTags {
		return Meta{}, invalid("tags", "at most %d tags per object", MaxTags)
	}
	tags := make([]string, 0, len(m.Tags))
	for i, tag := range m.Tags {
		if tag == "" || len(tag) > MaxTag || !printable(tag) || strings.ContainsAny(tag, ", ") {
			return Meta{}, invalid("tags["+strconv.Itoa(i)+"]", "%q is not a tag (1..%d bytes of printable UTF-8, no commas or spaces)", tag, MaxTag)
		}
		tags = append(tags, tag)
	}
	slices.Sort(tags)
	m.Tags = slices.Compact(tags)
	return m, nil
}

// printable reports whether s is valid UTF-8 without control characters.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// maxIPsPerPort bounds the addresses one port may carry.
const maxIPsPerPort = 64

// maxUnixPath is the longest unix socket path Linux can connect to
// (sun_path holds 108 bytes including the terminating NUL).
const maxUnixPath = 107

// ValidName reports whether name is a valid host, network or port name:
// [a-z0-9][a-z0-9_.-]{0,62}.
func ValidName(name string) bool {
	if name == "" || len(name) > 63 || !isLowerAlnum(name[0]) {
		return false
	}
	for i := 1; i < len(name); i++ {
		c := name[i]
		if !isLowerAlnum(c) && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

// validDatapathType accepts [a-z][a-z0-9_-]{0,31} (system, netdev, dummy, ...).
func validDatapathType(t string) bool {
	if t == "" || len(t) > 32 || t[0] < 'a' || t[0] > 'z' {
		return false
	}
	for i := 1; i < len(t); i++ {
		c := t[i]
		if !isLowerAlnum(c) && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

func isLowerAlnum(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
}

func validateName(field, name string) error {
	if !ValidName(name) {
		return invalid(field, "%q is not a valid name (want [a-z0-9][a-z0-9_.-]{0,62})", name)
	}
	return nil
}

// normalizeHost validates h and returns it in canonical form.
func normalizeHost(h Host) (Host, error) {
	if err := validateName("name", h.Name); err != nil {
		return Host{}, err
	}
	if _, err := ovsdbEndpoint(h.OVSDB); err != nil {
		return Host{}, err
	}
	ip, err := netip.ParseAddr(h.TunnelIP)
	if err != nil || ip.Zone() != "" {
		return Host{}, invalid("tunnel_ip", "%q is not an IP address", h.TunnelIP)
	}
	if why := notUnicast(ip); why != "" {
		return Host{}, invalid("tunnel_ip", "%s cannot be a tunnel endpoint: it is %s", ip, why)
	}
	h.TunnelIP = ip.Unmap().String()
	if h.DatapathType == "" {
		h.DatapathType = DefaultDatapathType
	}
	if !validDatapathType(h.DatapathType) {
		return Host{}, invalid("datapath_type", "%q is not a datapath type (e.g. system, netdev)", h.DatapathType)
	}
	if h.Meta, err = normalizeMeta(h.Meta); err != nil {
		return Host{}, err
	}
	return h, nil
}

// notUnicast says why ip cannot be a host's or a VM's own address ("" when
// it can): it must be unicast, and neither the broadcast address,
// link-local, loopback nor unspecified.
func notUnicast(ip netip.Addr) string {
	switch ip = ip.Unmap(); {
	case ip.IsUnspecified():
		return "the unspecified address"
	case ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "the broadcast address"
	case ip.IsMulticast():
		return "a multicast address"
	case ip.IsLoopback():
		return "a loopback address"
	case ip.IsLinkLocalUnicast():
		return "a link-local address"
	}
	return ""
}

// defaultOVSDBPort is the port of a tcp: or ssl: OVSDB address without one.
const defaultOVSDBPort = 6640

// ovsdbEndpoint validates an OVSDB client target of the forms OVS itself
// accepts, tcp:IP[:PORT], ssl:IP[:PORT] and unix:PATH, and returns it in a
// normalised form that tells whether two addresses name the same server:
// the IP in canonical form (IPv4-mapped IPv6 unmapped), the port explicit
// (6640 by default) and the unix path cleaned. The scheme stays part of it.
func ovsdbEndpoint(addr string) (string, error) {
	const field = "ovsdb"
	scheme, rest, ok := strings.Cut(addr, ":")
	if !ok {
		return "", invalid(field, "%q is not an OVSDB address (want tcp:IP:PORT, ssl:IP:PORT or unix:PATH)", addr)
	}
	switch scheme {
	case "unix":
		if !strings.HasPrefix(rest, "/") || strings.ContainsAny(rest, "\x00\n") {
			return "", invalid(field, "%q: unix socket path must be absolute", addr)
		}
		if len(rest) > maxUnixPath {
			return "", invalid(field, "%q: unix socket path is over %d bytes", addr, maxUnixPath)
		}
		return scheme + ":" + path.Clean(rest), nil
	case "tcp", "ssl":
		host, port, hasPort := strings.Cut(rest, ":")
		if strings.HasPrefix(rest, "[") {
			end := strings.Index(rest, "]")
			if end < 0 {
				return "", invalid(field, "%q: missing ']'", addr)
			}
			host, port = rest[1:end], ""
			after := rest[end+1:]
			port, hasPort = strings.CutPrefix(after, ":")
			if after != "" && !hasPort {
				return "", invalid(field, "%q: want [IP]:PORT", addr)
			}
		}
		if hasPort && port == "" {
			return "", invalid(field, "%q: empty port", addr)
		}
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return "", invalid(field, "%q: %q is not an IP address", addr, host)
		}
		n := uint64(defaultOVSDBPort)
		if hasPort {
			n, err = strconv.ParseUint(port, 10, 16)
			if err != nil || n == 0 {
				return "", invalid(field, "%q: %q is not a TCP port", addr, port)
			}
		}
		return scheme + ":" + netip.AddrPortFrom(ip.Unmap(), uint16(n)).String(), nil
	}
	return "", invalid(field, "%q: unknown scheme %q (want tcp, ssl or unix)", addr, scheme)
}

// normalizeNetwork validates n. A zero SegmentID means "allocate one".
func normalizeNetwork(n Network) (Network, error) {
	if err := validateName("name", n.Name); err != nil {
		return Network{}, err
	}
	if !n.Type.Valid() {
		return Network{}, invalid("type", "unknown tunnel type %q (want %s)", n.Type, TunnelTypeNames())
	}
	if n.SegmentID > n.Type.MaxSegment() {
		return Network{}, invalid("segment_id", "%d is out of range for %s (1..%d)", n.SegmentID, n.Type, n.Type.MaxSegment())
	}
	if err := validateEVPN(n); err != nil {
		return Network{}, err
	}
	var err error
	if n.Meta, err = normalizeMeta(n.Meta); err != nil {
		return Network{}, err
	}
	return n, nil
}

// normalizePort validates p and returns it in canonical form (lower-case
// MAC, canonical IPs). It does not look at other objects; p.Network is the
// caller's to check (an unknown network is "not found", not "invalid").
func normalizePort(p Port) (Port, error) {
	if err := validateName("name", p.Name); err != nil {
		return Port{}, err
	}
	if err := validateName("host", p.Host); err != nil {
		return Port{}, err
	}
	if err := validateInterfaceName(p.Interface); err != nil {
		return Port{}, err
	}
	if len(p.DeviceID) > MaxDeviceID || !printable(p.DeviceID) {
		return Port{}, invalid("device_id", "want at most %d bytes of printable UTF-8", MaxDeviceID)
	}
	if p.MAC != "" {
		mac, err := net.ParseMAC(p.MAC)
		if err != nil || len(mac) != 6 {
			return Port{}, invalid("mac", "%q is not an Ethernet MAC address", p.MAC)
		}
		if mac[0]&1 != 0 || string(mac) == "\x00\x00\x00\x00\x00\x00" {
			return Port{}, invalid("mac", "%s is not a unicast MAC address", mac)
		}
		p.MAC = mac.String()
	}
	if len(p.IPs) > maxIPsPerPort {
		return Port{}, invalid("ips", "at most %d addresses per port", maxIPsPerPort)
	}
	var ips []string
	seen := make(map[netip.Addr]bool)
	for i, s := range p.IPs {
		field := "ips[" + strconv.Itoa(i) + "]"
		ip, err := netip.ParseAddr(s)
		if err != nil || ip.Zone() != "" {
			return Port{}, invalid(field, "%q is not an IP address", s)
		}
		ip = ip.Unmap()
		if why := notUnicast(ip); why != "" {
			return Port{}, invalid(field, "%s cannot be a VM address: it is %s", ip, why)
		}
		if seen[ip] {
			return Port{}, invalid(field, "%s is listed twice", ip)
		}
		seen[ip] = true
		ips = append(ips, ip.String())
	}
	p.IPs = ips
	p.LocalVLAN = 0
	pairs, err := normalizeAddressPairs(p)
	if err != nil {
		return Port{}, err
	}
	p.AllowedAddressPairs = pairs
	p.AdminStateUp = Bool(p.Up())
	if p.Meta, err = normalizeMeta(p.Meta); err != nil {
		return Port{}, err
	}
	return p, nil
}

// maxAddressPairs bounds a port's allowed address pairs (Neutron's default).
const maxAddressPairs = 10

// normalizeAddressPairs validates p's allowed address pairs and returns them
// in canonical form: an IPv4 address or prefix (host bits cleared, /32
// written as the address), an IPv6 address (a /128 written as the address;
// a shorter IPv6 prefix is refused, since neighbour advertisements are
// checked per address), a lower-case unicast MAC or none.
func normalizeAddressPairs(p Port) ([]AddressPair, error) {
	if len(p.AllowedAddressPairs) == 0 {
		return nil, nil
	}
	if !p.PortSecurityEnabled {
		return nil, invalid("allowed_address_pairs", "allowed address pairs need port security, which needs the port's mac")
	}
	if len(p.AllowedAddressPairs) > maxAddressPairs {
		return nil, invalid("allowed_address_pairs", "at most %d allowed address pairs per port", maxAddressPairs)
	}
	out := make([]AddressPair, 0, len(p.AllowedAddressPairs))
	seen := map[AddressPair]bool{}
	for i, ap := range p.AllowedAddressPairs {
		field := "allowed_address_pairs[" + strconv.Itoa(i) + "]"
		prefix, err := ParseAddressPairIP(ap.IPAddress)
		if err != nil {
			return nil, invalid(field+".ip_address", "%v", err)
		}
		ap.IPAddress = prefix.Addr().String()
		if prefix.Bits() != prefix.Addr().BitLen() {
			ap.IPAddress = prefix.String()
		}
		if ap.MACAddress != "" {
			mac, err := net.ParseMAC(ap.MACAddress)
			if err != nil || len(mac) != 6 || mac[0]&1 != 0 || string(mac) == "\x00\x00\x00\x00\x00\x00" {
				return nil, invalid(field+".mac_address", "%q is not a unicast Ethernet MAC address", ap.MACAddress)
			}
			ap.MACAddress = mac.String()
		}
		if seen[ap] {
			return nil, invalid(field, "%s %s is listed twice", ap.IPAddress, ap.MACAddress)
		}
		seen[ap] = true
		out = append(out, ap)
	}
	return out, nil
}

// ParseAddressPairIP parses an allowed address pair's ip_address: an IPv4
// address or prefix, or an IPv6 address (or /128). The prefix it returns has
// its host bits cleared.
func ParseAddressPairIP(s string) (netip.Prefix, error) {
	var prefix netip.Prefix
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or prefix", s)
		}
		prefix = p
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or prefix", s)
		}
		a = a.Unmap()
		prefix = netip.PrefixFrom(a, a.BitLen())
	}
	prefix = prefix.Masked()
	a := prefix.Addr()
	switch {
	case a.Is6() && prefix.Bits() != 128:
		return netip.Prefix{}, fmt.Errorf("%s: an IPv6 pair is one address (neighbour advertisements are checked per address)", prefix)
	case a.IsMulticast() || a.IsLoopback() || (a.IsUnspecified() && prefix.Bits() == a.BitLen()):
		return netip.Prefix{}, fmt.Errorf("%s cannot be a VM address", prefix)
	case prefix.Bits() == 0:
		return netip.Prefix{}, fmt.Errorf("%s would allow every source address (disable port security instead)", prefix)
	}
	return prefix, nil
}

// validateInterfaceName accepts Linux interface names: 1..15 bytes, no
// slash, colon, whitespace or control characters, not "." or "..", and
// not one brtun owns (OwnedInterface).
func validateInterfaceName(name string) error {
	if name == "" || len(name) > 15 || name == "." || name == ".." {
		return invalid("interface", "%q is not an interface name (1..15 characters)", name)
	}
	for _, r := range name {
		if r <= ' ' || r > '~' || r == '/' || r == ':' {
			return invalid("interface", "%q is not an interface name (printable ASCII, no '/', ':' or spaces)", name)
		}
	}
	if OwnedInterface(name) {
		return invalid("interface", "%q is brtun's own (its bridges, patch ports and tunnel ports are %s, %s, %s, %s and TYPE-XXXXXXXX); bind the VM's interface", name, BridgeInt, BridgeTun, PatchTun, PatchInt)
	}
	return nil
}

// immutable fails naming field when an update changed it (same is false).
// Answer-only fields may be sent back unchanged.
func immutable(field string, same bool) error {
	if same {
		return nil
	}
	return invalid(field, "cannot be changed")
}
