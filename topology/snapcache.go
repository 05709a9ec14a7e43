package topology

import (
	"bytes"
	"fmt"
	"sync"
)

// snapshotCache keeps every object Store.Snapshot read decoded, with the
// bytes it was decoded from, so that the next snapshot decodes only the
// objects whose bytes changed. A revision changes a few objects; decoding
// all of them was most of what a revision cost at 1000 hosts
// (docs/benchmarks.md, issue 21). The values it hands out are shared by
// the snapshots that read them: Snapshot says so.
type snapshotCache struct {
	mu       sync.Mutex // held for a whole snapshot read
	hosts    decodedBucket[Host]
	networks decodedBucket[Network]
	ports    decodedBucket[Port]
	subnets  decodedBucket[Subnet]
	vteps    decodedBucket[RemoteVTEP]
}

// decodedBucket is one bucket's objects, by key, as last read.
type decodedBucket[T any] map[string]decodedValue[T]

type decodedValue[T any] struct {
	raw []byte // what v was decoded from
	v   T
}

// scanDecoded decodes every value of bucket b, in key order, reusing from
// prev each one whose bytes are the same. It returns the bucket for the
// next read: this read's objects only, so deleted ones are forgotten.
func scanDecoded[T any](t txn, b bucket, prev decodedBucket[T]) ([]T, decodedBucket[T], error) {
	pairs, err := t.scan(b, "")
	if err != nil {
		return nil, nil, err
	}
	out := make([]T, 0, len(pairs))
	next := make(decodedBucket[T], len(pairs))
	for _, p := range pairs {
		d, ok := prev[p.key]
		if !ok || !bytes.Equal(d.raw, p.val) {
			d = decodedValue[T]{raw: bytes.Clone(p.val)}
			if err := decodeStored(p.val, &d.v); err != nil {
				return nil, nil, fmt.Errorf("decode %s/%s: %w", b, p.key, err)
			}
		}
		next[p.key] = d
		out = append(out, d.v)
	}
	return out, next, nil
}

// read reads the whole state in t, decoding only what changed since the
// last read; on an error the cache stays as it was.
func (c *snapshotCache) read(t txn) (Snapshot, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var snap Snapshot
	var err error
	if snap.Revision, err = readRevision(t); err != nil {
		return snap, err
	}
	hosts, networks, ports, subnets, vteps := c.hosts, c.networks, c.ports, c.subnets, c.vteps
	if snap.Hosts, hosts, err = scanDecoded(t, bucketHosts, hosts); err != nil {
		return snap, err
	}
	if snap.Networks, networks, err = scanDecoded(t, bucketNetworks, networks); err != nil {
		return snap, err
	}
	if snap.Ports, ports, err = scanDecoded(t, bucketPorts, ports); err != nil {
		return snap, err
	}
	sortPorts(snap.Ports)
	if snap.Subnets, subnets, err = scanDecoded(t, bucketSubnets, subnets); err != nil {
		return snap, err
	}
	sortSubnets(snap.Subnets)
	if snap.RemoteVTEPs, vteps, err = scanDecoded(t, bucketRemoteVTEPs, vteps); err != nil {
		return snap, err
	}
	if _, err = getJSON(t, bucketEVPN, evpnKey, &snap.EVPN); err != nil {
		return snap, err
	}
	snap.EVPN.State = nil // the speaker's own, not desired state
	c.hosts, c.networks, c.ports, c.subnets, c.vteps = hosts, networks, ports, subnets, vteps
	return snap, nil
}
