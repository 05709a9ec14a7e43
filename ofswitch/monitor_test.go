package ofswitch

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
)

// testFlowMonitorReply wraps flow updates in an ONF 1870 multipart reply.
func testFlowMonitorReply(xid uint32, updates ...[]byte) Message {
	body := make([]byte, 16)
	binary.BigEndian.PutUint16(body[0:2], multipartTypeExperimenter)
	binary.BigEndian.PutUint32(body[8:12], onfExperimenterID)
	binary.BigEndian.PutUint32(body[12:16], onfFlowMonitor)
	for _, u := range updates {
		body = append(body, u...)
	}
	return withXid(newMessage(typeMultipartReply, body), xid)
}

// testFlowUpdateFull builds one nx_flow_update_full of flow f (its match
// and, unless deleted, its instructions), as OVS encodes it in 1.3.
func testFlowUpdateFull(t *testing.T, event uint16, reason uint16, f flows.Flow) []byte {
	t.Helper()
	fm, err := Encode(f, Add)
	require.NoError(t, err)
	tail := fm[flowModFixedLen:] // padded ofp_match, then instructions
	if event == nxfmeDeleted {
		matchLen := int(binary.BigEndian.Uint16(tail[2:4]))
		tail = tail[:(matchLen+7)/8*8]
	}
	u := make([]byte, flowUpdateFullLen, flowUpdateFullLen+len(tail))
	binary.BigEndian.PutUint16(u[0:2], uint16(flowUpdateFullLen+len(tail)))
	binary.BigEndian.PutUint16(u[2:4], event)
	binary.BigEndian.PutUint16(u[4:6], reason)
	binary.BigEndian.PutUint16(u[6:8], f.Priority)
	binary.BigEndian.PutUint16(u[8:10], f.IdleTimeout)
	binary.BigEndian.PutUint16(u[10:12], f.HardTimeout)
	binary.BigEndian.PutUint16(u[12:14], binary.BigEndian.Uint16(tail[2:4]))
	u[14] = f.Table
	binary.BigEndian.PutUint64(u[16:24], f.Cookie)
	return append(u, tail...)
}

func testFlowUpdateAbbrev(xid uint32) []byte {
	u := make([]byte, 8)
	binary.BigEndian.PutUint16(u[0:2], 8)
	binary.BigEndian.PutUint16(u[2:4], nxfmeAbbrev)
	binary.BigEndian.PutUint32(u[4:8], xid)
	return u
}

func testMonitorPause(typ uint32) Message {
	body := make([]byte, 8)
	binary.BigEndian.PutUint32(body[0:4], onfExperimenterID)
	binary.BigEndian.PutUint32(body[4:8], typ)
	return newMessage(typeExperimenter, body)
}

// TestFlowMonitorRequestBytesAreStable pins the request and the cancel as
// OVS 3.1 accepts them (TestOVSFlowMonitorWire); the request is the layout
// of `ovs-ofctl -O OpenFlow13 monitor BR watch:` without a match.
func TestFlowMonitorRequestBytesAreStable(t *testing.T) {
	var b strings.Builder
	for _, reqs := range [][]FlowMonitorRequest{
		{{ID: 1, Table: AllTables, Flags: MonitorAdd | MonitorDelete | MonitorModify}},
		{{ID: 2, Table: 20, Flags: MonitorInitial | MonitorAdd | MonitorDelete | MonitorModify | MonitorActions | MonitorOwn}, {ID: 3, Table: 0, Flags: MonitorDelete}},
	} {
		m, err := EncodeFlowMonitorRequest(reqs...)
		require.NoError(t, err)
		b.WriteString(hex.EncodeToString(m) + "\n")
	}
	b.WriteString(hex.EncodeToString(EncodeFlowMonitorCancel(1)) + "\n")
	checkGolden(t, "monitor.golden", b.String())

	_, err := EncodeFlowMonitorRequest(FlowMonitorRequest{ID: 1, Flags: MonitorActions})
	assert.Error(t, err, "a monitor must watch adds, deletes or modifies")
	_, err = EncodeFlowMonitorRequest(FlowMonitorRequest{ID: 1, Flags: MonitorAdd | 1<<6})
	assert.Error(t, err, "unknown flags are refused before OVS sees them")
	_, err = EncodeFlowMonitorRequest()
	assert.Error(t, err)
}

func TestParseFlowUpdates(t *testing.T) {
	f := flows.Flow{Table: 20, Priority: 1, Cookie: 0xb7, HardTimeout: 300,
		Match:   flows.Match{VLANTCI: &flows.MaskedU16{Value: 0x1005, Mask: 0x1fff}, EthDst: &flows.MaskedMAC{Value: flows.MAC{2, 0, 0, 0, 0, 1}, Mask: exactMAC}},
		Actions: []flows.Action{flows.PopVLAN{}, flows.OutputTo(3)}}
	body := append(testFlowUpdateFull(t, nxfmeAdded, 0, f), testFlowUpdateAbbrev(77)...)
	body = append(body, testFlowUpdateFull(t, nxfmeDeleted, 1, f)...)
	body = append(body, testFlowUpdateFull(t, nxfmeModified, 0, f)...)
	got, err := parseFlowUpdates(body)
	require.NoError(t, err)
	require.Len(t, got, 4)
	assert.Equal(t, FlowUpdate{Event: FlowAdded, Flow: f}, got[0])
	assert.Equal(t, FlowUpdate{Event: FlowAbbrev, Xid: 77}, got[1])
	deleted := f
	deleted.Actions = nil
	assert.Equal(t, FlowUpdate{Event: FlowDeleted, Reason: 1, Flow: deleted}, got[2])
	assert.Equal(t, FlowModified, got[3].Event)

	for name, bad := range map[string][]byte{
		"short header":      {0, 8},
		"length not 8n":     {0, 12, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0},
		"length past end":   {0, 16, 0, 3, 0, 0, 0, 0},
		"abbrev too long":   {0, 16, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"unknown event":     {0, 8, 0, 9, 0, 0, 0, 0},
		"full without room": {0, 24, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"match past end":    append(append([]byte{0, 32, 0, 0}, make([]byte, 20)...), 0, 1, 0, 40, 0, 0, 0, 0),
		"match not OXM":     append(append([]byte{0, 32, 0, 0}, make([]byte, 20)...), 0, 0, 0, 4, 0, 0, 0, 0),
	} {
		_, err := parseFlowUpdates(bad)
		assert.ErrorIs(t, err, ErrMalformed, name)
	}
}

// TestMonitorFlowsDeliversUpdates: the request goes out as encoded, the
// initial reply's flows and then unsolicited updates, pause and resume
// reach the callback in order, and other experimenter messages still reach
// OnMessage.
func TestMonitorFlowsDeliversUpdates(t *testing.T) {
	other := make(chan Message, 1)
	opts := testOptions(t)
	opts.OnMessage = func(_ *Conn, m Message) { other <- m }
	c, f := dialFake(t, 0xb7, opts)
	f1 := flows.Flow{Table: 0, Priority: 5, Cookie: 0x11, Match: flows.Match{InPort: flows.Ptr(uint32(4))}, Actions: []flows.Action{flows.GotoTable{Table: 10}}}
	f2 := flows.Flow{Table: 21, Priority: 2, Cookie: 0x22}
	requests := make(chan Message, 1)
	f.serve(func(m Message) {
		requests <- m
		_ = f.write(testFlowMonitorReply(m.Xid(), testFlowUpdateFull(t, nxfmeAdded, 0, f1)))
		_ = f.write(testFlowMonitorReply(0, testFlowUpdateAbbrev(9), testFlowUpdateFull(t, nxfmeDeleted, 2, f2)))
		_ = f.write(withXid(testMonitorPause(onfFlowMonitorPaused), 0))
		_ = f.write(withXid(testMonitorPause(onfFlowMonitorResumed), 0))
		_ = f.write(withXid(testMonitorPause(4711), 0))
	})
	got := make(chan FlowUpdate, 16)
	req := FlowMonitorRequest{ID: 5, Table: AllTables, Flags: MonitorInitial | MonitorAdd | MonitorDelete | MonitorActions}
	require.NoError(t, c.MonitorFlows(context.Background(), func(us []FlowUpdate) {
		for _, u := range us {
			got <- u
		}
	}, req))
	want, err := EncodeFlowMonitorRequest(req)
	require.NoError(t, err)
	sent := <-requests
	assert.Equal(t, []byte(want[8:]), []byte(sent[8:]), "the request as encoded")

	var events []string
	for range 5 {
		select {
		case u := <-got:
			events = append(events, u.Event.String())
			if u.Event == FlowAdded {
				assert.Equal(t, f1, u.Flow)
			}
			if u.Event == FlowDeleted {
				assert.Equal(t, f2.Cookie, u.Flow.Cookie)
				assert.Equal(t, uint16(2), u.Reason)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("updates so far: %v", events)
		}
	}
	assert.Equal(t, []string{"added", "abbrev", "deleted", "paused", "resumed"}, events)
	select {
	case m := <-other:
		id, typ, err := parseExperimenter(m)
		require.NoError(t, err)
		assert.Equal(t, [2]uint32{onfExperimenterID, 4711}, [2]uint32{id, typ}, "other experimenter messages reach OnMessage")
	case <-time.After(5 * time.Second):
		t.Fatal("the other experimenter message did not reach OnMessage")
	}
	require.NoError(t, c.Barrier(context.Background()))
}

// TestMonitorFlowsRefusedAndMalformed: a switch refusing the monitor gives
// an *OFError and keeps the connection; a malformed update closes it.
func TestMonitorFlowsRefusedAndMalformed(t *testing.T) {
	c, f := dialFake(t, 0xb7, testOptions(t))
	refuse := true
	f.serve(func(m Message) {
		if refuse {
			refuse = false
			_ = f.write(testError(m.Xid(), 1, 2)) // BAD_REQUEST / BAD_EXPERIMENTER
			return
		}
		bad := testFlowMonitorReply(0, []byte{0, 16, 0, 0, 0, 0, 0, 0})
		_ = f.write(bad)
	})
	req := FlowMonitorRequest{ID: 1, Table: AllTables, Flags: MonitorAdd}
	err := c.MonitorFlows(context.Background(), func([]FlowUpdate) {}, req)
	var oe *OFError
	require.ErrorAs(t, err, &oe)
	require.NoError(t, c.Barrier(context.Background()), "a refused monitor leaves the connection up")

	_ = c.MonitorFlows(context.Background(), func([]FlowUpdate) {}, req)
	assert.ErrorIs(t, waitClosed(t, c, 5*time.Second), ErrMalformed)
}

// BenchmarkFlowUpdateOfLearnedFlow is what the reader spends on one
// learned MAC entry (table 20, vlan and dl_dst, no actions: the monitor
// brtun runs) coming or going: the churn of MAC learning that brtun's
// monitor sees and filters out by cookie.
func BenchmarkFlowUpdateOfLearnedFlow(b *testing.B) {
	t := &testing.T{}
	f := flows.Flow{Table: 20, Priority: 1, Cookie: 0xb7, HardTimeout: 300,
		Match: flows.Match{VLANTCI: &flows.MaskedU16{Value: 0x1005, Mask: 0x1fff}, EthDst: &flows.MaskedMAC{Value: flows.MAC{2, 0, 0, 0, 0, 1}, Mask: exactMAC}}}
	m := testFlowMonitorReply(0, testFlowUpdateFull(t, nxfmeDeleted, 1, f))
	b.ReportMetric(float64(len(m)), "wire-bytes")
	b.ReportAllocs()
	for b.Loop() {
		if err := checkInbound(m); err != nil {
			b.Fatal(err)
		}
		r, _ := parseMultipartReply(m)
		body, _ := isFlowMonitorReply(r)
		if _, err := parseFlowUpdates(body); err != nil {
			b.Fatal(err)
		}
	}
}
