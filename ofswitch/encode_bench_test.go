package ofswitch

import (
	"encoding/binary"
	"fmt"
	"net"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/topology"
)

// bulkFlows is br-tun of the bulk benchmark's host: 4094 VXLAN networks
// with MAC learning, each carried by one peer.
func bulkFlows() []flows.Flow {
	v := flows.View{Host: "h1", PatchIntOfport: 1}
	v.Tunnels = append(v.Tunnels, flows.TunnelPort{Ofport: 2, PeerHost: "h2", Type: topology.VXLAN, RemoteIP: "192.0.2.2"})
	for i := range 4094 {
		v.Networks = append(v.Networks, flows.NetworkView{
			Name: fmt.Sprintf("net%04d", i), Type: topology.VXLAN, SegmentID: uint32(10000 + i),
			LocalVLAN: uint16(i + 1), MACLearning: true, Peers: []string{"h2"},
		})
	}
	return flows.Compile(v).BrTun
}

func BenchmarkEncodeBulk(b *testing.B) {
	fs := bulkFlows()
	b.ReportAllocs()
	for b.Loop() {
		for _, f := range fs {
			if _, err := Encode(f, Add); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(len(fs)), "flows")
}

// BenchmarkBundleAddBulk is the send path of a bulk install after
// encoding: every flow_mod wrapped into a bundle add, stamped with its xid and
// written into the connection's buffer (the socket is io.Discard here).
func BenchmarkBundleAddBulk(b *testing.B) {
	fs := bulkFlows()
	msgs := make([]Message, len(fs))
	for i, f := range fs {
		m, err := Encode(f, Add)
		if err != nil {
			b.Fatal(err)
		}
		msgs[i] = m
	}
	c := &Conn{
		log: zap.NewNop(), dw: deadlineWriter{nc: discardConn{}}, nextXid: 1,
		calls: map[uint32]*call{}, batches: map[*batch]struct{}{}, closed: make(chan struct{}),
	}
	b.ReportAllocs()
	for b.Loop() {
		bt := &Bundle{c: c, id: 1}
		if err := bt.Add(msgs...); err != nil {
			b.Fatal(err)
		}
		bt.dropBatches()
	}
}

// flowStatsBody is a flow-stats reply body holding fs, as OVS would send
// it (each entry built from the flow's encoded FLOW_MOD).
func flowStatsBody(b testing.TB, fs []flows.Flow) []byte {
	var body []byte
	for _, f := range fs {
		fm, err := Encode(f, Add)
		if err != nil {
			b.Fatal(err)
		}
		rest := fm[flowModFixedLen:] // match and instructions
		e := make([]byte, flowStatsFixedLen, flowStatsFixedLen+len(rest))
		binary.BigEndian.PutUint16(e[0:], uint16(flowStatsFixedLen+len(rest)))
		e[2] = f.Table
		binary.BigEndian.PutUint16(e[12:], f.Priority)
		binary.BigEndian.PutUint16(e[14:], f.IdleTimeout)
		binary.BigEndian.PutUint16(e[16:], f.HardTimeout)
		binary.BigEndian.PutUint64(e[24:], f.Cookie)
		body = append(body, append(e, rest...)...)
	}
	return body
}

// BenchmarkDecodeBulk is the receiving half of a resync's dump: the flow
// stats of the bulk host's br-tun parsed and decoded.
func BenchmarkDecodeBulk(b *testing.B) {
	fs := bulkFlows()
	body := flowStatsBody(b, fs)
	b.ReportAllocs()
	for b.Loop() {
		stats, err := parseFlowStats(body)
		if err != nil {
			b.Fatal(err)
		}
		for _, s := range stats {
			if _, err := DecodeFlow(s); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// discardConn is a socket that takes every write and does nothing else.
type discardConn struct{ net.Conn }

func (discardConn) Write(p []byte) (int, error)      { return len(p), nil }
func (discardConn) SetWriteDeadline(time.Time) error { return nil }
