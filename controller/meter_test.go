package controller

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/ofswitch"
	"github.com/brtun/brtun/ovsdb"
)

// meterTestSwitch is a pktSwitch with meters.
type meterTestSwitch struct {
	*pktSwitch
	mu     sync.Mutex
	meters map[uint32]ofswitch.Meter
	mods   int
}

func (s *meterTestSwitch) DumpMeters(context.Context) ([]ofswitch.Meter, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ofswitch.Meter
	for _, m := range s.meters {
		m.Flags |= 1 << 3 // OFPMF_STATS, as OVS reports it
		out = append(out, m)
	}
	return out, nil
}

func (s *meterTestSwitch) SetMeter(_ context.Context, m ofswitch.Meter, add bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, exists := s.meters[m.ID]
	if add == exists {
		return assert.AnError
	}
	s.meters[m.ID] = m
	s.mods++
	return nil
}

func (s *meterTestSwitch) modCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mods
}

// TestDHCPMeterIsReconciledLikeFlows: a br-int with catch flows gets the
// DHCP meter once; a controller started again on a switch that holds it
// sends no meter_mod; a wrong rate is modified.
func TestDHCPMeterIsReconciledLikeFlows(t *testing.T) {
	l, _ := dhcpLab(t) // starts a controller with the default meter; its br-int is a pktSwitch without meters
	sw := &meterTestSwitch{pktSwitch: &pktSwitch{testSwitch: newTestSwitch(ovsdb.DatapathID("h1", BrInt), nil), outs: make(chan packetOut, 10)},
		meters: map[uint32]ofswitch.Meter{}}
	l.ctrl.AddSwitch(sw)
	require.Eventually(t, func() bool { return len(catchFlows(sw.pktSwitch, "blue", "vm1")) == 3 }, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, 1, sw.modCount(), "one meter_mod adds the meter")
	want := l.ctrl.dhcpMeter()
	assert.Equal(t, want, sw.meters[1])
	assert.Equal(t, uint32(2000), want.Rate)
	assert.Equal(t, 1.0, l.metric("brtun_openflow_meter_mods_total", nil))

	// A new connection of the same switch, holding the meter: nothing sent.
	again := &meterTestSwitch{pktSwitch: &pktSwitch{testSwitch: newTestSwitch(ovsdb.DatapathID("h1", BrInt), sw.flows()), outs: make(chan packetOut, 10)},
		meters: map[uint32]ofswitch.Meter{1: want}}
	l.ctrl.AddSwitch(again)
	require.Eventually(t, func() bool { return again.count("dump") > 0 }, 10*time.Second, 20*time.Millisecond)
	l.settle()
	assert.Zero(t, again.modCount(), "a switch holding the right meter gets no meter_mod")

	// One whose meter has another rate is corrected.
	wrong := want
	wrong.Rate = 5
	third := &meterTestSwitch{pktSwitch: &pktSwitch{testSwitch: newTestSwitch(ovsdb.DatapathID("h1", BrInt), sw.flows()), outs: make(chan packetOut, 10)},
		meters: map[uint32]ofswitch.Meter{1: wrong}}
	l.ctrl.AddSwitch(third)
	require.Eventually(t, func() bool { return third.modCount() == 1 }, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, want, third.meters[1])
}
