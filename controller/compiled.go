package controller

import (
	"errors"

	"github.com/brtun/brtun/flows"
)

// compiledSet is a host's compiled flows, their validation and their keys,
// with the bridge fingerprints (hostDigest.bridge) of the view they were
// compiled from. A bridge's fingerprint sums everything its flows are made
// of, and flows.Compile is a pure function of the view, so a reconcile
// whose fingerprints are the same gets the same flows: it reuses the set
// instead of compiling, validating and keying it again (a drift check, a
// retry, an OVSDB change that moved no ofport). When only br-int's
// fingerprint changed (a local port), br-tun's flows are those of before:
// they are reused with their validation and keys, the rest is compiled
// anew.
type compiledSet struct {
	// set is the compile's result without its flows (set.BrTun and
	// set.BrInt are nil): bridges holds them, shared with other hosts.
	set flows.FlowSet
	// bridges are set's flows of each bridge, by name, with their keys
	// and fingerprint. A bridge's sync keeps them as what it installed.
	bridges map[string]*bridgeFlows
	// invalid is each bridge's validation against the declared pipeline
	// (br-tun's with the learned cookies, which come from br-tun's inputs
	// too); nil when valid.
	invalid map[string]error
}

// bridgeFlows are one bridge's compiled flows with their keys, in the
// compiler's order, and the fingerprint of the inputs they were compiled
// from. They are never modified: a compiled set and the bridges that
// installed it share them, and the flows themselves come from the
// controller's flowTable, shared with the other hosts that have them.
type bridgeFlows struct {
	flows []*keyedFlow
	fp    [32]byte
}

// err is the set's validation, as flows.Validate reports it.
func (cs *compiledSet) err() error {
	return errors.Join(cs.invalid[BrTun], cs.invalid[BrInt])
}

// compileFor returns the compiled flows of view, whose bridge fingerprints
// are fp, reusing what prev (the host's last compiled set, or nil) has of
// them; it reports whether it compiled.
func (c *Controller) compileFor(prev *compiledSet, view flows.View, fp map[string][32]byte) (cs *compiledSet, compiled bool) {
	if prev != nil && prev.bridges[BrTun].fp == fp[BrTun] && prev.bridges[BrInt].fp == fp[BrInt] {
		return prev, false
	}
	cs = &compiledSet{set: c.opts.compile(view), bridges: map[string]*bridgeFlows{}, invalid: map[string]error{}}
	for _, b := range bridgeNames {
		fb := flowsBridge(b)
		if prev != nil && prev.bridges[b].fp == fp[b] {
			// The same flows as before: those, with their checks.
			cs.bridges[b], cs.invalid[b] = prev.bridges[b], prev.invalid[b]
		} else {
			fs := cs.set.Flows(fb)
			keys := keysOf(fs)
			cs.bridges[b] = &bridgeFlows{flows: c.flowTable.share(fs, keys), fp: fp[b]}
			cs.invalid[b] = flows.ValidateKeyedFlows(fb, fs, keys)
			if b == BrTun {
				cs.invalid[b] = errors.Join(cs.invalid[b], flows.ValidateLearnedCookies(cs.set.LearnedCookies))
			}
		}
	}
	cs.set.BrTun, cs.set.BrInt = nil, nil
	return cs, true
}
