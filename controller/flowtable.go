package controller

import (
	"hash/maphash"
	"runtime"
	"sync"
	"sync/atomic"
	"weak"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/ofswitch"
)

// keyedFlow is a flow with its key (flow.Key()), rendered once. The
// compiled ones come from a flowTable, shared by every host that has the
// same flow: flow and key are never modified.
type keyedFlow struct {
	flow flows.Flow
	key  flows.Key
	// wire is the key a switch reports the flow by in a dump keyed with
	// the controller's seed (FlowCounters.Key); 0: not known yet. For a
	// compiled flow it is what ofswitch.FlowKey predicts from brtun's own
	// encoding (OVS 3.1 reports every flow brtun makes so), worked out
	// once; for a dump's flow, what its switch reported. A switch that
	// reports a compiled flow otherwise (another OVS version) has that key
	// kept for its bridge alone (heldFlows.reported): hosts share the flow.
	wire atomic.Uint64
}

// keyed returns fs with their keys, in order.
func keyed(fs []flows.Flow) []*keyedFlow {
	kfs := make([]keyedFlow, len(fs))
	out := make([]*keyedFlow, len(fs))
	for i := range fs {
		kfs[i].flow, kfs[i].key = fs[i], fs[i].Key()
		out[i] = &kfs[i]
	}
	return out
}

// keyedDump returns a decoded dump's flows with their keys and the keys
// the switch reported them by.
func keyedDump(read Dump) []*keyedFlow {
	fs := make([]flows.Flow, len(read.Flows))
	for i, st := range read.Flows {
		fs[i] = st.Flow
	}
	out := keyed(fs)
	for i, kf := range out {
		kf.wire.Store(read.Flows[i].Key)
	}
	return out
}

// wireKey is the key switches report kf by, with seed (the controller's,
// the one its dumps are keyed with); 0 when kf cannot be encoded.
func (kf *keyedFlow) wireKey(seed maphash.Seed) uint64 {
	if k := kf.wire.Load(); k != 0 {
		return k
	}
	k, err := ofswitch.FlowKey(seed, kf.flow)
	if err != nil {
		return 0
	}
	kf.wire.Store(k)
	return k
}

// flowTable lets hosts that compile the same flow share one copy of it.
// Most of a host's flows are the same on every host of a network: in flow
// tunnel mode its remote ports' registered entries and ARP and ND
// responders, the tun_src dispatch of every peer, and br-int's forwarding
// entries to the remote ports are one value on all the hosts carrying it
// (1000 hosts with a port each in one network: four million flows, of
// which a few thousand are distinct). A host's compiled bridge holds
// pointers into the table, 8 bytes a flow, instead of its own flow,
// match, actions and key, several hundred bytes.
//
// The table points at its flows weakly: a flow no host holds any more is
// collected, and a cleanup removes its entry. It has its own lock, as the
// queue's workers compile side by side.
type flowTable struct {
	mu    sync.Mutex
	flows map[flows.Key]weak.Pointer[keyedFlow]
}

// tableEntry names an entry of a flowTable, for its cleanup.
type tableEntry struct {
	key flows.Key
	ptr weak.Pointer[keyedFlow]
}

func newFlowTable() *flowTable {
	return &flowTable{flows: map[flows.Key]weak.Pointer[keyedFlow]{}}
}

// share returns fs, whose keys are keys, as shared flows: for each, the
// table's flow with the same key and the same values (flows.Flow.SameValues:
// what the same inputs compile to), or else a new one, which the table
// keeps for the next host when it has no live flow of that key (a flow
// that differs between hosts under the same key, such as a network's flood
// list, stays the first host's).
func (t *flowTable) share(fs []flows.Flow, keys []flows.Key) []*keyedFlow {
	out := make([]*keyedFlow, len(fs))
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range fs {
		known := t.flows[keys[i]].Value()
		if known != nil && known.flow.SameValues(fs[i]) {
			out[i] = known
			continue
		}
		kf := &keyedFlow{flow: fs[i], key: keys[i]}
		out[i] = kf
		if known == nil {
			ptr := weak.Make(kf)
			t.flows[keys[i]] = ptr
			runtime.AddCleanup(kf, t.forget, tableEntry{key: keys[i], ptr: ptr})
		}
	}
	return out
}

// forget removes the entry of a collected flow, unless a newer flow of
// the same key took its place.
func (t *flowTable) forget(e tableEntry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.flows[e.key] == e.ptr {
		delete(t.flows, e.key)
	}
}
