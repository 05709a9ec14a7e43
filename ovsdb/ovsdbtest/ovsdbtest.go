// Package ovsdbtest runs libovsdb's in-memory OVSDB server with the
// Open_vSwitch schema inside a test process, reached through a proxy the
// test can cut or freeze, with a second client that sets up fixtures,
// inspects the database and, unless told not to, plays ovs-vswitchd
// (assigns ofports and MACs, reports datapath ids, applies next_cfg).
// The ovsdb package's tests and the controller's end-to-end tests share it.
//
// The in-memory server is not ovsdb-server: it rejects the "comment"
// operation (the proxy takes comments out and records them), and it
// answers concurrent requests on one connection with unsynchronised writes
// (the proxy passes a connection's requests one at a time).
package ovsdbtest

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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

	"github.com/brtun/brtun/ovsdb/vswitchd"
)

// keyDatapathID is the Bridge other_config key that fixes the datapath id.
const keyDatapathID = "datapath-id"

// Options shape a Server.
type Options struct {
	NoRoot        bool     // leave the Open_vSwitch table empty
	NoVswitchd    bool     // nobody applies next_cfg
	DatapathTypes []string // Open_vSwitch.datapath_types
}

// Server is one in-memory OVSDB server. Everything it starts stops when
// the test ends.
type Server struct {
	addr  string // what clients under test dial (through the proxy)
	raw   client.Client
	proxy *Proxy

	mu         sync.Mutex
	nextOFPort int
	vswitchd   bool // play ovs-vswitchd

	// rawMu serialises the raw client's transactions: the in-memory server
	// answers concurrent requests on one connection with unsynchronised
	// writes (a data race in the test server).
	rawMu sync.Mutex
}

// Start starts a server for the test t.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "bo") // unix socket paths must stay short
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

	s := &Server{nextOFPort: 1, vswitchd: !o.NoVswitchd}
	s.proxy = newProxy(t, filepath.Join(dir, "p.sock"), sock)
	s.addr = "unix:" + s.proxy.front

	// The raw client also goes through a proxy (never cut): connected
	// directly, it made the in-memory server's connection handling (rpc2)
	// report rare data races that never showed through the proxy.
	rawProxy := newProxy(t, filepath.Join(dir, "r.sock"), sock)
	s.raw, err = client.NewOVSDBClient(full, client.WithEndpoint("unix:"+rawProxy.front))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, s.raw.Connect(ctx))
	t.Cleanup(s.raw.Close)
	_, err = s.raw.MonitorAll(ctx)
	require.NoError(t, err)
	if !o.NoRoot {
		s.Transact(t, s.Create(t, &vswitchd.OpenvSwitch{UUID: "root", DatapathTypes: o.DatapathTypes})...)
	}

	loopCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.vswitchdLoop(loopCtx) }()
	t.Cleanup(func() { stop(); <-done })
	return s
}

// Addr is the address clients under test dial ("unix:/PATH").
func (s *Server) Addr() string { return s.addr }

// Raw is the fixture client: it monitors every table, so its cache is the
// database as the server holds it. Transact through Transact, which
// serialises the raw client's requests.
func (s *Server) Raw() client.Client { return s.raw }

// Proxy is what stands between the clients under test and the server.
func (s *Server) Proxy() *Proxy { return s.proxy }

// Create returns the operations that insert models.
func (s *Server) Create(t testing.TB, models ...model.Model) []libovsdb.Operation {
	t.Helper()
	var ops []libovsdb.Operation
	for _, m := range models {
		o, err := s.raw.Create(m)
		require.NoError(t, err)
		ops = append(ops, o...)
	}
	return ops
}

// Transact runs ops in one transaction and fails the test when any fails.
func (s *Server) Transact(t testing.TB, ops ...libovsdb.Operation) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.rawMu.Lock()
	res, err := s.raw.Transact(ctx, ops...)
	s.rawMu.Unlock()
	require.NoError(t, err)
	_, err = libovsdb.CheckOperationResults(res, ops)
	require.NoError(t, err)
}

// Bridge returns the bridge named name, or nil.
func (s *Server) Bridge(t testing.TB, name string) *vswitchd.Bridge {
	t.Helper()
	var bridges []vswitchd.Bridge
	require.NoError(t, s.raw.List(context.Background(), &bridges))
	for i := range bridges {
		if bridges[i].Name == name {
			return &bridges[i]
		}
	}
	return nil
}

// AddPort adds a port with one interface to an existing bridge, as an
// operator's ovs-vsctl add-port would. Playing ovs-vswitchd, the server
// gives the interface an ofport at the next next_cfg.
func (s *Server) AddPort(t testing.TB, bridge string, port *vswitchd.Port, iface *vswitchd.Interface) {
	t.Helper()
	br := s.Bridge(t, bridge)
	require.NotNil(t, br, bridge)
	iface.UUID, port.UUID = "newiface", "newport"
	port.Interfaces = []string{iface.UUID}
	ops := s.Create(t, iface, port)
	b := &vswitchd.Bridge{UUID: br.UUID}
	mut, err := s.raw.Where(b).Mutate(b, model.Mutation{Field: &b.Ports, Mutator: libovsdb.MutateOperationInsert, Value: []string{port.UUID}})
	require.NoError(t, err)
	s.Transact(t, append(ops, mut...)...)
}

// SetVswitchd starts or stops playing ovs-vswitchd.
func (s *Server) SetVswitchd(on bool) {
	s.mu.Lock()
	s.vswitchd = on
	s.mu.Unlock()
}

// vswitchdLoop plays ovs-vswitchd: whenever next_cfg is ahead of cur_cfg it
// assigns ofports and MACs to new interfaces, reports each bridge's
// configured datapath id and then sets cur_cfg.
func (s *Server) vswitchdLoop(ctx context.Context) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		s.mu.Lock()
		active := s.vswitchd
		s.mu.Unlock()
		if active {
			s.applyNextCfg(ctx)
		}
	}
}

// applyNextCfg does what ovs-vswitchd does for one new next_cfg.
func (s *Server) applyNextCfg(ctx context.Context) {
	var roots []vswitchd.OpenvSwitch
	var bridges []vswitchd.Bridge
	var ports []vswitchd.Port
	var ifaces []vswitchd.Interface
	for _, rows := range []any{&roots, &bridges, &ports, &ifaces} {
		if err := s.raw.List(ctx, rows); err != nil {
			return
		}
	}
	if len(roots) == 0 || roots[0].CurCfg >= roots[0].NextCfg {
		return
	}
	inPort := map[string]bool{}
	for _, p := range ports {
		for _, i := range p.Interfaces {
			inPort[i] = true
		}
	}
	slices.SortFunc(ifaces, func(a, b vswitchd.Interface) int { return cmp.Compare(a.UUID, b.UUID) })
	var ops []libovsdb.Operation
	for _, i := range ifaces {
		if i.Ofport != nil || !inPort[i.UUID] {
			continue
		}
		s.mu.Lock()
		n := s.nextOFPort
		s.nextOFPort++
		s.mu.Unlock()
		mac := fmt.Sprintf("02:00:00:00:%02x:%02x", n>>8, n&0xff)
		want := &vswitchd.Interface{UUID: i.UUID, Ofport: &n, MACInUse: &mac}
		o, err := s.raw.Where(want).Update(want, &want.Ofport, &want.MACInUse)
		if err != nil {
			continue
		}
		ops = append(ops, o...)
	}
	for _, b := range bridges {
		dpid := b.OtherConfig[keyDatapathID]
		if dpid == "" || (b.DatapathID != nil && *b.DatapathID == dpid) {
			continue
		}
		want := &vswitchd.Bridge{UUID: b.UUID, DatapathID: &dpid}
		o, err := s.raw.Where(want).Update(want, &want.DatapathID)
		if err != nil {
			continue
		}
		ops = append(ops, o...)
	}
	root := &vswitchd.OpenvSwitch{UUID: roots[0].UUID, CurCfg: roots[0].NextCfg}
	o, err := s.raw.Where(root).Update(root, &root.CurCfg)
	if err != nil {
		return
	}
	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	s.rawMu.Lock()
	_, _ = s.raw.Transact(tctx, append(ops, o...)...)
	s.rawMu.Unlock()
	cancel()
}
