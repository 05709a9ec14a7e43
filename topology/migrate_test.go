package topology

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/brtun/brtun/topology/etcdtest"
)

// fillBoltStore gives a state file in dir hosts, networks with subnets,
// ports with generated MACs, allocated addresses and local VLANs, objects
// changed after their creation and freed ids, and returns its snapshot.
func fillBoltStore(t *testing.T, dir string, ports int) Snapshot {
	t.Helper()
	s, err := OpenBoltStore(dir)
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	ctx := context.Background()
	mustHost(t, s, "h1", "192.0.2.1")
	mustHost(t, s, "h2", "192.0.2.2")
	mustNetwork(t, s, "blue", VXLAN, 0)
	mustNetwork(t, s, "red", GRE, 77)
	mustNetwork(t, s, "gone", VXLAN, 0)
	mustSubnet(t, s, Subnet{Network: "blue", Name: "v4", CIDR: "198.18.0.0/24", GatewayIP: "198.18.0.1"})
	mustSubnet(t, s, Subnet{Network: "blue", Name: "v6", CIDR: "2001:db8::/64"})
	for i := range ports {
		host := []string{"h1", "h2"}[i%2]
		mustPort(t, s, Port{Network: "blue", Name: fmt.Sprintf("vm%d", i), Host: host, Interface: fmt.Sprintf("tb%d", i)})
	}
	mustPort(t, s, Port{Network: "red", Name: "r1", Host: "h2", Interface: "tr1", MAC: "02:00:00:00:00:01", IPs: []string{"198.18.5.1"}})
	_, _, err = s.UpdatePort(ctx, "blue", "vm0", nil, func(p *Port) error { p.Description = "moved"; p.Host = "h2"; return nil })
	require.NoError(t, err)
	_, err = s.DeletePort(ctx, "blue", "vm1", nil) // frees an address and a MAC
	require.NoError(t, err)
	_, err = s.DeleteNetwork(ctx, "gone", false, nil) // frees segment 2
	require.NoError(t, err)
	snap, err := s.Snapshot(ctx)
	require.NoError(t, err)
	return snap
}

func etcdKeyCount(t *testing.T, cli *clientv3.Client, prefix string) int64 {
	t.Helper()
	resp, err := cli.Get(context.Background(), prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err)
	return resp.Count
}

// A bbolt state file moved into etcd: a dry run writes nothing; the copy
// serves the same snapshot (same revision, objects, revision numbers,
// local VLANs, subnets), and the next writes on both stores allocate the
// same MACs, addresses, VLANs and segments and get the same revision. A
// non-empty target is refused without force and replaced with it; a
// state file in use is refused.
func TestMigrateBoltToEtcd(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	want := fillBoltStore(t, dir, 150) // more keys than one etcd transaction takes
	require.NotZero(t, want.Revision)
	srv := etcdtest.Start(t)
	cli := etcdClient(t, srv)
	target := EtcdOptions{Client: cli, Prefix: "/migrated/"}

	dry, err := MigrateBoltToEtcd(ctx, dir, target, MigrateOptions{DryRun: true})
	require.NoError(t, err)
	assert.Equal(t, want, dry.Snapshot, "the dry run lists the state")
	assert.Greater(t, dry.Keys, DefaultEtcdMaxTxnOps)
	assert.Zero(t, dry.TargetKeys)
	assert.Zero(t, dry.Transactions)
	assert.Zero(t, etcdKeyCount(t, cli, "/migrated/"), "a dry run writes nothing")

	res, err := MigrateBoltToEtcd(ctx, dir, target, MigrateOptions{})
	require.NoError(t, err)
	assert.Equal(t, dry.Keys, res.Keys)
	assert.Equal(t, int64(res.Keys), etcdKeyCount(t, cli, "/migrated/"))
	assert.Greater(t, res.Transactions, 1)

	migrated := newTestEtcdStore(t, cli, "/migrated/")
	got, err := migrated.Snapshot(ctx)
	require.NoError(t, err)
	assert.Equal(t, want, got, "etcd serves the state file's snapshot")
	viewMACTable(t, migrated, "migrated")
	vm0, err := migrated.GetPort(ctx, "blue", "vm0")
	require.NoError(t, err)
	assert.Equal(t, "moved", vm0.Description)
	assert.Less(t, vm0.RevisionNumber, want.Revision+1)

	// The same next writes on the state file and on etcd give the same
	// results: allocation state (hints, MAC and address claims) came along.
	bolt, err := OpenBoltStore(dir)
	require.NoError(t, err)
	defer func() { require.NoError(t, bolt.Close()) }()
	next := func(s Store) (Port, Network, uint64) {
		p, _, err := s.CreatePort(ctx, Port{Network: "blue", Name: "new", Host: "h1", Interface: "tnew"})
		require.NoError(t, err)
		n, rev, err := s.CreateNetwork(ctx, Network{Name: "next", Type: VXLAN})
		require.NoError(t, err)
		return p, n, rev
	}
	bp, bn, brev := next(bolt)
	ep, en, erev := next(migrated)
	assert.Equal(t, bp, ep, "the same MAC, addresses and VLAN")
	assert.Equal(t, uint32(2), en.SegmentID, "the freed segment")
	assert.Equal(t, bn, en)
	assert.Equal(t, want.Revision+2, erev, "revisions go on from the state file's")
	assert.Equal(t, brev, erev)
	viewMACTable(t, bolt, "state file after the next writes")
	viewMACTable(t, migrated, "etcd after the next writes")

	// A non-empty target is refused, dry or not, and left as it is.
	require.NoError(t, bolt.Close())
	for _, dry := range []bool{true, false} {
		_, err = MigrateBoltToEtcd(ctx, t.TempDir(), target, MigrateOptions{DryRun: dry})
		require.Error(t, err, "no state file")
		_, err = MigrateBoltToEtcd(ctx, dir, target, MigrateOptions{DryRun: dry})
		require.ErrorIs(t, err, ErrConflict)
		assert.Contains(t, err.Error(), "already holds")
	}
	rev, err := migrated.Revision(ctx)
	require.NoError(t, err)
	assert.Equal(t, erev, rev, "the refused migrations changed nothing")

	// With force it is replaced by the state file (now with "new" and "next").
	res, err = MigrateBoltToEtcd(ctx, dir, target, MigrateOptions{Force: true})
	require.NoError(t, err)
	assert.Positive(t, res.TargetKeys)
	assert.Equal(t, int64(res.Keys), etcdKeyCount(t, cli, "/migrated/"), "only the state file's keys are left")
	bolt, err = OpenBoltStore(dir)
	require.NoError(t, err)
	want, err = bolt.Snapshot(ctx)
	require.NoError(t, err)
	got, err = migrated.Snapshot(ctx)
	require.NoError(t, err)
	assert.Equal(t, want, got)

	// A state file in use (brtun running on it) is not read.
	_, err = MigrateBoltToEtcd(ctx, dir, EtcdOptions{Client: cli, Prefix: "/other/"}, MigrateOptions{})
	require.ErrorContains(t, err, "still running")
	assert.Zero(t, etcdKeyCount(t, cli, "/other/"))
}
