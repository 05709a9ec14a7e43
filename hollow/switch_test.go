package hollow

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/ofswitch"
	"github.com/brtun/brtun/topology"
)

// These tests drive a hollow bridge with brtun's own OpenFlow client
// (ofswitch), without OVSDB: the bridge is configured directly.

// testHost is a host with no OVSDB session.
func testHost(t *testing.T) *Host {
	ctx, cancel := context.WithCancel(context.Background())
	opts := Options{Name: "h1", ProbeInterval: time.Second, MinBackoff: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}.withDefaults()
	h := &Host{opts: opts, log: opts.Logger, ctx: ctx, cancel: cancel, kick: make(chan struct{}, 1), bridges: map[string]*Bridge{}}
	t.Cleanup(h.Close)
	return h
}

// listen starts brtun's OpenFlow listener; connected switches arrive on the
// returned channel.
func listen(t *testing.T, opts ofswitch.Options) (string, <-chan *ofswitch.Conn) {
	conns := make(chan *ofswitch.Conn, 8)
	l, err := ofswitch.Listen(ofswitch.ListenerOptions{
		Options: opts, Address: "tcp:127.0.0.1:0",
		OnConnect: func(c *ofswitch.Conn) { conns <- c },
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _ = l.Serve(ctx) }()
	t.Cleanup(func() { cancel(); _ = l.Close() })
	return "tcp:" + l.Addr().String(), conns
}

func nextConn(t *testing.T, conns <-chan *ofswitch.Conn) *ofswitch.Conn {
	t.Helper()
	select {
	case c := <-conns:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("the hollow switch did not connect")
		return nil
	}
}

// tunBridge is a br-tun with patch-int and two VXLAN tunnel ports,
// connected to a fresh listener.
func tunBridge(t *testing.T) (*Bridge, *ofswitch.Conn) {
	target, conns := listen(t, ofswitch.Options{})
	h := testHost(t)
	b := h.bridgeFor("br-tun")
	ports := b.configure(0x1234, targets(b, target), []ifaceConfig{
		{name: "br-tun", typ: "internal"}, {name: "patch-int", typ: "patch"},
		{name: "vxlan-c0000202", typ: "vxlan"}, {name: "vxlan-c0000203", typ: "vxlan"},
	})
	assert.Equal(t, localOfport, ports["br-tun"].ofport)
	assert.Equal(t, 1, ports["patch-int"].ofport, "assigned in name order from 1")
	return b, nextConn(t, conns)
}

// compiled is br-tun's pipeline for the ofports tunBridge assigned.
func compiled(t *testing.T) []flows.Flow {
	v := flows.View{Host: "h1", PatchIntOfport: 1,
		Tunnels: []flows.TunnelPort{
			{Ofport: 2, PeerHost: "h2", RemoteIP: "192.0.2.2", Type: topology.VXLAN},
			{Ofport: 3, PeerHost: "h3", RemoteIP: "192.0.2.3", Type: topology.VXLAN},
		},
		Networks: []flows.NetworkView{{Name: "blue", Type: topology.VXLAN, SegmentID: 5001, LocalVLAN: 1, MACLearning: true, Peers: []string{"h2", "h3"}}},
		RemotePorts: []flows.RemotePort{
			{Network: "blue", Name: "a2", Host: "h2", MAC: "02:00:00:00:00:02", IPs: []string{"198.18.0.2"}},
		},
	}
	set := flows.Compile(v)
	require.NoError(t, flows.Validate(set))
	require.NotEmpty(t, set.BrTun)
	return set.BrTun
}

func encodeAll(t *testing.T, fs []flows.Flow, cmd ofswitch.Command) []ofswitch.Message {
	var out []ofswitch.Message
	for _, f := range fs {
		m, err := ofswitch.Encode(f, cmd)
		require.NoError(t, err)
		out = append(out, m)
	}
	return out
}

func sortedStrings(fs []flows.Flow) []string {
	cp := append([]flows.Flow(nil), fs...)
	flows.SortFlows(cp)
	return flows.Strings(cp)
}

func TestHandshakeReportsDatapathID(t *testing.T) {
	_, c := tunBridge(t)
	assert.Equal(t, uint64(0x1234), c.DatapathID())
	assert.Equal(t, uint8(254), c.Features().NTables)
	_, err := c.Echo(context.Background())
	require.NoError(t, err)
}

func TestBundleInstallsAndDumpDecodesTheSameFlows(t *testing.T) {
	b, c := tunBridge(t)
	ctx := context.Background()
	want := compiled(t)
	require.NoError(t, c.ApplyBundle(ctx, encodeAll(t, want, ofswitch.Add)))
	got, err := c.DumpFlows(ctx, ofswitch.FlowFilter{Table: ofswitch.AllTables})
	require.NoError(t, err)
	assert.Equal(t, sortedStrings(want), sortedStrings(got))
	assert.Equal(t, sortedStrings(want), b.DumpFlows(), "the bridge's own dump is in dump order")
	assert.Equal(t, uint64(len(want)), b.FlowMods())

	// Table and cookie filters of a dump.
	t21, err := c.DumpFlows(ctx, ofswitch.FlowFilter{Table: 21})
	require.NoError(t, err)
	require.NotEmpty(t, t21)
	for _, f := range t21 {
		assert.Equal(t, uint8(21), f.Table)
	}
	cookie := want[len(want)-1].Cookie
	byCookie, err := c.DumpFlows(ctx, ofswitch.FlowFilter{Table: ofswitch.AllTables, Cookie: cookie, CookieMask: ^uint64(0)})
	require.NoError(t, err)
	require.NotEmpty(t, byCookie)
	for _, f := range byCookie {
		assert.Equal(t, cookie, f.Cookie)
	}
	assert.Less(t, len(byCookie), len(want), "positive control: the filter left flows out")
}

func TestStrictModifyDeleteAndDeleteByCookie(t *testing.T) {
	_, c := tunBridge(t)
	ctx := context.Background()
	want := compiled(t)
	require.NoError(t, c.SendBatch(ctx, encodeAll(t, want, ofswitch.Add)))

	// modify-strict changes the actions, keeps the cookie.
	victim := want[0]
	changed := victim
	changed.Cookie = 0x42
	changed.Actions = []flows.Action{flows.GotoTable{Table: 22}}
	// delete-strict removes exactly one flow.
	gone := want[1]
	require.NoError(t, c.SendBatch(ctx, encodeAll(t, []flows.Flow{changed}, ofswitch.ModifyStrict)))
	require.NoError(t, c.SendBatch(ctx, encodeAll(t, []flows.Flow{gone}, ofswitch.DeleteStrict)))
	got, err := c.DumpFlows(ctx, ofswitch.FlowFilter{Table: ofswitch.AllTables})
	require.NoError(t, err)
	require.Len(t, got, len(want)-1)
	byKey := map[flows.Key]flows.Flow{}
	for _, f := range got {
		byKey[f.Key()] = f
	}
	m := byKey[victim.Key()]
	assert.Equal(t, victim.Cookie, m.Cookie, "modify keeps the cookie")
	assert.Equal(t, changed.Actions, m.Actions)
	assert.NotContains(t, byKey, gone.Key())

	// modify-strict of a flow that is not there adds nothing (OpenFlow 1.3).
	absent := victim
	absent.Priority = 999
	require.NoError(t, c.SendBatch(ctx, encodeAll(t, []flows.Flow{absent}, ofswitch.ModifyStrict)))
	got, err = c.DumpFlows(ctx, ofswitch.FlowFilter{Table: ofswitch.AllTables})
	require.NoError(t, err)
	require.Len(t, got, len(want)-1)

	// delete by cookie mask removes every flow of that cookie, only those.
	cookie := want[len(want)-1].Cookie
	n := 0
	for _, f := range got {
		if f.Cookie == cookie {
			n++
		}
	}
	require.Positive(t, n)
	del, err := ofswitch.EncodeDeleteByCookie(ofswitch.AllTables, cookie, ^uint64(0))
	require.NoError(t, err)
	require.NoError(t, c.SendBatch(ctx, []ofswitch.Message{del}))
	after, err := c.DumpFlows(ctx, ofswitch.FlowFilter{Table: ofswitch.AllTables})
	require.NoError(t, err)
	assert.Len(t, after, len(got)-n)
	for _, f := range after {
		assert.NotEqual(t, cookie, f.Cookie)
	}
}

func TestBundleWithARefusedFlowInstallsNothing(t *testing.T) {
	_, c := tunBridge(t)
	ctx := context.Background()
	want := compiled(t)
	require.NoError(t, c.ApplyBundle(ctx, encodeAll(t, want[:3], ofswitch.Add)), "positive control")

	bad := flows.Flow{Table: 10, Priority: 5, Actions: []flows.Action{flows.GotoTable{Table: 3}}} // goto backwards
	msgs := encodeAll(t, append([]flows.Flow{want[3]}, bad, want[4]), ofswitch.Add)
	err := c.ApplyBundle(ctx, msgs)
	var be *ofswitch.BatchError
	require.ErrorAs(t, err, &be)
	require.Len(t, be.Failed, 1)
	assert.Equal(t, 1, be.Failed[0].Index)
	assert.Equal(t, uint16(3), be.Failed[0].Err.Type, "OFPET_BAD_INSTRUCTION")

	got, err := c.DumpFlows(ctx, ofswitch.FlowFilter{Table: ofswitch.AllTables})
	require.NoError(t, err)
	assert.Equal(t, sortedStrings(want[:3]), sortedStrings(got), "the discarded bundle changed nothing")
}

// rawConn is a bare connection to a hollow bridge, for what brtun's client
// never sends (a commit after a refused add, meters, packet-out).
type rawConn struct {
	t  *testing.T
	cc *ctrlConn
}

func newRawConn(t *testing.T) (*Bridge, *rawConn) {
	h := testHost(t)
	b := h.bridgeFor("br-int")
	b.configure(7, nil, []ifaceConfig{{name: "br-int", typ: "internal"}, {name: "tap1"}})
	cc := newCtrlConn(b, targets(b, "test")[0])
	cc.connected, cc.role = true, ofswitch.RoleEqual
	close(cc.done) // no session goroutine: the test calls handle itself
	b.mu.Lock()
	b.conns["test"] = cc
	b.mu.Unlock()
	return b, &rawConn{t: t, cc: cc}
}

func (r *rawConn) send(m ofswitch.Message) []ofswitch.Message { return r.cc.handle(m) }

func withXid(m ofswitch.Message, xid uint32) ofswitch.Message {
	out := append(ofswitch.Message(nil), m...)
	binary.BigEndian.PutUint32(out[4:8], xid)
	return out
}

// bundleAdd builds an ONF bundle add around inner, both with xid.
func bundleAdd(id uint32, flags uint16, inner ofswitch.Message, xid uint32) ofswitch.Message {
	inner = withXid(inner, xid)
	body := make([]byte, 16+len(inner))
	binary.BigEndian.PutUint32(body[0:4], 0x4f4e4600)
	binary.BigEndian.PutUint32(body[4:8], 2301)
	binary.BigEndian.PutUint32(body[8:12], id)
	binary.BigEndian.PutUint16(body[14:16], flags)
	copy(body[16:], inner)
	return ofswitch.Reply(ofswitch.TypeExperimenter, xid, body)
}

func bundleCtrl(id uint32, typ, flags uint16, xid uint32) ofswitch.Message {
	return withXid(ofswitch.BundleControlReply(0, ofswitch.BundleCtrl{ID: id, Type: typ, Flags: flags}), xid)
}

func TestBundleErrorSemanticsAsOVS(t *testing.T) {
	b, r := newRawConn(t)
	good := flows.Flow{Table: 0, Priority: 1, Actions: []flows.Action{flows.Normal{}}}
	bad := flows.Flow{Table: 5, Priority: 1, Actions: []flows.Action{flows.GotoTable{Table: 1}}}
	goodMsg, err := ofswitch.Encode(good, ofswitch.Add)
	require.NoError(t, err)
	badMsg, err := ofswitch.Encode(bad, ofswitch.Add)
	require.NoError(t, err)
	const flags = 3

	require.Len(t, r.send(bundleCtrl(1, ofswitch.BundleOpenRequest, flags, 10)), 1)
	// The refused add gets an error with its own xid; the bundle stays open.
	replies := r.send(bundleAdd(1, flags, badMsg, 11))
	require.Len(t, replies, 1)
	assert.Equal(t, ofswitch.TypeError, replies[0].Type())
	assert.Equal(t, uint32(11), replies[0].Xid())
	assert.Empty(t, r.send(bundleAdd(1, flags, goodMsg, 12)))
	assert.Empty(t, b.DumpFlows(), "nothing before the commit")
	// A plain commit installs the rest (dependencies.md trap 7).
	replies = r.send(bundleCtrl(1, ofswitch.BundleCommitRequest, flags, 13))
	require.Len(t, replies, 1)
	assert.Equal(t, ofswitch.TypeExperimenter, replies[0].Type())
	assert.Equal(t, []string{good.String()}, b.DumpFlows())

	// Unknown ids and reopened ids are BAD_ID; a committed bundle is gone.
	for _, m := range []ofswitch.Message{
		bundleCtrl(1, ofswitch.BundleCommitRequest, flags, 20),
		bundleCtrl(9, ofswitch.BundleDiscardRequest, flags, 21),
	} {
		replies = r.send(m)
		require.Len(t, replies, 1)
		assert.Equal(t, ofswitch.TypeError, replies[0].Type())
		assert.Equal(t, ofswitch.BundleErrBadID, binary.BigEndian.Uint16(replies[0][10:12]))
	}
	require.Len(t, r.send(bundleCtrl(2, ofswitch.BundleOpenRequest, flags, 22)), 1)
	replies = r.send(bundleCtrl(2, ofswitch.BundleOpenRequest, flags, 23))
	assert.Equal(t, ofswitch.BundleErrBadID, binary.BigEndian.Uint16(replies[0][10:12]))
	// A discarded bundle installs nothing.
	other := good
	other.Priority = 2
	otherMsg, err := ofswitch.Encode(other, ofswitch.Add)
	require.NoError(t, err)
	assert.Empty(t, r.send(bundleAdd(3, flags, otherMsg, 24)), "an add opens the bundle implicitly")
	require.Len(t, r.send(bundleCtrl(3, ofswitch.BundleDiscardRequest, flags, 25)), 1)
	assert.Equal(t, []string{good.String()}, b.DumpFlows())
}

func TestRolesAsOVS(t *testing.T) {
	target, conns := listen(t, ofswitch.Options{})
	target2, conns2 := listen(t, ofswitch.Options{})
	h := testHost(t)
	b := h.bridgeFor("br-tun")
	b.configure(5, targets(b, target, target2), []ifaceConfig{{name: "br-tun", typ: "internal"}})
	c1, c2 := nextConn(t, conns), nextConn(t, conns2)
	ctx := context.Background()

	role, gen, err := c1.RequestRole(ctx, ofswitch.RolePrimary, 10)
	require.NoError(t, err)
	assert.Equal(t, ofswitch.RolePrimary, role)
	assert.Equal(t, uint64(10), gen)
	_, _, err = c2.RequestRole(ctx, ofswitch.RolePrimary, 9)
	var ofe *ofswitch.OFError
	require.ErrorAs(t, err, &ofe, "a stale generation is refused")
	assert.Equal(t, uint16(11), ofe.Type)
	assert.Equal(t, uint16(0), ofe.Code, "OFPRRFC_STALE")

	role, _, err = c2.RequestRole(ctx, ofswitch.RolePrimary, 11)
	require.NoError(t, err)
	assert.Equal(t, ofswitch.RolePrimary, role)
	role, _, err = c1.RequestRole(ctx, ofswitch.RoleNoChange, 0)
	require.NoError(t, err)
	assert.Equal(t, ofswitch.RoleSecondary, role, "the old primary was demoted")

	msg, err := ofswitch.Encode(flows.Flow{Priority: 1, Actions: []flows.Action{flows.Normal{}}}, ofswitch.Add)
	require.NoError(t, err)
	err = c1.SendBatch(ctx, []ofswitch.Message{msg})
	var be *ofswitch.BatchError
	require.ErrorAs(t, err, &be, "a secondary may not change flows")
	assert.Equal(t, uint16(10), be.Failed[0].Err.Code, "OFPBRC_IS_SLAVE")
	require.NoError(t, c2.SendBatch(ctx, []ofswitch.Message{msg}), "positive control: the primary may")
	assert.Len(t, b.DumpFlows(), 1)
}

func TestFlowStatsSpanSeveralParts(t *testing.T) {
	b, c := tunBridge(t)
	ctx := context.Background()
	var many []flows.Flow
	for i := range 3000 {
		many = append(many, flows.Flow{Table: 20, Priority: 2, Cookie: uint64(i + 1),
			Match:   flows.Match{VLANTCI: &flows.MaskedU16{Value: 0x1001, Mask: 0x1fff}, EthDst: &flows.MaskedMAC{Value: flows.MAC{2, 0, 0, 0, byte(i >> 8), byte(i)}, Mask: flows.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}},
			Actions: []flows.Action{flows.PopVLAN{}, flows.Output{Port: 2}}})
	}
	require.NoError(t, c.ApplyBundle(ctx, encodeAll(t, many, ofswitch.Add)))
	b.mu.Lock()
	parts, err := b.table.flowStatsReply(1, ofswitch.FlowStatsRequest{Table: ofswitch.AllTables, OutPort: ofppAny, OutGroup: ofpgAny})
	b.mu.Unlock()
	require.NoError(t, err)
	assert.Greater(t, len(parts), 1, "more than 64 KiB of flow stats go in several parts")
	got, err := c.DumpFlows(ctx, ofswitch.FlowFilter{Table: ofswitch.AllTables})
	require.NoError(t, err)
	assert.Equal(t, sortedStrings(many), sortedStrings(got))
}

func TestMetersAndPacketOut(t *testing.T) {
	b, r := newRawConn(t)
	meterMod := func(cmd uint16, id uint32, xid uint32) ofswitch.Message {
		body := make([]byte, 8+16)
		binary.BigEndian.PutUint16(body[0:2], cmd)
		binary.BigEndian.PutUint16(body[2:4], 1) // kbps
		binary.BigEndian.PutUint32(body[4:8], id)
		binary.BigEndian.PutUint16(body[8:10], 1) // drop band
		binary.BigEndian.PutUint16(body[10:12], 16)
		binary.BigEndian.PutUint32(body[12:16], 1000)
		return ofswitch.Reply(ofswitch.TypeMeterMod, xid, body)
	}
	errCode := func(replies []ofswitch.Message) (uint16, uint16) {
		require.Len(t, replies, 1)
		require.Equal(t, ofswitch.TypeError, replies[0].Type())
		return binary.BigEndian.Uint16(replies[0][8:10]), binary.BigEndian.Uint16(replies[0][10:12])
	}
	assert.Empty(t, r.send(meterMod(meterAdd, 1, 1)))
	typ, code := errCode(r.send(meterMod(meterAdd, 1, 2)))
	assert.Equal(t, [2]uint16{errMeterModFailed, codeMeterExists}, [2]uint16{typ, code})
	typ, code = errCode(r.send(meterMod(meterModify, 7, 3)))
	assert.Equal(t, [2]uint16{errMeterModFailed, codeMeterUnknown}, [2]uint16{typ, code})
	assert.Empty(t, r.send(meterMod(meterAdd, 2, 4)))
	statsReq := func(typ uint16) ofswitch.Message {
		body := make([]byte, 16)
		binary.BigEndian.PutUint16(body[0:2], typ)
		binary.BigEndian.PutUint32(body[8:12], meterAll)
		return ofswitch.Reply(ofswitch.TypeMultipartRequest, 5, body)
	}
	replies := r.send(statsReq(ofswitch.MultipartMeter))
	require.Len(t, replies, 1)
	assert.Len(t, replies[0].Body()[8:], 2*(40+16), "stats of two meters with one band each")
	assert.Empty(t, r.send(meterMod(meterDelete, 1, 6)))
	replies = r.send(statsReq(ofswitch.MultipartMeterConfig))
	require.Len(t, replies, 1)
	assert.Len(t, replies[0].Body()[8:], 8+16, "one meter left")

	// PACKET_OUT is recorded.
	po := make([]byte, 16+16+4)
	binary.BigEndian.PutUint32(po[0:4], 0xffffffff)
	binary.BigEndian.PutUint32(po[4:8], ofppLocal)
	binary.BigEndian.PutUint16(po[8:10], 16)
	copy(po[32:], "data")
	assert.Empty(t, r.send(ofswitch.Reply(ofswitch.TypePacketOut, 7, po)))
	require.Len(t, b.PacketOuts(), 1)
	assert.Equal(t, []byte("data"), b.PacketOuts()[0].Data)

	// A message the switch does not know is refused, not ignored.
	typ, code = errCode(r.send(ofswitch.Reply(30, 8, nil)))
	assert.Equal(t, [2]uint16{errBadRequest, codeBadType}, [2]uint16{typ, code})
}

func TestPacketInAndPortStatusReachTheController(t *testing.T) {
	got := make(chan ofswitch.Message, 16)
	target, conns := listen(t, ofswitch.Options{OnMessage: func(_ *ofswitch.Conn, m ofswitch.Message) { got <- m }})
	h := testHost(t)
	b := h.bridgeFor("br-int")
	b.configure(9, targets(b, target), []ifaceConfig{{name: "br-int", typ: "internal"}})
	nextConn(t, conns)
	require.Eventually(t, func() bool { return b.Connected() == 1 }, 5*time.Second, 10*time.Millisecond)

	assert.Equal(t, 1, b.PacketIn(1, 3, 0xabc, 5, []byte("frame")))
	b.configure(9, targets(b, target), []ifaceConfig{{name: "br-int", typ: "internal"}, {name: "tap9"}})
	want := []uint8{ofswitch.TypePacketIn, ofswitch.TypePortStatus}
	for _, typ := range want {
		select {
		case m := <-got:
			assert.Equal(t, typ, m.Type())
		case <-time.After(5 * time.Second):
			t.Fatalf("no %d message reached the controller", typ)
		}
	}
}

func TestReconnectsAfterTheControllerGoesAway(t *testing.T) {
	target, conns := listen(t, ofswitch.Options{})
	h := testHost(t)
	b := h.bridgeFor("br-tun")
	b.configure(5, targets(b, target), []ifaceConfig{{name: "br-tun", typ: "internal"}})
	c := nextConn(t, conns)
	require.NoError(t, c.Close())
	c2 := nextConn(t, conns)
	_, err := c2.Echo(context.Background())
	require.NoError(t, err)
	assert.False(t, errors.Is(c2.Err(), ofswitch.ErrClosed))
	assert.Equal(t, fmt.Sprint(uint64(5)), fmt.Sprint(c2.DatapathID()))
}

// A flow monitor is accepted as OVS does (an empty reply without
// MonitorInitial; the installed flows with it), then reports nothing: the
// hollow bridge has no other writer. Errors as OVS's: an id in use, bad
// flags, an unknown id to cancel.
func TestFlowMonitorAsOVS(t *testing.T) {
	_, c := tunBridge(t)
	ctx := context.Background()
	var got []ofswitch.FlowUpdate
	onUpdate := func(us []ofswitch.FlowUpdate) { got = append(got, us...) }
	watch := ofswitch.MonitorAdd | ofswitch.MonitorDelete | ofswitch.MonitorModify
	require.NoError(t, c.MonitorFlows(ctx, onUpdate, ofswitch.FlowMonitorRequest{ID: 1, Table: ofswitch.AllTables, Flags: watch}))
	want := compiled(t)
	require.NoError(t, c.ApplyBundle(ctx, encodeAll(t, want, ofswitch.Add)))
	require.NoError(t, c.Barrier(ctx))
	assert.Empty(t, got, "no update: brtun is the only writer")

	var oe *ofswitch.OFError
	err := c.MonitorFlows(ctx, onUpdate, ofswitch.FlowMonitorRequest{ID: 1, Table: 20, Flags: watch})
	require.ErrorAs(t, err, &oe, "id 1 is in use")
	assert.Equal(t, [2]uint16{0xffff, ofswitch.MonitorErrExists}, [2]uint16{oe.Type, oe.Code})

	require.NoError(t, c.MonitorFlows(ctx, onUpdate, ofswitch.FlowMonitorRequest{ID: 2, Table: flows.TableFlood, Flags: watch | ofswitch.MonitorInitial | ofswitch.MonitorActions}))
	var flood []string
	for _, f := range want {
		if f.Table == flows.TableFlood {
			flood = append(flood, f.String())
		}
	}
	require.NotEmpty(t, flood)
	var initial []string
	for _, u := range got {
		assert.Equal(t, ofswitch.FlowAdded, u.Event)
		initial = append(initial, u.Flow.String())
	}
	assert.ElementsMatch(t, flood, initial, "the initial flows of table 21, with their actions")

	require.NoError(t, c.CancelFlowMonitor(ctx, 1))
	require.ErrorAs(t, c.CancelFlowMonitor(ctx, 1), &oe, "cancelled already")
	assert.Equal(t, [2]uint16{0xffff, ofswitch.MonitorErrUnknown}, [2]uint16{oe.Type, oe.Code})
	require.NoError(t, c.Barrier(ctx), "the connection stays up")
}

// targets are controllers whose rows leave inactivity_probe and
// max_backoff unset: the host's defaults.
func targets(b *Bridge, ts ...string) []controllerConfig {
	var out []controllerConfig
	for _, t := range ts {
		out = append(out, b.host.opts.controllerConfig(&row{target: t, inactivityProbe: -1, maxBackoff: -1}))
	}
	return out
}

// The Controller row's inactivity_probe and max_backoff as ovs-vswitchd
// reads them: whole seconds, a probe of at least 5 s or off at 0, a
// backoff of at least 1 s, the defaults when unset.
func TestControllerRowSettingsAsOVS(t *testing.T) {
	opts := Options{}.withDefaults()
	for _, tc := range []struct {
		probeMs, backoffMs int
		probe, backoff     time.Duration
	}{
		{-1, -1, 5 * time.Second, 8 * time.Second},
		{5000, 1000, 5 * time.Second, time.Second},
		{10000, 1000, 10 * time.Second, time.Second},
		{10500, 2500, 10 * time.Second, 2 * time.Second},
		{2000, 500, 5 * time.Second, time.Second},
		{999, 8000, 5 * time.Second, 8 * time.Second},
		{0, -1, 0, 8 * time.Second},
	} {
		cc := opts.controllerConfig(&row{target: "tcp:198.51.100.1:6653", inactivityProbe: tc.probeMs, maxBackoff: tc.backoffMs})
		assert.Equal(t, controllerConfig{target: "tcp:198.51.100.1:6653", probe: tc.probe, maxBackoff: tc.backoff}, cc, "inactivity_probe %d, max_backoff %d", tc.probeMs, tc.backoffMs)
	}
	r := parseRow("Controller", jsonRow{"target": "tcp:198.51.100.1:6653", "inactivity_probe": float64(10000), "max_backoff": []any{"set", []any{}}})
	assert.Equal(t, 10000, r.inactivityProbe)
	assert.Equal(t, -1, r.maxBackoff, "an empty set is unset")
}

// A switch probes a controller that sends nothing after its probe interval
// and drops it after twice that; with the probe off it keeps waiting.
func TestInactivityProbeOfTheControllerRow(t *testing.T) {
	for _, tc := range []struct {
		name  string
		probe time.Duration
	}{{"probe 1s", time.Second}, {"probe off", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			t.Cleanup(func() { _ = l.Close() })
			b := testHost(t).bridgeFor("br-int")
			b.configure(3, []controllerConfig{{target: "tcp:" + l.Addr().String(), probe: tc.probe, maxBackoff: time.Second}},
				[]ifaceConfig{{name: "br-int", typ: "internal"}})
			nc, err := l.Accept()
			require.NoError(t, err)
			t.Cleanup(func() { _ = nc.Close() })
			rd := bufio.NewReader(nc)
			_, err = ofswitch.ReadFrame(rd, 0)
			require.NoError(t, err, "the switch's hello")
			hello, err := ofswitch.SwitchHello()
			require.NoError(t, err)
			_, err = nc.Write(hello)
			require.NoError(t, err)
			start := time.Now()
			require.NoError(t, nc.SetReadDeadline(start.Add(3500*time.Millisecond)))
			var echoes []time.Duration
			for {
				m, err := ofswitch.ReadFrame(rd, ofswitch.Version13)
				if err != nil {
					var ne net.Error
					if tc.probe == 0 {
						require.True(t, errors.As(err, &ne) && ne.Timeout(), "the connection stays: %v", err)
						assert.Empty(t, echoes, "no probe")
						return
					}
					require.ErrorIs(t, err, io.EOF, "the switch drops the silent controller")
					require.Len(t, echoes, 1)
					assert.InDelta(t, tc.probe.Seconds(), echoes[0].Seconds(), 0.4, "echo after the probe interval")
					assert.InDelta(t, 2*tc.probe.Seconds(), time.Since(start).Seconds(), 0.5, "dropped after twice the interval")
					return
				}
				if m.Type() == ofswitch.TypeEchoRequest {
					echoes = append(echoes, time.Since(start))
				}
			}
		})
	}
}
