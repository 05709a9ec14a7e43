package ovsdb

import (
	"context"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/brtun/brtun/ovsdb/ovsdbtest"
)

// memOVS is the in-memory OVSDB server of package ovsdbtest, with what
// this package's tests read of it: the raw client, the proxy the client
// under test goes through and the database as a state.
type memOVS struct {
	*ovsdbtest.Server
	addr  string
	raw   client.Client
	proxy *ovsdbtest.Proxy
}

type memOptions = ovsdbtest.Options

func newMemOVS(t testing.TB, o memOptions) *memOVS {
	t.Helper()
	s := ovsdbtest.Start(t, o)
	return &memOVS{Server: s, addr: s.Addr(), raw: s.Raw(), proxy: s.Proxy()}
}

// dial connects a Client under test to the server, with its echo probe
// off for all practical purposes so that no test depends on its timing;
// TestProbeDetectsHungServer uses dialProbing.
func (m *memOVS) dial(t testing.TB) *Client {
	t.Helper()
	return m.dialProbing(t, time.Hour, 10*time.Second)
}

// dialProbing dials with the given echo probe interval and connection
// attempt timeout.
func (m *memOVS) dialProbing(t testing.TB, probe, connectTimeout time.Duration) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := Dial(ctx, Options{
		Address: m.addr, Logger: zaptest.NewLogger(t),
		ProbeInterval: probe, ConnectTimeout: connectTimeout, MaxBackoff: 100 * time.Millisecond,
	})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

// state is the database as the raw client sees it.
func (m *memOVS) state(t testing.TB) *state {
	t.Helper()
	st, err := snapshot(m.raw.Cache())
	require.NoError(t, err)
	return st
}
