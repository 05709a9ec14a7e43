package hollow

import (
	"context"
	"encoding/binary"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/ofswitch"
)

// OpenFlow port numbers (OpenFlow 1.3).
const (
	ofppMax   uint32 = 0xffffff00
	ofppLocal uint32 = 0xfffffffe
	ofppAny   uint32 = 0xffffffff
	ofpgAny   uint32 = 0xffffffff
	// maxOfport is the highest ofport ovs-vswitchd assigns (OFPP_MAX in
	// OpenFlow 1.0 numbering is 0xff00).
	maxOfport = 0xfeff
)

// port is one port of a bridge as the switch reports it.
type port struct {
	name   string
	ofport int    // as in OVSDB: 1.., or 65534 for the bridge's own port
	mac    string // mac_in_use
}

// number is the port's OpenFlow 1.3 port number.
func (p *port) number() uint32 {
	if p.ofport == localOfport {
		return ofppLocal
	}
	return uint32(p.ofport)
}

// Bridge is one hollow bridge: its ports, its flow table, its meters and its
// connections to controllers.
type Bridge struct {
	host *Host
	name string
	log  *zap.Logger

	mu          sync.Mutex
	dpid        uint64
	ports       map[string]*port
	nextOfport  int
	table       *flowTable
	meters      map[uint32]*meter
	conns       map[string]*ctrlConn // by target
	genSet      bool
	generation  uint64
	missSendLen uint16
	cfgFlags    uint16
	packetOuts  []PacketOut
	flowMods    uint64 // flow mods applied, in bundles or not
}

// PacketOut is a PACKET_OUT a controller sent, as the bridge recorded it.
type PacketOut struct {
	InPort  uint32
	Actions []byte
	Data    []byte
}

func newBridge(h *Host, name string) *Bridge {
	return &Bridge{
		host:        h,
		name:        name,
		log:         h.log.With(zap.String("bridge", name)),
		ports:       map[string]*port{},
		nextOfport:  1,
		table:       newFlowTable(),
		meters:      map[uint32]*meter{},
		conns:       map[string]*ctrlConn{},
		missSendLen: 128,
	}
}

// Name returns the bridge name.
func (b *Bridge) Name() string { return b.name }

// DatapathID returns the datapath id the switch reports.
func (b *Bridge) DatapathID() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.dpid
}

// Ofports maps the bridge's interface names to their OVSDB ofports.
func (b *Bridge) Ofports() map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]int, len(b.ports))
	for name, p := range b.ports {
		out[name] = p.ofport
	}
	return out
}

// Connected returns the number of controller connections that completed
// the OpenFlow handshake.
func (b *Bridge) Connected() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, c := range b.conns {
		if c.isConnected() {
			n++
		}
	}
	return n
}

// Flows returns the flow table, decoded, in dump order.
func (b *Bridge) Flows() []flows.Flow {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.table.decoded(ofswitch.AllTables)
}

// TableFlows returns the flows of one table, decoded, in dump order; it
// is cheaper than Flows when the caller wants one table of a big bridge.
func (b *Bridge) TableFlows(table uint8) []flows.Flow {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.table.decoded(table)
}

// DumpFlows returns the flow table in the canonical text form, one line a
// flow, exactly as `ovs-ofctl -O OpenFlow13 dump-flows --no-stats
// --no-names` prints it (without the leading space), in dump order. The
// text is made from the same flow-stats entries a controller receives.
func (b *Bridge) DumpFlows() []string {
	fs := b.Flows()
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.String()
	}
	return out
}

// FlowMods returns how many flow mods the bridge applied (bundled ones
// count at commit): a restart of brtun that finds every flow right sends none.
func (b *Bridge) FlowMods() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.flowMods
}

// PacketOuts returns the PACKET_OUTs received so far.
func (b *Bridge) PacketOuts() []PacketOut {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.packetOuts)
}

// configure applies the database's view of the bridge: datapath id,
// controller targets, interfaces. It returns the ports by interface name.
func (b *Bridge) configure(dpid uint64, targets []controllerConfig, ifaces []ifaceConfig) map[string]*port {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dpid = dpid
	wanted := map[string]ifaceConfig{}
	for _, ic := range ifaces {
		wanted[ic.name] = ic
	}
	used := map[int]bool{}
	for name, p := range b.ports {
		if _, ok := wanted[name]; !ok {
			delete(b.ports, name)
			b.portStatusLocked(p, 1) // OFPPR_DELETE
			continue
		}
		used[p.ofport] = true
	}
	names := make([]string, 0, len(wanted))
	for name := range wanted {
		if b.ports[name] == nil {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		ic := wanted[name]
		p := &port{name: name, mac: macFor(b.host.opts.Name, name)}
		switch {
		case ic.typ == "internal" && name == b.name:
			p.ofport = localOfport
		case ic.ofportRequest >= 1 && ic.ofportRequest <= maxOfport && !used[ic.ofportRequest]:
			p.ofport = ic.ofportRequest
		case ic.ofport >= 1 && ic.ofport <= maxOfport && !used[ic.ofport]:
			p.ofport = ic.ofport // kept across a restart, as ovs-vswitchd does
		default:
			p.ofport = b.allocOfport(used)
		}
		used[p.ofport] = true
		b.ports[name] = p
		b.portStatusLocked(p, 0) // OFPPR_ADD
	}
	b.setTargetsLocked(targets)
	out := make(map[string]*port, len(b.ports))
	for name, p := range b.ports {
		out[name] = p
	}
	return out
}

// allocOfport picks the next free ofport after the last one handed out, as
// ovs-vswitchd does (it does not reuse a freed number at once).
func (b *Bridge) allocOfport(used map[int]bool) int {
	for range maxOfport {
		n := b.nextOfport
		b.nextOfport++
		if b.nextOfport > maxOfport {
			b.nextOfport = 1
		}
		if !used[n] {
			return n
		}
	}
	return -1 // every number in use: ovs-vswitchd reports the same
}

// controllerConfig is one controller of a bridge: its target and how the
// switch keeps the connection (the Controller row's inactivity_probe and
// max_backoff as ovs-vswitchd reads them, Options.controllerConfig).
type controllerConfig struct {
	target     string
	probe      time.Duration // 0: no inactivity probe
	maxBackoff time.Duration
}

// setTargetsLocked starts connections to new controller targets, stops
// those no longer configured, and gives each its probe and backoff (a
// change applies to the connection in place, as in OVS).
func (b *Bridge) setTargetsLocked(targets []controllerConfig) {
	want := map[string]bool{}
	for _, cc := range targets {
		t := cc.target
		want[t] = true
		if b.conns[t] == nil {
			c := newCtrlConn(b, cc)
			b.conns[t] = c
			go c.run()
			continue
		}
		b.conns[t].setConfig(cc)
	}
	for t, c := range b.conns {
		if !want[t] {
			delete(b.conns, t)
			c.stop()
		}
	}
}

// stop closes every controller connection of the bridge.
func (b *Bridge) stop() {
	b.mu.Lock()
	conns := b.conns
	b.conns = map[string]*ctrlConn{}
	b.mu.Unlock()
	for _, c := range conns {
		c.stop()
	}
	for _, c := range conns {
		<-c.done
	}
}

// portStatusLocked tells every connected controller about a port change.
func (b *Bridge) portStatusLocked(p *port, reason uint8) {
	body := make([]byte, 8+64)
	body[0] = reason
	copy(body[8:], encodePort(p))
	for _, c := range b.conns {
		c.sendAsync(ofswitch.Reply(ofswitch.TypePortStatus, 0, body))
	}
}

// encodePort is an ofp_port (OpenFlow 1.3): a port that is up, 10 Gb/s.
func encodePort(p *port) []byte {
	b := make([]byte, 64)
	binary.BigEndian.PutUint32(b[0:4], p.number())
	if hw, err := net.ParseMAC(p.mac); err == nil {
		copy(b[8:14], hw)
	}
	copy(b[16:31], p.name)
	const featureCopper10G = 1<<6 | 1<<11                  // OFPPF_10GB_FD | OFPPF_COPPER
	binary.BigEndian.PutUint32(b[32:36], 0)                // config
	binary.BigEndian.PutUint32(b[36:40], 0x4)              // state: OFPPS_LIVE
	binary.BigEndian.PutUint32(b[40:44], featureCopper10G) // curr
	binary.BigEndian.PutUint32(b[56:60], 10000000)         // curr_speed, kb/s
	binary.BigEndian.PutUint32(b[60:64], 10000000)         // max_speed
	return b
}

// PacketIn sends a PACKET_IN to every controller that is not secondary, as
// a flow's output:controller would. It returns how many got it.
func (b *Bridge) PacketIn(reason, table uint8, cookie uint64, inPort uint32, data []byte) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	match := ofswitch.MatchBytes(ofswitch.InPortEntry(inPort))
	body := make([]byte, 16+len(match)+2+len(data))
	binary.BigEndian.PutUint32(body[0:4], 0xffffffff) // OFP_NO_BUFFER
	binary.BigEndian.PutUint16(body[4:6], uint16(len(data)))
	body[6] = reason
	body[7] = table
	binary.BigEndian.PutUint64(body[8:16], cookie)
	copy(body[16:], match)
	copy(body[16+len(match)+2:], data)
	n := 0
	for _, c := range b.conns {
		if c.isConnected() && c.getRole() != ofswitch.RoleSecondary {
			c.sendAsync(ofswitch.Reply(ofswitch.TypePacketIn, 0, body))
			n++
		}
	}
	return n
}

// ctrlConn is the switch's connection to one controller target, kept up
// with OVS's backoff until the target is removed.
type ctrlConn struct {
	b      *Bridge
	target string
	log    *zap.Logger
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex // guards everything below and serialises writes
	cfg       controllerConfig
	nc        net.Conn
	connected bool
	role      ofswitch.Role
	bundles   map[uint32]*bundle
	monitors  map[uint32]bool // flow monitor ids (monitor.go); like bundles, under b.mu
}

func newCtrlConn(b *Bridge, cc controllerConfig) *ctrlConn {
	ctx, cancel := context.WithCancel(b.host.ctx)
	return &ctrlConn{
		b: b, target: cc.target, cfg: cc, log: b.log.With(zap.String("target", cc.target)),
		ctx: ctx, cancel: cancel, done: make(chan struct{}),
	}
}

// config returns the connection's probe and backoff settings.
func (c *ctrlConn) config() controllerConfig {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg
}

// setConfig changes them; the session reads them at its next wait.
func (c *ctrlConn) setConfig(cc controllerConfig) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cfg = cc
}

func (c *ctrlConn) stop() { c.cancel() }

func (c *ctrlConn) isConnected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connected
}

func (c *ctrlConn) getRole() ofswitch.Role {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.role
}

// run connects, serves and reconnects until stopped.
func (c *ctrlConn) run() {
	defer close(c.done)
	opts := c.b.host.opts
	backoff := opts.MinBackoff
	for c.ctx.Err() == nil {
		start := time.Now()
		err := c.session()
		if c.ctx.Err() != nil {
			return
		}
		maxBackoff := c.config().maxBackoff
		if time.Since(start) > maxBackoff {
			backoff = opts.MinBackoff
		}
		backoff = min(backoff, maxBackoff)
		c.log.Debug("controller connection ended", zap.Error(err), zap.Duration("retry_in", backoff))
		select {
		case <-c.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// dialTarget connects to an active controller target (tcp: or unix:).
func dialTarget(ctx context.Context, target string) (net.Conn, error) {
	scheme, rest, _ := strings.Cut(target, ":")
	var d net.Dialer
	switch scheme {
	case "tcp":
		return d.DialContext(ctx, "tcp", rest)
	case "unix":
		return d.DialContext(ctx, "unix", rest)
	default:
		return nil, &net.OpError{Op: "dial", Net: scheme, Err: errUnsupportedTarget}
	}
}
