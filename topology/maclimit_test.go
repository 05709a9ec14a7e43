package topology

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRegisteredMACLimit(t *testing.T) {
	assert.Equal(t, 0, RegisteredMACLimit(0), "unbounded")
	assert.Equal(t, 30, RegisteredMACLimit(40))
	assert.Equal(t, 12288+1, RegisteredMACLimit(16385))
}

// With --mac-learn-limit 8, a host's table 20 may hold 6 registered
// entries: the miss flow and 5 remote MACs of the networks it carries.
func TestMACTableLimitRefusesPorts(t *testing.T) {
	backendsWith(t, []Option{WithMACLearnLimit(8)}, func(t *testing.T, s Store) {
		ctx := context.Background()
		mustHost(t, s, "h1", "192.0.2.1")
		mustHost(t, s, "h2", "192.0.2.2")
		mustHost(t, s, "h3", "192.0.2.3")
		mustNetwork(t, s, "blue", VXLAN, 0)
		mustNetwork(t, s, "red", VXLAN, 0)
		port := func(net, name, host string, i int) Port {
			return Port{Network: net, Name: name, Host: host, Interface: fmt.Sprintf("tap-%s-%d", net, i), MAC: fmt.Sprintf("02:00:00:00:%02x:%02x", len(net), i)}
		}
		// h1 carries blue; h2 has 5 blue ports: h1's table 20 is full.
		mustPort(t, s, port("blue", "a", "h1", 0))
		for i := 1; i <= 5; i++ {
			mustPort(t, s, port("blue", fmt.Sprint("b", i), "h2", i))
		}
		_, _, err := s.CreatePort(ctx, port("blue", "b6", "h2", 6))
		require.ErrorIs(t, err, ErrConflict)
		assert.Contains(t, err.Error(), `host "h1" would hold 7 registered entries in br-tun table 20`)
		assert.Contains(t, err.Error(), "--mac-learn-limit is 8")
		_, err = s.GetPort(ctx, "blue", "b6")
		require.ErrorIs(t, err, ErrNotFound, "nothing stored")

		// The same port on h1 adds nothing to h1's table 20 (its own
		// ports are local) and h2 sees only h1's 2 blue ports: accepted.
		mustPort(t, s, port("blue", "b6", "h1", 6))

		// Red's remote ports count only on hosts carrying red: h3 fills
		// up with red ports while h1 does not carry red.
		for i := 1; i <= 5; i++ {
			mustPort(t, s, port("red", fmt.Sprint("r", i), "h3", i))
		}
		// h1 holds 1 + 5 blue MACs (on h2): a red port on h1 would bring
		// red's 5 MACs there.
		_, _, err = s.CreatePort(ctx, port("red", "r-h1", "h1", 9))
		require.ErrorIs(t, err, ErrConflict)

		// Moving a port onto a full host is refused like creating one, and
		// moving one away (or deleting) is always accepted.
		_, _, err = s.UpdatePort(ctx, "red", "r1", nil, func(p *Port) error { p.Host = "h1"; return nil })
		require.ErrorIs(t, err, ErrConflict)
		_, _, err = s.UpdatePort(ctx, "blue", "b1", nil, func(p *Port) error { p.Host = "h1"; return nil })
		require.NoError(t, err, "b1 leaves h2 for h1: h1's load drops")
		// h1 now holds 1 + 4: with red down to one port (r1 on h3), a red
		// port on h1 fits (1 + 4 + 1 = 6).
		for i := 2; i <= 5; i++ {
			_, err := s.DeletePort(ctx, "red", fmt.Sprint("r", i), nil)
			require.NoError(t, err)
		}
		mustPort(t, s, port("red", "r-h1", "h1", 9))

		// Remote VTEP MACs count on every host carrying their networks.
		_, _, err = s.CreateRemoteVTEP(ctx, RemoteVTEP{Name: "tor", TunnelIP: "192.0.2.50", Networks: []string{"red"},
			MACs: []RemoteMAC{{MAC: "02:00:00:00:aa:01"}}})
		require.ErrorIs(t, err, ErrConflict, "h1 holds 1 + 4 blue + 1 red = 6 already")
		v, _, err := s.CreateRemoteVTEP(ctx, RemoteVTEP{Name: "tor", TunnelIP: "192.0.2.50", Networks: []string{"blue"}})
		require.NoError(t, err, "without MACs it adds nothing")
		_, _, err = s.UpdateRemoteVTEP(ctx, v.Name, nil, func(v *RemoteVTEP) error {
			v.MACs = []RemoteMAC{{MAC: "02:00:00:00:aa:01"}}
			return nil
		})
		require.ErrorIs(t, err, ErrConflict)
	})
}

// Without a limit nothing is refused.
func TestMACTableUnbounded(t *testing.T) {
	s := NewMemoryStore()
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	mustHost(t, s, "h1", "192.0.2.1")
	mustHost(t, s, "h2", "192.0.2.2")
	mustNetwork(t, s, "blue", VXLAN, 0)
	mustPort(t, s, Port{Network: "blue", Name: "a", Host: "h1", Interface: "tap0", MAC: "02:00:00:00:00:01"})
	for i := 1; i <= 20; i++ {
		mustPort(t, s, Port{Network: "blue", Name: fmt.Sprint("b", i), Host: "h2", Interface: fmt.Sprint("tap", i), MAC: fmt.Sprintf("02:00:00:00:01:%02x", i)})
	}
}
