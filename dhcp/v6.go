package dhcp

import (
	"fmt"
	"net/netip"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

func isStateful(s Subnet) bool { return isRASubnet(s) && s.IPv6AddressMode == ModeStateful }

func isDHCPv6(s Subnet) bool {
	return isRASubnet(s) && (s.IPv6AddressMode == ModeStateful || s.IPv6AddressMode == ModeStateless)
}

// serverDUID is brtun's DHCPv6 server identifier: a DUID-LL of mac.
func serverDUID(mac []byte) dhcpv6.DUID {
	return &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: append([]byte(nil), mac...)}
}

// answerDHCPv6 answers the DHCPv6 message payload (the UDP payload of a frame
// from port's MAC) following RFC 8415: stateful (IA_NA with the port's address)
// on dhcpv6-stateful subnets, information-request on both DHCPv6 modes.
func answerDHCPv6(ip *layers.IPv6, payload []byte, port Port, subnets []Subnet, cfg Config) ([]byte, error) {
	msg, err := dhcpv6.MessageFromBytes(payload)
	if err != nil {
		return nil, fmt.Errorf("dhcpv6: %v: %w", err, ErrMalformed)
	}
	src, ok := netip.AddrFromSlice(ip.SrcIP)
	if !ok || src.IsUnspecified() || src.IsMulticast() {
		return nil, fmt.Errorf("dhcpv6 from source %s: %w", ip.SrcIP, ErrMalformed)
	}
	duid := serverDUID(cfg.ServerMAC)
	t := msg.MessageType
	cid := msg.GetOneOption(dhcpv6.OptionClientID)
	sid := msg.Options.ServerID()

	inScope := isStateful
	switch t {
	case dhcpv6.MessageTypeSolicit, dhcpv6.MessageTypeRebind, dhcpv6.MessageTypeConfirm:
		// RFC 8415 16: these carry no server identifier.
		if sid != nil {
			return nil, fmt.Errorf("dhcpv6 %s with a server identifier: %w", t, ErrMalformed)
		}
	case dhcpv6.MessageTypeRequest, dhcpv6.MessageTypeRenew, dhcpv6.MessageTypeRelease, dhcpv6.MessageTypeDecline:
		if sid == nil || !sid.Equal(duid) {
			return nil, fmt.Errorf("dhcpv6 %s for server %v: %w", t, sid, ErrNotForUs)
		}
	case dhcpv6.MessageTypeInformationRequest:
		if sid != nil && !sid.Equal(duid) {
			return nil, fmt.Errorf("dhcpv6 %s for server %v: %w", t, sid, ErrNotForUs)
		}
		inScope = isDHCPv6
	default:
		return nil, fmt.Errorf("dhcpv6 message type %s from a client: %w", t, ErrMalformed)
	}
	if cid == nil && t != dhcpv6.MessageTypeInformationRequest {
		return nil, fmt.Errorf("dhcpv6 %s without client identifier: %w", t, ErrMalformed)
	}
	addr, sub, ok := portAddress(port, subnets, inScope)
	if !ok {
		return nil, fmt.Errorf("dhcpv6 %s from %s: %w", t, port.MAC, ErrNoAddress)
	}

	reply := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeReply, TransactionID: msg.TransactionID}
	if cid != nil {
		reply.AddOption(cid)
	}
	reply.AddOption(dhcpv6.OptServerID(duid))
	if t == dhcpv6.MessageTypeSolicit {
		reply.MessageType = dhcpv6.MessageTypeAdvertise
		// brtun is the network's only server: preference 255 lets the
		// client request at once instead of collecting advertisements for
		// a second (RFC 8415 18.2.1).
		reply.AddOption(dhcpv6.OptPreference(255))
	}

	switch t {
	case dhcpv6.MessageTypeSolicit, dhcpv6.MessageTypeRequest, dhcpv6.MessageTypeRenew, dhcpv6.MessageTypeRebind:
		ias := msg.Options.IANA()
		if len(ias) == 0 && t == dhcpv6.MessageTypeSolicit {
			reply.AddOption(&dhcpv6.OptStatusCode{StatusCode: iana.StatusNoAddrsAvail, StatusMessage: "only IA_NA is served"})
		}
		for _, ia := range ias {
			reply.AddOption(leaseIA(ia, addr, t != dhcpv6.MessageTypeSolicit, cfg))
		}
	case dhcpv6.MessageTypeConfirm:
		// RFC 8415 18.3.3: say whether the client's addresses are on link;
		// no answer when it names none.
		status, named := iana.StatusSuccess, false
		for _, ia := range msg.Options.IANA() {
			for _, a := range ia.Options.Addresses() {
				named = true
				if ca, ok := netip.AddrFromSlice(a.IPv6Addr); !ok || !sub.CIDR.Contains(ca) {
					status = iana.StatusNotOnLink
				}
			}
		}
		if !named {
			return nil, nil
		}
		reply.AddOption(&dhcpv6.OptStatusCode{StatusCode: status})
	case dhcpv6.MessageTypeRelease, dhcpv6.MessageTypeDecline:
		// The address stays the port's; acknowledge so the client stops
		// retransmitting (RFC 8415 18.3.7, 18.3.8).
		reply.AddOption(&dhcpv6.OptStatusCode{StatusCode: iana.StatusSuccess})
	}
	if dns := ipSlices(sub.DNSServers, false); len(dns) > 0 && t != dhcpv6.MessageTypeRelease && t != dhcpv6.MessageTypeDecline {
		reply.AddOption(dhcpv6.OptDNS(dns...))
	}

	eth := &layers.Ethernet{SrcMAC: cfg.ServerMAC, DstMAC: port.MAC, EthernetType: layers.EthernetTypeIPv6}
	ip6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP,
		SrcIP: ipSlice(LinkLocal(cfg.ServerMAC)), DstIP: ipSlice(src)}
	udp := &layers.UDP{SrcPort: portDHCPv6Server, DstPort: portDHCPv6Client}
	if err := udp.SetNetworkLayerForChecksum(ip6); err != nil {
		return nil, fmt.Errorf("dhcpv6: %w", err)
	}
	return serialize(eth, ip6, udp, gopacket.Payload(reply.ToBytes()))
}

// leaseIA answers one IA_NA with the port's address. With dropOthers set, the
// client's other addresses in it come back with zero lifetimes so it drops
// them (RFC 8415 18.3.4).
func leaseIA(req *dhcpv6.OptIANA, addr netip.Addr, dropOthers bool, cfg Config) *dhcpv6.OptIANA {
	ia := &dhcpv6.OptIANA{IaId: req.IaId, T1: cfg.LeaseTime / 2, T2: cfg.LeaseTime * 4 / 5}
	ia.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: ipSlice(addr), PreferredLifetime: cfg.LeaseTime, ValidLifetime: cfg.LeaseTime})
	if dropOthers {
		for _, a := range req.Options.Addresses() {
			if ca, ok := netip.AddrFromSlice(a.IPv6Addr); ok && ca != addr {
				ia.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: a.IPv6Addr})
			}
		}
	}
	return ia
}
