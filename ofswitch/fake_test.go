package ofswitch

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
)

// fakeSwitch is the switch side of a test connection over loopback TCP. Tests
// script it message by message, or let serve answer automatically.
type fakeSwitch struct {
	t  *testing.T
	nc net.Conn
	rd *bufio.Reader

	wmu sync.Mutex
}

func newFakeSwitch(t *testing.T, nc net.Conn) *fakeSwitch {
	t.Helper()
	t.Cleanup(func() { _ = nc.Close() })
	return &fakeSwitch{t: t, nc: nc, rd: bufio.NewReader(nc)}
}

// read returns the next message from brtun, failing the test after 5s.
func (f *fakeSwitch) read() Message {
	f.t.Helper()
	m, err := f.tryRead(5 * time.Second)
	require.NoError(f.t, err)
	return m
}

func (f *fakeSwitch) tryRead(timeout time.Duration) (Message, error) {
	if err := f.nc.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	return readMessage(f.rd, 0)
}

// write sends raw bytes to brtun; errors are returned, not fatal, because
// brtun may legitimately have closed the connection.
func (f *fakeSwitch) write(b []byte) error {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	_, err := f.nc.Write(b)
	return err
}

// handshake plays the switch side of HELLO and FEATURES. It returns errors
// instead of failing the test, so it may run on any goroutine.
func (f *fakeSwitch) handshake(dpid uint64) error {
	hello, err := f.tryRead(5 * time.Second)
	if err != nil {
		return err
	}
	if hello.Type() != typeHello {
		return fmt.Errorf("expected HELLO, got %s", typeName(hello.Type()))
	}
	if err := f.write(testHello(Version13, true)); err != nil {
		return err
	}
	req, err := f.tryRead(5 * time.Second)
	if err != nil {
		return err
	}
	if req.Type() != typeFeaturesRequest {
		return fmt.Errorf("expected FEATURES_REQUEST, got %s", typeName(req.Type()))
	}
	return f.write(testFeaturesReply(req.Xid(), dpid))
}

// serve answers echo requests and barriers and hands everything else to
// handle (which may be nil), until the connection ends. It returns a channel
// closed when serving stops.
func (f *fakeSwitch) serve(handle func(m Message)) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			m, err := f.tryRead(time.Minute)
			if err != nil {
				return
			}
			switch m.Type() {
			case typeEchoRequest:
				_ = f.write(withXid(newMessage(typeEchoReply, m.Body()), m.Xid()))
			case typeBarrierRequest:
				_ = f.write(withXid(newMessage(typeBarrierReply, nil), m.Xid()))
			default:
				if handle != nil {
					handle(m)
				}
			}
		}
	}()
	return done
}

// testHello builds a HELLO of the given version, with or without a version
// bitmap element announcing that same version.
func testHello(version uint8, bitmap bool) Message {
	var body []byte
	if bitmap {
		body = make([]byte, 8)
		binary.BigEndian.PutUint16(body[0:2], 1)
		binary.BigEndian.PutUint16(body[2:4], 8)
		binary.BigEndian.PutUint32(body[4:8], 1<<version)
	}
	m := newMessage(typeHello, body)
	m[0] = version
	return m
}

func testFeaturesReply(xid uint32, dpid uint64) Message {
	body := make([]byte, 24)
	binary.BigEndian.PutUint64(body[0:8], dpid)
	body[12] = 254
	return withXid(newMessage(typeFeaturesReply, body), xid)
}

func testError(xid uint32, typ, code uint16) Message {
	body := make([]byte, 4+8)
	binary.BigEndian.PutUint16(body[0:2], typ)
	binary.BigEndian.PutUint16(body[2:4], code)
	return withXid(newMessage(typeError, body), xid)
}

// testBundleReply answers a bundle control request.
func testBundleReply(xid, id uint32, typ uint16) Message {
	body := make([]byte, 16)
	binary.BigEndian.PutUint32(body[0:4], onfExperimenterID)
	binary.BigEndian.PutUint32(body[4:8], onfBundleControl)
	binary.BigEndian.PutUint32(body[8:12], id)
	binary.BigEndian.PutUint16(body[12:14], typ)
	return withXid(newMessage(typeExperimenter, body), xid)
}

// testFlowStatsEntry builds one ofp_flow_stats entry with an empty match and
// the given instruction bytes.
func testFlowStatsEntry(table uint8, priority uint16, cookie uint64, instructions []byte) []byte {
	e := make([]byte, 56+len(instructions))
	binary.BigEndian.PutUint16(e[0:2], uint16(len(e)))
	e[2] = table
	binary.BigEndian.PutUint32(e[4:8], 7) // duration 7s
	binary.BigEndian.PutUint16(e[12:14], priority)
	binary.BigEndian.PutUint64(e[24:32], cookie)
	binary.BigEndian.PutUint64(e[32:40], 3) // packets
	binary.BigEndian.PutUint16(e[48:50], matchTypeOXM)
	binary.BigEndian.PutUint16(e[50:52], matchHeaderLen)
	copy(e[56:], instructions)
	return e
}

// testFlowStatsReply wraps entries in one multipart reply part.
func testFlowStatsReply(xid uint32, more bool, entries ...[]byte) Message {
	body := make([]byte, 8)
	binary.BigEndian.PutUint16(body[0:2], multipartTypeFlow)
	if more {
		binary.BigEndian.PutUint16(body[2:4], 1)
	}
	for _, e := range entries {
		body = append(body, e...)
	}
	return withXid(newMessage(typeMultipartReply, body), xid)
}

// testOptions are short timings for unit tests.
// serveListener listens as o says and serves until the test ends; the
// cleanup requires Serve to have returned without an error.
func serveListener(t *testing.T, o ListenerOptions) *Listener {
	t.Helper()
	l, err := Listen(o)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- l.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-served)
	})
	return l
}

func testOptions(t *testing.T) Options {
	return Options{Logger: zaptest.NewLogger(t), EchoInterval: time.Second, DeadTimeout: 10 * time.Second}
}

// dialFake starts a fake switch listening on loopback, dials it with opts and
// returns both sides after the handshake.
func dialFake(t *testing.T, dpid uint64, opts Options) (*Conn, *fakeSwitch) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	type result struct {
		f   *fakeSwitch
		err error
	}
	accepted := make(chan result, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			accepted <- result{err: err}
			return
		}
		f := newFakeSwitch(t, nc)
		accepted <- result{f: f, err: f.handshake(dpid)}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, "tcp:"+ln.Addr().String(), DialOptions{Options: opts})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	r := <-accepted
	require.NoError(t, r.err, "fake switch handshake")
	return c, r.f
}

// waitClosed waits for c to close and returns why.
func waitClosed(t *testing.T, c *Conn, within time.Duration) error {
	t.Helper()
	select {
	case <-c.Done():
		return c.Err()
	case <-time.After(within):
		t.Fatalf("connection still open after %s", within)
		return nil
	}
}

// isEOF tells whether err means the peer closed the connection.
func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}
