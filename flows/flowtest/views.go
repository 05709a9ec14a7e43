package flowtest

import (
	"fmt"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/topology"
)

// PortSecurityView is one host with dual-stack ports (one IPv4 and one
// IPv6 address each) spread over 10 VXLAN networks, port security on or
// off: what port security costs in br-int flows is the difference. The
// flows benchmark and the bench package's install timing both use it.
func PortSecurityView(ports int, security bool) flows.View {
	v := flows.View{Host: "h0", PatchIntOfport: 1, PatchTunOfport: 1}
	for i := range 10 {
		v.Networks = append(v.Networks, flows.NetworkView{
			Name: fmt.Sprintf("net%02d", i), Type: topology.VXLAN, SegmentID: uint32(5000 + i), LocalVLAN: uint16(i + 1), MACLearning: true,
		})
	}
	for i := range ports {
		n := i % 10
		v.LocalPorts = append(v.LocalPorts, flows.LocalPort{
			Network: fmt.Sprintf("net%02d", n), Name: fmt.Sprintf("p%04d", i), Ofport: uint32(i + 2), LocalVLAN: uint16(n + 1),
			MAC: fmt.Sprintf("02:00:00:00:%02x:%02x", i>>8, i&0xff),
			IPs: []string{fmt.Sprintf("198.18.%d.%d", i/250, i%250+1), fmt.Sprintf("2001:db8::%x", i+1)}, PortSecurity: security,
		})
	}
	return v
}
