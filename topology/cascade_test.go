package topology

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/brtun/brtun/topology/etcdtest"
)

// checkConsistent fails the test unless the state in tx holds together:
// every port's host and network exist, its binding counts it and carries
// its local VLAN, its interface and MAC claims point at it, its addresses
// lie in subnets of its network, and no claim, binding or VLAN is left
// without its port, and the stored MAC table is what a full scan counts.
// at names the state in messages.
func checkConsistent(t *testing.T, tx txn, at string) {
	t.Helper()
	snap, err := readSnapshot(tx)
	require.NoError(t, err, at)
	hosts, networks := map[string]bool{}, map[string]bool{}
	for _, h := range snap.Hosts {
		hosts[h.Name] = true
	}
	for _, n := range snap.Networks {
		networks[n.Name] = true
	}
	subnets := map[string][]netip.Prefix{}
	for _, s := range snap.Subnets {
		assert.True(t, networks[s.Network], "%s: subnet %s/%s without its network", at, s.Network, s.Name)
		subnets[s.Network] = append(subnets[s.Network], netip.MustParsePrefix(s.CIDR))
	}
	perBinding := map[string]int{}
	macs := 0
	for _, p := range snap.Ports {
		self := key(p.Network, p.Name)
		assert.True(t, hosts[p.Host], "%s: port %s on missing host %s", at, self, p.Host)
		assert.True(t, networks[p.Network], "%s: port %s in missing network", at, self)
		var b binding
		found, err := getJSON(tx, bucketBindings, key(p.Host, p.Network), &b)
		require.NoError(t, err)
		if assert.True(t, found, "%s: port %s has no binding", at, self) {
			assert.Equal(t, p.LocalVLAN, b.VLAN, "%s: port %s", at, self)
		}
		perBinding[key(p.Host, p.Network)]++
		owner, err := tx.get(bucketIfaces, key(p.Host, p.Interface))
		require.NoError(t, err)
		assert.Equal(t, self, string(owner), "%s: interface claim of %s", at, self)
		if p.MAC != "" {
			macs++
			owner, err := tx.get(bucketMACs, macKey(p))
			require.NoError(t, err)
			assert.Equal(t, self, string(owner), "%s: MAC claim of %s", at, self)
		}
		for _, ip := range p.IPs {
			addr := netip.MustParseAddr(ip)
			in := false
			for _, c := range subnets[p.Network] {
				in = in || c.Contains(addr)
			}
			assert.True(t, in, "%s: port %s holds %s of no subnet", at, self, ip)
		}
	}
	bindings, err := tx.scan(bucketBindings, "")
	require.NoError(t, err)
	for _, kv := range bindings {
		var b binding
		require.NoError(t, decodeStored(kv.val, &b))
		assert.Equal(t, perBinding[kv.key], b.Ports, "%s: binding %s counts its ports", at, kv.key)
		host, _, _ := strings.Cut(kv.key, "/")
		owner, err := tx.get(bucketVLANs, vlanKey(host, b.VLAN))
		require.NoError(t, err)
		assert.Equal(t, b.Network, string(owner), "%s: VLAN of binding %s", at, kv.key)
	}
	assert.Len(t, bindings, len(perBinding), "%s: bindings", at)
	for bk, want := range map[bucket]int{bucketIfaces: len(snap.Ports), bucketMACs: macs, bucketVLANs: len(perBinding)} {
		kvs, err := tx.scan(bk, "")
		require.NoError(t, err)
		assert.Len(t, kvs, want, "%s: keys in %s", at, bk)
	}
	checkMACTable(t, tx, at)
}

// etcdRevision is etcd's current revision.
func etcdRevision(t *testing.T, cli *clientv3.Client) int64 {
	t.Helper()
	resp, err := cli.Get(context.Background(), "/")
	require.NoError(t, err)
	return resp.Header.Revision
}

// checkEveryState checks the store's state at every etcd revision in
// (from, to]: every one a cascade delete went through.
func checkEveryState(t *testing.T, s Store, from, to int64) {
	t.Helper()
	be := s.(*store).be.(*etcdBackend)
	for rev := from + 1; rev <= to; rev++ {
		checkConsistent(t, &etcdTxn{ctx: context.Background(), b: be, rev: rev}, fmt.Sprintf("etcd revision %d", rev))
	}
}

// A cascade delete of a host, then of a network, with 300 ports each works
// on etcd's default --max-txn-ops (128), which the embedded etcd enforces
// (checked first). It takes several transactions, each leaving a
// consistent state; at the end nothing of the deleted ports is left, the
// ports of other hosts are untouched, and freed local VLANs and segments
// are given out again.
func TestEtcdCascadeDeleteHundredsOfPorts(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := etcdClient(t, srv)
	ctx := context.Background()

	// The limit is real: 128 operations commit, 129 are refused.
	txnOf := func(n int) error {
		ops := make([]clientv3.Op, n)
		for i := range ops {
			ops[i] = clientv3.OpPut(fmt.Sprintf("/limit-check/%d", i), "x")
		}
		_, err := cli.Txn(ctx).Then(ops...).Commit()
		return err
	}
	require.NoError(t, txnOf(DefaultEtcdMaxTxnOps))
	require.ErrorContains(t, txnOf(DefaultEtcdMaxTxnOps+1), "too many operations")

	s := newTestEtcdStore(t, cli, DefaultEtcdPrefix)
	for i, h := range []string{"h1", "h2", "h3"} {
		mustHost(t, s, h, fmt.Sprintf("192.0.2.%d", i+1))
	}
	mustNetwork(t, s, "blue", VXLAN, 0)
	mustNetwork(t, s, "red", GRE, 0)
	mustSubnet(t, s, Subnet{Network: "blue", Name: "v4", CIDR: "198.18.0.0/22"})
	mustSubnet(t, s, Subnet{Network: "blue", Name: "v6", CIDR: "2001:db8::/64"})
	mustSubnet(t, s, Subnet{Network: "red", Name: "v4", CIDR: "198.18.8.0/22"})
	port := func(network, host string, i int) {
		mustPort(t, s, Port{Network: network, Name: fmt.Sprintf("%s-%d", host, i), Host: host, Interface: fmt.Sprintf("t-%s-%d", network, i)})
	}
	// h1: 200 ports in blue, 100 in red; h2: 10 in blue, which stay.
	for i := range 300 {
		port(map[bool]string{true: "blue", false: "red"}[i < 200], "h1", i)
	}
	for i := range 10 {
		port("blue", "h2", 1000+i)
	}

	revBefore, err := s.Revision(ctx)
	require.NoError(t, err)
	etcdBefore := etcdRevision(t, cli)
	rev, err := s.DeleteHost(ctx, "h1", true, nil)
	require.NoError(t, err)
	etcdAfter := etcdRevision(t, cli)
	assert.Greater(t, rev, revBefore+1, "300 ports take several transactions")
	assert.Equal(t, int64(rev-revBefore), etcdAfter-etcdBefore, "one etcd revision per brtun revision")
	t.Logf("deleting host h1 with 300 ports took %d transactions", rev-revBefore)
	checkEveryState(t, s, etcdBefore, etcdAfter)

	snap, err := s.Snapshot(ctx)
	require.NoError(t, err)
	assert.Equal(t, rev, snap.Revision)
	_, found := snap.Host("h1")
	assert.False(t, found)
	require.Len(t, snap.Ports, 10, "h2's ports stay")
	for _, p := range snap.Ports {
		assert.Equal(t, "h2", p.Host)
		assert.Equal(t, uint16(1), p.LocalVLAN)
	}
	assert.Len(t, snap.Networks, 2)
	assert.Len(t, snap.Subnets, 3)

	// Network blue with 300 ports (h2's 10 and 290 more on h2 and h3).
	for i := range 290 {
		port("blue", map[bool]string{true: "h2", false: "h3"}[i%2 == 0], i)
	}
	port("red", "h3", 5000) // stays
	revBefore, err = s.Revision(ctx)
	require.NoError(t, err)
	etcdBefore = etcdRevision(t, cli)
	rev, err = s.DeleteNetwork(ctx, "blue", true, nil)
	require.NoError(t, err)
	etcdAfter = etcdRevision(t, cli)
	assert.Greater(t, rev, revBefore+1, "300 ports take several transactions")
	t.Logf("deleting network blue with 300 ports took %d transactions", rev-revBefore)
	checkEveryState(t, s, etcdBefore, etcdAfter)

	snap, err = s.Snapshot(ctx)
	require.NoError(t, err)
	require.Len(t, snap.Networks, 1)
	assert.Equal(t, "red", snap.Networks[0].Name)
	require.Len(t, snap.Subnets, 1, "blue's subnets went with it")
	assert.Equal(t, "red", snap.Subnets[0].Network)
	require.Len(t, snap.Ports, 1)
	assert.Equal(t, uint16(2), snap.Ports[0].LocalVLAN, "h3's port in red keeps its VLAN (blue had 1)")

	// What the deletes freed is given out again: blue's segment and h2's VLAN.
	n := mustNetwork(t, s, "green", VXLAN, 0)
	assert.Equal(t, uint32(1), n.SegmentID, "blue's segment is free")
	p := mustPort(t, s, Port{Network: "red", Name: "again", Host: "h2", Interface: "t-again"})
	assert.Equal(t, uint16(1), p.LocalVLAN, "h2's VLAN of blue is free")
}

// Where transactions have no limit (bbolt, memory), a cascade delete is
// one write, as before.
func TestCascadeDeleteIsOneWriteWithoutLimit(t *testing.T) {
	bolt, err := OpenBoltStore(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, bolt.Close()) })
	for name, s := range map[string]Store{"memory": NewMemoryStore(), "bolt": bolt} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			mustHost(t, s, "h1", "192.0.2.1")
			mustNetwork(t, s, "blue", VXLAN, 0)
			for i := range 300 {
				mustPort(t, s, Port{Network: "blue", Name: fmt.Sprintf("p%d", i), Host: "h1", Interface: fmt.Sprintf("t%d", i)})
			}
			before, err := s.Revision(ctx)
			require.NoError(t, err)
			rev, err := s.DeleteNetwork(ctx, "blue", true, nil)
			require.NoError(t, err)
			assert.Equal(t, before+1, rev)
			ports, err := s.ListPorts(ctx, "")
			require.NoError(t, err)
			assert.Empty(t, ports)
		})
	}
}
