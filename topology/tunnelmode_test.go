package topology

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseTunnelPortMode(t *testing.T) {
	for _, m := range TunnelPortModes() {
		got, err := ParseTunnelPortMode(m.String())
		require.NoError(t, err)
		assert.Equal(t, m, got)
	}
	_, err := ParseTunnelPortMode("mesh")
	require.ErrorContains(t, err, `want "per-peer" or "flow"`)
	var zero TunnelPortMode
	assert.False(t, zero.Flow(), "the zero value is per-peer")
	assert.Equal(t, "per-peer", zero.String())
	assert.True(t, FlowTunnels.Flow())
}
