package mastership

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
)

// EtcdOptions configure NewEtcd.
type EtcdOptions struct {
	// Client talks to the etcd cluster the replicas share (required).
	Client *clientv3.Client
	// Prefix is the store's etcd prefix; mastership keys live under
	// Prefix + "cluster/".
	Prefix string
	// Name identifies this replica among the others (required, unique).
	Name string
	// API is the address of this replica's REST API, shown in the cluster
	// status.
	API string
	// LeaseTTL is how long a replica's elections outlive its last contact
	// with etcd (default 5s): a replica that died or lost etcd loses its
	// bridges after about this long.
	LeaseTTL time.Duration
	// Logger receives the logs; nil discards them.
	Logger *zap.Logger
}

// Replica is one live brtun replica as etcd knows it.
type Replica struct {
	Name string `json:"name"`
	API  string `json:"api,omitempty"`
}

// Etcd places bridges on replicas through etcd. Each replica
// holds a lease (refreshed every LeaseTTL/3) and registers itself under it.
// Every host is assigned to one live replica (assignHosts), which campaigns
// in one lease-backed etcd election (go.etcd.io/etcd/client/v3/concurrency)
// per bridge of the host; a replica that masters a bridge no longer
// assigned to it resigns. So bridges spread across replicas, and when a
// replica dies or loses etcd its lease expires, its keys vanish, and the
// replica the host is now assigned to wins at once. The master's
// generation id is the etcd revision that created its election key, so a
// later master always has a larger one.
//
// A replica counts itself master only while its last lease renewal is
// younger than two thirds of LeaseTTL (a replica cut off from etcd stops
// sending flow_mods before its lease expires and another replica takes
// over) and while the election keys it watches agree that it holds the
// bridge. It deletes election keys of its own that no campaign stands
// behind (a resign or a campaign that etcd answered too late), which
// would otherwise hold a bridge for no one until the lease ends.
type Etcd struct {
	opts    EtcdOptions
	log     *zap.Logger
	changes chan struct{}
	kick    chan struct{}
	applied chan struct{} // applied revisions changed
	flush   chan struct{} // reports wait to be written

	mu        sync.Mutex
	bridges   []string
	live      map[string]Replica           // live replicas by etcd key
	leaders   map[string]map[string]leader // bridge -> election key -> holder
	campaigns map[string]*campaign
	lastAck   time.Time // last lease renewal etcd confirmed; zero: no session
	fresh     bool      // lastAck was fresh at the last check
	// appliedRevs are the revisions masters reported installed, by bridge
	// (as etcd has them); reports are this replica's not yet written.
	appliedRevs map[string]uint64
	reports     map[string]uint64
}

// leader is one election key: its holder and the revision that created it.
type leader struct {
	replica string
	rev     int64
}

// campaign is this replica's candidacy for one bridge. It stays in
// Etcd.campaigns until its goroutine has finished with etcd, so a new
// campaign for the same bridge (the same election key) never overlaps a
// resign still under way.
type campaign struct {
	cancel    context.CancelFunc
	elected   bool
	electedAt time.Time
	gen       uint64
	leaving   bool // cancelled; resigning
}

// NewEtcd returns a Mastership; Run makes it take part.
func NewEtcd(opts EtcdOptions) (*Etcd, error) {
	if opts.Client == nil || opts.Name == "" {
		return nil, fmt.Errorf("etcd mastership: a client and a replica name are required")
	}
	if strings.ContainsAny(opts.Name, "/\x00") {
		return nil, fmt.Errorf("etcd mastership: replica name %q must not contain '/'", opts.Name)
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	opts.Prefix = strings.TrimSuffix(opts.Prefix, "/") + "/cluster/"
	return &Etcd{
		opts:        opts,
		log:         opts.Logger.Named("mastership").With(zap.String("replica", opts.Name)),
		changes:     make(chan struct{}, 1),
		kick:        make(chan struct{}, 1),
		applied:     make(chan struct{}, 1),
		flush:       make(chan struct{}, 1),
		appliedRevs: map[string]uint64{},
		reports:     map[string]uint64{},
		live:        map[string]Replica{},
		leaders:     map[string]map[string]leader{},
		campaigns:   map[string]*campaign{},
	}, nil
}

func (m *Etcd) replicasPrefix() string { return m.opts.Prefix + "replicas/" }
func (m *Etcd) mastersPrefix() string  { return m.opts.Prefix + "masters/" }
func (m *Etcd) appliedPrefix() string  { return m.opts.Prefix + "applied/" }

// ReportApplied implements Mastership: it publishes, in the background,
// that this replica installed rev on ref.
func (m *Etcd) ReportApplied(ref string, rev uint64) {
	m.mu.Lock()
	if rev > m.appliedRevs[ref] && rev > m.reports[ref] {
		m.reports[ref] = rev
	}
	m.mu.Unlock()
	signal(m.flush)
}

// Applied implements Mastership.
func (m *Etcd) Applied(ref string) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.appliedRevs[ref]
}

// AppliedChanges implements Mastership.
func (m *Etcd) AppliedChanges() <-chan struct{} { return m.applied }

// SetBridges implements Mastership.
func (m *Etcd) SetBridges(refs []string) {
	m.mu.Lock()
	m.bridges = slices.Clone(refs)
	m.mu.Unlock()
	signal(m.kick)
}

// Changes implements Mastership.
func (m *Etcd) Changes() <-chan struct{} { return m.changes }

// Role implements Mastership.
func (m *Etcd) Role(ref string) (bool, uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.campaigns[ref]; c != nil && c.elected && !c.leaving && m.freshLocked() && m.holdsLocked(ref, c) {
		return true, c.gen
	}
	if l, ok := m.leaderLocked(ref); ok {
		return false, uint64(l.rev)
	}
	return false, 0
}

// Master implements Mastership.
func (m *Etcd) Master(ref string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, _ := m.leaderLocked(ref)
	return l.replica
}

// Self is this replica's name.
func (m *Etcd) Self() string { return m.opts.Name }

// Connected reports whether this replica holds a fresh etcd lease.
func (m *Etcd) Connected() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.freshLocked()
}

// Replicas lists the live replicas, by name.
func (m *Etcd) Replicas() []Replica {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := slices.Collect(maps.Values(m.live))
	slices.SortFunc(out, func(a, b Replica) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Leads reports whether this replica leads the cluster: it holds a fresh
// lease and its name is the first of the live replicas. The leader does
// what one replica must do for all (storing the routes the BGP speakers
// import). When the leader dies, the next one leads once its lease
// expired; while the replicas' views of each other differ (for a moment
// after a replica joins or leaves) two may both lead.
func (m *Etcd) Leads() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.freshLocked() {
		return false
	}
	first := ""
	for _, r := range m.live {
		if first == "" || r.Name < first {
			first = r.Name
		}
	}
	return first == m.opts.Name
}

// Masters maps every bridge with a master to its replica's name.
func (m *Etcd) Masters() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]string{}
	for ref := range m.leaders {
		if l, ok := m.leaderLocked(ref); ok {
			out[ref] = l.replica
		}
	}
	return out
}

// leaderLocked is the holder of ref's election: its oldest key.
func (m *Etcd) leaderLocked(ref string) (leader, bool) {
	var best leader
	found := false
	for _, l := range m.leaders[ref] {
		if !found || l.rev < best.rev {
			best, found = l, true
		}
	}
	return best, found
}

// holdsLocked reports whether the election keys as watched agree that c
// holds ref: the oldest key is this replica's, created at c's generation.
func (m *Etcd) holdsLocked(ref string, c *campaign) bool {
	l, ok := m.leaderLocked(ref)
	return ok && l.replica == m.opts.Name && uint64(l.rev) == c.gen
}

func (m *Etcd) freshLocked() bool {
	return !m.lastAck.IsZero() && time.Since(m.lastAck) < 2*m.opts.LeaseTTL/3
}

// signal makes a coalescing one-slot channel ready.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Run takes part in the cluster until ctx ends: one etcd session (lease)
// after the other, each lasting until it is lost.
func (m *Etcd) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		err := m.session(ctx)
		if ctx.Err() == nil {
			m.log.Warn("etcd session ended; bridges mastered here are released", zap.Error(err))
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	return nil
}

// session runs one lease: registers the replica, follows the others and
// the elections, and places bridges until the lease is lost or ctx ends.
func (m *Etcd) session(ctx context.Context) error {
	cli := m.opts.Client
	gctx, cancel := context.WithTimeout(ctx, m.opts.LeaseTTL)
	grant, err := cli.Grant(gctx, int64((m.opts.LeaseTTL+time.Second-1)/time.Second))
	cancel()
	if err != nil {
		return fmt.Errorf("grant lease: %w", err)
	}
	sctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		stop()
		m.mu.Lock()
		for ref, c := range m.campaigns {
			c.cancel()
			delete(m.campaigns, ref)
		}
		m.lastAck, m.fresh = time.Time{}, false
		m.mu.Unlock()
		signal(m.changes)
		wg.Wait()
		// Hand the bridges over at once rather than after the lease TTL.
		rctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, _ = cli.Revoke(rctx, grant.ID)
		cancel()
	}()
	sess, err := concurrency.NewSession(cli, concurrency.WithLease(grant.ID), concurrency.WithContext(sctx))
	if err != nil {
		return fmt.Errorf("session: %w", err)
	}
	m.mu.Lock()
	m.lastAck = time.Now()
	m.mu.Unlock()
	info, err := json.Marshal(Replica{Name: m.opts.Name, API: m.opts.API})
	if err != nil {
		return fmt.Errorf("encode replica: %w", err)
	}
	pctx, cancel := context.WithTimeout(sctx, m.opts.LeaseTTL)
	_, err = cli.Put(pctx, m.replicasPrefix()+m.opts.Name, string(info), clientv3.WithLease(grant.ID))
	cancel()
	if err != nil {
		return fmt.Errorf("register replica: %w", err)
	}
	m.log.Info("joined the cluster", zap.Int64("lease", int64(grant.ID)), zap.Duration("lease_ttl", m.opts.LeaseTTL))

	acks, err := cli.KeepAlive(sctx, grant.ID)
	if err != nil {
		return fmt.Errorf("keep lease alive: %w", err)
	}
	wg.Go(func() {
		for range acks {
			m.mu.Lock()
			m.lastAck = time.Now()
			m.mu.Unlock()
		}
	})
	wg.Go(func() { m.follow(sctx, m.replicasPrefix(), m.setReplicas, m.replicaEvent) })
	wg.Go(func() { m.follow(sctx, m.mastersPrefix(), m.setLeaders, m.leaderEvent) })
	wg.Go(func() { m.follow(sctx, m.appliedPrefix(), m.setApplied, m.appliedEvent) })
	wg.Go(func() { m.writeReports(sctx) })

	tick := time.NewTicker(m.opts.LeaseTTL / 10)
	defer tick.Stop()
	for {
		select {
		case <-sctx.Done():
			return nil
		case <-sess.Done():
			return fmt.Errorf("lease %x expired", int64(grant.ID))
		case <-m.kick:
		case <-tick.C:
		}
		m.place(sctx, sess)
	}
}

// place starts campaigns for the bridges assigned to this replica, ends
// the others, and removes this replica's election keys that no campaign
// stands behind; it also reports a lease that went stale.
func (m *Etcd) place(ctx context.Context, sess *concurrency.Session) {
	stale := m.placeLocked(ctx, sess)
	m.release(ctx, stale)
}

// placeLocked does place's work under the lock and returns the orphaned
// election keys for release.
func (m *Etcd) placeLocked(ctx context.Context, sess *concurrency.Session) map[string]int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if fresh := m.freshLocked(); fresh != m.fresh {
		m.fresh = fresh
		signal(m.changes)
		if !fresh {
			m.log.Warn("etcd lease not renewed in time: not mastering any bridge until it is")
		}
	}
	if !m.fresh {
		return nil
	}
	hosts := map[string]bool{}
	for _, ref := range m.bridges {
		host, _, _ := strings.Cut(ref, "/")
		hosts[host] = true
	}
	var replicas []string
	for _, r := range m.live {
		replicas = append(replicas, r.Name)
	}
	owner := assignHosts(slices.Collect(maps.Keys(hosts)), replicas)
	want := map[string]bool{}
	for _, ref := range m.bridges {
		host, _, _ := strings.Cut(ref, "/")
		if owner[host] == m.opts.Name {
			want[ref] = true
		}
	}
	for ref, c := range m.campaigns {
		switch {
		case !want[ref] && !c.leaving:
			c.leaving = true
			c.cancel() // resigns, or withdraws the candidacy
		case want[ref] && c.elected && !c.leaving && !m.holdsLocked(ref, c) && time.Since(c.electedAt) > m.opts.LeaseTTL:
			// Elected, but etcd no longer has the key: campaign anew.
			m.log.Warn("election key of a bridge mastered here is gone; campaigning again", zap.String("bridge", ref))
			c.leaving = true
			c.cancel()
		}
	}
	for ref := range want {
		if m.campaigns[ref] == nil {
			cctx, cancel := context.WithCancel(ctx)
			c := &campaign{cancel: cancel}
			m.campaigns[ref] = c
			go m.campaign(cctx, sess, ref, c)
		}
	}
	// Keys of this replica no campaign stands behind: left by a resign that
	// did not reach etcd, by a campaign whose write landed after it gave
	// up, or by an earlier lease of this replica. Left alone they would
	// hold their bridges for no one until the lease ends.
	lease := fmt.Sprintf("%x", int64(sess.Lease()))
	stale := map[string]int64{}
	for ref, keys := range m.leaders {
		for k, l := range keys {
			if l.replica != m.opts.Name {
				continue
			}
			if m.campaigns[ref] == nil || !strings.HasSuffix(k, "/"+lease) {
				stale[k] = l.rev
			}
		}
	}
	return stale
}

// release deletes the orphaned election keys (key -> create revision) in
// one transaction per key, each only if the key is still the one seen.
// It runs in the session's loop, the only one that starts campaigns, so no
// campaign for these bridges can start meanwhile; one that fails is tried
// again at the next placement.
func (m *Etcd) release(ctx context.Context, stale map[string]int64) {
	for _, k := range slices.Sorted(maps.Keys(stale)) {
		dctx, cancel := context.WithTimeout(ctx, m.opts.LeaseTTL)
		resp, err := m.opts.Client.Txn(dctx).
			If(clientv3.Compare(clientv3.CreateRevision(k), "=", stale[k])).
			Then(clientv3.OpDelete(k)).Commit()
		cancel()
		if err != nil {
			m.log.Debug("release an orphaned election key; retrying", zap.String("key", k), zap.Error(err))
			return
		}
		if resp.Succeeded {
			m.log.Info("released an election key no campaign stood behind", zap.String("key", k))
		}
	}
}

// assignHosts gives every host one of the replicas: each host goes to the
// replica that ranks highest for it (rendezvous hashing) among those that
// hold fewer than their fair share, ceil(hosts/replicas), so the hosts
// spread evenly and every replica computes the same answer from the same
// hosts and replicas.
func assignHosts(hosts, replicas []string) map[string]string {
	out := map[string]string{}
	if len(replicas) == 0 {
		return out
	}
	hosts = slices.Sorted(slices.Values(hosts))
	capacity := (len(hosts) + len(replicas) - 1) / len(replicas)
	load := map[string]int{}
	score := func(r, h string) uint64 {
		sum := sha256.Sum256([]byte(r + "\x00" + h))
		return binary.BigEndian.Uint64(sum[:8])
	}
	ranked := slices.Clone(replicas)
	for _, h := range hosts {
		slices.SortFunc(ranked, func(a, b string) int {
			return cmp.Or(cmp.Compare(score(b, h), score(a, h)), cmp.Compare(a, b))
		})
		for _, r := range ranked {
			if load[r] < capacity {
				out[h] = r
				load[r]++
				break
			}
		}
	}
	return out
}

// campaign runs for one bridge until elected, holds it until ctx ends,
// then resigns.
func (m *Etcd) campaign(ctx context.Context, sess *concurrency.Session, ref string, c *campaign) {
	defer func() {
		m.mu.Lock()
		if m.campaigns[ref] == c {
			delete(m.campaigns, ref) // placed again at the next tick if still wanted
		}
		m.mu.Unlock()
	}()
	e := concurrency.NewElection(sess, m.mastersPrefix()+ref)
	if err := e.Campaign(ctx, m.opts.Name); err != nil {
		if ctx.Err() == nil {
			m.log.Warn("campaign failed; retrying", zap.String("bridge", ref), zap.Error(err))
		}
		return
	}
	m.mu.Lock()
	c.elected, c.electedAt, c.gen = true, time.Now(), uint64(e.Rev())
	m.mu.Unlock()
	m.log.Info("elected master", zap.String("bridge", ref), zap.Int64("generation", e.Rev()))
	signal(m.changes)
	<-ctx.Done()
	m.mu.Lock()
	c.elected = false
	m.mu.Unlock()
	signal(m.changes)
	rctx, cancel := context.WithTimeout(context.Background(), m.opts.LeaseTTL)
	err := e.Resign(rctx)
	cancel()
	if err != nil {
		// The key stays until place releases it as orphaned.
		m.log.Info("resign failed; the election key is released later", zap.String("bridge", ref), zap.Error(err))
		return
	}
	m.log.Info("resigned", zap.String("bridge", ref))
}

// follow mirrors the keys under prefix: reset with every key, then one
// event after the other; after a broken watch it starts over.
func (m *Etcd) follow(ctx context.Context, prefix string, reset func([]*mvccpb.KeyValue), event func(*clientv3.Event)) {
	cli := m.opts.Client
	for ctx.Err() == nil {
		gctx, cancel := context.WithTimeout(ctx, m.opts.LeaseTTL)
		resp, err := cli.Get(gctx, prefix, clientv3.WithPrefix())
		cancel()
		if err == nil {
			reset(resp.Kvs)
			wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
			for wr := range cli.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1)) {
				if wr.Err() != nil {
					break
				}
				for _, ev := range wr.Events {
					event(ev)
				}
			}
			cancel()
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (m *Etcd) setReplicas(kvs []*mvccpb.KeyValue) {
	m.mu.Lock()
	m.live = map[string]Replica{}
	m.mu.Unlock()
	for _, kv := range kvs {
		m.replicaEvent(&clientv3.Event{Type: mvccpb.PUT, Kv: kv})
	}
	signal(m.kick)
}

func (m *Etcd) replicaEvent(ev *clientv3.Event) {
	k := string(ev.Kv.Key)
	m.mu.Lock()
	if ev.Type == mvccpb.DELETE {
		delete(m.live, k)
		m.log.Info("replica left", zap.String("key", k))
	} else {
		var r Replica
		if err := json.Unmarshal(ev.Kv.Value, &r); err != nil || r.Name == "" {
			r = Replica{Name: strings.TrimPrefix(k, m.replicasPrefix())}
		}
		if _, known := m.live[k]; !known {
			m.log.Info("replica joined", zap.String("name", r.Name))
		}
		m.live[k] = r
	}
	m.mu.Unlock()
	signal(m.kick)
}

func (m *Etcd) setLeaders(kvs []*mvccpb.KeyValue) {
	m.mu.Lock()
	m.leaders = map[string]map[string]leader{}
	m.mu.Unlock()
	for _, kv := range kvs {
		m.leaderEvent(&clientv3.Event{Type: mvccpb.PUT, Kv: kv})
	}
	signal(m.changes)
}

// leaderEvent records an election key: MASTERS/HOST/BRIDGE/LEASE.
func (m *Etcd) leaderEvent(ev *clientv3.Event) {
	k := string(ev.Kv.Key)
	ref := strings.TrimPrefix(k, m.mastersPrefix())
	if i := strings.LastIndexByte(ref, '/'); i > 0 {
		ref = ref[:i]
	}
	m.mu.Lock()
	if ev.Type == mvccpb.DELETE {
		delete(m.leaders[ref], k)
		if len(m.leaders[ref]) == 0 {
			delete(m.leaders, ref)
		}
	} else {
		if m.leaders[ref] == nil {
			m.leaders[ref] = map[string]leader{}
		}
		m.leaders[ref][k] = leader{replica: string(ev.Kv.Value), rev: ev.Kv.CreateRevision}
	}
	m.mu.Unlock()
	signal(m.changes)
}

// maxTxnOps is the most operations writeReports puts in one transaction:
// etcd refuses more than its --max-txn-ops, 128 unless raised ("too many
// operations in txn request").
const maxTxnOps = 128

// writeReports writes the applied revisions this replica reported, all
// pending ones in transactions of at most maxTxnOps, until ctx ends. (In
// one transaction, a revision that hundreds of bridges take at once, as
// one touching a single host does at 1000 hosts, was refused every time
// and retried for good: the other replicas never saw these bridges apply
// anything again.)
func (m *Etcd) writeReports(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.flush:
		}
		m.mu.Lock()
		batch := m.reports
		m.reports = map[string]uint64{}
		m.mu.Unlock()
		if len(batch) == 0 {
			continue
		}
		refs := slices.Sorted(maps.Keys(batch))
		var err error
		for len(refs) > 0 && err == nil {
			chunk := refs[:min(len(refs), maxTxnOps)]
			ops := make([]clientv3.Op, 0, len(chunk))
			for _, ref := range chunk {
				ops = append(ops, clientv3.OpPut(m.appliedPrefix()+ref, strconv.FormatUint(batch[ref], 10)))
			}
			wctx, cancel := context.WithTimeout(ctx, m.opts.LeaseTTL)
			_, err = m.opts.Client.Txn(wctx).Then(ops...).Commit()
			cancel()
			if err == nil {
				refs = refs[len(chunk):]
			}
		}
		if err != nil {
			m.log.Debug("publish applied revisions; retrying", zap.Error(err))
			m.mu.Lock()
			for _, ref := range refs { // the chunk that failed and those after it
				if rev := batch[ref]; rev > m.reports[ref] {
					m.reports[ref] = rev
				}
			}
			m.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
			signal(m.flush)
		}
	}
}

func (m *Etcd) setApplied(kvs []*mvccpb.KeyValue) {
	m.mu.Lock()
	m.appliedRevs = map[string]uint64{}
	m.mu.Unlock()
	for _, kv := range kvs {
		m.appliedEvent(&clientv3.Event{Type: mvccpb.PUT, Kv: kv})
	}
	signal(m.applied)
}

// appliedEvent records a bridge's applied revision: APPLIED/HOST/BRIDGE.
func (m *Etcd) appliedEvent(ev *clientv3.Event) {
	ref := strings.TrimPrefix(string(ev.Kv.Key), m.appliedPrefix())
	m.mu.Lock()
	if ev.Type == mvccpb.DELETE {
		delete(m.appliedRevs, ref)
	} else if rev, err := strconv.ParseUint(string(ev.Kv.Value), 10, 64); err == nil {
		m.appliedRevs[ref] = rev
	}
	m.mu.Unlock()
	signal(m.applied)
}
