package flows_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/flows/flowsim"
)

// downView is h1 of one network with two local ports, vm1 (ofport 5)
// administratively down, and a down port whose ofport is not known yet.
func downView() flows.View {
	return flows.View{
		Host: "h1", PatchIntOfport: 1,
		DownPorts: []flows.DownPort{
			{Network: "blue", Name: "vm1", Ofport: 5},
			{Network: "blue", Name: "vm9", Ofport: 0},
		},
	}
}

func TestDownPortFlows(t *testing.T) {
	set := flows.Compile(downView())
	require.NoError(t, flows.Validate(set))
	assert.Equal(t, []string{
		fmt.Sprintf("cookie=%#x, priority=1,in_port=5 actions=drop", flows.PortCookie("blue", "vm1")),
		"cookie=0xb710000000000000, priority=0 actions=NORMAL",
	}, flows.Strings(set.BrInt))
	assert.Contains(t, set.Skipped, "down port blue/vm9 has no usable ofport (0): its frames are not dropped yet")
	owner, ok := flows.DecodeCookie(set.BrInt[0].Cookie)
	require.True(t, ok)
	assert.Equal(t, flows.OwnerPort, owner.Kind, "the drop belongs to the port")

	up := downView()
	up.DownPorts = nil
	assert.Equal(t, []string{"cookie=0xb710000000000000, priority=0 actions=NORMAL"}, flows.Strings(flows.Compile(up).BrInt),
		"control: no down port, NORMAL only")
	assert.Equal(t, flows.Strings(flows.Compile(up).BrTun), flows.Strings(set.BrTun), "br-tun does not change for a local down port")
}

func TestDownPortFramesAreDropped(t *testing.T) {
	sim := flowsim.New(flows.Compile(downView()).BrInt)
	frame := unicast(t, "02:00:00:00:00:01", "02:00:00:00:00:02")

	frame.InPort = 5 // vm1, down
	res, err := sim.Run(frame)
	require.NoError(t, err)
	assert.Empty(t, res.Outputs, "a down port's frames go nowhere")

	frame.InPort = 6 // vm2, up: the positive control
	res, err = sim.Run(frame)
	require.NoError(t, err)
	assert.Equal(t, []uint32{flows.PortNormal}, res.Ports(), "an up port's frames are switched")

	frame.InPort = 1 // from patch-tun, to the down port's neighbour
	res, err = sim.Run(frame)
	require.NoError(t, err)
	assert.Equal(t, []uint32{flows.PortNormal}, res.Ports())
}
