package flows_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
)

func TestPipelineDeclaration(t *testing.T) {
	p := flows.Declared()
	var ids []uint8
	names := map[string]bool{}
	for _, tb := range p.BrTun {
		ids = append(ids, tb.ID)
		assert.Equal(t, flows.BrTun, tb.Bridge)
		assert.False(t, names[tb.Name], "table name %q used twice", tb.Name)
		names[tb.Name] = true
		assert.NotEmpty(t, tb.Doc)
		assert.Contains(t, tb.Priorities, uint16(0), "table %d has a miss flow", tb.ID)
		for _, g := range append(append([]uint8{}, tb.Gotos...), tb.LearnInto...) {
			assert.Greater(t, g, tb.ID, "table %d only goes forward", tb.ID)
			_, ok := p.Lookup(flows.BrTun, g)
			assert.True(t, ok, "table %d goes to undeclared table %d", tb.ID, g)
		}
		if tb.Miss == flows.MissGoto {
			assert.Contains(t, tb.Gotos, tb.MissTable)
		}
	}
	assert.Equal(t, []uint8{0, 1, 2, 3, 10, 20, 21, 22}, ids)
	var intIDs []uint8
	for _, tb := range p.BrInt {
		intIDs = append(intIDs, tb.ID)
		for _, g := range tb.Gotos {
			assert.Greater(t, g, tb.ID, "br-int table %d only goes forward", tb.ID)
			_, ok := p.Lookup(flows.BrInt, g)
			assert.True(t, ok, "br-int table %d goes to undeclared table %d", tb.ID, g)
		}
	}
	assert.Equal(t, []uint8{0, 10, 11, 12, 20, 21, 30}, intIDs)
	assert.Equal(t, flows.MissNormal, p.BrInt[len(p.BrInt)-1].Miss, "br-int ends in NORMAL")

	// Tables 0, 3 and 21 end in drop; 20 misses to 21; 2 is a single drop.
	for _, id := range []uint8{0, 2, 3, 21} {
		tb, ok := p.Lookup(flows.BrTun, id)
		require.True(t, ok)
		assert.Equal(t, flows.MissDrop, tb.Miss, "table %d", id)
	}
	t20, _ := p.Lookup(flows.BrTun, flows.TableUnicast)
	assert.Equal(t, flows.MissGoto, t20.Miss)
	assert.Equal(t, flows.TableFlood, t20.MissTable)
	assert.Equal(t, uint16(1), t20.Learned, "learned entries sit at priority 1, under known ports at 2")

	set := flows.Compile(sharedSegment().view("h1"))
	var table2 []string
	for _, f := range set.BrTun {
		if f.Table == flows.TableUnused {
			table2 = append(table2, f.String())
		}
	}
	assert.Equal(t, []string{"cookie=0xb710000000000000, table=2, priority=0 actions=drop"}, table2)
}
