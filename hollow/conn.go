package hollow

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"

	"go.uber.org/zap"

	"github.com/brtun/brtun/ofswitch"
)

var errUnsupportedTarget = errors.New("unsupported controller target (hollow switches dial tcp: and unix:)")

// errPeerDead closes a connection whose controller stayed silent through
// an echo request.
var errPeerDead = errors.New("controller did not answer the inactivity probe")

// OpenFlow error types and codes the hollow switch sends (OpenFlow 1.3).
const (
	errBadRequest     uint16 = 1
	errBadInstruction uint16 = 3
	errFlowModFailed  uint16 = 5
	errRoleFailed     uint16 = 11
	errMeterModFailed uint16 = 12

	codeBadType           uint16 = 1
	codeBadMultipart      uint16 = 2
	codeBadExperimenter   uint16 = 3
	codeBadLen            uint16 = 6
	codeBadTableIDRequest uint16 = 9 // BAD_REQUEST/BAD_TABLE_ID
	codeIsSlave           uint16 = 10

	codeBadTableID   uint16 = 2 // BAD_INSTRUCTION and FLOW_MOD_FAILED alike
	codeBadCommand   uint16 = 6 // FLOW_MOD_FAILED
	codeRoleStale    uint16 = 0
	codeRoleBad      uint16 = 2
	codeMeterExists  uint16 = 1
	codeMeterInvalid uint16 = 2
	codeMeterUnknown uint16 = 3
	codeMeterCommand uint16 = 4
)

// writeTimeout drops a controller that does not read what the switch sends.
const writeTimeout = 30 * time.Second

// helloTimeout drops a controller that sends no HELLO when the inactivity
// probe is off (with a probe: after twice its interval).
const helloTimeout = 10 * time.Second

// session runs one connection: dial, hello, then requests until it fails.
func (c *ctrlConn) session() error {
	dctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	nc, err := dialTarget(dctx, c.target)
	cancel()
	if err != nil {
		return err
	}
	stop := context.AfterFunc(c.ctx, func() { _ = nc.Close() })
	defer stop()
	defer nc.Close()

	w := bufio.NewWriterSize(nc, 4<<10)
	hello, err := ofswitch.SwitchHello()
	if err != nil {
		return err
	}
	if err := c.write(nc, w, hello); err != nil {
		return err
	}
	rd := bufio.NewReaderSize(nc, 4<<10)
	helloWait := 2 * c.config().probe
	if helloWait == 0 {
		helloWait = helloTimeout
	}
	_ = nc.SetReadDeadline(time.Now().Add(helloWait))
	first, err := ofswitch.ReadFrame(rd, 0)
	if err != nil {
		return fmt.Errorf("read hello: %w", err)
	}
	if _, err := ofswitch.NegotiateVersion(first); err != nil {
		return err
	}
	c.mu.Lock()
	c.nc, c.connected, c.role = nc, true, ofswitch.RoleEqual
	c.mu.Unlock()
	c.log.Debug("connected to controller")
	defer func() {
		c.b.mu.Lock()
		c.mu.Lock()
		c.nc, c.connected, c.bundles, c.monitors = nil, false, nil, nil
		c.mu.Unlock()
		c.b.mu.Unlock()
	}()

	probing := false
	for {
		// The Controller row's inactivity_probe, read at every wait: OVS
		// applies a change to an open connection.
		deadline := time.Time{} // no probe
		if probe := c.config().probe; probe > 0 {
			deadline = time.Now().Add(probe)
		}
		_ = nc.SetReadDeadline(deadline)
		m, err := ofswitch.ReadFrame(rd, ofswitch.Version13)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			if probing {
				return errPeerDead
			}
			probing = true
			if err := c.write(nc, w, ofswitch.Reply(ofswitch.TypeEchoRequest, 0, nil)); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		probing = false
		replies, err := c.safeHandle(m)
		if err != nil {
			return err
		}
		if err := c.queue(nc, w, replies...); err != nil {
			return err
		}
		if rd.Buffered() == 0 {
			if err := c.flush(nc, w); err != nil {
				return err
			}
		}
	}
}

// write sends messages at once.
func (c *ctrlConn) write(nc net.Conn, w *bufio.Writer, msgs ...ofswitch.Message) error {
	if err := c.queue(nc, w, msgs...); err != nil {
		return err
	}
	return c.flush(nc, w)
}

// queue buffers messages; flush sends them. Both hold c.mu, which also
// serialises asynchronous messages (sendAsync) with replies.
func (c *ctrlConn) queue(nc net.Conn, w *bufio.Writer, msgs ...ofswitch.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	for _, m := range msgs {
		if _, err := w.Write(m); err != nil {
			return err
		}
	}
	return nil
}

func (c *ctrlConn) flush(nc net.Conn, w *bufio.Writer) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	return w.Flush()
}

// sendAsync sends an unsolicited message (port status, packet-in) when the
// connection is up. It writes directly: the session's writer may hold
// replies not flushed yet, which only ever precede it in reply order
// because the session flushes before it reads again.
func (c *ctrlConn) sendAsync(m ofswitch.Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.connected || c.nc == nil {
		return
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := c.nc.Write(m); err != nil {
		c.log.Debug("async message not sent", zap.Error(err))
	}
}

// safeHandle runs handle under recover: a message the switch cannot cope
// with closes this one connection, never the process (which runs many
// hosts).
func (c *ctrlConn) safeHandle(m ofswitch.Message) (replies []ofswitch.Message, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handling %d-byte message of type %d: panic: %v", len(m), m.Type(), r)
			c.log.Error("message handler failed", zap.Error(err))
		}
	}()
	return c.handle(m), nil
}

// handle answers one message from the controller.
func (c *ctrlConn) handle(m ofswitch.Message) []ofswitch.Message {
	b := c.b
	switch m.Type() {
	case ofswitch.TypeHello, ofswitch.TypeEchoReply:
		return nil
	case ofswitch.TypeEchoRequest:
		return []ofswitch.Message{ofswitch.Reply(ofswitch.TypeEchoReply, m.Xid(), m.Body())}
	case ofswitch.TypeFeaturesRequest:
		return []ofswitch.Message{ofswitch.FeaturesReply(m.Xid(), ofswitch.Features{
			DatapathID: b.DatapathID(), NTables: 254,
			Capabilities: 0x4f, // flow, table, port, group and queue stats, as OVS
		})}
	case ofswitch.TypeGetConfigRequest:
		b.mu.Lock()
		body := make([]byte, 4)
		binary.BigEndian.PutUint16(body[0:2], b.cfgFlags)
		binary.BigEndian.PutUint16(body[2:4], b.missSendLen)
		b.mu.Unlock()
		return []ofswitch.Message{ofswitch.Reply(ofswitch.TypeGetConfigReply, m.Xid(), body)}
	case ofswitch.TypeSetConfig:
		if body := m.Body(); len(body) >= 4 {
			b.mu.Lock()
			b.cfgFlags = binary.BigEndian.Uint16(body[0:2])
			b.missSendLen = binary.BigEndian.Uint16(body[2:4])
			b.mu.Unlock()
		}
		return nil
	case ofswitch.TypeBarrierRequest:
		return []ofswitch.Message{ofswitch.Reply(ofswitch.TypeBarrierReply, m.Xid(), nil)}
	case ofswitch.TypeRoleRequest:
		return []ofswitch.Message{c.handleRole(m)}
	case ofswitch.TypeFlowMod:
		return c.one(c.handleFlowMod(m))
	case ofswitch.TypeExperimenter:
		return c.one(c.handleExperimenter(m))
	case ofswitch.TypeMultipartRequest:
		return c.handleMultipart(m)
	case ofswitch.TypeMeterMod:
		return c.one(c.handleMeterMod(m))
	case ofswitch.TypePacketOut:
		return c.one(c.handlePacketOut(m))
	default:
		return []ofswitch.Message{ofswitch.ErrorReply(m, errBadRequest, codeBadType)}
	}
}

// one turns an optional reply into a list.
func (c *ctrlConn) one(m ofswitch.Message) []ofswitch.Message {
	if m == nil {
		return nil
	}
	return []ofswitch.Message{m}
}

// handleRole implements OFPT_ROLE_REQUEST as OVS does: a generation id that
// went backwards is stale; a new primary demotes the others to secondary.
func (c *ctrlConn) handleRole(m ofswitch.Message) ofswitch.Message {
	role, gen, err := ofswitch.ParseRoleRequest(m)
	if err != nil {
		return ofswitch.ErrorReply(m, errBadRequest, codeBadLen)
	}
	if role > ofswitch.RoleSecondary {
		return ofswitch.ErrorReply(m, errRoleFailed, codeRoleBad)
	}
	b := c.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if role == ofswitch.RolePrimary || role == ofswitch.RoleSecondary {
		if b.genSet && int64(gen-b.generation) < 0 {
			return ofswitch.ErrorReply(m, errRoleFailed, codeRoleStale)
		}
		b.genSet, b.generation = true, gen
	}
	if role == ofswitch.RolePrimary {
		for _, other := range b.conns {
			if other != c {
				other.mu.Lock()
				if other.role == ofswitch.RolePrimary {
					other.role = ofswitch.RoleSecondary
				}
				other.mu.Unlock()
			}
		}
	}
	c.mu.Lock()
	if role != ofswitch.RoleNoChange {
		c.role = role
	}
	current := c.role
	c.mu.Unlock()
	var replyGen uint64
	if b.genSet {
		replyGen = b.generation
	}
	return ofswitch.RoleReply(m.Xid(), current, replyGen)
}

// secondary reports whether this connection may not change the switch.
func (c *ctrlConn) secondary() bool { return c.getRole() == ofswitch.RoleSecondary }

// handleFlowMod applies a flow mod outside a bundle.
func (c *ctrlConn) handleFlowMod(m ofswitch.Message) ofswitch.Message {
	if c.secondary() {
		return ofswitch.ErrorReply(m, errBadRequest, codeIsSlave)
	}
	op, ferr := parseFlowOp(m)
	if ferr != nil {
		return ofswitch.ErrorReply(m, ferr.typ, ferr.code)
	}
	b := c.b
	b.mu.Lock()
	defer b.mu.Unlock()
	b.table.apply(op, time.Now())
	b.flowMods++
	return nil
}

// handlePacketOut records a PACKET_OUT.
func (c *ctrlConn) handlePacketOut(m ofswitch.Message) ofswitch.Message {
	if c.secondary() {
		return ofswitch.ErrorReply(m, errBadRequest, codeIsSlave)
	}
	body := m.Body()
	if len(body) < 16 {
		return ofswitch.ErrorReply(m, errBadRequest, codeBadLen)
	}
	actionsLen := int(binary.BigEndian.Uint16(body[8:10]))
	if 16+actionsLen > len(body) {
		return ofswitch.ErrorReply(m, errBadRequest, codeBadLen)
	}
	po := PacketOut{
		InPort:  binary.BigEndian.Uint32(body[4:8]),
		Actions: append([]byte(nil), body[16:16+actionsLen]...),
		Data:    append([]byte(nil), body[16+actionsLen:]...),
	}
	b := c.b
	b.mu.Lock()
	defer b.mu.Unlock()
	const keep = 64 // the most recent ones are enough for a test
	if len(b.packetOuts) == keep {
		b.packetOuts = b.packetOuts[1:]
	}
	b.packetOuts = append(b.packetOuts, po)
	return nil
}
