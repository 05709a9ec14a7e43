package mastership

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/brtun/brtun/topology"
	"github.com/brtun/brtun/topology/etcdtest"
)

const testLeaseTTL = 2 * time.Second

type testReplica struct {
	m    *Etcd
	cli  *clientv3.Client
	stop context.CancelFunc
	done chan struct{}
}

func startReplica(t *testing.T, srv *etcdtest.Server, name string, bridges []string) *testReplica {
	t.Helper()
	cli, err := topology.DialEtcd([]string{srv.Endpoint()}, nil, nil)
	require.NoError(t, err)
	m, err := NewEtcd(EtcdOptions{Client: cli, Prefix: "/brtun/", Name: name, API: name + ":8080", LeaseTTL: testLeaseTTL})
	require.NoError(t, err)
	m.SetBridges(bridges)
	ctx, cancel := context.WithCancel(context.Background())
	r := &testReplica{m: m, cli: cli, stop: cancel, done: make(chan struct{})}
	go func() { _ = m.Run(ctx); close(r.done) }()
	t.Cleanup(func() { r.stop(); <-r.done; _ = cli.Close() })
	return r
}

// masters returns, for every bridge, the replicas that consider themselves
// its master, and fails if some bridge has none or several.
func settledMasters(replicas []*testReplica, bridges []string) (map[string]*testReplica, error) {
	out := map[string]*testReplica{}
	for _, ref := range bridges {
		var holders []*testReplica
		for _, r := range replicas {
			if ok, _ := r.m.Role(ref); ok {
				holders = append(holders, r)
			}
		}
		if len(holders) != 1 {
			return nil, fmt.Errorf("%s has %d masters", ref, len(holders))
		}
		out[ref] = holders[0]
	}
	for _, r := range replicas {
		for ref, holder := range out {
			if got := r.m.Master(ref); got != holder.m.Self() {
				return nil, fmt.Errorf("%s sees %q as master of %s, want %q", r.m.Self(), got, ref, holder.m.Self())
			}
		}
	}
	return out, nil
}

func waitSettled(t *testing.T, replicas []*testReplica, bridges []string) map[string]*testReplica {
	t.Helper()
	var masters map[string]*testReplica
	var err error
	settled := assert.Eventually(t, func() bool {
		masters, err = settledMasters(replicas, bridges)
		return err == nil
	}, 45*time.Second, 50*time.Millisecond)
	require.True(t, settled, "masters did not settle: %v", err)
	return masters
}

// Three replicas: every bridge gets exactly one master, the bridges of a
// host stay together, the hosts spread over more than one replica, and the
// others know the master's generation. When the master of some bridges
// dies without a word (its client is closed, so the lease only expires),
// the survivors take them over within the lease TTL plus a bound, with a
// larger generation.
func TestEtcdSpreadsAndFailsOver(t *testing.T) {
	srv := etcdtest.Start(t)
	var bridges []string
	for i := range 8 {
		bridges = append(bridges, fmt.Sprintf("h%d/br-int", i), fmt.Sprintf("h%d/br-tun", i))
	}
	replicas := []*testReplica{
		startReplica(t, srv, "a", bridges),
		startReplica(t, srv, "b", bridges),
		startReplica(t, srv, "c", bridges),
	}
	// Let all three join before judging the placement: the first replica
	// up may hold everything until the others register.
	require.Eventually(t, func() bool {
		for _, r := range replicas {
			if len(r.m.Replicas()) != 3 {
				return false
			}
		}
		return true
	}, 10*time.Second, 20*time.Millisecond)
	masters := waitSettled(t, replicas, bridges)

	per := map[string]int{}
	for i := range 8 {
		tun, in := masters[fmt.Sprintf("h%d/br-tun", i)], masters[fmt.Sprintf("h%d/br-int", i)]
		assert.Same(t, tun, in, "both bridges of h%d on one replica", i)
		per[tun.m.Self()]++
	}
	assert.GreaterOrEqual(t, len(per), 2, "bridges spread over replicas: %v", per)
	for _, ref := range bridges {
		_, gen := masters[ref].m.Role(ref)
		assert.NotZero(t, gen)
		for _, r := range replicas {
			if r != masters[ref] {
				master, g := r.m.Role(ref)
				assert.False(t, master)
				assert.Equal(t, gen, g, "%s knows the generation of %s", r.m.Self(), ref)
			}
		}
	}

	// Kill the master of h0 without a goodbye.
	victim := masters["h0/br-tun"]
	_, oldGen := victim.m.Role("h0/br-tun")
	require.NoError(t, victim.cli.Close())
	killed := time.Now()
	var survivors []*testReplica
	for _, r := range replicas {
		if r != victim {
			survivors = append(survivors, r)
		}
	}
	// The victim stops claiming mastership before its lease can expire.
	require.Eventually(t, func() bool { ok, _ := victim.m.Role("h0/br-tun"); return !ok }, testLeaseTTL, 20*time.Millisecond)
	after := waitSettled(t, survivors, bridges)
	took := time.Since(killed)
	t.Logf("failover took %s (lease TTL %s)", took, testLeaseTTL)
	assert.Less(t, took, testLeaseTTL+5*time.Second)
	_, newGen := after["h0/br-tun"].m.Role("h0/br-tun")
	assert.Greater(t, newGen, oldGen, "the new master has a larger generation")
	for _, ref := range bridges {
		assert.NotSame(t, victim, after[ref], "%s left the dead replica", ref)
	}
}

// Exactly one live replica leads (the first by name); when it dies without
// a goodbye the next one leads within the lease TTL plus a bound, and a
// replica cut off from etcd never leads.
func TestEtcdLeaderFailsOver(t *testing.T) {
	srv := etcdtest.Start(t)
	a := startReplica(t, srv, "a", nil)
	b := startReplica(t, srv, "b", nil)
	require.Eventually(t, func() bool {
		return len(a.m.Replicas()) == 2 && len(b.m.Replicas()) == 2 && a.m.Leads() && !b.m.Leads()
	}, 10*time.Second, 20*time.Millisecond, "a leads, b does not: a=%v b=%v", a.m.Leads(), b.m.Leads())

	require.NoError(t, a.cli.Close())
	killed := time.Now()
	require.Eventually(t, func() bool { return !a.m.Leads() }, testLeaseTTL, 20*time.Millisecond,
		"a replica without etcd stops leading before its lease can expire")
	require.Eventually(t, b.m.Leads, testLeaseTTL+5*time.Second, 20*time.Millisecond, "b takes over")
	t.Logf("leader failover took %s (lease TTL %s)", time.Since(killed), testLeaseTTL)
}

// While etcd is unreachable no replica masters anything (so none sends
// flow_mods); when it returns, every bridge gets one master again.
func TestEtcdWithoutEtcd(t *testing.T) {
	srv := etcdtest.Start(t)
	bridges := []string{"h1/br-int", "h1/br-tun", "h2/br-int", "h2/br-tun"}
	replicas := []*testReplica{startReplica(t, srv, "a", bridges), startReplica(t, srv, "b", bridges)}
	waitSettled(t, replicas, bridges)

	srv.Stop()
	require.Eventually(t, func() bool {
		for _, r := range replicas {
			for _, ref := range bridges {
				if ok, _ := r.m.Role(ref); ok {
					return false
				}
			}
		}
		return true
	}, testLeaseTTL, 20*time.Millisecond, "mastership must end within the lease TTL")
	// Connected is the lease's freshness (acked within 2/3 of the TTL),
	// which can outlast the roles by a little: a replica that saw its
	// campaign fail gives the role up at once.
	for _, r := range replicas {
		require.Eventually(t, func() bool { return !r.m.Connected() }, testLeaseTTL, 20*time.Millisecond,
			"%s reports the etcd lease gone", r.m.Self())
	}

	srv.Start()
	waitSettled(t, replicas, bridges)
}

// Hosts spread evenly (at most one more than a fair share each), the
// answer depends only on the sets given, and when a replica leaves, its
// hosts go to the others.
func TestAssignHosts(t *testing.T) {
	assert.Empty(t, assignHosts([]string{"h1"}, nil))
	hosts := []string{"h1", "h2", "h3"}
	got := assignHosts(hosts, []string{"a", "b", "c"})
	assert.ElementsMatch(t, []string{"a", "b", "c"}, []string{got["h1"], got["h2"], got["h3"]}, "3 hosts on 3 replicas: one each")
	assert.Equal(t, got, assignHosts([]string{"h3", "h1", "h2"}, []string{"c", "a", "b"}), "order does not matter")

	var many []string
	for i := range 100 {
		many = append(many, fmt.Sprintf("host-%d", i))
	}
	load := map[string]int{}
	for _, r := range assignHosts(many, []string{"a", "b", "c"}) {
		load[r]++
	}
	assert.Len(t, load, 3)
	for r, n := range load {
		assert.LessOrEqual(t, n, 34, "replica %s holds more than its fair share", r)
		assert.GreaterOrEqual(t, n, 32, "replica %s holds too little", r)
	}

	two := assignHosts(hosts, []string{"a", "b"})
	for _, h := range hosts {
		assert.Contains(t, []string{"a", "b"}, two[h])
	}
}

// hostBridges names the two bridges of n hosts, and the hosts.
func hostBridges(n int) (hosts, bridges []string) {
	for i := range n {
		h := fmt.Sprintf("h%d", i)
		hosts = append(hosts, h)
		bridges = append(bridges, h+"/br-int", h+"/br-tun")
	}
	return hosts, bridges
}

// waitJoined waits until every replica sees all of them live.
func waitJoined(t *testing.T, replicas []*testReplica) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, r := range replicas {
			if len(r.m.Replicas()) != len(replicas) {
				return false
			}
		}
		return true
	}, 10*time.Second, 20*time.Millisecond)
}

// assertPlacement checks a settled placement: every host's two bridges on
// the replica it is assigned to, and every replica's Masters (the source of
// GET /v1/cluster) naming exactly the replica that holds each election.
func assertPlacement(t *testing.T, replicas []*testReplica, hosts []string, masters map[string]*testReplica) {
	t.Helper()
	var names []string
	for _, r := range replicas {
		names = append(names, r.m.Self())
	}
	owner := assignHosts(hosts, names)
	for _, h := range hosts {
		in, tun := masters[h+"/br-int"], masters[h+"/br-tun"]
		assert.Same(t, in, tun, "both bridges of %s on one replica", h)
		assert.Equal(t, owner[h], tun.m.Self(), "%s on the replica it is assigned to", h)
	}
	for _, r := range replicas {
		view := r.m.Masters()
		assert.Len(t, view, len(masters), "%s's view names a master for every bridge, no more", r.m.Self())
		for ref, holder := range masters {
			assert.Equal(t, holder.m.Self(), view[ref], "%s's view of %s", r.m.Self(), ref)
		}
	}
}

// leaseOf is the lease a replica registered itself under.
func leaseOf(t *testing.T, cli *clientv3.Client, name string) clientv3.LeaseID {
	t.Helper()
	var lease clientv3.LeaseID
	require.Eventually(t, func() bool {
		resp, err := cli.Get(context.Background(), "/brtun/cluster/replicas/"+name)
		if err != nil || len(resp.Kvs) != 1 {
			return false
		}
		lease = clientv3.LeaseID(resp.Kvs[0].Lease)
		return true
	}, 10*time.Second, 20*time.Millisecond)
	return lease
}

// An election key a replica holds under its live lease but no longer
// campaigns for (a resign that timed out while etcd was slow, or a
// campaign whose put landed after the campaign gave up) must not keep the
// bridge: the replica removes it, the host's assigned replica wins, both
// bridges of the host end on it and every view agrees. A positive control:
// the same replica's own, assigned hosts stay with it throughout.
func TestEtcdOrphanElectionKeyReleased(t *testing.T) {
	srv := etcdtest.Start(t)
	hosts, bridges := hostBridges(9)
	a := startReplica(t, srv, "a", nil)
	lease := leaseOf(t, a.cli, "a")

	// Hosts a will not be assigned: leave an election key of a (under a's
	// lease) on their br-tun, as a resign that never reached etcd would.
	owner := assignHosts(hosts, []string{"a", "b", "c"})
	var orphaned []string
	for _, h := range hosts {
		if owner[h] == "a" {
			continue
		}
		key := fmt.Sprintf("/brtun/cluster/masters/%s/br-tun/%x", h, int64(lease))
		_, err := a.cli.Put(context.Background(), key, "a", clientv3.WithLease(lease))
		require.NoError(t, err)
		orphaned = append(orphaned, h)
	}
	require.NotEmpty(t, orphaned)

	replicas := []*testReplica{a, startReplica(t, srv, "b", bridges), startReplica(t, srv, "c", bridges)}
	// a learns the bridges only once it sees all three replicas, so it
	// never campaigns for the orphaned hosts itself.
	waitJoined(t, replicas)
	a.m.SetBridges(bridges)
	masters := waitSettled(t, replicas, bridges)
	assertPlacement(t, replicas, hosts, masters)
	for _, h := range orphaned {
		assert.NotSame(t, a, masters[h+"/br-tun"], "%s/br-tun left the orphaned key's replica", h)
	}
}

// A replica whose lease is lost in the middle (revoked here, as etcd does
// when it expires) stops claiming its bridges as soon as etcd drops its
// election keys, never beside another master, then rejoins with a new
// lease: every host ends with one master for both bridges, on the replica
// it is assigned to, and the views agree.
func TestEtcdLostLeaseReconverges(t *testing.T) {
	srv := etcdtest.Start(t)
	hosts, bridges := hostBridges(12)
	replicas := []*testReplica{
		startReplica(t, srv, "a", bridges),
		startReplica(t, srv, "b", bridges),
		startReplica(t, srv, "c", bridges),
	}
	waitJoined(t, replicas)
	masters := waitSettled(t, replicas, bridges)
	assertPlacement(t, replicas, hosts, masters)

	victim := masters["h0/br-tun"]
	var lost []string // the victim's bridges
	for ref, r := range masters {
		if r == victim {
			lost = append(lost, ref)
		}
	}
	lease := leaseOf(t, victim.cli, victim.m.Self())
	_, err := victim.cli.Revoke(context.Background(), lease)
	require.NoError(t, err)

	// Until the bridges settle again, no bridge has two replicas that each
	// consider themselves its master.
	moved := false
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, ref := range bridges {
			var holders []string
			for _, r := range replicas {
				if ok, _ := r.m.Role(ref); ok {
					holders = append(holders, r.m.Self())
				}
			}
			require.LessOrEqual(t, len(holders), 1, "%s has masters %v", ref, holders)
			if len(holders) == 1 && holders[0] != victim.m.Self() && ref == lost[0] {
				moved = true
			}
		}
		if moved {
			if _, err := settledMasters(replicas, bridges); err == nil && leaseOf(t, victim.cli, victim.m.Self()) != lease {
				break
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	assert.True(t, moved, "another replica took %s over while the victim rejoined", lost[0])
	waitJoined(t, replicas)
	masters = waitSettled(t, replicas, bridges)
	assertPlacement(t, replicas, hosts, masters)
}

// A replica that came up first and won every bridge hands two thirds of
// the hosts over when two more join, both bridges of each host together.
func TestEtcdFirstReplicaHandsOver(t *testing.T) {
	srv := etcdtest.Start(t)
	hosts, bridges := hostBridges(200)
	a := startReplica(t, srv, "a", bridges)
	first := waitSettled(t, []*testReplica{a}, bridges)
	assert.Len(t, first, len(bridges), "a alone masters every bridge")

	replicas := []*testReplica{a, startReplica(t, srv, "b", bridges), startReplica(t, srv, "c", bridges)}
	waitJoined(t, replicas)
	masters := waitSettled(t, replicas, bridges)
	assertPlacement(t, replicas, hosts, masters)
	per := map[string]int{}
	for _, r := range masters {
		per[r.m.Self()]++
	}
	t.Logf("bridges per replica: %v", per)
	assert.Len(t, per, 3)
}

// Hundreds of bridges reported applied at once (a revision that changes a
// single host: every other bridge takes it at the same moment) reach the
// other replicas, although etcd takes at most 128 operations in a
// transaction; so do later reports.
func TestEtcdReportsManyAppliedAtOnce(t *testing.T) {
	srv := etcdtest.Start(t)
	var bridges []string
	for i := range 200 {
		bridges = append(bridges, fmt.Sprintf("h%d/br-int", i), fmt.Sprintf("h%d/br-tun", i))
	}
	a := startReplica(t, srv, "a", bridges)
	b := startReplica(t, srv, "b", bridges)
	for _, rev := range []uint64{7, 8} {
		for _, ref := range bridges {
			a.m.ReportApplied(ref, rev)
		}
		var behind string
		if !assert.Eventually(t, func() bool {
			for _, ref := range bridges {
				if got := b.m.Applied(ref); got != rev {
					behind = fmt.Sprintf("%s at %d", ref, got)
					return false
				}
			}
			return true
		}, 15*time.Second, 20*time.Millisecond) {
			t.Fatalf("b does not see all %d bridges a reported at revision %d: %s", len(bridges), rev, behind)
		}
	}
}
