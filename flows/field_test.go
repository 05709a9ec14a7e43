package flows

import (
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMACStringMatchesNet: MAC.String prints like net.HardwareAddr (lower
// case, colons, leading zeros) and ParseMAC reads it back.
func TestMACStringMatchesNet(t *testing.T) {
	for _, m := range []MAC{{}, {0x02, 0xab, 0x0c, 0xde, 0xf0, 0x01}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, {0x00, 0x10, 0x9a, 0x7b, 0x8c, 0x3d}} {
		assert.Equal(t, net.HardwareAddr(m[:]).String(), m.String())
		back, err := ParseMAC(m.String())
		require.NoError(t, err)
		assert.Equal(t, m, back)
	}
}
