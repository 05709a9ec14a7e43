package ovsdb

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// bindMany binds interfaces tap1..tapN on br-int, VLAN i for tapi, in one
// transaction: 2n Port and Interface rows. The in-memory server takes
// seconds for thousands of rows, more on a busy machine.
func bindMany(t testing.TB, c *Client, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	require.NoError(t, c.Update(ctx, func(txn *Txn) error {
		for i := 1; i <= n; i++ {
			name := fmt.Sprintf("tap%d", i)
			if err := txn.BindPort(Binding{Interface: name, Port: "p-" + name, Network: "blue", VLAN: i}); err != nil {
				return err
			}
		}
		return nil
	}))
}

// BenchmarkFacts reads the facts of a host with a full br-int: 4094 bound
// ports, about 8200 rows in the cache.
func BenchmarkFacts(b *testing.B) {
	m := newMemOVS(b, memOptions{})
	// No logger: a test logger would print the 4094-binding comment.
	c, err := Dial(ctxT(b), Options{Address: m.addr, ProbeInterval: time.Hour})
	require.NoError(b, err)
	b.Cleanup(c.Close)
	require.NoError(b, c.EnsureHost(ctxT(b), HostSpec{Name: "h1"}))
	bindMany(b, c, 4094)
	settle(b, c)
	require.Len(b, c.Facts().Bindings, 4094)
	m.SetVswitchd(false) // its loop would snapshot the database every 5ms
	for b.Loop() {
		c.Facts()
	}
}

// BenchmarkOutdated is the check hold makes after libovsdb dropped change
// events (a comparison of the view with the cache), on the same host as
// BenchmarkFacts.
func BenchmarkOutdated(b *testing.B) {
	m := newMemOVS(b, memOptions{})
	c, err := Dial(ctxT(b), Options{Address: m.addr, ProbeInterval: time.Hour})
	require.NoError(b, err)
	b.Cleanup(c.Close)
	require.NoError(b, c.EnsureHost(ctxT(b), HostSpec{Name: "h1"}))
	bindMany(b, c, 4094)
	settle(b, c)
	m.SetVswitchd(false)
	c.mu.Lock()
	s := c.sess
	c.mu.Unlock()
	for b.Loop() {
		require.False(b, s.outdated())
	}
}
