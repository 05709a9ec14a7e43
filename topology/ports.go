package topology

import (
	"context"
	"fmt"
	"slices"
)

func (s *store) CreatePort(ctx context.Context, req Port) (Port, uint64, error) {
	p := req
	rev, err := s.write(ctx, func(t txn, rev uint64) error {
		p = req // a rerun of this transaction starts from the request
		if _, err := mustGetNetwork(t, p.Network); err != nil {
			return err
		}
		var err error
		if p, err = normalizePort(p); err != nil {
			return err
		}
		if _, found, err := getPort(t, p.Network, p.Name); err != nil || found {
			if err == nil {
				err = conflict("port %q already exists in network %q", p.Name, p.Network)
			}
			return err
		}
		others, err := scanJSON[Port](t, bucketPorts, key(p.Network, ""))
		if err != nil {
			return err
		}
		if p, err = s.assignAddresses(t, p, nil, others); err != nil {
			return err
		}
		if err := checkPortClaims(t, p, nil, others); err != nil {
			return err
		}
		if p.LocalVLAN, err = acquireVLAN(t, p.Host, p.Network); err != nil {
			return err
		}
		p.RevisionNumber = rev
		return putPort(t, p)
	})
	if err != nil {
		return Port{}, 0, fmt.Errorf("create port %q in network %q: %w", p.Name, p.Network, err)
	}
	return p, rev, nil
}

func (s *store) UpdatePort(ctx context.Context, network, name string, ifMatch IfMatch, change func(*Port) error) (Port, uint64, error) {
	var p Port
	rev, err := s.write(ctx, func(t txn, rev uint64) error {
		old, err := mustGetPort(t, network, name)
		if err != nil {
			return err
		}
		if err := ifMatch.check(old.RevisionNumber); err != nil {
			return err
		}
		p = old
		p.IPs = slices.Clone(old.IPs)
		p.Tags = slices.Clone(old.Tags)
		p.AllowedAddressPairs = slices.Clone(old.AllowedAddressPairs)
		p.AdminStateUp = Bool(old.Up())
		if err := change(&p); err != nil {
			return err
		}
		for _, f := range []struct {
			field string
			same  bool
		}{
			{"network", p.Network == old.Network},
			{"name", p.Name == old.Name},
			{"local_vlan", p.LocalVLAN == old.LocalVLAN},
			{"revision_number", p.RevisionNumber == old.RevisionNumber},
		} {
			if err := immutable(f.field, f.same); err != nil {
				return err
			}
		}
		if p, err = normalizePort(p); err != nil {
			return err
		}
		others, err := scanJSON[Port](t, bucketPorts, key(p.Network, ""))
		if err != nil {
			return err
		}
		if p, err = s.assignAddresses(t, p, &old, others); err != nil {
			return err
		}
		if err := checkPortClaims(t, p, &old, others); err != nil {
			return err
		}
		if err := t.del(bucketIfaces, key(old.Host, old.Interface)); err != nil {
			return err
		}
		if old.MAC != "" {
			if err := t.del(bucketMACs, macKey(old)); err != nil {
				return err
			}
		}
		p.LocalVLAN = old.LocalVLAN
		if p.Host != old.Host {
			if err := releaseVLAN(t, old.Host, old.Network); err != nil {
				return err
			}
			if p.LocalVLAN, err = acquireVLAN(t, p.Host, p.Network); err != nil {
				return err
			}
		}
		p.RevisionNumber = rev
		return putPort(t, p)
	})
	if err != nil {
		return Port{}, 0, fmt.Errorf("update port %q in network %q: %w", name, network, err)
	}
	return p, rev, nil
}

func (s *store) GetPort(ctx context.Context, network, name string) (Port, error) {
	var p Port
	err := s.read(ctx, func(t txn) error {
		var err error
		p, err = mustGetPort(t, network, name)
		return err
	})
	if err != nil {
		return Port{}, fmt.Errorf("get port %q in network %q: %w", name, network, err)
	}
	return p, nil
}

func (s *store) ListPorts(ctx context.Context, network string) ([]Port, error) {
	var ports []Port
	err := s.read(ctx, func(t txn) error {
		if network == "" {
			var err error
			ports, err = scanJSON[Port](t, bucketPorts, "")
			sortPorts(ports)
			return err
		}
		if _, err := mustGetNetwork(t, network); err != nil {
			return err
		}
		var err error
		ports, err = scanJSON[Port](t, bucketPorts, key(network, ""))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list ports of network %q: %w", network, err)
	}
	return ports, nil
}

func (s *store) DeletePort(ctx context.Context, network, name string, ifMatch IfMatch) (uint64, error) {
	rev, err := s.write(ctx, func(t txn, _ uint64) error {
		p, err := mustGetPort(t, network, name)
		if err != nil {
			return err
		}
		if err := ifMatch.check(p.RevisionNumber); err != nil {
			return err
		}
		return deletePort(t, p)
	})
	if err != nil {
		return 0, fmt.Errorf("delete port %q in network %q: %w", name, network, err)
	}
	return rev, nil
}

// checkPortClaims checks that p's host exists and that its interface, MAC
// and IPs are not claimed by another port (old is p's stored version on
// update, others the stored ports of p's network).
func checkPortClaims(t txn, p Port, old *Port, others []Port) error {
	if _, found, err := getHost(t, p.Host); err != nil || !found {
		if err == nil {
			err = invalid("host", "host %q does not exist (register it with POST /v1/hosts first)", p.Host)
		}
		return err
	}
	self := key(p.Network, p.Name)
	owner, err := t.get(bucketIfaces, key(p.Host, p.Interface))
	if err != nil {
		return err
	}
	if owner != nil && string(owner) != self {
		return conflict("interface %q on host %q is already bound to port %s", p.Interface, p.Host, owner)
	}
	for _, o := range others {
		if o.Name == p.Name {
			continue
		}
		if p.MAC != "" && o.MAC == p.MAC {
			return conflict("mac %s is already used by port %q in network %q", p.MAC, o.Name, p.Network)
		}
		for _, ip := range p.IPs {
			if slices.Contains(o.IPs, ip) {
				return conflict("ip %s is already used by port %q in network %q", ip, o.Name, p.Network)
			}
		}
	}
	return nil
}

func putPort(t txn, p Port) error {
	if err := t.put(bucketIfaces, key(p.Host, p.Interface), []byte(key(p.Network, p.Name))); err != nil {
		return err
	}
	if p.MAC != "" {
		if err := t.put(bucketMACs, macKey(p), []byte(key(p.Network, p.Name))); err != nil {
			return err
		}
	}
	return putJSON(t, bucketPorts, key(p.Network, p.Name), p)
}

// deletePort removes p with its interface claim and its share of the local VLAN.
func deletePort(t txn, p Port) error {
	if err := releaseVLAN(t, p.Host, p.Network); err != nil {
		return err
	}
	if err := t.del(bucketIfaces, key(p.Host, p.Interface)); err != nil {
		return err
	}
	if p.MAC != "" {
		if err := t.del(bucketMACs, macKey(p)); err != nil {
			return err
		}
	}
	return t.del(bucketPorts, key(p.Network, p.Name))
}

// getPort reads a port; invalid names are simply absent.
func getPort(t txn, network, name string) (Port, bool, error) {
	var p Port
	if !ValidName(network) || !ValidName(name) {
		return p, false, nil
	}
	found, err := getJSON(t, bucketPorts, key(network, name), &p)
	return p, found, err
}

// mustGetPort reads a port, telling an unknown network from an unknown port.
func mustGetPort(t txn, network, name string) (Port, error) {
	if _, err := mustGetNetwork(t, network); err != nil {
		return Port{}, err
	}
	p, found, err := getPort(t, network, name)
	if err == nil && !found {
		err = notFound("port %q does not exist in network %q", name, network)
	}
	return p, err
}
