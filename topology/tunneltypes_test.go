package topology

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTunnelTypeTable(t *testing.T) {
	types := TunnelTypes()
	require.NotEmpty(t, types)
	names, codes, ovsTypes := map[NetworkType]bool{}, map[uint8]bool{}, map[string]bool{}
	for _, tt := range types {
		assert.False(t, names[tt.Name], "name %s twice", tt.Name)
		assert.False(t, codes[tt.Code], "code %d twice", tt.Code)
		assert.False(t, ovsTypes[tt.OVSType], "OVS type %s twice", tt.OVSType)
		names[tt.Name], codes[tt.Code], ovsTypes[tt.OVSType] = true, true, true

		assert.Regexp(t, `^[a-z][a-z0-9]{0,5}$`, tt.Name, "a port name (NAME-8 hex digits) must fit 15 characters")
		assert.NotEmpty(t, tt.SegmentName)
		assert.NotEmpty(t, tt.OVSType)
		assert.Positive(t, tt.MaxSegment)
		assert.Positive(t, tt.Overhead)
		assert.True(t, tt.Code >= 1 && tt.Code <= 15, "%s: code %d must fit the 4 bits of a cookie and not be 0", tt.Name, tt.Code)

		got, ok := tt.Name.Tunnel()
		require.True(t, ok)
		assert.Equal(t, tt, got)
		got, ok = TunnelTypeByCode(tt.Code)
		require.True(t, ok)
		assert.Equal(t, tt, got)
		got, ok = TunnelTypeByOVSType(tt.OVSType)
		require.True(t, ok)
		assert.Equal(t, tt, got)
		assert.True(t, tt.Name.Valid())
		assert.Equal(t, tt.MaxSegment, tt.Name.MaxSegment())
		assert.Equal(t, tt.Code, tt.Name.Code())
		assert.Equal(t, 1500-tt.Overhead, tt.Name.MTU(1500))
	}

	types[0].Code = 99
	assert.NotEqual(t, uint8(99), TunnelTypes()[0].Code, "TunnelTypes returns a copy")
}

func TestTunnelTypesOfTheIssue(t *testing.T) {
	for _, c := range []struct {
		typ      NetworkType
		max      uint32
		overhead int
		code     uint8
		udp      uint16
	}{
		{VXLAN, 1<<24 - 1, 50, 1, 4789},
		{GRE, 1<<32 - 1, 42, 2, 0},
		{Geneve, 1<<24 - 1, 50, 3, 6081},
	} {
		tt, ok := c.typ.Tunnel()
		require.True(t, ok, c.typ)
		assert.Equal(t, c.max, tt.MaxSegment, c.typ)
		assert.Equal(t, c.overhead, tt.Overhead, c.typ)
		assert.Equal(t, c.code, tt.Code, c.typ)
		assert.Equal(t, c.udp, tt.UDPPort, c.typ)
		assert.Equal(t, string(c.typ), tt.OVSType, c.typ)
	}
}

func TestUnknownTunnelType(t *testing.T) {
	unknown := NetworkType("stt")
	_, ok := unknown.Tunnel()
	assert.False(t, ok)
	assert.False(t, unknown.Valid())
	assert.Zero(t, unknown.MaxSegment())
	assert.Zero(t, unknown.Code())
	_, ok = TunnelTypeByCode(0)
	assert.False(t, ok, "code 0 is no type: reg0 is 0 for frames not from a tunnel")
	_, ok = TunnelTypeByOVSType("internal")
	assert.False(t, ok)
}

func TestTunnelTypeMessages(t *testing.T) {
	assert.Equal(t, "vxlan, gre or geneve", TunnelTypeNames())
	assert.Equal(t, "vxlan 1..16777215, gre 1..4294967295, geneve 1..16777215", SegmentRanges())
	assert.Equal(t, uint32(1<<32-1), MaxSegmentOfAnyType())
}
