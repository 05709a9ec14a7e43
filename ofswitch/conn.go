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
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// ErrPeerDead is the reason a connection closes when the peer stayed silent
// (no echo reply, nothing at all) for the dead-peer timeout.
var ErrPeerDead = errors.New("openflow peer unresponsive")

// Options configure one OpenFlow connection, accepted or dialled.
type Options struct {
	// Logger receives the package's log lines; nil discards them.
	Logger *zap.Logger
	// EchoInterval: brtun sends an echo request when nothing arrived from
	// the peer for this long (default 12s with the default DeadTimeout,
	// else DeadTimeout / 2). OVS probes an idle controller connection
	// itself after 10s (the inactivity_probe brtun writes into the
	// Controller rows, ovsdb.ControllerInactivityProbeMs; OVS counts whole
	// seconds), so on a live idle connection OVS sends the echoes and brtun
	// only answers: one exchange per 10s, where two probing sides with
	// equal intervals would often both send.
	EchoInterval time.Duration
	// DeadTimeout closes the connection when nothing at all arrived from the
	// peer for this long (default 20s, or 3 x EchoInterval when only that is
	// set): the bound on finding a silent peer. It must exceed EchoInterval.
	DeadTimeout time.Duration
	// HandshakeTimeout bounds HELLO plus FEATURES (default 10s).
	HandshakeTimeout time.Duration
	// WriteTimeout closes the connection when a write makes no progress for
	// this long (default 30s).
	WriteTimeout time.Duration
	// OnMessage, if set, receives messages that answer no request of brtun:
	// PACKET_IN, PORT_STATUS, FLOW_REMOVED, unknown experimenter messages. It
	// runs on the connection's reader goroutine and must return quickly; the
	// message is brtun's own copy.
	OnMessage func(*Conn, Message)
}

// withDefaults fills in unset durations and checks the combination.
func (o Options) withDefaults() (Options, error) {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	switch {
	case o.DeadTimeout == 0 && o.EchoInterval == 0:
		o.DeadTimeout, o.EchoInterval = 20*time.Second, 12*time.Second
	case o.DeadTimeout == 0:
		o.DeadTimeout = 3 * o.EchoInterval
	}
	if o.EchoInterval == 0 {
		o.EchoInterval = o.DeadTimeout / 2
	}
	if o.HandshakeTimeout == 0 {
		o.HandshakeTimeout = 10 * time.Second
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = 30 * time.Second
	}
	if o.EchoInterval < 0 || o.HandshakeTimeout < 0 || o.WriteTimeout < 0 {
		return o, fmt.Errorf("openflow options: negative duration")
	}
	if o.DeadTimeout <= o.EchoInterval {
		return o, fmt.Errorf("openflow options: dead-peer timeout %s must exceed echo interval %s", o.DeadTimeout, o.EchoInterval)
	}
	return o, nil
}

// Conn is one OpenFlow 1.3 connection to a switch, after a completed
// handshake. It is safe for concurrent use.
type Conn struct {
	nc       net.Conn
	opts     Options
	log      *zap.Logger
	rd       *bufio.Reader
	features Features

	// writeMu serialises writers and owns nextXid, so xids increase in the
	// order messages go out on the wire.
	writeMu sync.Mutex
	dw      deadlineWriter
	nextXid uint32

	// mu guards the requests waiting for answers.
	mu      sync.Mutex
	calls   map[uint32]*call
	batches map[*batch]struct{}

	nextBundle   uint32             // guarded by mu
	onFlowUpdate func([]FlowUpdate) // guarded by mu; set by MonitorFlows (monitor.go)

	ctrl      chan Message // echo replies for the housekeeping goroutine
	closeOnce sync.Once
	closed    chan struct{}
	err       error // why the connection closed; written once before closed is closed
	wg        sync.WaitGroup

	// epoch is when the connection was made; received is when the reader
	// last took a message, as time since epoch (monotonic).
	epoch    time.Time
	received atomic.Int64
}

// call is one request waiting for its reply (or replies, for multipart).
type call struct {
	xid       uint32
	want      uint8 // expected reply type
	multipart bool
	parts     []Message
	reply     Message
	err       error
	done      chan struct{}
}

// batch is a run of consecutive xids whose messages get no reply unless they
// fail; their errors are collected until a later barrier reply arrives.
type batch struct {
	first  uint32
	n      uint32
	base   int // index of the first message in the caller's slice
	failed []FailedMessage
}

// newConn runs the handshake on nc and starts the connection's goroutines.
// On failure nc is closed.
func newConn(ctx context.Context, nc net.Conn, opts Options) (*Conn, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		_ = nc.Close()
		return nil, err
	}
	c := &Conn{
		nc:      nc,
		opts:    opts,
		log:     opts.Logger.Named("ofswitch").With(zap.String("remote", remoteName(nc))),
		rd:      bufio.NewReaderSize(nc, readBufferSize),
		dw:      deadlineWriter{nc: nc, timeout: opts.WriteTimeout},
		nextXid: 1,
		calls:   make(map[uint32]*call),
		batches: make(map[*batch]struct{}),
		ctrl:    make(chan Message, 16),
		epoch:   time.Now(),
		closed:  make(chan struct{}),
	}
	if err := c.handshake(ctx); err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("openflow handshake with %s: %w", remoteName(nc), err)
	}
	c.log = c.log.With(zap.String("dpid", fmt.Sprintf("%016x", c.features.DatapathID)))
	c.log.Info("switch connected", zap.Uint8("tables", c.features.NTables))
	c.wg.Add(2)
	go c.readLoop()
	go c.housekeeping()
	return c, nil
}

func remoteName(nc net.Conn) string {
	if a := nc.RemoteAddr(); a != nil && a.String() != "" {
		return a.Network() + ":" + a.String()
	}
	if a := nc.LocalAddr(); a != nil {
		return a.Network() + ":" + a.String()
	}
	return "unknown"
}

// handshake exchanges HELLOs, negotiates 1.3 and asks for the datapath id. It
// runs before the reader goroutine starts, under one deadline.
func (c *Conn) handshake(ctx context.Context) error {
	deadline := time.Now().Add(c.opts.HandshakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := c.nc.SetDeadline(deadline); err != nil {
		return fmt.Errorf("set deadline: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(time.Now()) })
	defer stop()

	hello, err := buildHello()
	if err != nil {
		return err
	}
	if err := c.writeNow(withXid(hello, c.takeXid())); err != nil {
		return fmt.Errorf("send hello: %w", err)
	}
	peer, err := readMessage(c.rd, 0)
	if err != nil {
		return fmt.Errorf("read hello: %w", err)
	}
	if peer.Type() == typeError {
		if e, perr := parseError(peer); perr == nil {
			return fmt.Errorf("peer refused hello: %w", e)
		}
	}
	if _, err := negotiateVersion(peer); err != nil {
		_ = c.writeNow(withXid(buildHelloFailed("brtun speaks OpenFlow 1.3 only"), peer.Xid()))
		return err
	}

	xid := c.takeXid()
	if err := c.writeNow(withXid(buildFeaturesRequest(), xid)); err != nil {
		return fmt.Errorf("send features request: %w", err)
	}
	const maxOtherMessages = 64 // a switch sends a few async messages at most before the reply
	for range maxOtherMessages {
		m, err := readMessage(c.rd, Version13)
		if err != nil {
			return fmt.Errorf("read features reply: %w", err)
		}
		switch {
		case m.Type() == typeEchoRequest:
			if err := c.writeNow(withXid(buildEchoReply(m), m.Xid())); err != nil {
				return fmt.Errorf("answer echo: %w", err)
			}
		case m.Type() == typeError && m.Xid() == xid:
			e, err := parseError(m)
			if err != nil {
				return err
			}
			return fmt.Errorf("features request refused: %w", e)
		case m.Type() == typeFeaturesReply && m.Xid() == xid:
			f, err := parseFeatures(m)
			if err != nil {
				return err
			}
			c.features = f
			return c.nc.SetDeadline(time.Time{})
		default:
			c.log.Debug("ignoring message during handshake", zap.String("type", typeName(m.Type())))
		}
	}
	return fmt.Errorf("no features reply among the first %d messages", maxOtherMessages)
}

// Features returns what the switch reported in the handshake.
func (c *Conn) Features() Features { return c.features }

// DatapathID returns the switch's datapath id.
func (c *Conn) DatapathID() uint64 { return c.features.DatapathID }

// RemoteAddr returns the peer's address (for a unix socket, the socket path
// may be empty; see the log fields).
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// Done is closed when the connection has closed.
func (c *Conn) Done() <-chan struct{} { return c.closed }

// Err returns why the connection closed, or nil while it is open.
func (c *Conn) Err() error {
	select {
	case <-c.closed:
		return c.err
	default:
		return nil
	}
}

// Close closes the connection and waits until its goroutines have ended, so
// no OnMessage callback runs after it returns. Pending and later calls return
// ErrClosed. Close must not be called from OnMessage (it would wait for
// itself); closing from any other goroutine is fine, also several times.
func (c *Conn) Close() error {
	c.shutdown(ErrClosed)
	c.wg.Wait()
	return nil
}

// shutdown closes the connection once, recording why, and fails every
// pending call.
func (c *Conn) shutdown(reason error) {
	c.closeOnce.Do(func() {
		c.err = reason
		close(c.closed)
		_ = c.nc.Close()
		c.mu.Lock()
		for xid, cl := range c.calls {
			cl.err = c.closedErr()
			close(cl.done)
			delete(c.calls, xid)
		}
		clear(c.batches)
		c.mu.Unlock()
		if errors.Is(reason, ErrClosed) {
			c.log.Info("connection closed")
		} else {
			c.log.Warn("connection closed", zap.Error(reason))
		}
	})
}

// closedErr is what a call returns when the connection is gone.
func (c *Conn) closedErr() error {
	<-c.closed
	if errors.Is(c.err, ErrClosed) {
		return c.err
	}
	return fmt.Errorf("%w: %w", ErrClosed, c.err)
}

// readLoop is the only reader of the connection: one message at a time, in
// order, each handled under recover().
func (c *Conn) readLoop() {
	defer c.wg.Done()
	for {
		if err := c.nc.SetReadDeadline(time.Now().Add(c.opts.DeadTimeout)); err != nil {
			c.shutdown(fmt.Errorf("set read deadline: %w", err))
			return
		}
		m, err := readMessage(c.rd, Version13)
		if err != nil {
			c.shutdown(c.readError(err))
			return
		}
		c.received.Store(int64(time.Since(c.epoch)))
		if err := c.handle(m); err != nil {
			c.shutdown(err)
			return
		}
	}
}

// readError turns a read failure into the reason the connection closes.
func (c *Conn) readError(err error) error {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%w: nothing received for %s", ErrPeerDead, c.opts.DeadTimeout)
	case errors.Is(err, io.EOF):
		return fmt.Errorf("peer closed the connection: %w", err)
	case errors.Is(err, net.ErrClosed):
		return ErrClosed
	default:
		return fmt.Errorf("read: %w", err)
	}
}

// handle dispatches one message; a panic while parsing it is a bad message.
func (c *Conn) handle(m Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: panic while handling %s (%d bytes): %v", ErrMalformed, typeName(m.Type()), len(m), r)
		}
	}()
	return c.dispatch(m)
}

// dispatch routes one message from the switch.
func (c *Conn) dispatch(m Message) error {
	if err := checkInbound(m); err != nil {
		return err
	}
	switch m.Type() {
	case typeEchoRequest:
		select {
		case c.ctrl <- withXid(buildEchoReply(m), m.Xid()):
		default:
			c.log.Warn("dropping echo reply: control queue full")
		}
	case typeError:
		e, err := parseError(m)
		if err != nil {
			return err
		}
		c.deliverError(e)
	case typeMultipartReply:
		r, err := parseMultipartReply(m)
		if err != nil {
			return err
		}
		if c.flowUpdates(r) { // to the flow monitor, in order (monitor.go)
			c.deliver(m, r.More) // the reply to MonitorFlows' request, if it is
			return nil
		}
		if !c.deliver(m, r.More) {
			c.unsolicited(m)
		}
	default:
		if !c.deliver(m, false) {
			c.unsolicited(m)
		}
	}
	return nil
}

// checkInbound parses a message from the switch as far as its type is known,
// without side effects: a nil result means every part brtun will read later
// is well-formed. It is what the reader fuzz target exercises.
func checkInbound(m Message) error {
	if len(m) < headerLen || int(binary.BigEndian.Uint16(m[2:4])) != len(m) {
		return fmt.Errorf("%w: frame of %d bytes", ErrMalformed, len(m))
	}
	if m.Version() != Version13 {
		return fmt.Errorf("%w: %s with version %d on an OpenFlow 1.3 connection", ErrMalformed, typeName(m.Type()), m.Version())
	}
	var err error
	switch m.Type() {
	case typeError:
		_, err = parseError(m)
	case typeMultipartReply:
		_, err = parseMultipartReply(m)
	case typeFeaturesReply:
		_, err = parseFeatures(m)
	case typeRoleReply:
		_, _, err = parseRoleReply(m)
	case typeExperimenter:
		if _, _, err = parseExperimenter(m); err == nil && isBundleControl(m) {
			_, err = parseBundleReply(m)
		}
	}
	return err
}

// unsolicited handles a message that answers no pending request.
func (c *Conn) unsolicited(m Message) {
	if c.monitorPaused(m) {
		return
	}
	switch m.Type() {
	case typeEchoReply, typeBarrierReply, typeFeaturesReply, typeRoleReply, typeMultipartReply:
		// A reply whose caller gave up (or a keepalive echo reply).
		c.log.Debug("reply without a waiting request", zap.String("type", typeName(m.Type())), zap.Uint32("xid", m.Xid()))
		return
	}
	if c.opts.OnMessage != nil {
		c.opts.OnMessage(c, m)
		return
	}
	c.log.Debug("unsolicited message", zap.String("type", typeName(m.Type())), zap.Uint32("xid", m.Xid()))
}

// deliver hands a reply to the call waiting on its xid; more keeps a
// multipart call open. It reports whether a call took the message.
func (c *Conn) deliver(m Message, more bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	cl, ok := c.calls[m.Xid()]
	if !ok {
		return false
	}
	if m.Type() != cl.want {
		cl.err = fmt.Errorf("expected %s, switch answered %s", typeName(cl.want), typeName(m.Type()))
	} else if cl.multipart {
		cl.parts = append(cl.parts, m)
		if more {
			return true
		}
	} else {
		cl.reply = m
	}
	delete(c.calls, m.Xid())
	close(cl.done)
	return true
}

// deliverError attributes an OFPT_ERROR to its request: a waiting call, or
// a message of a batch, or nobody (then it is logged).
func (c *Conn) deliverError(e *OFError) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.calls[e.Xid]; ok {
		cl.err = e
		delete(c.calls, e.Xid)
		close(cl.done)
		return
	}
	for b := range c.batches {
		if off := e.Xid - b.first; off < b.n {
			b.failed = append(b.failed, FailedMessage{Index: b.base + int(off), Err: e})
			return
		}
	}
	c.log.Warn("switch error for no pending request", zap.Error(e))
}

// housekeeping writes the echo replies the reader queued, so that the
// reader never blocks on a write, and sends an echo request when nothing
// arrived from the peer for EchoInterval. It has one timer, re-armed for
// the moment the connection will have been silent that long, so an idle
// connection whose peer probes it wakes it only for the replies.
func (c *Conn) housekeeping() {
	defer c.wg.Done()
	timer := time.NewTimer(c.untilEcho())
	defer timer.Stop()
	for {
		select {
		case <-c.closed:
			return
		case m := <-c.ctrl:
			if err := c.writeFrames(m); err != nil {
				c.shutdown(err)
				return
			}
		case <-timer.C:
			if c.untilEcho() == 0 {
				if err := c.writeFrames(withXid(buildEchoRequest(), c.takeXidLocked())); err != nil {
					c.shutdown(err)
					return
				}
				timer.Reset(c.opts.EchoInterval)
				continue
			}
		}
		timer.Reset(c.untilEcho())
	}
}

// untilEcho returns how long until nothing will have arrived from the peer
// for EchoInterval, 0 when that is now (or nearly: a wait shorter than a
// sixteenth of the interval, such as the round trip of brtun's last echo,
// is not worth another wakeup).
func (c *Conn) untilEcho() time.Duration {
	silent := time.Since(c.epoch) - time.Duration(c.received.Load())
	wait := c.opts.EchoInterval - silent
	if wait < c.opts.EchoInterval/16 {
		return 0
	}
	return wait
}

// takeXid returns the next xid. Callers that send hold writeMu (or run before
// the goroutines start, as the handshake does).
func (c *Conn) takeXid() uint32 {
	return c.reserveXids(1)
}

// reserveXids takes n consecutive xids and returns the first; callers hold
// writeMu (or run before the goroutines start, as the handshake does). None
// is 0, where the counter wraps: xid 0 is what the switch's unsolicited flow
// monitor updates and the echoes between bundle adds carry, and a request
// waiting on it would take them for its reply. A run that
// would wrap starts again at 1, so a batch's xids stay consecutive.
func (c *Conn) reserveXids(n uint32) uint32 {
	if c.nextXid == 0 || uint64(c.nextXid)+uint64(n) > 1<<32 {
		c.nextXid = 1
	}
	first := c.nextXid
	c.nextXid += n
	return first
}

// takeXidLocked takes an xid under writeMu for a message sent separately.
func (c *Conn) takeXidLocked() uint32 {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	return c.takeXid()
}

// writeNow writes one message straight to the socket, under the handshake's
// deadline; used by the handshake only, before any other writer exists.
func (c *Conn) writeNow(m Message) error {
	_, err := c.nc.Write(m)
	return err
}

// writeFrames writes messages that already carry their xids.
func (c *Conn) writeFrames(msgs ...Message) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	return c.writeLocked(msgs)
}

// writeLocked writes and flushes msgs; the caller holds writeMu. A failed
// write leaves the stream in an unknown state, so it closes the connection.
func (c *Conn) writeLocked(msgs []Message) error {
	if err := c.checkOpen(); err != nil {
		return err
	}
	total := 0
	for _, m := range msgs {
		total += len(m)
	}
	w := c.writeBuffer(total)
	for _, m := range msgs {
		if _, err := w.Write(m); err != nil {
			return c.writeFailed(fmt.Errorf("write %s: %w", typeName(m.Type()), err))
		}
	}
	return c.flush(w)
}

// Buffer sizes. A connection keeps only its read buffer while idle, and
// reads of messages larger than it go straight into the message, so a small
// one costs no extra copy; a write buffer exists only for the duration of
// a write. (With 64 KiB each way held per connection, a thousand hosts'
// bridges kept 128 MB of buffers.)
const (
	readBufferSize = 4 << 10
	maxWriteBuffer = 64 << 10
)

// writeBuffer returns a buffered writer to the socket for a write of about
// n bytes that ends with flush; the caller holds writeMu.
func (c *Conn) writeBuffer(n int) *bufio.Writer {
	return bufio.NewWriterSize(c.dw, max(min(n, maxWriteBuffer), 16))
}

// checkOpen fails once the connection has closed.
func (c *Conn) checkOpen() error {
	select {
	case <-c.closed:
		return c.closedErr()
	default:
		return nil
	}
}

// flush sends what w holds; the caller holds writeMu.
func (c *Conn) flush(w *bufio.Writer) error {
	if err := w.Flush(); err != nil {
		return c.writeFailed(fmt.Errorf("write: %w", err))
	}
	return nil
}

// writeFailed closes the connection after a failed write and returns err.
func (c *Conn) writeFailed(err error) error {
	c.shutdown(err)
	return err
}

// deadlineWriter gives every write to the socket its own deadline, so a big
// batch may take long as long as it keeps making progress.
type deadlineWriter struct {
	nc      net.Conn
	timeout time.Duration
}

func (d deadlineWriter) Write(p []byte) (int, error) {
	if err := d.nc.SetWriteDeadline(time.Now().Add(d.timeout)); err != nil {
		return 0, err
	}
	return d.nc.Write(p)
}

// roundTrip sends one request and waits for its reply (all parts of it, for
// multipart) or its error.
func (c *Conn) roundTrip(ctx context.Context, req Message, want uint8, multipart bool) (*call, error) {
	cl := &call{want: want, multipart: multipart, done: make(chan struct{})}
	c.writeMu.Lock()
	cl.xid = c.takeXid()
	c.mu.Lock()
	c.calls[cl.xid] = cl
	c.mu.Unlock()
	err := c.writeLocked([]Message{withXid(req, cl.xid)})
	c.writeMu.Unlock()
	if err != nil {
		c.forget(cl)
		return nil, err
	}
	if err := c.wait(ctx, cl); err != nil {
		return nil, err
	}
	return cl, nil
}

// wait blocks until the call completes, the context ends or the connection
// closes.
func (c *Conn) wait(ctx context.Context, cl *call) error {
	select {
	case <-cl.done:
		return cl.err
	case <-ctx.Done():
		c.forget(cl)
		return ctx.Err()
	case <-c.closed:
		return c.closedErr()
	}
}

// forget drops a call whose caller stopped waiting; a late reply is ignored.
func (c *Conn) forget(cl *call) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls[cl.xid] == cl {
		delete(c.calls, cl.xid)
	}
}

// sendWithBarrier sends msgs, each with its own xid, followed by a barrier,
// and waits for the barrier reply. Because the switch answers in order, every
// error for msgs has arrived by then; they are returned with their index
// (offset by base).
func (c *Conn) sendWithBarrier(ctx context.Context, msgs []Message, base int) ([]FailedMessage, error) {
	b, err := c.sendBatch(msgs, base)
	if err != nil {
		return nil, err
	}
	defer c.dropBatch(b)
	if err := c.Barrier(ctx); err != nil {
		return nil, err
	}
	return c.batchFailures(b), nil
}

// sendBatch writes msgs with consecutive xids and registers them as a batch
// whose errors are collected; nothing waits here.
func (c *Conn) sendBatch(msgs []Message, base int) (*batch, error) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	out := make([]Message, len(msgs))
	for i, m := range msgs {
		if len(m) < headerLen {
			return nil, fmt.Errorf("message #%d: %d bytes is not an openflow message", base+i, len(m))
		}
	}
	b := &batch{first: c.reserveXids(uint32(len(msgs))), n: uint32(len(msgs)), base: base}
	for i, m := range msgs {
		out[i] = withXid(m, b.first+uint32(i))
	}
	c.mu.Lock()
	c.batches[b] = struct{}{}
	c.mu.Unlock()
	if err := c.writeLocked(out); err != nil {
		c.dropBatch(b)
		return nil, err
	}
	return b, nil
}

// bundleEchoEvery is how many bundle adds go out between two echo requests
// in the same stream. ovs-vswitchd works through a big bundle without a word
// (it takes 50 messages per connection per main-loop pass, and a pass is
// slow on a switch with thousands of ports); its answers to these echoes, in
// stream order, show the reader that it is alive and getting on, so a bundle
// that takes longer than the dead-peer timeout to drain does not close the
// connection. An echo costs 8 bytes each way per 1000 adds of about 160.
const bundleEchoEvery = 1000

// sendBundleAdds writes msgs as the adds of bundle id, with consecutive
// xids (each inner message carries its add's xid), and registers them as a
// batch whose errors are collected; nothing waits here. Each add is written
// straight into the connection's buffer, header then the caller's bytes, so
// no message is copied: a bulk install sends tens of thousands of them.
func (c *Conn) sendBundleAdds(id uint32, msgs []Message, base int) (*batch, error) {
	for i, m := range msgs {
		if err := checkBundleInner(m); err != nil {
			return nil, fmt.Errorf("message #%d: %w", base+i, err)
		}
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := c.checkOpen(); err != nil {
		return nil, err
	}
	b := &batch{first: c.reserveXids(uint32(len(msgs))), n: uint32(len(msgs)), base: base}
	c.mu.Lock()
	c.batches[b] = struct{}{}
	c.mu.Unlock()
	var hdr [bundleAddInnerOffset + headerLen]byte
	echo := withXid(buildEchoRequest(), 0) // xid 0: its reply answers no request
	total := len(msgs) * bundleAddInnerOffset
	for _, m := range msgs {
		total += len(m)
	}
	w := c.writeBuffer(total + len(msgs)/bundleEchoEvery*len(echo))
	for i, m := range msgs {
		if i > 0 && i%bundleEchoEvery == 0 {
			if _, err := w.Write(echo); err != nil {
				c.dropBatch(b)
				return nil, c.writeFailed(fmt.Errorf("write echo request: %w", err))
			}
		}
		xid := b.first + uint32(i)
		putBundleAddHeader(hdr[:], id, len(m))
		binary.BigEndian.PutUint32(hdr[4:8], xid)
		copy(hdr[bundleAddInnerOffset:], m[:headerLen])
		binary.BigEndian.PutUint32(hdr[bundleAddInnerOffset+4:], xid)
		if _, err := w.Write(hdr[:]); err != nil {
			c.dropBatch(b)
			return nil, c.writeFailed(fmt.Errorf("write bundle add: %w", err))
		}
		if _, err := w.Write(m[headerLen:]); err != nil {
			c.dropBatch(b)
			return nil, c.writeFailed(fmt.Errorf("write bundle add: %w", err))
		}
	}
	if err := c.flush(w); err != nil {
		c.dropBatch(b)
		return nil, err
	}
	return b, nil
}

// batchFailures returns what the reader recorded for b so far.
func (c *Conn) batchFailures(b *batch) []FailedMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]FailedMessage(nil), b.failed...)
}

func (c *Conn) dropBatch(b *batch) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.batches, b)
}
