// Package etcdtest runs a real single-member etcd server inside a test
// process (go.etcd.io/etcd/server/v3/embed), on 127.0.0.1 with free ports
// and a data directory of the test's own. Tests of the etcd Store, of
// mastership and the multi-replica integration tests share it.
package etcdtest

import (
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Server is one embedded etcd member. Stop and Start take it down and bring
// it back on the same ports with the same data, to test an etcd outage.
type Server struct {
	t   testing.TB
	cfg *embed.Config

	mu sync.Mutex
	e  *embed.Etcd // nil while stopped
}

// Start starts a server and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	cfg := embed.NewConfig()
	cfg.Name = "brtun-test"
	cfg.Dir = t.TempDir()
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.UnsafeNoFsync = true // test data; fsync only costs time
	client, peer := freeURL(t), freeURL(t)
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	s := &Server{t: t, cfg: cfg}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// freeURL returns an http URL on 127.0.0.1 with a port that was free a
// moment ago.
func freeURL(t testing.TB) url.URL {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("etcdtest: find a free port: %v", err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return url.URL{Scheme: "http", Host: addr}
}

// Endpoint is the client URL, e.g. "http://127.0.0.1:40123".
func (s *Server) Endpoint() string { return s.cfg.AdvertiseClientUrls[0].String() }

// Start (re)starts a stopped server on its ports and data directory and
// waits until it serves.
func (s *Server) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.e != nil {
		return
	}
	var e *embed.Etcd
	var err error
	// The ports were free when chosen; after a restart the old listener's
	// port may take a moment to be reusable.
	for range 50 {
		if e, err = embed.StartEtcd(s.cfg); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("etcdtest: start etcd: %v", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		e.Close()
		s.t.Fatalf("etcdtest: etcd not ready within 30s")
	}
	s.e = e
}

// Stop stops the server; clients then see an unreachable etcd.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.e != nil {
		s.e.Close()
		s.e = nil
	}
}
