package flows_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/flows/flowsim"
	"github.com/brtun/brtun/flows/flowtest"
	"github.com/brtun/brtun/topology"
)

// meteredSim is h1's br-int of the port-security scenario with the source
// meter on; the appliance has an allowed pair with a MAC of its own.
func meteredSim(t *testing.T) (*flowsim.Sim, flows.FlowSet) {
	t.Helper()
	c := portSecurity()
	c.sourceMeter = true
	for i, p := range c.locals["h1"] {
		if p.Name == "appl" {
			c.locals["h1"][i].AllowedAddressPairs = []topology.AddressPair{{IPAddress: "198.18.0.200", MACAddress: macVIP.String()}}
		}
	}
	set := c.compile(t, "h1")
	return flowsim.New(set.BrInt), set
}

func TestGoldenSourceMeter(t *testing.T) {
	_, set := meteredSim(t)
	flowtest.Golden(t, "source_meter_h1", flowtest.FormatSet(set))
}

// metered runs p and says where it went and whether it passed a meter
// (which one).
func metered(t *testing.T, s *flowsim.Sim, p flowsim.Packet) (string, string) {
	t.Helper()
	res, err := s.Run(p)
	require.NoError(t, err, "%s", p)
	meter := ""
	for _, line := range res.Trace {
		if i := strings.Index(line, "meter:"); i >= 0 {
			meter = strings.SplitN(line[i:], ",", 2)[0]
		}
	}
	return outcome(t, s, p), meter
}

// An appliance's frames from its own MAC or its pair's MAC pass unmetered;
// from any other source MAC, broadcast or unicast, they pass through the
// appliance's own meter; protected ports meter nothing (they drop foreign
// sources).
func TestSourceMeterMetersOnlyForeignSources(t *testing.T) {
	s, _ := meteredSim(t)
	own := flows.SourceMeterID(ofAppl)
	for _, tc := range []struct {
		name       string
		p          flowsim.Packet
		out, meter string
	}{
		{"own MAC", ipv4From(ofAppl, macAppl, "198.18.0.4"), "NORMAL", ""},
		{"pair MAC", ipv4From(ofAppl, macVIP, "198.18.0.200"), "NORMAL", ""},
		{"foreign MAC, broadcast", ipv4From(ofAppl, macOther, "203.0.113.9"), "NORMAL", "meter:" + itoa(own)},
		{"foreign MAC, ARP", arpFrom(ofAppl, macOther, macOther, "198.18.0.9"), "NORMAL", "meter:" + itoa(own)},
		{"foreign MAC, to a remote port", func() flowsim.Packet {
			p := ipv4From(ofAppl, macOther, "203.0.113.9")
			p.EthDst = macRemot
			return p
		}(), "port " + itoa(patchTun) + " vlan 1", "meter:" + itoa(own)},
		{"port without a MAC: every source is foreign", ipv4From(ofNoMAC, macOther, "198.18.0.9"), "NORMAL", "meter:" + itoa(flows.SourceMeterID(ofNoMAC))},
		{"protected port, own MAC", ipv4From(ofVM2, macVM2, "198.18.0.2"), "NORMAL", ""},
		{"protected port, foreign MAC", ipv4From(ofVM2, macOther, "198.18.0.2"), "drop", ""},
	} {
		out, meter := metered(t, s, tc.p)
		assert.Equal(t, tc.out, out, tc.name)
		assert.Equal(t, tc.meter, meter, tc.name)
	}
}

// With the source meter off (serve --appliance-source-rate 0), the
// appliance's flows are as before: no meter, and table 10 has no flow of it.
func TestSourceMeterOffLeavesAppliancesUnmetered(t *testing.T) {
	set := portSecurity().compile(t, "h1")
	for _, f := range set.BrInt {
		for _, a := range f.Actions {
			_, isMeter := a.(flows.Meter)
			assert.False(t, isMeter && a != flows.Meter{ID: flows.DHCPMeter}, "%s", f)
		}
		if f.Table == flows.TableIntPortMAC && f.Match.InPort != nil {
			assert.NotEqual(t, uint32(ofAppl), *f.Match.InPort, "%s", f)
		}
	}
	out, meter := metered(t, flowsim.New(set.BrInt), ipv4From(ofAppl, macOther, "203.0.113.9"))
	assert.Equal(t, "NORMAL", out)
	assert.Empty(t, meter)
}

func TestSourceMeterIDs(t *testing.T) {
	for _, ofport := range []uint32{1, 2, 0xfeff} {
		id := flows.SourceMeterID(ofport)
		assert.NotEqual(t, flows.DHCPMeter, id)
		assert.LessOrEqual(t, id, flows.MeterMax)
		got, ok := flows.IsSourceMeter(id)
		assert.True(t, ok)
		assert.Equal(t, ofport, got)
	}
	for _, id := range []uint32{flows.DHCPMeter, flows.SourceMeterID(0), flows.SourceMeterID(0xff00)} {
		_, ok := flows.IsSourceMeter(id)
		assert.False(t, ok, "%d", id)
	}
}
