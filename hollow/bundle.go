package hollow

import (
	"time"

	"github.com/brtun/brtun/ofswitch"
)

// bundle is an open ONF bundle of one controller connection.
type bundle struct {
	flags  uint16
	closed bool
	ops    []flowOp
}

// handleExperimenter handles ONF bundle messages and the cancel of a flow
// monitor (monitor.go); other experimenter messages are refused.
func (c *ctrlConn) handleExperimenter(m ofswitch.Message) ofswitch.Message {
	switch {
	case ofswitch.IsBundleControl(m):
		return c.handleBundleControl(m)
	case ofswitch.IsBundleAdd(m):
		return c.handleBundleAdd(m)
	}
	if id, ok, err := ofswitch.ParseFlowMonitorCancel(m); ok {
		if err != nil {
			return ofswitch.ErrorReply(m, errBadRequest, codeBadLen)
		}
		return c.handleFlowMonitorCancel(m, id)
	}
	return ofswitch.ErrorReply(m, errBadRequest, codeBadExperimenter)
}

// handleBundleControl implements open, close, commit and discard with
// OVS's errors: opening an existing id drops that bundle and fails with
// BAD_ID; an unknown id is BAD_ID; other flags than at open are BAD_FLAGS
// and drop the bundle. A commit applies every message in order on a copy
// of the table and swaps it in, so it takes effect all at once.
func (c *ctrlConn) handleBundleControl(m ofswitch.Message) ofswitch.Message {
	if c.secondary() {
		return ofswitch.ErrorReply(m, errBadRequest, codeIsSlave)
	}
	ctl, err := ofswitch.ParseBundleControl(m)
	if err != nil {
		return ofswitch.BundleErrorReply(m, ofswitch.BundleErrMsgBadLen)
	}
	b := c.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if c.bundles == nil {
		c.bundles = map[uint32]*bundle{}
	}
	bd := c.bundles[ctl.ID]
	reply := func(typ uint16) ofswitch.Message {
		return ofswitch.BundleControlReply(m.Xid(), ofswitch.BundleCtrl{ID: ctl.ID, Type: typ, Flags: ctl.Flags})
	}
	if ctl.Type == ofswitch.BundleOpenRequest {
		if bd != nil {
			delete(c.bundles, ctl.ID)
			return ofswitch.BundleErrorReply(m, ofswitch.BundleErrBadID)
		}
		c.bundles[ctl.ID] = &bundle{flags: ctl.Flags}
		return reply(ofswitch.BundleOpenReply)
	}
	if bd == nil {
		return ofswitch.BundleErrorReply(m, ofswitch.BundleErrBadID)
	}
	switch ctl.Type {
	case ofswitch.BundleCloseRequest:
		if bd.closed {
			delete(c.bundles, ctl.ID)
			return ofswitch.BundleErrorReply(m, ofswitch.BundleErrClosed)
		}
		if bd.flags != ctl.Flags {
			delete(c.bundles, ctl.ID)
			return ofswitch.BundleErrorReply(m, ofswitch.BundleErrBadFlags)
		}
		bd.closed = true
		return reply(ofswitch.BundleCloseReply)
	case ofswitch.BundleCommitRequest:
		delete(c.bundles, ctl.ID)
		if bd.flags != ctl.Flags {
			return ofswitch.BundleErrorReply(m, ofswitch.BundleErrBadFlags)
		}
		next := b.table.clone()
		now := time.Now()
		for _, op := range bd.ops {
			next.apply(op, now)
		}
		b.table = next
		b.flowMods += uint64(len(bd.ops))
		return reply(ofswitch.BundleCommitReply)
	case ofswitch.BundleDiscardRequest:
		delete(c.bundles, ctl.ID)
		return reply(ofswitch.BundleDiscardReply)
	default:
		return ofswitch.BundleErrorReply(m, ofswitch.BundleErrBadType)
	}
}

// handleBundleAdd checks the inner message at once, as OVS does: a refused
// message gets an error carrying the add's xid and the bundle stays open
// (a later commit installs the rest). An add to an unknown id opens it.
func (c *ctrlConn) handleBundleAdd(m ofswitch.Message) ofswitch.Message {
	if c.secondary() {
		return ofswitch.ErrorReply(m, errBadRequest, codeIsSlave)
	}
	add, err := ofswitch.ParseBundleAdd(m)
	if err != nil {
		return ofswitch.BundleErrorReply(m, ofswitch.BundleErrMsgBadLen)
	}
	b := c.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if c.bundles == nil {
		c.bundles = map[uint32]*bundle{}
	}
	bd := c.bundles[add.ID]
	switch {
	case bd == nil:
		bd = &bundle{flags: add.Flags}
		c.bundles[add.ID] = bd
	case bd.closed:
		delete(c.bundles, add.ID)
		return ofswitch.BundleErrorReply(m, ofswitch.BundleErrClosed)
	case bd.flags != add.Flags:
		delete(c.bundles, add.ID)
		return ofswitch.BundleErrorReply(m, ofswitch.BundleErrBadFlags)
	}
	if add.Inner.Xid() != m.Xid() {
		return ofswitch.BundleErrorReply(m, ofswitch.BundleErrMsgBadXid)
	}
	if add.Inner.Type() != ofswitch.TypeFlowMod {
		return ofswitch.BundleErrorReply(m, ofswitch.BundleErrMsgUnsup)
	}
	op, ferr := parseFlowOp(add.Inner)
	if ferr != nil {
		return ofswitch.ErrorReply(m, ferr.typ, ferr.code)
	}
	bd.ops = append(bd.ops, op)
	return nil
}
