package hollow

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Options configure one hollow host: its name and its ovsdb-server.
type Options struct {
	// Name is the host name; it only labels log lines and metrics.
	Name string
	// OVSDB is the host's ovsdb-server, "unix:PATH" or "tcp:IP:PORT".
	OVSDB string
	// Logger receives the package's log lines; nil discards them.
	Logger *zap.Logger
	// ProbeInterval is the OpenFlow inactivity probe of a controller whose
	// Controller row leaves inactivity_probe unset: after this long without
	// a message from the controller the switch sends an echo request, and
	// after twice this long it drops the connection (OVS: 5 s).
	ProbeInterval time.Duration
	// MinBackoff and MaxBackoff bound the wait between connection attempts
	// to ovsdb-server, and to a controller whose row leaves max_backoff
	// unset (OVS: 1 s and 8 s).
	MinBackoff, MaxBackoff time.Duration
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.ProbeInterval == 0 {
		o.ProbeInterval = 5 * time.Second
	}
	if o.MinBackoff == 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = 8 * time.Second
	}
	return o
}

// controllerConfig is how the switch connects to the controller of row c,
// as ovs-vswitchd (2.16 and later) reads the row (bridge.c, connmgr.c,
// rconn.c): inactivity_probe and max_backoff count in whole seconds; an
// inactivity_probe of 0 turns the probe off, any other is at least 5 s;
// max_backoff is at least 1 s; unset, they are the host's defaults.
func (o Options) controllerConfig(c *row) controllerConfig {
	cc := controllerConfig{target: c.target, probe: o.ProbeInterval, maxBackoff: o.MaxBackoff}
	if c.inactivityProbe >= 0 {
		cc.probe = time.Duration(c.inactivityProbe/1000) * time.Second
		if c.inactivityProbe > 0 {
			cc.probe = max(cc.probe, 5*time.Second)
		}
	}
	if c.maxBackoff >= 0 {
		cc.maxBackoff = max(time.Duration(c.maxBackoff/1000)*time.Second, time.Second)
	}
	return cc
}

// announcedTypes are the datapath and interface types a hollow vswitchd
// writes into the Open_vSwitch row, as ovs-vswitchd 3.1 does.
func announcedTypes() (datapathTypes, ifaceTypes []string) {
	return []string{"netdev", "system"},
		[]string{"erspan", "geneve", "gre", "gtpu", "internal", "ip6erspan", "ip6gre",
			"lisp", "patch", "srv6", "stt", "system", "tap", "vxlan"}
}

// localOfport is the OVSDB ofport of a bridge's own internal interface
// (OFPP_LOCAL in OpenFlow 1.0 numbering).
const localOfport = 65534

// Host is one hollow host: the ovs-vswitchd side of one ovsdb-server. It
// assigns ofports, datapath ids and cur_cfg as ovs-vswitchd does, and runs an
// OpenFlow 1.3 switch per bridge that connects to the bridge's controllers.
type Host struct {
	opts Options
	log  *zap.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{} // the cache changed; cap 1

	mu      sync.Mutex
	db      *dbClient
	bridges map[string]*Bridge
	curCfg  int
}

// Start runs a hollow host until Close. It connects to the ovsdb-server in
// the background (and again whenever the session drops).
func Start(opts Options) *Host {
	opts = opts.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	h := &Host{
		opts:    opts,
		log:     opts.Logger.Named("hollow").With(zap.String("host", opts.Name)),
		ctx:     ctx,
		cancel:  cancel,
		kick:    make(chan struct{}, 1),
		bridges: map[string]*Bridge{},
	}
	h.wg.Add(1)
	go h.run()
	return h
}

// Name returns the host's name.
func (h *Host) Name() string { return h.opts.Name }

// Close stops the host: its OVSDB session and every switch connection.
func (h *Host) Close() {
	h.cancel()
	h.wg.Wait()
	h.mu.Lock()
	bridges := h.bridges
	h.bridges = map[string]*Bridge{}
	h.mu.Unlock()
	for _, b := range bridges {
		b.stop()
	}
}

// Applied returns the last cur_cfg the host wrote.
func (h *Host) Applied() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.curCfg
}

// Bridge returns the named bridge, or nil.
func (h *Host) Bridge(name string) *Bridge {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.bridges[name]
}

// BridgeNames lists the host's bridges, sorted.
func (h *Host) BridgeNames() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for name := range h.bridges {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// run keeps an OVSDB session up and reconciles on every change.
func (h *Host) run() {
	defer h.wg.Done()
	backoff := h.opts.MinBackoff
	for h.ctx.Err() == nil {
		start := time.Now()
		err := h.session()
		if h.ctx.Err() != nil {
			return
		}
		if time.Since(start) > h.opts.MaxBackoff {
			backoff = h.opts.MinBackoff
		}
		h.log.Debug("ovsdb session ended", zap.Error(err), zap.Duration("retry_in", backoff))
		select {
		case <-h.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, h.opts.MaxBackoff)
	}
}

// session runs one OVSDB session until it fails or the host stops.
func (h *Host) session() error {
	dctx, cancel := context.WithTimeout(h.ctx, 10*time.Second)
	nc, err := dialDB(dctx, h.opts.OVSDB)
	if err != nil {
		cancel()
		return err
	}
	db, err := newDBClient(dctx, nc, h.changed)
	cancel()
	if err != nil {
		_ = nc.Close()
		return err
	}
	h.mu.Lock()
	h.db = db
	h.mu.Unlock()
	stop := context.AfterFunc(h.ctx, func() { db.close(context.Canceled) })
	defer stop()
	h.changed()
	for {
		select {
		case <-db.done:
			return db.Err()
		case <-h.kick:
			if err := h.reconcile(db); err != nil {
				h.log.Warn("applying the configuration failed", zap.Error(err))
			}
		}
	}
}

// changed asks for a reconcile.
func (h *Host) changed() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// ifaceConfig is what the hollow vswitchd reads of one Interface row.
type ifaceConfig struct {
	uuid, name, typ string
	ofport          int // from the database, 0 when unset
	ofportRequest   int
}

// reconcile applies the database's configuration: bridges, their ports and
// controllers; then writes back ofports, datapath ids and cur_cfg.
func (h *Host) reconcile(db *dbClient) error {
	snap := db.snapshot()
	var rootUUID string
	var root *row
	for uuid, r := range snap["Open_vSwitch"] {
		rootUUID, root = uuid, r
	}
	if root == nil {
		return nil // not initialised yet
	}
	var ops []operation
	want := map[string]bool{}
	for _, bu := range root.refs {
		br := snap["Bridge"][bu]
		if br == nil {
			continue
		}
		want[br.name] = true
		dpid := datapathID(h.opts.Name, br.name, br.datapathIDConfig)
		var targets []controllerConfig
		for _, cu := range br.controllers {
			if c := snap["Controller"][cu]; c != nil {
				targets = append(targets, h.opts.controllerConfig(c))
			}
		}
		var ifaces []ifaceConfig
		for _, pu := range br.refs {
			p := snap["Port"][pu]
			if p == nil {
				continue
			}
			for _, iu := range p.refs {
				if i := snap["Interface"][iu]; i != nil {
					ifaces = append(ifaces, ifaceConfig{uuid: iu, name: i.name, typ: i.typ, ofport: i.ofport, ofportRequest: i.ofportRequest})
				}
			}
		}
		b := h.bridgeFor(br.name)
		assigned := b.configure(dpid, targets, ifaces)
		for _, ic := range ifaces {
			p := assigned[ic.name]
			i := snap["Interface"][ic.uuid]
			cols := map[string]any{}
			if i.ofport != p.ofport {
				cols["ofport"] = p.ofport
			}
			if i.macInUse != p.mac {
				cols["mac_in_use"] = p.mac
			}
			if i.adminState != "up" {
				cols["admin_state"] = "up"
			}
			if i.linkState != "up" {
				cols["link_state"] = "up"
			}
			if len(cols) > 0 {
				ops = append(ops, updateOp("Interface", ic.uuid, cols))
			}
		}
		if dp := fmt.Sprintf("%016x", dpid); br.datapathID != dp {
			ops = append(ops, updateOp("Bridge", bu, map[string]any{"datapath_id": dp}))
		}
	}
	h.dropBridges(want)

	rootCols := map[string]any{}
	next := root.nextCfg
	if root.curCfg != next {
		rootCols["cur_cfg"] = next
	}
	if !root.hasDatapathTypes {
		dpTypes, ifTypes := announcedTypes()
		rootCols["datapath_types"] = ovsSet(dpTypes)
		rootCols["iface_types"] = ovsSet(ifTypes)
	}
	if len(rootCols) > 0 {
		ops = append(ops, updateOp("Open_vSwitch", rootUUID, rootCols))
	}
	if len(ops) > 0 {
		ctx, cancel := context.WithTimeout(h.ctx, 30*time.Second)
		defer cancel()
		if err := db.transact(ctx, ops); err != nil {
			return err
		}
	}
	h.mu.Lock()
	h.curCfg = next
	h.mu.Unlock()
	return nil
}

// bridgeFor returns the named bridge, creating it.
func (h *Host) bridgeFor(name string) *Bridge {
	h.mu.Lock()
	defer h.mu.Unlock()
	b := h.bridges[name]
	if b == nil {
		b = newBridge(h, name)
		h.bridges[name] = b
	}
	return b
}

// dropBridges stops the bridges the database no longer has.
func (h *Host) dropBridges(want map[string]bool) {
	h.mu.Lock()
	var gone []*Bridge
	for name, b := range h.bridges {
		if !want[name] {
			gone = append(gone, b)
			delete(h.bridges, name)
		}
	}
	h.mu.Unlock()
	for _, b := range gone {
		b.stop()
	}
}

// datapathID is other_config:datapath-id when it is 16 hex digits, as in
// ovs-vswitchd; otherwise one derived from host and bridge names (OVS derives
// it from the bridge's MAC address).
func datapathID(host, bridge, configured string) uint64 {
	if len(configured) == 16 {
		if id, err := strconv.ParseUint(configured, 16, 64); err == nil && id != 0 {
			return id
		}
	}
	sum := sha256.Sum256([]byte("hollow-dpid\x00" + host + "\x00" + bridge))
	return binary.BigEndian.Uint64(sum[:8]) & 0x0000ffffffffffff
}

// macFor is a stable locally administered MAC address for an interface.
func macFor(host, iface string) string {
	sum := sha256.Sum256([]byte("hollow-mac\x00" + host + "\x00" + iface))
	return fmt.Sprintf("02:%02x:%02x:%02x:%02x:%02x", sum[0], sum[1], sum[2], sum[3], sum[4])
}
