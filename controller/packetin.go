package controller

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/brtun/brtun/dhcp"
	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/ofswitch"
	"github.com/brtun/brtun/topology"
)

// Defaults of DHCPOptions (serve's --dhcp-* flags).
const (
	DefaultDHCPLeaseTime  = 24 * time.Hour
	DefaultDHCPPortRate   = 10.0
	DefaultDHCPPortBurst  = 20
	DefaultDHCPMeterRate  = 2000
	DefaultDHCPMeterBurst = 500
)

// DHCPOptions configure brtun's answers to its VMs' DHCP, DHCPv6 and router
// solicitations, and the router advertisements it sends unasked.
type DHCPOptions struct {
	// LeaseTime is the DHCPv4 lease and DHCPv6 lifetime (serve
	// --dhcp-lease-time; default 24h).
	LeaseTime time.Duration
	// UnderlayMTU gives each network's MTU (option 26, RA MTU option):
	// the underlay MTU less the tunnel type's overhead (default 1500).
	UnderlayMTU int
	// PortRate and PortBurst limit the packet-ins brtun takes from one
	// port (token bucket; defaults 10/s, burst 20; serve --dhcp-port-rate,
	// --dhcp-port-burst): a port flooding requests is answered at that
	// rate and the others are not held up.
	PortRate  float64
	PortBurst int
	// MeterRate and MeterBurst are br-int's DHCP meter (packets per
	// second; defaults 2000 and 500; serve --dhcp-meter-rate,
	// --dhcp-meter-burst): what one bridge sends brtun in all.
	// It is above one flooding VM's 1000/s, so the per-port limit, not the
	// meter, decides whose requests are answered.
	MeterRate  int
	MeterBurst int
	// RAInterval is the mean interval of the periodic router
	// advertisements (default and at most 600s); each is jittered by
	// ±25% (less than RFC 4861's MaxRtrAdvInterval).
	RAInterval time.Duration

	// firstRA, when set, replaces the 1 to 5 s delay of the first periodic
	// round (tests that send RAs themselves).
	firstRA time.Duration
}

func (o DHCPOptions) withDefaults() DHCPOptions {
	if o.LeaseTime <= 0 {
		o.LeaseTime = DefaultDHCPLeaseTime
	}
	if o.UnderlayMTU <= 0 {
		o.UnderlayMTU = 1500
	}
	if o.PortRate <= 0 {
		o.PortRate = DefaultDHCPPortRate
	}
	if o.PortBurst <= 0 {
		o.PortBurst = DefaultDHCPPortBurst
	}
	if o.MeterRate <= 0 {
		o.MeterRate = DefaultDHCPMeterRate
	}
	if o.MeterBurst <= 0 {
		o.MeterBurst = DefaultDHCPMeterBurst
	}
	if o.RAInterval <= 0 || o.RAInterval > 600*time.Second {
		o.RAInterval = 600 * time.Second
	}
	return o
}

// packetOuter is a switch that sends packet-outs (an OpenFlow connection).
type packetOuter interface {
	PacketOut(port uint32, frame []byte) error
}

// PacketOut sends frame out of port.
func (s ofSwitch) PacketOut(port uint32, frame []byte) error { return s.Conn.PacketOut(port, frame) }

// pinJob is a packet-in taken for answering.
type pinJob struct {
	sw     Switch
	ofport uint32
	port   portRef
	frame  []byte
}

// pinQueueLen bounds the packet-ins waiting for an answer.
const pinQueueLen = 512

// pinState is the packet-in path's own state: the per-port token buckets
// and the queue to the answering worker.
type pinState struct {
	mu      sync.Mutex
	buckets map[bucketKey]*bucket
	queue   chan pinJob
}

// bucketKey is a port on a host.
type bucketKey struct {
	host string
	port portRef
}

// bucket is a token bucket.
type bucket struct {
	tokens float64
	last   time.Time
}

func newPinState() *pinState {
	return &pinState{buckets: map[bucketKey]*bucket{}, queue: make(chan pinJob, pinQueueLen)}
}

// allow takes a token of key's bucket if it has one.
func (s *pinState) allow(key bucketKey, now time.Time, rate float64, burst int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[key]
	if b == nil {
		if len(s.buckets) > 1<<16 { // ports come and go: forget idle buckets wholesale
			s.buckets = map[bucketKey]*bucket{}
		}
		b = &bucket{tokens: float64(burst), last: now}
		s.buckets[key] = b
	}
	b.tokens = min(float64(burst), b.tokens+now.Sub(b.last).Seconds()*rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// PacketIn takes a PACKET_IN of switch sw. It runs on the connection's
// reader goroutine, so it only checks and queues: the answer is made and
// sent by the DHCP worker (runDHCP). Nothing it is given can crash or stall
// brtun: a bad packet is counted and dropped.
func (c *Controller) PacketIn(sw Switch, m ofswitch.Message) {
	c.metrics.packetIn()
	defer func() {
		if r := recover(); r != nil {
			c.metrics.packetDropped("panic")
			c.log.Error("packet-in handling panicked", zap.Any("panic", r))
		}
	}()
	pi, err := ofswitch.ParsePacketIn(m)
	if err != nil {
		c.metrics.packetDropped("malformed")
		c.log.Debug("bad packet-in", zap.Error(err))
		return
	}
	port, host, reason := c.packetInPort(sw, pi)
	if reason != "" {
		c.metrics.packetDropped(reason)
		return
	}
	o := c.opts.DHCP
	if !c.pins.allow(bucketKey{host, port}, time.Now(), o.PortRate, o.PortBurst) {
		c.metrics.packetDropped("rate_limited")
		return
	}
	select {
	case c.pins.queue <- pinJob{sw: sw, ofport: pi.InPort, port: port, frame: pi.Data}:
	default:
		c.metrics.packetDropped("queue_full")
	}
}

// packetInPort finds the port a packet-in came from: the bridge must be a
// br-int this replica masters on its current connection, in_port a local
// port's ofport, and the cookie that port's (the flow that sent it).
func (c *Controller) packetInPort(sw Switch, pi ofswitch.PacketIn) (portRef, string, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	dpid := sw.DatapathID()
	ref, ok := c.owners[dpid]
	if !ok || ref.bridge != BrInt || c.switches[dpid] != sw {
		return portRef{}, "", "unknown_port"
	}
	if c.opts.Mastership != nil {
		if master, _ := c.opts.Mastership.Role(ref.String()); !master {
			return portRef{}, "", "not_master"
		}
	}
	hs := c.hosts[ref.host]
	if hs == nil {
		return portRef{}, "", "unknown_port"
	}
	p, ok := hs.ofports[pi.InPort]
	if !ok || pi.Cookie != flows.PortCookie(p.network, p.name) {
		return portRef{}, "", "unknown_port"
	}
	return p, ref.host, ""
}

// runDHCP answers queued packet-ins and sends the periodic router
// advertisements until ctx ends.
func (c *Controller) runDHCP(ctx context.Context) {
	ra := time.NewTimer(c.raDelay(true))
	defer ra.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case job := <-c.pins.queue:
			c.answer(job)
		case <-ra.C:
			c.sendPeriodicRAs()
			ra.Reset(c.raDelay(false))
		}
	}
}

// raDelay is the time to the next periodic RA round: the interval ±25%
// (the first round comes within seconds, so VMs of a restarted brtun see
// one soon).
func (c *Controller) raDelay(first bool) time.Duration {
	iv := c.opts.DHCP.RAInterval
	if first {
		if c.opts.DHCP.firstRA > 0 {
			return c.opts.DHCP.firstRA
		}
		return time.Second + rand.N(4*time.Second)
	}
	return iv*3/4 + rand.N(iv/4+1)
}

// answerInputs is what dhcp.Answer needs of a port, read from the desired
// state.
type answerInputs struct {
	port    dhcp.Port
	subnets []dhcp.Subnet
	cfg     dhcp.Config
}

// inputsFor reads a port's answering inputs from the newest desired state.
func (c *Controller) inputsFor(p portRef) (answerInputs, bool) {
	c.mu.Lock()
	d := c.desired
	c.mu.Unlock()
	var port *topology.Port
	for _, q := range d.byNetwork[p.network] {
		if q.Name == p.name {
			port = q
			break
		}
	}
	n, ok := d.snap.Network(p.network)
	if port == nil || !ok {
		return answerInputs{}, false
	}
	in := answerInputs{cfg: c.dhcpConfig(n)}
	if mac, err := net.ParseMAC(port.MAC); err == nil {
		in.port.MAC = mac
	}
	for _, s := range port.IPs {
		if a, err := netip.ParseAddr(s); err == nil {
			in.port.IPs = append(in.port.IPs, a)
		}
	}
	in.subnets = dhcpSubnets(d.subnets[p.network])
	return in, true
}

// dhcpConfig is the answering configuration of network n.
func (c *Controller) dhcpConfig(n topology.Network) dhcp.Config {
	o := c.opts.DHCP
	router := flows.RouterMAC(n.Name)
	return dhcp.Config{LeaseTime: o.LeaseTime, MTU: n.Type.MTU(o.UnderlayMTU), ServerMAC: net.HardwareAddr(router[:])}
}

// dhcpServerIP is the DHCPv4 server identifier of an IPv4 subnet: its
// gateway, or its DHCP server address when it has none.
func dhcpServerIP(s topology.Subnet) string {
	if s.GatewayIP != "" {
		return s.GatewayIP
	}
	return s.DHCPServerIP
}

// dhcpSubnets maps a network's subnets onto what package dhcp reads.
func dhcpSubnets(in []topology.Subnet) []dhcp.Subnet {
	out := make([]dhcp.Subnet, 0, len(in))
	for _, s := range in {
		cidr, err := netip.ParsePrefix(s.CIDR)
		if err != nil {
			continue
		}
		ds := dhcp.Subnet{CIDR: cidr, EnableDHCP: s.EnableDHCP, IPv6AddressMode: dhcp.AddressMode(s.IPv6AddressMode)}
		if gw, err := netip.ParseAddr(s.GatewayIP); err == nil {
			ds.Gateway = gw
		}
		if srv, err := netip.ParseAddr(s.DHCPServerIP); err == nil {
			ds.ServerIP = srv
		}
		for _, d := range s.DNSServers {
			if a, err := netip.ParseAddr(d); err == nil {
				ds.DNSServers = append(ds.DNSServers, a)
			}
		}
		for _, r := range s.HostRoutes {
			dst, err1 := netip.ParsePrefix(r.Destination)
			nh, err2 := netip.ParseAddr(r.Nexthop)
			if err1 == nil && err2 == nil {
				ds.HostRoutes = append(ds.HostRoutes, dhcp.Route{Destination: dst, NextHop: nh})
			}
		}
		out = append(out, ds)
	}
	return out
}

// answer answers one packet-in and sends the answer to its port.
func (c *Controller) answer(job pinJob) {
	defer func() {
		if r := recover(); r != nil {
			c.metrics.packetDropped("panic")
			c.log.Error("answering a packet-in panicked", zap.Any("panic", r))
		}
	}()
	in, ok := c.inputsFor(job.port)
	if !ok {
		c.metrics.packetDropped("unknown_port")
		return
	}
	reply, err := dhcp.Answer(job.frame, in.port, in.subnets, in.cfg)
	switch {
	case err != nil:
		c.metrics.packetDropped(answerDropReason(err))
		c.log.Debug("no answer", zap.String("network", job.port.network), zap.String("port", job.port.name), zap.Error(err))
		return
	case reply == nil:
		c.metrics.packetDropped("no_answer")
		return
	}
	po, ok := job.sw.(packetOuter)
	if !ok {
		c.metrics.packetDropped("send_failed")
		return
	}
	if err := po.PacketOut(job.ofport, reply); err != nil {
		c.metrics.packetDropped("send_failed")
		c.log.Debug("packet-out failed", zap.Error(err))
		return
	}
	c.metrics.answered(answerKind(reply))
}

// answerDropReason is the metric label of a reason dhcp.Answer gave.
func answerDropReason(err error) string {
	for _, r := range []struct {
		err    error
		reason string
	}{
		{dhcp.ErrUnknownMAC, "unknown_mac"}, {dhcp.ErrNoAddress, "no_address"}, {dhcp.ErrNotForUs, "not_for_us"},
		{dhcp.ErrMalformed, "malformed"}, {dhcp.ErrConfig, "config"},
	} {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	return "no_answer"
}

// answerKind labels an answer frame: dhcp4, dhcp6 or ra.
func answerKind(frame []byte) string {
	if len(frame) >= 14 && frame[12] == 0x08 && frame[13] == 0x00 {
		return "dhcp4"
	}
	// IPv6: next header at 14+6; UDP is DHCPv6, ICMPv6 an RA.
	if len(frame) > 20 && frame[20] == 17 {
		return "dhcp6"
	}
	return "ra"
}

// sendPeriodicRAs sends a router advertisement to every up local port, on
// every br-int this replica masters, of each network with an IPv6 subnet
// that has an address mode and DHCP enabled.
func (c *Controller) sendPeriodicRAs() {
	type target struct {
		sw     Switch
		ofport uint32
		port   portRef
	}
	var targets []target
	c.mu.Lock()
	d := c.desired
	for _, hs := range c.hosts {
		bs := hs.bridges[BrInt]
		sw := c.switches[bs.dpid]
		if sw == nil {
			continue
		}
		if c.opts.Mastership != nil {
			if master, _ := c.opts.Mastership.Role(bs.ref.String()); !master {
				continue
			}
		}
		for of, p := range hs.ofports {
			targets = append(targets, target{sw, of, p})
		}
	}
	c.mu.Unlock()
	for _, t := range targets {
		n, ok := d.snap.Network(t.port.network)
		if !ok {
			continue
		}
		ra, err := dhcp.RouterAdvertisement(dhcpSubnets(d.subnets[t.port.network]), c.dhcpConfig(n))
		if err != nil || ra == nil {
			continue
		}
		po, ok := t.sw.(packetOuter)
		if !ok {
			continue
		}
		if err := po.PacketOut(t.ofport, ra); err != nil {
			c.metrics.packetDropped("send_failed")
			continue
		}
		c.metrics.answered("ra_periodic")
	}
}

// String names a port for logs.
func (p portRef) String() string { return fmt.Sprintf("%s/%s", p.network, p.name) }
