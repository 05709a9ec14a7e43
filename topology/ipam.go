package topology

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// DefaultMACPrefix is the prefix of the MACs brtun generates for ports
// created without one: 02:62:74 ("\x02bt"), locally administered and
// unicast, distinct from OpenStack's fa:16:3e so that both can share a
// segment.
const DefaultMACPrefix = "02:62:74"

// MACPrefix is the leading 1..5 bytes of generated MACs; the rest is a
// counter. The zero value means DefaultMACPrefix.
type MACPrefix struct {
	b []byte
}

// ParseMACPrefix parses "xx[:xx]..." (1 to 5 bytes). The first byte must
// have the locally administered bit set and the multicast bit clear, so
// that generated MACs never collide with a vendor's.
func ParseMACPrefix(s string) (MACPrefix, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 1 || len(parts) > 5 {
		return MACPrefix{}, fmt.Errorf("MAC prefix %q: want 1 to 5 bytes such as %s", s, DefaultMACPrefix)
	}
	b := make([]byte, len(parts))
	for i, p := range parts {
		v, err := strconv.ParseUint(p, 16, 8)
		if err != nil || len(p) != 2 {
			return MACPrefix{}, fmt.Errorf("MAC prefix %q: %q is not a hex byte", s, p)
		}
		b[i] = byte(v)
	}
	if b[0]&0x01 != 0 || b[0]&0x02 == 0 {
		return MACPrefix{}, fmt.Errorf("MAC prefix %q: the first byte must be unicast and locally administered (x2, x6, xa or xe in its low nibble)", s)
	}
	return MACPrefix{b: b}, nil
}

func (p MACPrefix) bytes() []byte {
	if p.b == nil {
		d, err := ParseMACPrefix(DefaultMACPrefix)
		if err != nil {
			panic(err) // the constant is valid
		}
		return d.b
	}
	return p.b
}

// String returns the prefix as "xx:xx:xx".
func (p MACPrefix) String() string {
	return strings.TrimSuffix(net.HardwareAddr(append(p.bytes(), 0)).String(), ":00")
}

// mac builds the MAC with counter id after the prefix.
func (p MACPrefix) mac(id uint64) string {
	b := p.bytes()
	mac := make(net.HardwareAddr, 6)
	copy(mac, b)
	for i := 5; i >= len(b); i-- {
		mac[i] = byte(id)
		id >>= 8
	}
	return mac.String()
}

// maxID is the largest counter the prefix leaves room for.
func (p MACPrefix) maxID() uint64 {
	return 1<<(8*(6-len(p.bytes()))) - 1
}

func macHintKey(p MACPrefix) string { return "mac-hint/" + p.String() }

// macKey indexes every port's MAC across networks: mac/network/port.
func macKey(p Port) string { return key(p.MAC, p.Network, p.Name) }

// macInUse reports whether any port of any network has mac.
func macInUse(t txn, mac string) (bool, error) {
	pairs, err := t.scan(bucketMACs, mac+"/")
	return len(pairs) > 0, err
}

// generateMAC returns a MAC under the store's prefix that no port of any
// network uses. Counters are handed out upward from a hint and wrap once
// the space is used up, so a freed MAC is not reused at once.
func (s *store) generateMAC(t txn) (string, error) {
	hintKey := macHintKey(s.macPrefix)
	used := func(id uint64) (bool, error) { return macInUse(t, s.macPrefix.mac(id)) }
	id, ok, err := allocate(t, hintKey, s.macPrefix.maxID(), used)
	if err == nil && !ok {
		if err = writeHint(t, hintKey, 1); err == nil {
			id, ok, err = allocate(t, hintKey, s.macPrefix.maxID(), used)
		}
	}
	if err != nil {
		return "", err
	}
	if !ok {
		return "", conflict("no free MAC left under prefix %s", s.macPrefix)
	}
	return s.macPrefix.mac(id), nil
}

// networkSubnets reads and parses the subnets of a network.
func networkSubnets(t txn, network string) ([]subnetRange, error) {
	subnets, err := scanJSON[Subnet](t, bucketSubnets, key(network, ""))
	if err != nil {
		return nil, err
	}
	sortSubnets(subnets)
	out := make([]subnetRange, 0, len(subnets))
	for _, s := range subnets {
		r, err := parseSubnet(s)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// checkSubnetIPs checks that every address of p lies in one of the
// network's subnets and is none of their network, broadcast or gateway
// addresses. Networks without subnets take any address.
func checkSubnetIPs(subnets []subnetRange, p Port) error {
	if len(subnets) == 0 {
		return nil
	}
	for i, s := range p.IPs {
		field := "ips[" + strconv.Itoa(i) + "]"
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return invalid(field, "%q is not an IP address", s)
		}
		j := slices.IndexFunc(subnets, func(r subnetRange) bool { return r.prefix.Contains(ip) })
		if j < 0 {
			cidrs := make([]string, 0, len(subnets))
			for _, r := range subnets {
				cidrs = append(cidrs, r.prefix.String())
			}
			return invalid(field, "%s is in no subnet of network %q (%s)", ip, p.Network, strings.Join(cidrs, ", "))
		}
		if why := subnets[j].reserved(ip); why != "" {
			return invalid(field, "%s is %s of subnet %q", ip, why, subnets[j].s.Name)
		}
	}
	return nil
}

// allocateIPs gives p, which has no addresses, one of each subnet of its
// network: the lowest free pool address of IPv4 and dhcpv6-stateful
// subnets, the EUI-64 address of p's MAC on slaac and dhcpv6-stateless
// ones. others are the network's other ports.
func allocateIPs(subnets []subnetRange, p Port, others []Port) ([]string, error) {
	used := make(map[netip.Addr]bool)
	for _, o := range others {
		if o.Name == p.Name {
			continue
		}
		for _, s := range o.IPs {
			if ip, err := netip.ParseAddr(s); err == nil {
				used[ip] = true
			}
		}
	}
	var ips []string
	for _, r := range subnets {
		if r.s.autoAddressed() {
			ip, err := eui64(r.prefix, p.MAC)
			if err != nil {
				return nil, err
			}
			if used[ip] {
				return nil, conflict("the EUI-64 address %s of mac %s on subnet %q is already used by another port", ip, p.MAC, r.s.Name)
			}
			ips = append(ips, ip.String())
			continue
		}
		ip, ok := lowestFree(r, used)
		if !ok {
			return nil, conflict("subnet %q (%s) of network %q has no free address left in its allocation pools",
				r.s.Name, r.prefix, p.Network)
		}
		used[ip] = true
		ips = append(ips, ip.String())
	}
	return ips, nil
}

// lowestFree returns the lowest address of r's pools that is not used. It
// looks at no more than len(used)+1 addresses per pool.
func lowestFree(r subnetRange, used map[netip.Addr]bool) (netip.Addr, bool) {
	for _, pool := range r.pools {
		for ip := pool[0]; ip.IsValid() && ip.Compare(pool[1]) <= 0; ip = ip.Next() {
			if !used[ip] && r.reserved(ip) == "" {
				return ip, true
			}
		}
	}
	return netip.Addr{}, false
}

// eui64 is the SLAAC address of mac in the /64 prefix (RFC 4291 appendix A).
func eui64(prefix netip.Prefix, mac string) (netip.Addr, error) {
	hw, err := net.ParseMAC(mac)
	if err != nil || len(hw) != 6 {
		return netip.Addr{}, invalid("mac", "%q is not an Ethernet MAC address", mac)
	}
	b := prefix.Addr().As16()
	b[8], b[9], b[10], b[11] = hw[0]^0x02, hw[1], hw[2], 0xff
	b[12], b[13], b[14], b[15] = 0xfe, hw[3], hw[4], hw[5]
	return netip.AddrFrom16(b), nil
}

// assignAddresses fills in what a port written to the store lacks: on
// create a generated MAC and, on a network with subnets, its addresses; on
// update an empty MAC keeps the stored one. Changed addresses are checked
// against the subnets. others are the network's ports.
func (s *store) assignAddresses(t txn, p Port, old *Port, others []Port) (Port, error) {
	if p.MAC == "" && old != nil {
		p.MAC = old.MAC
	}
	if p.MAC == "" && old == nil {
		mac, err := s.generateMAC(t)
		if err != nil {
			return p, err
		}
		p.MAC = mac
	}
	if p.MAC == "" { // a port stored before MACs were generated
		if len(p.AllowedAddressPairs) > 0 {
			return p, invalid("allowed_address_pairs", "allowed address pairs need port security, which needs the port's mac")
		}
		p.PortSecurityEnabled = false // security needs the port's MAC
	}
	subnets, err := networkSubnets(t, p.Network)
	if err != nil {
		return p, err
	}
	if old == nil && len(p.IPs) == 0 && len(subnets) > 0 {
		p.IPs, err = allocateIPs(subnets, p, others)
		return p, err
	}
	if old != nil && slices.Equal(p.IPs, old.IPs) {
		return p, nil // unchanged addresses stay valid, whatever subnets came since
	}
	return p, checkSubnetIPs(subnets, p)
}
