package ovsdb

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/database/inmemory"
	"github.com/ovn-kubernetes/libovsdb/model"
	libovsdb "github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/ovn-kubernetes/libovsdb/server"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/brtun/brtun/ovsdb/vswitchd"
)

// memOVS is libovsdb's in-memory OVSDB server with the Open_vSwitch schema,
// reached by the client under test through a proxy the test can cut, plus a
// direct "raw" client that sets up fixtures, inspects the database and,
// when asked, plays ovs-vswitchd (assigns ofports, datapath ids, cur_cfg).
type memOVS struct {
	addr  string // what the client under test dials (the proxy)
	raw   client.Client
	proxy *proxy

	mu         sync.Mutex
	nextOFPort int
	vswitchd   bool // play ovs-vswitchd

	// rawMu serialises the raw client's transactions: the in-memory server
	// answers concurrent requests on one connection with unsynchronised
	// writes (a data race in the test server).
	rawMu sync.Mutex
}

type memOptions struct {
	noRoot        bool     // leave the Open_vSwitch table empty
	noVswitchd    bool     // nobody applies next_cfg
	datapathTypes []string // Open_vSwitch.datapath_types
}

func newMemOVS(t testing.TB, o memOptions) *memOVS {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "bo")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })

	full, err := vswitchd.FullDatabaseModel()
	require.NoError(t, err)
	dbModel, errs := model.NewDatabaseModel(vswitchd.Schema(), full)
	require.Empty(t, errs)
	discard := logr.Discard()
	db := inmemory.NewDatabase(map[string]model.ClientDBModel{"Open_vSwitch": full}, &discard)
	srv, err := server.NewOvsdbServer(db, &discard, dbModel)
	require.NoError(t, err)
	sock := filepath.Join(dir, "db.sock")
	served := make(chan error, 1)
	go func() { served <- srv.Serve("unix", sock) }()
	require.Eventually(t, srv.Ready, 5*time.Second, 5*time.Millisecond)
	t.Cleanup(func() {
		srv.Close()
		<-served
	})

	m := &memOVS{nextOFPort: 1, vswitchd: !o.noVswitchd}
	m.proxy = newProxy(t, filepath.Join(dir, "p.sock"), sock)
	m.addr = "unix:" + m.proxy.front

	// The raw client also goes through a proxy (never cut): connected
	// directly, it made the in-memory server's connection handling (rpc2)
	// report rare data races that never showed through the proxy.
	rawProxy := newProxy(t, filepath.Join(dir, "r.sock"), sock)
	m.raw, err = client.NewOVSDBClient(full, client.WithEndpoint("unix:"+rawProxy.front))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, m.raw.Connect(ctx))
	t.Cleanup(m.raw.Close)
	_, err = m.raw.MonitorAll(ctx)
	require.NoError(t, err)
	if !o.noRoot {
		m.transact(t, m.create(t, &vswitchd.OpenvSwitch{UUID: "root", DatapathTypes: o.datapathTypes})...)
	}

	loopCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.vswitchdLoop(loopCtx) }()
	t.Cleanup(func() { stop(); <-done })
	return m
}

// dial connects a Client under test to the server. Its echo probe is off
// for all practical purposes: the in-memory server answers concurrent
// requests on one connection with unsynchronised writes (a data race in
// the test server, not in the client); TestProbeDetectsHungServer uses
// dialProbing.
func (m *memOVS) dial(t testing.TB) *Client {
	t.Helper()
	return m.dialProbing(t, time.Hour, 10*time.Second)
}

// dialProbing dials with the given echo probe interval and connection
// attempt timeout.
func (m *memOVS) dialProbing(t testing.TB, probe, connectTimeout time.Duration) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := Dial(ctx, Options{
		Address: m.addr, Logger: zaptest.NewLogger(t),
		ProbeInterval: probe, ConnectTimeout: connectTimeout, MaxBackoff: 100 * time.Millisecond,
	})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

func (m *memOVS) create(t testing.TB, models ...model.Model) []libovsdb.Operation {
	t.Helper()
	var ops []libovsdb.Operation
	for _, mod := range models {
		o, err := m.raw.Create(mod)
		require.NoError(t, err)
		ops = append(ops, o...)
	}
	return ops
}

func (m *memOVS) transact(t testing.TB, ops ...libovsdb.Operation) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m.rawMu.Lock()
	res, err := m.raw.Transact(ctx, ops...)
	m.rawMu.Unlock()
	require.NoError(t, err)
	_, err = libovsdb.CheckOperationResults(res, ops)
	require.NoError(t, err)
}

// state is the database as the raw client sees it.
func (m *memOVS) state(t testing.TB) *state {
	t.Helper()
	st, err := snapshot(m.raw.Cache())
	require.NoError(t, err)
	return st
}

// addPort adds a port with one interface to an existing bridge, as an
// operator's ovs-vsctl add-port would.
func (m *memOVS) addPort(t testing.TB, bridge string, port *vswitchd.Port, iface *vswitchd.Interface) {
	t.Helper()
	br := m.state(t).bridgeByName[bridge]
	require.NotNil(t, br, bridge)
	iface.UUID, port.UUID = "newiface", "newport"
	port.Interfaces = []string{iface.UUID}
	ops := m.create(t, iface, port)
	b := &vswitchd.Bridge{UUID: br.UUID}
	mut, err := m.raw.Where(b).Mutate(b, model.Mutation{Field: &b.Ports, Mutator: libovsdb.MutateOperationInsert, Value: []string{port.UUID}})
	require.NoError(t, err)
	m.transact(t, append(ops, mut...)...)
}

// vswitchdLoop plays ovs-vswitchd: whenever next_cfg is ahead of cur_cfg it
// assigns ofports and MACs to new interfaces, reports each bridge's
// configured datapath id and then sets cur_cfg.
func (m *memOVS) vswitchdLoop(ctx context.Context) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		m.mu.Lock()
		active := m.vswitchd
		m.mu.Unlock()
		if !active {
			continue
		}
		st, err := snapshot(m.raw.Cache())
		if err != nil || st.root == nil || st.root.CurCfg >= st.root.NextCfg {
			continue
		}
		var ops []libovsdb.Operation
		for _, uuid := range sortedKeys(st.ifaces) {
			i := st.ifaces[uuid]
			if i.Ofport != nil || st.portOfIface(i) == nil {
				continue
			}
			m.mu.Lock()
			n := m.nextOFPort
			m.nextOFPort++
			m.mu.Unlock()
			mac := fmt.Sprintf("02:00:00:00:%02x:%02x", n>>8, n&0xff)
			want := &vswitchd.Interface{UUID: uuid, Ofport: &n, MACInUse: &mac}
			o, err := m.raw.Where(want).Update(want, &want.Ofport, &want.MACInUse)
			if err != nil {
				continue
			}
			ops = append(ops, o...)
		}
		for uuid, b := range st.bridges {
			dpid := b.OtherConfig[keyDatapathID]
			if dpid == "" || (b.DatapathID != nil && *b.DatapathID == dpid) {
				continue
			}
			want := &vswitchd.Bridge{UUID: uuid, DatapathID: &dpid}
			o, err := m.raw.Where(want).Update(want, &want.DatapathID)
			if err != nil {
				continue
			}
			ops = append(ops, o...)
		}
		root := &vswitchd.OpenvSwitch{UUID: st.root.UUID, CurCfg: st.root.NextCfg}
		o, err := m.raw.Where(root).Update(root, &root.CurCfg)
		if err != nil {
			continue
		}
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		m.rawMu.Lock()
		_, _ = m.raw.Transact(tctx, append(ops, o...)...)
		m.rawMu.Unlock()
		cancel()
	}
}

// setVswitchd starts or stops playing ovs-vswitchd.
func (m *memOVS) setVswitchd(on bool) {
	m.mu.Lock()
	m.vswitchd = on
	m.mu.Unlock()
}

// proxy forwards a unix socket to another one and can cut every connection
// and stop accepting, like an ovsdb-server that went away.
type proxy struct {
	t           testing.TB
	front, back string

	mu       sync.Mutex
	ln       net.Listener
	conns    []net.Conn
	wg       sync.WaitGroup
	comments []string         // transaction comments seen
	frozen   bool             // drop what clients send, like a hung server
	removed  map[string][]int // request id -> indexes of removed comment operations
}

// forward copies JSON-RPC messages from the client to the server. The
// in-memory server rejects "comment" operations (it looks up a table for
// every operation), so forward records them and takes them out.
func (p *proxy) forward(dst io.Writer, src io.Reader) {
	dec := json.NewDecoder(src)
	enc := json.NewEncoder(dst)
	for {
		var msg map[string]json.RawMessage
		if err := dec.Decode(&msg); err != nil {
			return
		}
		p.mu.Lock()
		frozen := p.frozen
		p.mu.Unlock()
		if frozen {
			continue
		}
		var method string
		_ = json.Unmarshal(msg["method"], &method)
		if method == "transact" {
			var params []json.RawMessage
			if err := json.Unmarshal(msg["params"], &params); err == nil {
				kept := params[:0]
				var removed []int
				for i, raw := range params {
					var op struct {
						Op      string `json:"op"`
						Comment string `json:"comment"`
					}
					if i > 0 && json.Unmarshal(raw, &op) == nil && op.Op == "comment" {
						p.mu.Lock()
						p.comments = append(p.comments, op.Comment)
						p.mu.Unlock()
						removed = append(removed, i-1)
						continue
					}
					kept = append(kept, raw)
				}
				msg["params"], _ = json.Marshal(kept)
				if len(removed) > 0 {
					p.mu.Lock()
					p.removed[string(msg["id"])] = removed
					p.mu.Unlock()
				}
			}
		}
		if err := enc.Encode(msg); err != nil {
			return
		}
	}
}

// backward copies JSON-RPC messages from the server to the client, giving
// transact replies an empty result where forward took a comment out.
func (p *proxy) backward(dst io.Writer, src io.Reader) {
	dec := json.NewDecoder(src)
	enc := json.NewEncoder(dst)
	for {
		var msg map[string]json.RawMessage
		if err := dec.Decode(&msg); err != nil {
			return
		}
		var removed []int
		ok := false
		if _, request := msg["method"]; !request { // the server's own requests reuse ids
			p.mu.Lock()
			removed, ok = p.removed[string(msg["id"])]
			delete(p.removed, string(msg["id"]))
			p.mu.Unlock()
		}
		var results []json.RawMessage
		if ok && json.Unmarshal(msg["result"], &results) == nil {
			for _, i := range removed {
				if i > len(results) {
					break
				}
				results = append(results[:i], append([]json.RawMessage{json.RawMessage("{}")}, results[i:]...)...)
			}
			msg["result"], _ = json.Marshal(results)
		}
		if err := enc.Encode(msg); err != nil {
			return
		}
	}
}

// freeze makes the server look hung: requests are dropped, nothing is
// answered, connections stay open.
func (p *proxy) freeze(on bool) {
	p.mu.Lock()
	p.frozen = on
	p.mu.Unlock()
}

// seenComments returns the transaction comments forwarded so far.
func (p *proxy) seenComments() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.comments...)
}

func newProxy(t testing.TB, front, back string) *proxy {
	p := &proxy{t: t, front: front, back: back, removed: map[string][]int{}}
	p.up()
	t.Cleanup(p.down)
	return p
}

func (p *proxy) up() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		return
	}
	_ = os.Remove(p.front)
	ln, err := net.Listen("unix", p.front)
	if err != nil {
		p.t.Errorf("proxy: %v", err) // up may run outside the test goroutine
		return
	}
	p.ln = ln
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			back, err := net.Dial("unix", p.back)
			if err != nil {
				conn.Close()
				continue
			}
			p.mu.Lock()
			if p.ln != ln { // cut while dialling
				p.mu.Unlock()
				conn.Close()
				back.Close()
				return
			}
			p.conns = append(p.conns, conn, back)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); p.forward(back, conn); back.Close() }()
			go func() { defer p.wg.Done(); p.backward(conn, back); conn.Close() }()
		}
	}()
}

func (p *proxy) down() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}
