package controller

import "github.com/brtun/brtun/flows"

// Op is what one flow_mod does to a switch.
type Op uint8

// The operations a reconcile sends.
const (
	OpAdd          Op = iota + 1 // a desired flow the switch lacks
	OpModifyStrict               // same identity and cookie, other actions: keeps counters and duration
	OpDeleteStrict               // a flow the switch holds that is not desired
)

func (o Op) String() string {
	switch o {
	case OpAdd:
		return "add"
	case OpModifyStrict:
		return "modify"
	case OpDeleteStrict:
		return "delete"
	}
	return "unknown"
}

// Change is one flow_mod of a reconcile.
type Change struct {
	Op   Op
	Flow flows.Flow
}

// Diff returns the flow_mods that turn installed into desired. Flows are
// compared as canonical values: Key() (table, priority, match) is a flow's
// identity, SameContent its content. A flow that is already right gets no
// flow_mod at all. An installed flow that is not desired is deleted unless
// keep says otherwise (valid learned entries). Deletes come first, then
// modifies, then adds, each in the order of their input; the caller sends
// them as one atomic bundle, so the order only matters for readability.
//
// OpenFlow 1.3 leaves a flow's cookie and timeouts alone on a modify, so a
// flow whose cookie or timeouts differ is replaced with an add (which resets
// its counters); only a change of actions is a strict modify.
func Diff(desired, installed []flows.Flow, keep func(flows.Flow) bool) []Change {
	return diffKeyed(keyed(desired), keyed(installed), keep, nil)
}

// keysOf renders the key of every flow once.
func keysOf(fs []flows.Flow) []flows.Key {
	keys := make([]flows.Key, len(fs))
	for i := range fs {
		keys[i] = fs[i].Key()
	}
	return keys
}

// diffKeyed is Diff of flows with their keys: rendering a key prints the
// whole match, and a reconcile that diffs against what it installed last
// already holds those keys. held, when not nil, is called with each desired
// flow the switch holds right and the installed flow that is it.
func diffKeyed(desired, installed []*keyedFlow, keep func(flows.Flow) bool, held func(desired, installed *keyedFlow)) []Change {
	if len(desired) == len(installed) && (len(desired) == 0 || &desired[0] == &installed[0]) {
		// The same flows (a drift check whose dump held what was installed).
		if held != nil {
			for i := range desired {
				held(desired[i], installed[i])
			}
		}
		return nil
	}
	want := make(map[flows.Key]int, len(desired))
	for i, d := range desired {
		want[d.key] = i
	}
	installedAs := make([]bool, len(desired)) // by want's index of a key
	var dels, mods, adds []Change
	for _, in := range installed {
		f := in.flow
		j, ok := want[in.key]
		if ok {
			installedAs[j] = true
		}
		switch {
		case !ok && (keep == nil || !keep(f)):
			dels = append(dels, Change{Op: OpDeleteStrict, Flow: f})
		case ok && (desired[j] == in || desired[j].flow.SameContent(f)):
			if held != nil {
				held(desired[j], in)
			}
		case ok:
			op := OpModifyStrict
			d := desired[j].flow
			if d.Cookie != f.Cookie || d.IdleTimeout != f.IdleTimeout || d.HardTimeout != f.HardTimeout {
				op = OpAdd
			}
			mods = append(mods, Change{Op: op, Flow: d})
		}
	}
	for _, d := range desired {
		if !installedAs[want[d.key]] {
			adds = append(adds, Change{Op: OpAdd, Flow: d.flow})
		}
	}
	return append(append(dels, mods...), adds...)
}
