//go:build integration

package integration

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/testbed/lab"
	"github.com/brtun/brtun/topology"
	"github.com/brtun/brtun/topology/etcdtest"
)

// clusterLeaseTTL is the replicas' --etcd-lease-ttl in these tests.
const clusterLeaseTTL = 3 * time.Second

// cluster is a lab managed by several brtun replicas sharing one etcd.
type cluster struct {
	t        *testing.T
	lab      *lab.Lab
	etcd     *etcdtest.Server
	names    []string
	replicas map[string]*daemon
	live     []string // names of the replicas not killed
}

// clusterHostView is the part of GET /v1/hosts/{name} these tests read.
type clusterHostView struct {
	Status struct {
		OVSDB   string `json:"ovsdb"`
		Bridges map[string]struct {
			OpenFlow        string `json:"openflow"`
			AppliedRevision uint64 `json:"applied_revision"`
			Master          string `json:"master"`
		} `json:"bridges"`
	} `json:"status"`
}

// clusterView is GET /v1/cluster.
type clusterView struct {
	Store    string `json:"store"`
	Self     string `json:"self"`
	Replicas []struct {
		Name    string `json:"name"`
		Healthy bool   `json:"healthy"`
		Bridges int    `json:"bridges"`
	} `json:"replicas"`
	Masters map[string]string `json:"masters"`
}

// clusterStatus reads GET /v1/cluster from a replica.
func (c *cluster) clusterStatus(name string) clusterView {
	var v clusterView
	c.replicas[name].MustDo(http.StatusOK, "GET", "/v1/cluster", nil, &v)
	return v
}

// startCluster starts an embedded etcd on loopback and one `brtun serve
// --store etcd` per name next to lab l.
func startCluster(t *testing.T, l *lab.Lab, names ...string) *cluster {
	return startClusterWith(t, l, nil, names...)
}

// startClusterWith is startCluster with more `brtun serve` flags for every
// replica.
func startClusterWith(t *testing.T, l *lab.Lab, extra []string, names ...string) *cluster {
	c := &cluster{t: t, lab: l, etcd: etcdtest.Start(t), names: names, replicas: map[string]*daemon{}, live: names}
	for _, n := range names {
		c.replicas[n] = startBrtun(t, l, daemonOptions{Name: n, ExtraArgs: append([]string{
			"--store", "etcd", "--etcd-endpoints", c.etcd.Endpoint(),
			"--replica-name", n, "--etcd-lease-ttl", clusterLeaseTTL.String(),
		}, extra...)})
	}
	return c
}

// scenario drives the lab through one replica with the usual helpers.
func (c *cluster) scenario(name string) *scenario {
	require.Contains(c.t, c.live, name)
	return &scenario{t: c.t, lab: c.lab, brtun: c.replicas[name]}
}

// revision is the newest revision any replica answered a write with.
func (c *cluster) revision() uint64 {
	var rev uint64
	for _, d := range c.replicas {
		rev = max(rev, d.Revision)
	}
	return rev
}

// kill stops a replica with SIGKILL.
func (c *cluster) kill(name string) {
	c.replicas[name].Kill()
	c.live = slices.DeleteFunc(slices.Clone(c.live), func(n string) bool { return n == name })
}

// pointBridges sets every replica as a controller of both bridges of every
// host once brtun created them: `ovs-vsctl set-controller br-tun tcp:A tcp:B tcp:C`.
func (c *cluster) pointBridges() {
	var targets []string
	for _, n := range c.names {
		targets = append(targets, c.replicas[n].Target(c.lab))
	}
	for _, h := range c.lab.Hosts {
		require.True(c.t, waitUntil(30*time.Second, func() bool {
			_, errTun := h.Vsctl("br-exists", "br-tun")
			_, errInt := h.Vsctl("br-exists", "br-int")
			return errTun == nil && errInt == nil
		}), "brtun did not create the bridges of %s", h.Name)
		args := append([]string{"set-controller", "br-tun"}, targets...)
		args = append(append(args, "--", "set-controller", "br-int"), targets...)
		_, err := h.Vsctl(args...)
		require.NoError(c.t, err)
	}
}

// masters returns the master of every bridge ("h1/br-tun" -> replica) as
// every live replica reports it; it fails unless they all agree and every
// bridge has one.
func (c *cluster) masters() (map[string]string, error) {
	var out map[string]string
	for _, n := range c.live {
		view := map[string]string{}
		for _, h := range c.lab.Hosts {
			var hv clusterHostView
			if st := c.replicas[n].Do("GET", "/v1/hosts/"+h.Name, nil, &hv); st != http.StatusOK {
				return nil, fmt.Errorf("%s: GET host %s: %d", n, h.Name, st)
			}
			for _, b := range []string{"br-int", "br-tun"} {
				m := hv.Status.Bridges[b].Master
				if m == "" {
					return nil, fmt.Errorf("%s sees no master of %s/%s", n, h.Name, b)
				}
				view[h.Name+"/"+b] = m
			}
		}
		if out != nil && fmt.Sprint(out) != fmt.Sprint(view) {
			return nil, fmt.Errorf("replicas disagree: %v vs %s's %v", out, n, view)
		}
		out = view
	}
	return out, nil
}

// waitApplied waits until every bridge has one master among the live
// replicas, and that master reports it connected with the newest revision
// applied.
func (c *cluster) waitApplied(timeout time.Duration) map[string]string {
	c.t.Helper()
	var last string
	var masters map[string]string
	ok := waitUntil(timeout, func() bool {
		var err error
		if masters, err = c.masters(); err != nil {
			last = err.Error()
			return false
		}
		for ref, m := range masters {
			if !slices.Contains(c.live, m) {
				last = fmt.Sprintf("%s is mastered by %s, which is dead", ref, m)
				return false
			}
			host, bridge, _ := strings.Cut(ref, "/")
			var hv clusterHostView
			if c.replicas[m].Do("GET", "/v1/hosts/"+host, nil, &hv) != http.StatusOK {
				return false
			}
			st := hv.Status.Bridges[bridge]
			last = fmt.Sprintf("%s on its master %s: ovsdb=%s openflow=%s applied=%d, want %d", ref, m, hv.Status.OVSDB, st.OpenFlow, st.AppliedRevision, c.revision())
			if hv.Status.OVSDB != "connected" || st.OpenFlow != "connected" || st.AppliedRevision < c.revision() {
				return false
			}
		}
		return true
	})
	require.True(c.t, ok, "the cluster did not apply the desired state in %s; last: %s", timeout, last)
	return masters
}

// bridgeRoles reads the role column of every controller of a bridge,
// keyed by target; disconnected controllers have no role.
func bridgeRoles(t *testing.T, h *lab.Host, bridge string) map[string]string {
	t.Helper()
	out, err := h.Vsctl("--bare", "get", "bridge", bridge, "controller")
	require.NoError(t, err)
	roles := map[string]string{}
	for _, id := range strings.Fields(strings.Trim(strings.TrimSpace(out), "[]")) {
		id = strings.TrimSuffix(id, ",")
		target, err := h.Vsctl("--bare", "get", "controller", id, "target")
		require.NoError(t, err)
		role, err := h.Vsctl("--bare", "--if-exists", "get", "controller", id, "role")
		require.NoError(t, err)
		roles[strings.Trim(strings.TrimSpace(target), `"`)] = strings.TrimSpace(role)
	}
	return roles
}

// ovsMasters checks OVS's own view: every bridge of every host has exactly
// one controller with role master, the live replicas' other connections are
// slaves, and the master is the replica brtun names. It returns a
// description of the first mismatch ("" when all is well).
func (c *cluster) ovsMasters(want map[string]string) string {
	byTarget := map[string]string{}
	for n, d := range c.replicas {
		byTarget[d.Target(c.lab)] = n
	}
	for _, h := range c.lab.Hosts {
		for _, b := range []string{"br-int", "br-tun"} {
			roles := bridgeRoles(c.t, h, b)
			var masters, slaves []string
			for target, role := range roles {
				switch role {
				case "master":
					masters = append(masters, byTarget[target])
				case "slave":
					slaves = append(slaves, byTarget[target])
				}
			}
			ref := h.Name + "/" + b
			if len(masters) != 1 || masters[0] != want[ref] || len(slaves) != len(c.live)-1 {
				return fmt.Sprintf("%s: roles %v, want master %s and %d slaves", ref, roles, want[ref], len(c.live)-1)
			}
		}
	}
	return ""
}

func (c *cluster) requireOVSMasters(want map[string]string) {
	c.t.Helper()
	var last string
	require.True(c.t, waitUntil(20*time.Second, func() bool {
		last = c.ovsMasters(want)
		return last == ""
	}), "OVS controller roles: %s", last)
}

// TestClusterFailover: three replicas on one etcd manage three hosts. A
// network created through replica a is applied everywhere; each bridge has
// exactly one master (OVS's role column agrees) and the hosts spread over
// the replicas. The master of h1 is killed with SIGKILL while a VM on h1
// pings a VM on h2: no packet is lost, another replica takes h1 over within
// the lease TTL plus a bound, and no flow changes on any bridge. A network
// created through a survivor reaches h1. Then etcd goes away: the data plane
// stays as it is (no flow changes, no loss), writes answer 503, and when etcd
// returns every bridge has a master again and new writes are applied.
func TestClusterFailover(t *testing.T) {
	l := lab.New(t, lab.Options{Hosts: 3})
	h1, h2, h3 := l.Hosts[0], l.Hosts[1], l.Hosts[2]
	c := startCluster(t, l, "a", "b", "c")

	sa := c.scenario("a")
	for _, h := range l.Hosts {
		sa.brtun.MustDo(201, "POST", "/v1/hosts", map[string]any{
			"name": h.Name, "ovsdb": h.OVSDB, "tunnel_ip": h.TunnelIP, "datapath_type": h.DatapathType,
		}, nil)
	}
	c.pointBridges()
	sa.network("blue", topology.VXLAN, 101)
	v1 := sa.vm(h1, "v1", "blue", "02:00:00:00:01:01", "198.18.0.1/24")
	v2 := sa.vm(h2, "v2", "blue", "02:00:00:00:01:02", "198.18.0.2/24")
	masters := c.waitApplied(60 * time.Second)
	c.requireOVSMasters(masters)
	perReplica := map[string]int{}
	for ref, m := range masters {
		perReplica[m]++
		host, _, _ := strings.Cut(ref, "/")
		assert.Equal(t, m, masters[host+"/br-tun"], "both bridges of %s have one master", host)
	}
	require.GreaterOrEqual(t, len(perReplica), 2, "bridges spread over the replicas: %v", masters)
	cv := c.clusterStatus("b")
	assert.Equal(t, "etcd", cv.Store)
	assert.Equal(t, "b", cv.Self)
	assert.Equal(t, masters, cv.Masters, "GET /v1/cluster names the same masters")
	require.Len(t, cv.Replicas, 3)
	for _, r := range cv.Replicas {
		assert.True(t, r.Healthy, "replica %s", r.Name)
		assert.Equal(t, perReplica[r.Name], r.Bridges, "bridges mastered by %s", r.Name)
	}
	ok, out := v1.Ping(v2.IP, 3)
	require.True(t, ok, "blue works before the failover:\n%s", out)

	// Kill h1's master while v1 pings v2 and every bridge is watched.
	victim := masters["h1/br-tun"]
	changes := watchFlows(t, l.Hosts...)
	const count = 100 // 10 s at -i 0.1
	pings := pingInBackground(v1, v2.IP, count)
	time.Sleep(time.Second)
	killed := time.Now()
	c.kill(victim)
	var after map[string]string
	var elected time.Duration // until the survivors name a new master of h1
	require.True(t, waitUntil(clusterLeaseTTL+30*time.Second, func() bool {
		m, err := c.masters()
		if err != nil || !slices.Contains(c.live, m["h1/br-tun"]) || !slices.Contains(c.live, m["h1/br-int"]) {
			return false
		}
		if elected == 0 {
			elected = time.Since(killed)
		}
		after = m
		return c.ovsMasters(m) == ""
	}), "no replica took h1 over")
	took := time.Since(killed)
	bound := 10 * time.Second
	t.Logf("replica %s killed; %s elected master of h1 after %s, OVS's role column shows it after %s (lease TTL %s, bound TTL+%s)",
		victim, after["h1/br-tun"], elected.Round(time.Millisecond), took.Round(time.Millisecond), clusterLeaseTTL, bound)
	assert.Less(t, took, clusterLeaseTTL+bound, "failover within the lease TTL plus %s", bound)
	c.waitApplied(30 * time.Second)
	requireNoLoss(t, <-pings, count, "v1 -> v2 across the failover")
	cv = c.clusterStatus(c.live[0])
	require.Len(t, cv.Replicas, 2, "the dead replica left the cluster: %+v", cv.Replicas)
	assert.NotContains(t, []string{cv.Replicas[0].Name, cv.Replicas[1].Name}, victim)
	assert.Empty(t, changes(), "the failover must not touch any flow")

	// A network created through a survivor reaches h1.
	survivor := c.live[0]
	ss := c.scenario(survivor)
	ss.network("red", topology.VXLAN, 102)
	r1 := ss.vm(h1, "r1", "red", "02:00:00:00:02:01", "198.18.1.1/24")
	r3 := ss.vm(h3, "r3", "red", "02:00:00:00:02:03", "198.18.1.3/24")
	c.waitApplied(30 * time.Second)
	ok, out = r1.Ping(r3.IP, 3)
	require.True(t, ok, "red, created after the failover, works on h1:\n%s", out)

	// etcd goes away for a while.
	changes = watchFlows(t, l.Hosts...)
	pings = pingInBackground(v1, v2.IP, count)
	c.etcd.Stop()
	var body struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	st := ss.brtun.Do("POST", "/v1/networks", map[string]any{"name": "green", "type": "vxlan", "segment_id": 103}, &body)
	assert.Equal(t, http.StatusServiceUnavailable, st, "a write without etcd")
	assert.Equal(t, "unavailable", body.Error.Code)
	assert.Contains(t, body.Error.Message, "etcd")
	cv = c.clusterStatus(survivor)
	for _, r := range cv.Replicas {
		if r.Name == cv.Self {
			assert.False(t, r.Healthy, "a replica without etcd reports itself unhealthy")
		}
	}
	requireNoLoss(t, <-pings, count, "v1 -> v2 while etcd is down")
	ok, out = v1.Ping(v2.IP, 3)
	require.True(t, ok, "blue still works after the replicas lost their leases:\n%s", out)
	c.etcd.Start()
	c.requireOVSMasters(c.waitApplied(60 * time.Second))
	assert.Empty(t, changes(), "losing and regaining etcd must not touch any flow")

	// ?wait through a replica that masters neither h2 nor h3 returns once
	// their masters applied the change.
	masters = c.waitApplied(30 * time.Second)
	w := c.live[0]
	for _, n := range c.live {
		if masters["h2/br-tun"] != n && masters["h3/br-tun"] != n {
			w = n
		}
	}
	sw := c.scenario(w)
	sw.network("green", topology.VXLAN, 103)
	g2 := sw.vm(h2, "g2", "green", "02:00:00:00:03:02", "198.18.2.2/24")
	g3vm := l.AddVM(t, h3, lab.VMOptions{Name: "g3", MAC: "02:00:00:00:03:03", CIDR: "198.18.2.3/24"})
	sw.brtun.MustDo(http.StatusCreated, "POST", "/v1/networks/green/ports?wait=30s", map[string]any{
		"name": "g3", "host": h3.Name, "interface": g3vm.HostIface, "mac": g3vm.MAC, "ips": []string{g3vm.IP},
	}, nil)
	ok, out = g2.Ping(g3vm.IP, 3)
	require.True(t, ok, "green, created through %s after etcd returned with ?wait, works at once:\n%s", w, out)
}
