package controller

import (
	"context"
	"sync"
	"time"
)

// queue is a keyed work queue in the style of a level-driven reconciler: a
// key that is added while it waits is not queued twice, a key that is added
// while a worker processes it is processed once more afterwards, and a key
// whose processing failed comes back after an exponential backoff. At most
// one worker handles a key at a time, so keys never block each other.
type queue struct {
	mu         sync.Mutex
	cond       *sync.Cond
	order      []string        // keys ready to be processed, FIFO
	queued     map[string]bool // keys in order
	active     map[string]bool // keys a worker holds
	dirty      map[string]bool // keys added while active
	failures   map[string]int  // consecutive failures per key
	timers     map[string]*time.Timer
	closed     bool
	minBackoff time.Duration
	maxBackoff time.Duration
}

func newQueue(minBackoff, maxBackoff time.Duration) *queue {
	q := &queue{
		queued:     map[string]bool{},
		active:     map[string]bool{},
		dirty:      map[string]bool{},
		failures:   map[string]int{},
		timers:     map[string]*time.Timer{},
		minBackoff: minBackoff,
		maxBackoff: maxBackoff,
	}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// Add makes key ready now (a pending backoff for it is cancelled).
func (q *queue) Add(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if t := q.timers[key]; t != nil {
		t.Stop()
		delete(q.timers, key)
	}
	q.addLocked(key)
}

// AddFirst makes keys ready now ahead of every other waiting key, in the
// order given (a key waiting already moves to the front): the hosts a
// revision changed go before those that only take it, and before drift
// checks.
func (q *queue) AddFirst(keys ...string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	first := make([]string, 0, len(keys))
	moved := map[string]bool{}
	for _, key := range keys {
		if t := q.timers[key]; t != nil {
			t.Stop()
			delete(q.timers, key)
		}
		switch {
		case q.closed || moved[key]:
		case q.active[key]:
			q.dirty[key] = true
		default:
			moved[key] = true
			first = append(first, key)
		}
	}
	if len(first) == 0 {
		return
	}
	rest := make([]string, 0, len(q.order)+len(first))
	rest = append(rest, first...)
	for _, key := range q.order {
		if !moved[key] {
			rest = append(rest, key)
		}
	}
	for _, key := range first {
		q.queued[key] = true
	}
	q.order = rest
	q.cond.Broadcast()
}

func (q *queue) addLocked(key string) {
	switch {
	case q.closed:
	case q.active[key]:
		q.dirty[key] = true
	case !q.queued[key]:
		q.queued[key] = true
		q.order = append(q.order, key)
		q.cond.Signal()
	}
}

// get blocks until a key is ready or the queue is closed (ok false).
func (q *queue) get() (key string, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.order) == 0 && !q.closed {
		q.cond.Wait()
	}
	if q.closed {
		return "", false
	}
	key, q.order = q.order[0], q.order[1:]
	delete(q.queued, key)
	q.active[key] = true
	return key, true
}

// done releases key after processing; err != nil schedules a retry with
// backoff unless the key was added again meanwhile.
func (q *queue) done(key string, err error) (retryIn time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.active, key)
	if err == nil {
		delete(q.failures, key)
	} else {
		q.failures[key]++
	}
	if q.dirty[key] {
		delete(q.dirty, key)
		q.addLocked(key)
		return 0
	}
	if err == nil || q.closed {
		return 0
	}
	retryIn = q.backoff(q.failures[key])
	q.timers[key] = time.AfterFunc(retryIn, func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		delete(q.timers, key)
		q.addLocked(key)
	})
	return retryIn
}

func (q *queue) backoff(failures int) time.Duration {
	d := q.minBackoff
	for i := 1; i < failures && d < q.maxBackoff; i++ {
		d *= 2
	}
	return min(d, q.maxBackoff)
}

// close wakes every waiting worker; later Adds are ignored.
func (q *queue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	for _, t := range q.timers {
		t.Stop()
	}
	q.cond.Broadcast()
}

// run processes keys with n workers until ctx ends.
func (q *queue) run(ctx context.Context, n int, process func(ctx context.Context, key string) error, retried func(key string, err error, in time.Duration)) {
	go func() {
		<-ctx.Done()
		q.close()
	}()
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				key, ok := q.get()
				if !ok {
					return
				}
				err := process(ctx, key)
				if in := q.done(key, err); err != nil && in > 0 && retried != nil {
					retried(key, err, in)
				}
			}
		}()
	}
	wg.Wait()
}
