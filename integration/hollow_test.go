//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/hollow"
	"github.com/brtun/brtun/testbed/lab"
	"github.com/brtun/brtun/topology"
)

// TestHollowHostsAgreeWithOVS is the hollow hosts' conformance test: one
// scenario (three networks of the three tunnel types, ports on three hosts,
// a port and a network deleted, a port added, brtun SIGKILLed and
// restarted) runs with the real brtun binary twice, once against lab hosts
// running ovsdb-server and ovs-vswitchd, once against hollow hosts (the
// same ovsdb-server, package hollow in place of ovs-vswitchd). After the
// first phase and again after the restart, the canonical flow dumps of
// br-int and br-tun and the OVSDB rows brtun wrote must be equal host by
// host. Ofport numbers are mapped to interface names: they are assigned by
// each vswitchd in its own order. It runs once per tunnel-port mode.
func TestHollowHostsAgreeWithOVS(t *testing.T) {
	forEachTunnelMode(t, func(t *testing.T, mode topology.TunnelPortMode) {
		var real, fake []confSnapshot
		t.Run("ovs", func(t *testing.T) {
			l := lab.New(t, lab.Options{Hosts: 3})
			var hosts []confHost
			for _, h := range l.Hosts {
				hosts = append(hosts, confHost{
					name: h.Name, ovsdb: h.OVSDB, tunnelIP: h.TunnelIP, db: h.DBSock,
					dump: func(bridge string) ([]string, error) {
						out, err := h.Ofctl("dump-flows", bridge, "--no-stats", "--no-names")
						return strings.Split(out, "\n"), err
					},
					addIface: func(t *testing.T, vm string) string {
						return l.AddVM(t, h, lab.VMOptions{Name: vm, Quiet: true}).HostIface
					},
				})
			}
			real = runConformance(t, l, hosts, mode)
		})
		t.Run("hollow", func(t *testing.T) {
			// brtun next to no lab: its OpenFlow listener on loopback.
			l := &lab.Lab{Dir: t.TempDir(), ControllerIP: "127.0.0.1"}
			var hosts []confHost
			for i := 1; i <= 3; i++ {
				name := fmt.Sprintf("h%d", i)
				db, err := hollow.StartDBServer(t.Context(), hollow.DBServerOptions{Dir: filepath.Join(l.Dir, name)})
				require.NoError(t, err)
				t.Cleanup(db.Stop)
				h := hollow.Start(hollow.Options{Name: name, OVSDB: db.Socket})
				t.Cleanup(h.Close)
				hosts = append(hosts, confHost{
					name: name, ovsdb: db.Socket, tunnelIP: fmt.Sprintf("192.0.2.%d", i), db: db.Socket,
					dump: func(bridge string) ([]string, error) {
						b := h.Bridge(bridge)
						if b == nil {
							return nil, fmt.Errorf("%s has no bridge %s", name, bridge)
						}
						return b.DumpFlows(), nil
					},
					addIface: func(_ *testing.T, vm string) string { return "t" + vm },
				})
			}
			fake = runConformance(t, l, hosts, mode)
		})
		require.Len(t, real, 2, "the OVS run did not finish")
		require.Len(t, fake, 2, "the hollow run did not finish")
		for phase := range real {
			for i := range real[phase].hosts {
				r, f := real[phase].hosts[i], fake[phase].hosts[i]
				require.NotEmpty(t, r.flows["br-tun"], "positive control: %s has br-tun flows", r.name)
				require.NotEmpty(t, r.rows, "positive control: %s has OVSDB rows", r.name)
				t.Logf("phase %d, %s: %d br-tun flows, %d br-int flows, %d OVSDB rows compared",
					phase+1, r.name, len(r.flows["br-tun"]), len(r.flows["br-int"]), len(r.rows))
				require.Equal(t, r.flows["br-tun"], f.flows["br-tun"], "phase %d, %s br-tun: OVS vs hollow", phase+1, r.name)
				require.Equal(t, r.flows["br-int"], f.flows["br-int"], "phase %d, %s br-int: OVS vs hollow", phase+1, r.name)
				require.Equal(t, r.rows, f.rows, "phase %d, %s OVSDB rows: OVS vs hollow", phase+1, r.name)
			}
		}
	})
}

// confHost is one host of the conformance scenario, real or hollow.
type confHost struct {
	name, ovsdb, tunnelIP string
	db                    string // unix:PATH of its ovsdb-server, for ovs-vsctl
	dump                  func(bridge string) ([]string, error)
	addIface              func(t *testing.T, vm string) string // the host-side interface of a new VM
}

// confSnapshot is what the test compares after one phase.
type confSnapshot struct{ hosts []hostSnapshot }

type hostSnapshot struct {
	name  string
	flows map[string][]string // bridge -> normalised canonical dump
	rows  []string            // normalised OVSDB rows of br-int and br-tun
}

// runConformance plays the scenario and returns a snapshot after each of
// its two phases.
func runConformance(t *testing.T, l *lab.Lab, hosts []confHost, mode topology.TunnelPortMode) []confSnapshot {
	d := startBrtun(t, l, daemonOptions{Advertise: true, TunnelPorts: mode})
	for _, h := range hosts {
		d.MustDo(201, "POST", "/v1/hosts", map[string]any{
			"name": h.name, "ovsdb": h.ovsdb, "tunnel_ip": h.tunnelIP, "datapath_type": "netdev",
		}, nil)
	}
	noLearning := false
	for _, n := range []map[string]any{
		{"name": "blue", "type": topology.VXLAN, "segment_id": 5001},
		{"name": "green", "type": topology.Geneve, "segment_id": 6001, "mac_learning": noLearning},
		{"name": "red", "type": topology.GRE, "segment_id": 7001},
	} {
		d.MustDo(201, "POST", "/v1/networks", n, nil)
	}
	port := func(network, vm string, h confHost, n int) {
		d.MustDo(201, "POST", "/v1/networks/"+network+"/ports", map[string]any{
			"name": vm, "host": h.name, "interface": h.addIface(t, vm),
			"mac": fmt.Sprintf("02:00:00:00:%02x:%02x", n/256, n%256), "ips": []string{fmt.Sprintf("198.18.%d.%d", n/256, n%256)},
		}, nil)
	}
	h1, h2, h3 := hosts[0], hosts[1], hosts[2]
	port("blue", "a1", h1, 1)
	port("blue", "a2", h2, 2)
	port("blue", "a4", h1, 4)
	port("green", "b1", h1, 11)
	port("green", "b3", h3, 13)
	port("red", "c2", h2, 22)
	port("red", "c3", h3, 23)
	waitConfApplied(t, d, hosts, 60*time.Second)
	var out []confSnapshot
	out = append(out, snapshotHosts(t, d, l, hosts))

	d.MustDo(204, "DELETE", "/v1/networks/blue/ports/a4", nil, nil)
	d.MustDo(204, "DELETE", "/v1/networks/red?cascade=true", nil, nil)
	port("blue", "a3", h3, 3)
	d.Kill()
	d.Start()
	waitConfApplied(t, d, hosts, 60*time.Second)
	return append(out, snapshotHosts(t, d, l, hosts))
}

// waitConfApplied waits until every bridge of every host is connected and
// applied the daemon's latest revision.
func waitConfApplied(t *testing.T, d *daemon, hosts []confHost, timeout time.Duration) {
	t.Helper()
	var last string
	ok := waitUntil(timeout, func() bool {
		for _, h := range hosts {
			var hv hostView
			if d.Do("GET", "/v1/hosts/"+h.name, nil, &hv) != 200 {
				return false
			}
			for _, b := range []string{"br-int", "br-tun"} {
				st := hv.Status.Bridges[b]
				last = fmt.Sprintf("%s/%s: ovsdb=%s openflow=%s applied=%d of %d", h.name, b, hv.Status.OVSDB, st.OpenFlow, st.AppliedRevision, d.Revision)
				if hv.Status.OVSDB != "connected" || st.OpenFlow != "connected" || st.AppliedRevision < d.Revision {
					return false
				}
			}
		}
		return true
	})
	require.True(t, ok, "bridges did not apply the desired state in %s; last: %s", timeout, last)
}

// snapshotHosts reads every host's flows and rows, normalised.
func snapshotHosts(t *testing.T, d *daemon, l *lab.Lab, hosts []confHost) confSnapshot {
	t.Helper()
	var s confSnapshot
	for _, h := range hosts {
		rows, ofports := ovsdbRows(t, h.db, d.Target(l))
		hs := hostSnapshot{name: h.name, flows: map[string][]string{}, rows: rows}
		for _, br := range []string{"br-int", "br-tun"} {
			lines, err := h.dump(br)
			require.NoError(t, err, "%s %s", h.name, br)
			hs.flows[br] = normaliseFlows(lines, ofports[br])
		}
		s.hosts = append(s.hosts, hs)
	}
	return s
}

// normaliseFlows drops learned flows, turns ofport numbers into interface
// names and sorts a run of outputs (brtun orders flood outputs by ofport,
// which each vswitchd assigns in its own order), then sorts the lines.
func normaliseFlows(lines []string, ofports map[int]string) []string {
	ofportRef := regexp.MustCompile(`(in_port=|output:)(\d+)`)
	outputRuns := regexp.MustCompile(`output:<[^>]+>(?:,output:<[^>]+>)+`)
	var out []string
	for _, line := range lines {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "OFPST_FLOW") || strings.HasPrefix(line, "NXST_FLOW") {
			continue
		}
		if flows.IsLearned(cookieOf(line)) {
			continue // learned from traffic: the lab's VMs are quiet, hollow hosts carry none
		}
		line = ofportRef.ReplaceAllStringFunc(line, func(m string) string {
			sub := ofportRef.FindStringSubmatch(m)
			n, _ := strconv.Atoi(sub[2])
			if name, ok := ofports[n]; ok {
				return sub[1] + "<" + name + ">"
			}
			return m
		})
		line = outputRuns.ReplaceAllStringFunc(line, func(m string) string {
			outs := strings.Split(m, ",")
			sort.Strings(outs)
			return strings.Join(outs, ",")
		})
		out = append(out, line)
	}
	sort.Strings(out)
	return out
}

// ovsdbRows renders br-int and br-tun with their ports, interfaces and
// controllers, the columns brtun writes, as sorted text lines; references
// become names and brtun's controller target becomes <brtun>. It also
// returns each bridge's ofport -> interface name map. Columns ovs-vswitchd
// writes are left out except two facts: whether an interface has an ofport
// and its error.
func ovsdbRows(t *testing.T, db, brtunTarget string) ([]string, map[string]map[int]string) {
	t.Helper()
	tables := map[string][]string{
		"Bridge":     {"name", "datapath_type", "fail_mode", "protocols", "other_config", "external_ids", "controller", "ports"},
		"Port":       {"name", "interfaces", "tag", "trunks", "vlan_mode", "external_ids", "other_config"},
		"Interface":  {"name", "type", "options", "external_ids", "other_config", "ofport_request", "mtu_request", "ofport", "error"},
		"Controller": {"target", "connection_mode", "external_ids"},
	}
	type rec map[string]any
	data := map[string]map[string]rec{} // table -> uuid -> column -> value
	names := map[string]string{}        // uuid -> name (target for controllers)
	for table, cols := range tables {
		out, err := exec.Command("ovs-vsctl", "--db="+db, "--format=json", "--columns=_uuid,"+strings.Join(cols, ","), "list", table).CombinedOutput()
		require.NoError(t, err, "ovs-vsctl list %s: %s", table, out)
		var res struct {
			Headings []string `json:"headings"`
			Data     [][]any  `json:"data"`
		}
		require.NoError(t, json.Unmarshal(out, &res))
		data[table] = map[string]rec{}
		for _, r := range res.Data {
			m := rec{}
			for i, h := range res.Headings {
				m[h] = r[i]
			}
			uuid := fmt.Sprint(m["_uuid"].([]any)[1])
			data[table][uuid] = m
			if n, ok := m["name"].(string); ok {
				names[uuid] = n
			} else if tg, ok := m["target"].(string); ok {
				names[uuid] = tg
			}
		}
	}
	var render func(v any) string
	render = func(v any) string {
		switch v := v.(type) {
		case string:
			if v == brtunTarget {
				return strconv.Quote("<brtun>")
			}
			return strconv.Quote(v)
		case []any:
			if len(v) == 2 && v[0] == "uuid" {
				return render(names[fmt.Sprint(v[1])])
			}
			if len(v) == 2 && v[0] == "set" {
				var items []string
				for _, x := range v[1].([]any) {
					items = append(items, render(x))
				}
				sort.Strings(items)
				return "[" + strings.Join(items, ",") + "]"
			}
			if len(v) == 2 && v[0] == "map" {
				var items []string
				for _, kv := range v[1].([]any) {
					p := kv.([]any)
					items = append(items, render(p[0])+"="+render(p[1]))
				}
				sort.Strings(items)
				return "{" + strings.Join(items, ",") + "}"
			}
		}
		return fmt.Sprint(v)
	}
	line := func(table string, r rec) string {
		parts := []string{table}
		for _, c := range tables[table] {
			v := render(r[c])
			if table == "Interface" && c == "ofport" {
				n, _ := r[c].(float64)
				v = strconv.FormatBool(n > 0)
			}
			parts = append(parts, c+"="+v)
		}
		return strings.Join(parts, " ")
	}
	var rows []string
	ofports := map[string]map[int]string{}
	for _, b := range data["Bridge"] {
		name := b["name"].(string)
		if name != "br-int" && name != "br-tun" {
			continue // the lab's br-phy is no business of brtun's
		}
		rows = append(rows, line("Bridge", b))
		ofports[name] = map[int]string{}
		for _, cu := range refs(b["controller"]) {
			rows = append(rows, name+" "+line("Controller", data["Controller"][cu]))
		}
		for _, pu := range refs(b["ports"]) {
			p := data["Port"][pu]
			rows = append(rows, name+" "+line("Port", p))
			for _, iu := range refs(p["interfaces"]) {
				i := data["Interface"][iu]
				rows = append(rows, name+" "+line("Interface", i))
				if n, ok := i["ofport"].(float64); ok && n > 0 {
					ofports[name][int(n)] = i["name"].(string)
				}
			}
		}
	}
	slices.Sort(rows)
	rows = slices.Compact(rows)
	return rows, ofports
}

// refs lists the UUIDs of a reference column (one reference or a set).
func refs(v any) []string {
	a, ok := v.([]any)
	if !ok || len(a) != 2 {
		return nil
	}
	if a[0] == "uuid" {
		return []string{fmt.Sprint(a[1])}
	}
	var out []string
	if a[0] == "set" {
		for _, x := range a[1].([]any) {
			if p, ok := x.([]any); ok && len(p) == 2 && p[0] == "uuid" {
				out = append(out, fmt.Sprint(p[1]))
			}
		}
	}
	return out
}
