//go:build integration

package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/topology"
)

// TestReleasedVLANForgetsLearnedEntries: when the last port of a network
// leaves a host, its local VLAN is released and the learned table-20 entries
// of that network go with it, so a network that reuses the VLAN never
// inherits them (they would send its frames with the old tun_id).
func TestReleasedVLANForgetsLearnedEntries(t *testing.T) {
	s := newScenario(t, 2, daemonOptions{Advertise: true})
	h1, h2 := s.lab.Hosts[0], s.lab.Hosts[1]
	s.network("red", topology.VXLAN, 6001)
	r1 := s.vm(h1, "r1", "red", "02:00:00:00:0e:01", "198.18.0.1/24")
	r2 := s.vm(h2, "r2", "red", "02:00:00:00:0e:02", "198.18.0.2/24")
	s.waitApplied(20 * time.Second)
	ok, out := r1.Ping(r2.IP, 3)
	require.True(t, ok, "r1 -> r2: %s", out)

	vlan := r1.Port.LocalVLAN
	redLearned := fmt.Sprintf("cookie=0x%x,", flows.LearnedCookie(topology.VXLAN, 6001, vlan))
	learned := func() int {
		out, err := h1.Ofctl("dump-flows", "br-tun", "table=20")
		require.NoError(t, err)
		return strings.Count(out, redLearned)
	}
	require.Positive(t, learned(), "positive control: red's traffic taught h1 a MAC in VLAN %d", vlan)

	s.brtun.MustDo(204, "DELETE", "/v1/networks/red/ports/r1?wait=20s", nil, nil)
	require.Zero(t, learned(), "releasing VLAN %d on h1 must delete red's learned entries", vlan)

	s.network("blue", topology.VXLAN, 6002)
	b1 := s.vm(h1, "b1", "blue", "02:00:00:00:0b:01", "198.18.0.1/24")
	require.Equal(t, vlan, b1.Port.LocalVLAN, "blue reuses the released VLAN on h1")
	b2 := s.vm(h2, "b2", "blue", "02:00:00:00:0b:02", "198.18.0.2/24")
	s.waitApplied(20 * time.Second)
	ok, out = b1.Ping(b2.IP, 3)
	require.True(t, ok, "b1 -> b2 on the reused VLAN: %s", out)
	require.Zero(t, learned())
}
