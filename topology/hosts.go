package topology

import (
	"context"
	"fmt"
	"slices"
)

func (s *store) CreateHost(ctx context.Context, h Host) (Host, uint64, error) {
	h, err := normalizeHost(h)
	if err != nil {
		return Host{}, 0, err
	}
	rev, err := s.write(ctx, func(t txn, rev uint64) error {
		h.RevisionNumber = rev
		if _, found, err := getHost(t, h.Name); err != nil || found {
			if err == nil {
				err = conflict("host %q already exists", h.Name)
			}
			return err
		}
		if err := claimTunnelIP(t, h); err != nil {
			return err
		}
		if err := checkOVSDBUnique(t, h); err != nil {
			return err
		}
		return putJSON(t, bucketHosts, h.Name, h)
	})
	if err != nil {
		return Host{}, 0, fmt.Errorf("create host %q: %w", h.Name, err)
	}
	return h, rev, nil
}

func (s *store) UpdateHost(ctx context.Context, name string, ifMatch IfMatch, change func(*Host) error) (Host, uint64, error) {
	var h Host
	rev, err := s.write(ctx, func(t txn, rev uint64) error {
		old, err := mustGetHost(t, name)
		if err != nil {
			return err
		}
		if err := ifMatch.check(old.RevisionNumber); err != nil {
			return err
		}
		h = old
		h.Tags = slices.Clone(old.Tags)
		if err := change(&h); err != nil {
			return err
		}
		if h.Name != old.Name {
			return invalid("name", "a host cannot be renamed (%q)", old.Name)
		}
		if err := immutable("revision_number", h.RevisionNumber == old.RevisionNumber); err != nil {
			return err
		}
		if h, err = normalizeHost(h); err != nil {
			return err
		}
		h.RevisionNumber = rev
		if h.TunnelIP != old.TunnelIP {
			if err := t.del(bucketTunnelIPs, old.TunnelIP); err != nil {
				return err
			}
			if err := claimTunnelIP(t, h); err != nil {
				return err
			}
		}
		if h.OVSDB != old.OVSDB {
			if err := checkOVSDBUnique(t, h); err != nil {
				return err
			}
		}
		return putJSON(t, bucketHosts, h.Name, h)
	})
	if err != nil {
		return Host{}, 0, fmt.Errorf("update host %q: %w", name, err)
	}
	return h, rev, nil
}

// claimTunnelIP records h as the owner of its tunnel IP, which no other
// host may use.
func claimTunnelIP(t txn, h Host) error {
	owner, err := t.get(bucketTunnelIPs, h.TunnelIP)
	if err != nil {
		return err
	}
	if owner != nil && string(owner) != h.Name {
		return conflict("tunnel_ip %s is already used by host %q", h.TunnelIP, owner)
	}
	return t.put(bucketTunnelIPs, h.TunnelIP, []byte(h.Name))
}

// checkOVSDBUnique fails when another host's OVSDB address names the same
// server as h's (compared normalised: tcp:198.51.100.1 and
// tcp:198.51.100.1:6640 are one), since both records would then drive the
// same bridges. h must be valid.
func checkOVSDBUnique(t txn, h Host) error {
	want, err := ovsdbEndpoint(h.OVSDB)
	if err != nil {
		return err
	}
	hosts, err := scanJSON[Host](t, bucketHosts, "")
	if err != nil {
		return err
	}
	for _, o := range hosts {
		if o.Name == h.Name {
			continue
		}
		if got, err := ovsdbEndpoint(o.OVSDB); (err == nil && got == want) || o.OVSDB == h.OVSDB {
			return conflict("ovsdb %s is already used by host %q (as %s)", h.OVSDB, o.Name, o.OVSDB)
		}
	}
	return nil
}

func (s *store) GetHost(ctx context.Context, name string) (Host, error) {
	var h Host
	err := s.read(ctx, func(t txn) error {
		var err error
		h, err = mustGetHost(t, name)
		return err
	})
	if err != nil {
		return Host{}, fmt.Errorf("get host %q: %w", name, err)
	}
	return h, nil
}

func (s *store) ListHosts(ctx context.Context) ([]Host, error) {
	var hosts []Host
	err := s.read(ctx, func(t txn) error {
		var err error
		hosts, err = scanJSON[Host](t, bucketHosts, "")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list hosts: %w", err)
	}
	return hosts, nil
}

func (s *store) DeleteHost(ctx context.Context, name string, cascade bool, ifMatch IfMatch) (uint64, error) {
	rev, err := s.deleteInSteps(ctx, func(t *budgetTxn) (bool, error) {
		h, err := mustGetHost(t, name)
		if err != nil {
			return false, err
		}
		if err := ifMatch.check(h.RevisionNumber); err != nil {
			return false, err
		}
		bindings, err := scanJSON[binding](t, bucketBindings, key(name, ""))
		if err != nil {
			return false, err
		}
		if len(bindings) > 0 && !cascade {
			n := 0
			for _, b := range bindings {
				n += b.Ports
			}
			return false, conflict("host %q still has %d port(s) on %d network(s); delete them first or cascade", name, n, len(bindings))
		}
		for _, b := range bindings {
			ports, err := scanJSON[Port](t, bucketPorts, key(b.Network, ""))
			if err != nil {
				return false, err
			}
			for _, p := range ports {
				if p.Host != name {
					continue
				}
				if !t.room(portDeleteWrites + hostDeleteWrites) {
					return false, nil // the rest in the next transaction
				}
				if err := deletePort(t, p); err != nil {
					return false, err
				}
			}
		}
		if err := t.del(bucketTunnelIPs, h.TunnelIP); err != nil {
			return false, err
		}
		if err := forgetVLANs(t, name); err != nil {
			return false, err
		}
		return true, t.del(bucketHosts, name)
	})
	if err != nil {
		return 0, fmt.Errorf("delete host %q: %w", name, err)
	}
	return rev, nil
}

// getHost reads a host; an invalid name is simply absent.
func getHost(t txn, name string) (Host, bool, error) {
	var h Host
	if !ValidName(name) {
		return h, false, nil
	}
	found, err := getJSON(t, bucketHosts, name, &h)
	return h, found, err
}

func mustGetHost(t txn, name string) (Host, error) {
	h, found, err := getHost(t, name)
	if err == nil && !found {
		err = notFound("host %q does not exist", name)
	}
	return h, err
}
