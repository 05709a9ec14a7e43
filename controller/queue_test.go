package controller

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestQueueDeduplicatesWaitingKeys(t *testing.T) {
	q := newQueue(time.Millisecond, time.Millisecond)
	q.Add("a")
	q.Add("b")
	q.Add("a")
	k1, _ := q.get()
	k2, _ := q.get()
	assert.Equal(t, []string{"a", "b"}, []string{k1, k2})
	assert.Empty(t, q.order)
}

func TestQueueReprocessesKeyAddedWhileActive(t *testing.T) {
	q := newQueue(time.Millisecond, time.Millisecond)
	q.Add("a")
	k, _ := q.get()
	q.Add("a") // arrives while a worker holds "a"
	assert.Empty(t, q.order, "an active key is not handed to a second worker")
	q.done(k, nil)
	k, ok := q.get()
	require.True(t, ok)
	assert.Equal(t, "a", k)
}

func TestQueueRetriesFailuresWithGrowingBackoff(t *testing.T) {
	q := newQueue(10*time.Millisecond, 40*time.Millisecond)
	assert.Equal(t, 10*time.Millisecond, q.backoff(1))
	assert.Equal(t, 20*time.Millisecond, q.backoff(2))
	assert.Equal(t, 40*time.Millisecond, q.backoff(3))
	assert.Equal(t, 40*time.Millisecond, q.backoff(9))

	var mu sync.Mutex
	calls := map[string]int{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		q.run(ctx, 2, func(_ context.Context, key string) error {
			mu.Lock()
			defer mu.Unlock()
			calls[key]++
			if key == "dead" {
				return errors.New("unreachable")
			}
			return nil
		}, nil)
		close(done)
	}()
	q.Add("dead")
	q.Add("alive")
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return calls["dead"] >= 3 && calls["alive"] == 1
	}, 5*time.Second, 5*time.Millisecond, "a failing key is retried while the other key is served once")
	q.Add("alive")
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return calls["alive"] == 2
	}, 5*time.Second, 5*time.Millisecond, "a failing key does not block other keys")
	cancel()
	<-done
}

func TestQueueAddFirstGoesAheadOfWaitingKeys(t *testing.T) {
	q := newQueue(time.Millisecond, time.Millisecond)
	q.Add("a")
	q.Add("b")
	q.Add("c")
	q.AddFirst("c", "d", "c")
	k, _ := q.get()
	assert.Equal(t, "c", k)
	q.AddFirst("c") // active: processed once more afterwards, not twice at once
	var got []string
	for len(q.order) > 0 {
		k, _ := q.get()
		got = append(got, k)
	}
	assert.Equal(t, []string{"d", "a", "b"}, got, "a waiting key moved to the front, a new one inserted there, the rest in order")
	q.done("c", nil)
	k, ok := q.get()
	require.True(t, ok)
	assert.Equal(t, "c", k, "the key added while active comes back")
	assert.Empty(t, q.order)
}
