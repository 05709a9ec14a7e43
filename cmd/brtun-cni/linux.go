package main

import (
	"errors"
	"fmt"
	"net"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ip"
	"github.com/containernetworking/plugins/pkg/ipam"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
)

// dataplane is what the plugin does to links and addresses; linuxDataplane
// is the real one, the unit tests have a fake.
type dataplane interface {
	// CreateVeth creates a veth pair of MTU mtu: contIf inside the
	// container's namespace netns, hostIf in the plugin's (the host's)
	// namespace, up. It returns hostIf's MAC.
	CreateVeth(netns, contIf, hostIf string, mtu int) (hostMAC string, err error)
	// DeleteHostLink deletes hostIf from the host's namespace, and with it
	// its peer; a link that is not there is no error.
	DeleteHostLink(hostIf string) error
	// SetMAC gives contIf inside netns the Ethernet address mac.
	SetMAC(netns, contIf, mac string) error
	// Configure brings contIf inside netns up with res's addresses and
	// routes (those of interface index 1, the container's).
	Configure(netns, contIf string, res *current.Result) error
	// Check verifies that hostIf exists, and that contIf inside netns has
	// mac, mtu, and res's addresses and routes.
	Check(netns, contIf, hostIf, mac string, mtu int, res *current.Result) error
}

// linuxDataplane works on the kernel's links through containernetworking's
// ns and ip packages.
type linuxDataplane struct{}

func (linuxDataplane) CreateVeth(netnsPath, contIf, hostIf string, mtu int) (string, error) {
	hostNS, err := ns.GetCurrentNS()
	if err != nil {
		return "", fmt.Errorf("host namespace: %w", err)
	}
	defer hostNS.Close()
	var hostLink net.Interface
	err = ns.WithNetNSPath(netnsPath, func(ns.NetNS) error {
		var err error
		hostLink, _, err = ip.SetupVethWithName(contIf, hostIf, mtu, "", hostNS)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("create veth %s (in %s) - %s: %w", contIf, netnsPath, hostIf, err)
	}
	return hostLink.HardwareAddr.String(), nil
}

func (linuxDataplane) DeleteHostLink(hostIf string) error {
	if err := ip.DelLinkByName(hostIf); err != nil && !errors.Is(err, ip.ErrLinkNotFound) {
		return fmt.Errorf("delete %s: %w", hostIf, err)
	}
	return nil
}

func (linuxDataplane) SetMAC(netnsPath, contIf, mac string) error {
	hw, err := net.ParseMAC(mac)
	if err != nil {
		return fmt.Errorf("port MAC %q: %w", mac, err)
	}
	return ns.WithNetNSPath(netnsPath, func(ns.NetNS) error {
		link, err := netlinksafe.LinkByName(contIf)
		if err != nil {
			return fmt.Errorf("find %s in %s: %w", contIf, netnsPath, err)
		}
		if err := netlink.LinkSetHardwareAddr(link, hw); err != nil {
			return fmt.Errorf("set the MAC of %s in %s to %s: %w", contIf, netnsPath, mac, err)
		}
		return nil
	})
}

func (linuxDataplane) Configure(netnsPath, contIf string, res *current.Result) error {
	return ns.WithNetNSPath(netnsPath, func(ns.NetNS) error {
		if err := ipam.ConfigureIface(contIf, res); err != nil {
			return fmt.Errorf("configure %s in %s: %w", contIf, netnsPath, err)
		}
		return nil
	})
}

func (linuxDataplane) Check(netnsPath, contIf, hostIf, mac string, mtu int, res *current.Result) error {
	host, err := netlinksafe.LinkByName(hostIf)
	if err != nil {
		return fmt.Errorf("host end %s: %w", hostIf, err)
	}
	if host.Type() != "veth" {
		return fmt.Errorf("host end %s is a %s, not a veth", hostIf, host.Type())
	}
	return ns.WithNetNSPath(netnsPath, func(ns.NetNS) error {
		link, err := netlinksafe.LinkByName(contIf)
		if err != nil {
			return fmt.Errorf("%s in %s: %w", contIf, netnsPath, err)
		}
		a := link.Attrs()
		if a.HardwareAddr.String() != mac {
			return fmt.Errorf("%s in %s has MAC %s, the port %s", contIf, netnsPath, a.HardwareAddr, mac)
		}
		if mtu > 0 && a.MTU != mtu {
			return fmt.Errorf("%s in %s has MTU %d, the network %d", contIf, netnsPath, a.MTU, mtu)
		}
		if err := ip.ValidateExpectedInterfaceIPs(contIf, res.IPs); err != nil {
			return fmt.Errorf("%s in %s: %w", contIf, netnsPath, err)
		}
		if err := ip.ValidateExpectedRoute(res.Routes); err != nil {
			return fmt.Errorf("%s in %s: %w", contIf, netnsPath, err)
		}
		return nil
	})
}
