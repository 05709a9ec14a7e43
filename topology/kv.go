package topology

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
)

// bucket names one keyspace of the state. Keys inside a bucket sort
// lexicographically; numbers in keys are zero-padded so that order is numeric.
type bucket string

// The buckets brtun keeps. Names cannot contain '/', so it separates key parts.
const (
	bucketMeta      bucket = "meta"      // "revision", allocation hints -> uint64 big-endian; "mac-table" -> macTable (maclimit.go)
	bucketHosts     bucket = "hosts"     // host -> Host
	bucketNetworks  bucket = "networks"  // network -> Network
	bucketPorts     bucket = "ports"     // network/port -> Port
	bucketSegments  bucket = "segments"  // type/%010d segment -> network
	bucketTunnelIPs bucket = "tunnelips" // tunnel IP -> host, or "vtep:NAME" (remote.go)
	bucketBindings  bucket = "bindings"  // host/network -> binding (local VLAN + port count)
	bucketVLANs     bucket = "vlans"     // host/%04d vlan -> network
	bucketIfaces    bucket = "ifaces"    // host/interface -> network/port
	bucketSubnets   bucket = "subnets"   // network/subnet -> Subnet
	bucketMACs      bucket = "macs"      // mac/network/port -> network/port (every port's MAC, across networks)
)

// allBuckets lists every bucket, for backends that create them up front.
func allBuckets() []bucket {
	return []bucket{
		bucketMeta, bucketHosts, bucketNetworks, bucketPorts, bucketSegments,
		bucketTunnelIPs, bucketBindings, bucketVLANs, bucketIfaces, bucketSubnets, bucketMACs,
		bucketRemoteVTEPs, bucketBGPPeers, bucketEVPN,
	}
}

const revisionKey = "revision"

// kv is one key/value pair returned by a scan.
type kv struct {
	key string
	val []byte
}

// txn is what a backend offers to the store logic inside one transaction.
// Values handed out stay valid after the transaction; values handed in are
// not retained by reference.
type txn interface {
	// get returns nil, nil when the key is absent.
	get(b bucket, key string) ([]byte, error)
	put(b bucket, key string, val []byte) error
	del(b bucket, key string) error
	// scan returns every pair whose key starts with prefix, in key order.
	scan(b bucket, prefix string) ([]kv, error)
}

// backend runs transactions. update commits durably when fn returns nil and
// discards every write of fn when it returns an error. A backend may run fn
// more than once (etcd reruns it when another replica committed first), so
// fn must start from its inputs on every run. ctx bounds backends that make
// requests (etcd); local ones check it before they start.
type backend interface {
	update(ctx context.Context, fn func(txn) error) error
	view(ctx context.Context, fn func(txn) error) error
	// maxWrites is the most distinct keys one update may write (0: no
	// limit); cascade deletes split themselves to stay under it.
	maxWrites() int
	close() error
}

// binding is a host's local VLAN for a network, and how many ports on the
// host use it.
type binding struct {
	Network string `json:"network"`
	VLAN    uint16 `json:"vlan"`
	Ports   int    `json:"ports"`
}

func key(parts ...string) string {
	k := parts[0]
	for _, p := range parts[1:] {
		k += "/" + p
	}
	return k
}

func segmentKey(t NetworkType, seg uint32) string { return fmt.Sprintf("%s/%010d", t, seg) }
func vlanKey(host string, vlan uint16) string     { return fmt.Sprintf("%s/%04d", host, vlan) }

// getJSON decodes the value at key into v and reports whether it existed.
func getJSON(t txn, b bucket, k string, v any) (bool, error) {
	raw, err := t.get(b, k)
	if err != nil || raw == nil {
		return false, err
	}
	if err := decodeStored(raw, v); err != nil {
		return false, fmt.Errorf("decode %s/%s: %w", b, k, err)
	}
	return true, nil
}

// decodeStored decodes a stored object into v, filling what objects stored
// by older versions lack (afterDecode).
func decodeStored(raw []byte, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return err
	}
	if d, ok := v.(interface{ afterDecode() }); ok {
		d.afterDecode()
	}
	return nil
}

func putJSON(t txn, b bucket, k string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s/%s: %w", b, k, err)
	}
	return t.put(b, k, raw)
}

// scanJSON decodes every value under prefix, in key order.
func scanJSON[T any](t txn, b bucket, prefix string) ([]T, error) {
	pairs, err := t.scan(b, prefix)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(pairs))
	for _, p := range pairs {
		var v T
		if err := decodeStored(p.val, &v); err != nil {
			return nil, fmt.Errorf("decode %s/%s: %w", b, p.key, err)
		}
		out = append(out, v)
	}
	return out, nil
}

func readRevision(t txn) (uint64, error) {
	raw, err := t.get(bucketMeta, revisionKey)
	if err != nil || raw == nil {
		return 0, err
	}
	if len(raw) != 8 {
		return 0, fmt.Errorf("corrupt revision: %d bytes", len(raw))
	}
	return binary.BigEndian.Uint64(raw), nil
}

func writeRevision(t txn, rev uint64) error {
	var raw [8]byte
	binary.BigEndian.PutUint64(raw[:], rev)
	return t.put(bucketMeta, revisionKey, raw[:])
}
