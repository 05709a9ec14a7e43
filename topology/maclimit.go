package topology

import (
	"fmt"
	"maps"
	"slices"
	"strings"
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

// macTableKey is the key in bucketMeta of the stored macTable.
const macTableKey = "mac-table"

// macTable counts, per host, the entries brtun installs in the host's
// br-tun table 20 that OVS cannot evict: one miss flow, plus for each
// network the host carries (has a port in) the MACs of that network's ports
// on other hosts and of the remote VTEPs carrying it. It is an upper bound
// of what the controller compiles (it also counts down ports, whose entries
// are withdrawn, and MACs a remote VTEP shares with a port).
//
// The store keeps it as one key, updated by every write that changes ports
// or remote VTEPs in the same transaction (macTableTxn), so that such a
// write reads the ports of the networks it changes rather than all ports.
// A store without the key (written by an older brtun, or migrated from
// one) gets it from a full scan in its next write of ports or remote
// VTEPs; nothing needs migrating. One key, rather than one per host, keeps
// every write within etcd's --max-txn-ops however many hosts a network
// spans. An older brtun writing to the store after this one would leave
// the key behind its ports (downgrades are not supported).
type macTable struct {
	// Hosts holds every host that carries at least one network.
	Hosts map[string]hostMACs `json:"hosts"`
	// VTEPMACs counts, per network, the MACs remote VTEPs list in it
	// (networks with none are absent).
	VTEPMACs map[string]int `json:"vtep_macs"`
}

// hostMACs is one host's part of the macTable.
type hostMACs struct {
	Networks int `json:"networks"` // networks the host carries
	Remote   int `json:"remote"`   // MACs of other hosts' ports and of remote VTEPs in them
}

// load is the host's registered entries in table 20: the miss flow and
// the remote MACs, or nothing when it carries no network.
func (h hostMACs) load() int {
	if h.Networks == 0 {
		return 0
	}
	return 1 + h.Remote
}

// portMAC is the part of a stored Port the macTable reads.
type portMAC struct {
	Network string `json:"network"`
	Host    string `json:"host"`
	MAC     string `json:"mac"`
}

// networkShare returns what one network puts in the table 20 of each host
// carrying it: the network's registered MACs (its ports' and the vtepMACs
// remote VTEPs list in it) less those of the host's own ports there.
func networkShare(ports []portMAC, vtepMACs int) map[string]int {
	own := make(map[string]int)
	macs := vtepMACs
	for _, p := range ports {
		n := own[p.Host]
		if p.MAC != "" {
			macs++
			n++
		}
		own[p.Host] = n
	}
	for h, n := range own {
		own[h] = macs - n
	}
	return own
}

// addShare adds (sign 1) or removes (sign -1) a network's share of each
// host carrying it.
func (m *macTable) addShare(share map[string]int, sign int) {
	for h, n := range share {
		e := m.Hosts[h]
		e.Networks += sign
		e.Remote += sign * n
		if e.Networks == 0 {
			delete(m.Hosts, h)
		} else {
			m.Hosts[h] = e
		}
	}
}

// addVTEP adds (sign 1) or removes (sign -1) the MACs of v.
func (m *macTable) addVTEP(v RemoteVTEP, sign int) {
	for _, n := range v.Networks {
		if c := m.VTEPMACs[n] + sign*len(v.MACs); c != 0 {
			m.VTEPMACs[n] = c
		} else {
			delete(m.VTEPMACs, n)
		}
	}
}

// scanMACTable counts the macTable from every port and remote VTEP.
func scanMACTable(t txn) (*macTable, error) {
	ports, err := scanJSON[portMAC](t, bucketPorts, "")
	if err != nil {
		return nil, err
	}
	vteps, err := scanJSON[RemoteVTEP](t, bucketRemoteVTEPs, "")
	if err != nil {
		return nil, err
	}
	m := &macTable{Hosts: map[string]hostMACs{}, VTEPMACs: map[string]int{}}
	for _, v := range vteps {
		m.addVTEP(v, 1)
	}
	byNetwork := make(map[string][]portMAC)
	for _, p := range ports {
		byNetwork[p.Network] = append(byNetwork[p.Network], p)
	}
	for n, ps := range byNetwork {
		m.addShare(networkShare(ps, m.VTEPMACs[n]), 1)
	}
	return m, nil
}

// readMACTable reads the stored macTable, or counts it when the store has
// none yet.
func readMACTable(t txn) (*macTable, error) {
	var m macTable
	found, err := getJSON(t, bucketMeta, macTableKey, &m)
	if err != nil {
		return nil, err
	}
	if !found {
		return scanMACTable(t)
	}
	if m.Hosts == nil {
		m.Hosts = map[string]hostMACs{}
	}
	if m.VTEPMACs == nil {
		m.VTEPMACs = map[string]int{}
	}
	return &m, nil
}

// macTableTxn is the transaction every store write runs in (store.write).
// Before the write first changes a network's ports, or a remote VTEP (and
// so its networks), it reads the network's ports and records each host's
// share of the network; it follows the write's changes to those ports, and
// finish takes the shares again, applies the difference to the macTable and
// stores it, refusing the write when a host's load grew past the store's
// limit. Hosts already over it (after the limit was lowered) are not made
// worse but may stay so; writes that do not grow a host's load always
// pass, so deletes are never refused.
type macTableTxn struct {
	txn
	flowLimit int // --mac-learn-limit

	table    *macTable                  // nil until the write changes ports or remote VTEPs
	networks map[string]*touchedNetwork // the networks the write changes
}

// touchedNetwork is a network a write changes.
type touchedNetwork struct {
	share map[string]int     // host -> the network's share before the write
	ports map[string]portMAC // port key -> port, as the write leaves them
}

func (s *store) macTableTxn(t txn) *macTableTxn {
	return &macTableTxn{txn: t, flowLimit: s.macLearnLimit}
}

func (t *macTableTxn) put(b bucket, k string, val []byte) error {
	if err := t.changing(b, k, val); err != nil {
		return err
	}
	return t.txn.put(b, k, val)
}

func (t *macTableTxn) del(b bucket, k string) error {
	if err := t.changing(b, k, nil); err != nil {
		return err
	}
	return t.txn.del(b, k)
}

// changing is called before key k of bucket b is set to val (nil: deleted).
func (t *macTableTxn) changing(b bucket, k string, val []byte) error {
	switch b {
	case bucketPorts:
		network, _, _ := strings.Cut(k, "/")
		tn, err := t.touch(network)
		if err != nil {
			return err
		}
		if val == nil {
			delete(tn.ports, k)
			return nil
		}
		var p portMAC
		if err := decodeStored(val, &p); err != nil {
			return fmt.Errorf("decode %s/%s: %w", b, k, err)
		}
		tn.ports[k] = p
	case bucketRemoteVTEPs:
		if err := t.load(); err != nil {
			return err
		}
		var old, v RemoteVTEP
		hadOld, err := getJSON(t.txn, b, k, &old)
		if err != nil {
			return err
		}
		if val != nil {
			if err := decodeStored(val, &v); err != nil {
				return fmt.Errorf("decode %s/%s: %w", b, k, err)
			}
		}
		for _, n := range append(slices.Clone(old.Networks), v.Networks...) {
			if _, err := t.touch(n); err != nil {
				return err
			}
		}
		if hadOld {
			t.table.addVTEP(old, -1)
		}
		t.table.addVTEP(v, 1)
	}
	return nil
}

// load reads the macTable at the write's first change of ports or remote
// VTEPs.
func (t *macTableTxn) load() error {
	if t.table != nil {
		return nil
	}
	var err error
	t.table, err = readMACTable(t.txn)
	t.networks = make(map[string]*touchedNetwork)
	return err
}

// touch reads network's ports and its share of each host before the write
// changes them, once per write.
func (t *macTableTxn) touch(network string) (*touchedNetwork, error) {
	if err := t.load(); err != nil {
		return nil, err
	}
	if tn, ok := t.networks[network]; ok {
		return tn, nil
	}
	pairs, err := t.txn.scan(bucketPorts, key(network, ""))
	if err != nil {
		return nil, err
	}
	tn := &touchedNetwork{ports: make(map[string]portMAC, len(pairs)+1)}
	for _, kv := range pairs {
		var p portMAC
		if err := decodeStored(kv.val, &p); err != nil {
			return nil, fmt.Errorf("decode %s/%s: %w", bucketPorts, kv.key, err)
		}
		tn.ports[kv.key] = p
	}
	tn.share = networkShare(slices.Collect(maps.Values(tn.ports)), t.table.VTEPMACs[network])
	t.networks[network] = tn
	return tn, nil
}

// finish brings the stored macTable up to date with the write's changes
// and checks the hosts whose load changed.
func (t *macTableTxn) finish() error {
	if t.table == nil {
		return nil
	}
	before := make(map[string]int)           // host -> load before the write
	after := make(map[string]map[string]int) // network -> host -> share after it
	for n, tn := range t.networks {
		after[n] = networkShare(slices.Collect(maps.Values(tn.ports)), t.table.VTEPMACs[n])
		for _, hosts := range []map[string]int{tn.share, after[n]} {
			for h := range hosts {
				before[h] = t.table.Hosts[h].load()
			}
		}
	}
	for n, tn := range t.networks {
		t.table.addShare(tn.share, -1)
		t.table.addShare(after[n], 1)
	}
	if limit := RegisteredMACLimit(t.flowLimit); limit > 0 {
		for _, h := range slices.Sorted(maps.Keys(before)) {
			if n := t.table.Hosts[h].load(); n > limit && n > before[h] {
				return conflict("host %q would hold %d registered entries in br-tun table 20 (the MACs of other hosts' ports and of remote VTEPs in the networks it carries, and the miss flow), "+
					"more than the %d allowed: --mac-learn-limit is %d and a quarter of it is kept for learned MACs; raise --mac-learn-limit or carry fewer networks on this host",
					h, n, limit, t.flowLimit)
			}
		}
	}
	return putJSON(t.txn, bucketMeta, macTableKey, t.table)
}
