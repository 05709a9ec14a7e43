package controller

import (
	"hash/fnv"
	"time"
)

// driftSchedule spreads the drift check over its interval so that the
// hosts' full reconciles do not all enter the queue at once: a host is
// first due at a stable offset within one interval of being seen (a hash of
// its name), then once every interval at that same phase. It is used by
// Run's goroutine only.
type driftSchedule struct {
	interval time.Duration
	next     map[string]time.Time // when each known host is due next
}

func newDriftSchedule(interval time.Duration) *driftSchedule {
	return &driftSchedule{interval: interval, next: map[string]time.Time{}}
}

// tick is how often due should be asked: 64 times per interval, but not
// more often than every 10ms (nor less often than once per interval).
func (s *driftSchedule) tick() time.Duration {
	return min(max(s.interval/64, 10*time.Millisecond), s.interval)
}

// due returns the hosts whose drift check is due at now and schedules
// their next one an interval later. hosts are the hosts known now; a host
// seen for the first time is scheduled, one no longer among them is
// forgotten.
func (s *driftSchedule) due(now time.Time, hosts []string) []string {
	known := make(map[string]bool, len(hosts))
	var due []string
	for _, name := range hosts {
		known[name] = true
		next, ok := s.next[name]
		if !ok {
			next = now.Add(s.offset(name))
		}
		if !next.After(now) {
			due = append(due, name)
			// Keep the phase; after a stall, skip the missed checks
			// rather than run them back to back.
			next = next.Add((now.Sub(next)/s.interval + 1) * s.interval)
		}
		s.next[name] = next
	}
	for name := range s.next {
		if !known[name] {
			delete(s.next, name)
		}
	}
	return due
}

// offset is the host's stable pseudo-random delay, within one interval,
// before its first drift check.
func (s *driftSchedule) offset(name string) time.Duration {
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	return time.Duration(h.Sum64() % uint64(s.interval))
}
