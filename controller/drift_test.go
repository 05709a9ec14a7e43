package controller

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/topology"
)

func hostNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("h%d", i+1)
	}
	return names
}

// runSchedule asks s at every tick from start until end (exclusive) and
// returns, per host, the times it was due.
func runSchedule(s *driftSchedule, start, end time.Time, hosts []string) map[string][]time.Time {
	checks := map[string][]time.Time{}
	for now := start; now.Before(end); now = now.Add(s.tick()) {
		for _, name := range s.due(now, hosts) {
			checks[name] = append(checks[name], now)
		}
	}
	return checks
}

func TestDriftScheduleTick(t *testing.T) {
	assert.Equal(t, 937500*time.Microsecond, newDriftSchedule(time.Minute).tick(), "64 ticks per interval")
	assert.Equal(t, 10*time.Millisecond, newDriftSchedule(100*time.Millisecond).tick(), "not under 10ms")
	assert.Equal(t, 5*time.Millisecond, newDriftSchedule(5*time.Millisecond).tick(), "not over the interval")
}

func TestDriftScheduleChecksEachHostOncePerInterval(t *testing.T) {
	const interval = time.Minute
	s := newDriftSchedule(interval)
	hosts := hostNames(50)
	start := time.Unix(1_700_000_000, 0)
	checks := runSchedule(s, start, start.Add(5*interval), hosts)

	require.Len(t, checks, len(hosts), "every host is checked")
	for _, name := range hosts {
		times := checks[name]
		require.NotEmpty(t, times, name)
		assert.LessOrEqual(t, times[0].Sub(start), interval, "%s: first check within one interval", name)
		assert.Equal(t, times[0].Sub(start), times[0].Sub(start).Truncate(s.tick()), "%s: checked on a tick", name)
		for i := 1; i < len(times); i++ {
			assert.Equal(t, interval, times[i].Sub(times[i-1]), "%s: one interval between checks", name)
		}
		assert.GreaterOrEqual(t, len(times), 4, "%s: checked in every interval", name)
	}
}

func TestDriftScheduleSpreadsHosts(t *testing.T) {
	const interval = time.Minute
	s := newDriftSchedule(interval)
	hosts := hostNames(50)
	start := time.Unix(1_700_000_000, 0)
	perTick := map[time.Time]int{}
	perQuarter := [4]int{}
	offsets := map[string]time.Duration{}
	for name, times := range runSchedule(s, start, start.Add(interval+s.tick()), hosts) {
		require.Len(t, times, 1, name)
		offsets[name] = times[0].Sub(start)
		perTick[times[0]]++
		perQuarter[min(int(times[0].Sub(start)*4/interval), 3)]++
	}
	for at, n := range perTick {
		assert.LessOrEqual(t, n, 4, "hosts due together at %s", at.Sub(start))
	}
	assert.GreaterOrEqual(t, len(perTick), 25, "50 hosts spread over at least 25 of 64 ticks")
	for q, n := range perQuarter {
		assert.GreaterOrEqual(t, n, 5, "quarter %d of the interval", q)
	}
	// The offsets are a function of the name: the same hosts seen again
	// later are due at the same offsets.
	again := newDriftSchedule(interval)
	later := start.Add(time.Hour)
	for name, times := range runSchedule(again, later, later.Add(interval+s.tick()), hosts) {
		assert.Equal(t, offsets[name], times[0].Sub(later), name)
	}
}

func TestDriftScheduleNewAndRemovedHosts(t *testing.T) {
	const interval = time.Second
	s := newDriftSchedule(interval)
	start := time.Unix(1_700_000_000, 0)
	hosts := hostNames(3)
	runSchedule(s, start, start.Add(3*interval), hosts)

	joined := start.Add(3 * interval)
	hosts = append(hosts[1:], "h-new") // h1 leaves, h-new joins
	checks := runSchedule(s, joined, joined.Add(interval+s.tick()), hosts)
	require.Len(t, checks["h-new"], 1, "a new host is checked within one interval")
	assert.Empty(t, checks["h1"], "a host that left is not checked")
	assert.NotContains(t, s.next, "h1", "a host that left is forgotten")
	for _, name := range hosts[:2] {
		assert.Len(t, checks[name], 1, "%s goes on once per interval", name)
	}
}

func TestDriftScheduleSkipsChecksMissedInAStall(t *testing.T) {
	const interval = time.Second
	s := newDriftSchedule(interval)
	start := time.Unix(1_700_000_000, 0)
	phase := start.Add(s.offset("h1")) // when h1 is first due
	first := runSchedule(s, start, start.Add(interval+s.tick()), []string{"h1"})["h1"]
	require.Len(t, first, 1)
	require.Less(t, first[0].Sub(phase), s.tick(), "checked at the first tick from its offset on")

	resumed := phase.Add(3*interval + interval/2) // no tick for 3.5 intervals
	assert.Equal(t, []string{"h1"}, s.due(resumed, []string{"h1"}), "due once after the stall")
	assert.Empty(t, s.due(resumed.Add(s.tick()), []string{"h1"}), "the missed checks are not made up")
	assert.Equal(t, phase.Add(4*interval), s.next["h1"], "the phase is kept")
}

func TestCheckDriftMarksAndEnqueuesOnlyDueHosts(t *testing.T) {
	c, err := New(Options{Store: topology.NewMemoryStore()})
	require.NoError(t, err)
	c.setSnapshot(testSnapshot())
	c.q.order, c.q.queued = nil, map[string]bool{} // what the snapshot enqueued

	const interval = time.Minute
	sched := newDriftSchedule(interval)
	start := time.Unix(1_700_000_000, 0)
	enqueued := map[string]int{}
	for now := start; now.Before(start.Add(interval + sched.tick())); now = now.Add(sched.tick()) {
		c.checkDrift(sched, now)
		for _, name := range c.q.order {
			enqueued[name]++
			hs := c.hosts[name]
			assert.True(t, hs.driftDue, "%s: a full reconcile is asked for", name)
			for _, bs := range hs.bridges {
				assert.True(t, bs.needDump, "%s: a fresh dump is asked for", bs.ref)
			}
		}
		for name, hs := range c.hosts {
			if !c.q.queued[name] {
				assert.False(t, hs.driftDue, "%s is not due at %s", name, now.Sub(start))
			}
		}
		// What the reconcile would do: take the host and clear the flags.
		for _, name := range c.q.order {
			hs := c.hosts[name]
			hs.driftDue = false
			for _, bs := range hs.bridges {
				bs.needDump = false
			}
		}
		c.q.order, c.q.queued = nil, map[string]bool{}
	}
	assert.Equal(t, map[string]int{"h1": 1, "h2": 1, "h3": 1}, enqueued, "each host once in the interval")
}
