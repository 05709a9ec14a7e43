package topology

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// Store persists the desired state. Every write is one transaction: it is
// validated, checked for uniqueness and applied together, or rejected with
// nothing stored. Each committed write gets the next revision (starting at
// 1) and returns it. Errors of rejected changes are *Error values, to be
// tested with errors.Is(err, ErrNotFound|ErrConflict|ErrInvalid).
type Store interface {
	// CreateHost registers a host. DatapathType defaults to "system".
	// Names and tunnel IPs are unique.
	CreateHost(ctx context.Context, h Host) (Host, uint64, error)
	GetHost(ctx context.Context, name string) (Host, error)
	ListHosts(ctx context.Context) ([]Host, error)
	// UpdateHost applies change to the stored host in one transaction (a
	// new tunnel_ip, ovsdb, datapath_type, description or tags). The name
	// cannot change.
	UpdateHost(ctx context.Context, name string, ifMatch IfMatch, change func(*Host) error) (Host, uint64, error)
	// DeleteHost removes a host. While ports are bound on it, it fails with
	// ErrConflict unless cascade is set, which deletes those ports too: in
	// the same transaction, or on etcd, when they do not fit in one
	// (EtcdOptions.MaxTxnOps), in several, ports first and the host last,
	// each a write of its own revision that leaves a valid state. If one
	// of them fails, the ports deleted before stay deleted.
	DeleteHost(ctx context.Context, name string, cascade bool, ifMatch IfMatch) (uint64, error)

	// CreateNetwork stores a network. A zero SegmentID allocates the lowest
	// free segment of the network's type; (type, segment) pairs are unique.
	CreateNetwork(ctx context.Context, n Network) (Network, uint64, error)
	GetNetwork(ctx context.Context, name string) (Network, error)
	ListNetworks(ctx context.Context) ([]Network, error)
	// UpdateNetwork applies change to the stored network in one transaction
	// (mac_learning, description, tags). Name, type and segment_id cannot
	// change (ErrInvalid naming the field).
	UpdateNetwork(ctx context.Context, name string, ifMatch IfMatch, change func(*Network) error) (Network, uint64, error)
	// DeleteNetwork removes a network; like DeleteHost for its ports. Its
	// subnets go with it.
	DeleteNetwork(ctx context.Context, name string, cascade bool, ifMatch IfMatch) (uint64, error)

	// CreateSubnet adds an IP range to a network. Names are unique within
	// the network and its CIDRs do not overlap (ErrConflict); the gateway
	// is the caller's ("" for none), empty allocation pools default to the
	// whole CIDR less the network, broadcast and gateway addresses.
	CreateSubnet(ctx context.Context, s Subnet) (Subnet, uint64, error)
	GetSubnet(ctx context.Context, network, name string) (Subnet, error)
	// ListSubnets lists the subnets of a network (ErrNotFound for an
	// unknown network), or of every network when network is "".
	ListSubnets(ctx context.Context, network string) ([]Subnet, error)
	// UpdateSubnet applies change in one transaction: allocation pools, DNS
	// servers, host routes, enable_dhcp, description and tags. Network,
	// name, cidr, gateway_ip and ipv6_address_mode cannot change.
	UpdateSubnet(ctx context.Context, network, name string, ifMatch IfMatch, change func(*Subnet) error) (Subnet, uint64, error)
	// DeleteSubnet removes a subnet; ErrConflict while ports hold
	// addresses of it.
	DeleteSubnet(ctx context.Context, network, name string, ifMatch IfMatch) (uint64, error)

	// CreatePort binds an interface of a host to a network. The port's host
	// gets a local VLAN for the network when this is its first port there.
	// Port names are unique within a network; an interface of a host, a MAC
	// within a network and an IP within a network belong to one port.
	// Without a MAC the port gets one generated under the store's MAC
	// prefix, unused by any port of any network. On a network with subnets
	// a port without IPs gets one address of each subnet (the lowest free
	// pool address, or the EUI-64 address on slaac and dhcpv6-stateless
	// subnets), and given IPs must lie in a subnet and be none of its
	// network, broadcast or gateway addresses (ErrInvalid).
	CreatePort(ctx context.Context, p Port) (Port, uint64, error)
	// UpdatePort applies change to the stored port in one transaction (a VM
	// that moved, new addresses, admin state, description, tags). Moving
	// hosts releases and allocates local VLANs. Network and name cannot
	// change; local_vlan is the store's. An empty MAC keeps the stored one;
	// changed IPs are checked against the network's subnets like on create
	// (an update never allocates addresses).
	UpdatePort(ctx context.Context, network, name string, ifMatch IfMatch, change func(*Port) error) (Port, uint64, error)
	GetPort(ctx context.Context, network, name string) (Port, error)
	// ListPorts lists the ports of a network (ErrNotFound for an unknown
	// network), or of every network when network is "".
	ListPorts(ctx context.Context, network string) ([]Port, error)
	// DeletePort removes a port; the last port of a network on a host
	// releases the host's local VLAN for that network.
	DeletePort(ctx context.Context, network, name string, ifMatch IfMatch) (uint64, error)

	// Snapshot returns all hosts, networks and ports at one revision. Its
	// objects are shared with other snapshots (Snapshot's doc): read them.
	Snapshot(ctx context.Context) (Snapshot, error)
	// Revision is the revision of the last committed write (0 when empty).
	Revision(ctx context.Context) (uint64, error)
	// Watch returns a channel that receives the current revision at once and
	// then the newest revision after each committed write. Deliveries
	// coalesce: a slow reader sees only the latest revision, never an older
	// one after a newer one. The channel is closed when ctx ends or the
	// store is closed.
	Watch(ctx context.Context) <-chan uint64
	// Close releases the store; Watch channels are closed.
	Close() error

	RemoteStore
}

// store implements Store over a backend; all validation and allocation
// logic lives here, once, for every backend.
type store struct {
	be            backend
	macPrefix     MACPrefix // of generated MACs
	macLearnLimit int       // br-tun table 20 flow limit, see WithMACLearnLimit

	snaps snapshotCache // what Snapshot decoded last

	mu       sync.Mutex // guards watchers, last, closed
	watchers map[chan uint64]struct{}
	last     uint64
	closed   bool
}

// Option configures a Store when it is opened.
type Option func(*store)

// WithMACPrefix sets the prefix of the MACs generated for ports created
// without one (default DefaultMACPrefix). Replicas sharing an etcd store
// must use the same.
func WithMACPrefix(p MACPrefix) Option {
	return func(s *store) { s.macPrefix = p }
}

func newStore(be backend, opts ...Option) *store {
	s := &store{be: be, watchers: make(map[chan uint64]struct{})}
	for _, o := range opts {
		o(s)
	}
	return s
}

// IfMatch is a write's precondition on the object's revision_number: the
// write fails with ErrPrecondition unless the stored object's revision is
// one of them. nil means no precondition.
type IfMatch []uint64

// check fails unless rev satisfies m.
func (m IfMatch) check(rev uint64) error {
	if m == nil || slices.Contains(m, rev) {
		return nil
	}
	return preconditionFailed("the object is at revision %d, not the one If-Match names", rev)
}

// write runs fn in one transaction with the revision the transaction will
// commit as (objects fn stores carry it as their revision_number), bumps
// the store's revision when fn succeeds and tells watchers after the commit.
// The transaction keeps the macTable in step with fn's changes and refuses
// those that overfill a host's br-tun table 20 (macTableTxn).
func (s *store) write(ctx context.Context, fn func(t txn, rev uint64) error) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var rev uint64
	err := s.be.update(ctx, func(bt txn) error {
		t := s.macTableTxn(bt)
		cur, err := readRevision(t)
		if err != nil {
			return err
		}
		rev = cur + 1
		if err := fn(t, rev); err != nil {
			return err
		}
		if err := t.finish(); err != nil {
			return err
		}
		return writeRevision(t, rev)
	})
	if err != nil {
		return 0, err
	}
	s.publish(rev)
	return rev, nil
}

func (s *store) read(ctx context.Context, fn func(t txn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.be.view(ctx, fn)
}

// publish hands rev to every watcher, replacing an undelivered older one.
func (s *store) publish(rev uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rev <= s.last || s.closed {
		return
	}
	s.last = rev
	for ch := range s.watchers {
		offer(ch, rev)
	}
}

// offer puts rev into the one-slot channel ch, dropping what it held. Only
// called with s.mu held, so there is one sender at a time.
func offer(ch chan uint64, rev uint64) {
	select {
	case ch <- rev:
		return
	default:
	}
	select {
	case <-ch:
	default:
	}
	select {
	case ch <- rev:
	default:
	}
}

func (s *store) Watch(ctx context.Context) <-chan uint64 {
	ch := make(chan uint64, 1)
	rev, err := s.Revision(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || ctx.Err() != nil || (err != nil && !errors.Is(err, ErrUnavailable)) {
		close(ch)
		return ch
	}
	// An unavailable store (etcd down) delivers the revision once it is
	// readable again, through publish.
	if s.last > rev {
		rev = s.last
	}
	if err == nil || rev > 0 {
		ch <- rev
	}
	s.watchers[ch] = struct{}{}
	go func() {
		<-ctx.Done()
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, ok := s.watchers[ch]; ok {
			delete(s.watchers, ch)
			close(ch)
		}
	}()
	return ch
}

func (s *store) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		for ch := range s.watchers {
			delete(s.watchers, ch)
			close(ch)
		}
	}
	s.mu.Unlock()
	if err := s.be.close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

func (s *store) Revision(ctx context.Context) (uint64, error) {
	var rev uint64
	err := s.read(ctx, func(t txn) error {
		var err error
		rev, err = readRevision(t)
		return err
	})
	return rev, err
}

func (s *store) Snapshot(ctx context.Context) (Snapshot, error) {
	var snap Snapshot
	err := s.read(ctx, func(t txn) error {
		var err error
		snap, err = s.snaps.read(t)
		return err
	})
	if err != nil {
		return Snapshot{}, fmt.Errorf("snapshot: %w", err)
	}
	return snap, nil
}

// readSnapshot reads the whole state in t, decoding all of it.
func readSnapshot(t txn) (Snapshot, error) {
	return new(snapshotCache).read(t)
}

// sortPorts sorts ports by network, then name. Keys are "network/port" and
// '-' and '.' sort before '/', so key order is not that order.
func sortPorts(ports []Port) {
	slices.SortFunc(ports, func(a, b Port) int {
		return cmp.Or(cmp.Compare(a.Network, b.Network), cmp.Compare(a.Name, b.Name))
	})
}
