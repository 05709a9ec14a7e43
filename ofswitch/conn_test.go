package ofswitch

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/brtun/brtun/ovsdb"
)

func TestDialHandshakeReportsDatapathID(t *testing.T) {
	c, _ := dialFake(t, 0x00000000000000ab, testOptions(t))
	assert.Equal(t, uint64(0xab), c.DatapathID())
	assert.Equal(t, uint8(254), c.Features().NTables)
	assert.Nil(t, c.Err())
}

func TestHandshakeRefusesPeerWithoutOpenFlow13(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	got := make(chan Message, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		f := newFakeSwitch(t, nc)
		if _, err := f.tryRead(5 * time.Second); err != nil { // brtun's hello
			return
		}
		if err := f.write(testHello(1, false)); err != nil { // OpenFlow 1.0 only
			return
		}
		m, err := f.tryRead(5 * time.Second)
		if err == nil {
			got <- m
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = Dial(ctx, "tcp:"+ln.Addr().String(), DialOptions{Options: testOptions(t)})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "OpenFlow wire version 1")

	select {
	case m := <-got:
		require.Equal(t, typeError, m.Type())
		e, err := parseError(m)
		require.NoError(t, err)
		assert.Equal(t, uint16(0), e.Type, "HELLO_FAILED")
		assert.Equal(t, uint16(0), e.Code, "INCOMPATIBLE")
	case <-time.After(5 * time.Second):
		t.Fatal("switch got no HELLO_FAILED")
	}
}

func TestHandshakeTimesOutOnSilentPeer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		nc, err := ln.Accept()
		if err == nil {
			t.Cleanup(func() { _ = nc.Close() })
		}
	}()
	opts := testOptions(t)
	opts.HandshakeTimeout = 200 * time.Millisecond
	start := time.Now()
	_, err = Dial(context.Background(), "tcp:"+ln.Addr().String(), DialOptions{Options: opts})
	require.Error(t, err)
	assert.Less(t, time.Since(start), 3*time.Second)
}

func TestEchoRequestFromSwitchIsAnswered(t *testing.T) {
	_, f := dialFake(t, 1, testOptions(t))
	require.NoError(t, f.write(withXid(newMessage(typeEchoRequest, []byte("ping")), 77)))
	for {
		m := f.read()
		if m.Type() == typeEchoRequest { // brtun's own keepalive may come first
			continue
		}
		require.Equal(t, typeEchoReply, m.Type())
		assert.Equal(t, uint32(77), m.Xid())
		assert.Equal(t, []byte("ping"), m.Body())
		return
	}
}

func TestKeepaliveSendsEchoAndDetectsDeadPeer(t *testing.T) {
	opts := testOptions(t)
	opts.EchoInterval = 50 * time.Millisecond
	opts.DeadTimeout = 300 * time.Millisecond

	t.Run("silent peer is dropped", func(t *testing.T) {
		c, f := dialFake(t, 1, opts)
		m := f.read() // the switch never answers, but it does see keepalives
		assert.Equal(t, typeEchoRequest, m.Type())
		err := waitClosed(t, c, 3*time.Second)
		assert.ErrorIs(t, err, ErrPeerDead)
	})
	t.Run("answering peer stays", func(t *testing.T) {
		c, f := dialFake(t, 1, opts)
		f.serve(nil)
		time.Sleep(4 * opts.DeadTimeout)
		assert.Nil(t, c.Err())
		_, err := c.Echo(context.Background())
		assert.NoError(t, err)
	})
}

func TestOptionsDefaults(t *testing.T) {
	o, err := Options{}.withDefaults()
	require.NoError(t, err)
	assert.Equal(t, 20*time.Second, o.DeadTimeout, "the dead-peer bound")
	assert.Equal(t, 12*time.Second, o.EchoInterval)
	// Later than OVS's own probe of an idle controller connection (the
	// inactivity_probe brtun writes; OVS counts whole seconds and may be a
	// second late), so OVS sends the echoes.
	probe := time.Duration(ovsdb.ControllerInactivityProbeMs/1000) * time.Second
	assert.Greater(t, o.EchoInterval, probe+time.Second)

	o, err = Options{EchoInterval: time.Second}.withDefaults()
	require.NoError(t, err)
	assert.Equal(t, 3*time.Second, o.DeadTimeout)
	o, err = Options{DeadTimeout: 4 * time.Second}.withDefaults()
	require.NoError(t, err)
	assert.Equal(t, 2*time.Second, o.EchoInterval)
	_, err = Options{EchoInterval: 2 * time.Second, DeadTimeout: 2 * time.Second}.withDefaults()
	assert.ErrorContains(t, err, "must exceed echo interval")
}

// TestKeepaliveOnlyWhenThePeerIsSilent: while the switch keeps talking
// (here its own echo requests, as OVS's inactivity probe sends them) brtun
// only answers; once the switch stops, brtun sends an echo request after
// EchoInterval of silence, and a switch that then says nothing at all is
// closed DeadTimeout after its last message: the dead-peer bound.
func TestKeepaliveOnlyWhenThePeerIsSilent(t *testing.T) {
	opts := testOptions(t)
	opts.EchoInterval = time.Second
	opts.DeadTimeout = 3 * time.Second
	c, f := dialFake(t, 1, opts)

	// The switch talks every 100 ms for 2.5 echo intervals.
	var last time.Time
	xid := uint32(1000)
	for start := time.Now(); time.Since(start) < 5*opts.EchoInterval/2; xid++ {
		last = time.Now()
		require.NoError(t, f.write(withXid(newMessage(typeEchoRequest, nil), xid)))
		m := f.read()
		require.Equal(t, typeEchoReply, m.Type(), "brtun sent %s while the switch was talking", typeName(m.Type()))
		require.Equal(t, xid, m.Xid())
		time.Sleep(100 * time.Millisecond)
	}

	// Silence: brtun probes once, after about EchoInterval.
	m, err := f.tryRead(2 * opts.EchoInterval)
	require.NoError(t, err, "no echo request after the switch fell silent")
	probed := time.Since(last)
	assert.Equal(t, typeEchoRequest, m.Type())
	assert.GreaterOrEqual(t, probed, opts.EchoInterval*15/16, "brtun probed a switch that had just talked")

	// No answer: closed as dead once nothing arrived for DeadTimeout.
	err = waitClosed(t, c, 2*opts.DeadTimeout)
	dead := time.Since(last)
	assert.ErrorIs(t, err, ErrPeerDead)
	assert.GreaterOrEqual(t, dead, opts.DeadTimeout)
	assert.Less(t, dead, opts.DeadTimeout+time.Second, "the dead-peer bound")
	t.Logf("switch silent since %s: echo request after %s, closed after %s", last.Format(time.StampMilli), probed, dead)
}

func TestBarrierEchoAndRoleRoundTrips(t *testing.T) {
	c, f := dialFake(t, 1, testOptions(t))
	f.serve(func(m Message) {
		if m.Type() == typeRoleRequest {
			body := append([]byte{}, m.Body()...)
			_ = f.write(withXid(newMessage(typeRoleReply, body), m.Xid()))
		}
	})
	ctx := context.Background()
	require.NoError(t, c.Barrier(ctx))
	rtt, err := c.Echo(ctx)
	require.NoError(t, err)
	assert.Positive(t, rtt)
	role, gen, err := c.RequestRole(ctx, RolePrimary, 7)
	require.NoError(t, err)
	assert.Equal(t, RolePrimary, role)
	assert.Equal(t, uint64(7), gen)
}

func TestConcurrentCallsGetTheirOwnReplies(t *testing.T) {
	c, f := dialFake(t, 1, testOptions(t))
	f.serve(nil)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for range 20 {
		wg.Add(2)
		go func() { defer wg.Done(); errs <- c.Barrier(context.Background()) }()
		go func() { defer wg.Done(); _, err := c.Echo(context.Background()); errs <- err }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
}

func TestSwitchErrorIsAttributedToItsRequest(t *testing.T) {
	c, f := dialFake(t, 1, testOptions(t))
	f.serve(func(m Message) {
		if m.Type() == typeRoleRequest {
			_ = f.write(testError(m.Xid(), 11, 2)) // ROLE_REQUEST_FAILED / BAD_ROLE
		}
	})
	_, _, err := c.RequestRole(context.Background(), RoleSecondary, 1)
	var oe *OFError
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, uint16(11), oe.Type)
	assert.Equal(t, uint16(2), oe.Code)
	require.NoError(t, c.Barrier(context.Background()), "connection still usable")
}

func TestSendBatchReportsRefusedMessagesByIndex(t *testing.T) {
	c, f := dialFake(t, 1, testOptions(t))
	var mu sync.Mutex
	var seen []uint32
	f.serve(func(m Message) {
		if m.Type() != typeFlowMod {
			return
		}
		mu.Lock()
		seen = append(seen, m.Xid())
		n := len(seen)
		mu.Unlock()
		if n == 2 || n == 4 {
			_ = f.write(testError(m.Xid(), 2, 4)) // BAD_ACTION / BAD_OUT_PORT
		}
	})
	msgs := make([]Message, 5)
	for i := range msgs {
		msgs[i] = newMessage(typeFlowMod, make([]byte, 48))
	}
	err := c.SendBatch(context.Background(), msgs)
	var be *BatchError
	require.ErrorAs(t, err, &be)
	require.Len(t, be.Failed, 2)
	assert.Equal(t, 1, be.Failed[0].Index)
	assert.Equal(t, 3, be.Failed[1].Index)
	assert.Equal(t, uint16(2), be.Failed[0].Err.Type)
	mu.Lock()
	assert.Len(t, seen, 5, "every message was sent")
	mu.Unlock()

	require.NoError(t, c.SendBatch(context.Background(), msgs[:1]), "a later batch does not inherit errors")
}

// bundleSwitch emulates OVS's bundle handling: it answers open, commit and
// discard, refuses the adds listed in refuse (by position), and records what
// it saw.
type bundleSwitch struct {
	mu       sync.Mutex
	adds     int
	ctrl     []uint16
	innerBad int // adds whose inner xid differed from the add's xid
}

func (b *bundleSwitch) handle(f *fakeSwitch, refuse map[int]bool) func(Message) {
	return func(m Message) {
		b.mu.Lock()
		defer b.mu.Unlock()
		if isBundleAdd(m) {
			if binary.BigEndian.Uint32(m[bundleAddInnerOffset+4:]) != m.Xid() {
				b.innerBad++
			}
			if refuse[b.adds] {
				_ = f.write(testError(m.Xid(), 4, 9)) // BAD_MATCH / BAD_PREREQ
			}
			b.adds++
			return
		}
		if r, err := parseBundleReply(m); err == nil {
			b.ctrl = append(b.ctrl, r.Type)
			_ = f.write(testBundleReply(m.Xid(), r.BundleID, r.Type+1))
		}
	}
}

func TestApplyBundleCommitsWhenAllAddsAreAccepted(t *testing.T) {
	c, f := dialFake(t, 1, testOptions(t))
	var sw bundleSwitch
	f.serve(sw.handle(f, nil))
	msgs := []Message{newMessage(typeFlowMod, make([]byte, 48)), newMessage(typeFlowMod, make([]byte, 56))}
	require.NoError(t, c.ApplyBundle(context.Background(), msgs))
	sw.mu.Lock()
	defer sw.mu.Unlock()
	assert.Equal(t, 2, sw.adds)
	assert.Equal(t, []uint16{bundleOpenRequest, bundleCommitRequest}, sw.ctrl)
	assert.Zero(t, sw.innerBad)
}

func TestApplyBundleDiscardsWhenAnAddIsRefused(t *testing.T) {
	c, f := dialFake(t, 1, testOptions(t))
	var sw bundleSwitch
	f.serve(sw.handle(f, map[int]bool{1: true}))
	msgs := []Message{
		newMessage(typeFlowMod, make([]byte, 48)),
		newMessage(typeFlowMod, make([]byte, 48)),
		newMessage(typeFlowMod, make([]byte, 48)),
	}
	err := c.ApplyBundle(context.Background(), msgs)
	var be *BatchError
	require.ErrorAs(t, err, &be)
	require.Len(t, be.Failed, 1)
	assert.Equal(t, 1, be.Failed[0].Index)
	sw.mu.Lock()
	defer sw.mu.Unlock()
	assert.Equal(t, 3, sw.adds)
	assert.Equal(t, []uint16{bundleOpenRequest, bundleDiscardRequest}, sw.ctrl, "no commit after a refused add")
}

// TestBundleAddsOnTheWireAreStampedCopies: what Bundle.Add writes straight
// into the connection is, message for message, the bundle add of the
// caller's message stamped with its xid, and the caller's slices are left
// untouched.
func TestBundleAddsOnTheWireAreStampedCopies(t *testing.T) {
	c, f := dialFake(t, 1, testOptions(t))
	var mu sync.Mutex
	var seen []Message
	var sw bundleSwitch
	handle := sw.handle(f, nil)
	f.serve(func(m Message) {
		if isBundleAdd(m) {
			mu.Lock()
			seen = append(seen, m)
			mu.Unlock()
		}
		handle(m)
	})
	msgs := []Message{newMessage(typeFlowMod, bytes.Repeat([]byte{0xaa}, 48)), newMessage(typeFlowMod, bytes.Repeat([]byte{0xbb}, 104))}
	orig := []string{hex.EncodeToString(msgs[0]), hex.EncodeToString(msgs[1])}
	ctx := context.Background()
	b, err := c.OpenBundle(ctx)
	require.NoError(t, err)
	require.NoError(t, b.Add(msgs...))
	require.NoError(t, b.Commit(ctx))
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, seen, 2)
	for i, m := range msgs {
		add, err := buildBundleAdd(b.ID(), m)
		require.NoError(t, err)
		assert.Equal(t, hex.EncodeToString(withXid(add, seen[i].Xid())), hex.EncodeToString(seen[i]), "add #%d", i)
		assert.Equal(t, orig[i], hex.EncodeToString(m), "caller's message #%d untouched", i)
	}
	assert.Equal(t, seen[0].Xid()+1, seen[1].Xid(), "consecutive xids")
}

// slowBundleSwitch works through what brtun sends like a busy ovs-vswitchd:
// 50 messages, then a pause (one main-loop pass), answering echoes and
// barriers in stream order and nothing else while it goes. With hang set it
// stops reading after the first pass instead.
func slowBundleSwitch(f *fakeSwitch, pass time.Duration, hang bool) *bundleSwitch {
	sw := &bundleSwitch{}
	handle := sw.handle(f, nil)
	go func() {
		for n := 1; ; n++ {
			m, err := f.tryRead(10 * time.Second)
			if err != nil {
				return
			}
			if n%50 == 0 {
				if hang {
					return
				}
				time.Sleep(pass)
			}
			switch m.Type() {
			case typeEchoRequest:
				_ = f.write(withXid(buildEchoReply(m), m.Xid()))
			case typeBarrierRequest:
				_ = f.write(withXid(newMessage(typeBarrierReply, nil), m.Xid()))
			default:
				handle(m)
			}
		}
	}()
	return sw
}

// TestBigBundleToASlowSwitchKeepsTheConnection: a bundle that a switch takes
// three dead-peer timeouts to work through, saying nothing but the answers to
// the echoes brtun puts between the adds, is committed on the same
// connection; a switch that stops reading is still found dead.
func TestBigBundleToASlowSwitchKeepsTheConnection(t *testing.T) {
	opts := Options{Logger: zaptest.NewLogger(t), EchoInterval: 200 * time.Millisecond, DeadTimeout: 600 * time.Millisecond}
	msgs := make([]Message, 5000) // 100 passes of 20 ms: 2 s
	for i := range msgs {
		msgs[i] = newMessage(typeFlowMod, make([]byte, 150))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	c, f := dialFake(t, 1, opts)
	sw := slowBundleSwitch(f, 20*time.Millisecond, false)
	start := time.Now()
	require.NoError(t, c.ApplyBundle(ctx, msgs))
	assert.Greater(t, time.Since(start), 3*opts.DeadTimeout, "the switch was slow")
	assert.NoError(t, c.Err(), "still connected")
	sw.mu.Lock()
	assert.Equal(t, len(msgs), sw.adds)
	assert.Equal(t, []uint16{bundleOpenRequest, bundleCommitRequest}, sw.ctrl)
	sw.mu.Unlock()

	hung, hf := dialFake(t, 2, opts)
	slowBundleSwitch(hf, 20*time.Millisecond, true)
	err := hung.ApplyBundle(ctx, msgs)
	require.Error(t, err)
	assert.ErrorIs(t, waitClosed(t, hung, 5*time.Second), ErrPeerDead)
}

func TestBundleAddsInSeveralCallsKeepTheirIndexes(t *testing.T) {
	c, f := dialFake(t, 1, testOptions(t))
	var sw bundleSwitch
	f.serve(sw.handle(f, map[int]bool{3: true}))
	ctx := context.Background()
	b, err := c.OpenBundle(ctx)
	require.NoError(t, err)
	require.NoError(t, b.Add(newMessage(typeFlowMod, make([]byte, 48)), newMessage(typeFlowMod, make([]byte, 48))))
	require.NoError(t, b.Add(newMessage(typeFlowMod, make([]byte, 48)), newMessage(typeFlowMod, make([]byte, 48))))
	err = b.Commit(ctx)
	var be *BatchError
	require.ErrorAs(t, err, &be)
	require.Len(t, be.Failed, 1)
	assert.Equal(t, 3, be.Failed[0].Index)
	assert.Error(t, b.Add(newMessage(typeFlowMod, make([]byte, 48))), "bundle is closed after discard")
}

func TestDumpFlowStatsStitchesMultipartParts(t *testing.T) {
	c, f := dialFake(t, 1, testOptions(t))
	var gotReq Message
	var mu sync.Mutex
	f.serve(func(m Message) {
		if m.Type() != typeMultipartRequest {
			return
		}
		mu.Lock()
		gotReq = m
		mu.Unlock()
		_ = f.write(testFlowStatsReply(m.Xid(), true, testFlowStatsEntry(0, 1, 1, nil), testFlowStatsEntry(1, 2, 2, nil)))
		_ = f.write(withXid(newMessage(typeBarrierReply, nil), 999999)) // unrelated reply in between
		_ = f.write(testFlowStatsReply(m.Xid(), true, testFlowStatsEntry(2, 3, 3, nil)))
		_ = f.write(testFlowStatsReply(m.Xid(), false, testFlowStatsEntry(3, 4, 4, nil)))
	})
	stats, err := c.DumpFlowStats(context.Background(), FlowFilter{Table: AllTables, Cookie: 0x10, CookieMask: 0xf0})
	require.NoError(t, err)
	require.Len(t, stats, 4)
	for i, s := range stats {
		assert.Equal(t, uint8(i), s.Table)
		assert.Equal(t, uint64(i+1), s.Cookie)
		assert.Equal(t, 7*time.Second, s.Duration)
	}
	mu.Lock()
	defer mu.Unlock()
	body := gotReq.Body()
	assert.Equal(t, multipartTypeFlow, binary.BigEndian.Uint16(body[0:2]))
	assert.Equal(t, AllTables, body[8], "table id")
	assert.Equal(t, uint64(0x10), binary.BigEndian.Uint64(body[24:32]), "cookie")
	assert.Equal(t, uint64(0xf0), binary.BigEndian.Uint64(body[32:40]), "cookie mask")
}

func TestContextCancelLeavesConnectionUsable(t *testing.T) {
	c, f := dialFake(t, 1, testOptions(t))
	var mu sync.Mutex
	swallowed := 0
	go func() {
		for {
			m, err := f.tryRead(time.Minute)
			if err != nil {
				return
			}
			mu.Lock()
			first := swallowed == 0 && m.Type() == typeBarrierRequest
			if first {
				swallowed++
			}
			mu.Unlock()
			switch {
			case first: // never answered
			case m.Type() == typeBarrierRequest:
				_ = f.write(withXid(newMessage(typeBarrierReply, nil), m.Xid()))
			case m.Type() == typeEchoRequest:
				_ = f.write(withXid(newMessage(typeEchoReply, nil), m.Xid()))
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := c.Barrier(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NoError(t, c.Barrier(context.Background()))
	assert.Nil(t, c.Err())
}

func TestCallsFailWhenConnectionCloses(t *testing.T) {
	c, f := dialFake(t, 1, testOptions(t))
	done := make(chan error, 1)
	go func() { done <- c.Barrier(context.Background()) }()
	m := f.read()
	require.Equal(t, typeBarrierRequest, m.Type())
	require.NoError(t, f.nc.Close())
	select {
	case err := <-done:
		assert.ErrorIs(t, err, ErrClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("barrier did not fail after the peer went away")
	}
	_, err := c.Echo(context.Background())
	assert.ErrorIs(t, err, ErrClosed)
}

func TestUnsolicitedMessagesReachOnMessage(t *testing.T) {
	got := make(chan Message, 1)
	opts := testOptions(t)
	opts.OnMessage = func(_ *Conn, m Message) { got <- m }
	_, f := dialFake(t, 1, opts)
	portStatus := withXid(newMessage(typePortStatus, make([]byte, 72)), 0)
	require.NoError(t, f.write(portStatus))
	select {
	case m := <-got:
		assert.Equal(t, portStatus, m)
	case <-time.After(5 * time.Second):
		t.Fatal("no PORT_STATUS delivered")
	}
}

// TestBadPeersLoseOnlyTheirConnection connects one good switch and, one
// after another, switches that misbehave to the same Listener: each bad one
// is dropped with a reason, the good one keeps answering.
func TestBadPeersLoseOnlyTheirConnection(t *testing.T) {
	type event struct {
		dpid uint64
		err  error
	}
	connected := make(chan *Conn, 10)
	disconnected := make(chan event, 10)
	opts := ListenerOptions{
		Options:      testOptions(t),
		Address:      "tcp:127.0.0.1:0",
		OnConnect:    func(c *Conn) { connected <- c },
		OnDisconnect: func(c *Conn, err error) { disconnected <- event{c.DatapathID(), err} },
	}
	l := serveListener(t, opts)

	connect := func(dpid uint64) (*fakeSwitch, *Conn) {
		nc, err := net.Dial("tcp", l.Addr().String())
		require.NoError(t, err)
		f := newFakeSwitch(t, nc)
		require.NoError(t, f.handshake(dpid))
		select {
		case c := <-connected:
			require.Equal(t, dpid, c.DatapathID())
			return f, c
		case <-time.After(5 * time.Second):
			t.Fatal("no OnConnect")
			return nil, nil
		}
	}
	good, goodConn := connect(1)
	good.serve(nil)

	flowStatsWithBadEntry := func(xid uint32) []byte {
		e := testFlowStatsEntry(0, 1, 1, nil)
		binary.BigEndian.PutUint16(e[0:2], 500) // longer than the message
		return testFlowStatsReply(xid, false, e)
	}
	flowStatsWithBrokenAction := func(xid uint32) []byte {
		apply := []byte{0, 4, 0, 16, 0, 0, 0, 0, 0, 18, 0, 0, 0, 0, 0, 0} // pop_vlan with length 0
		return testFlowStatsReply(xid, false, testFlowStatsEntry(0, 1, 1, apply))
	}
	wrongVersion := newMessage(typeBarrierReply, nil)
	wrongVersion[0] = 1
	truncatedFeatures := newMessage(typeFeaturesReply, make([]byte, 4))

	for i, tc := range []struct {
		name  string
		bytes func(xid uint32) []byte // what the bad switch sends
		dump  bool                    // send it as the answer to a flow dump
		want  error
	}{
		{"garbage bytes", func(uint32) []byte { return []byte("GET / HTTP/1.1\r\n\r\n") }, false, ErrMalformed},
		{"length below header", func(uint32) []byte { return []byte{4, 0, 0, 2, 0, 0, 0, 0} }, false, ErrMalformed},
		{"wrong version", func(uint32) []byte { return wrongVersion }, false, ErrMalformed},
		{"truncated features reply", func(uint32) []byte { return truncatedFeatures }, false, ErrMalformed},
		{"flow stats the decoder cannot walk", flowStatsWithBadEntry, true, ErrMalformed},
		{"flow stats with a broken action", flowStatsWithBrokenAction, true, ErrMalformed},
		{"truncated message then close", func(uint32) []byte { return newMessage(typeEchoRequest, make([]byte, 32))[:20] }, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dpid := uint64(100 + i)
			bad, badConn := connect(dpid)
			dumpErr := make(chan error, 1)
			xid := uint32(0)
			if tc.dump {
				go func() {
					_, err := badConn.DumpFlows(context.Background(), FlowFilter{Table: AllTables})
					dumpErr <- err
				}()
				for {
					m := bad.read()
					if m.Type() == typeMultipartRequest {
						xid = m.Xid()
						break
					}
				}
			}
			require.NoError(t, bad.write(tc.bytes(xid)))
			if tc.want == nil {
				require.NoError(t, bad.nc.Close())
			}
			select {
			case ev := <-disconnected:
				assert.Equal(t, dpid, ev.dpid)
				if tc.want != nil {
					assert.ErrorIs(t, ev.err, tc.want)
				} else {
					assert.Error(t, ev.err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("bad switch was not disconnected")
			}
			if tc.dump {
				err := <-dumpErr
				assert.True(t, errors.Is(err, ErrClosed) || errors.Is(err, ErrMalformed), "dump fails: %v", err)
			}
			_, err := bad.tryRead(5 * time.Second)
			for err == nil { // drain whatever brtun sent before closing
				_, err = bad.tryRead(5 * time.Second)
			}
			assert.True(t, isEOF(err), "brtun closed the bad connection: %v", err)

			require.NoError(t, goodConn.Barrier(context.Background()), "good switch still served")
		})
	}
}

// testPKI writes a CA and certificates it signed (plus one from another CA)
// as PEM files, the way ovs-pki would lay them out.
type testPKI struct {
	brtun, sw, stranger TLSFiles
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	newCA := func(name string) (*x509.Certificate, *ecdsa.PrivateKey, string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		require.NoError(t, err)
		cert, err := x509.ParseCertificate(der)
		require.NoError(t, err)
		path := filepath.Join(dir, name+"-ca.pem")
		require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
		return cert, key, path
	}
	issue := func(name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, caFile string, serial int64) TLSFiles {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		require.NoError(t, err)
		keyDER, err := x509.MarshalECPrivateKey(key)
		require.NoError(t, err)
		f := TLSFiles{CertFile: filepath.Join(dir, name+"-cert.pem"), KeyFile: filepath.Join(dir, name+"-key.pem"), CAFile: caFile}
		require.NoError(t, os.WriteFile(f.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
		require.NoError(t, os.WriteFile(f.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
		return f
	}
	ca, caKey, caFile := newCA("brtun")
	other, otherKey, otherFile := newCA("other")
	return testPKI{
		brtun:    issue("controller", ca, caKey, caFile, 2),
		sw:       issue("switch", ca, caKey, caFile, 3),
		stranger: issue("stranger", other, otherKey, otherFile, 4),
	}
}

func TestListenerOverTLSAcceptsOnlySwitchesOfItsCA(t *testing.T) {
	pki := newTestPKI(t)
	serverCfg, err := ServerTLSConfig(pki.brtun)
	require.NoError(t, err)
	connected := make(chan *Conn, 2)
	l := serveListener(t, ListenerOptions{
		Options: testOptions(t), Address: "ssl:127.0.0.1:0", TLSConfig: serverCfg,
		OnConnect: func(c *Conn) { connected <- c },
	})

	// A switch with a certificate from another CA is refused.
	strangerCfg, err := ClientTLSConfig(pki.stranger)
	require.NoError(t, err)
	if nc, err := tls.Dial("tcp", l.Addr().String(), strangerCfg); err == nil {
		f := newFakeSwitch(t, nc)
		assert.Error(t, f.handshake(0xbad), "a stranger gets no OpenFlow session")
	}

	switchCfg, err := ClientTLSConfig(pki.sw)
	require.NoError(t, err)
	nc, err := tls.Dial("tcp", l.Addr().String(), switchCfg)
	require.NoError(t, err)
	f := newFakeSwitch(t, nc)
	require.NoError(t, f.handshake(0x5eed))
	f.serve(nil)
	select {
	case c := <-connected:
		assert.Equal(t, uint64(0x5eed), c.DatapathID(), "only the switch of the right CA connected")
		require.NoError(t, c.Barrier(context.Background()))
	case <-time.After(5 * time.Second):
		t.Fatal("no TLS switch connected")
	}

	_, err = Listen(ListenerOptions{Address: "ssl:127.0.0.1:0"})
	assert.Error(t, err, "ssl without a TLS config")
	_, err = ServerTLSConfig(TLSFiles{CertFile: pki.brtun.CertFile, KeyFile: pki.brtun.KeyFile, CAFile: pki.brtun.KeyFile})
	assert.Error(t, err, "a CA file without a certificate")
}

func TestDialSSLSwitch(t *testing.T) {
	pki := newTestPKI(t)
	switchSide, err := ServerTLSConfig(pki.sw)
	require.NoError(t, err)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", switchSide)
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		f := newFakeSwitch(t, nc)
		if f.handshake(0xcafe) == nil {
			f.serve(nil)
		}
	}()
	clientCfg, err := ClientTLSConfig(pki.brtun)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, "ssl:"+ln.Addr().String(), DialOptions{Options: testOptions(t), TLSConfig: clientCfg})
	require.NoError(t, err)
	defer c.Close()
	assert.Equal(t, uint64(0xcafe), c.DatapathID())
	require.NoError(t, c.Barrier(ctx))

	_, err = Dial(ctx, "ssl:"+ln.Addr().String(), DialOptions{Options: testOptions(t)})
	assert.Error(t, err, "ssl without a TLS config")
}

func TestParseTarget(t *testing.T) {
	for in, want := range map[string]target{
		"tcp:127.0.0.1:6653":      {network: "tcp", address: "127.0.0.1:6653"},
		"ssl:198.51.100.254:6653": {network: "tcp", address: "198.51.100.254:6653", tls: true},
		"tcp:[2001:db8::1]:6653":  {network: "tcp", address: "[2001:db8::1]:6653"},
		"unix:/tmp/x/br-tun.mgmt": {network: "unix", address: "/tmp/x/br-tun.mgmt"},
	} {
		got, err := parseTarget(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "tcp", "tcp:", "tcp:127.0.0.1", "ptcp:6653", "udp:1.2.3.4:5", "tcp:127.0.0.1:"} {
		_, err := parseTarget(in)
		assert.Error(t, err, in)
	}
}

// Where the xid counter wraps, no request or batch gets xid 0 (the xid of
// the switch's unsolicited flow monitor updates and of the echoes between
// bundle adds), and a batch's xids stay consecutive.
func TestXidsSkipZeroWhereTheCounterWraps(t *testing.T) {
	c := &Conn{nextXid: math.MaxUint32 - 1}
	assert.Equal(t, []uint32{math.MaxUint32 - 1, math.MaxUint32, 1, 2}, []uint32{c.takeXid(), c.takeXid(), c.takeXid(), c.takeXid()})

	c.nextXid = math.MaxUint32 - 2
	assert.Equal(t, uint32(math.MaxUint32-2), c.reserveXids(3), "a run that ends on the last xid fits")
	assert.Equal(t, uint32(1), c.takeXid(), "and the next one skips 0")

	c.nextXid = math.MaxUint32 - 2
	assert.Equal(t, uint32(1), c.reserveXids(4), "a run that would wrap starts again at 1")
	assert.Equal(t, uint32(5), c.takeXid())
}
