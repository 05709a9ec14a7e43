package main

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/brtun/brtun/topology"
	"github.com/brtun/brtun/topology/etcdtest"
)

// `brtun store migrate` moves a bbolt state file into etcd: the dry run
// lists it and writes nothing, the copy is what `brtun serve --store etcd`
// then serves (the same snapshot as the file), a second copy is refused
// and --force replaces it.
func TestCLIStoreMigrate(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	bolt, err := topology.OpenBoltStore(dir)
	require.NoError(t, err)
	_, _, err = bolt.CreateHost(ctx, topology.Host{Name: "h1", OVSDB: "tcp:198.51.100.1:6640", TunnelIP: "192.0.2.1"})
	require.NoError(t, err)
	_, _, err = bolt.CreateNetwork(ctx, topology.Network{Name: "blue", Type: "vxlan"})
	require.NoError(t, err)
	_, _, err = bolt.CreateSubnet(ctx, topology.Subnet{Network: "blue", Name: "v4", CIDR: "198.18.0.0/24"})
	require.NoError(t, err)
	_, _, err = bolt.CreatePort(ctx, topology.Port{Network: "blue", Name: "vm1", Host: "h1", Interface: "tap0"})
	require.NoError(t, err)
	want, err := bolt.Snapshot(ctx)
	require.NoError(t, err)
	require.NoError(t, bolt.Close())

	srv := etcdtest.Start(t)
	cli, err := topology.DialEtcd([]string{srv.Endpoint()}, nil, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cli.Close() })
	keys := func() int64 {
		resp, err := cli.Get(ctx, topology.DefaultEtcdPrefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
		require.NoError(t, err)
		return resp.Count
	}
	migrate := []string{"store", "migrate", "--data-dir", dir, "--etcd-endpoints", srv.Endpoint()}

	out := mustRun(t, append(migrate, "--dry-run")...)
	assert.Contains(t, out, "revision 4, 1 hosts, 1 networks, 1 subnets, 1 ports")
	assert.Regexp(t, `(?m)^host\s+h1\s+tunnel_ip 192.0.2.1\s`, out)
	assert.Regexp(t, `(?m)^network\s+blue\s+vxlan 1\s`, out)
	assert.Regexp(t, `(?m)^subnet\s+blue/v4\s+198.18.0.0/24\s`, out)
	assert.Regexp(t, `(?m)^port\s+blue/vm1\s+host h1 interface tap0 local_vlan 1\s+mac 02:62:74:00:00:01 ips 198.18.0.1\s`, out)
	assert.Contains(t, out, "etcd prefix /brtun/ at "+srv.Endpoint()+": empty")
	assert.Contains(t, out, "dry run: nothing written")
	assert.Zero(t, keys(), "a dry run writes nothing")

	out = mustRun(t, migrate...)
	assert.Contains(t, out, "etcd serves revision 4")
	assert.Positive(t, keys())

	// What brtun serve --store etcd opens serves the file's state.
	served, err := storeOptions{kind: "etcd", etcdEndpoints: srv.Endpoint(), etcdPrefix: topology.DefaultEtcdPrefix, replicaName: "test"}.
		open(t.TempDir(), "127.0.0.1:8080", nil)
	require.NoError(t, err)
	got, err := served.Snapshot(ctx)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	require.NoError(t, served.Close())

	// Not again, unless forced; the dry run says so too (as JSON here).
	_, errOut, err := run(t, migrate...)
	require.Error(t, err)
	assert.Contains(t, errOut, "already holds")
	out, _, err = run(t, append(migrate, "--dry-run", "-o", "json")...)
	require.Error(t, err)
	var rep migrateReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	assert.Positive(t, rep.TargetKeys)
	assert.Equal(t, want, rep.State)
	// Settings from the environment, as with brtun.env.
	t.Setenv("BRTUN_ETCD_ENDPOINTS", srv.Endpoint())
	out = mustRun(t, "store", "migrate", "--data-dir", dir, "--force")
	assert.Contains(t, out, "etcd serves revision 4")

	_, _, err = run(t, "store", "migrate", "--data-dir", dir, "--etcd-endpoints", "")
	assert.ErrorContains(t, err, "--etcd-endpoints is required")
	_, _, err = run(t, "store")
	assert.ErrorContains(t, err, "needs a subcommand")
}
