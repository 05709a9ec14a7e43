// Package controller reconciles the desired state in the topology store with
// every host: bridges, tunnel mesh and port bindings over OVSDB, and the
// flows of br-int and br-tun over OpenFlow. It is level-driven: a store
// revision, an OVSDB change, a switch (re)connecting and the periodic drift
// check all enqueue the same key (a host name), and one reconcile brings that
// host to the desired state by diffing what it should hold against what it
// holds and sending only the difference.
package controller

import (
	"crypto/tls"
	"errors"
	"hash/maphash"
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

// DefaultDriftInterval is the default of Options.DriftInterval (serve
// --drift-interval). It was 60 s before the flow monitors: they report
// others' changes at once, so the periodic check is a safety net, and at 60 s
// it was most of brtun's idle CPU (250 hollow hosts in flow mode: 5.7 % of a
// core at 60 s, 2.5 % at 10 min; docs/benchmarks.md, issue 23 item 4).
const DefaultDriftInterval = 5 * time.Minute

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
	// DriftInterval is how often each host gets its periodic drift check:
	// a full reconcile with a fresh dump of every connected bridge
	// (DefaultDriftInterval). The hosts' checks are spread over the
	// interval (drift.go); a flow monitor's report runs a host's check at
	// once (monitor.go).
	DriftInterval time.Duration
	// NoFlowMonitor leaves drift to the periodic check: no bridge is asked
	// for a flow monitor (monitor.go; serve --flow-monitor=false).
	NoFlowMonitor bool
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
	// MACLearnLimit bounds br-tun table 20 and br-int's MAC table on every
	// host (serve --mac-learn-limit, see hostSpec); 0 leaves them unbounded.
	MACLearnLimit int
	// DHCP configures the answers to VMs' DHCP, DHCPv6 and router
	// solicitations (packetin.go).
	DHCP DHCPOptions
	// SourceMeter is the storm control of ports without port security
	// (meter.go); the zero value turns it off.
	SourceMeter SourceMeterOptions
	// TunnelPorts is how br-tun's tunnel ports reach the other hosts
	// (serve --tunnel-ports): per-peer (the zero value) or flow-based. It
	// goes, as data, into every host's flows.View and ovsdb.TunnelSpec.
	TunnelPorts topology.TunnelPortMode

	// compile is the flow compiler (flows.Compile); tests give a broken
	// one to check that what fails flows.Validate is never sent.
	compile func(flows.View) flows.FlowSet
}

// Controller is brtun's reconciler. Create it with New, feed it switches
// with AddSwitch, and run it with Run.
//
// Its goroutines: Run's loop (run.go) turns store revisions, drift ticks
// and role changes into queued hosts; the queue's workers reconcile one
// host each at a time (host.go), and a reconcile alone touches its host's
// ovsdbSession (session.go) and autobindLog; each switch connection has a
// goroutine that removes it when it ends (switch.go); a dump runs in the
// background for its bridge (dump.go). Everything else they share,
// including the fields of hostState and bridgeState, is guarded by mu.
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

	pins *pinState // the packet-in path (packetin.go); its own lock
	// flowTable holds the compiled flows the hosts share (flowtable.go);
	// its own lock.
	flowTable *flowTable

	// seed keys the flows of every dump (Switch.DumpFlows), so that the
	// hosts sharing a flow share the key switches report it by too.
	seed maphash.Seed

	monitorIDs     uint32    // the last flow monitor id handed out (monitor.go)
	monitorRefused sync.Once // the first switch refusing a flow monitor is logged (monitor.go)
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
		opts.DriftInterval = DefaultDriftInterval
	}
	if opts.Workers <= 0 {
		opts.Workers = 8
	}
	if opts.OVSDBTimeout <= 0 {
		opts.OVSDBTimeout = 10 * time.Second
	}
	opts.DHCP = opts.DHCP.withDefaults()
	if opts.compile == nil {
		opts.compile = flows.Compile
	}
	c := &Controller{
		opts:      opts,
		log:       opts.Logger.Named("controller"),
		metrics:   opts.Metrics,
		q:         newQueue(200*time.Millisecond, 10*time.Second),
		desired:   newDesiredState(topology.Snapshot{}, opts.TunnelPorts),
		hosts:     map[string]*hostState{},
		owners:    map[uint64]bridgeRef{},
		switches:  map[uint64]Switch{},
		tick:      make(chan struct{}),
		pins:      newPinState(),
		flowTable: newFlowTable(),
		seed:      maphash.MakeSeed(),
	}
	opts.Metrics.observe(c)
	return c, nil
}

// changedLocked wakes everyone waiting for a status change.
func (c *Controller) changedLocked() {
	close(c.tick)
	c.tick = make(chan struct{})
}

func flowsBridge(b string) flows.Bridge { return flows.Bridge(b) }
