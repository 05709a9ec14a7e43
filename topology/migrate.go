package topology

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// MigrateOptions configure MigrateBoltToEtcd.
type MigrateOptions struct {
	// Force replaces whatever the target prefix holds. Without it a
	// target prefix holding any key is refused (ErrConflict).
	Force bool
	// DryRun reads the source and counts the target's keys, and writes
	// nothing.
	DryRun bool
}

// MigrateResult is what a migration copied, or would copy when dry.
type MigrateResult struct {
	// Source is the state file; Snapshot its state, at its revision, which
	// the etcd store continues from.
	Source   string
	Snapshot Snapshot
	// Keys is the number of keys copied (objects, their claims and
	// bindings, allocation hints and the revision).
	Keys int
	// TargetKeys is the number of keys the target prefix held before.
	TargetKeys int
	// Transactions is the number of etcd transactions the copy took.
	Transactions int
}

// maxMigrateTxnBytes bounds the values one copy transaction carries, under
// etcd's default --max-request-bytes (1.5 MiB).
const maxMigrateTxnBytes = 1 << 20

// MigrateBoltToEtcd copies the state file in dataDir (BoltFileName) into
// etcd under target.Prefix, key for key, so that etcd replicas serve
// exactly the state the single brtun served: the same objects with the
// same revision numbers (clients' ETags stay valid), local VLANs, segments,
// generated MACs and allocation hints, and the same store revision, which
// the next write continues from. The state file must not be in use (it is
// opened read-only and locked; a running brtun holds it) and is not
// changed. A target prefix holding any key is refused unless opts.Force,
// which deletes it first. The copy takes several transactions (etcd's
// --max-txn-ops); the revision key goes last and every transaction
// commits only while the target has none, so until the copy is complete
// the target reads as an empty store at revision 0, and a brtun that
// writes to it meanwhile makes the copy fail rather than mix. Once copied,
// the etcd store's snapshot is compared with the source's.
func MigrateBoltToEtcd(ctx context.Context, dataDir string, target EtcdOptions, opts MigrateOptions) (MigrateResult, error) {
	res := MigrateResult{Source: filepath.Join(dataDir, BoltFileName)}
	if target.Client == nil {
		return res, errors.New("migrate: an etcd client is required")
	}
	target = target.withDefaults()
	be := &etcdBackend{opts: target}
	pairs, snap, err := readBoltFile(res.Source, be)
	if err != nil {
		return res, err
	}
	res.Snapshot, res.Keys = snap, len(pairs)

	rctx, cancel := context.WithTimeout(ctx, target.RequestTimeout)
	resp, err := target.Client.Get(rctx, target.Prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	cancel()
	if err != nil {
		return res, unavailable(ctx, "count the target's keys", err)
	}
	res.TargetKeys = int(resp.Count)
	if res.TargetKeys > 0 && !opts.Force {
		return res, conflict("etcd prefix %s already holds %d keys (another brtun's state?); stop every brtun using it and migrate with force to replace them", target.Prefix, res.TargetKeys)
	}
	if opts.DryRun {
		return res, nil
	}
	if res.TargetKeys > 0 {
		if err := be.commitOps(ctx, "clear the target", nil, clientv3.OpDelete(target.Prefix, clientv3.WithPrefix())); err != nil {
			return res, err
		}
	}

	// The revision key last: until it is there, the target is empty to
	// any brtun, and its absence is every transaction's condition.
	empty := clientv3.Compare(clientv3.ModRevision(be.revisionKey()), "=", 0)
	var ops []clientv3.Op
	size := 0
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		res.Transactions++
		err := be.commitOps(ctx, "copy", &empty, ops...)
		ops, size = nil, 0
		return err
	}
	for _, p := range pairs {
		if len(ops) == target.MaxTxnOps || (len(ops) > 0 && size+len(p.key)+len(p.val) > maxMigrateTxnBytes) {
			if err := flush(); err != nil {
				return res, err
			}
		}
		ops = append(ops, clientv3.OpPut(p.key, string(p.val)))
		size += len(p.key) + len(p.val)
	}
	if err := flush(); err != nil {
		return res, err
	}

	s := newStore(be)
	got, err := s.Snapshot(ctx)
	if err != nil {
		return res, fmt.Errorf("migrate: read back: %w", err)
	}
	if !reflect.DeepEqual(got, snap) {
		return res, fmt.Errorf("migrate: etcd prefix %s does not read back as the state file did", target.Prefix)
	}
	return res, nil
}

// commitOps commits ops, under cond when not nil.
func (b *etcdBackend) commitOps(ctx context.Context, what string, cond *clientv3.Cmp, ops ...clientv3.Op) error {
	rctx, cancel := context.WithTimeout(ctx, b.opts.RequestTimeout)
	defer cancel()
	t := b.opts.Client.Txn(rctx)
	if cond != nil {
		t = t.If(*cond)
	}
	resp, err := t.Then(ops...).Commit()
	if err != nil {
		return unavailable(ctx, "migrate: "+what, err)
	}
	if !resp.Succeeded {
		return conflict("another brtun wrote to etcd prefix %s during the migration; stop it and migrate again with force", b.opts.Prefix)
	}
	return nil
}

// readBoltFile reads every key of the state file at path as the etcd
// key/value pairs be would store, the revision key last, and the state's
// snapshot (which checks that every object decodes).
func readBoltFile(path string, be *etcdBackend) ([]kv, Snapshot, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, Snapshot{}, fmt.Errorf("migrate: state file: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return nil, Snapshot{}, fmt.Errorf("migrate: open state file %s (is brtun still running on it?): %w", path, err)
	}
	defer func() { _ = db.Close() }()
	var pairs []kv
	var rev *kv
	var snap Snapshot
	err = db.View(func(tx *bolt.Tx) error {
		for _, b := range allBuckets() {
			bk := tx.Bucket([]byte(b))
			if bk == nil {
				continue // a file of an older brtun that never used it
			}
			err := bk.ForEach(func(k, v []byte) error {
				p := kv{key: be.key(b, string(k)), val: bytes.Clone(v)}
				if b == bucketMeta && string(k) == revisionKey {
					rev = &p
				} else {
					pairs = append(pairs, p)
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		var err error
		snap, err = readSnapshot(migrateSource{boltTxn{tx}})
		return err
	})
	if err != nil {
		return nil, Snapshot{}, fmt.Errorf("migrate: read state file %s: %w", path, err)
	}
	slices.SortFunc(pairs, func(a, b kv) int { return strings.Compare(a.key, b.key) })
	if rev != nil {
		pairs = append(pairs, *rev)
	}
	return pairs, snap, nil
}

// migrateSource reads a state file that may lack buckets an older brtun
// did not have: they read as empty.
type migrateSource struct{ boltTxn }

func (t migrateSource) get(b bucket, k string) ([]byte, error) {
	if t.tx.Bucket([]byte(b)) == nil {
		return nil, nil
	}
	return t.boltTxn.get(b, k)
}

func (t migrateSource) scan(b bucket, prefix string) ([]kv, error) {
	if t.tx.Bucket([]byte(b)) == nil {
		return nil, nil
	}
	return t.boltTxn.scan(b, prefix)
}
