// Package controller reconciles the desired state in the topology store with
// every host: bridges, tunnel mesh and port bindings over OVSDB, and the
// flows of br-int and br-tun over OpenFlow. It is level-driven: a store
// revision, an OVSDB change, a switch (re)connecting and the periodic drift
// check all enqueue the same key (a host name), and one reconcile brings that
// host to the desired state by diffing what it should hold against what it
// holds and sending only the difference.
package controller

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/ovsdb"
	"github.com/brtun/brtun/topology"
)

// The bridges brtun manages on every host.
const (
	BrInt = ovsdb.BridgeInt
	BrTun = ovsdb.BridgeTun
)

var bridgeNames = []string{BrInt, BrTun}

// Options configure a Controller.
type Options struct {
	// Store holds the desired state (required).
	Store topology.Store
	// Logger receives the controller's logs; nil discards them.
	Logger *zap.Logger
	// Metrics receives the controller's measurements; nil records nothing.
	Metrics *Metrics
	// ControllerTargets are the OpenFlow targets written into every managed
	// bridge (--openflow-advertise). Empty: the operator points the bridges
	// at brtun with ovs-vsctl set-controller.
	ControllerTargets []string
	// DriftInterval is how often each host gets its drift check: a full
	// reconcile with a fresh dump of every connected bridge (default 60s).
	// The hosts' checks are spread over the interval (drift.go).
	DriftInterval time.Duration
	// Workers is how many hosts are reconciled at once (default 8).
	Workers int
	// OVSDBTLS is the client configuration for ssl: OVSDB addresses.
	OVSDBTLS *tls.Config
	// OVSDBTimeout bounds connecting to a host's OVSDB and one transaction
	// (default 10s).
	OVSDBTimeout time.Duration
	// Mastership places bridges when several replicas share the store
	// (mastership.go); nil: this replica masters every bridge.
	Mastership Mastership
}

// Controller is brtun's reconciler. Create it with New, feed it switches
// with AddSwitch, and run it with Run.
type Controller struct {
	opts    Options
	log     *zap.Logger
	metrics *Metrics
	q       *queue

	mu       sync.Mutex
	desired  *desiredState // the newest revision of the desired state
	hosts    map[string]*hostState
	owners   map[uint64]bridgeRef // datapath id -> the host bridge it belongs to
	switches map[uint64]Switch    // connected switches by datapath id
	tick     chan struct{}        // closed and replaced whenever status changes
}

// bridgeRef names one bridge of one host.
type bridgeRef struct{ host, bridge string }

func (r bridgeRef) String() string { return r.host + "/" + r.bridge }

// hostState is what the controller knows of one host. Its fields are
// guarded by Controller.mu, except that ovs, ovsAddr, watchStop,
// autobindErrs and dialing belong to the host's reconcile (the queue runs one reconcile
// per host at a time), which reads them without the lock and writes ovs,
// ovsAddr and watchStop under it, so status readers may read them under it.
type hostState struct {
	name      string
	ovs       *ovsdb.Client
	ovsAddr   string
	watchStop context.CancelFunc
	seenRev   uint64 // the store revision the last reconcile computed
	// synced is what the last full reconcile was computed from when it
	// succeeded (nil: it failed, or none ran yet); a revision that leaves
	// it as it was needs nothing done on the host (see takeIfClean).
	synced *syncedState
	// driftDue is set by the drift check: the next reconcile takes the
	// full path, OVSDB transaction included.
	driftDue bool
	// autobindErrs remembers, per interface, the last mark that could not
	// be bound, so it is logged once (owned by the host's reconcile).
	autobindErrs map[string]string
	// dialing is true while a background dial for this host runs; its
	// result arrives on dialed (see dial.go).
	dialing bool
	dialed  chan dialResult
	lastErr error
	bridges map[string]*bridgeState
}

// syncedState is what a successful full reconcile of a host was computed
// from.
type syncedState struct {
	digest    [32]byte    // hostDigest.all of the host's inputs
	facts     ovsdb.Facts // the host's OVSDB facts it compiled with
	ownsOVSDB bool        // whether this replica did the host's OVSDB work
}

// bridgeState tracks one bridge: what it should hold and what it holds.
type bridgeState struct {
	ref         bridgeRef
	dpid        uint64
	fingerprint [32]byte // of what the desired flows and OVSDB configuration are made of
	desiredRev  uint64   // revision at which the fingerprint last changed
	appliedRev  uint64   // revision whose desired state is fully installed
	conn        Switch   // the connection installed refers to
	installed   map[flows.Key]flows.Flow
	needDump    bool              // the drift check wants a fresh dump
	dump        *flowDump         // a dump of the switch under way for the next sync (dump.go)
	learned     []uint64          // learned cookies valid at the last apply
	tableFlows  map[uint8]int     // installed flows per table (replaced, never mutated: metrics read it)
	learnedMACs map[uint64]int    // learned flows per learned cookie at the last dump (replaced, never mutated)
	portDrops   map[uint64]uint64 // br-int: packets of each port's drop flows per port cookie at the last dump (replaced, never mutated)
	role        roleState         // the controller role conn was given (several replicas only)
}

// New returns a controller; Run starts it.
func New(opts Options) (*Controller, error) {
	if opts.Store == nil {
		return nil, errors.New("controller: a store is required")
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.DriftInterval <= 0 {
		opts.DriftInterval = 60 * time.Second
	}
	if opts.Workers <= 0 {
		opts.Workers = 8
	}
	if opts.OVSDBTimeout <= 0 {
		opts.OVSDBTimeout = 10 * time.Second
	}
	c := &Controller{
		opts:     opts,
		log:      opts.Logger.Named("controller"),
		metrics:  opts.Metrics,
		q:        newQueue(200*time.Millisecond, 10*time.Second),
		desired:  newDesiredState(topology.Snapshot{}),
		hosts:    map[string]*hostState{},
		owners:   map[uint64]bridgeRef{},
		switches: map[uint64]Switch{},
		tick:     make(chan struct{}),
	}
	opts.Metrics.observe(c)
	return c, nil
}

// Run reconciles until ctx ends: on every store revision every host, and
// each host once per drift interval, at its own offset within it, with a
// fresh dump of every connected bridge.
func (c *Controller) Run(ctx context.Context) error {
	revs := c.opts.Store.Watch(ctx)
	workers := make(chan struct{})
	go func() {
		c.q.run(ctx, c.opts.Workers, c.reconcileHost, func(key string, err error, in time.Duration) {
			c.log.Warn("reconcile failed; retrying", zap.String("host", key), zap.Duration("in", in), zap.Error(err))
		})
		close(workers)
	}()
	sched := newDriftSchedule(c.opts.DriftInterval)
	drift := time.NewTicker(sched.tick())
	defer drift.Stop()
	defer func() {
		<-workers
		c.closeHosts()
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case rev, ok := <-revs:
			if !ok {
				return nil
			}
			snap, err := c.opts.Store.Snapshot(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				c.log.Error("reading the store", zap.Uint64("revision", rev), zap.Error(err))
				continue
			}
			c.setSnapshot(snap)
		case now := <-drift.C:
			c.checkDrift(sched, now)
		case <-c.roleChanges():
			c.rolesChanged()
		case <-c.appliedChanges():
			c.mu.Lock()
			c.changedLocked() // wakes WaitApplied
			c.mu.Unlock()
		}
	}
}

// setSnapshot makes snap the desired state and enqueues every host.
func (c *Controller) setSnapshot(snap topology.Snapshot) {
	desired := newDesiredState(snap)
	c.mu.Lock()
	if snap.Revision < c.desired.snap.Revision {
		c.mu.Unlock()
		return
	}
	c.desired = desired
	c.owners = map[uint64]bridgeRef{}
	keys := make([]string, 0, len(snap.Hosts)+len(c.hosts))
	for _, h := range snap.Hosts {
		hs := c.hosts[h.Name]
		if hs == nil {
			hs = &hostState{name: h.Name, bridges: map[string]*bridgeState{}, autobindErrs: map[string]string{},
				dialed: make(chan dialResult, 1)}
			for _, b := range bridgeNames {
				ref := bridgeRef{h.Name, b}
				hs.bridges[b] = &bridgeState{ref: ref, dpid: ovsdb.DatapathID(h.Name, b)}
			}
			c.hosts[h.Name] = hs
		}
		for _, bs := range hs.bridges {
			c.owners[bs.dpid] = bs.ref
		}
		keys = append(keys, h.Name)
	}
	for name := range c.hosts {
		if _, ok := snap.Host(name); !ok {
			keys = append(keys, name) // its reconcile forgets it
		}
	}
	c.changedLocked()
	c.mu.Unlock()
	c.placeBridges(snap)
	for _, k := range keys {
		c.q.Add(k)
	}
}

// checkDrift asks each host whose drift check sched says is due at now
// for a full reconcile and each of its bridges for a fresh dump, and
// enqueues it.
func (c *Controller) checkDrift(sched *driftSchedule, now time.Time) {
	c.mu.Lock()
	names := make([]string, 0, len(c.hosts))
	for name := range c.hosts {
		names = append(names, name)
	}
	keys := sched.due(now, names)
	for _, name := range keys {
		hs := c.hosts[name]
		hs.driftDue = true
		for _, bs := range hs.bridges {
			bs.needDump = true
		}
	}
	c.mu.Unlock()
	for _, k := range keys {
		c.q.Add(k)
	}
}

// reconcileHost brings one host to the desired state of the newest
// snapshot: OVSDB first (bridges, tunnels, bindings), then both bridges'
// flows, compiled from the snapshot and the host's OVSDB facts. A revision
// that changed nothing the host's reconcile reads is taken without that
// work (takeIfClean).
func (c *Controller) reconcileHost(ctx context.Context, name string) error {
	start := time.Now()
	c.mu.Lock()
	desired := c.desired
	hs := c.hosts[name]
	c.mu.Unlock()
	host, ok := desired.snap.Host(name)
	if hs == nil {
		return nil
	}
	if !ok {
		c.forgetHost(hs)
		return nil
	}
	in := desired.inputs(host)
	sum := in.digest()
	if c.takeIfClean(hs, in, sum, desired.snap.Revision) {
		return nil
	}
	err := c.reconcileFull(ctx, hs, in, sum, desired.snap)
	c.metrics.reconciled(err, time.Since(start))
	c.log.Debug("reconciled", zap.String("host", name), zap.Uint64("revision", desired.snap.Revision),
		zap.Duration("took", time.Since(start)), zap.Bool("ok", err == nil))
	return err
}

// reconcileFull is the full reconcile of one host: the OVSDB transaction,
// autobind, compile, and the diff of both bridges against what they hold.
func (c *Controller) reconcileFull(ctx context.Context, hs *hostState, in hostInputs, sum hostDigest, snap topology.Snapshot) error {
	log := c.log.With(zap.String("host", hs.name), zap.Uint64("revision", snap.Revision))
	c.mu.Lock()
	hs.driftDue = false // this reconcile does what the drift check asked for
	c.mu.Unlock()
	c.startDumps(ctx, hs)

	owns := c.ownsOVSDB(hs.name)
	ovsErr := c.syncOVSDB(ctx, hs, in, owns)
	var facts ovsdb.Facts
	if hs.ovs != nil {
		facts = hs.ovs.Facts()
	}
	if owns {
		c.autobind(ctx, hs, snap, in, facts.Marked)
	}
	view := buildView(in, facts)
	set := flows.Compile(view)
	for _, s := range set.Skipped {
		log.Debug("left out of the pipeline", zap.String("reason", s))
	}

	errs := []error{ovsErr}
	for _, b := range bridgeNames {
		c.mu.Lock()
		bs := hs.bridges[b]
		if fp := sum.bridge(b, view); fp != bs.fingerprint {
			bs.fingerprint, bs.desiredRev = fp, snap.Revision
		}
		conn := c.switches[bs.dpid]
		if conn == nil {
			bs.dropDumpLocked() // of a connection that has gone
			c.mu.Unlock()
			continue // reconciled again when the switch connects
		}
		c.mu.Unlock()
		if hs.ovs == nil {
			// Nothing is known yet of the host's ports and their ofports,
			// so flows compiled now would delete the pipeline the switch
			// holds and forwards on. They wait for the OVSDB connection,
			// whose dial enqueues the host when it is done; the dump
			// started for the bridge waits with them.
			continue
		}
		if master, err := c.holdRole(ctx, bs, conn); !master {
			c.mu.Lock()
			bs.dropDumpLocked()
			c.mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", bs.ref, err))
			}
			continue // another replica programs this bridge
		}
		err := c.syncBridge(ctx, bs, conn, set, flowsBridge(b))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", bs.ref, err))
			continue
		}
		if ovsErr == nil {
			c.mu.Lock()
			bs.appliedRev = snap.Revision
			c.mu.Unlock()
			c.reportApplied(bs.ref, snap.Revision)
		}
	}
	err := errors.Join(errs...)
	c.mu.Lock()
	hs.seenRev = max(hs.seenRev, snap.Revision)
	hs.lastErr = err
	hs.synced = nil
	if err == nil && hs.ovs != nil {
		hs.synced = &syncedState{digest: sum.all, facts: facts, ownsOVSDB: owns}
	}
	c.changedLocked()
	c.mu.Unlock()
	return err
}

// takeIfClean takes revision rev on hs without a reconcile when nothing
// the reconcile reads changed since the last full one, which succeeded:
// the inputs from the desired state (digest), the OVSDB facts and roles
// are the same, no marked interface waits for autobind, the drift check
// asks for nothing, and every bridge this replica programs holds what that
// reconcile installed on the connection it has now. The full reconcile
// would then send nothing and compile the same flows; only the revision
// moves. It reports whether it took the revision.
func (c *Controller) takeIfClean(hs *hostState, in hostInputs, sum hostDigest, rev uint64) bool {
	if hs.ovs == nil || hs.ovsAddr != in.host.OVSDB {
		return false
	}
	facts := hs.ovs.Facts()
	if in.unboundMarks(facts.Marked) {
		return false
	}
	c.mu.Lock()
	if !c.cleanLocked(hs, sum, facts) {
		c.mu.Unlock()
		return false
	}
	var applied []bridgeRef
	for _, b := range bridgeNames {
		bs := hs.bridges[b]
		if c.switches[bs.dpid] == nil || (c.opts.Mastership != nil && !bs.role.master) {
			continue // the full reconcile would not apply it either
		}
		bs.appliedRev = max(bs.appliedRev, rev)
		applied = append(applied, bs.ref)
	}
	hs.seenRev = max(hs.seenRev, rev)
	hs.lastErr = nil
	c.changedLocked()
	c.mu.Unlock()
	for _, ref := range applied {
		c.reportApplied(ref, rev)
	}
	c.metrics.skipped()
	c.log.Debug("revision taken without a reconcile: nothing the host depends on changed", zap.String("host", hs.name), zap.Uint64("revision", rev))
	return true
}

// cleanLocked reports whether a full reconcile of hs with inputs summed in
// sum and the OVSDB facts facts would find nothing to do (see takeIfClean).
func (c *Controller) cleanLocked(hs *hostState, sum hostDigest, facts ovsdb.Facts) bool {
	s := hs.synced
	if s == nil || hs.driftDue || s.digest != sum.all || s.ownsOVSDB != c.ownsOVSDB(hs.name) || !reflect.DeepEqual(s.facts, facts) {
		return false
	}
	for _, b := range bridgeNames {
		bs := hs.bridges[b]
		conn := c.switches[bs.dpid]
		if conn == nil {
			continue
		}
		if c.opts.Mastership != nil {
			master, gen := c.opts.Mastership.Role(bs.ref.String())
			if bs.role != (roleState{conn: conn, master: master, generation: gen}) {
				return false
			}
			if !master {
				continue
			}
		}
		if bs.needDump || bs.installed == nil || bs.conn != conn {
			return false
		}
	}
	return true
}

// syncOVSDB connects to the host's OVSDB when needed and, when this
// replica owns the host's OVSDB work, applies bridges, the tunnel mesh and
// port bindings in one transaction.
func (c *Controller) syncOVSDB(ctx context.Context, hs *hostState, in hostInputs, owns bool) error {
	if _, err := c.ovsdbClient(ctx, hs, in.host); err != nil {
		return err
	}
	if !owns {
		return nil // the master of the host's br-tun writes its OVSDB
	}
	uctx, cancel := context.WithTimeout(ctx, c.opts.OVSDBTimeout)
	defer cancel()
	err := hs.ovs.Update(uctx, func(t *ovsdb.Txn) error {
		if err := t.EnsureHost(ovsdb.HostSpec{
			Name:              in.host.Name,
			DatapathType:      in.host.DatapathType,
			ControllerTargets: c.opts.ControllerTargets,
		}); err != nil {
			return err
		}
		if err := t.EnsureTunnels(in.tunnels()); err != nil {
			return err
		}
		return syncBindings(t, in.bindings, hs.ovs.Facts())
	})
	if err != nil {
		return fmt.Errorf("ovsdb: %w", err)
	}
	return nil
}

// watchOVSDB enqueues the host whenever its OVSDB facts change.
func (c *Controller) watchOVSDB(ctx context.Context, host string, cl *ovsdb.Client) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-cl.Changes():
			c.q.Add(host)
		}
	}
}

// syncBindings tags every port of this host on br-int and unbinds the
// bindings brtun made that are no longer desired.
func syncBindings(t *ovsdb.Txn, bindings []ovsdb.Binding, facts ovsdb.Facts) error {
	want := map[string]bool{}
	for _, b := range bindings {
		want[b.Interface] = true
		if err := t.BindPort(b); err != nil {
			return err
		}
	}
	for _, b := range facts.Bindings {
		if !want[b.Interface] {
			if err := t.UnbindPort(b.Interface); err != nil {
				return err
			}
		}
	}
	return nil
}

// syncBridge makes one switch hold exactly the desired flows: it diffs
// them against a dump of the switch when what it holds is unknown (a new
// connection) or the drift check asks for it, and otherwise against what
// the last apply installed. The dump is the one startDumps began for conn
// in the role it holds now when there is one, else it is read now.
func (c *Controller) syncBridge(ctx context.Context, bs *bridgeState, conn Switch, set flows.FlowSet, b flows.Bridge) error {
	c.mu.Lock()
	dump := bs.dump
	bs.dump = nil
	if dump != nil && (dump.conn != conn || dump.role != bs.role) {
		// Of a connection that has gone since, or from before this
		// replica took the master role (holdRole).
		dump.cancel()
		dump = nil
	}
	if dump == nil && bs.dumpDueLocked(conn) {
		dump = startDump(ctx, conn, bs.role) // not started ahead
		bs.needDump = false
	}
	// Known content on the same connection is dumped for the drift check only.
	drift := dump != nil && bs.installed != nil && bs.conn == conn
	installed := bs.installed
	c.mu.Unlock()

	var current []flows.Flow
	if dump != nil {
		stats, err := dump.result()
		if err != nil {
			return fmt.Errorf("dump flows: %w", err)
		}
		current = make([]flows.Flow, len(stats))
		learnedMACs := map[uint64]int{}
		portDrops := map[uint64]uint64{}
		for i := range stats {
			current[i] = stats[i].Flow
			if flows.IsLearned(current[i].Cookie) {
				learnedMACs[current[i].Cookie]++
			}
			if b == flows.BrInt && flows.IsPortSecurityDrop(current[i]) {
				portDrops[current[i].Cookie] += stats[i].Packets
			}
		}
		c.mu.Lock()
		bs.learnedMACs = learnedMACs
		bs.portDrops = portDrops
		c.mu.Unlock()
	} else {
		current = make([]flows.Flow, 0, len(installed))
		for _, f := range installed {
			current = append(current, f)
		}
	}
	desired := set.Flows(b)
	changes := Diff(desired, current, func(f flows.Flow) bool { return set.ValidLearned(f.Cookie) })
	var purge []uint64
	for _, ck := range bs.learned {
		if !set.ValidLearned(ck) {
			purge = append(purge, ck)
		}
	}
	if len(changes) > 0 || len(purge) > 0 {
		actx, cancel := context.WithTimeout(ctx, 60*time.Second)
		start := time.Now()
		err := conn.Apply(actx, changes, purge)
		cancel()
		c.metrics.applied(bs.ref, changes, err, time.Since(start))
		if err != nil {
			c.mu.Lock()
			bs.installed = nil // unknown now: dump again next time
			c.mu.Unlock()
			return fmt.Errorf("apply %d flow changes: %w", len(changes), err)
		}
		log := c.log.With(zap.Stringer("bridge", bs.ref), zap.Int("changes", len(changes)), zap.Int("purged_cookies", len(purge)))
		if drift {
			c.metrics.driftRepaired(bs.ref, len(changes))
			log.Warn("repaired flow drift")
		} else {
			log.Info("flows applied")
		}
	}
	now := make(map[flows.Key]flows.Flow, len(desired))
	tables := map[uint8]int{}
	for _, f := range desired {
		now[f.Key()] = f
		tables[f.Table]++
	}
	c.mu.Lock()
	bs.installed, bs.conn, bs.learned, bs.tableFlows = now, conn, set.LearnedCookies, tables
	c.mu.Unlock()
	return nil
}

// forgetHost drops a host that left the store: its OVSDB session closes,
// its switches are no longer served.
func (c *Controller) forgetHost(hs *hostState) {
	c.closeOVSDB(hs)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hosts[hs.name] == hs {
		delete(c.hosts, hs.name)
	}
	dropDialed(hs) // a dial finishing from now on sees the host gone
	for _, bs := range hs.bridges {
		bs.dropDumpLocked()
		if sw := c.switches[bs.dpid]; sw != nil {
			delete(c.switches, bs.dpid)
			_ = sw.Close()
		}
	}
	c.changedLocked()
	c.log.Info("host removed", zap.String("host", hs.name))
}

func (c *Controller) closeOVSDB(hs *hostState) {
	if hs.ovs == nil {
		return
	}
	hs.watchStop()
	hs.ovs.Close()
	c.mu.Lock()
	hs.ovs, hs.ovsAddr, hs.watchStop = nil, "", nil
	c.mu.Unlock()
}

// closeHosts ends every OVSDB session when the controller stops. Emptying
// the host map first makes a dial that finishes later close its own client.
func (c *Controller) closeHosts() {
	c.mu.Lock()
	hosts := make([]*hostState, 0, len(c.hosts))
	for _, hs := range c.hosts {
		hosts = append(hosts, hs)
		dropDialed(hs)
	}
	c.hosts = map[string]*hostState{}
	c.mu.Unlock()
	for _, hs := range hosts {
		c.closeOVSDB(hs)
	}
}

// changedLocked wakes everyone waiting for a status change.
func (c *Controller) changedLocked() {
	close(c.tick)
	c.tick = make(chan struct{})
}

// AddSwitch hands the controller a switch that completed its handshake
// (accepted by the OpenFlow listener or dialled). The switch is matched to
// its host bridge by datapath id; a newer connection of the same switch
// replaces an older one. It returns at once.
func (c *Controller) AddSwitch(sw Switch) {
	dpid := sw.DatapathID()
	c.mu.Lock()
	old := c.switches[dpid]
	c.switches[dpid] = sw
	ref, known := c.owners[dpid]
	c.changedLocked()
	c.mu.Unlock()
	c.metrics.switchConnected(1)
	if old != nil && old != sw {
		_ = old.Close()
	}
	log := c.log.With(zap.String("dpid", ovsdb.FormatDatapathID(dpid)))
	if known {
		log.Info("switch connected", zap.Stringer("bridge", ref))
		c.q.Add(ref.host)
	} else {
		log.Warn("switch with an unknown datapath id connected; it is served once a host claims it")
	}
	go func() {
		<-sw.Done()
		c.removeSwitch(sw)
	}()
}

func (c *Controller) removeSwitch(sw Switch) {
	dpid := sw.DatapathID()
	c.mu.Lock()
	ref, known := c.owners[dpid]
	if c.switches[dpid] == sw {
		delete(c.switches, dpid)
	}
	c.changedLocked()
	c.mu.Unlock()
	c.metrics.switchConnected(-1)
	c.log.Info("switch disconnected", zap.String("dpid", ovsdb.FormatDatapathID(dpid)))
	if known {
		c.q.Add(ref.host) // refresh status; nothing to send until it returns
	}
}

func flowsBridge(b string) flows.Bridge { return flows.Bridge(b) }
