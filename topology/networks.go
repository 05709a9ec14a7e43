package topology

import (
	"context"
	"fmt"
	"slices"
)

func (s *store) CreateNetwork(ctx context.Context, n Network) (Network, uint64, error) {
	n, err := normalizeNetwork(n)
	if err != nil {
		return Network{}, 0, err
	}
	requested := n.SegmentID
	rev, err := s.write(ctx, func(t txn, rev uint64) error {
		n.SegmentID = requested // a rerun of this transaction allocates afresh
		n.RevisionNumber = rev
		if _, found, err := getNetwork(t, n.Name); err != nil || found {
			if err == nil {
				err = conflict("network %q already exists", n.Name)
			}
			return err
		}
		if n.SegmentID == 0 {
			seg, err := allocateSegment(t, n.Type)
			if err != nil {
				return err
			}
			n.SegmentID = seg
		} else {
			owner, err := t.get(bucketSegments, segmentKey(n.Type, n.SegmentID))
			if err != nil {
				return err
			}
			if owner != nil {
				return conflict("%s segment %d is already used by network %q", n.Type, n.SegmentID, owner)
			}
		}
		if err := t.put(bucketSegments, segmentKey(n.Type, n.SegmentID), []byte(n.Name)); err != nil {
			return err
		}
		return putJSON(t, bucketNetworks, n.Name, n)
	})
	if err != nil {
		return Network{}, 0, fmt.Errorf("create network %q: %w", n.Name, err)
	}
	return n, rev, nil
}

func (s *store) GetNetwork(ctx context.Context, name string) (Network, error) {
	var n Network
	err := s.read(ctx, func(t txn) error {
		var err error
		n, err = mustGetNetwork(t, name)
		return err
	})
	if err != nil {
		return Network{}, fmt.Errorf("get network %q: %w", name, err)
	}
	return n, nil
}

func (s *store) ListNetworks(ctx context.Context) ([]Network, error) {
	var networks []Network
	err := s.read(ctx, func(t txn) error {
		var err error
		networks, err = scanJSON[Network](t, bucketNetworks, "")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	return networks, nil
}

func (s *store) UpdateNetwork(ctx context.Context, name string, ifMatch IfMatch, change func(*Network) error) (Network, uint64, error) {
	var n Network
	rev, err := s.write(ctx, func(t txn, rev uint64) error {
		old, err := mustGetNetwork(t, name)
		if err != nil {
			return err
		}
		if err := ifMatch.check(old.RevisionNumber); err != nil {
			return err
		}
		n = old
		n.Tags = slices.Clone(old.Tags)
		if err := change(&n); err != nil {
			return err
		}
		if n.Name != old.Name {
			return invalid("name", "a network cannot be renamed (%q)", old.Name)
		}
		for _, f := range []struct {
			field string
			same  bool
		}{
			{"type", n.Type == old.Type},
			{"segment_id", n.SegmentID == old.SegmentID},
			{"revision_number", n.RevisionNumber == old.RevisionNumber},
		} {
			if err := immutable(f.field, f.same); err != nil {
				return err
			}
		}
		if n, err = normalizeNetwork(n); err != nil {
			return err
		}
		n.RevisionNumber = rev
		return putJSON(t, bucketNetworks, n.Name, n)
	})
	if err != nil {
		return Network{}, 0, fmt.Errorf("update network %q: %w", name, err)
	}
	return n, rev, nil
}

func (s *store) DeleteNetwork(ctx context.Context, name string, cascade bool, ifMatch IfMatch) (uint64, error) {
	rev, err := s.deleteInSteps(ctx, func(t *budgetTxn) (bool, error) {
		n, err := mustGetNetwork(t, name)
		if err != nil {
			return false, err
		}
		if err := ifMatch.check(n.RevisionNumber); err != nil {
			return false, err
		}
		ports, err := scanJSON[Port](t, bucketPorts, key(name, ""))
		if err != nil {
			return false, err
		}
		if len(ports) > 0 && !cascade {
			return false, conflict("network %q still has %d port(s); delete them first or cascade", name, len(ports))
		}
		for _, p := range ports {
			if !t.room(portDeleteWrites + networkDeleteWrites) {
				return false, nil // the rest in the next transaction
			}
			if err := deletePort(t, p); err != nil {
				return false, err
			}
		}
		// Subnets only once no port is left that could hold their addresses.
		if done, err := deleteSubnets(t, name, networkDeleteWrites); err != nil || !done {
			return false, err
		}
		if err := releaseSegment(t, n); err != nil {
			return false, err
		}
		return true, t.del(bucketNetworks, name)
	})
	if err != nil {
		return 0, fmt.Errorf("delete network %q: %w", name, err)
	}
	return rev, nil
}

// getNetwork reads a network; an invalid name is simply absent.
func getNetwork(t txn, name string) (Network, bool, error) {
	var n Network
	if !ValidName(name) {
		return n, false, nil
	}
	found, err := getJSON(t, bucketNetworks, name, &n)
	return n, found, err
}

func mustGetNetwork(t txn, name string) (Network, error) {
	n, found, err := getNetwork(t, name)
	if err == nil && !found {
		err = notFound("network %q does not exist", name)
	}
	return n, err
}
