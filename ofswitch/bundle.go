package ofswitch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// discardTimeout bounds the clean-up discard ApplyBundle sends after a failure
// that was not the switch's (a cancelled context, a failed write).
const discardTimeout = 5 * time.Second

// Bundle is an open ONF bundle (OpenFlow 1.4 bundles as an OpenFlow 1.3
// extension): messages added to it take effect together at Commit, or not at
// all. OVS checks each add at once and reports an error against that add but
// keeps the bundle open, so Commit first sends a barrier, collects those
// errors and discards the bundle if there is any.
type Bundle struct {
	c       *Conn
	id      uint32
	added   int
	batches []*batch
	closed  bool
}

// OpenBundle opens a new atomic, ordered bundle on the switch.
func (c *Conn) OpenBundle(ctx context.Context) (*Bundle, error) {
	c.mu.Lock()
	c.nextBundle++
	id := c.nextBundle
	c.mu.Unlock()
	if err := c.bundleControl(ctx, id, bundleOpenRequest, bundleOpenReply); err != nil {
		return nil, fmt.Errorf("open bundle %d: %w", id, err)
	}
	return &Bundle{c: c, id: id}, nil
}

// ID returns the bundle id.
func (b *Bundle) ID() uint32 { return b.id }

// Add sends msgs into the bundle. Errors the switch reports for them are
// collected and returned by Commit; Add itself fails only when sending fails.
// A Bundle is not safe for concurrent use.
func (b *Bundle) Add(msgs ...Message) error {
	if b.closed {
		return fmt.Errorf("bundle %d: add after commit or discard", b.id)
	}
	bt, err := b.c.sendBundleAdds(b.id, msgs, b.added)
	if err != nil {
		return fmt.Errorf("bundle %d: %w", b.id, err)
	}
	b.batches = append(b.batches, bt)
	b.added += len(msgs)
	return nil
}

// Commit makes the bundle take effect. It first waits on a barrier for the
// switch's verdict on every add; if any add was refused the bundle is
// discarded and a *BatchError lists the refusals. A failure at commit time
// (the switch rolls the whole bundle back) is returned as the switch's error.
func (b *Bundle) Commit(ctx context.Context) error {
	if b.closed {
		return fmt.Errorf("bundle %d: already committed or discarded", b.id)
	}
	defer b.dropBatches()
	if err := b.c.Barrier(ctx); err != nil {
		return fmt.Errorf("bundle %d: %w", b.id, err)
	}
	var failed []FailedMessage
	for _, bt := range b.batches {
		failed = append(failed, b.c.batchFailures(bt)...)
	}
	if len(failed) > 0 {
		refused := &BatchError{Failed: failed}
		if err := b.Discard(ctx); err != nil {
			return errors.Join(refused, err)
		}
		return refused
	}
	b.closed = true
	if err := b.c.bundleControl(ctx, b.id, bundleCommitRequest, bundleCommitReply); err != nil {
		return fmt.Errorf("commit bundle %d (%d messages): %w", b.id, b.added, err)
	}
	return nil
}

// Discard drops the bundle on the switch; nothing in it takes effect.
func (b *Bundle) Discard(ctx context.Context) error {
	if b.closed {
		return fmt.Errorf("bundle %d: already committed or discarded", b.id)
	}
	b.closed = true
	b.dropBatches()
	if err := b.c.bundleControl(ctx, b.id, bundleDiscardRequest, bundleDiscardReply); err != nil {
		return fmt.Errorf("discard bundle %d: %w", b.id, err)
	}
	return nil
}

func (b *Bundle) dropBatches() {
	for _, bt := range b.batches {
		b.c.dropBatch(bt)
	}
	b.batches = nil
}

// ApplyBundle installs msgs all together or not at all: open, add, barrier,
// then commit, or discard when the switch refused any message (*BatchError).
func (c *Conn) ApplyBundle(ctx context.Context, msgs []Message) error {
	b, err := c.OpenBundle(ctx)
	if err != nil {
		return err
	}
	if err := b.Add(msgs...); err != nil {
		b.discardQuietly(ctx)
		return err
	}
	err = b.Commit(ctx)
	if err != nil && !b.closed {
		b.discardQuietly(ctx)
	}
	return err
}

// discardQuietly tries to discard after a failure that was not the switch's
// verdict, even if ctx is already cancelled. OVS also drops open bundles when
// the connection closes.
func (b *Bundle) discardQuietly(ctx context.Context) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), discardTimeout)
	defer cancel()
	if err := b.Discard(dctx); err != nil {
		b.c.log.Debug("discard after failure", zap.Uint32("bundle", b.id), zap.Error(err))
	}
}

// bundleControl sends a bundle control request and checks the reply.
func (c *Conn) bundleControl(ctx context.Context, id uint32, req, want uint16) error {
	m, err := buildBundleControl(id, req)
	if err != nil {
		return err
	}
	cl, err := c.roundTrip(ctx, m, typeExperimenter, false)
	if err != nil {
		return err
	}
	r, err := parseBundleReply(cl.reply)
	if err != nil {
		return err
	}
	if r.BundleID != id || r.Type != want {
		return fmt.Errorf("switch answered bundle %d control type %d, want bundle %d type %d", r.BundleID, r.Type, id, want)
	}
	return nil
}
