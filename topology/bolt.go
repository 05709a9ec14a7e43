package topology

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// BoltFileName is the name of the state file inside a data directory.
const BoltFileName = "brtun.db"

// OpenBoltStore opens (creating when needed) the bbolt state file
// BoltFileName in dataDir. Every write is fsynced before it returns, so a
// change that was acknowledged survives a crash. The file is locked: a
// second brtun on the same data directory fails after a second.
func OpenBoltStore(dataDir string, opts ...Option) (Store, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", dataDir, err)
	}
	path := filepath.Join(dataDir, BoltFileName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("open state file %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets() {
			if _, err := tx.CreateBucketIfNotExists([]byte(b)); err != nil {
				return fmt.Errorf("create bucket %s: %w", b, err)
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("initialise state file %s: %w", path, err)
	}
	return newStore(&boltBackend{db: db}, opts...), nil
}

type boltBackend struct {
	db *bolt.DB
}

func (b *boltBackend) update(_ context.Context, fn func(txn) error) error {
	return b.db.Update(func(tx *bolt.Tx) error { return fn(boltTxn{tx}) })
}

func (b *boltBackend) view(_ context.Context, fn func(txn) error) error {
	return b.db.View(func(tx *bolt.Tx) error { return fn(boltTxn{tx}) })
}

func (b *boltBackend) maxWrites() int { return 0 }

func (b *boltBackend) close() error { return b.db.Close() }

type boltTxn struct {
	tx *bolt.Tx
}

func (t boltTxn) bucket(b bucket) (*bolt.Bucket, error) {
	bk := t.tx.Bucket([]byte(b))
	if bk == nil {
		return nil, fmt.Errorf("state file has no bucket %q", b)
	}
	return bk, nil
}

func (t boltTxn) get(b bucket, k string) ([]byte, error) {
	bk, err := t.bucket(b)
	if err != nil {
		return nil, err
	}
	// bbolt values live only as long as the transaction: copy.
	return slices.Clone(bk.Get([]byte(k))), nil
}

func (t boltTxn) put(b bucket, k string, val []byte) error {
	bk, err := t.bucket(b)
	if err != nil {
		return err
	}
	if val == nil {
		val = []byte{}
	}
	if err := bk.Put([]byte(k), val); err != nil {
		return fmt.Errorf("put %s/%s: %w", b, k, err)
	}
	return nil
}

func (t boltTxn) del(b bucket, k string) error {
	bk, err := t.bucket(b)
	if err != nil {
		return err
	}
	if err := bk.Delete([]byte(k)); err != nil {
		return fmt.Errorf("delete %s/%s: %w", b, k, err)
	}
	return nil
}

func (t boltTxn) scan(b bucket, prefix string) ([]kv, error) {
	bk, err := t.bucket(b)
	if err != nil {
		return nil, err
	}
	var out []kv
	p := []byte(prefix)
	c := bk.Cursor()
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		out = append(out, kv{key: string(k), val: slices.Clone(v)})
	}
	return out, nil
}
