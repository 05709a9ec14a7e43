package main

import (
	"fmt"
	"math"
	"time"

	"github.com/spf13/pflag"

	"github.com/brtun/brtun/controller"
)

// dhcpOptions are serve's --dhcp-* flags: the lease time brtun hands out
// and the limits on what VMs' DHCP, DHCPv6 and router solicitations may
// cost it (docs/operations.md, DHCP and router advertisements).
type dhcpOptions struct {
	leaseTime  time.Duration
	portRate   float64
	portBurst  int
	meterRate  int
	meterBurst int
}

func (o *dhcpOptions) addFlags(f *pflag.FlagSet) {
	f.DurationVar(&o.leaseTime, "dhcp-lease-time", controller.DefaultDHCPLeaseTime, "lease time of the DHCPv4 addresses and lifetime of the DHCPv6 ones brtun hands to VMs (renewal at half of it)")
	f.Float64Var(&o.portRate, "dhcp-port-rate", controller.DefaultDHCPPortRate, "DHCP, DHCPv6 and router solicitation packets per second brtun takes from one VM port (token bucket); what a port sends beyond is dropped and counted")
	f.IntVar(&o.portBurst, "dhcp-port-burst", controller.DefaultDHCPPortBurst, "burst of the per-port limit: packets a quiet port may send at once")
	f.IntVar(&o.meterRate, "dhcp-meter-rate", controller.DefaultDHCPMeterRate, "packets per second each br-int's DHCP meter (OpenFlow meter 1) lets through to the controller, for all its ports together")
	f.IntVar(&o.meterBurst, "dhcp-meter-burst", controller.DefaultDHCPMeterBurst, "burst size in packets of each br-int's DHCP meter")
}

// check validates the flags and returns the controller's DHCP options.
func (o dhcpOptions) check(underlayMTU int) (controller.DHCPOptions, error) {
	switch {
	case o.leaseTime < 10*time.Second:
		return controller.DHCPOptions{}, fmt.Errorf("--dhcp-lease-time must be at least 10s, got %s", o.leaseTime)
	case math.IsNaN(o.portRate) || math.IsInf(o.portRate, 0) || o.portRate <= 0:
		return controller.DHCPOptions{}, fmt.Errorf("--dhcp-port-rate must be a positive number of packets per second, got %v", o.portRate)
	case o.portBurst < 1:
		return controller.DHCPOptions{}, fmt.Errorf("--dhcp-port-burst must be at least 1 packet, got %d", o.portBurst)
	case o.meterRate < 1 || int64(o.meterRate) > math.MaxUint32:
		return controller.DHCPOptions{}, fmt.Errorf("--dhcp-meter-rate must be 1 to %d packets per second, got %d", uint32(math.MaxUint32), o.meterRate)
	case o.meterBurst < 1 || int64(o.meterBurst) > math.MaxUint32:
		return controller.DHCPOptions{}, fmt.Errorf("--dhcp-meter-burst must be 1 to %d packets, got %d", uint32(math.MaxUint32), o.meterBurst)
	}
	return controller.DHCPOptions{LeaseTime: o.leaseTime, UnderlayMTU: underlayMTU,
		PortRate: o.portRate, PortBurst: o.portBurst, MeterRate: o.meterRate, MeterBurst: o.meterBurst}, nil
}
