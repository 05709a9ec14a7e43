package topology

import (
	"maps"
	"slices"
)

// WithMACLearnLimit tells the store the flow limit of br-tun table 20
// (serve --mac-learn-limit; 0: unbounded). Registered remote ports and
// remote VTEP MACs have entries there that OVS never evicts, so the store
// refuses (ErrConflict) a port or remote VTEP that would push a host's
// registered entries past RegisteredMACLimit(limit): a full table would
// make the host's whole flow bundle fail.
func WithMACLearnLimit(limit int) Option {
	return func(s *store) { s.macLearnLimit = max(limit, 0) }
}

// RegisteredMACLimit is how many registered entries (the miss flow
// included) a host's br-tun table 20 may hold under a flow limit of limit:
// three quarters of it, the last quarter being kept for learned MACs
// (which OVS evicts when the table is full). 0 means unbounded.
func RegisteredMACLimit(limit int) int {
	if limit <= 0 {
		return 0
	}
	return limit - limit/4
}

// macTableLoad counts, per host, the entries brtun installs in the host's
// br-tun table 20 that OVS cannot evict: one miss flow, plus for each
// network the host carries (has a port in) the MACs of that network's ports
// on other hosts and of the remote VTEPs carrying it. It is an upper bound
// of what the controller compiles (it also counts down ports, whose entries
// are withdrawn, and MACs a remote VTEP shares with a port).
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

// macTableGuard is taken before a write that adds registered MACs; check,
// after the write's changes, refuses the write when a host's load grew past
// the store's limit. Hosts already over it (after the limit was lowered)
// are not made worse but may stay so; writes that do not grow a host's
// load always pass, so deleting or moving ports away is never refused.
type macTableGuard struct {
	flowLimit int // --mac-learn-limit
	limit     int // RegisteredMACLimit(flowLimit)
	before    map[string]int
}

func (s *store) guardMACTable(t txn) (macTableGuard, error) {
	g := macTableGuard{flowLimit: s.macLearnLimit, limit: RegisteredMACLimit(s.macLearnLimit)}
	if g.limit == 0 {
		return g, nil
	}
	var err error
	g.before, err = macTableLoad(t)
	return g, err
}

func (g macTableGuard) check(t txn) error {
	if g.limit == 0 {
		return nil
	}
	after, err := macTableLoad(t)
	if err != nil {
		return err
	}
	for _, h := range slices.Sorted(maps.Keys(after)) {
		if n := after[h]; n > g.limit && n > g.before[h] {
			return conflict("host %q would hold %d registered entries in br-tun table 20 (the MACs of other hosts' ports and of remote VTEPs in the networks it carries, and the miss flow), "+
				"more than the %d allowed: --mac-learn-limit is %d and a quarter of it is kept for learned MACs; raise --mac-learn-limit or carry fewer networks on this host",
				h, n, g.limit, g.flowLimit)
		}
	}
	return nil
}
