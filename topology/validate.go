package topology

import (
	"net"
	"net/netip"
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
	if err := validateOVSDBAddress(h.OVSDB); err != nil {
		return Host{}, err
	}
	ip, err := netip.ParseAddr(h.TunnelIP)
	if err != nil || ip.Zone() != "" {
		return Host{}, invalid("tunnel_ip", "%q is not an IP address", h.TunnelIP)
	}
	if ip.IsUnspecified() || ip.IsMulticast() || ip.IsLoopback() {
		return Host{}, invalid("tunnel_ip", "%s cannot be a tunnel endpoint", ip)
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

// validateOVSDBAddress accepts the OVSDB client targets OVS itself accepts:
// tcp:IP[:PORT], ssl:IP[:PORT] and unix:PATH.
func validateOVSDBAddress(addr string) error {
	const field = "ovsdb"
	scheme, rest, ok := strings.Cut(addr, ":")
	if !ok {
		return invalid(field, "%q is not an OVSDB address (want tcp:IP:PORT, ssl:IP:PORT or unix:PATH)", addr)
	}
	switch scheme {
	case "unix":
		if !strings.HasPrefix(rest, "/") || strings.ContainsAny(rest, "\x00\n") {
			return invalid(field, "%q: unix socket path must be absolute", addr)
		}
		if len(rest) > maxUnixPath {
			return invalid(field, "%q: unix socket path is over %d bytes", addr, maxUnixPath)
		}
		return nil
	case "tcp", "ssl":
		host, port, hasPort := strings.Cut(rest, ":")
		if strings.HasPrefix(rest, "[") {
			end := strings.Index(rest, "]")
			if end < 0 {
				return invalid(field, "%q: missing ']'", addr)
			}
			host, port = rest[1:end], ""
			after := rest[end+1:]
			port, hasPort = strings.CutPrefix(after, ":")
			if after != "" && !hasPort {
				return invalid(field, "%q: want [IP]:PORT", addr)
			}
		}
		if hasPort && port == "" {
			return invalid(field, "%q: empty port", addr)
		}
		if _, err := netip.ParseAddr(host); err != nil {
			return invalid(field, "%q: %q is not an IP address", addr, host)
		}
		if hasPort {
			n, err := strconv.ParseUint(port, 10, 16)
			if err != nil || n == 0 {
				return invalid(field, "%q: %q is not a TCP port", addr, port)
			}
		}
		return nil
	}
	return invalid(field, "%q: unknown scheme %q (want tcp, ssl or unix)", addr, scheme)
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
		if ip.IsUnspecified() || ip.IsMulticast() || ip.IsLoopback() {
			return Port{}, invalid(field, "%s cannot be a VM address", ip)
		}
		if seen[ip] {
			return Port{}, invalid(field, "%s is listed twice", ip)
		}
		seen[ip] = true
		ips = append(ips, ip.String())
	}
	p.IPs = ips
	p.LocalVLAN = 0
	p.AdminStateUp = Bool(p.Up())
	var err error
	if p.Meta, err = normalizeMeta(p.Meta); err != nil {
		return Port{}, err
	}
	return p, nil
}

// validateInterfaceName accepts Linux interface names: 1..15 bytes, no
// slash, colon, whitespace or control characters, not "." or "..".
func validateInterfaceName(name string) error {
	if name == "" || len(name) > 15 || name == "." || name == ".." {
		return invalid("interface", "%q is not an interface name (1..15 characters)", name)
	}
	for _, r := range name {
		if r <= ' ' || r > '~' || r == '/' || r == ':' {
			return invalid("interface", "%q is not an interface name (printable ASCII, no '/', ':' or spaces)", name)
		}
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
