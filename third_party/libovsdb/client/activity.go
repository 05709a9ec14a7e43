package client

import (
	"net"
	"sync/atomic"
	"time"
)

// activityConn is a connection that records when it last received data
// (brtun's copy): brtun sends its own echo request only when the server
// was silent for its probe interval.
type activityConn struct {
	net.Conn
	epoch time.Time    // the connection's creation: times below are monotonic offsets from it
	last  atomic.Int64 // nanoseconds after epoch of the last read that returned data
}

func newActivityConn(c net.Conn) *activityConn {
	return &activityConn{Conn: c, epoch: time.Now()}
}

// Read reads from the connection and records the time when data came.
func (c *activityConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.last.Store(int64(time.Since(c.epoch)))
	}
	return n, err
}

// sinceReceived returns how long ago data last arrived, or how long ago
// the connection was made when none has.
func (c *activityConn) sinceReceived() time.Duration {
	return time.Since(c.epoch) - time.Duration(c.last.Load())
}
