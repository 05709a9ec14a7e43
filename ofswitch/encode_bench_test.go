package ofswitch

import (
	"bufio"
	"fmt"
	"io"
	"testing"

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
		log: zap.NewNop(), w: bufio.NewWriterSize(io.Discard, 64<<10), nextXid: 1,
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
