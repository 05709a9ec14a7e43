package topology

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/brtun/brtun/topology/etcdtest"
)

func etcdClient(t *testing.T, srv *etcdtest.Server) *clientv3.Client {
	t.Helper()
	cli, err := DialEtcd([]string{srv.Endpoint()}, nil, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

func newTestEtcdStore(t *testing.T, cli *clientv3.Client, prefix string, opts ...Option) Store {
	t.Helper()
	s, err := NewEtcdStore(EtcdOptions{Client: cli, Prefix: prefix, RequestTimeout: time.Second}, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

// Two replicas (separate clients and stores on one etcd) write at the same
// time: allocations never collide, a name created on both is stored once,
// and both see the same state at the same revision.
func TestEtcdReplicasWriteConcurrently(t *testing.T) {
	srv := etcdtest.Start(t)
	replicas := []Store{
		newTestEtcdStore(t, etcdClient(t, srv), DefaultEtcdPrefix),
		newTestEtcdStore(t, etcdClient(t, srv), DefaultEtcdPrefix),
	}
	ctx := context.Background()
	mustHost(t, replicas[0], "h1", "192.0.2.1")
	const perReplica = 15
	var mu sync.Mutex
	revs := map[uint64]int{}
	sharedWins := map[string]int{}
	var wg sync.WaitGroup
	for r, s := range replicas {
		for i := range perReplica {
			wg.Go(func() {
				name := fmt.Sprintf("r%d-n%d", r, i)
				_, rev1, err := s.CreateNetwork(ctx, Network{Name: name, Type: VXLAN})
				assert.NoError(t, err)
				_, rev2, err := s.CreatePort(ctx, Port{Network: name, Name: "p", Host: "h1", Interface: fmt.Sprintf("t%d-%d", r, i)})
				assert.NoError(t, err)
				// Both replicas create "shared-i" with the same GRE segment:
				// exactly one may win, the other sees a conflict.
				shared := fmt.Sprintf("shared-%d", i)
				_, rev3, err := s.CreateNetwork(ctx, Network{Name: shared, Type: GRE, SegmentID: uint32(100 + i)})
				mu.Lock()
				defer mu.Unlock()
				revs[rev1]++
				revs[rev2]++
				if err == nil {
					sharedWins[shared]++
					revs[rev3]++
				} else {
					assert.ErrorIs(t, err, ErrConflict)
				}
			})
		}
	}
	wg.Wait()

	for rev, n := range revs {
		assert.Equal(t, 1, n, "revision %d returned %d times", rev, n)
	}
	assert.Len(t, sharedWins, perReplica)
	for name, n := range sharedWins {
		assert.Equal(t, 1, n, "%s created %d times", name, n)
	}
	snaps := make([]Snapshot, len(replicas))
	for i, s := range replicas {
		var err error
		snaps[i], err = s.Snapshot(ctx)
		require.NoError(t, err)
	}
	assert.Equal(t, snaps[0], snaps[1], "both replicas read the same state")
	// host + 2 writes per private network + one write per shared name
	assert.Equal(t, uint64(1+2*2*perReplica+perReplica), snaps[0].Revision)
	segs := map[string]bool{}
	for _, n := range snaps[0].Networks {
		k := segmentKey(n.Type, n.SegmentID)
		assert.False(t, segs[k], "segment %s used twice", k)
		segs[k] = true
	}
	assert.Len(t, snaps[0].Networks, 2*perReplica+perReplica)
	vlans := map[uint16]bool{}
	for _, p := range snaps[0].Ports {
		assert.False(t, vlans[p.LocalVLAN], "local VLAN %d used twice", p.LocalVLAN)
		vlans[p.LocalVLAN] = true
	}
	assert.Len(t, vlans, 2*perReplica)
}

// A replica's Watch reports writes made through another replica.
func TestEtcdWatchFollowsOtherReplicas(t *testing.T) {
	srv := etcdtest.Start(t)
	a := newTestEtcdStore(t, etcdClient(t, srv), DefaultEtcdPrefix)
	b := newTestEtcdStore(t, etcdClient(t, srv), DefaultEtcdPrefix)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mustHost(t, a, "h1", "192.0.2.1")
	ch := a.Watch(ctx)
	assert.Equal(t, uint64(1), receive(t, ch))
	mustNetwork(t, b, "blue", VXLAN, 0)
	assert.Equal(t, uint64(2), receive(t, ch), "a write through b reaches a's watchers")
	n, err := a.GetNetwork(ctx, "blue")
	require.NoError(t, err)
	assert.Equal(t, uint32(1), n.SegmentID)
}

// Stores under different prefixes of one etcd are independent.
func TestEtcdPrefixesAreSeparate(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := etcdClient(t, srv)
	a := newTestEtcdStore(t, cli, "/one")
	b := newTestEtcdStore(t, cli, "/two/")
	mustHost(t, a, "h1", "192.0.2.1")
	mustHost(t, b, "h1", "192.0.2.1")
	hosts, err := b.ListHosts(context.Background())
	require.NoError(t, err)
	assert.Len(t, hosts, 1)
}

// With etcd down, writes and reads fail with ErrUnavailable and nothing is
// stored; a Watch stays open, and once etcd is back everything works and
// the watch reports new writes.
func TestEtcdUnavailable(t *testing.T) {
	srv := etcdtest.Start(t)
	s := newTestEtcdStore(t, etcdClient(t, srv), DefaultEtcdPrefix)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mustHost(t, s, "h1", "192.0.2.1")
	ch := s.Watch(ctx)
	assert.Equal(t, uint64(1), receive(t, ch))

	srv.Stop()
	_, _, err := s.CreateNetwork(ctx, Network{Name: "blue", Type: VXLAN})
	require.ErrorIs(t, err, ErrUnavailable)
	_, err = s.ListHosts(ctx)
	require.ErrorIs(t, err, ErrUnavailable)
	// A watch opened during the outage still starts at the last revision.
	during := s.Watch(ctx)
	assert.Equal(t, uint64(1), receive(t, during))

	srv.Start()
	var n Network
	require.Eventually(t, func() bool {
		n, _, err = s.CreateNetwork(ctx, Network{Name: "blue", Type: VXLAN})
		return err == nil
	}, 20*time.Second, 100*time.Millisecond, "write after etcd returned: %v", err)
	assert.Equal(t, uint32(1), n.SegmentID)
	assert.Equal(t, uint64(2), receive(t, ch), "the watch from before the outage goes on")
	assert.Equal(t, uint64(2), receive(t, during))
	snap, err := s.Snapshot(ctx)
	require.NoError(t, err)
	assert.Len(t, snap.Networks, 1, "the failed write stored nothing")
	assert.Len(t, snap.Hosts, 1)
}
