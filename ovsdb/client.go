package ovsdb

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/ovn-kubernetes/libovsdb/model"
	libovsdb "github.com/ovn-kubernetes/libovsdb/ovsdb"
	"go.uber.org/zap"

	"github.com/brtun/brtun/ovsdb/vswitchd"
)

// ErrNotConnected is returned (wrapped) when a change or a wait needs a
// session and the caller's context ends before one is up.
var ErrNotConnected = errors.New("not connected to ovsdb-server")

// Options configure a Client.
type Options struct {
	// Address of the host's ovsdb-server: tcp:IP:PORT, ssl:IP:PORT or
	// unix:/ABSOLUTE/PATH.
	Address string
	// TLS is required for ssl: addresses.
	TLS *tls.Config
	// Logger receives the client's logs; nil discards them.
	Logger *zap.Logger
	// ConnectTimeout bounds one connection attempt including the initial
	// monitor; 0 means 10s.
	ConnectTimeout time.Duration
	// ProbeInterval: a server that went silent is found within twice this
	// of its last message (0 means 5s: 10s). An echo request goes out after
	// 1.1 x ProbeInterval without a message from the server (so that a
	// server probing brtun itself every 5s gets none) and must be answered
	// within 0.9 x ProbeInterval.
	ProbeInterval time.Duration
	// MaxBackoff caps the wait between reconnection attempts, which starts
	// at 100ms and doubles; 0 means 5s.
	MaxBackoff time.Duration
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.ProbeInterval <= 0 {
		o.ProbeInterval = 5 * time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Second
	}
}

// checkAddress validates an OVSDB connection address.
func checkAddress(addr string, tlsConfig *tls.Config) error {
	method, rest, _ := strings.Cut(addr, ":")
	switch method {
	case "unix":
		if !strings.HasPrefix(rest, "/") {
			return fmt.Errorf("address %q: want unix:/ABSOLUTE/PATH", addr)
		}
	case "tcp", "ssl":
		host, port, err := net.SplitHostPort(rest)
		if err != nil || host == "" || port == "" {
			return fmt.Errorf("address %q: want %s:IP:PORT", addr, method)
		}
		if method == "ssl" && tlsConfig == nil {
			return fmt.Errorf("address %q: ssl needs a TLS config", addr)
		}
	default:
		return fmt.Errorf("address %q: want tcp:IP:PORT, ssl:IP:PORT or unix:PATH", addr)
	}
	return nil
}

// Client manages one host's Open_vSwitch database. It keeps a session to
// ovsdb-server, reconnects with backoff when it drops and rebuilds its cache
// from a new monitor each time. All methods are safe for concurrent use;
// changes are applied one at a time.
type Client struct {
	opts Options
	log  *zap.Logger

	cancel context.CancelFunc
	wg     sync.WaitGroup

	// writeMu makes Update calls run one after the other, so each one
	// computes its changes from a cache that holds the previous one.
	writeMu sync.Mutex

	mu      sync.Mutex
	sess    *session      // nil while disconnected
	lastErr error         // why the last connection attempt failed
	tick    chan struct{} // closed and replaced whenever the session or its cache changes

	factsMu  sync.Mutex // serialises Facts, so last is always the newest result
	last     Facts      // facts returned most recently; shared, never modified
	lastView *view      // the view last came from; nil while disconnected

	poke    chan struct{} // cap 1: facts may have changed
	changes chan struct{} // cap 1: facts did change
}

// Dial validates opts, starts the client and waits until its first session
// is up or ctx ends. After that the client reconnects by itself until Close.
func Dial(ctx context.Context, opts Options) (*Client, error) {
	if err := checkAddress(opts.Address, opts.TLS); err != nil {
		return nil, fmt.Errorf("dial ovsdb: %w", err)
	}
	opts.setDefaults()
	runCtx, cancel := context.WithCancel(context.Background())
	c := &Client{
		opts:    opts,
		log:     opts.Logger.Named("ovsdb").With(zap.String("ovsdb", opts.Address)),
		cancel:  cancel,
		tick:    make(chan struct{}),
		poke:    make(chan struct{}, 1),
		changes: make(chan struct{}, 1),
	}
	c.wg.Add(2)
	go func() { defer c.wg.Done(); c.run(runCtx) }()
	go func() { defer c.wg.Done(); c.watch(runCtx) }()
	if _, err := c.waitSession(ctx, nil); err != nil {
		c.Close()
		return nil, fmt.Errorf("dial ovsdb %s: %w", opts.Address, err)
	}
	return c, nil
}

// Close ends the session and stops reconnecting.
func (c *Client) Close() {
	c.cancel()
	c.wg.Wait()
}

// Connected reports whether a session is up.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess != nil
}

// Changes receives a value after Facts changed (ports appearing, vanishing
// or changing ofport, datapath ids, bindings, connection state). Changes are
// coalesced: at most one is pending; read Facts after receiving.
func (c *Client) Changes() <-chan struct{} {
	return c.changes
}

// Facts returns a snapshot of what the controller needs to know. While
// disconnected it returns the last facts seen with Connected false. Once
// Facts returned, any later change to them is announced on Changes.
func (c *Client) Facts() Facts {
	c.factsMu.Lock()
	defer c.factsMu.Unlock()
	return c.currentLocked().clone()
}

// SameFacts reports whether Facts would return facts equal to f (Facts.Equal)
// without copying them: the controller asks it of every host on every store
// revision, and a host's facts hold a tunnel port per peer.
func (c *Client) SameFacts(f Facts) bool {
	c.factsMu.Lock()
	defer c.factsMu.Unlock()
	return c.currentLocked().Equal(f)
}

// currentLocked returns the current facts, shared with the view or with
// c.last: read them, do not modify them. It records them and signals a
// change on Changes. c.factsMu is held.
func (c *Client) currentLocked() Facts {
	v := c.liveView()
	if v == c.lastView {
		// The facts of the same view, or still disconnected (lastView
		// is nil only once last has Connected false).
		return c.last
	}
	var f Facts
	if v != nil {
		f = v.facts()
	} else {
		f = c.last
		f.Connected = false
	}
	// Every result is recorded, so a change relative to what any caller
	// saw is signalled, whoever computes the next facts.
	if !reflect.DeepEqual(f, c.last) {
		c.last = f
		select {
		case c.changes <- struct{}{}:
		default:
		}
	}
	c.lastView = v
	return f
}

// liveView returns the current session's view of its cache, or nil.
func (c *Client) liveView() *view {
	c.mu.Lock()
	s := c.sess
	c.mu.Unlock()
	if s == nil {
		return nil
	}
	v, err := s.view()
	if err != nil {
		return nil
	}
	return v
}

// clone deep-copies facts so callers cannot change the watcher's copy.
func (f Facts) clone() Facts {
	out := f
	out.Bridges = maps.Clone(f.Bridges)
	out.Tunnels = append([]TunnelPort(nil), f.Tunnels...)
	out.Bindings = append([]BoundPort(nil), f.Bindings...)
	out.Marked = append([]MarkedInterface(nil), f.Marked...)
	return out
}

// Update runs fn on a new transaction and commits what it collected, as one
// OVSDB transaction commented "brtun: ...", then waits until ovs-vswitchd has
// applied it (so ofports are assigned) or ctx ends. When nothing needs to
// change nothing is sent. Without a session it waits for one until ctx ends;
// when the session turns out to be gone it starts over on the next one, so
// fn may run more than once. Conflicts the builders skipped are returned as a
// *ConflictError after the rest was committed.
func (c *Client) Update(ctx context.Context, fn func(*Txn) error) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	var gone *session
	for {
		s, err := c.waitSession(ctx, gone)
		if err != nil {
			return err
		}
		err = c.update(ctx, s, fn)
		if !sessionGone(err) {
			return err
		}
		// The next session's fresh cache holds whatever of this attempt
		// was committed, so starting over is safe.
		c.log.Debug("session gone during an update, retrying on the next one", zap.Error(err))
		s.kill()
		gone = s
	}
}

// update is one attempt of Update on session s.
func (c *Client) update(ctx context.Context, s *session, fn func(*Txn) error) error {
	if err := c.catchUp(ctx, s); err != nil {
		return err
	}
	st, err := s.state()
	if err != nil {
		return err
	}
	t := newTxn(s.ovs, st)
	if err := fn(t); err != nil {
		return err
	}
	ops, err := t.finish()
	if err != nil {
		return fmt.Errorf("build transaction: %w", err)
	}
	if len(ops) == 0 {
		// Nothing to send; still return only once ovs-vswitchd has caught
		// up with the database, as after a commit.
		if st.root != nil {
			if err := c.waitApplied(ctx, st.root.NextCfg); err != nil {
				return err
			}
		}
		return t.conflictErr()
	}
	cfg, err := c.commit(ctx, s, t, ops)
	if err != nil {
		return err
	}
	if err := c.waitApplied(ctx, cfg); err != nil {
		return err
	}
	return t.conflictErr()
}

// catchUp waits until the cache holds every transaction that bumped next_cfg
// before now, brtun's own included: a transaction whose reply was lost (the
// caller's context ended) may have committed, and planning from a cache
// without it would insert its rows again. ovsdb-server sends a session the
// updates of earlier commits before a later reply, so this usually costs
// one round trip and no waiting.
func (c *Client) catchUp(ctx context.Context, s *session) error {
	sel := []libovsdb.Operation{{Op: libovsdb.OperationSelect, Table: vswitchd.OpenvSwitchTable, Columns: []string{"next_cfg"}}}
	results, err := s.ovs.Transact(ctx, sel...)
	if err != nil {
		return fmt.Errorf("read next_cfg: %w", transportErr(ctx, err))
	}
	if _, err := libovsdb.CheckOperationResults(results, sel); err != nil {
		return fmt.Errorf("read next_cfg: %w", err)
	}
	if len(results[0].Rows) == 0 {
		return nil // empty database
	}
	cfg, err := nextCfgOf(results[0])
	if err != nil {
		return fmt.Errorf("read next_cfg: %w", err)
	}
	if err := c.waitFor(ctx, func(s *session) bool {
		return s.rootReached(func(root *vswitchd.OpenvSwitch) bool { return root.NextCfg >= cfg })
	}); err != nil {
		return fmt.Errorf("wait for the cache to reach next_cfg %d: %w", cfg, err)
	}
	return nil
}

// commit sends ops with the comment, bumps next_cfg and returns its new
// value, which ovs-vswitchd copies to cur_cfg once it applied the change.
func (c *Client) commit(ctx context.Context, s *session, t *Txn, ops []libovsdb.Operation) (int, error) {
	comment := t.comment()
	all := append([]libovsdb.Operation{{Op: libovsdb.OperationComment, Comment: &comment}}, ops...)
	if t.st.root != nil {
		root := &vswitchd.OpenvSwitch{UUID: t.st.root.UUID}
		bump, err := s.ovs.Where(root).Mutate(root, model.Mutation{
			Field: &root.NextCfg, Mutator: libovsdb.MutateOperationAdd, Value: 1,
		})
		if err != nil {
			return 0, fmt.Errorf("build next_cfg bump: %w", err)
		}
		all = append(all, bump...)
	}
	all = append(all, libovsdb.Operation{
		Op: libovsdb.OperationSelect, Table: vswitchd.OpenvSwitchTable, Columns: []string{"next_cfg"},
	})
	start := time.Now()
	results, err := s.ovs.Transact(ctx, all...)
	if err != nil {
		return 0, fmt.Errorf("transact %q: %w", comment, transportErr(ctx, err))
	}
	if opErrs, err := libovsdb.CheckOperationResults(results, all); err != nil {
		return 0, fmt.Errorf("transact %q: %w", comment, errors.Join(append([]error{err}, asErrors(opErrs)...)...))
	}
	cfg, err := nextCfgOf(results[len(all)-1])
	if err != nil {
		return 0, fmt.Errorf("transact %q: %w", comment, err)
	}
	c.log.Debug("committed", zap.String("comment", comment), zap.Int("operations", len(all)),
		zap.Int("next_cfg", cfg), zap.Duration("took", time.Since(start)))
	return cfg, nil
}

func asErrors(opErrs []libovsdb.OperationError) []error {
	out := make([]error, len(opErrs))
	for i, e := range opErrs {
		out[i] = e
	}
	return out
}

// nextCfgOf reads next_cfg from the result of a select on the one
// Open_vSwitch row. A column left out is at its default, 0.
func nextCfgOf(r libovsdb.OperationResult) (int, error) {
	if len(r.Rows) != 1 {
		return 0, fmt.Errorf("select next_cfg returned %d rows", len(r.Rows))
	}
	v, present := r.Rows[0]["next_cfg"]
	if !present {
		return 0, nil
	}
	cfg, ok := asInt(v)
	if !ok {
		return 0, fmt.Errorf("next_cfg is %T, not an integer", v)
	}
	return cfg, nil
}

// asInt converts a decoded JSON number.
func asInt(v any) (int, bool) {
	switch n := v.(type) {
	case float64:
		if n != float64(int(n)) {
			return 0, false
		}
		return int(n), true
	case int:
		return n, true
	case int64:
		return int(n), true
	}
	return 0, false
}

// waitApplied waits until ovs-vswitchd reports cur_cfg >= cfg. Because the
// cache receives changes in commit order, it then also holds the transaction
// that set next_cfg to cfg and the ofports ovs-vswitchd assigned.
func (c *Client) waitApplied(ctx context.Context, cfg int) error {
	if err := c.waitFor(ctx, func(s *session) bool {
		return s.rootReached(func(root *vswitchd.OpenvSwitch) bool { return root.CurCfg >= cfg })
	}); err != nil {
		return fmt.Errorf("wait for ovs-vswitchd to apply configuration %d: %w", cfg, err)
	}
	return nil
}

// waitSession returns the current session, waiting until one other than
// gone (nil: any) is up or ctx ends.
func (c *Client) waitSession(ctx context.Context, gone *session) (*session, error) {
	var s *session
	err := c.waitFor(ctx, func(cur *session) bool {
		s = cur
		return cur != gone
	})
	if err != nil {
		c.mu.Lock()
		last := c.lastErr
		c.mu.Unlock()
		if last != nil {
			return nil, fmt.Errorf("%w: %w (last attempt: %w)", ErrNotConnected, err, last)
		}
		return nil, fmt.Errorf("%w: %w", ErrNotConnected, err)
	}
	return s, nil
}

// waitFor waits until a session is up and cond holds for it. It re-checks
// whenever the session or its cache changes, and every second in case the
// cache dropped a change event (hold then refreshes the session's view).
func (c *Client) waitFor(ctx context.Context, cond func(*session) bool) error {
	poll := time.NewTicker(time.Second)
	defer poll.Stop()
	for {
		c.mu.Lock()
		s, tick := c.sess, c.tick
		c.mu.Unlock()
		if s != nil && cond(s) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick:
		case <-poll.C:
		}
	}
}

// changed wakes waiters and the facts watcher.
func (c *Client) changed() {
	c.mu.Lock()
	close(c.tick)
	c.tick = make(chan struct{})
	c.mu.Unlock()
	select {
	case c.poke <- struct{}{}:
	default:
	}
}

func (c *Client) setSession(s *session, err error) {
	c.mu.Lock()
	c.sess = s
	if err != nil {
		c.lastErr = err
	}
	c.mu.Unlock()
	c.changed()
}

// watch recomputes facts whenever they may have changed; Facts signals
// Changes when they did.
func (c *Client) watch(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.poke:
		}
		c.Facts()
	}
}
