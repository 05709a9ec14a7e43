package controller

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/brtun/brtun/flows"
)

func flow(table uint8, prio uint16, cookie uint64, actions ...flows.Action) flows.Flow {
	return flows.Flow{Table: table, Priority: prio, Cookie: cookie, Actions: actions}
}

func TestDiffSendsNothingForFlowsThatAreRight(t *testing.T) {
	set := []flows.Flow{flow(0, 0, 1), flow(21, 0, 1)}
	assert.Empty(t, Diff(set, set, nil))
}

func TestDiffAddsModifiesAndDeletes(t *testing.T) {
	desired := []flows.Flow{flow(0, 0, 1), flow(2, 0, 1), flow(3, 0, 1)}
	installed := []flows.Flow{
		flow(0, 0, 1),                        // right
		flow(2, 0, 1, flows.Output{Port: 3}), // same identity and cookie, other actions
		flow(3, 0, 7),                        // same identity, other cookie
		flow(9, 5, 1),                        // stray
	}
	desired = append(desired, flow(4, 0, 1))
	got := Diff(desired, installed, nil)
	assert.Equal(t, []Change{
		{Op: OpDeleteStrict, Flow: installed[3]},
		{Op: OpModifyStrict, Flow: desired[1]},
		{Op: OpAdd, Flow: desired[2]}, // a modify cannot change a cookie in OpenFlow 1.3
		{Op: OpAdd, Flow: desired[3]},
	}, got)
}

func TestDiffKeepsWhatKeepAccepts(t *testing.T) {
	learned := flow(20, 1, 0xabc)
	stale := flow(20, 1, 0xdef)
	stale.Priority = 2 // another identity
	keep := func(f flows.Flow) bool { return f.Cookie == 0xabc }
	got := Diff(nil, []flows.Flow{learned, stale}, keep)
	assert.Equal(t, []Change{{Op: OpDeleteStrict, Flow: stale}}, got)
}
