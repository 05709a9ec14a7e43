//go:build integration

package integration

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/testbed/lab"
	"github.com/brtun/brtun/topology"
)

// Port security with real frames: Debian's python3-scapy (run as
// /usr/bin/python3, the interpreter the package installs into) sends hand-made
// frames from a VM namespace, and a scapy sniffer in another VM reports the
// markers of the frames that arrived. Every spoofed frame has a positive
// control, the same frame with the port's own addresses, sent in the same
// batch: it must arrive while the spoof must not.

// scapyPython is the interpreter python3-scapy installs into.
const scapyPython = "/usr/bin/python3"

// scapyHelper sends frames (given as scapy expressions, one per line on
// stdin) or sniffs and prints the marker of each frame that arrives: the
// token after "BRTUN:" in its bytes, or "fl=N" for an IPv6 frame with flow
// label N (neighbour discovery frames carry their marker there, since
// trailing bytes would be read as a malformed ND option).
const scapyHelper = `
import re, sys
from scapy.all import *
conf.verb = 0
mode, iface = sys.argv[1], sys.argv[2]
if mode == "send":
    frames = [eval(line) for line in sys.stdin.read().splitlines() if line.strip()]
    for f in frames:
        sendp(f, iface=iface)
        time.sleep(0.02)
    sys.exit(0)
seen = set()
def show(p):
    raw = bytes(p)
    m = re.search(rb"BRTUN:([a-z0-9-]+)", raw)
    token = None
    if m:
        token = m.group(1).decode()
    elif IPv6 in p and p[IPv6].fl:
        token = "fl=%d" % p[IPv6].fl
    if token and token not in seen:
        seen.add(token)
        print(token, flush=True)
sniff(iface=iface, timeout=float(sys.argv[3]), prn=show, store=False,
      started_callback=lambda: print("ready", flush=True))
`

// scapy runs the helper in vm.
type scapy struct {
	t      *testing.T
	script string
}

func newScapy(t *testing.T, l *lab.Lab) *scapy {
	t.Helper()
	_, err := os.Stat(scapyPython)
	require.NoError(t, err, "python3-scapy must be installed (make deps)")
	script := filepath.Join(l.Dir, "scapy_helper.py")
	require.NoError(t, os.WriteFile(script, []byte(scapyHelper), 0o644))
	return &scapy{t: t, script: script}
}

// send sends the frames (scapy expressions) from vm's eth0.
func (s *scapy) send(vm *lab.VM, frames ...string) {
	s.t.Helper()
	cmd := exec.Command("ip", "netns", "exec", vm.Netns, scapyPython, s.script, "send", "eth0")
	cmd.Stdin = strings.NewReader(strings.Join(frames, "\n"))
	out, err := cmd.CombinedOutput()
	require.NoError(s.t, err, "scapy send from %s: %s", vm.Name, out)
}

// sniffer is a scapy sniffer running in a VM.
type sniffer struct {
	cmd   *exec.Cmd
	lines chan string
	done  chan struct{}
}

// sniff starts a sniffer on vm's eth0 for d and waits until it captures.
func (s *scapy) sniff(vm *lab.VM, d time.Duration) *sniffer {
	s.t.Helper()
	cmd := exec.Command("ip", "netns", "exec", vm.Netns, scapyPython, s.script, "sniff", "eth0", strconv.FormatFloat(d.Seconds(), 'f', 1, 64))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	require.NoError(s.t, err)
	require.NoError(s.t, cmd.Start())
	sn := &sniffer{cmd: cmd, lines: make(chan string, 256), done: make(chan struct{})}
	s.t.Cleanup(func() {
		select {
		case <-sn.done:
		default:
			_ = cmd.Process.Kill() // our own child, by PID
			<-sn.done
		}
	})
	go func() {
		defer close(sn.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			sn.lines <- sc.Text()
		}
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
		close(sn.lines)
	}()
	select {
	case l := <-sn.lines:
		require.Equal(s.t, "ready", l, "sniffer in %s", vm.Name)
	case <-time.After(30 * time.Second):
		s.t.Fatalf("sniffer in %s did not start", vm.Name)
	}
	return sn
}

// seen waits for the sniffer to end and returns the markers it saw.
func (sn *sniffer) seen() map[string]bool {
	out := map[string]bool{}
	for l := range sn.lines {
		out[l] = true
	}
	return out
}

// series returns a /metrics series' value and whether it is there.
func series(t *testing.T, d *daemon, name string) (float64, bool) {
	t.Helper()
	resp, err := http.Get(d.API + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	for _, line := range strings.Split(string(body), "\n") {
		if n, v, ok := strings.Cut(line, " "); ok && n == name {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err)
			return f, true
		}
	}
	return 0, false
}

func dropSeries(host, network, port string) string {
	return fmt.Sprintf(`brtun_port_security_dropped_packets_total{host=%q,network=%q,port=%q}`, host, network, port)
}

// Addresses of the port-security test (network blue, 198.18.0.0/24).
const (
	psMAC1  = "02:00:00:00:0b:01"
	psMAC2  = "02:00:00:00:0b:02"
	psMAC3  = "02:00:00:00:0b:03"
	psMAC4  = "02:00:00:00:0b:04"
	psMACAp = "02:00:00:00:0b:05"
	psFake  = "02:00:00:00:0f:0f"
	psVIP   = "198.18.0.100"
	bcast   = "ff:ff:ff:ff:ff:ff"
)

// linkLocalOf is the EUI-64 link-local address the kernel gives mac.
func linkLocalOf(mac string) string {
	hw, err := net.ParseMAC(mac)
	if err != nil {
		panic(err)
	}
	a := [16]byte{0xfe, 0x80, 8: hw[0] ^ 2, 9: hw[1], 10: hw[2], 11: 0xff, 12: 0xfe, 13: hw[3], 14: hw[4], 15: hw[5]}
	return netip.AddrFrom16(a).String()
}

// TestPortSecurity: on h1, vm1 (protected, dual stack) sends each kind of
// spoofed frame beside its own-address control; vm2 (same network, same
// host) sniffs: every control arrives, no spoof does, and vm1's drop counter
// rises in /metrics while vm2's stays 0. appl (port_security_enabled=false)
// sends from any address. A registered MAC is delivered by flow even after
// appl made br-int's NORMAL learn it on appl's port. A flood from appl's
// other source MACs overflows its source meter, whose drops /metrics
// reports.
func TestPortSecurity(t *testing.T) {
	s := newScenario(t, 2, daemonOptions{Advertise: true, DriftInterval: time.Second})
	h1 := s.lab.Hosts[0]
	sc := newScapy(t, s.lab)
	s.network("blue", topology.VXLAN, 5001)
	vm1, vm1v6 := s.dualStackVM(h1, "ps1", "blue", psMAC1, "198.18.0.1/24", "2001:db8:100::1/64")
	vm2 := s.quietVM(h1, "ps2", "blue", psMAC2, "198.18.0.2/24")
	apVM := s.lab.AddVM(t, h1, lab.VMOptions{Name: "psap", MAC: psMACAp, CIDR: "198.18.0.5/24", Quiet: true})
	appl := &tenantVM{VM: apVM, Network: "blue"}
	s.brtun.MustDo(201, "POST", "/v1/networks/blue/ports", map[string]any{
		"name": "psap", "host": "h1", "interface": apVM.HostIface, "mac": psMACAp, "ips": []string{apVM.IP},
		"port_security_enabled": false,
	}, &appl.Port)
	require.True(t, vm1.Port.PortSecurityEnabled, "on by default")
	require.False(t, appl.Port.PortSecurityEnabled)
	s.waitApplied(30 * time.Second)

	ll1 := linkLocalOf(psMAC1)
	ip1 := vm1.IP
	ether := func(src string) string { return fmt.Sprintf("Ether(src=%q,dst=%q)", src, bcast) }
	ether6 := func(src string) string { return fmt.Sprintf("Ether(src=%q,dst=\"33:33:00:00:00:01\")", src) }
	udp4 := func(src, ipSrc string, sport, dport int, marker string) string {
		return fmt.Sprintf("%s/IP(src=%q,dst=\"255.255.255.255\")/UDP(sport=%d,dport=%d)/Raw(b\"BRTUN:%s\")", ether(src), ipSrc, sport, dport, marker)
	}
	arp := func(src, sha, spa, marker string) string {
		return fmt.Sprintf("%s/ARP(op=1,hwsrc=%q,psrc=%q,pdst=\"198.18.0.2\")/Raw(b\"BRTUN:%s\")", ether(src), sha, spa, marker)
	}
	udp6 := func(ipSrc string, sport, dport int, marker string) string {
		return fmt.Sprintf("%s/IPv6(src=%q,dst=\"ff02::1\")/UDP(sport=%d,dport=%d)/Raw(b\"BRTUN:%s\")", ether6(psMAC1), ipSrc, sport, dport, marker)
	}
	// ND frames carry their marker as flow label.
	nd := func(ipSrc, icmp string, fl int) string {
		return fmt.Sprintf("%s/IPv6(src=%q,dst=\"ff02::1\",fl=%d)/%s", ether6(psMAC1), ipSrc, fl, icmp)
	}
	na := func(target string) string {
		return fmt.Sprintf("ICMPv6ND_NA(tgt=%q,R=0,S=0,O=1)/ICMPv6NDOptDstLLAddr(lladdr=%q)", target, psMAC1)
	}
	cases := []struct {
		name        string
		spoof, own  string
		spoofMarker string // "" : BRTUN:<name>-spoof
		ownMarker   string
	}{
		{name: "src-mac", spoof: udp4(psFake, ip1, 9, 9, "src-mac-spoof"), own: udp4(psMAC1, ip1, 9, 9, "src-mac-own")},
		{name: "ipv4-src", spoof: udp4(psMAC1, "198.18.0.2", 9, 9, "ipv4-src-spoof"), own: udp4(psMAC1, ip1, 9, 9, "ipv4-src-own")},
		{name: "zero-not-dhcp", spoof: udp4(psMAC1, "0.0.0.0", 9, 67, "zero-not-dhcp-spoof"), own: udp4(psMAC1, "0.0.0.0", 68, 67, "zero-not-dhcp-own")},
		{name: "arp-sha", spoof: arp(psMAC1, psFake, ip1, "arp-sha-spoof"), own: arp(psMAC1, psMAC1, ip1, "arp-sha-own")},
		{name: "arp-spa", spoof: arp(psMAC1, psMAC1, "198.18.0.2", "arp-spa-spoof"), own: arp(psMAC1, psMAC1, ip1, "arp-spa-own")},
		{name: "ipv6-src", spoof: udp6("2001:db8:100::2", 9, 9, "ipv6-src-spoof"), own: udp6(vm1v6, 9, 9, "ipv6-src-own")},
		{name: "ipv6-ll", spoof: udp6(linkLocalOf(psMAC2), 9, 9, "ipv6-ll-spoof"), own: udp6(ll1, 9, 9, "ipv6-ll-own")},
		{name: "ipv6-unspec", spoof: udp6("::", 9, 9, "ipv6-unspec-spoof"),
			own: nd("::", fmt.Sprintf("ICMPv6ND_NS(tgt=%q)", vm1v6), 101), ownMarker: "fl=101"},
		{name: "na-target", spoof: nd(ll1, na("2001:db8:100::2"), 102), spoofMarker: "fl=102",
			own: nd(ll1, na(vm1v6), 103), ownMarker: "fl=103"},
		{name: "dhcp-server", spoof: udp4(psMAC1, ip1, 67, 68, "dhcp-server-spoof"), own: udp4(psMAC1, ip1, 68, 67, "dhcp-server-own")},
		{name: "dhcpv6-server", spoof: udp6(ll1, 547, 546, "dhcpv6-server-spoof"), own: udp6(ll1, 546, 547, "dhcpv6-server-own")},
		{name: "router-adv", spoof: nd(ll1, "ICMPv6ND_RA()", 104), spoofMarker: "fl=104",
			own: nd(ll1, "ICMPv6ND_RS()", 105), ownMarker: "fl=105"},
		{name: "dot1q", spoof: fmt.Sprintf("%s/Dot1Q(vlan=%d)/IP(src=%q,dst=\"255.255.255.255\")/UDP(sport=9,dport=9)/Raw(b\"BRTUN:dot1q-spoof\")",
			ether(psMAC1), vm1.Port.LocalVLAN, ip1), own: udp4(psMAC1, ip1, 9, 9, "dot1q-own")},
	}
	var spoofs, owns []string
	for _, c := range cases {
		spoofs, owns = append(spoofs, c.spoof), append(owns, c.own)
	}
	anySource := udp4(psFake, "198.18.7.7", 9, 9, "appl-any")
	arpAny := arp(psFake, psFake, "198.18.7.7", "appl-arp-any")

	before, _ := series(t, s.brtun, dropSeries("h1", "blue", "ps1"))
	sn := sc.sniff(vm2.VM, 8*time.Second)
	sc.send(vm1.VM, append(spoofs, owns...)...)
	sc.send(apVM, anySource, arpAny)
	seen := sn.seen()
	for _, c := range cases {
		spoofMarker, ownMarker := c.spoofMarker, c.ownMarker
		if spoofMarker == "" {
			spoofMarker = c.name + "-spoof"
		}
		if ownMarker == "" {
			ownMarker = c.name + "-own"
		}
		assert.True(t, seen[ownMarker], "%s: the frame with vm1's own addresses arrives at vm2 (%s)", c.name, c.own)
		assert.False(t, seen[spoofMarker], "%s: the spoofed frame is dropped (%s)", c.name, c.spoof)
	}
	assert.True(t, seen["appl-any"], "a port without port security sends from any address")
	assert.True(t, seen["appl-arp-any"], "including ARP")

	// The drops are counted per port: vm1's rise by at least the spoofs
	// sent; vm2 (control, it sent nothing) reads 0; appl has its series.
	require.Eventually(t, func() bool {
		v, ok := series(t, s.brtun, dropSeries("h1", "blue", "ps1"))
		return ok && v-before >= float64(len(cases))
	}, 15*time.Second, 250*time.Millisecond, "vm1's drops reach /metrics")
	v2, ok := series(t, s.brtun, dropSeries("h1", "blue", "ps2"))
	require.True(t, ok, "vm2 has a drop counter")
	assert.Zero(t, v2, "vm2 sent nothing spoofed")

	// Forwarding by flow: appl teaches br-int's NORMAL vm2's MAC on its own
	// port, yet vm1 still reaches vm2.
	sc.send(apVM, fmt.Sprintf("%s/IP(src=\"198.18.0.5\",dst=\"255.255.255.255\")/UDP(sport=9,dport=9)/Raw(b\"BRTUN:poison\")", ether(psMAC2)))
	fdb, err := h1.Appctl("fdb/show", "br-int")
	require.NoError(t, err)
	apOfport := h1.Ofport(t, apVM.HostIface)
	require.Regexp(t, fmt.Sprintf(`(?m)^\s*%d\s+%d\s+%s`, apOfport, vm2.Port.LocalVLAN, psMAC2), fdb, "NORMAL learnt vm2's MAC on appl's port")
	ok, out := vm1.Ping(vm2.IP, 3)
	require.True(t, ok, "vm1 -> vm2 by flow despite the poisoned MAC table: %s", out)

	// Storm control: what appl sent from other MACs above went through
	// its source meter (default 500/s, burst 100); 3,000 such frames at
	// 5,000/s overflow it, and /metrics reports appl's drops. vm1
	// (protected: such frames are dropped before any meter) has none.
	srcSeries := func(port string) string {
		return fmt.Sprintf(`brtun_appliance_source_dropped_packets_total{host="h1",network="blue",port=%q}`, port)
	}
	srcBefore, _ := series(t, s.brtun, srcSeries("psap"))
	_, received := flood(t, s.lab, h1, apVM, "02:ee", broadcast, 3000)
	require.Greater(t, received, 1000, "the flood reached br-int")
	require.Eventually(t, func() bool {
		v, ok := series(t, s.brtun, srcSeries("psap"))
		return ok && v-srcBefore >= 500
	}, 15*time.Second, 250*time.Millisecond, "appl's source meter drops reach /metrics")
	_, ok = series(t, s.brtun, srcSeries("ps1"))
	assert.False(t, ok, "a protected port has no source meter")
}

// TestAllowedAddressPairMoves: a virtual IP in both vm1's and vm2's
// allowed_address_pairs moves from vm1 to vm2 by gratuitous ARP and stays
// reachable from vm3 on another host; vm4, without the pair, sends the same
// gratuitous ARP and it is dropped: vm3 keeps vm2's MAC and does not see it.
func TestAllowedAddressPairMoves(t *testing.T) {
	s := newScenario(t, 2, daemonOptions{Advertise: true, DriftInterval: time.Second})
	h1, h2 := s.lab.Hosts[0], s.lab.Hosts[1]
	sc := newScapy(t, s.lab)
	s.network("blue", topology.VXLAN, 5001)
	withPair := func(h *lab.Host, name, mac, cidr string, pairs []topology.AddressPair) *tenantVM {
		vm := s.lab.AddVM(t, h, lab.VMOptions{Name: name, MAC: mac, CIDR: cidr, Quiet: true})
		tv := &tenantVM{VM: vm, Network: "blue"}
		body := map[string]any{"name": name, "host": h.Name, "interface": vm.HostIface, "mac": mac, "ips": []string{vm.IP}}
		if pairs != nil {
			body["allowed_address_pairs"] = pairs
		}
		s.brtun.MustDo(201, "POST", "/v1/networks/blue/ports", body, &tv.Port)
		return tv
	}
	vip := []topology.AddressPair{{IPAddress: psVIP}}
	vm1 := withPair(h1, "vip1", psMAC1, "198.18.0.1/24", vip)
	vm2 := withPair(h1, "vip2", psMAC2, "198.18.0.2/24", vip)
	vm3 := withPair(h2, "vip3", psMAC3, "198.18.0.3/24", nil)
	vm4 := withPair(h1, "vip4", psMAC4, "198.18.0.4/24", nil)
	require.Equal(t, vip, vm1.Port.AllowedAddressPairs)
	s.waitApplied(30 * time.Second)

	// No ARP responder for the virtual IP on h2 (a virtual IP moves), one
	// for vm1's own address (control).
	require.Empty(t, flowLines(t, h2, "table=21,arp,arp_tpa="+psVIP))
	require.NotEmpty(t, flowLines(t, h2, "table=21,arp,arp_tpa="+vm1.IP))

	garp := func(mac, marker string) string {
		return fmt.Sprintf("Ether(src=%q,dst=%q)/ARP(op=1,hwsrc=%q,psrc=%q,hwdst=\"00:00:00:00:00:00\",pdst=%q)/Raw(b\"BRTUN:%s\")",
			mac, bcast, mac, psVIP, psVIP, marker)
	}
	neighOf := func(vm *tenantVM) string {
		out, err := vm.Run("ip", "neigh", "show", psVIP, "dev", "eth0")
		require.NoError(t, err)
		return out
	}

	// vm1 holds the virtual IP.
	_, err := vm1.Run("ip", "addr", "add", psVIP+"/24", "dev", "eth0")
	require.NoError(t, err)
	sc.send(vm1.VM, garp(psMAC1, "garp-vm1"))
	ok, out := vm3.Ping(psVIP, 3)
	require.True(t, ok, "vm3 (h2) reaches the virtual IP on vm1: %s", out)
	require.Contains(t, neighOf(vm3), psMAC1)

	// It moves to vm2, which announces it.
	_, err = vm1.Run("ip", "addr", "del", psVIP+"/24", "dev", "eth0")
	require.NoError(t, err)
	_, err = vm2.Run("ip", "addr", "add", psVIP+"/24", "dev", "eth0")
	require.NoError(t, err)
	time.Sleep(1200 * time.Millisecond) // past the neighbour entry's locktime (1 s)
	sn := sc.sniff(vm3.VM, 6*time.Second)
	sc.send(vm2.VM, garp(psMAC2, "garp-vm2"))
	time.Sleep(1200 * time.Millisecond)
	// vm4 has no pair: the same gratuitous ARP is dropped.
	sc.send(vm4.VM, garp(psMAC4, "garp-vm4"))
	seen := sn.seen()
	assert.True(t, seen["garp-vm2"], "vm2's gratuitous ARP reaches vm3")
	assert.False(t, seen["garp-vm4"], "vm4's gratuitous ARP (no pair) is dropped")
	require.Contains(t, neighOf(vm3), psMAC2, "vm3 follows the move")
	ok, out = vm3.Ping(psVIP, 3)
	require.True(t, ok, "the virtual IP stays reachable, now on vm2: %s", out)
	require.Contains(t, neighOf(vm3), psMAC2)
	require.Eventually(t, func() bool {
		v, ok := series(t, s.brtun, dropSeries("h1", "blue", "vip4"))
		return ok && v >= 1
	}, 15*time.Second, 250*time.Millisecond, "vm4's dropped ARP is counted")

	// Without the pair vm2 cannot announce it either.
	s.brtun.MustDo(200, "PUT", "/v1/networks/blue/ports/vip2", map[string]any{
		"host": "h1", "interface": vm2.HostIface, "mac": psMAC2, "ips": []string{vm2.IP},
	}, nil)
	s.waitApplied(30 * time.Second)
	sn = sc.sniff(vm3.VM, 4*time.Second)
	sc.send(vm2.VM, garp(psMAC2, "garp-vm2-nopair"), fmt.Sprintf(
		// (for an unregistered address: h1's br-tun answers ARP for vm3's itself)
		"Ether(src=%q,dst=%q)/ARP(op=1,hwsrc=%q,psrc=%q,pdst=\"198.18.0.77\")/Raw(b\"BRTUN:arp-vm2-own\")", psMAC2, bcast, psMAC2, vm2.IP))
	seen = sn.seen()
	assert.False(t, seen["garp-vm2-nopair"], "the pair removed, vm2's gratuitous ARP for the virtual IP is dropped")
	assert.True(t, seen["arp-vm2-own"], "vm2's ARP for its own address still passes (control)")
}
