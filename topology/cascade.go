package topology

import (
	"context"
	"fmt"
)

// A cascade delete removes a host or network with every port in it. Backends
// that bound how many keys one transaction may write (etcd's --max-txn-ops,
// 128 by default) cannot do that in one transaction once there are more than
// a few dozen ports, so deleteInSteps splits it: the ports go first, as many
// per transaction as fit, then the network's subnets, and the parent last,
// in the transaction that deletes whatever is left. Each transaction is an
// ordinary write with its own revision that leaves a valid state (a host or
// network with fewer ports), so the controller, the API and other replicas
// never see a port whose host or network is gone. Backends without a bound
// do it all in one transaction, as before.

// Writes a step needs, in distinct keys.
const (
	// portDeleteWrites is the most deleting one port writes: the port, its
	// interface and MAC claims, its binding and, for the binding's last
	// port, the local VLAN and the host's VLAN hint.
	portDeleteWrites = 6
	// hostDeleteWrites: the host, its tunnel IP claim, its VLAN hint.
	hostDeleteWrites = 3
	// networkDeleteWrites: the network, its segment claim, the segment hint.
	networkDeleteWrites = 3
)

// budgetTxn counts the distinct keys a transaction writes against a limit
// (0: none).
type budgetTxn struct {
	txn
	limit   int
	written map[string]struct{}
}

func (t *budgetTxn) put(b bucket, k string, val []byte) error {
	t.written[key(string(b), k)] = struct{}{}
	return t.txn.put(b, k, val)
}

func (t *budgetTxn) del(b bucket, k string) error {
	t.written[key(string(b), k)] = struct{}{}
	return t.txn.del(b, k)
}

// room reports whether n more writes fit.
func (t *budgetTxn) room(n int) bool { return t.limit <= 0 || len(t.written)+n <= t.limit }

// deleteInSteps runs step in write transactions until it reports done and
// returns the last one's revision. step deletes what fits (t.room) and
// reports whether it got to the end; it starts from the stored state each
// time, so children another replica added meanwhile go too.
func (s *store) deleteInSteps(ctx context.Context, step func(t *budgetTxn) (done bool, err error)) (uint64, error) {
	limit := s.be.maxWrites()
	if limit > 0 {
		limit -= 2 // the revision key and the macTable's (store.write)
	}
	for {
		var done bool
		rev, err := s.write(ctx, func(t txn, _ uint64) error {
			bt := &budgetTxn{txn: t, limit: limit, written: map[string]struct{}{}}
			var err error
			if done, err = step(bt); err != nil {
				return err
			}
			if !done && len(bt.written) == 0 {
				return fmt.Errorf("the store's transactions hold at most %d writes: too few to delete anything", limit+2)
			}
			return nil
		})
		if err != nil || done {
			return rev, err
		}
	}
}
