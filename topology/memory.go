package topology

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
)

// NewMemoryStore returns a Store that keeps everything in memory (for tests).
// It behaves exactly like the bbolt store, minus durability.
func NewMemoryStore(opts ...Option) Store {
	return newStore(&memoryBackend{data: make(map[bucket]map[string][]byte)}, opts...)
}

// memoryBackend is a map per bucket; writes of a transaction go to an
// overlay that is applied only when the transaction succeeds.
type memoryBackend struct {
	mu   sync.RWMutex
	data map[bucket]map[string][]byte
}

func (m *memoryBackend) update(_ context.Context, fn func(txn) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := &memoryTxn{base: m.data, writes: make(map[bucket]map[string][]byte)}
	if err := fn(t); err != nil {
		return err
	}
	for b, writes := range t.writes {
		if m.data[b] == nil {
			m.data[b] = make(map[string][]byte)
		}
		for k, v := range writes {
			if v == nil {
				delete(m.data[b], k)
			} else {
				m.data[b][k] = v
			}
		}
	}
	return nil
}

func (m *memoryBackend) view(_ context.Context, fn func(txn) error) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return fn(&memoryTxn{base: m.data})
}

func (m *memoryBackend) maxWrites() int { return 0 }

func (m *memoryBackend) close() error { return nil }

// memoryTxn reads through its overlay of writes (nil value = deleted) to the
// base. A read-only transaction has no overlay.
type memoryTxn struct {
	base   map[bucket]map[string][]byte
	writes map[bucket]map[string][]byte
}

var errReadOnly = errors.New("write in a read-only transaction")

func (t *memoryTxn) get(b bucket, k string) ([]byte, error) {
	if v, ok := t.writes[b][k]; ok {
		return v, nil // nil when deleted in this transaction
	}
	return t.base[b][k], nil
}

func (t *memoryTxn) put(b bucket, k string, val []byte) error {
	if t.writes == nil {
		return errReadOnly
	}
	if t.writes[b] == nil {
		t.writes[b] = make(map[string][]byte)
	}
	t.writes[b][k] = slices.Clone(val)
	if t.writes[b][k] == nil {
		t.writes[b][k] = []byte{}
	}
	return nil
}

func (t *memoryTxn) del(b bucket, k string) error {
	if t.writes == nil {
		return errReadOnly
	}
	if t.writes[b] == nil {
		t.writes[b] = make(map[string][]byte)
	}
	t.writes[b][k] = nil
	return nil
}

func (t *memoryTxn) scan(b bucket, prefix string) ([]kv, error) {
	keys := make(map[string]bool)
	for k := range t.base[b] {
		if strings.HasPrefix(k, prefix) {
			keys[k] = true
		}
	}
	for k := range t.writes[b] {
		if strings.HasPrefix(k, prefix) {
			keys[k] = true
		}
	}
	var out []kv
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		v, _ := t.get(b, k)
		if v != nil {
			out = append(out, kv{key: k, val: v})
		}
	}
	return out, nil
}
