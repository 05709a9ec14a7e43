package topology

import (
	"encoding/binary"
	"fmt"
)

// Allocation gives out the lowest free id. To avoid probing every used id on
// each allocation, a hint per id space is stored with the state: every id
// below the hint is in use. Allocating probes upward from the hint and moves
// it past the id taken; releasing an id lowers the hint to it.

func segmentHintKey(nt NetworkType) string { return "segment-hint/" + string(nt) }
func vlanHintKey(host string) string       { return "vlan-hint/" + host }

func readHint(t txn, k string) (uint64, error) {
	raw, err := t.get(bucketMeta, k)
	if err != nil || raw == nil {
		return 1, err
	}
	if len(raw) != 8 {
		return 0, fmt.Errorf("corrupt allocation hint %s: %d bytes", k, len(raw))
	}
	return binary.BigEndian.Uint64(raw), nil
}

func writeHint(t txn, k string, v uint64) error {
	var raw [8]byte
	binary.BigEndian.PutUint64(raw[:], v)
	return t.put(bucketMeta, k, raw[:])
}

// lowerHint records that id became free.
func lowerHint(t txn, k string, id uint64) error {
	hint, err := readHint(t, k)
	if err != nil || id >= hint {
		return err
	}
	return writeHint(t, k, id)
}

// allocate returns the lowest id in [hint, maxID] for which used is false
// and moves the hint past it. ok is false when every id is used.
func allocate(t txn, hintKey string, maxID uint64, used func(id uint64) (bool, error)) (id uint64, ok bool, err error) {
	hint, err := readHint(t, hintKey)
	if err != nil {
		return 0, false, err
	}
	for id = max(hint, 1); id <= maxID; id++ {
		inUse, err := used(id)
		if err != nil {
			return 0, false, err
		}
		if !inUse {
			return id, true, writeHint(t, hintKey, id+1)
		}
	}
	return 0, false, writeHint(t, hintKey, maxID+1)
}

// allocateSegment returns the lowest segment id of type nt that no network uses.
func allocateSegment(t txn, nt NetworkType) (uint32, error) {
	seg, ok, err := allocate(t, segmentHintKey(nt), uint64(nt.MaxSegment()), func(id uint64) (bool, error) {
		owner, err := t.get(bucketSegments, segmentKey(nt, uint32(id)))
		return owner != nil, err
	})
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, conflict("no free %s segment id", nt)
	}
	return uint32(seg), nil
}

// releaseSegment frees the segment of network n.
func releaseSegment(t txn, n Network) error {
	if err := t.del(bucketSegments, segmentKey(n.Type, n.SegmentID)); err != nil {
		return err
	}
	return lowerHint(t, segmentHintKey(n.Type), uint64(n.SegmentID))
}

// acquireVLAN counts one more port of network on host and returns the
// host's local VLAN for network, allocating the lowest free one for the
// network's first port on the host.
func acquireVLAN(t txn, host, network string) (uint16, error) {
	k := key(host, network)
	var b binding
	found, err := getJSON(t, bucketBindings, k, &b)
	if err != nil {
		return 0, err
	}
	if !found {
		vlan, ok, err := allocate(t, vlanHintKey(host), uint64(MaxLocalVLAN), func(id uint64) (bool, error) {
			owner, err := t.get(bucketVLANs, vlanKey(host, uint16(id)))
			return owner != nil, err
		})
		if err != nil {
			return 0, err
		}
		if !ok {
			return 0, conflict("host %q has no free local VLAN (all %d are in use)", host, MaxLocalVLAN)
		}
		b = binding{Network: network, VLAN: uint16(vlan)}
		if err := t.put(bucketVLANs, vlanKey(host, b.VLAN), []byte(network)); err != nil {
			return 0, err
		}
	}
	b.Ports++
	return b.VLAN, putJSON(t, bucketBindings, k, b)
}

// releaseVLAN counts one port of network less on host and frees the host's
// local VLAN for network when it was the last one.
func releaseVLAN(t txn, host, network string) error {
	k := key(host, network)
	var b binding
	found, err := getJSON(t, bucketBindings, k, &b)
	if err != nil {
		return err
	}
	if !found {
		return nil // nothing to release; deleting the port must still work
	}
	b.Ports--
	if b.Ports > 0 {
		return putJSON(t, bucketBindings, k, b)
	}
	if err := t.del(bucketVLANs, vlanKey(host, b.VLAN)); err != nil {
		return err
	}
	if err := t.del(bucketBindings, k); err != nil {
		return err
	}
	return lowerHint(t, vlanHintKey(host), uint64(b.VLAN))
}

// forgetVLANs drops the allocation state of a host that is deleted.
func forgetVLANs(t txn, host string) error {
	return t.del(bucketMeta, vlanHintKey(host))
}
