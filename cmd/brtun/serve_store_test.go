package main

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/topology"
)

func TestStoreFlagsAreChecked(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    storeOptions
		want string
	}{
		{"unknown store", storeOptions{kind: "zk"}, `--store must be bolt or etcd, got "zk"`},
		{"etcd flag with bolt", storeOptions{kind: "bolt", etcdEndpoints: "http://127.0.0.1:2379"}, "need --store etcd"},
		{"replica name with bolt", storeOptions{kind: "bolt", replicaName: "a"}, "need --store etcd"},
		{"etcd without endpoints", storeOptions{kind: "etcd", etcdEndpoints: " , "}, "--store etcd needs --etcd-endpoints"},
		{"key without cert", storeOptions{kind: "etcd", etcdEndpoints: "https://127.0.0.1:2379", etcdKey: "/nonexistent/key.pem"}, "--etcd-tls-cert and --etcd-tls-key go together"},
		{"unreadable CA", storeOptions{kind: "etcd", etcdEndpoints: "https://127.0.0.1:2379", etcdCA: "/nonexistent/ca.pem"}, "--etcd-tls-ca"},
		{"multicast MAC prefix", storeOptions{kind: "bolt", macPrefix: "01:00:5e"}, "--mac-prefix"},
		{"universal MAC prefix", storeOptions{kind: "bolt", macPrefix: "00:16:3e"}, "locally administered"},
		{"bad replica name", storeOptions{kind: "etcd", etcdEndpoints: "http://127.0.0.1:2379", etcdPrefix: topology.DefaultEtcdPrefix, replicaName: "a/b"}, "--replica-name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tc.o.open(t.TempDir(), "127.0.0.1:8080", nil)
			require.Error(t, err)
			assert.Nil(t, s)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// With bolt, the cluster is this one replica mastering every bridge.
func TestBoltClusterStatus(t *testing.T) {
	o := storeOptions{kind: "bolt"}
	s, err := o.open(t.TempDir(), "127.0.0.1:8080", nil)
	require.NoError(t, err)
	defer s.Close()
	ctx := context.Background()
	_, _, err = s.CreateHost(ctx, topology.Host{Name: "h1", OVSDB: "tcp:198.51.100.1:6640", TunnelIP: "192.0.2.1"})
	require.NoError(t, err)
	st, err := s.ClusterStatus(ctx)
	require.NoError(t, err)
	assert.Equal(t, "bolt", st.Store)
	assert.Contains(t, st.Self, "@127.0.0.1:8080")
	assert.Equal(t, map[string]string{"h1/br-int": st.Self, "h1/br-tun": st.Self}, st.Masters)
	require.Len(t, st.Replicas, 1)
	assert.True(t, st.Replicas[0].Healthy)
	assert.Equal(t, 2, st.Replicas[0].Bridges)
}

// --mac-prefix reaches the store: a port without a MAC gets one under it.
func TestMACPrefixFlag(t *testing.T) {
	o := storeOptions{kind: "bolt", macPrefix: "0e:aa"}
	s, err := o.open(t.TempDir(), "127.0.0.1:8080", nil)
	require.NoError(t, err)
	defer s.Close()
	ctx := context.Background()
	_, _, err = s.CreateHost(ctx, topology.Host{Name: "h1", OVSDB: "tcp:198.51.100.1:6640", TunnelIP: "192.0.2.1"})
	require.NoError(t, err)
	_, _, err = s.CreateNetwork(ctx, topology.Network{Name: "blue", Type: "vxlan"})
	require.NoError(t, err)
	p, _, err := s.CreatePort(ctx, topology.Port{Network: "blue", Name: "vm1", Host: "h1", Interface: "tap0"})
	require.NoError(t, err)
	assert.Equal(t, "0e:aa:00:00:00:01", p.MAC)
}
