//go:build integration

package ofswitch

import (
	"bufio"
	"context"
	"fmt"
	"hash/maphash"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/testbed"
	"github.com/brtun/brtun/topology"
)

// ovsSwitch is a private Open vSwitch (dummy datapath, testbed.StartOVS)
// with one bridge.
type ovsSwitch struct {
	*testbed.Switch
	t      *testing.T
	bridge string
	dpid   uint64
}

// startOVS starts the daemons and creates bridge br0 with protocols
// OpenFlow13, fail_mode secure and a fixed datapath id.
func startOVS(t *testing.T) *ovsSwitch {
	t.Helper()
	s := &ovsSwitch{Switch: testbed.StartOVS(t, testbed.RunDir(t)), t: t, bridge: "br0", dpid: 0x00000000000000b7}
	s.AddBridge(t, s.bridge, fmt.Sprintf("other_config:datapath-id=%016x", s.dpid))
	return s
}

func (s *ovsSwitch) vsctl(args ...string) string {
	s.t.Helper()
	out, err := s.Vsctl(args...)
	require.NoError(s.t, err)
	return out
}

func (s *ovsSwitch) ofctl(args ...string) string {
	s.t.Helper()
	out, err := s.Ofctl(args...)
	require.NoError(s.t, err)
	return out
}

// dumpLines is the canonical dump (ovs-ofctl dump-flows --no-stats --no-names, see docs/pipeline.md) as trimmed, sorted lines.
func (s *ovsSwitch) dumpLines() []string {
	s.t.Helper()
	return s.DumpFlows(s.t, s.bridge)
}

// dial connects to the bridge's management socket.
func (s *ovsSwitch) dial() *Conn {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, s.BridgeTarget(s.bridge), DialOptions{Options: testOptions(s.t)})
	require.NoError(s.t, err)
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}

func sortedStrings(fs []flows.Flow) []string {
	out := flows.Strings(fs)
	slices.Sort(out)
	return out
}

func encodeAll(t *testing.T, fs []flows.Flow, cmd Command) []Message {
	t.Helper()
	out := make([]Message, len(fs))
	for i, f := range fs {
		m, err := Encode(f, cmd)
		require.NoError(t, err, f.String())
		out[i] = m
	}
	return out
}

// byString indexes flows by their canonical text.
func byString(fs []flows.Flow) map[string]flows.Flow {
	out := make(map[string]flows.Flow, len(fs))
	for _, f := range fs {
		out[f.String()] = f
	}
	return out
}

func TestOVSDialHandshakeEchoBarrier(t *testing.T) {
	s := startOVS(t)
	c := s.dial()
	assert.Equal(t, s.dpid, c.DatapathID())
	assert.Equal(t, uint8(254), c.Features().NTables)
	ctx := context.Background()
	_, err := c.Echo(ctx)
	require.NoError(t, err)
	require.NoError(t, c.Barrier(ctx))
	flowsNow, err := c.DumpFlows(ctx, FlowFilter{Table: AllTables})
	require.NoError(t, err)
	assert.Empty(t, flowsNow, "a fresh secure bridge has no flows")
}

// TestOVSSetControllerConnectsAndStays points the bridge at a Listener on
// 127.0.0.1, checks the handshake and role request, and stays silent long
// enough that OVS's own inactivity probe (5 s idle, then 5 s to answer) must
// be answered for the connection to survive.
func TestOVSSetControllerConnectsAndStays(t *testing.T) {
	s := startOVS(t)
	connected := make(chan *Conn, 4)
	disconnected := make(chan error, 4)
	opts := testOptions(t)
	opts.EchoInterval = time.Minute // brtun stays silent: only OVS probes
	opts.DeadTimeout = 2 * time.Minute
	l := serveListener(t, ListenerOptions{
		Options:      opts,
		Address:      "tcp:127.0.0.1:0",
		OnConnect:    func(c *Conn) { connected <- c },
		OnDisconnect: func(_ *Conn, err error) { disconnected <- err },
	})
	ctx := context.Background()

	s.vsctl("set-controller", s.bridge, "tcp:"+l.Addr().String())
	var c *Conn
	select {
	case c = <-connected:
	case <-time.After(20 * time.Second):
		t.Fatal("bridge did not connect")
	}
	assert.Equal(t, s.dpid, c.DatapathID())

	role, gen, err := c.RequestRole(ctx, RolePrimary, 1)
	require.NoError(t, err)
	assert.Equal(t, RolePrimary, role)
	assert.Equal(t, uint64(1), gen)
	_, _, err = c.RequestRole(ctx, RolePrimary, 0) // older generation than 1
	var oe *OFError
	require.ErrorAs(t, err, &oe, "a stale generation is refused")
	assert.Equal(t, uint16(11), oe.Type, "ROLE_REQUEST_FAILED")

	time.Sleep(12 * time.Second)
	select {
	case err := <-disconnected:
		t.Fatalf("connection dropped while idle: %v", err)
	default:
	}
	require.NoError(t, c.Barrier(ctx))
	status := s.vsctl("--columns=is_connected", "list", "controller")
	assert.Contains(t, status, "true")
}

// TestOVSBundleInstallsCompiledPipeline installs every kind of flow brtun
// makes in one bundle and checks the bridge against ovs-ofctl's canonical
// dump and against brtun's own decoder.
func TestOVSBundleInstallsCompiledPipeline(t *testing.T) {
	s := startOVS(t)
	c := s.dial()
	ctx := context.Background()
	want := allTestFlows(t)

	require.NoError(t, c.ApplyBundle(ctx, encodeAll(t, want, Add)))
	assert.Equal(t, sortedStrings(want), s.dumpLines(), "ovs-ofctl dump equals the flows' String()")

	got, err := c.DumpFlows(ctx, FlowFilter{Table: AllTables})
	require.NoError(t, err)
	require.Len(t, got, len(want))
	wantBy := byString(want)
	for _, g := range got {
		w, ok := wantBy[g.String()]
		if assert.True(t, ok, "unexpected flow %s", g) {
			assert.Equal(t, w, g, "decoded value equals the compiled one")
		}
	}
}

// TestOVSReportsFlowsAsEncoded: OVS reports every kind of flow brtun
// makes (both bridges' pipelines) with the bytes brtun encoded, so
// FlowKey predicts the key of each flow in a dump, and a drift check after
// brtun's own changes finds the digest it expects without decoding.
func TestOVSReportsFlowsAsEncoded(t *testing.T) {
	flowMode := testView() // one tunnel port per type: tun_src matches, tun_dst loads
	flowMode.TunnelPorts = topology.FlowTunnels
	flowMode.Tunnels = []flows.TunnelPort{
		{Ofport: 2, PeerHost: "h2", RemoteIP: "192.0.2.2", Type: topology.VXLAN},
		{Ofport: 2, PeerHost: "h3", RemoteIP: "192.0.2.3", Type: topology.VXLAN},
		{Ofport: 4, PeerHost: "h2", RemoteIP: "192.0.2.2", Type: topology.GRE},
	}
	flowSet := flows.Compile(flowMode)
	require.Empty(t, flowSet.Skipped)
	for name, want := range map[string][]flows.Flow{
		"br-tun":      allTestFlows(t),
		"br-tun flow": flowSet.BrTun,
		"br-int":      flows.Compile(testView()).BrInt, // port security: every match field
	} {
		t.Run(name, func(t *testing.T) { checkReportedAsEncoded(t, want) })
	}
}

func checkReportedAsEncoded(t *testing.T, want []flows.Flow) {
	s := startOVS(t)
	c := s.dial()
	ctx := context.Background()
	require.NoError(t, c.ApplyBundle(ctx, encodeAll(t, want, Add)))

	seed := maphash.MakeSeed()
	stats, err := c.DumpFlowStats(ctx, FlowFilter{Table: AllTables})
	require.NoError(t, err)
	require.Len(t, stats, len(want))
	wantBy := byString(want)
	for _, st := range stats {
		f, err := DecodeFlow(st)
		require.NoError(t, err)
		w, ok := wantBy[f.String()]
		require.True(t, ok, "unexpected flow %s", f)
		key, err := FlowKey(seed, w)
		require.NoError(t, err)
		if !assert.Equal(t, st.Key(seed), key, "OVS reports %s as brtun encoded it", w) {
			m, _ := Encode(w, Add)
			fm, _ := ParseFlowMod(m)
			t.Logf("ovs: flags %d match %x instr %x\nours: flags %d match %x instr %x", st.Flags, st.Match, st.Instructions, fm.Flags, fm.Match, fm.Instructions)
		}
	}
}

// TestOVSBrIntPortSecurityRoundTrips installs a compiled br-int with port
// security (every match field it uses: in_port, vlan_tci, reg0, dl_src,
// dl_dst, arp_spa/arp_sha, nw_src with a prefix, ipv6_src, tp_src/tp_dst,
// icmp_type, nd_target) and checks OVS prints each flow as its String and
// reports it back as the same value.
func TestOVSBrIntPortSecurityRoundTrips(t *testing.T) {
	s := startOVS(t)
	c := s.dial()
	ctx := context.Background()
	set := flows.Compile(testView())
	require.Empty(t, set.Skipped)
	want := set.BrInt
	fields := map[flows.MatchField]bool{}
	for _, f := range want {
		for _, mf := range f.Match.Fields() {
			fields[mf] = true
		}
	}
	for _, mf := range []flows.MatchField{flows.MatchIPv4Src, flows.MatchIPv6Src, flows.MatchARPSHA, flows.MatchUDPSrc, flows.MatchUDPDst, flows.MatchReg0, flows.MatchNDTarget} {
		assert.True(t, fields[mf], "br-int flows use %s", mf)
	}

	require.NoError(t, c.ApplyBundle(ctx, encodeAll(t, want, Add)))
	assert.Equal(t, sortedStrings(want), s.dumpLines(), "ovs-ofctl dump equals the flows' String()")

	got, err := c.DumpFlows(ctx, FlowFilter{Table: AllTables})
	require.NoError(t, err)
	require.Len(t, got, len(want))
	wantBy := byString(want)
	for _, g := range got {
		w, ok := wantBy[g.String()]
		if assert.True(t, ok, "unexpected flow %s", g) {
			assert.Equal(t, w, g, "decoded value equals the compiled one")
		}
	}
}

// TestOVSBundleDiscardedWhenAnAddIsRefused sends a bundle whose third flow
// OVS refuses (goto_table backwards): nothing of it is installed and the
// flows already there stay.
func TestOVSBundleDiscardedWhenAnAddIsRefused(t *testing.T) {
	s := startOVS(t)
	c := s.dial()
	ctx := context.Background()
	before := []flows.Flow{{Table: 2, Priority: 0}}
	require.NoError(t, c.SendBatch(ctx, encodeAll(t, before, Add)))

	bad := []flows.Flow{
		{Table: 0, Priority: 1, Match: flows.Match{InPort: flows.Ptr(uint32(1))}, Actions: []flows.Action{flows.GotoTable{Table: 1}}},
		{Table: 1, Priority: 0},
		{Table: 3, Priority: 1, Actions: []flows.Action{flows.GotoTable{Table: 1}}},
		{Table: 21, Priority: 0},
	}
	err := c.ApplyBundle(ctx, encodeAll(t, bad, Add))
	var be *BatchError
	require.ErrorAs(t, err, &be)
	require.Len(t, be.Failed, 1)
	assert.Equal(t, 2, be.Failed[0].Index)
	assert.Equal(t, uint16(3), be.Failed[0].Err.Type, "BAD_INSTRUCTION")
	assert.Equal(t, sortedStrings(before), s.dumpLines())
	require.NoError(t, c.Barrier(ctx), "connection still usable")
}

// TestOVSModifyDeleteAndLearnedCleanup drives learn() with ofproto/trace,
// decodes the learned flow, modifies and deletes strictly, and removes the
// learned flows by cookie.
func TestOVSModifyDeleteAndLearnedCleanup(t *testing.T) {
	s := startOVS(t)
	s.AddDummyPorts(t, s.bridge, 2)
	c := s.dial()
	ctx := context.Background()
	set := flows.Compile(testView())
	require.NoError(t, c.ApplyBundle(ctx, encodeAll(t, set.BrTun, Add)))

	_, err := s.Appctl("ofproto/trace", s.bridge, "in_port=2,tun_id=0x1389,dl_src=02:00:00:00:00:42,dl_dst=02:00:00:00:00:01", "-generate")
	require.NoError(t, err)
	learned, err := c.DumpFlows(ctx, FlowFilter{Table: flows.TableUnicast, Cookie: set.LearnedCookies[0], CookieMask: ^uint64(0)})
	require.NoError(t, err)
	require.Len(t, learned, 1)
	l := learned[0]
	assert.Equal(t, flows.Flow{
		Table: flows.TableUnicast, Priority: 1, Cookie: set.LearnedCookies[0], HardTimeout: 300,
		Match: flows.Match{
			VLANTCI: &flows.MaskedU16{Value: 1, Mask: 0x0fff},
			EthDst:  flows.ExactMAC(flows.MAC{2, 0, 0, 0, 0, 0x42}),
		},
		Actions: []flows.Action{
			flows.Load{Dst: flows.Whole(flows.FieldVLANTCI), Value: 0},
			flows.Load{Dst: flows.Whole(flows.FieldTunID), Value: 5001},
			flows.Output{Port: 2},
		},
	}, l)
	assert.Contains(t, s.dumpLines(), l.String(), "decoded learned flow prints as OVS prints it")

	// Modify-strict keeps the flow (and its duration) but changes actions.
	target := set.BrTun[0]
	changed := target
	changed.Actions = []flows.Action{flows.Output{Port: 9}}
	require.NoError(t, c.SendBatch(ctx, encodeAll(t, []flows.Flow{changed}, ModifyStrict)))
	assert.Contains(t, s.dumpLines(), changed.String())
	assert.NotContains(t, s.dumpLines(), target.String())

	// Delete-strict removes exactly that flow.
	require.NoError(t, c.SendBatch(ctx, encodeAll(t, []flows.Flow{changed}, DeleteStrict)))
	assert.NotContains(t, s.dumpLines(), changed.String())
	assert.Len(t, s.dumpLines(), len(set.BrTun)-1+1, "the other flows and the learned one remain")

	// Learned-flow cleanup by cookie leaves every other flow alone.
	del, err := EncodeDeleteByCookie(flows.TableUnicast, set.LearnedCookies[0], ^uint64(0))
	require.NoError(t, err)
	require.NoError(t, c.SendBatch(ctx, []Message{del}))
	assert.NotContains(t, s.dumpLines(), l.String())
	assert.Len(t, s.dumpLines(), len(set.BrTun)-1)
}

// TestOVSStatsReplyWithPopVLANDecodes is the case libOpenflow's decoder
// panics on: a flow-stats reply with pop_vlan among other actions.
func TestOVSStatsReplyWithPopVLANDecodes(t *testing.T) {
	s := startOVS(t)
	s.ofctl("add-flow", s.bridge, "table=21,priority=1,dl_vlan=1,actions=strip_vlan,set_tunnel:0x1,output:2,output:3")
	s.ofctl("add-flow", s.bridge, "table=21,priority=0,actions=note:ab.cd,output:4")
	c := s.dial()
	got, err := c.DumpFlows(context.Background(), FlowFilter{Table: 21})
	require.NoError(t, err)
	require.Len(t, got, 2)
	for _, f := range got {
		if f.Priority == 1 {
			assert.Equal(t, []flows.Action{flows.PopVLAN{}, flows.SetTunID(1), flows.Output{Port: 2}, flows.Output{Port: 3}}, f.Actions)
			assert.Contains(t, s.dumpLines(), f.String())
		} else {
			require.Len(t, f.Actions, 2)
			raw, isRaw := f.Actions[0].(flows.Raw)
			require.True(t, isRaw, "note is kept raw")
			assert.Equal(t, []byte{0xff, 0xff, 0, 16, 0, 0, 0x23, 0x20, 0, 8, 0xab, 0xcd, 0, 0, 0, 0}, raw.Bytes)
			assert.Equal(t, flows.Output{Port: 4}, f.Actions[1])
			assert.NotContains(t, s.dumpLines(), f.String(), "a raw action never prints like a real one")
		}
	}
	assert.Nil(t, c.Err())
}

// TestOVSLargeBundleAndMultipartDump installs enough flows that OVS splits
// the dump into many multipart parts.
func TestOVSLargeBundleAndMultipartDump(t *testing.T) {
	s := startOVS(t)
	c := s.dial()
	ctx := context.Background()
	var want []flows.Flow
	for i := range 3000 {
		want = append(want, flows.Flow{
			Table: flows.TableUnicast, Priority: 2, Cookie: uint64(i),
			Match:   flows.Match{VLANTCI: flows.VLANMatch(uint16(i%4000 + 1)), EthDst: flows.ExactMAC(flows.MAC{2, 0, 0, 0, byte(i >> 8), byte(i)})},
			Actions: []flows.Action{flows.PopVLAN{}, flows.SetTunID(uint64(i)), flows.Output{Port: 2}},
		})
	}
	require.NoError(t, c.ApplyBundle(ctx, encodeAll(t, want, Add)))
	got, err := c.DumpFlows(ctx, FlowFilter{Table: AllTables})
	require.NoError(t, err)
	assert.Equal(t, sortedStrings(want), sortedStrings(got))
	assert.Len(t, s.dumpLines(), len(want))
}

// rawOVS is a bare OpenFlow 1.3 session with a bridge's management socket,
// without the Conn: what OVS answers arrives exactly as sent, including an
// error in another OpenFlow version, which a Conn would close on.
type rawOVS struct {
	t  *testing.T
	nc net.Conn
	rd *bufio.Reader
}

func dialRaw(t *testing.T, s *ovsSwitch) *rawOVS {
	t.Helper()
	nc, err := net.Dial("unix", strings.TrimPrefix(s.BridgeTarget(s.bridge), "unix:"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = nc.Close() })
	r := &rawOVS{t: t, nc: nc, rd: bufio.NewReader(nc)}
	hello, err := buildHello()
	require.NoError(t, err)
	r.send(hello, 1)
	m := r.read()
	require.Equal(t, typeHello, m.Type())
	return r
}

func (r *rawOVS) send(m Message, xid uint32) {
	r.t.Helper()
	_, err := r.nc.Write(withXid(m, xid))
	require.NoError(r.t, err)
}

// read returns the next message that is not an echo request (answered).
func (r *rawOVS) read() Message {
	r.t.Helper()
	for {
		require.NoError(r.t, r.nc.SetReadDeadline(time.Now().Add(5*time.Second)))
		m, err := readMessage(r.rd, 0)
		require.NoError(r.t, err)
		if m.Type() != typeEchoRequest {
			return m
		}
		r.send(buildEchoReply(m), m.Xid())
	}
}

// TestOVSFlowMonitorWire sends brtun's flow monitor request to real OVS on
// a bare session and checks, byte for byte where it matters, what OVS 3.1
// answers: an empty ONF 1870 reply of the request's version and xid (not an
// error in another version), then an unsolicited full update (xid 0) for a
// flow added by ovs-ofctl. The messages become a seed of FuzzReader.
func TestOVSFlowMonitorWire(t *testing.T) {
	s := startOVS(t)
	r := dialRaw(t, s)
	req, err := EncodeFlowMonitorRequest(FlowMonitorRequest{ID: 7, Table: AllTables, Flags: MonitorAdd | MonitorDelete | MonitorModify})
	require.NoError(t, err)
	r.send(req, 42)
	reply := r.read()
	var seed []byte
	seed = append(seed, reply...)
	require.Equal(t, Version13, reply.Version(), "OVS answers in OpenFlow 1.3: %x", []byte(reply))
	require.Equal(t, typeMultipartReply, reply.Type(), "not an error: %x", []byte(reply))
	assert.Equal(t, uint32(42), reply.Xid())
	require.NoError(t, checkInbound(reply))
	mr, err := parseMultipartReply(reply)
	require.NoError(t, err)
	assert.False(t, mr.More)
	body, ok := isFlowMonitorReply(mr)
	require.True(t, ok, "an ONF 1870 reply: %x", []byte(reply))
	assert.Empty(t, body, "no initial flows without MonitorInitial")

	s.ofctl("add-flow", s.bridge, "table=3,priority=9,cookie=0x42,tun_id=0x1389,actions=drop")
	update := r.read()
	seed = append(seed, update...)
	require.Equal(t, typeMultipartReply, update.Type(), "%x", []byte(update))
	assert.Equal(t, uint32(0), update.Xid(), "updates are unsolicited")
	require.NoError(t, checkInbound(update))
	mr, err = parseMultipartReply(update)
	require.NoError(t, err)
	body, ok = isFlowMonitorReply(mr)
	require.True(t, ok)
	updates, err := parseFlowUpdates(body)
	require.NoError(t, err)
	require.Len(t, updates, 1)
	assert.Equal(t, FlowAdded, updates[0].Event)
	assert.Equal(t, "cookie=0x42, table=3, priority=9,tun_id=0x1389 actions=drop", updates[0].Flow.String())
	assert.Equal(t, uint64(0x42), updates[0].Flow.Cookie)

	r.send(EncodeFlowMonitorCancel(7), 43)
	r.send(buildBarrierRequest(), 44)
	m := r.read()
	require.Equal(t, typeBarrierReply, m.Type(), "the cancel is accepted silently: %x", []byte(m))
	r.send(EncodeFlowMonitorCancel(7), 45)
	m = r.read()
	seed = append(seed, m...)
	require.Equal(t, typeError, m.Type(), "a second cancel names an unknown monitor")
	require.Equal(t, Version13, m.Version())
	e, err := parseError(m)
	require.NoError(t, err)
	assert.Equal(t, uint32(45), e.Xid)
	if *updateGolden {
		path := filepath.Join("testdata", "fuzz", "FuzzReader", "ovs31-flow-monitor")
		require.NoError(t, os.WriteFile(path, []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", seed)), 0o644))
	}
}

// TestOVSFlowMonitor runs a monitor through the Conn against real OVS:
// brtun's own bundle shows as one abbreviated update, changes by ovs-ofctl
// (add, modify, delete) in full, with the deletion's reason; after the
// cancel, a change is no longer reported while a second monitor still is.
func TestOVSFlowMonitor(t *testing.T) {
	s := startOVS(t)
	c := s.dial()
	ctx := context.Background()
	got := make(chan FlowUpdate, 64)
	onUpdate := func(us []FlowUpdate) {
		for _, u := range us {
			got <- u
		}
	}
	next := func() FlowUpdate {
		t.Helper()
		select {
		case u := <-got:
			return u
		case <-time.After(5 * time.Second):
			t.Fatal("no flow update within 5s")
			return FlowUpdate{}
		}
	}
	flags := MonitorAdd | MonitorDelete | MonitorModify
	require.NoError(t, c.MonitorFlows(ctx, onUpdate, FlowMonitorRequest{ID: 1, Table: AllTables, Flags: flags}))

	own := allTestFlows(t)
	require.NoError(t, c.ApplyBundle(ctx, encodeAll(t, own, Add)))
	u := next()
	assert.Equal(t, FlowAbbrev, u.Event, "brtun's own bundle of %d flows is one abbreviated update", len(own))
	assert.NotZero(t, u.Xid)

	s.ofctl("add-flow", s.bridge, "table=21,priority=3,cookie=0x99,dl_vlan=7,actions=drop")
	u = next()
	assert.Equal(t, FlowAdded, u.Event)
	assert.Equal(t, uint64(0x99), u.Flow.Cookie)
	assert.Equal(t, uint8(21), u.Flow.Table)
	assert.Nil(t, u.Flow.Actions, "no actions without MonitorActions")

	s.ofctl("mod-flows", s.bridge, "table=21,dl_vlan=7,actions=output:1")
	u = next()
	assert.Equal(t, FlowModified, u.Event)
	assert.Equal(t, uint64(0x99), u.Flow.Cookie)

	s.ofctl("del-flows", s.bridge, "table=21,dl_vlan=7")
	u = next()
	assert.Equal(t, FlowDeleted, u.Event)
	assert.Equal(t, uint16(2), u.Reason, "OFPRR_DELETE")

	// A second monitor on table 22 only; cancel the first.
	require.NoError(t, c.MonitorFlows(ctx, onUpdate, FlowMonitorRequest{ID: 2, Table: 22, Flags: flags}))
	require.NoError(t, c.CancelFlowMonitor(ctx, 1))
	var oe *OFError
	require.ErrorAs(t, c.CancelFlowMonitor(ctx, 1), &oe, "monitor 1 is gone")
	s.ofctl("add-flow", s.bridge, "table=21,priority=3,cookie=0x98,dl_vlan=8,actions=drop") // no monitor
	s.ofctl("add-flow", s.bridge, "table=22,priority=3,cookie=0x97,dl_vlan=8,actions=drop") // monitor 2
	u = next()
	assert.Equal(t, uint64(0x97), u.Flow.Cookie, "only table 22's change is reported")
	select {
	case u := <-got:
		t.Fatalf("unexpected update %v %s", u.Event, u.Flow)
	case <-time.After(200 * time.Millisecond):
	}
	require.NoError(t, c.Barrier(ctx), "the connection is fine")
}

// TestOVSFlowMonitorUnderChurn measures what MAC-learning churn costs with
// a monitor of every table: another connection adds n flows of a learned
// cookie to table 20 in one bundle and deletes them by cookie (learn()
// adds and expires flows one at a time; this is the burst form), with and
// without the monitor. Every add and delete must be reported, or OVS must
// have paused the monitor and resumed it (what brtun answers with a drift
// check). ovs-vswitchd's CPU for the churn is logged for both.
func TestOVSFlowMonitorUnderChurn(t *testing.T) {
	s := startOVS(t)
	const cookie = 0xb751001000001389 // a learned cookie (flows.LearnedCookie)
	churn := func(n int) time.Duration {
		lines := make([]string, n)
		for i := range lines {
			lines[i] = fmt.Sprintf("table=20,priority=1,cookie=%#x,hard_timeout=300,dl_vlan=1,dl_dst=02:00:%02x:%02x:%02x:%02x,actions=output:1",
				uint64(cookie), byte(i>>24), byte(i>>16), byte(i>>8), byte(i))
		}
		cpu0 := procCPU(t, s.VswitchdPID())
		s.LoadFlows(t, "add-flows", s.bridge, lines)
		s.ofctl("del-flows", s.bridge, fmt.Sprintf("cookie=%#x/-1", uint64(cookie)))
		return procCPU(t, s.VswitchdPID()) - cpu0
	}
	const n = 5000
	without := churn(n)

	c := s.dial()
	var mu sync.Mutex
	counts := map[FlowEvent]int{}
	require.NoError(t, c.MonitorFlows(context.Background(), func(us []FlowUpdate) {
		mu.Lock()
		defer mu.Unlock()
		for _, u := range us {
			counts[u.Event]++
		}
	}, FlowMonitorRequest{ID: 1, Table: AllTables, Flags: MonitorAdd | MonitorDelete | MonitorModify}))
	with := churn(n)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return counts[FlowDeleted] == n || counts[MonitorResumed] > 0
	}, 20*time.Second, 10*time.Millisecond, "every change reported, or a pause and a resume")
	time.Sleep(200 * time.Millisecond)
	require.NoError(t, c.Barrier(context.Background()), "the connection survives the burst")
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d learned-cookie flows added in one bundle and deleted by cookie by another connection: ovs-vswitchd CPU %s without a monitor, %s with; updates %v",
		n, without, with, counts)
	if counts[MonitorPaused] == 0 {
		assert.Equal(t, n, counts[FlowAdded])
		assert.Equal(t, n, counts[FlowDeleted])
	} else {
		assert.Equal(t, counts[MonitorPaused], counts[MonitorResumed], "every pause is resumed")
	}
}

// procCPU is a process's user+system CPU time.
func procCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(t, err)
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, err := strconv.Atoi(fields[11])
	require.NoError(t, err)
	st, err := strconv.Atoi(fields[12])
	require.NoError(t, err)
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ 100
}
