// Package flowsim walks a packet through one bridge's flows the way OVS
// does. Tests use it on compiled flow sets; brtun trace uses it on the flows
// dumped from the switches. It is pure: no I/O.
package flowsim

import (
	"fmt"
	"maps"
	"slices"

	"github.com/brtun/brtun/flows"
)

// Limits that keep a walk bounded whatever the flows say.
const (
	maxDepth   = 64  // nested resubmits
	maxLookups = 512 // table lookups per packet
)

// Sim is one bridge's flow table, walked like OVS does: the highest-priority
// matching flow of a table runs its actions in order; goto_table and
// resubmit look the packet up again; learn adds (or replaces) a flow in its
// table and that flow is seen by later packets. A Sim is not safe for
// concurrent use.
type Sim struct {
	tables map[uint8][]flows.Flow // by priority, highest first
}

// Output is one copy of the packet leaving the bridge. Port is the port
// number it was sent to: an output:N port, the packet's in_port for IN_PORT,
// flows.PortNormal for NORMAL.
type Output struct {
	Port   uint32
	Packet Packet
}

// Step is one table lookup: the flow that matched, or a miss.
type Step struct {
	Table uint8
	Flow  flows.Flow // the zero Flow on a miss
	Miss  bool       // no flow matched: the packet is dropped there
}

// Result is what became of a packet.
type Result struct {
	Outputs []Output
	// Steps lists every table lookup, in order.
	Steps []Step
	// Trace lists every flow that ran, in order, as dump-flows lines.
	Trace []string
	// Notes say what OVS leaves out: an output:N to the packet's in_port.
	Notes []string
}

// Ports returns the output ports in order.
func (r Result) Ports() []uint32 {
	out := make([]uint32, len(r.Outputs))
	for i, o := range r.Outputs {
		out[i] = o.Port
	}
	return out
}

// New returns a simulator over a bridge's flows (copied).
func New(fs []flows.Flow) *Sim {
	s := &Sim{tables: map[uint8][]flows.Flow{}}
	for _, f := range fs {
		s.add(f)
	}
	return s
}

// add inserts a flow, replacing one with the same key (as a FlowMod add does).
func (s *Sim) add(f flows.Flow) {
	k := f.Key()
	t := slices.DeleteFunc(s.tables[f.Table], func(g flows.Flow) bool { return g.Key() == k })
	i, _ := slices.BinarySearchFunc(t, f.Priority, func(g flows.Flow, p uint16) int {
		// highest priority first; equal priorities keep insertion order
		if g.Priority >= p {
			return -1
		}
		return 1
	})
	s.tables[f.Table] = slices.Insert(t, i, f)
}

// Table returns the flows of a table, highest priority first (learned flows
// included).
func (s *Sim) Table(id uint8) []flows.Flow { return slices.Clone(s.tables[id]) }

// Learned returns the flows learn() has added so far, in table order.
func (s *Sim) Learned() []flows.Flow {
	var out []flows.Flow
	for _, id := range slices.Sorted(maps.Keys(s.tables)) {
		for _, f := range s.tables[id] {
			if flows.IsLearned(f.Cookie) {
				out = append(out, f)
			}
		}
	}
	return out
}

// Run walks a packet through the bridge starting at table 0.
func (s *Sim) Run(p Packet) (Result, error) {
	w := &walk{sim: s, inPort: p.InPort}
	err := w.lookup(0, &p, 0)
	return w.res, err
}

// walk is the state of one packet's trip.
type walk struct {
	sim     *Sim
	inPort  uint32
	lookups int
	res     Result
}

// lookup runs the highest-priority flow of table id that matches p.
func (w *walk) lookup(id uint8, p *Packet, depth int) error {
	w.lookups++
	if w.lookups > maxLookups || depth > maxDepth {
		return fmt.Errorf("table %d: more than %d lookups or %d nested resubmits", id, maxLookups, maxDepth)
	}
	var hit *flows.Flow
	for i, f := range w.sim.tables[id] {
		if hit != nil && f.Priority < hit.Priority {
			break
		}
		if !matches(f.Match, *p) {
			continue
		}
		if hit != nil {
			return fmt.Errorf("table %d: %q and %q both match %v at priority %d", id, hit, f.String(), p, f.Priority)
		}
		hit = &w.sim.tables[id][i]
	}
	if hit == nil {
		w.res.Steps = append(w.res.Steps, Step{Table: id, Miss: true})
		w.res.Trace = append(w.res.Trace, fmt.Sprintf("table=%d miss (no flow): drop", id))
		return nil
	}
	f := *hit // learn may change the table under us
	w.res.Steps = append(w.res.Steps, Step{Table: id, Flow: f})
	w.res.Trace = append(w.res.Trace, f.String())
	return w.execute(f, p, depth)
}

// execute runs a flow's actions on p.
func (w *walk) execute(f flows.Flow, p *Packet, depth int) error {
	for _, a := range f.Actions {
		var err error
		switch a := a.(type) {
		case flows.Output:
			if a.Port == w.inPort { // OVS sends back only with IN_PORT
				w.res.Notes = append(w.res.Notes, fmt.Sprintf("table %d: %v skipped: it is the input port (only IN_PORT sends back)", f.Table, a))
				continue
			}
			w.emit(a.Port, p)
		case flows.InPort:
			w.emit(w.inPort, p)
		case flows.Normal:
			w.emit(flows.PortNormal, p)
		case flows.Meter: // no rate in a simulation
		case flows.ToController:
			w.emit(flows.PortController, p)
		case flows.GotoTable:
			if a.Table <= f.Table {
				return fmt.Errorf("table %d: goto_table:%d does not go forward", f.Table, a.Table)
			}
			return w.lookup(a.Table, p, depth)
		case flows.Resubmit:
			err = w.lookup(a.Table, p, depth+1)
		case flows.PushVLAN:
			if p.VLANTCI&flows.VLANCFI != 0 {
				return fmt.Errorf("table %d: push_vlan on a tagged frame is not simulated", f.Table)
			}
			p.VLANTCI = flows.VLANCFI
		case flows.PopVLAN:
			p.VLANTCI = 0
		case flows.SetField:
			err = p.set(a.Field, a.Value)
		case flows.Load:
			err = p.writeSub(a.Dst, a.Value)
		case flows.Move:
			err = p.move(a.Src, a.Dst)
		case flows.Learn:
			err = w.learn(a, p)
		default:
			err = fmt.Errorf("action %v is not simulated", a)
		}
		if err != nil {
			return fmt.Errorf("table %d: %v: %w", f.Table, a, err)
		}
	}
	return nil
}

// emit records a copy of the packet as it leaves on port.
func (w *walk) emit(port uint32, p *Packet) {
	w.res.Outputs = append(w.res.Outputs, Output{Port: port, Packet: *p})
}

// learn builds the flow a learn action would add for packet p and adds it.
func (w *walk) learn(l flows.Learn, p *Packet) error {
	f := flows.Flow{
		Table: l.Table, Priority: l.Priority, Cookie: l.Cookie,
		IdleTimeout: l.IdleTimeout, HardTimeout: l.HardTimeout,
	}
	for _, spec := range l.Specs {
		switch spec.Kind {
		case flows.LearnMatchField, flows.LearnMatchValue:
			v := spec.Value
			if spec.Kind == flows.LearnMatchField {
				var err error
				if v, err = p.readSub(spec.Src); err != nil {
					return err
				}
			}
			if err := matchSub(&f.Match, spec.Dst, v); err != nil {
				return err
			}
		case flows.LearnLoadValue:
			f.Actions = append(f.Actions, flows.Load{Dst: spec.Dst, Value: spec.Value})
		case flows.LearnLoadField:
			v, err := p.readSub(spec.Src)
			if err != nil {
				return err
			}
			f.Actions = append(f.Actions, flows.Load{Dst: spec.Dst, Value: v})
		case flows.LearnOutput:
			v, err := p.readSub(spec.Src)
			if err != nil {
				return err
			}
			f.Actions = append(f.Actions, flows.OutputTo(uint32(v)))
		default:
			return fmt.Errorf("learn spec kind %d is not simulated", spec.Kind)
		}
	}
	w.sim.add(f)
	return nil
}

// matchSub adds "subfield == v" to a learned flow's match, for the fields a
// learn spec may match in this pipeline.
func matchSub(m *flows.Match, s flows.Subfield, v uint64) error {
	if s.Bits == 0 || s.Bits > 64 || int(s.Offset)+int(s.Bits) > int(s.Field.Bits()) {
		return fmt.Errorf("learn match on %v is not simulated", s)
	}
	mask := ^uint64(0)
	if s.Bits < 64 {
		mask = 1<<s.Bits - 1
	}
	value, bits := (v&mask)<<s.Offset, mask<<s.Offset
	switch s.Field {
	case flows.FieldVLANTCI:
		m.VLANTCI = orMasked16(m.VLANTCI, uint16(value), uint16(bits))
	case flows.FieldTunID:
		old := flows.MaskedU64{}
		if m.TunID != nil {
			old = *m.TunID
		}
		m.TunID = &flows.MaskedU64{Value: old.Value | value, Mask: old.Mask | bits}
	case flows.FieldReg0:
		old := flows.MaskedU32{}
		if m.Reg0 != nil {
			old = *m.Reg0
		}
		m.Reg0 = &flows.MaskedU32{Value: old.Value | uint32(value), Mask: old.Mask | uint32(bits)}
	case flows.FieldEthSrc, flows.FieldEthDst:
		mm := flows.MaskedMACOf(flows.MAC(fromU64(value, 6)), flows.MAC(fromU64(bits, 6)))
		if s.Field == flows.FieldEthSrc {
			m.EthSrc = mm
		} else {
			m.EthDst = mm
		}
	default:
		return fmt.Errorf("learn match on %v is not simulated", s)
	}
	return nil
}

func orMasked16(old *flows.MaskedU16, value, mask uint16) *flows.MaskedU16 {
	o := flows.MaskedU16{}
	if old != nil {
		o = *old
	}
	return &flows.MaskedU16{Value: o.Value | value, Mask: o.Mask | mask}
}
