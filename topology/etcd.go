package topology

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// DefaultEtcdPrefix is the key prefix of brtun's state in etcd.
const DefaultEtcdPrefix = "/brtun/"

// EtcdOptions configure a Store kept in etcd.
type EtcdOptions struct {
	// Client talks to the etcd cluster (required). The store does not
	// close it: the caller shares it (mastership elections use it too).
	Client *clientv3.Client
	// Prefix of every key (default DefaultEtcdPrefix). Replicas that share
	// one desired state use the same prefix.
	Prefix string
	// RequestTimeout bounds each etcd request (default 5s). A request that
	// does not complete in time fails with ErrUnavailable.
	RequestTimeout time.Duration
	// MaxTxnOps is the most operations etcd accepts in one transaction, its
	// --max-txn-ops (default DefaultEtcdMaxTxnOps, etcd's own default).
	// A cascade delete of a host or network with more ports than fit in
	// one transaction deletes them in several (see DeleteHost).
	MaxTxnOps int
}

// DefaultEtcdMaxTxnOps is etcd's default --max-txn-ops.
const DefaultEtcdMaxTxnOps = 128

// DialEtcd returns a client of the etcd cluster at endpoints (URLs such as
// "https://198.51.100.10:2379"); tlsConfig is used for https endpoints and
// may be nil for http. The client connects lazily and reconnects with at
// most two seconds between attempts, so replicas notice a returning etcd
// quickly. Close it when done.
func DialEtcd(endpoints []string, tlsConfig *tls.Config, log *zap.Logger) (*clientv3.Client, error) {
	if len(endpoints) == 0 {
		return nil, errors.New("etcd: no endpoints")
	}
	if log == nil {
		log = zap.NewNop()
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            endpoints,
		TLS:                  tlsConfig,
		DialTimeout:          5 * time.Second,
		DialKeepAliveTime:    5 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
		Logger:               log.Named("etcd"),
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
			MinConnectTimeout: 2 * time.Second,
		})},
	})
	if err != nil {
		return nil, fmt.Errorf("etcd client for %v: %w", endpoints, err)
	}
	return cli, nil
}

// maxEtcdAttempts bounds how often one write is rerun because another
// replica committed between its reads and its commit.
const maxEtcdAttempts = 50

// NewEtcdStore returns a Store kept in etcd under opts.Prefix. Several
// brtun replicas can share it: each write runs the same validation as the
// other backends on a snapshot of the state at one etcd revision, and
// commits only if no other write committed since (a compare on the
// revision key, which every write changes); otherwise it is rerun on fresh
// data. So duplicate names and segment ids are rejected across replicas
// exactly as on one node. brtun revisions stay dense (1, 2, 3, ...); each is
// one etcd transaction, and every replica sees the same revision for the
// same state. Watch follows writes of every replica through an etcd watch.
//
// When etcd cannot be reached, calls fail with an error for which
// errors.Is(err, ErrUnavailable) holds; a Watch stays open and resumes
// when etcd is back.
func NewEtcdStore(opts EtcdOptions, storeOpts ...Option) (Store, error) {
	if opts.Client == nil {
		return nil, errors.New("etcd store: a client is required")
	}
	opts = opts.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	be := &etcdBackend{opts: opts, stop: cancel, done: make(chan struct{})}
	s := newStore(be, storeOpts...)
	go be.follow(ctx, s.publish)
	return s, nil
}

// withDefaults fills in the defaults of unset options.
func (o EtcdOptions) withDefaults() EtcdOptions {
	if o.Prefix == "" {
		o.Prefix = DefaultEtcdPrefix
	}
	if !strings.HasSuffix(o.Prefix, "/") {
		o.Prefix += "/"
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 5 * time.Second
	}
	if o.MaxTxnOps <= 0 {
		o.MaxTxnOps = DefaultEtcdMaxTxnOps
	}
	return o
}

type etcdBackend struct {
	opts EtcdOptions
	// mu serialises this replica's writes: they would only conflict with
	// each other. Writes of other replicas are caught by the compare.
	mu   sync.Mutex
	stop context.CancelFunc // ends follow
	done chan struct{}      // closed when follow returned
}

func (b *etcdBackend) key(bk bucket, k string) string { return b.opts.Prefix + string(bk) + "/" + k }

func (b *etcdBackend) revisionKey() string { return b.key(bucketMeta, revisionKey) }

func (b *etcdBackend) update(ctx context.Context, fn func(txn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for attempt := 1; ; attempt++ {
		t := &etcdTxn{ctx: ctx, b: b, writes: map[bucket]map[string][]byte{}}
		// Pin the snapshot: every read of fn sees this etcd revision.
		resp, err := t.rangeAt(b.revisionKey(), false)
		if err != nil {
			return err
		}
		var revModified int64
		if len(resp.Kvs) > 0 {
			revModified = resp.Kvs[0].ModRevision
		}
		if err := fn(t); err != nil {
			return err
		}
		ok, err := t.commit(revModified)
		if err != nil || ok {
			return err
		}
		if attempt == maxEtcdAttempts {
			return fmt.Errorf("etcd: %w: write lost %d races with other replicas", ErrUnavailable, attempt)
		}
		// Another replica wrote first: rerun on its result after a short,
		// random pause so that racing replicas do not collide again.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(rand.Int64N(int64(attempt)*int64(2*time.Millisecond)) + 1)):
		}
	}
}

func (b *etcdBackend) view(ctx context.Context, fn func(txn) error) error {
	const attempts = 3
	for attempt := 1; ; attempt++ {
		err := fn(&etcdTxn{ctx: ctx, b: b})
		// The pinned revision was compacted between two reads: read again.
		if attempt < attempts && errors.Is(err, rpctypes.ErrCompacted) {
			continue
		}
		return err
	}
}

func (b *etcdBackend) maxWrites() int { return b.opts.MaxTxnOps }

func (b *etcdBackend) close() error {
	b.stop()
	<-b.done
	return nil
}

// follow publishes the revision of every write, of any replica, until ctx
// ends. It reads the current revision, then watches the revision key from
// there; when the watch breaks (etcd gone, compaction) it starts over.
func (b *etcdBackend) follow(ctx context.Context, publish func(uint64)) {
	defer close(b.done)
	key := b.revisionKey()
	pause := 100 * time.Millisecond
	for ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, b.opts.RequestTimeout)
		resp, err := b.opts.Client.Get(rctx, key)
		cancel()
		if err == nil {
			pause = 100 * time.Millisecond
			if len(resp.Kvs) > 0 {
				if rev, ok := decodeRevision(resp.Kvs[0].Value); ok {
					publish(rev)
				}
			}
			b.watch(ctx, key, resp.Header.Revision+1, publish)
		}
		select {
		case <-ctx.Done():
		case <-time.After(pause):
			pause = min(2*pause, 2*time.Second)
		}
	}
}

// watch publishes revisions written from etcd revision from on, until the
// watch ends.
func (b *etcdBackend) watch(ctx context.Context, key string, from int64, publish func(uint64)) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for wr := range b.opts.Client.Watch(wctx, key, clientv3.WithRev(from)) {
		if wr.Err() != nil {
			return
		}
		for _, ev := range wr.Events {
			if ev.Type != mvccpb.PUT {
				continue
			}
			if rev, ok := decodeRevision(ev.Kv.Value); ok {
				publish(rev)
			}
		}
	}
}

func decodeRevision(raw []byte) (uint64, bool) {
	if len(raw) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(raw), true
}

// unavailable wraps an etcd client error. Errors meaning etcd could not be
// reached or did not answer become ErrUnavailable; the caller's own
// cancellation stays a context error.
func unavailable(ctx context.Context, what string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("etcd %s: %w", what, cerr)
	}
	code := status.Code(err)
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		code = ee.Code()
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		code == codes.Unavailable, code == codes.DeadlineExceeded, code == codes.Canceled:
		return fmt.Errorf("etcd %s: %w: %w", what, ErrUnavailable, err)
	}
	return fmt.Errorf("etcd %s: %w", what, err)
}

// etcdTxn reads at one etcd revision (the first read fixes it) and keeps
// its writes in an overlay (nil value = deleted) until commit. A read-only
// transaction has no overlay.
type etcdTxn struct {
	ctx    context.Context
	b      *etcdBackend
	rev    int64
	writes map[bucket]map[string][]byte
}

// rangeAt reads one key, or every key under a prefix, at the transaction's
// revision.
func (t *etcdTxn) rangeAt(k string, prefix bool) (*clientv3.GetResponse, error) {
	if err := t.ctx.Err(); err != nil {
		return nil, err
	}
	opts := []clientv3.OpOption{clientv3.WithRev(t.rev)}
	if prefix {
		opts = append(opts, clientv3.WithPrefix())
	}
	ctx, cancel := context.WithTimeout(t.ctx, t.b.opts.RequestTimeout)
	defer cancel()
	resp, err := t.b.opts.Client.Get(ctx, k, opts...)
	if err != nil {
		if errors.Is(err, rpctypes.ErrCompacted) {
			return nil, fmt.Errorf("etcd read %s: %w", k, err)
		}
		return nil, unavailable(t.ctx, "read "+k, err)
	}
	if t.rev == 0 {
		t.rev = resp.Header.Revision
	}
	return resp, nil
}

func (t *etcdTxn) get(bk bucket, k string) ([]byte, error) {
	if v, ok := t.writes[bk][k]; ok {
		return v, nil // nil when deleted in this transaction
	}
	resp, err := t.rangeAt(t.b.key(bk, k), false)
	if err != nil || len(resp.Kvs) == 0 {
		return nil, err
	}
	if v := resp.Kvs[0].Value; v != nil {
		return v, nil
	}
	return []byte{}, nil
}

func (t *etcdTxn) put(bk bucket, k string, val []byte) error {
	if t.writes == nil {
		return errReadOnly
	}
	if t.writes[bk] == nil {
		t.writes[bk] = map[string][]byte{}
	}
	t.writes[bk][k] = append([]byte{}, val...)
	return nil
}

func (t *etcdTxn) del(bk bucket, k string) error {
	if t.writes == nil {
		return errReadOnly
	}
	if t.writes[bk] == nil {
		t.writes[bk] = map[string][]byte{}
	}
	t.writes[bk][k] = nil
	return nil
}

func (t *etcdTxn) scan(bk bucket, prefix string) ([]kv, error) {
	resp, err := t.rangeAt(t.b.key(bk, prefix), true)
	if err != nil {
		return nil, err
	}
	strip := len(t.b.key(bk, ""))
	vals := make(map[string][]byte, len(resp.Kvs))
	for _, e := range resp.Kvs {
		vals[string(e.Key[strip:])] = e.Value
	}
	for k, v := range t.writes[bk] {
		if strings.HasPrefix(k, prefix) {
			vals[k] = v
		}
	}
	out := make([]kv, 0, len(vals))
	for _, k := range slices.Sorted(maps.Keys(vals)) {
		if v := vals[k]; v != nil {
			out = append(out, kv{key: k, val: v})
		}
	}
	return out, nil
}

// commit applies the overlay if the revision key was last modified at
// revModified (0: absent), that is if no write committed since the
// snapshot. It reports false when another write came first.
func (t *etcdTxn) commit(revModified int64) (bool, error) {
	var ops []clientv3.Op
	for _, bk := range slices.Sorted(maps.Keys(t.writes)) {
		for _, k := range slices.Sorted(maps.Keys(t.writes[bk])) {
			if v := t.writes[bk][k]; v != nil {
				ops = append(ops, clientv3.OpPut(t.b.key(bk, k), string(v)))
			} else {
				ops = append(ops, clientv3.OpDelete(t.b.key(bk, k)))
			}
		}
	}
	ctx, cancel := context.WithTimeout(t.ctx, t.b.opts.RequestTimeout)
	defer cancel()
	resp, err := t.b.opts.Client.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(t.b.revisionKey()), "=", revModified)).
		Then(ops...).
		Commit()
	if err != nil {
		return false, unavailable(t.ctx, "commit", err)
	}
	return resp.Succeeded, nil
}
