//go:build integration

package ofswitch

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/testbed"
)

// recordingProxy forwards OpenFlow connections from a unix socket to a
// bridge's management socket and records what the client sent.
type recordingProxy struct {
	path string
	mu   sync.Mutex
	sent []byte
}

func startRecordingProxy(t *testing.T, path, target string) *recordingProxy {
	t.Helper()
	ln, err := net.Listen("unix", path)
	require.NoError(t, err)
	p := &recordingProxy{path: path}
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			sw, err := net.Dial("unix", target)
			if err != nil {
				_ = client.Close()
				continue
			}
			wg.Add(2)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(io.MultiWriter(sw, p), client)
				_ = sw.Close()
			}()
			go func() {
				defer wg.Done()
				_, _ = io.Copy(client, sw)
				_ = client.Close()
			}()
		}
	}()
	return p
}

func (p *recordingProxy) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sent = append(p.sent, b...)
	return len(b), nil
}

// wireSummary is what a client sent: messages by type name, bundle controls
// and adds apart, and the inner messages of the adds (xid zeroed), sorted.
type wireSummary struct {
	types map[string]int
	inner []string
}

func (p *recordingProxy) summary(t *testing.T) wireSummary {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	s := wireSummary{types: map[string]int{}}
	for b := p.sent; len(b) > 0; {
		require.GreaterOrEqual(t, len(b), headerLen)
		m := Message(b[:binary.BigEndian.Uint16(b[2:4])])
		b = b[len(m):]
		name := typeName(m.Type())
		switch {
		case isBundleAdd(m):
			name = "bundle add"
			in := append([]byte(nil), m[bundleAddInnerOffset:]...)
			binary.BigEndian.PutUint32(in[4:8], 0)
			s.inner = append(s.inner, hex.EncodeToString(in))
		case isBundleControl(m):
			name = "bundle control"
		}
		s.types[name]++
	}
	slices.Sort(s.inner)
	return s
}

// TestBundleWireEqualsOvsOfctl installs the bulk benchmark's br-tun flows
// once with `ovs-ofctl --bundle add-flows` and once with ApplyBundle, each
// through a recording proxy: the flow_mods inside the bundle adds are the
// same bytes, and so are the messages around them (one open, one barrier,
// one commit), so brtun's bundle costs ovs-vswitchd what ovs-ofctl's does.
func TestBundleWireEqualsOvsOfctl(t *testing.T) {
	s := startOVS(t)
	s.AddBridge(t, "br1", "other_config:datapath-id=00000000000000b8")
	fs := bulkFlows()
	file := filepath.Join(s.Dir, "bulk.flows")
	require.NoError(t, os.WriteFile(file, []byte(strings.Join(flows.Strings(fs), "\n")+"\n"), 0o644))

	ref := startRecordingProxy(t, filepath.Join(s.Dir, "ref.sock"), strings.TrimPrefix(s.BridgeTarget("br0"), "unix:"))
	out, err := testbed.Run(s.Env(), "ovs-ofctl", "-O", "OpenFlow13", "--bundle", "add-flows", "unix:"+ref.path, file)
	require.NoError(t, err, out)

	own := startRecordingProxy(t, filepath.Join(s.Dir, "own.sock"), strings.TrimPrefix(s.BridgeTarget("br1"), "unix:"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := Dial(ctx, "unix:"+own.path, DialOptions{Options: testOptions(t)})
	require.NoError(t, err)
	msgs := make([]Message, len(fs))
	for i, f := range fs {
		msgs[i], err = Encode(f, Add)
		require.NoError(t, err, f.String())
	}
	require.NoError(t, c.ApplyBundle(ctx, msgs))
	require.NoError(t, c.Close())

	want := s.DumpFlows(t, "br0")
	require.Len(t, want, len(fs), "ovs-ofctl installed every flow")
	assert.Equal(t, want, s.DumpFlows(t, "br1"), "both bridges hold the same flows")

	r, o := ref.summary(t), own.summary(t)
	require.Len(t, r.inner, len(fs))
	require.Len(t, o.inner, len(fs))
	assert.True(t, slices.Equal(r.inner, o.inner), "the flow_mods inside the bundle adds are byte for byte ovs-ofctl's")
	for _, typ := range []string{"bundle add", "bundle control", typeName(typeBarrierRequest)} {
		assert.Equal(t, r.types[typ], o.types[typ], "%s messages: ovs-ofctl %v, brtun %v", typ, r.types, o.types)
	}
	assert.Equal(t, 2, o.types["bundle control"], "open and commit")
	assert.Equal(t, 1, o.types[typeName(typeBarrierRequest)])
}
