package evpn

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"sync"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// fabric is a second GoBGP in the test process, standing in for a leaf: it
// holds an iBGP session with the speaker over loopback and originates the
// routes a fabric VTEP would.
type fabric struct {
	t    *testing.T
	srv  *server.BgpServer
	addr netip.Addr
}

// Loopback addresses of the event-driven import tests: the speaker listens
// on loopSpeaker, the fabric opens the session from loopFabric.
var (
	loopSpeaker = netip.MustParseAddr("127.0.0.1")
	loopFabric  = netip.MustParseAddr("127.0.0.5")
	leaf        = netip.MustParseAddr("192.0.2.20") // the fabric VTEP
)

// freePort returns a TCP port free on loopSpeaker.
func freePort(t *testing.T) int32 {
	l, err := net.Listen("tcp", netip.AddrPortFrom(loopSpeaker, 0).String())
	require.NoError(t, err)
	defer l.Close()
	return int32(l.Addr().(*net.TCPAddr).Port)
}

// recorder keeps every State a speaker reports.
type recorder struct {
	mu  sync.Mutex
	all []State
}

func (r *recorder) add(st State) { r.mu.Lock(); r.all = append(r.all, st); r.mu.Unlock() }

func (r *recorder) last() (State, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.all[len(r.all)-1], len(r.all)
}

// importLab starts a speaker with desired and a fabric peered with it, and
// waits until the session is up.
func importLab(t *testing.T, desired Desired) (*Speaker, *fabric, *recorder) {
	ctx := context.Background()
	port := freePort(t)
	rec := &recorder{}
	s, err := Start(ctx, Options{
		Config: Config{ASN: 65000, RouterID: netip.MustParseAddr("198.51.100.254"), ListenAddress: loopSpeaker, ListenPort: port,
			ConnectRetry: time.Second, GracefulRestart: GracefulRestart{Disabled: true}},
		Logger:   zaptest.NewLogger(t).Named("speaker"),
		OnUpdate: rec.add,
	}, desired, []Peer{{Address: loopFabric, ASN: 65000}})
	require.NoError(t, err)
	t.Cleanup(s.Stop)

	f := &fabric{t: t, addr: loopFabric, srv: server.NewBgpServer(server.LoggerOption(&gobgpLogger{log: zaptest.NewLogger(t).Named("fabric")}))}
	go f.srv.Serve()
	t.Cleanup(f.srv.Stop)
	require.NoError(t, f.srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{Asn: 65000, RouterId: loopFabric.String(), ListenPort: -1}}))
	require.NoError(t, f.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: loopSpeaker.String(), PeerAsn: 65000},
		Timers:    &api.Timers{Config: &api.TimersConfig{ConnectRetry: 1}},
		Transport: &api.Transport{LocalAddress: loopFabric.String(), RemotePort: uint32(port)},
		AfiSafis:  []*api.AfiSafi{{Config: &api.AfiSafiConfig{Family: evpnFamily, Enabled: true}}},
	}}))
	require.Eventually(t, func() bool {
		st, ok, err := s.PeerStatus(ctx, loopFabric)
		return err == nil && ok && st.State == "established"
	}, 30*time.Second, 20*time.Millisecond, "the fabric's session comes up")
	return s, f, rec
}

// macRoutes are the type-2 routes of n MACs behind the leaf in VNI 5001.
func macRoutes(n int, seq uint32, rt string) []route {
	out := make([]route, n)
	for i := range out {
		out[i] = route{kind: macRoute, vni: 5001, rd: rdOf(leaf, 5001), vtep: leaf,
			mac: fmt.Sprintf("02:f0:00:00:%02x:%02x", i>>8, i&0xff), rt: rt, seq: seq}
	}
	return out
}

// announce has the fabric originate routes.
func (f *fabric) announce(rs ...route) {
	f.t.Helper()
	for _, r := range rs {
		p, err := r.path()
		require.NoError(f.t, err)
		_, err = f.srv.AddPath(context.Background(), &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: p})
		require.NoError(f.t, err)
	}
}

func (f *fabric) withdraw(rs ...route) {
	f.t.Helper()
	for _, r := range rs {
		r.seq = 0
		p, err := r.path()
		require.NoError(f.t, err)
		require.NoError(f.t, f.srv.DeletePath(context.Background(), &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Family: evpnFamily, Path: p}))
	}
}

// importedMACs returns the imported MACs of VNI 5001 by MAC.
func importedMACs(st State) map[string]RemoteMAC {
	out := map[string]RemoteMAC{}
	n, _ := st.Imported.Network(5001)
	for _, m := range n.MACs {
		out[m.MAC] = m
	}
	return out
}

// agrees checks that a listing of GoBGP's table gives the set the events
// built.
func agrees(t *testing.T, s *Speaker) {
	t.Helper()
	s.recMu.Lock()
	defer s.recMu.Unlock()
	_, err := s.refresh(context.Background())
	require.NoError(t, err)
	listed, err := s.listRIB(context.Background())
	require.NoError(t, err)
	var differ []string
	for k, r := range listed {
		if e, ok := s.rib[k]; !ok || !reflect.DeepEqual(e, r) {
			differ = append(differ, "listed only or differently: "+k)
		}
	}
	for k := range s.rib {
		if _, ok := listed[k]; !ok {
			differ = append(differ, "from events only: "+k)
		}
	}
	assert.Empty(t, differ, "the set kept from watch events (%d routes) equals a listing of the table (%d)", len(s.rib), len(listed))
}

// TestImportFollowsEvents: a burst of 500 MACs, withdrawals, a route
// target filter and a session drop reach the State through GoBGP's
// best-path events, without listing the table; a listing
// of the table agrees with the set the events built, and a forced resync
// reports nothing new.
func TestImportFollowsEvents(t *testing.T) {
	s, f, rec := importLab(t, blue())
	relists := s.relists.Load()
	_, before := rec.last()

	// A burst of 500 MACs, the leaf's type-3, and a MAC with another route
	// target (filtered out, beside the 500 as positive control).
	burst := macRoutes(500, 0, "65000:5001")
	foreign := route{kind: macRoute, vni: 5001, rd: rdOf(leaf, 5001), vtep: leaf, mac: "02:f1:00:00:00:01", rt: "65000:5999"}
	vtep := route{kind: vtepRoute, vni: 5001, rd: rdOf(leaf, 5001), vtep: leaf, rt: "65000:5001"}
	f.announce(foreign, vtep) // first: the session delivers them before the burst
	f.announce(burst...)
	require.Eventually(t, func() bool { st, _ := rec.last(); return len(importedMACs(st)) == 500 }, 20*time.Second, 10*time.Millisecond,
		"all 500 MACs imported")
	st, after := rec.last()
	t.Logf("500 MACs, sent as one UPDATE each, reported in %d States", after-before)
	n, _ := st.Imported.Network(5001)
	assert.Equal(t, []RemoteVTEP{{IP: leaf, Peer: loopFabric, RD: rdOf(leaf, 5001)}}, n.VTEPs, "the leaf's type-3")
	assert.NotContains(t, importedMACs(st), foreign.mac, "a route with another route target is not imported")
	assert.Equal(t, RemoteMAC{MAC: burst[7].mac, VTEP: leaf, Peer: loopFabric, RD: rdOf(leaf, 5001)}, importedMACs(st)[burst[7].mac])
	assert.Equal(t, relists, s.relists.Load(), "the burst was not listed: it came from events")
	agrees(t, s)

	// Withdraw 100: gone from the State, the rest stays.
	f.withdraw(burst[:100]...)
	require.Eventually(t, func() bool { st, _ := rec.last(); return len(importedMACs(st)) == 400 }, 20*time.Second, 10*time.Millisecond,
		"withdrawn MACs leave the import")
	st, _ = rec.last()
	assert.NotContains(t, importedMACs(st), burst[0].mac)
	assert.Contains(t, importedMACs(st), burst[100].mac, "positive control: a MAC not withdrawn stays")
	agrees(t, s)

	// A route changes in place (new sequence number): the event replaces it.
	f.announce(route{kind: macRoute, vni: 5001, rd: rdOf(leaf, 5001), vtep: leaf, mac: burst[200].mac, rt: "65000:5001", seq: 7})
	require.Eventually(t, func() bool { st, _ := rec.last(); return importedMACs(st)[burst[200].mac].Seq == 7 }, 20*time.Second, 10*time.Millisecond)
	agrees(t, s)

	// A forced resync lists the table and reports nothing new.
	_, count := rec.last()
	s.queue(nil, true)
	require.Eventually(t, func() bool { return s.relists.Load() == relists+1 }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, s.SetDesired(context.Background(), blue()))
	last, count2 := rec.last()
	assert.Equal(t, count, count2, "a resync that agrees reports no State")
	assert.Len(t, importedMACs(last), 400)

	// The session drops: every imported route goes, by events.
	require.NoError(t, f.srv.DeletePeer(context.Background(), &api.DeletePeerRequest{Address: loopSpeaker.String()}))
	require.Eventually(t, func() bool { st, _ := rec.last(); return len(st.Imported.Networks) == 0 }, 20*time.Second, 10*time.Millisecond,
		"a dropped session takes its routes away")
	agrees(t, s)
}

// TestBurstIsOneRound: updates queued while a round runs are all applied by
// the next one, which reports one State: a burst costs one store write
// however many events it came in, and a lone update is applied at once.
func TestBurstIsOneRound(t *testing.T) {
	rec := &recorder{}
	s, err := Start(context.Background(), Options{
		Config:   Config{ASN: 65000, RouterID: netip.MustParseAddr("198.51.100.254"), ListenPort: -1},
		Logger:   zaptest.NewLogger(t),
		OnUpdate: rec.add,
	}, blue(), nil)
	require.NoError(t, err)
	defer s.Stop()
	event := func(rs ...route) []*api.Path {
		var out []*api.Path
		for _, r := range rs {
			p, err := r.path()
			require.NoError(t, err)
			p.NeighborIp = loopFabric.String()
			out = append(out, p)
		}
		return out
	}

	_, before := rec.last()
	burst := macRoutes(500, 0, "65000:5001")
	s.recMu.Lock() // a round in progress
	for _, r := range burst {
		s.queue(updatesOf(s.log, event(r))) // one event per route, as GoBGP sends one per UPDATE
	}
	s.recMu.Unlock()
	require.Eventually(t, func() bool { st, _ := rec.last(); return len(importedMACs(st)) == 500 }, 10*time.Second, 5*time.Millisecond)
	time.Sleep(50 * time.Millisecond) // a second round would report now
	_, after := rec.last()
	assert.Equal(t, 1, after-before, "500 queued events, one State")

	one := macRoutes(501, 0, "65000:5001")[500]
	s.queue(updatesOf(s.log, event(one)))
	require.Eventually(t, func() bool { st, _ := rec.last(); return len(importedMACs(st)) == 501 }, 10*time.Second, time.Millisecond,
		"a single update needs no further event to be applied")

	withdrawn := event(burst[:250]...)
	for _, p := range withdrawn {
		p.IsWithdraw = true
	}
	s.queue(updatesOf(s.log, withdrawn))
	require.Eventually(t, func() bool { st, _ := rec.last(); return len(importedMACs(st)) == 251 }, 10*time.Second, time.Millisecond)
	st, _ := rec.last()
	assert.NotContains(t, importedMACs(st), burst[0].mac)
	assert.Contains(t, importedMACs(st), one.mac)
}

// TestImportMobilityFromEvents: a local MAC that the fabric advertises with
// a higher sequence number is superseded (our route withdrawn, the remote
// one imported); when the fabric withdraws it, ours comes back above the
// remote's number.
func TestImportMobilityFromEvents(t *testing.T) {
	mac := "02:f0:00:00:00:01"
	desired := blue(MAC{MAC: mac, VTEP: hostA})
	s, f, rec := importLab(t, desired)
	st, _ := rec.last()
	assert.Equal(t, []LocalSeq{{VNI: 5001, MAC: mac, VTEP: hostA}}, st.Seqs)

	moved := route{kind: macRoute, vni: 5001, rd: rdOf(leaf, 5001), vtep: leaf, mac: mac, rt: "65000:5001", seq: 1}
	f.announce(moved)
	require.Eventually(t, func() bool { st, _ := rec.last(); return len(st.Seqs) == 1 && st.Seqs[0].Superseded }, 20*time.Second, 10*time.Millisecond,
		"the fabric's seq 1 supersedes our seq 0")
	st, _ = rec.last()
	assert.Equal(t, RemoteMAC{MAC: mac, VTEP: leaf, Seq: 1, Peer: loopFabric, RD: rdOf(leaf, 5001)}, importedMACs(st)[mac])
	ownMAC := func() bool {
		for _, p := range ribPaths(t, s) {
			if !remote(p) {
				if _, r, ok, err := decodePath(p); err == nil && ok && r.kind == macRoute && r.mac == mac {
					return true
				}
			}
		}
		return false
	}
	require.Eventually(t, func() bool { return !ownMAC() }, 10*time.Second, 10*time.Millisecond, "our own route of the MAC is withdrawn")

	f.withdraw(moved)
	require.Eventually(t, func() bool {
		st, _ := rec.last()
		return len(st.Seqs) == 1 && !st.Seqs[0].Superseded && len(importedMACs(st)) == 0
	}, 20*time.Second, 10*time.Millisecond, "the remote withdrew: our MAC is back")
	assert.Eventually(t, ownMAC, 10*time.Second, 10*time.Millisecond, "our route of the MAC is advertised again")
	agrees(t, s)
}

// TestUpdatesOfIgnoresGarbage: a watch event with an undecodable path asks
// for a resync instead of failing, own and withdrawn paths remove the
// destination, and nothing panics.
func TestUpdatesOfIgnoresGarbage(t *testing.T) {
	log := zaptest.NewLogger(t)
	good, err := route{kind: macRoute, vni: 5001, rd: rdOf(leaf, 5001), vtep: leaf, mac: "02:f0:00:00:00:01", rt: "65000:5001"}.path()
	require.NoError(t, err)
	good.NeighborIp = loopFabric.String()
	ups, resync := updatesOf(log, []*api.Path{good})
	require.Len(t, ups, 1)
	assert.True(t, ups[0].ok)
	assert.False(t, resync)

	clone := func(change func(p *api.Path)) *api.Path {
		p := proto.Clone(good).(*api.Path)
		change(p)
		return p
	}
	withdrawn := clone(func(p *api.Path) { p.IsWithdraw = true })
	own := clone(func(p *api.Path) { p.NeighborIp = "<nil>" })
	broken := clone(func(p *api.Path) {
		p.Nlri = &anypb.Any{TypeUrl: "type.googleapis.com/apipb.EVPNMACIPAdvertisementRoute", Value: []byte{0xff, 0xff}}
	})
	badAttrs := clone(func(p *api.Path) {
		p.Pattrs = append(p.Pattrs, &anypb.Any{TypeUrl: "type.googleapis.com/apipb.Nope", Value: []byte{1}})
	})
	ups, resync = updatesOf(log, []*api.Path{withdrawn, own, broken, badAttrs})
	assert.True(t, resync, "an undecodable NLRI asks for a listing")
	require.Len(t, ups, 3)
	for _, u := range ups {
		assert.Equal(t, ups[0].key, u.key)
		assert.False(t, u.ok, "withdrawn, own or undecodable: the destination has no remote route")
	}
}
