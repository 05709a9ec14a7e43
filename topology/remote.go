package topology

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// RemoteVTEP is a VXLAN or Geneve tunnel endpoint brtun does not program (a
// Linux host with a kernel VXLAN device, a hardware switch): every brtun host
// carrying one of its networks tunnels to it and floods to it; its MACs,
// when given, are installed like registered ports.
type RemoteVTEP struct {
	Name     string      `json:"name"`
	TunnelIP string      `json:"tunnel_ip"`
	Networks []string    `json:"networks"` // sorted, no duplicates
	MACs     []RemoteMAC `json:"macs"`     // sorted by MAC; never nil once stored
	Meta
}

// RemoteMAC is a MAC behind a remote VTEP, with its addresses.
type RemoteMAC struct {
	MAC string   `json:"mac"`
	IPs []string `json:"ips,omitempty"`
}

// BGPPeer is a BGP neighbor of brtun's EVPN speaker, keyed by its address.
type BGPPeer struct {
	Address  string `json:"address"`
	ASN      uint32 `json:"asn"`
	Password string `json:"password,omitempty"` // TCP MD5; the API never answers it
	Meta
}

// EVPNRoutes is what the BGP EVPN speaker imported, stored so that a
// restarted brtun compiles the same flows before its sessions are back.
type EVPNRoutes struct {
	Networks []EVPNNetwork `json:"networks"`
	// State is the speaker's own state (imports and sequence numbers),
	// opaque here, handed back to it on restart.
	State json.RawMessage `json:"state,omitempty"`
}

// EVPNNetwork is the imported part of one VNI.
type EVPNNetwork struct {
	VNI   uint32     `json:"vni"`
	VTEPs []EVPNVTEP `json:"vteps,omitempty"`
	MACs  []EVPNMAC  `json:"macs,omitempty"`
}

// EVPNVTEP is a remote VTEP learned from a type-3 route.
type EVPNVTEP struct {
	IP   string `json:"ip"`
	Peer string `json:"peer"`
}

// EVPNMAC is a remote MAC learned from type-2 routes.
type EVPNMAC struct {
	MAC  string   `json:"mac"`
	IPs  []string `json:"ips,omitempty"`
	VTEP string   `json:"vtep"`
	Peer string   `json:"peer"`
}

// Buckets of this file's objects.
const (
	bucketRemoteVTEPs bucket = "remotevteps" // name -> RemoteVTEP
	bucketBGPPeers    bucket = "bgppeers"    // address -> BGPPeer
	bucketEVPN        bucket = "evpn"        // "routes" -> EVPNRoutes
)

const evpnKey = "routes"

// vtepClaim is the value of a remote VTEP's tunnel IP in bucketTunnelIPs:
// host names cannot contain ':', so it never equals a host's name.
func vtepClaim(name string) string { return "vtep:" + name }

// RemoteStore is the part of the store that holds what lies beyond brtun's
// own hosts: static remote VTEPs, BGP peers and the routes imported from
// them. The Store implements it.
type RemoteStore interface {
	// CreateRemoteVTEP stores a remote VTEP. Its tunnel IP is unique among
	// hosts and remote VTEPs; its networks must exist and be VXLAN or
	// Geneve; its MACs are unique in each of its networks.
	CreateRemoteVTEP(ctx context.Context, v RemoteVTEP) (RemoteVTEP, uint64, error)
	GetRemoteVTEP(ctx context.Context, name string) (RemoteVTEP, error)
	ListRemoteVTEPs(ctx context.Context) ([]RemoteVTEP, error)
	UpdateRemoteVTEP(ctx context.Context, name string, ifMatch IfMatch, change func(*RemoteVTEP) error) (RemoteVTEP, uint64, error)
	DeleteRemoteVTEP(ctx context.Context, name string, ifMatch IfMatch) (uint64, error)

	CreateBGPPeer(ctx context.Context, p BGPPeer) (BGPPeer, uint64, error)
	GetBGPPeer(ctx context.Context, address string) (BGPPeer, error)
	ListBGPPeers(ctx context.Context) ([]BGPPeer, error)
	UpdateBGPPeer(ctx context.Context, address string, ifMatch IfMatch, change func(*BGPPeer) error) (BGPPeer, uint64, error)
	DeleteBGPPeer(ctx context.Context, address string, ifMatch IfMatch) (uint64, error)

	// EVPNRoutes returns the stored imported routes (zero when none).
	EVPNRoutes(ctx context.Context) (EVPNRoutes, error)
	// PutEVPNRoutes stores r; a value equal to the stored one is not
	// written (the revision does not change, and 0 is returned).
	PutEVPNRoutes(ctx context.Context, r EVPNRoutes) (uint64, error)
}

// normalizeRemoteVTEP validates v and returns it in canonical form.
func normalizeRemoteVTEP(v RemoteVTEP) (RemoteVTEP, error) {
	if err := validateName("name", v.Name); err != nil {
		return RemoteVTEP{}, err
	}
	ip, err := netip.ParseAddr(v.TunnelIP)
	if err != nil || ip.Zone() != "" {
		return RemoteVTEP{}, invalid("tunnel_ip", "%q is not an IP address", v.TunnelIP)
	}
	if ip.IsUnspecified() || ip.IsMulticast() || ip.IsLoopback() {
		return RemoteVTEP{}, invalid("tunnel_ip", "%s cannot be a tunnel endpoint", ip)
	}
	v.TunnelIP = ip.Unmap().String()
	if len(v.Networks) == 0 {
		return RemoteVTEP{}, invalid("networks", "name at least one network")
	}
	nets := make([]string, 0, len(v.Networks))
	for i, n := range v.Networks {
		if err := validateName("networks["+strconv.Itoa(i)+"]", n); err != nil {
			return RemoteVTEP{}, err
		}
		nets = append(nets, n)
	}
	slices.Sort(nets)
	v.Networks = slices.Compact(nets)
	macs := make([]RemoteMAC, 0, len(v.MACs))
	seen := map[string]bool{}
	for i, m := range v.MACs {
		field := "macs[" + strconv.Itoa(i) + "]"
		p, err := normalizePort(Port{Name: "x", Host: "x", Interface: "x", MAC: m.MAC, IPs: m.IPs})
		if err != nil {
			var e *Error
			if errors.As(err, &e) {
				return RemoteVTEP{}, invalid(field+"."+e.Field, "%s", e.Message)
			}
			return RemoteVTEP{}, err
		}
		if p.MAC == "" {
			return RemoteVTEP{}, invalid(field+".mac", "a MAC is required")
		}
		if seen[p.MAC] {
			return RemoteVTEP{}, invalid(field+".mac", "%s is listed twice", p.MAC)
		}
		seen[p.MAC] = true
		macs = append(macs, RemoteMAC{MAC: p.MAC, IPs: p.IPs})
	}
	slices.SortFunc(macs, func(a, b RemoteMAC) int { return strings.Compare(a.MAC, b.MAC) })
	v.MACs = macs
	if v.Meta, err = normalizeMeta(v.Meta); err != nil {
		return RemoteVTEP{}, err
	}
	return v, nil
}

// checkRemoteVTEP checks v against the rest of the state: its networks
// exist and tunnel over UDP VXLAN or Geneve, and its MACs are not a port's
// or another remote VTEP's MAC in the same network.
func checkRemoteVTEP(t txn, v RemoteVTEP) error {
	for i, name := range v.Networks {
		n, found, err := getNetwork(t, name)
		if err != nil {
			return err
		}
		if !found {
			return invalid("networks["+strconv.Itoa(i)+"]", "network %q does not exist", name)
		}
		if n.Type != VXLAN && n.Type != Geneve {
			return invalid("networks["+strconv.Itoa(i)+"]", "network %q is %s: remote VTEPs join VXLAN and Geneve networks only", name, n.Type)
		}
		if len(v.MACs) == 0 {
			continue
		}
		ports, err := scanJSON[Port](t, bucketPorts, key(name, ""))
		if err != nil {
			return err
		}
		for _, p := range ports {
			for _, m := range v.MACs {
				if p.MAC == m.MAC {
					return conflict("MAC %s is port %q's in network %q", m.MAC, p.Name, name)
				}
			}
		}
		others, err := scanJSON[RemoteVTEP](t, bucketRemoteVTEPs, "")
		if err != nil {
			return err
		}
		for _, o := range others {
			if o.Name == v.Name || !slices.Contains(o.Networks, name) {
				continue
			}
			for _, om := range o.MACs {
				for _, m := range v.MACs {
					if om.MAC == m.MAC {
						return conflict("MAC %s is behind remote VTEP %q in network %q", m.MAC, o.Name, name)
					}
				}
			}
		}
	}
	return nil
}

// claimVTEPIP records v as the owner of its tunnel IP.
func claimVTEPIP(t txn, v RemoteVTEP) error {
	owner, err := t.get(bucketTunnelIPs, v.TunnelIP)
	if err != nil {
		return err
	}
	if owner != nil && string(owner) != vtepClaim(v.Name) {
		if o, ok := strings.CutPrefix(string(owner), "vtep:"); ok {
			return conflict("tunnel_ip %s is already used by remote VTEP %q", v.TunnelIP, o)
		}
		return conflict("tunnel_ip %s is already used by host %q", v.TunnelIP, owner)
	}
	return t.put(bucketTunnelIPs, v.TunnelIP, []byte(vtepClaim(v.Name)))
}

func (s *store) CreateRemoteVTEP(ctx context.Context, v RemoteVTEP) (RemoteVTEP, uint64, error) {
	v, err := normalizeRemoteVTEP(v)
	if err != nil {
		return RemoteVTEP{}, 0, fmt.Errorf("create remote VTEP %q: %w", v.Name, err)
	}
	rev, err := s.write(ctx, func(t txn, rev uint64) error {
		v.RevisionNumber = rev
		if _, found, err := getRemoteVTEP(t, v.Name); err != nil || found {
			if err == nil {
				err = conflict("remote VTEP %q already exists", v.Name)
			}
			return err
		}
		if err := checkRemoteVTEP(t, v); err != nil {
			return err
		}
		if err := claimVTEPIP(t, v); err != nil {
			return err
		}
		return putJSON(t, bucketRemoteVTEPs, v.Name, v)
	})
	if err != nil {
		return RemoteVTEP{}, 0, fmt.Errorf("create remote VTEP %q: %w", v.Name, err)
	}
	return v, rev, nil
}

func (s *store) GetRemoteVTEP(ctx context.Context, name string) (RemoteVTEP, error) {
	var v RemoteVTEP
	err := s.read(ctx, func(t txn) error {
		var err error
		v, err = mustGetRemoteVTEP(t, name)
		return err
	})
	if err != nil {
		return RemoteVTEP{}, fmt.Errorf("get remote VTEP %q: %w", name, err)
	}
	return v, nil
}

func (s *store) ListRemoteVTEPs(ctx context.Context) ([]RemoteVTEP, error) {
	var out []RemoteVTEP
	err := s.read(ctx, func(t txn) error {
		var err error
		out, err = scanJSON[RemoteVTEP](t, bucketRemoteVTEPs, "")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list remote VTEPs: %w", err)
	}
	return out, nil
}

func (s *store) UpdateRemoteVTEP(ctx context.Context, name string, ifMatch IfMatch, change func(*RemoteVTEP) error) (RemoteVTEP, uint64, error) {
	var v RemoteVTEP
	rev, err := s.write(ctx, func(t txn, rev uint64) error {
		old, err := mustGetRemoteVTEP(t, name)
		if err != nil {
			return err
		}
		if err := ifMatch.check(old.RevisionNumber); err != nil {
			return err
		}
		v = old
		v.Tags = slices.Clone(old.Tags)
		v.Networks = slices.Clone(old.Networks)
		v.MACs = slices.Clone(old.MACs)
		if err := change(&v); err != nil {
			return err
		}
		if v.Name != old.Name {
			return invalid("name", "a remote VTEP cannot be renamed (%q)", old.Name)
		}
		if err := immutable("revision_number", v.RevisionNumber == old.RevisionNumber); err != nil {
			return err
		}
		if v, err = normalizeRemoteVTEP(v); err != nil {
			return err
		}
		if err := checkRemoteVTEP(t, v); err != nil {
			return err
		}
		v.RevisionNumber = rev
		if v.TunnelIP != old.TunnelIP {
			if err := t.del(bucketTunnelIPs, old.TunnelIP); err != nil {
				return err
			}
			if err := claimVTEPIP(t, v); err != nil {
				return err
			}
		}
		return putJSON(t, bucketRemoteVTEPs, v.Name, v)
	})
	if err != nil {
		return RemoteVTEP{}, 0, fmt.Errorf("update remote VTEP %q: %w", name, err)
	}
	return v, rev, nil
}

func (s *store) DeleteRemoteVTEP(ctx context.Context, name string, ifMatch IfMatch) (uint64, error) {
	rev, err := s.write(ctx, func(t txn, _ uint64) error {
		v, err := mustGetRemoteVTEP(t, name)
		if err != nil {
			return err
		}
		if err := ifMatch.check(v.RevisionNumber); err != nil {
			return err
		}
		if err := t.del(bucketTunnelIPs, v.TunnelIP); err != nil {
			return err
		}
		return t.del(bucketRemoteVTEPs, name)
	})
	if err != nil {
		return 0, fmt.Errorf("delete remote VTEP %q: %w", name, err)
	}
	return rev, nil
}

func getRemoteVTEP(t txn, name string) (RemoteVTEP, bool, error) {
	var v RemoteVTEP
	if !ValidName(name) {
		return v, false, nil
	}
	found, err := getJSON(t, bucketRemoteVTEPs, name, &v)
	return v, found, err
}

func mustGetRemoteVTEP(t txn, name string) (RemoteVTEP, error) {
	v, found, err := getRemoteVTEP(t, name)
	if err == nil && !found {
		err = notFound("remote VTEP %q does not exist", name)
	}
	return v, err
}

func (v *RemoteVTEP) afterDecode() {
	v.Meta.afterDecode()
	if v.MACs == nil {
		v.MACs = []RemoteMAC{}
	}
}

// normalizeBGPPeer validates p and returns it in canonical form.
func normalizeBGPPeer(p BGPPeer) (BGPPeer, error) {
	ip, err := netip.ParseAddr(p.Address)
	if err != nil || ip.Zone() != "" || ip.IsUnspecified() || ip.IsMulticast() {
		return BGPPeer{}, invalid("address", "%q is not a neighbor's IP address", p.Address)
	}
	p.Address = ip.Unmap().String()
	if p.ASN == 0 || p.ASN == 23456 || p.ASN == 65535 || p.ASN == 4294967295 {
		return BGPPeer{}, invalid("asn", "%d is not a usable AS number", p.ASN)
	}
	if len(p.Password) > 80 || !printable(p.Password) {
		return BGPPeer{}, invalid("password", "want at most 80 printable characters")
	}
	if p.Meta, err = normalizeMeta(p.Meta); err != nil {
		return BGPPeer{}, err
	}
	return p, nil
}

// peerKey is the canonical form of an address used as a key ("" when it
// is not an address).
func peerKey(address string) string {
	ip, err := netip.ParseAddr(address)
	if err != nil || ip.Zone() != "" {
		return ""
	}
	return ip.Unmap().String()
}

func (s *store) CreateBGPPeer(ctx context.Context, p BGPPeer) (BGPPeer, uint64, error) {
	p, err := normalizeBGPPeer(p)
	if err != nil {
		return BGPPeer{}, 0, fmt.Errorf("create BGP peer %q: %w", p.Address, err)
	}
	rev, err := s.write(ctx, func(t txn, rev uint64) error {
		p.RevisionNumber = rev
		var old BGPPeer
		if found, err := getJSON(t, bucketBGPPeers, p.Address, &old); err != nil || found {
			if err == nil {
				err = conflict("BGP peer %s already exists", p.Address)
			}
			return err
		}
		return putJSON(t, bucketBGPPeers, p.Address, p)
	})
	if err != nil {
		return BGPPeer{}, 0, fmt.Errorf("create BGP peer %q: %w", p.Address, err)
	}
	return p, rev, nil
}

func mustGetBGPPeer(t txn, address string) (BGPPeer, error) {
	var p BGPPeer
	k := peerKey(address)
	if k == "" {
		return p, notFound("BGP peer %q does not exist", address)
	}
	found, err := getJSON(t, bucketBGPPeers, k, &p)
	if err == nil && !found {
		err = notFound("BGP peer %q does not exist", address)
	}
	return p, err
}

func (s *store) GetBGPPeer(ctx context.Context, address string) (BGPPeer, error) {
	var p BGPPeer
	err := s.read(ctx, func(t txn) error {
		var err error
		p, err = mustGetBGPPeer(t, address)
		return err
	})
	if err != nil {
		return BGPPeer{}, fmt.Errorf("get BGP peer %q: %w", address, err)
	}
	return p, nil
}

func (s *store) ListBGPPeers(ctx context.Context) ([]BGPPeer, error) {
	var out []BGPPeer
	err := s.read(ctx, func(t txn) error {
		var err error
		out, err = scanJSON[BGPPeer](t, bucketBGPPeers, "")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list BGP peers: %w", err)
	}
	return out, nil
}

func (s *store) UpdateBGPPeer(ctx context.Context, address string, ifMatch IfMatch, change func(*BGPPeer) error) (BGPPeer, uint64, error) {
	var p BGPPeer
	rev, err := s.write(ctx, func(t txn, rev uint64) error {
		old, err := mustGetBGPPeer(t, address)
		if err != nil {
			return err
		}
		if err := ifMatch.check(old.RevisionNumber); err != nil {
			return err
		}
		p = old
		p.Tags = slices.Clone(old.Tags)
		if err := change(&p); err != nil {
			return err
		}
		if peerKey(p.Address) != old.Address {
			return invalid("address", "a BGP peer's address cannot change (%s)", old.Address)
		}
		if err := immutable("revision_number", p.RevisionNumber == old.RevisionNumber); err != nil {
			return err
		}
		if p, err = normalizeBGPPeer(p); err != nil {
			return err
		}
		p.RevisionNumber = rev
		return putJSON(t, bucketBGPPeers, p.Address, p)
	})
	if err != nil {
		return BGPPeer{}, 0, fmt.Errorf("update BGP peer %q: %w", address, err)
	}
	return p, rev, nil
}

func (s *store) DeleteBGPPeer(ctx context.Context, address string, ifMatch IfMatch) (uint64, error) {
	rev, err := s.write(ctx, func(t txn, _ uint64) error {
		p, err := mustGetBGPPeer(t, address)
		if err != nil {
			return err
		}
		if err := ifMatch.check(p.RevisionNumber); err != nil {
			return err
		}
		return t.del(bucketBGPPeers, p.Address)
	})
	if err != nil {
		return 0, fmt.Errorf("delete BGP peer %q: %w", address, err)
	}
	return rev, nil
}

func (s *store) EVPNRoutes(ctx context.Context) (EVPNRoutes, error) {
	var r EVPNRoutes
	err := s.read(ctx, func(t txn) error {
		_, err := getJSON(t, bucketEVPN, evpnKey, &r)
		return err
	})
	if err != nil {
		return EVPNRoutes{}, fmt.Errorf("read EVPN routes: %w", err)
	}
	return r, nil
}

func (s *store) PutEVPNRoutes(ctx context.Context, r EVPNRoutes) (uint64, error) {
	raw, err := json.Marshal(r)
	if err != nil {
		return 0, fmt.Errorf("encode EVPN routes: %w", err)
	}
	if cur, err := s.rawEVPN(ctx); err != nil {
		return 0, err
	} else if bytes.Equal(cur, raw) {
		return 0, nil
	}
	rev, err := s.write(ctx, func(t txn, _ uint64) error {
		return t.put(bucketEVPN, evpnKey, raw)
	})
	if err != nil {
		return 0, fmt.Errorf("store EVPN routes: %w", err)
	}
	return rev, nil
}

func (s *store) rawEVPN(ctx context.Context) ([]byte, error) {
	var raw []byte
	err := s.read(ctx, func(t txn) error {
		var err error
		raw, err = t.get(bucketEVPN, evpnKey)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read EVPN routes: %w", err)
	}
	return raw, nil
}

// validateEVPN checks a network's EVPN fields: VXLAN only, and a route
// target (used only while evpn is on) of the form ASN:N (ASN up to 32 bits, N up to 16 bits when the ASN
// needs more than 16, else 32) or IPv4:N (N up to 16 bits).
func validateEVPN(n Network) error {
	if n.EVPN && n.Type != VXLAN {
		return invalid("evpn", "EVPN is for VXLAN networks only, not %s", n.Type)
	}
	if n.RouteTarget == "" {
		return nil
	}
	admin, num, ok := strings.Cut(n.RouteTarget, ":")
	v, err := strconv.ParseUint(num, 10, 32)
	if !ok || err != nil {
		return invalid("route_target", "%q is not a route target (want ASN:N or IPv4:N)", n.RouteTarget)
	}
	if ip, err := netip.ParseAddr(admin); err == nil {
		if !ip.Is4() || v > 0xffff {
			return invalid("route_target", "%q: want IPv4:N with N up to 65535", n.RouteTarget)
		}
		return nil
	}
	asn, err := strconv.ParseUint(admin, 10, 32)
	if err != nil || asn == 0 || (asn > 0xffff && v > 0xffff) {
		return invalid("route_target", "%q is not a route target (want ASN:N or IPv4:N)", n.RouteTarget)
	}
	return nil
}
