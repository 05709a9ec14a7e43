package topology

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/topology/etcdtest"
)

func TestRegisteredMACLimit(t *testing.T) {
	assert.Equal(t, 0, RegisteredMACLimit(0), "unbounded")
	assert.Equal(t, 30, RegisteredMACLimit(40))
	assert.Equal(t, 12288+1, RegisteredMACLimit(16385))
}

// With --mac-learn-limit 8, a host's table 20 may hold 6 registered
// entries: the miss flow and 5 remote MACs of the networks it carries.
func TestMACTableLimitRefusesPorts(t *testing.T) {
	backendsWith(t, []Option{WithMACLearnLimit(8)}, func(t *testing.T, s Store) {
		ctx := context.Background()
		mustHost(t, s, "h1", "192.0.2.1")
		mustHost(t, s, "h2", "192.0.2.2")
		mustHost(t, s, "h3", "192.0.2.3")
		mustNetwork(t, s, "blue", VXLAN, 0)
		mustNetwork(t, s, "red", VXLAN, 0)
		port := func(net, name, host string, i int) Port {
			return Port{Network: net, Name: name, Host: host, Interface: fmt.Sprintf("tap-%s-%d", net, i), MAC: fmt.Sprintf("02:00:00:00:%02x:%02x", len(net), i)}
		}
		// h1 carries blue; h2 has 5 blue ports: h1's table 20 is full.
		mustPort(t, s, port("blue", "a", "h1", 0))
		for i := 1; i <= 5; i++ {
			mustPort(t, s, port("blue", fmt.Sprint("b", i), "h2", i))
		}
		_, _, err := s.CreatePort(ctx, port("blue", "b6", "h2", 6))
		require.ErrorIs(t, err, ErrConflict)
		assert.Contains(t, err.Error(), `host "h1" would hold 7 registered entries in br-tun table 20`)
		assert.Contains(t, err.Error(), "--mac-learn-limit is 8")
		_, err = s.GetPort(ctx, "blue", "b6")
		require.ErrorIs(t, err, ErrNotFound, "nothing stored")

		// The same port on h1 adds nothing to h1's table 20 (its own
		// ports are local) and h2 sees only h1's 2 blue ports: accepted.
		mustPort(t, s, port("blue", "b6", "h1", 6))

		// Red's remote ports count only on hosts carrying red: h3 fills
		// up with red ports while h1 does not carry red.
		for i := 1; i <= 5; i++ {
			mustPort(t, s, port("red", fmt.Sprint("r", i), "h3", i))
		}
		// h1 holds 1 + 5 blue MACs (on h2): a red port on h1 would bring
		// red's 5 MACs there.
		_, _, err = s.CreatePort(ctx, port("red", "r-h1", "h1", 9))
		require.ErrorIs(t, err, ErrConflict)

		// Moving a port onto a full host is refused like creating one, and
		// moving one away (or deleting) is always accepted.
		_, _, err = s.UpdatePort(ctx, "red", "r1", nil, func(p *Port) error { p.Host = "h1"; return nil })
		require.ErrorIs(t, err, ErrConflict)
		_, _, err = s.UpdatePort(ctx, "blue", "b1", nil, func(p *Port) error { p.Host = "h1"; return nil })
		require.NoError(t, err, "b1 leaves h2 for h1: h1's load drops")
		// h1 now holds 1 + 4: with red down to one port (r1 on h3), a red
		// port on h1 fits (1 + 4 + 1 = 6).
		for i := 2; i <= 5; i++ {
			_, err := s.DeletePort(ctx, "red", fmt.Sprint("r", i), nil)
			require.NoError(t, err)
		}
		mustPort(t, s, port("red", "r-h1", "h1", 9))

		// Remote VTEP MACs count on every host carrying their networks.
		_, _, err = s.CreateRemoteVTEP(ctx, RemoteVTEP{Name: "tor", TunnelIP: "192.0.2.50", Networks: []string{"red"},
			MACs: []RemoteMAC{{MAC: "02:00:00:00:aa:01"}}})
		require.ErrorIs(t, err, ErrConflict, "h1 holds 1 + 4 blue + 1 red = 6 already")
		v, _, err := s.CreateRemoteVTEP(ctx, RemoteVTEP{Name: "tor", TunnelIP: "192.0.2.50", Networks: []string{"blue"}})
		require.NoError(t, err, "without MACs it adds nothing")
		_, _, err = s.UpdateRemoteVTEP(ctx, v.Name, nil, func(v *RemoteVTEP) error {
			v.MACs = []RemoteMAC{{MAC: "02:00:00:00:aa:01"}}
			return nil
		})
		require.ErrorIs(t, err, ErrConflict)
	})
}

// Without a limit nothing is refused.
func TestMACTableUnbounded(t *testing.T) {
	s := NewMemoryStore()
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	mustHost(t, s, "h1", "192.0.2.1")
	mustHost(t, s, "h2", "192.0.2.2")
	mustNetwork(t, s, "blue", VXLAN, 0)
	mustPort(t, s, Port{Network: "blue", Name: "a", Host: "h1", Interface: "tap0", MAC: "02:00:00:00:00:01"})
	for i := 1; i <= 20; i++ {
		mustPort(t, s, Port{Network: "blue", Name: fmt.Sprint("b", i), Host: "h2", Interface: fmt.Sprint("tap", i), MAC: fmt.Sprintf("02:00:00:00:01:%02x", i)})
	}
}

// macTableLoad is the full scan the store ran twice on every port write
// before it kept the macTable: each host's registered entries in br-tun
// table 20. It stays here as the reference the macTable must agree with.
func macTableLoad(t txn) (map[string]int, error) {
	ports, err := scanJSON[Port](t, bucketPorts, "")
	if err != nil {
		return nil, err
	}
	vteps, err := scanJSON[RemoteVTEP](t, bucketRemoteVTEPs, "")
	if err != nil {
		return nil, err
	}
	macs := map[string]int{}         // network -> registered MACs in it
	carried := map[string][]string{} // host -> networks it carries
	hostMACs := map[[2]string]int{}  // (host, network) -> MACs of its own ports there
	seen := map[[2]string]bool{}     // (host, network)
	for _, p := range ports {
		hn := [2]string{p.Host, p.Network}
		if !seen[hn] {
			seen[hn] = true
			carried[p.Host] = append(carried[p.Host], p.Network)
		}
		if p.MAC != "" {
			macs[p.Network]++
			hostMACs[hn]++
		}
	}
	for _, v := range vteps {
		for _, n := range v.Networks {
			macs[n] += len(v.MACs)
		}
	}
	load := make(map[string]int, len(carried))
	for h, nets := range carried {
		load[h] = 1
		for _, n := range nets {
			load[h] += macs[n] - hostMACs[[2]string{h, n}]
		}
	}
	return load, nil
}

// checkMACTable fails unless the stored macTable is what a full scan
// counts and its loads are macTableLoad's. A store without one must hold
// no port and no remote VTEP MAC. at names the state in messages.
func checkMACTable(t *testing.T, tx txn, at string) {
	t.Helper()
	scanned, err := scanMACTable(tx)
	require.NoError(t, err, at)
	var stored macTable
	found, err := getJSON(tx, bucketMeta, macTableKey, &stored)
	require.NoError(t, err, at)
	if !found {
		assert.Empty(t, scanned.Hosts, "%s: ports but no stored MAC table", at)
		assert.Empty(t, scanned.VTEPMACs, "%s: remote VTEP MACs but no stored MAC table", at)
		return
	}
	assert.Equal(t, *scanned, stored, "%s: the stored MAC table is not what a full scan counts", at)
	want, err := macTableLoad(tx)
	require.NoError(t, err, at)
	got := map[string]int{}
	for h, e := range stored.Hosts {
		got[h] = e.load()
	}
	assert.Equal(t, want, got, "%s: host loads", at)
}

// viewMACTable runs checkMACTable on the current state of s.
func viewMACTable(t *testing.T, s Store, at string) {
	t.Helper()
	require.NoError(t, s.(*store).be.view(context.Background(), func(tx txn) error {
		checkMACTable(t, tx, at)
		return nil
	}))
}

// loadsOf is macTableLoad on the current state of s.
func loadsOf(t *testing.T, s Store) map[string]int {
	t.Helper()
	var load map[string]int
	require.NoError(t, s.(*store).be.view(context.Background(), func(tx txn) error {
		var err error
		load, err = macTableLoad(tx)
		return err
	}))
	return load
}

// shadowOf copies every key of s into a memory store without a MAC table
// limit.
func shadowOf(t *testing.T, s Store) Store {
	t.Helper()
	mem := &memoryBackend{data: map[bucket]map[string][]byte{}}
	require.NoError(t, s.(*store).be.view(context.Background(), func(tx txn) error {
		for _, b := range allBuckets() {
			kvs, err := tx.scan(b, "")
			if err != nil {
				return err
			}
			mem.data[b] = map[string][]byte{}
			for _, kv := range kvs {
				mem.data[b][kv.key] = kv.val
			}
		}
		return nil
	}))
	return newStore(mem)
}

// macOp is one random write of TestMACTableAgreesWithFullScan; guarded
// ones were checked by the old guard (creates and updates of ports and
// remote VTEPs), the others never refused for the MAC table.
type macOp struct {
	name    string
	guarded bool
	run     func(Store) error
}

// randomMACOp picks a write on the state snap: creates, updates (moves
// between hosts, new MACs, admin state), deletes of ports; remote VTEPs
// created, changed and deleted; hosts and networks deleted with their
// ports and created again. Many fail (names taken, MACs in use, hosts or
// networks missing), which is part of the test.
func randomMACOp(rng *rand.Rand, snap Snapshot) macOp {
	ctx := context.Background()
	hosts := []string{"h1", "h2", "h3", "h4"}
	networks := []string{"n1", "n2", "n3", "n4"} // n4 is GRE: no remote VTEPs
	mac := func() string { return fmt.Sprintf("02:00:00:00:00:%02x", rng.IntN(40)) }
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	missing := func(names []string, have func(string) bool) []string {
		var out []string
		for _, n := range names {
			if !have(n) {
				out = append(out, n)
			}
		}
		return out
	}
	missingHosts := missing(hosts, func(n string) bool { _, ok := snap.Host(n); return ok })
	missingNetworks := missing(networks, func(n string) bool { _, ok := snap.Network(n); return ok })
	switch k := rng.IntN(100); {
	case len(missingHosts) > 0 && k < 20:
		name := pick(missingHosts)
		i := slices.Index(hosts, name)
		h := Host{Name: name, OVSDB: "unix:/run/brtun-test/" + name + "/db.sock", TunnelIP: fmt.Sprintf("192.0.2.%d", i+1)}
		return macOp{"create host " + h.Name, false,
			func(s Store) error { _, _, err := s.CreateHost(ctx, h); return err }}
	case len(missingNetworks) > 0 && k < 40:
		name := pick(missingNetworks)
		n := Network{Name: name, Type: VXLAN, SegmentID: uint32(100 + slices.Index(networks, name))}
		if n.Name == "n4" {
			n.Type = GRE
		}
		return macOp{"create network " + n.Name, false,
			func(s Store) error { _, _, err := s.CreateNetwork(ctx, n); return err }}

	case k < 30 || (k < 65 && len(snap.Ports) == 0):
		p := Port{Network: pick(networks), Name: fmt.Sprint("p", rng.IntN(12)), Host: pick(hosts)}
		p.Interface = "t-" + p.Network + "-" + p.Name
		if rng.IntN(2) == 0 {
			p.MAC = mac()
		}
		return macOp{fmt.Sprintf("create port %s/%s on %s mac %q", p.Network, p.Name, p.Host, p.MAC), true,
			func(s Store) error { _, _, err := s.CreatePort(ctx, p); return err }}
	case k < 50:
		p := snap.Ports[rng.IntN(len(snap.Ports))]
		var change func(*Port)
		var what string
		switch rng.IntN(4) {
		case 0, 1:
			h := pick(hosts)
			change, what = func(p *Port) { p.Host = h }, "move to "+h
		case 2:
			m := mac()
			change, what = func(p *Port) { p.MAC = m }, "mac "+m
		default:
			up := rng.IntN(2) == 0
			change, what = func(p *Port) { p.AdminStateUp = Bool(up) }, fmt.Sprint("up ", up)
		}
		return macOp{fmt.Sprintf("update port %s/%s: %s", p.Network, p.Name, what), true, func(s Store) error {
			_, _, err := s.UpdatePort(ctx, p.Network, p.Name, nil, func(p *Port) error { change(p); return nil })
			return err
		}}
	case k < 65:
		p := snap.Ports[rng.IntN(len(snap.Ports))]
		return macOp{fmt.Sprintf("delete port %s/%s", p.Network, p.Name), false,
			func(s Store) error { _, err := s.DeletePort(ctx, p.Network, p.Name, nil); return err }}
	case k < 80:
		i := rng.IntN(2)
		v := RemoteVTEP{Name: fmt.Sprint("v", i), TunnelIP: fmt.Sprintf("192.0.2.%d", 50+i), Networks: []string{pick(networks)}}
		if rng.IntN(2) == 0 {
			v.Networks = append(v.Networks, pick(networks))
		}
		for range rng.IntN(4) {
			v.MACs = append(v.MACs, RemoteMAC{MAC: mac()})
		}
		exists := slices.ContainsFunc(snap.RemoteVTEPs, func(o RemoteVTEP) bool { return o.Name == v.Name })
		name := fmt.Sprintf("put remote VTEP %s networks %v, %d MACs", v.Name, v.Networks, len(v.MACs))
		return macOp{name, true, func(s Store) error {
			if !exists {
				_, _, err := s.CreateRemoteVTEP(ctx, v)
				return err
			}
			_, _, err := s.UpdateRemoteVTEP(ctx, v.Name, nil, func(o *RemoteVTEP) error {
				o.Networks, o.MACs = v.Networks, v.MACs
				return nil
			})
			return err
		}}
	case k < 85:
		name := fmt.Sprint("v", rng.IntN(2))
		return macOp{"delete remote VTEP " + name, false,
			func(s Store) error { _, err := s.DeleteRemoteVTEP(ctx, name, nil); return err }}
	case k < 88:
		h := pick(hosts)
		return macOp{"delete host " + h + " with its ports", false,
			func(s Store) error { _, err := s.DeleteHost(ctx, h, true, nil); return err }}
	case k < 91:
		n := pick(networks)
		return macOp{"delete network " + n + " with its ports", false,
			func(s Store) error { _, err := s.DeleteNetwork(ctx, n, true, nil); return err }}
	default:
		p := Port{Network: pick(networks), Name: fmt.Sprint("p", rng.IntN(12)), Host: pick(hosts), MAC: mac()}
		p.Interface = "t-" + p.Network + "-" + p.Name
		return macOp{fmt.Sprintf("create port %s/%s on %s mac %q", p.Network, p.Name, p.Host, p.MAC), true,
			func(s Store) error { _, _, err := s.CreatePort(ctx, p); return err }}
	}
}

// The macTable is what a full scan counts after every write of a random
// sequence (creates, moves between hosts, MAC changes, deletes, remote
// VTEPs, cascade deletes of hosts and networks), and the guard refuses
// exactly the writes the old full-scan guard refused: each write is first
// run on a copy of the state in a store without a limit, and the old
// guard's verdict is taken from macTableLoad before and after it there.
// Writes it accepts leave the same state as on the copy; writes failing
// for other reasons fail the same way.
func TestMACTableAgreesWithFullScan(t *testing.T) {
	const flowLimit = 12 // 9 registered entries per host
	backendsWith(t, []Option{WithMACLearnLimit(flowLimit)}, func(t *testing.T, s Store) {
		ctx := context.Background()
		seed := uint64(15)
		t.Logf("seed %d", seed)
		rng := rand.New(rand.NewPCG(seed, 0))
		for i, h := range []string{"h1", "h2", "h3", "h4"} {
			mustHost(t, s, h, fmt.Sprintf("192.0.2.%d", i+1))
		}
		for i, n := range []string{"n1", "n2", "n3"} {
			mustNetwork(t, s, n, VXLAN, uint32(100+i))
		}
		mustNetwork(t, s, "n4", GRE, 103)
		refused, accepted, failed := 0, 0, 0
		for step := range 250 {
			snap, err := s.Snapshot(ctx)
			require.NoError(t, err)
			op := randomMACOp(rng, snap)
			at := fmt.Sprintf("step %d (%s)", step, op.name)

			before := loadsOf(t, s)
			shadow := shadowOf(t, s)
			shadowErr := op.run(shadow)
			after := loadsOf(t, shadow)
			refusal := ""
			if op.guarded && shadowErr == nil {
				for _, h := range slices.Sorted(maps.Keys(after)) {
					if n := after[h]; n > RegisteredMACLimit(flowLimit) && n > before[h] {
						refusal = fmt.Sprintf("host %q would hold %d registered entries in br-tun table 20", h, n)
						break
					}
				}
			}

			err = op.run(s)
			switch {
			case refusal != "":
				refused++
				require.ErrorIs(t, err, ErrConflict, at)
				require.ErrorContains(t, err, refusal, at)
				got, err := s.Snapshot(ctx)
				require.NoError(t, err)
				require.Equal(t, snap, got, "%s: a refused write changes nothing", at)
			case shadowErr != nil:
				failed++
				require.Error(t, err, at)
				require.Equal(t, shadowErr.Error(), err.Error(), at)
			default:
				accepted++
				require.NoError(t, err, at)
				want, err := shadow.Snapshot(ctx)
				require.NoError(t, err)
				got, err := s.Snapshot(ctx)
				require.NoError(t, err)
				require.Equal(t, want, got, "%s: the same state as without a limit", at)
			}
			viewMACTable(t, s, at)
			if t.Failed() {
				return
			}
		}
		t.Logf("%d writes accepted, %d refused for the MAC table, %d failed otherwise", accepted, refused, failed)
		// The sequence exercised every outcome.
		assert.Positive(t, accepted)
		assert.Positive(t, refused)
		assert.Positive(t, failed)
	})
}

// fillFullHost gives s hosts h1 and h2 and network blue with port a on h1,
// b1..b4 on h2 and remote VTEP tor with one MAC in blue: under
// --mac-learn-limit 8 (6 registered entries), h1's table 20 is full.
func fillFullHost(t *testing.T, s Store) {
	t.Helper()
	mustHost(t, s, "h1", "192.0.2.1")
	mustHost(t, s, "h2", "192.0.2.2")
	mustNetwork(t, s, "blue", VXLAN, 0)
	mustPort(t, s, Port{Network: "blue", Name: "a", Host: "h1", Interface: "tap-a"})
	for i := 1; i <= 4; i++ {
		mustPort(t, s, Port{Network: "blue", Name: fmt.Sprint("b", i), Host: "h2", Interface: fmt.Sprint("tap-b", i)})
	}
	_, _, err := s.CreateRemoteVTEP(context.Background(), RemoteVTEP{Name: "tor", TunnelIP: "192.0.2.50", Networks: []string{"blue"},
		MACs: []RemoteMAC{{MAC: "02:00:00:00:aa:01"}}})
	require.NoError(t, err)
}

// requireFullHost checks that s, with h1 full (fillFullHost), refuses one
// more port on h2 and takes one on h1.
func requireFullHost(t *testing.T, s Store) {
	t.Helper()
	ctx := context.Background()
	_, _, err := s.CreatePort(ctx, Port{Network: "blue", Name: "b5", Host: "h2", Interface: "tap-b5"})
	require.ErrorIs(t, err, ErrConflict)
	assert.Contains(t, err.Error(), `host "h1" would hold 7 registered entries`)
	mustPort(t, s, Port{Network: "blue", Name: "c", Host: "h1", Interface: "tap-c"})
	viewMACTable(t, s, "after a port on h1")
}

// A store without the MAC table (written by a brtun before it existed, or
// migrated from one) counts it by a full scan in its next write of ports
// or remote VTEPs, which stores it; the guard works the same meanwhile.
func TestMACTableRebuiltWhenMissing(t *testing.T) {
	backendsWith(t, []Option{WithMACLearnLimit(8)}, func(t *testing.T, s Store) {
		ctx := context.Background()
		fillFullHost(t, s)
		viewMACTable(t, s, "filled")
		be := s.(*store).be
		require.NoError(t, be.update(ctx, func(tx txn) error { return tx.del(bucketMeta, macTableKey) }))
		stored := func() bool {
			var found bool
			require.NoError(t, be.view(ctx, func(tx txn) error {
				raw, err := tx.get(bucketMeta, macTableKey)
				found = raw != nil
				return err
			}))
			return found
		}
		require.False(t, stored())
		_, _, err := s.CreateHost(ctx, Host{Name: "h3", OVSDB: "unix:/run/brtun-test/h3/db.sock", TunnelIP: "192.0.2.3"})
		require.NoError(t, err)
		assert.False(t, stored(), "a write of no port leaves it missing")
		requireFullHost(t, s)
		assert.True(t, stored())
	})
}

// The MAC table is stored with the state: a bbolt store reopened, and a
// second etcd replica (or one restarted), guard from it at once.
func TestMACTableSurvivesRestart(t *testing.T) {
	t.Run("bolt", func(t *testing.T) {
		dir := t.TempDir()
		s, err := OpenBoltStore(dir)
		require.NoError(t, err)
		fillFullHost(t, s)
		require.NoError(t, s.Close())
		s, err = OpenBoltStore(dir, WithMACLearnLimit(8))
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, s.Close()) })
		viewMACTable(t, s, "reopened")
		requireFullHost(t, s)
	})
	t.Run("etcd", func(t *testing.T) {
		cli := etcdClient(t, etcdtest.Start(t))
		fillFullHost(t, newTestEtcdStore(t, cli, DefaultEtcdPrefix))
		s := newTestEtcdStore(t, cli, DefaultEtcdPrefix, WithMACLearnLimit(8))
		viewMACTable(t, s, "second replica")
		requireFullHost(t, s)
	})
}

// Two etcd replicas adding ports at the same time cannot together take a
// host past the limit: each write checks and updates the stored counts at
// one etcd revision and commits only if no other write came in between.
// With --mac-learn-limit 8, h1 (port a in blue) takes 5 of the 20 ports
// the replicas try to add on h2; the others are refused.
func TestMACTableEtcdReplicasCannotOvershoot(t *testing.T) {
	srv := etcdtest.Start(t)
	replicas := []Store{
		newTestEtcdStore(t, etcdClient(t, srv), DefaultEtcdPrefix, WithMACLearnLimit(8)),
		newTestEtcdStore(t, etcdClient(t, srv), DefaultEtcdPrefix, WithMACLearnLimit(8)),
	}
	ctx := context.Background()
	mustHost(t, replicas[0], "h1", "192.0.2.1")
	mustHost(t, replicas[0], "h2", "192.0.2.2")
	mustNetwork(t, replicas[0], "blue", VXLAN, 0)
	mustPort(t, replicas[0], Port{Network: "blue", Name: "a", Host: "h1", Interface: "tap-a"})
	var mu sync.Mutex
	accepted, refused := 0, 0
	var wg sync.WaitGroup
	for r, s := range replicas {
		for i := range 10 {
			wg.Go(func() {
				name := fmt.Sprintf("r%d-%d", r, i)
				_, _, err := s.CreatePort(ctx, Port{Network: "blue", Name: name, Host: "h2", Interface: "tap-" + name})
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					accepted++
					return
				}
				refused++
				assert.ErrorIs(t, err, ErrConflict)
				assert.ErrorContains(t, err, `host "h1" would hold 7 registered entries`)
			})
		}
	}
	wg.Wait()
	assert.Equal(t, 5, accepted)
	assert.Equal(t, 15, refused)
	ports, err := replicas[1].ListPorts(ctx, "blue")
	require.NoError(t, err)
	assert.Len(t, ports, 6)
	viewMACTable(t, replicas[1], "after the race")
	assert.Equal(t, map[string]int{"h1": 6, "h2": 2}, loadsOf(t, replicas[1]))
}
