package controller

import (
	"context"
	"fmt"
	"hash/maphash"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/ofswitch"
	"github.com/brtun/brtun/ovsdb"
	"github.com/brtun/brtun/ovsdb/ovsdbtest"
	"github.com/brtun/brtun/ovsdb/vswitchd"
	"github.com/brtun/brtun/topology"
)

// lab runs a Controller end to end: a memory store, one in-memory OVSDB
// server per host (ovsdbtest, playing ovs-vswitchd) and testSwitches the
// test connects and disconnects as OpenFlow connections would come and go.
// What the tests check is what a switch was sent, what the store and the
// OVSDB hold, the controller's logs, metrics and public status.
type lab struct {
	t     *testing.T
	store topology.Store
	ctrl  *Controller
	ovs   map[string]*ovsdbtest.Server
	logs  *observer.ObservedLogs
	reg   *prometheus.Registry
}

// newLab registers hosts, each with an OVSDB server of its own, and the
// networks blue (VXLAN 5001, MAC learning) and red (VXLAN 5002).
func newLab(t *testing.T, hosts ...string) *lab {
	t.Helper()
	l := &lab{t: t, store: topology.NewMemoryStore(), ovs: map[string]*ovsdbtest.Server{}}
	ctx := context.Background()
	for i, h := range hosts {
		s := ovsdbtest.Start(t, ovsdbtest.Options{})
		l.ovs[h] = s
		_, _, err := l.store.CreateHost(ctx, topology.Host{Name: h, OVSDB: s.Addr(), TunnelIP: fmt.Sprintf("192.0.2.%d", i+1)})
		require.NoError(t, err)
	}
	for _, n := range []topology.Network{
		{Name: "blue", Type: topology.VXLAN, SegmentID: 5001, MACLearning: true},
		{Name: "red", Type: topology.VXLAN, SegmentID: 5002},
	} {
		_, _, err := l.store.CreateNetwork(ctx, n)
		require.NoError(t, err)
	}
	return l
}

// start runs a controller with opts (Store, Logger and Metrics are the
// lab's) until stop, or the end of the test.
func (l *lab) start(opts Options) (stop func()) {
	l.t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	l.logs, l.reg = logs, prometheus.NewRegistry()
	opts.Store, opts.Logger, opts.Metrics = l.store, zap.New(core), NewMetrics(l.reg)
	if opts.DriftInterval == 0 {
		opts.DriftInterval = time.Hour // no drift check unless the test asks
	}
	if opts.OVSDBTimeout == 0 {
		opts.OVSDBTimeout = 2 * time.Second
	}
	var err error
	l.ctrl, err = New(opts)
	require.NoError(l.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		assert.NoError(l.t, l.ctrl.Run(ctx))
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	l.t.Cleanup(stop)
	return stop
}

// addPort creates the interface on host's br-int in its OVSDB, as a
// hypervisor would, and a port of blue for it in the store; it returns the
// revision.
func (l *lab) addPort(host, name, mac string) uint64 {
	l.t.Helper()
	iface := "tap-" + name
	require.Eventually(l.t, func() bool { return l.ovs[host].Bridge(l.t, BrInt) != nil }, 10*time.Second, 10*time.Millisecond,
		"brtun creates %s on %s", BrInt, host)
	l.ovs[host].AddPort(l.t, BrInt, &vswitchd.Port{Name: iface}, &vswitchd.Interface{Name: iface})
	_, rev, err := l.store.CreatePort(context.Background(), topology.Port{Network: "blue", Name: name, Host: host, Interface: iface, MAC: mac})
	require.NoError(l.t, err)
	return rev
}

// write creates a port of network on host, without an interface in OVSDB
// yet, and returns the revision. A port of red touches only the hosts that
// carry red.
func (l *lab) write(network, host, name string) uint64 {
	l.t.Helper()
	_, rev, err := l.store.CreatePort(context.Background(), topology.Port{Network: network, Name: name, Host: host, Interface: "tap-" + name})
	require.NoError(l.t, err)
	return rev
}

// waitApplied waits until every bridge the revision touched installed it.
func (l *lab) waitApplied(rev uint64) {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	pending, err := l.ctrl.WaitApplied(ctx, rev)
	require.NoError(l.t, err, "not applied: %v", pending)
}

// connect connects a switch for bridge b of host that holds held.
func (l *lab) connect(host, b string, held ...flows.Flow) *testSwitch {
	sw := newTestSwitch(ovsdb.DatapathID(host, b), held)
	l.ctrl.AddSwitch(sw)
	return sw
}

// connectAll connects both bridges of every host, empty.
func (l *lab) connectAll() map[bridgeRef]*testSwitch {
	out := map[bridgeRef]*testSwitch{}
	for _, h := range slices.Sorted(maps.Keys(l.ovs)) {
		for _, b := range bridgeNames {
			out[bridgeRef{h, b}] = l.connect(h, b)
		}
	}
	return out
}

// settle waits until the controller has had nothing to do for a while:
// no reconcile, skipped or full, started in the last 300ms.
func (l *lab) settle() {
	l.t.Helper()
	last, since := -1, time.Now()
	require.Eventually(l.t, func() bool {
		if n := l.logs.Len(); n != last {
			last, since = n, time.Now()
		}
		return time.Since(since) > 300*time.Millisecond
	}, 20*time.Second, 20*time.Millisecond, "the controller keeps reconciling")
}

// revision is the store's revision now.
func (l *lab) revision() uint64 {
	rev, err := l.store.Revision(context.Background())
	require.NoError(l.t, err)
	return rev
}

// fullReconciles counts host's full reconciles, from the controller's logs.
func (l *lab) fullReconciles(host string) int {
	return l.logs.FilterMessage("reconciled").FilterField(zap.String("host", host)).Len()
}

// testSwitch is a connected switch that holds flows: Apply changes them
// as a switch would, DumpFlows reads them. It records what it is asked in
// order (events), fails applies with applyErr and, when gate is set, holds
// every dump until gate is closed.
type testSwitch struct {
	dpid uint64
	done chan struct{}
	once sync.Once

	mu        sync.Mutex
	gate      chan struct{}
	held      map[flows.Key]flows.Flow
	events    []string
	applied   [][]Change
	applyErr  error
	dumping   chan struct{}        // closed when the first dump started
	packets   uint64               // the packet count a dump reports for every flow
	reportAs  map[flows.Key]uint64 // keys a dump reports instead of FlowKey's, as another OVS might encode a flow
	undecoded int                  // dumps left undecoded: their digest was known
	decoded   int                  // dumps decoded
}

func newTestSwitch(dpid uint64, held []flows.Flow) *testSwitch {
	s := &testSwitch{dpid: dpid, done: make(chan struct{}), held: map[flows.Key]flows.Flow{}, dumping: make(chan struct{})}
	for _, f := range held {
		s.held[f.Key()] = f
	}
	return s
}

func (s *testSwitch) DatapathID() uint64    { return s.dpid }
func (s *testSwitch) Done() <-chan struct{} { return s.done }

// Close ends the connection, as a switch going away does.
func (s *testSwitch) Close() error {
	s.once.Do(func() { close(s.done) })
	return nil
}

// DumpFlows keys each flow as OVS reports it (ofswitch.FlowKey) and, like
// a real switch, leaves a dump whose digest is known undecoded.
func (s *testSwitch) DumpFlows(ctx context.Context, seed maphash.Seed, known *uint64) (Dump, error) {
	s.mu.Lock()
	if s.countLocked("dump") == 0 {
		close(s.dumping)
	}
	s.events = append(s.events, "dump")
	d := Dump{Flows: make([]FlowStats, 0, len(s.held))}
	for _, f := range s.held {
		key, err := ofswitch.FlowKey(seed, f)
		if err != nil {
			s.mu.Unlock()
			return Dump{}, err
		}
		if k, ok := s.reportAs[f.Key()]; ok {
			key = k
		}
		st := FlowStats{Flow: f, FlowCounters: FlowCounters{Key: key, Packets: s.packets}}
		d.Flows = append(d.Flows, st)
		d.Digest += st.Key
	}
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return Dump{}, ctx.Err()
		}
	}
	if known != nil && *known == d.Digest {
		for _, st := range d.Flows {
			d.Counters = append(d.Counters, st.FlowCounters)
		}
		d.Flows, d.Unchanged = nil, true
	}
	s.mu.Lock()
	if d.Unchanged {
		s.undecoded++
	} else {
		s.decoded++
	}
	s.mu.Unlock()
	return d, nil
}

// undecodedDumps counts the dumps whose digest the caller knew.
func (s *testSwitch) undecodedDumps() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.undecoded
}

// decodedDumps counts the other dumps.
func (s *testSwitch) decodedDumps() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.decoded
}

// setPackets sets the packet count the next dumps report for every flow.
func (s *testSwitch) setPackets(n uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.packets = n
}

func (s *testSwitch) Apply(_ context.Context, changes []Change, purge []uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, "apply")
	if s.applyErr != nil {
		return s.applyErr
	}
	s.applied = append(s.applied, changes)
	for _, ch := range changes {
		if ch.Op == OpDeleteStrict {
			delete(s.held, ch.Flow.Key())
		} else {
			s.held[ch.Flow.Key()] = ch.Flow
		}
	}
	for k, f := range s.held {
		if slices.Contains(purge, f.Cookie) {
			delete(s.held, k)
		}
	}
	return nil
}

// TakeRole records the role request (switches of several replicas).
func (s *testSwitch) TakeRole(_ context.Context, master bool, generation uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, fmt.Sprintf("role master=%v generation=%d", master, generation))
	return nil
}

func (s *testSwitch) countLocked(event string) int {
	n := 0
	for _, e := range s.events {
		if e == event {
			n++
		}
	}
	return n
}

// count is how many times the switch saw event ("dump", "apply").
func (s *testSwitch) count(event string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.countLocked(event)
}

// history is every request the switch saw, in order.
func (s *testSwitch) history() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

// flows is what the switch holds, sorted by key.
func (s *testSwitch) flows() []flows.Flow {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Collect(maps.Values(s.held))
	slices.SortFunc(out, func(a, b flows.Flow) int { return strings.Compare(a.Key().String(), b.Key().String()) })
	return out
}

func (s *testSwitch) setApplyErr(err error) {
	s.mu.Lock()
	s.applyErr = err
	s.mu.Unlock()
}

// reportKey makes the dumps report flows of key k with key instead.
func (s *testSwitch) reportKey(k flows.Key, key uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reportAs = map[flows.Key]uint64{k: key}
}

// edit changes what the switch holds behind the controller's back.
func (s *testSwitch) edit(fn func(held map[flows.Key]flows.Flow)) {
	s.mu.Lock()
	fn(s.held)
	s.mu.Unlock()
}

// metric sums the series of the lab controller's metric name whose labels
// include labels, counters and gauges alike (0 when there is none).
func (l *lab) metric(name string, labels map[string]string) float64 {
	l.t.Helper()
	families, err := l.reg.Gather()
	require.NoError(l.t, err)
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue series
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// brTunFailMode is br-tun's fail_mode in s ("" while br-tun or its
// fail_mode is missing).
func brTunFailMode(t *testing.T, s *ovsdbtest.Server) string {
	br := s.Bridge(t, BrTun)
	if br == nil || br.FailMode == nil {
		return ""
	}
	return string(*br.FailMode)
}
