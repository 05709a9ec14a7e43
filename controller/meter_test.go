package controller

import (
	"context"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/ofswitch"
	"github.com/brtun/brtun/ovsdb"
)

// meterTestSwitch is a pktSwitch with meters.
type meterTestSwitch struct {
	*pktSwitch
	mu     sync.Mutex
	meters map[uint32]ofswitch.Meter
	mods   int
	// deletedNamed counts flows that still named a meter when it was
	// deleted (OVS would have deleted them with it).
	deletedNamed int
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

// DumpMeterStats reports that every meter dropped 7 packets of 100 (the
// DHCP meter too, which no port's metric may show).
func (s *meterTestSwitch) DumpMeterStats(context.Context) ([]ofswitch.MeterStats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ofswitch.MeterStats
	for id := range s.meters {
		out = append(out, ofswitch.MeterStats{ID: id, In: 100, Dropped: 7})
	}
	return out, nil
}

// DeleteMeter deletes the meter; like OVS it would delete the flows that
// name it, so it counts those as a violation instead.
func (s *meterTestSwitch) DeleteMeter(_ context.Context, id uint32) error {
	named := 0
	for _, f := range s.flows() {
		if len(f.Actions) > 0 && f.Actions[0] == (flows.Meter{ID: id}) {
			named++
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.meters[id]; !ok {
		return assert.AnError
	}
	delete(s.meters, id)
	s.mods++
	s.deletedNamed += named
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

// TestSourceMetersAreReconciledLikeFlows: with the source meter on, br-int
// gets one meter per port without port security (the lab's ports have
// none), named by that port's table-10 flow, besides the DHCP meter; a new
// connection holding them all gets no meter_mod.
func TestSourceMetersAreReconciledLikeFlows(t *testing.T) {
	l, _ := dhcpLabWith(t, Options{SourceMeter: SourceMeterOptions{Rate: 300, Burst: 40}})
	sw := &meterTestSwitch{pktSwitch: &pktSwitch{testSwitch: newTestSwitch(ovsdb.DatapathID("h1", BrInt), nil), outs: make(chan packetOut, 10)},
		meters: map[uint32]ofswitch.Meter{}}
	l.ctrl.AddSwitch(sw)
	ports := []struct{ network, name string }{{"blue", "vm1"}, {"blue", "vm2"}, {"red", "r1"}}
	require.Eventually(t, func() bool { return sw.modCount() == 1+len(ports) }, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, l.ctrl.dhcpMeter(), sw.meters[flows.DHCPMeter])
	require.Eventually(t, func() bool { // read with the dump that follows the meter_mods
		return l.metric("brtun_appliance_source_dropped_packets_total", nil) > 0
	}, 10*time.Second, 20*time.Millisecond)
	for _, p := range ports {
		ofport := inPortOf(sw.pktSwitch, p.network, p.name)
		require.NotZero(t, ofport, p.name)
		id := flows.SourceMeterID(ofport)
		assert.Equal(t, ofswitch.Meter{ID: id, Flags: ofswitch.MeterFlagPktps | ofswitch.MeterFlagBurst, Rate: 300, Burst: 40}, sw.meters[id], p.name)
		var metered int
		for _, f := range sw.flows() {
			if f.Table == flows.TableIntPortMAC && f.Cookie == flows.PortCookie(p.network, p.name) && len(f.Actions) > 0 && f.Actions[0] == (flows.Meter{ID: id}) {
				metered++
			}
		}
		assert.Equal(t, 1, metered, "%s: its foreign sources go through its meter", p.name)
		assert.Equal(t, 7.0, l.metric("brtun_appliance_source_dropped_packets_total", map[string]string{"host": "h1", "network": p.network, "port": p.name}),
			"%s: its meter's drops, from the dump", p.name)
	}
	assert.Equal(t, 7.0*float64(len(ports)), l.metric("brtun_appliance_source_dropped_packets_total", nil), "the DHCP meter's drops are no port's")

	again := &meterTestSwitch{pktSwitch: &pktSwitch{testSwitch: newTestSwitch(ovsdb.DatapathID("h1", BrInt), sw.flows()), outs: make(chan packetOut, 10)},
		meters: maps.Clone(sw.meters)}
	l.ctrl.AddSwitch(again)
	require.Eventually(t, func() bool { return again.count("dump") > 0 }, 10*time.Second, 20*time.Millisecond)
	l.settle()
	assert.Zero(t, again.modCount(), "a switch holding the right meters gets no meter_mod")
}

// TestSourceMeterOff: with the zero SourceMeterOptions (serve
// --appliance-source-rate 0), br-int gets only the DHCP meter and no flow
// names another.
func TestSourceMeterOff(t *testing.T) {
	l, _ := dhcpLab(t)
	sw := &meterTestSwitch{pktSwitch: &pktSwitch{testSwitch: newTestSwitch(ovsdb.DatapathID("h1", BrInt), nil), outs: make(chan packetOut, 10)},
		meters: map[uint32]ofswitch.Meter{}}
	l.ctrl.AddSwitch(sw)
	require.Eventually(t, func() bool { return len(catchFlows(sw.pktSwitch, "blue", "vm1")) == 3 }, 10*time.Second, 20*time.Millisecond)
	l.settle()
	assert.Equal(t, 1, sw.modCount())
	assert.Contains(t, sw.meters, flows.DHCPMeter)
	for _, f := range sw.flows() {
		if len(f.Actions) > 0 {
			if m, ok := f.Actions[0].(flows.Meter); ok {
				assert.Equal(t, flows.DHCPMeter, m.ID, "%s", f)
			}
		}
	}
}

// TestStaleSourceMeterIsDeletedAfterItsFlows: a port without port security
// deleted from the store takes its source meter with it, once br-int's
// flows no longer name it; the other ports' meters and the DHCP meter stay.
func TestStaleSourceMeterIsDeletedAfterItsFlows(t *testing.T) {
	l, _ := dhcpLabWith(t, Options{SourceMeter: SourceMeterOptions{Rate: 300, Burst: 40}})
	sw := &meterTestSwitch{pktSwitch: &pktSwitch{testSwitch: newTestSwitch(ovsdb.DatapathID("h1", BrInt), nil), outs: make(chan packetOut, 10)},
		meters: map[uint32]ofswitch.Meter{}}
	l.ctrl.AddSwitch(sw)
	require.Eventually(t, func() bool {
		return sw.modCount() == 4 && inPortOf(sw.pktSwitch, "blue", "vm2") != 0 && inPortOf(sw.pktSwitch, "blue", "vm1") != 0
	}, 10*time.Second, 20*time.Millisecond, "the DHCP meter, three source meters and the ports' flows")
	gone, kept := flows.SourceMeterID(inPortOf(sw.pktSwitch, "blue", "vm2")), flows.SourceMeterID(inPortOf(sw.pktSwitch, "blue", "vm1"))
	require.Contains(t, sw.meters, gone)

	_, err := l.store.DeletePort(context.Background(), "blue", "vm2", nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		sw.mu.Lock()
		defer sw.mu.Unlock()
		_, ok := sw.meters[gone]
		return !ok
	}, 10*time.Second, 20*time.Millisecond, "vm2's source meter is deleted")
	l.settle()
	assert.Zero(t, sw.deletedNamed, "no flow named the meter when it was deleted")
	assert.Zero(t, inPortOf(sw.pktSwitch, "blue", "vm2"), "vm2's flows are gone")
	assert.Contains(t, sw.meters, kept, "control: vm1 keeps its meter")
	assert.Contains(t, sw.meters, flows.DHCPMeter, "control: the DHCP meter stays")
	assert.Equal(t, 5, sw.modCount(), "one meter_mod deleted it")
}

// strictMeterSwitch refuses, as OVS does, a bundle that adds a flow naming
// a meter it does not hold.
type strictMeterSwitch struct{ *meterTestSwitch }

func (s strictMeterSwitch) Apply(ctx context.Context, changes []Change, purge []uint64) error {
	s.mu.Lock()
	for _, ch := range changes {
		if ch.Op == OpDeleteStrict || len(ch.Flow.Actions) == 0 {
			continue
		}
		if m, ok := ch.Flow.Actions[0].(flows.Meter); ok {
			if _, held := s.meters[m.ID]; !held {
				s.mu.Unlock()
				return assert.AnError
			}
		}
	}
	s.mu.Unlock()
	return s.meterTestSwitch.Apply(ctx, changes, purge)
}

// TestMeterDeletedBySomeoneElseIsPutBack: an operator deletes a port's
// source meter (OVS deletes the flows naming it with it). The drift check
// puts the flows back, which the switch refuses while the meter is
// missing: brtun reads the meters again and puts the meter back first.
func TestMeterDeletedBySomeoneElseIsPutBack(t *testing.T) {
	l, _ := dhcpLabWith(t, Options{SourceMeter: SourceMeterOptions{Rate: 300, Burst: 40}, DriftInterval: 300 * time.Millisecond})
	sw := strictMeterSwitch{&meterTestSwitch{pktSwitch: &pktSwitch{testSwitch: newTestSwitch(ovsdb.DatapathID("h1", BrInt), nil), outs: make(chan packetOut, 10)},
		meters: map[uint32]ofswitch.Meter{}}}
	l.ctrl.AddSwitch(sw)
	metered := func(id uint32) int {
		n := 0
		for _, f := range sw.flows() {
			if len(f.Actions) > 0 && f.Actions[0] == (flows.Meter{ID: id}) {
				n++
			}
		}
		return n
	}
	var id uint32
	require.Eventually(t, func() bool {
		id = flows.SourceMeterID(inPortOf(sw.pktSwitch, "blue", "vm1"))
		return sw.modCount() == 4 && metered(id) == 1
	}, 10*time.Second, 20*time.Millisecond, "vm1's source meter and its flow")

	sw.mu.Lock()
	delete(sw.meters, id)
	sw.mu.Unlock()
	sw.edit(func(held map[flows.Key]flows.Flow) {
		for k, f := range held {
			if len(f.Actions) > 0 && f.Actions[0] == (flows.Meter{ID: id}) {
				delete(held, k)
			}
		}
	})
	require.Zero(t, metered(id))
	require.Eventually(t, func() bool {
		sw.mu.Lock()
		_, back := sw.meters[id]
		sw.mu.Unlock()
		return back && metered(id) == 1
	}, 10*time.Second, 20*time.Millisecond, "the meter, then its flow, are put back")
}
