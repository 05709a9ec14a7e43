package lab

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/brtun/brtun/testbed"
)

// KernelHost is a Linux host without Open vSwitch: a namespace on the
// lab's management and underlay LANs (198.51.100.N and 192.0.2.N on eth0
// and eth1) whose VTEPs are kernel VXLAN devices in Linux bridges, as
// Docker's overlay, flannel and FRR use them. TX checksum offload is off on
// its underlay NIC: the userspace datapath drops tunnel packets whose
// checksum the kernel left partial (shared/notes/peers.md).
type KernelHost struct {
	Name     string
	Index    int
	Netns    string
	MgmtIP   string
	TunnelIP string

	lab     *Lab
	eth1MAC string       // the underlay device's MAC
	frr     *testbed.FRR // nil until StartFRR
}

// AddKernelHost adds a kernel VTEP host with address-plan index index
// (pick one no OVS host uses, e.g. 9).
func (l *Lab) AddKernelHost(t TB, name string, index int) *KernelHost {
	t.Helper()
	k := &KernelHost{
		Name: name, Index: index, Netns: l.Prefix + "k" + name,
		MgmtIP: fmt.Sprintf("%s%d", mgmtPrefix, index), TunnelIP: fmt.Sprintf("%s%d", underlayNet, index), lab: l,
	}
	l.mustRun("ip", "netns", "add", k.Netns)
	l.kernelHosts = append(l.kernelHosts, k)
	k.Must(t, "ip", "link", "set", "lo", "up")
	for i, lan := range []struct{ br, ip, link string }{
		{l.mgmtBr, k.MgmtIP, fmt.Sprintf("%skm%d", l.Prefix, index)},
		{l.underBr, k.TunnelIP, fmt.Sprintf("%sku%d", l.Prefix, index)},
	} {
		dev := "eth" + strconv.Itoa(i)
		l.mustRun("ip", "link", "add", lan.link, "type", "veth", "peer", "name", dev, "netns", k.Netns)
		l.mustRun("ip", "link", "set", lan.link, "master", lan.br, "up")
		k.Must(t, "ip", "addr", "add", lan.ip+"/24", "dev", dev)
		k.Must(t, "ip", "link", "set", dev, "up")
		k.Must(t, "ethtool", "-K", dev, "tx", "off")
	}
	k.eth1MAC = linkMAC(t, name, "eth1", k.Exec)
	l.learnUnderlay(t, k.TunnelIP)
	return k
}

// Exec runs a command inside the host's namespace.
func (k *KernelHost) Exec(args ...string) (string, error) {
	return testbed.Run(nil, "ip", append([]string{"netns", "exec", k.Netns}, args...)...)
}

// Must runs a command inside the host's namespace and fails t on error.
func (k *KernelHost) Must(t TB, args ...string) string {
	t.Helper()
	out, err := k.Exec(args...)
	if err != nil {
		t.Fatalf("lab: on %s: %v: %s", k.Name, err, out)
	}
	return out
}

// Bridge and VXLAN device names of a VNI on a kernel host.
func KernelBridge(vni int) string { return "br" + strconv.Itoa(vni) }
func KernelVXLAN(vni int) string  { return "vx" + strconv.Itoa(vni) }

// AddVNI creates the Linux bridge brVNI holding the VXLAN device vxVNI
// (UDP 4789, local = the tunnel IP, no learning: its FDB is what a control
// plane or static entries put there).
func (k *KernelHost) AddVNI(t TB, vni int) {
	t.Helper()
	br, vx := KernelBridge(vni), KernelVXLAN(vni)
	k.Must(t, "ip", "link", "add", br, "type", "bridge", "stp_state", "0")
	k.Must(t, "ip", "link", "add", vx, "type", "vxlan", "id", strconv.Itoa(vni), "dstport", "4789", "local", k.TunnelIP, "nolearning")
	k.Must(t, "ip", "link", "set", vx, "master", br)
	k.Must(t, "ip", "link", "set", vx, "type", "bridge_slave", "learning", "off")
	k.Must(t, "ip", "link", "set", vx, "up")
	k.Must(t, "ip", "link", "set", br, "up")
}

// AddStaticFDB adds a static FDB entry to vxVNI: mac (00:00:00:00:00:00 for
// the flood list) goes to the VTEP at dst.
func (k *KernelHost) AddStaticFDB(t TB, vni int, mac, dst string) {
	t.Helper()
	k.Must(t, "bridge", "fdb", "append", mac, "dev", KernelVXLAN(vni), "dst", dst)
}

// FDB returns `bridge fdb show dev vxVNI`.
func (k *KernelHost) FDB(vni int) string {
	out, _ := testbed.Run(nil, "bridge", "-n", k.Netns, "fdb", "show", "dev", KernelVXLAN(vni))
	return out
}

// AddVM adds a VM behind the bridge of vni: a namespace whose eth0 is a
// veth with its other end in brVNI. o.HostIface names that end.
func (k *KernelHost) AddVM(t TB, vni int, o VMOptions) *VM {
	t.Helper()
	l := k.lab
	if o.Name == "" || len(o.Name) > 8 {
		t.Fatalf("lab: VM name %q must be 1..8 characters", o.Name)
	}
	if o.MTU == 0 {
		o.MTU = 1400
	}
	if o.HostIface == "" {
		o.HostIface = "t" + o.Name
	}
	vm := &VM{Name: o.Name, Netns: l.Prefix + "v" + o.Name, MAC: o.MAC, HostIface: o.HostIface}
	vm.IP, _, _ = strings.Cut(o.CIDR, "/")
	l.mustRun("ip", "netns", "add", vm.Netns)
	l.vms = append(l.vms, vm)
	mtu := strconv.Itoa(o.MTU)
	l.mustRun("ip", "link", "add", "name", o.HostIface, "netns", k.Netns, "mtu", mtu,
		"type", "veth", "peer", "name", "eth0", "netns", vm.Netns, "mtu", mtu)
	k.Must(t, "ip", "link", "set", o.HostIface, "master", KernelBridge(vni))
	k.Must(t, "ip", "link", "set", o.HostIface, "up")
	vm.mustExec(t, "ip", "link", "set", "lo", "up")
	if o.MAC != "" {
		vm.mustExec(t, "ip", "link", "set", "eth0", "address", o.MAC)
	}
	if o.CIDR != "" {
		vm.mustExec(t, "ip", "addr", "add", o.CIDR, "dev", "eth0")
	}
	if o.Quiet {
		vm.mustExec(t, "sysctl", "-q", "-w", "net.ipv6.conf.eth0.disable_ipv6=1")
	}
	vm.mustExec(t, "ip", "link", "set", "eth0", "up")
	return vm
}

// StartFRR runs FRR's zebra and bgpd on the host with bgpdConf (zebra gets
// a log file only); the lab stops them on teardown.
func (k *KernelHost) StartFRR(t TB, bgpdConf string) *testbed.FRR {
	t.Helper()
	k.frr = testbed.StartFRR(t, testbed.FRROptions{Netns: k.Netns, Dir: k.lab.Dir + "/" + k.Name + "-frr", BGPD: bgpdConf})
	return k.frr
}

func (k *KernelHost) stopFRR(t TB) {
	if k.frr != nil {
		k.frr.Stop(t)
	}
}
