package dhcp

import (
	"bytes"
	"fmt"
	"net"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// answerDHCPv4 answers the DHCPv4 message payload (the UDP payload of a
// frame from port's MAC) following RFC 2131.
func answerDHCPv4(payload []byte, port Port, subnets []Subnet, cfg Config) ([]byte, error) {
	req, err := dhcpv4.FromBytes(payload)
	if err != nil {
		return nil, fmt.Errorf("dhcpv4: %v: %w", err, ErrMalformed)
	}
	if req.OpCode != dhcpv4.OpcodeBootRequest || req.HWType != iana.HWTypeEthernet {
		return nil, fmt.Errorf("dhcpv4: op %s hardware type %s: %w", req.OpCode, req.HWType, ErrMalformed)
	}
	if !bytes.Equal(req.ClientHWAddr, port.MAC) {
		return nil, fmt.Errorf("dhcpv4 for %s on port %s: %w", req.ClientHWAddr, port.MAC, ErrUnknownMAC)
	}
	// A VM is no relay agent; a relayed request would need an answer to the
	// relay, which brtun does not do.
	if giaddr := req.GatewayIPAddr; giaddr != nil && !giaddr.IsUnspecified() {
		return nil, fmt.Errorf("dhcpv4: relayed by %s: %w", giaddr, ErrNotForUs)
	}
	mt := req.MessageType()
	switch mt {
	case dhcpv4.MessageTypeDiscover, dhcpv4.MessageTypeRequest, dhcpv4.MessageTypeInform:
	case dhcpv4.MessageTypeRelease, dhcpv4.MessageTypeDecline:
		// The address is the port's for its whole life; nothing to free, and
		// RFC 2131 has no answer to these.
		return nil, nil
	default:
		return nil, fmt.Errorf("dhcpv4: message type %s from a client: %w", mt, ErrMalformed)
	}

	addr, sub, ok := portAddress(port, subnets, func(s Subnet) bool { return s.CIDR.Addr().Is4() })
	if !ok {
		return nil, fmt.Errorf("dhcpv4 %s from %s: %w", mt, port.MAC, ErrNoAddress)
	}
	server := sub.Gateway
	if !server.Is4() {
		server = sub.ServerIP
	}
	if !server.Is4() {
		return nil, fmt.Errorf("dhcpv4: subnet %s has neither gateway nor server IP: %w", sub.CIDR, ErrConfig)
	}

	var reply *dhcpv4.DHCPv4
	switch mt {
	case dhcpv4.MessageTypeDiscover:
		reply, err = dhcpv4.NewReplyFromRequest(req,
			dhcpv4.WithMessageType(dhcpv4.MessageTypeOffer),
			dhcpv4.WithYourIP(ipSlice(addr)))
		if err == nil {
			addLeaseOptions(reply, sub, cfg)
		}
	case dhcpv4.MessageTypeRequest:
		if sid := req.ServerIdentifier(); sid != nil && !sid.Equal(ipSlice(server)) {
			// SELECTING state, and the client chose another server's offer.
			return nil, fmt.Errorf("dhcpv4 request for server %s, we are %s: %w", sid, server, ErrNotForUs)
		}
		// INIT-REBOOT and SELECTING name the address in option 50,
		// RENEWING and REBINDING in ciaddr (RFC 2131 4.3.2).
		requested := req.RequestedIPAddress()
		if requested == nil || requested.IsUnspecified() {
			requested = req.ClientIPAddr
		}
		if requested == nil || requested.IsUnspecified() {
			return nil, fmt.Errorf("dhcpv4 request names no address: %w", ErrMalformed)
		}
		if !requested.Equal(ipSlice(addr)) {
			reply, err = dhcpv4.NewReplyFromRequest(req,
				dhcpv4.WithMessageType(dhcpv4.MessageTypeNak),
				dhcpv4.WithOption(dhcpv4.OptServerIdentifier(ipSlice(server))),
				dhcpv4.WithOption(dhcpv4.OptMessage(fmt.Sprintf("address %s is not this port's", requested))))
			break
		}
		reply, err = dhcpv4.NewReplyFromRequest(req,
			dhcpv4.WithMessageType(dhcpv4.MessageTypeAck),
			dhcpv4.WithClientIP(req.ClientIPAddr),
			dhcpv4.WithYourIP(ipSlice(addr)))
		if err == nil {
			addLeaseOptions(reply, sub, cfg)
		}
	case dhcpv4.MessageTypeInform:
		// RFC 2131 4.3.5: configuration only, no lease time, no yiaddr.
		reply, err = dhcpv4.NewReplyFromRequest(req,
			dhcpv4.WithMessageType(dhcpv4.MessageTypeAck),
			dhcpv4.WithClientIP(req.ClientIPAddr))
		if err == nil {
			addConfigOptions(reply, sub, cfg)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("dhcpv4: build %s answer: %w", mt, err)
	}
	reply.UpdateOption(dhcpv4.OptServerIdentifier(ipSlice(server)))

	dstIP, dstMAC := v4Destination(req, reply)
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: ipSlice(server), DstIP: dstIP}
	udp := &layers.UDP{SrcPort: portBootpServer, DstPort: portBootpClient}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		return nil, fmt.Errorf("dhcpv4: %w", err)
	}
	return serialize(
		&layers.Ethernet{SrcMAC: cfg.ServerMAC, DstMAC: dstMAC, EthernetType: layers.EthernetTypeIPv4},
		ip, udp, gopacket.Payload(reply.ToBytes()),
	)
}

// v4Destination chooses where an answer goes (RFC 2131 4.1, giaddr being 0):
// a DHCPNAK is broadcast; otherwise unicast to ciaddr when the client has
// one, broadcast when it asked so, else unicast to yiaddr at chaddr.
func v4Destination(req, reply *dhcpv4.DHCPv4) (net.IP, net.HardwareAddr) {
	bcastIP, bcastMAC := net.IPv4bcast.To4(), layers.EthernetBroadcast
	switch {
	case reply.MessageType() == dhcpv4.MessageTypeNak:
		return bcastIP, bcastMAC
	case req.ClientIPAddr != nil && !req.ClientIPAddr.IsUnspecified():
		return req.ClientIPAddr.To4(), req.ClientHWAddr
	case req.IsBroadcast(), reply.YourIPAddr == nil, reply.YourIPAddr.IsUnspecified():
		return bcastIP, bcastMAC
	default:
		return reply.YourIPAddr.To4(), req.ClientHWAddr
	}
}

// addLeaseOptions adds the lease times and the subnet's configuration.
func addLeaseOptions(reply *dhcpv4.DHCPv4, sub Subnet, cfg Config) {
	reply.UpdateOption(dhcpv4.OptIPAddressLeaseTime(cfg.LeaseTime))
	reply.UpdateOption(dhcpv4.OptRenewTimeValue(cfg.LeaseTime / 2))
	reply.UpdateOption(dhcpv4.OptRebindingTimeValue(cfg.LeaseTime * 7 / 8))
	addConfigOptions(reply, sub, cfg)
}

// addConfigOptions adds mask, router, DNS, classless routes and MTU.
func addConfigOptions(reply *dhcpv4.DHCPv4, sub Subnet, cfg Config) {
	reply.UpdateOption(dhcpv4.OptSubnetMask(net.CIDRMask(sub.CIDR.Bits(), 32)))
	hasGateway := sub.Gateway.Is4()
	if hasGateway {
		reply.UpdateOption(dhcpv4.OptRouter(ipSlice(sub.Gateway)))
	}
	if dns := ipSlices(sub.DNSServers, true); len(dns) > 0 {
		reply.UpdateOption(dhcpv4.OptDNS(dns...))
	}
	if routes := classlessRoutes(sub); len(routes) > 0 {
		// RFC 3442: a client that gets option 121 ignores option 3, so the
		// default route goes in too.
		if hasGateway {
			routes = append(routes, &dhcpv4.Route{
				Dest:   &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)},
				Router: ipSlice(sub.Gateway),
			})
		}
		reply.UpdateOption(dhcpv4.OptClasslessStaticRoute(routes...))
	}
	if cfg.MTU > 0 {
		// The library has the option code and the uint16 codec but no
		// constructor for option 26.
		reply.UpdateOption(dhcpv4.Option{Code: dhcpv4.OptionInterfaceMTU, Value: dhcpv4.Uint16(cfg.MTU)})
	}
}

// classlessRoutes are the subnet's IPv4 host routes, the default route left
// out (it is the gateway's).
func classlessRoutes(sub Subnet) []*dhcpv4.Route {
	var out []*dhcpv4.Route
	for _, r := range sub.HostRoutes {
		if !r.Destination.Addr().Is4() || !r.NextHop.Is4() || r.Destination.Bits() == 0 {
			continue
		}
		p := r.Destination.Masked()
		out = append(out, &dhcpv4.Route{
			Dest:   &net.IPNet{IP: ipSlice(p.Addr()), Mask: net.CIDRMask(p.Bits(), 32)},
			Router: ipSlice(r.NextHop),
		})
	}
	return out
}
