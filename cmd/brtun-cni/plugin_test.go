package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/brtun/brtun/northbound"
	"github.com/brtun/brtun/topology"
)

// fakeController binds a port once its interface exists in the fake
// dataplane of the same test, as brtun's binding does on a real host.
type fakeController struct {
	dp *fakeDataplane
}

func (c fakeController) HostStatus(string) northbound.HostStatus { return northbound.HostStatus{} }
func (c fakeController) PortBound(host, iface string) bool {
	return host == "h1" && c.dp.hasLink(iface) && !c.dp.neverBind
}
func (c fakeController) PortError(string, string) string                       { return "" }
func (c fakeController) WaitApplied(context.Context, uint64) ([]string, error) { return nil, nil }
func (c fakeController) DumpFlows(context.Context, string, string, int) ([]northbound.FlowEntry, error) {
	return nil, nil
}

// link is a veth pair in the fake dataplane, keyed by its host end.
type link struct {
	netns, contIf string
	mtu           int
	mac           string // the container end's
	result        *current.Result
}

// fakeDataplane keeps veth pairs in memory; failOn makes one method fail.
type fakeDataplane struct {
	mu        sync.Mutex
	links     map[string]*link
	failOn    string
	neverBind bool
}

func newFakeDataplane() *fakeDataplane { return &fakeDataplane{links: map[string]*link{}} }

func (d *fakeDataplane) fail(method string) error {
	if d.failOn == method {
		return errors.New(method + ": injected failure")
	}
	return nil
}

func (d *fakeDataplane) hasLink(hostIf string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.links[hostIf] != nil
}

func (d *fakeDataplane) link(hostIf string) *link {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.links[hostIf]
}

func (d *fakeDataplane) CreateVeth(netns, contIf, hostIf string, mtu int) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.fail("CreateVeth"); err != nil {
		return "", err
	}
	if d.links[hostIf] != nil {
		return "", fmt.Errorf("%s exists", hostIf)
	}
	d.links[hostIf] = &link{netns: netns, contIf: contIf, mtu: mtu, mac: "0a:00:00:00:00:01"}
	return "0a:00:00:00:00:02", nil
}

func (d *fakeDataplane) DeleteHostLink(hostIf string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.fail("DeleteHostLink"); err != nil {
		return err
	}
	delete(d.links, hostIf)
	return nil
}

func (d *fakeDataplane) find(netns, contIf string) *link {
	for _, l := range d.links {
		if l.netns == netns && l.contIf == contIf {
			return l
		}
	}
	return nil
}

func (d *fakeDataplane) SetMAC(netns, contIf, mac string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.fail("SetMAC"); err != nil {
		return err
	}
	l := d.find(netns, contIf)
	if l == nil {
		return fmt.Errorf("no %s in %s", contIf, netns)
	}
	l.mac = mac
	return nil
}

func (d *fakeDataplane) Configure(netns, contIf string, res *current.Result) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.fail("Configure"); err != nil {
		return err
	}
	l := d.find(netns, contIf)
	if l == nil {
		return fmt.Errorf("no %s in %s", contIf, netns)
	}
	l.result = res
	return nil
}

func (d *fakeDataplane) Check(netns, contIf, hostIf, mac string, mtu int, res *current.Result) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.links[hostIf]
	switch {
	case l == nil:
		return fmt.Errorf("no host end %s", hostIf)
	case l.netns != netns || l.contIf != contIf:
		return fmt.Errorf("%s is not the peer of %s in %s", hostIf, contIf, netns)
	case l.mac != mac:
		return fmt.Errorf("MAC %s, want %s", l.mac, mac)
	case l.mtu != mtu:
		return fmt.Errorf("MTU %d, want %d", l.mtu, mtu)
	case l.result == nil || len(l.result.IPs) != len(res.IPs):
		return fmt.Errorf("addresses differ")
	}
	return nil
}

// fakeIPAM hands out 198.18.0.200 and later addresses, one per container.
type fakeIPAM struct {
	mu    sync.Mutex
	held  map[string]string // container id -> address
	next  int
	calls []string
}

func (f *fakeIPAM) record(verb string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, verb)
}

func (f *fakeIPAM) Add(_ context.Context, _ string, _ []byte) (types.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "ADD")
	addr := fmt.Sprintf("198.18.0.%d", 200+f.next)
	f.next++
	f.held[os.Getenv("CNI_CONTAINERID")] = addr
	return &current.Result{
		CNIVersion: current.ImplementedSpecVersion,
		IPs:        []*current.IPConfig{{Address: net.IPNet{IP: net.ParseIP(addr).To4(), Mask: net.CIDRMask(24, 32)}, Gateway: net.ParseIP("198.18.0.1")}},
		Routes:     []*types.Route{{Dst: net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}}},
		DNS:        types.DNS{Nameservers: []string{"198.18.0.53"}},
	}, nil
}

func (f *fakeIPAM) Del(context.Context, string, []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "DEL")
	delete(f.held, os.Getenv("CNI_CONTAINERID"))
	return nil
}
func (f *fakeIPAM) Check(context.Context, string, []byte) error  { f.record("CHECK"); return nil }
func (f *fakeIPAM) Status(context.Context, string, []byte) error { f.record("STATUS"); return nil }
func (f *fakeIPAM) GC(context.Context, string, []byte) error     { f.record("GC"); return nil }

// bed is a plugin against a real brtun API (northbound over a memory
// store) served by httptest, with a fake dataplane and IPAM.
type bed struct {
	t      *testing.T
	srv    *httptest.Server
	dp     *fakeDataplane
	ipam   *fakeIPAM
	plugin *plugin
	out    *bytes.Buffer
	tokens []string // Authorization headers brtun saw
	mu     sync.Mutex
}

func newBed(t *testing.T) *bed {
	t.Helper()
	b := &bed{t: t, dp: newFakeDataplane(), ipam: &fakeIPAM{held: map[string]string{}}, out: &bytes.Buffer{}}
	api, err := northbound.New(northbound.Options{Store: topology.NewMemoryStore(), Controller: fakeController{dp: b.dp}})
	require.NoError(t, err)
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.tokens = append(b.tokens, r.Header.Get("Authorization"))
		b.mu.Unlock()
		api.ServeHTTP(w, r)
	}))
	t.Cleanup(b.srv.Close)
	b.plugin = &plugin{log: zap.NewNop(), dp: b.dp, ipam: b.ipam, http: b.srv.Client(), out: b.out,
		bindWait: 2 * time.Second, pause: func(string) {}}
	b.api(201, "POST", "/v1/hosts", `{"name":"h1","ovsdb":"tcp:198.51.100.1:6640","tunnel_ip":"192.0.2.1"}`, nil)
	b.api(201, "POST", "/v1/hosts", `{"name":"h2","ovsdb":"tcp:198.51.100.2:6640","tunnel_ip":"192.0.2.2"}`, nil)
	b.api(201, "POST", "/v1/networks", `{"name":"blue","type":"vxlan","segment_id":5001}`, nil)
	b.api(201, "POST", "/v1/networks/blue/subnets", `{"name":"v4","cidr":"198.18.0.0/24","dns_servers":["198.18.0.53"],
		"host_routes":[{"destination":"198.19.0.0/16","nexthop":"198.18.0.254"}]}`, nil)
	return b
}

// api sends a request to brtun and checks the status.
func (b *bed) api(status int, method, path, body string, out any) {
	b.t.Helper()
	req, err := http.NewRequest(method, b.srv.URL+path, strings.NewReader(body))
	require.NoError(b.t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := b.srv.Client().Do(req)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(b.t, err)
	require.Equal(b.t, status, resp.StatusCode, "%s %s: %s", method, path, data)
	if out != nil {
		require.NoError(b.t, json.Unmarshal(data, out))
	}
}

// ports lists brtun's ports as network/name.
func (b *bed) ports() []string {
	var l portList
	b.api(200, "GET", "/v1/ports", "", &l)
	names := []string{}
	for _, p := range l.Ports {
		names = append(names, p.Network+"/"+p.Name)
	}
	return names
}

func (b *bed) conf(version string, extra map[string]any) []byte {
	c := map[string]any{"cniVersion": version, "name": "blue", "type": "brtun-cni", "server": b.srv.URL, "network": "blue", "host": "h1"}
	for k, v := range extra {
		c[k] = v
	}
	data, err := json.Marshal(c)
	require.NoError(b.t, err)
	return data
}

func args(id, ifName string, conf []byte) *skel.CmdArgs {
	return &skel.CmdArgs{ContainerID: id, Netns: "/run/netns/" + id, IfName: ifName, StdinData: conf}
}

// add runs ADD and decodes its printed result.
func (b *bed) add(a *skel.CmdArgs) (*current.Result, error) {
	b.out.Reset()
	b.t.Setenv("CNI_CONTAINERID", a.ContainerID) // what the fake IPAM keys by, as the real one reads it
	if err := b.plugin.Add(a); err != nil {
		return nil, err
	}
	var conf types.PluginConf
	require.NoError(b.t, json.Unmarshal(a.StdinData, &conf))
	raw, err := version.NewResult(conf.CNIVersion, b.out.Bytes())
	require.NoError(b.t, err, "result: %s", b.out.String())
	assert.Contains(b.t, b.out.String(), `"cniVersion": "`+conf.CNIVersion+`"`, "the result speaks the configuration's version")
	res, err := current.NewResultFromResult(raw)
	require.NoError(b.t, err)
	return res, nil
}

func (b *bed) withPrev(conf []byte, prev *current.Result, version string) []byte {
	b.t.Helper()
	asVersion, err := prev.GetAsVersion(version)
	require.NoError(b.t, err)
	var buf bytes.Buffer
	require.NoError(b.t, asVersion.PrintTo(&buf))
	var c map[string]any
	require.NoError(b.t, json.Unmarshal(conf, &c))
	var p map[string]any
	require.NoError(b.t, json.Unmarshal(buf.Bytes(), &p))
	c["prevResult"] = p
	data, err := json.Marshal(c)
	require.NoError(b.t, err)
	return data
}

// TestAddCheckDel: for each CNI version, ADD gives the container a port of
// its own with brtun's MAC and address, the subnet's gateway, host route and
// DNS and the network's MTU; CHECK passes; DEL removes port and veth, and
// again without error.
func TestAddCheckDel(t *testing.T) {
	for _, version := range []string{"0.4.0", "1.0.0", "1.1.0"} {
		t.Run(version, func(t *testing.T) {
			b := newBed(t)
			conf := b.conf(version, nil)
			a := args("ctr1", "eth0", conf)
			att := newAttachment("ctr1", "eth0")
			res, err := b.add(a)
			require.NoError(t, err)

			var pt port
			b.api(200, "GET", "/v1/networks/blue/ports/"+att.Port, "", &pt)
			assert.Equal(t, "ctr1", pt.DeviceID)
			assert.Equal(t, "h1", pt.Host)
			assert.Equal(t, att.HostIf, pt.Interface)
			assert.Equal(t, []string{"198.18.0.2"}, pt.IPs, "the first pool address")
			assert.Equal(t, portBound, pt.Status)
			var byDevice portList
			b.api(200, "GET", "/v1/ports?device_id=ctr1", "", &byDevice)
			require.Len(t, byDevice.Ports, 1, "operators find the container's port by device_id")

			require.Len(t, res.Interfaces, 2)
			assert.Equal(t, att.HostIf, res.Interfaces[0].Name)
			assert.Equal(t, "eth0", res.Interfaces[1].Name)
			assert.Equal(t, pt.MAC, res.Interfaces[1].Mac)
			assert.Equal(t, "/run/netns/ctr1", res.Interfaces[1].Sandbox)
			require.Len(t, res.IPs, 1)
			assert.Equal(t, "198.18.0.2/24", res.IPs[0].Address.String())
			assert.Equal(t, "198.18.0.1", res.IPs[0].Gateway.String())
			assert.Equal(t, 1, *res.IPs[0].Interface)
			var routes []string
			for _, r := range res.Routes {
				routes = append(routes, r.Dst.String()+" via "+r.GW.String())
			}
			assert.Equal(t, []string{"0.0.0.0/0 via 198.18.0.1", "198.19.0.0/16 via 198.18.0.254"}, routes)
			assert.Equal(t, []string{"198.18.0.53"}, res.DNS.Nameservers)

			l := b.dp.link(att.HostIf)
			require.NotNil(t, l, "the veth exists")
			assert.Equal(t, "eth0", l.contIf)
			assert.Equal(t, 1450, l.mtu, "the network's MTU (VXLAN over 1500)")
			assert.Equal(t, pt.MAC, l.mac, "the container's interface has the port's MAC")
			require.NotNil(t, l.result, "configured")

			check := args("ctr1", "eth0", b.withPrev(conf, res, version))
			require.NoError(t, b.plugin.Check(check))

			del := args("ctr1", "eth0", b.withPrev(conf, res, version))
			require.NoError(t, b.plugin.Del(del))
			assert.Empty(t, b.ports(), "the port is gone")
			assert.False(t, b.dp.hasLink(att.HostIf), "the veth is gone")
			require.NoError(t, b.plugin.Del(del), "DEL again")
			del.Netns = "" // runtimes may send DEL without a namespace
			require.NoError(t, b.plugin.Del(del), "DEL without a namespace")
			assert.Error(t, b.plugin.Check(check), "CHECK fails once the attachment is gone")
		})
	}
}

// TestAddFailureLeavesNothing: whichever step of ADD fails, ADD undoes the
// steps before it: no port, no veth, no IPAM allocation; a positive
// control shows that the same ADD works without the failure.
func TestAddFailureLeavesNothing(t *testing.T) {
	for _, fail := range []string{"CreateVeth", "bind", "SetMAC", "Configure", "port"} {
		for _, withIPAM := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/ipam=%v", fail, withIPAM), func(t *testing.T) {
				b := newBed(t)
				extra := map[string]any{}
				if withIPAM {
					extra["ipam"] = map[string]any{"type": "host-local"}
				}
				if fail == "port" {
					extra["host"] = "h9" // not registered: brtun refuses the port
				}
				conf := b.conf("1.0.0", extra)
				switch fail {
				case "bind":
					b.dp.neverBind = true
					b.plugin.bindWait = 300 * time.Millisecond
				case "CreateVeth", "SetMAC", "Configure":
					b.dp.failOn = fail
				}
				_, err := b.add(args("ctr1", "eth0", conf))
				require.Error(t, err)
				assert.Empty(t, b.ports(), "no port left")
				assert.False(t, b.dp.hasLink(newAttachment("ctr1", "eth0").HostIf), "no veth left")
				assert.Empty(t, b.ipam.held, "no address held")

				// Positive control: the same ADD without the failure.
				b.dp.failOn, b.dp.neverBind, b.plugin.bindWait = "", false, 2*time.Second
				_, err = b.add(args("ctr1", "eth0", b.conf("1.0.0", map[string]any{"ipam": extra["ipam"]})))
				require.NoError(t, err)
				assert.Len(t, b.ports(), 1)
			})
		}
	}
}

// TestAddWithIPAM: with an ipam section the addresses, routes and DNS are
// the IPAM plugin's and brtun's port carries the address; DEL releases it.
func TestAddWithIPAM(t *testing.T) {
	b := newBed(t)
	conf := b.conf("1.0.0", map[string]any{"ipam": map[string]any{"type": "host-local"}})
	res, err := b.add(args("ctr1", "eth0", conf))
	require.NoError(t, err)
	require.Len(t, res.IPs, 1)
	assert.Equal(t, "198.18.0.200/24", res.IPs[0].Address.String())
	assert.Equal(t, 1, *res.IPs[0].Interface, "the container's interface")
	assert.Equal(t, []string{"198.18.0.53"}, res.DNS.Nameservers)
	var pt port
	b.api(200, "GET", "/v1/networks/blue/ports/"+newAttachment("ctr1", "eth0").Port, "", &pt)
	assert.Equal(t, []string{"198.18.0.200"}, pt.IPs, "the port carries the IPAM address (port security allows it)")
	require.NoError(t, b.plugin.Check(args("ctr1", "eth0", b.withPrev(conf, res, "1.0.0"))))
	require.NoError(t, b.plugin.Del(args("ctr1", "eth0", conf)))
	assert.Empty(t, b.ipam.held)
	assert.Equal(t, []string{"ADD", "CHECK", "DEL"}, b.ipam.calls)
}

// TestAddReplacesLeftover: a same-named port of the same container (an ADD
// killed before its DEL) is replaced, and a leftover host end removed; a
// same-named port of another device is left alone and ADD fails.
func TestAddReplacesLeftover(t *testing.T) {
	b := newBed(t)
	att := newAttachment("ctr1", "eth0")
	b.api(201, "POST", "/v1/networks/blue/ports", fmt.Sprintf(`{"name":%q,"host":"h1","interface":"old0","device_id":"ctr1"}`, att.Port), nil)
	_, err := b.dp.CreateVeth("/run/netns/old", "eth9", att.HostIf, 1500)
	require.NoError(t, err)
	_, err = b.add(args("ctr1", "eth0", b.conf("1.0.0", nil)))
	require.NoError(t, err)
	var pt port
	b.api(200, "GET", "/v1/networks/blue/ports/"+att.Port, "", &pt)
	assert.Equal(t, att.HostIf, pt.Interface, "the leftover was replaced")
	assert.Equal(t, "/run/netns/ctr1", b.dp.link(att.HostIf).netns, "the leftover veth was replaced")

	other := newAttachment("ctr2", "eth0")
	b.api(201, "POST", "/v1/networks/blue/ports", fmt.Sprintf(`{"name":%q,"host":"h1","interface":"vm0","device_id":"vm-7"}`, other.Port), nil)
	_, err = b.add(args("ctr2", "eth0", b.conf("1.0.0", nil)))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "vm-7")
	b.api(200, "GET", "/v1/networks/blue/ports/"+other.Port, "", &pt)
	assert.Equal(t, "vm0", pt.Interface, "another device's port is untouched")
	assert.False(t, b.dp.hasLink(other.HostIf), "the failed ADD left no veth")

	require.NoError(t, b.plugin.Del(args("ctr2", "eth0", b.conf("1.0.0", nil))))
	b.api(200, "GET", "/v1/networks/blue/ports/"+other.Port, "", nil) // DEL leaves another device's port alone too

	// A DEL sent with another host's configuration leaves the port alone:
	// it lives on h1.
	require.NoError(t, b.plugin.Del(args("ctr1", "eth0", b.conf("1.0.0", map[string]any{"host": "h2"}))))
	b.api(200, "GET", "/v1/networks/blue/ports/"+att.Port, "", nil)
	require.NoError(t, b.plugin.Del(args("ctr1", "eth0", b.conf("1.0.0", nil))))
	b.api(404, "GET", "/v1/networks/blue/ports/"+att.Port, "", nil)
}

// TestCheckSeesDrift: CHECK fails when the container's MAC changed or the
// port went away, and passes before (positive control).
func TestCheckSeesDrift(t *testing.T) {
	b := newBed(t)
	conf := b.conf("1.1.0", nil)
	res, err := b.add(args("ctr1", "eth0", conf))
	require.NoError(t, err)
	check := args("ctr1", "eth0", b.withPrev(conf, res, "1.1.0"))
	require.NoError(t, b.plugin.Check(check))

	att := newAttachment("ctr1", "eth0")
	b.dp.link(att.HostIf).mac = "0a:00:00:00:00:99"
	assert.ErrorContains(t, b.plugin.Check(check), "MAC")
	b.dp.link(att.HostIf).mac = res.Interfaces[1].Mac
	require.NoError(t, b.plugin.Check(check))

	b.api(204, "DELETE", "/v1/networks/blue/ports/"+att.Port, "", nil)
	assert.ErrorContains(t, b.plugin.Check(check), "404")

	assert.ErrorContains(t, b.plugin.Check(args("ctr1", "eth0", conf)), "prevResult")
}

// TestStatus: STATUS passes while brtun serves the network and answers
// error 50 (plugin not available) when the network is unknown or brtun is
// down.
func TestStatus(t *testing.T) {
	b := newBed(t)
	require.NoError(t, b.plugin.Status(&skel.CmdArgs{StdinData: b.conf("1.1.0", nil)}))
	err := b.plugin.Status(&skel.CmdArgs{StdinData: b.conf("1.1.0", map[string]any{"network": "nope"})})
	var te *types.Error
	require.ErrorAs(t, err, &te)
	assert.Equal(t, types.ErrPluginNotAvailable, te.Code)
	b.srv.Close()
	err = b.plugin.Status(&skel.CmdArgs{StdinData: b.conf("1.1.0", nil)})
	require.ErrorAs(t, err, &te)
	assert.Equal(t, types.ErrPluginNotAvailable, te.Code)
}

// TestGC: GC deletes this host's brtun-cni ports of the network that no
// valid attachment names, with their veths, and keeps the valid ones,
// other hosts' ports and ports brtun-cni did not make.
func TestGC(t *testing.T) {
	b := newBed(t)
	conf := b.conf("1.1.0", nil)
	for _, id := range []string{"live", "gone1", "gone2"} {
		_, err := b.add(args(id, "eth0", conf))
		require.NoError(t, err)
	}
	b.api(201, "POST", "/v1/networks/blue/ports", `{"name":"vm1","host":"h1","interface":"tap1"}`, nil)
	b.api(201, "POST", "/v1/networks/blue/ports", `{"name":"cni-other-host","host":"h2","interface":"cni0","device_id":"x","tags":["brtun-cni"]}`, nil)

	gc := b.conf("1.1.0", map[string]any{"cni.dev/valid-attachments": []map[string]string{{"containerID": "live", "ifname": "eth0"}}})
	require.NoError(t, b.plugin.GC(&skel.CmdArgs{StdinData: gc}))
	assert.ElementsMatch(t, []string{"blue/" + newAttachment("live", "eth0").Port, "blue/vm1", "blue/cni-other-host"}, b.ports())
	assert.True(t, b.dp.hasLink(newAttachment("live", "eth0").HostIf), "the valid attachment keeps its veth")
	assert.False(t, b.dp.hasLink(newAttachment("gone1", "eth0").HostIf))
	assert.False(t, b.dp.hasLink(newAttachment("gone2", "eth0").HostIf))
	require.NoError(t, b.plugin.GC(&skel.CmdArgs{StdinData: gc}), "GC again finds nothing")
}

// TestTokenFile: with token_file the token is sent as a bearer token, and
// without it no Authorization header at all.
func TestTokenFile(t *testing.T) {
	b := newBed(t)
	file := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(file, []byte("s3cret\n"), 0o600))
	require.NoError(t, b.plugin.Status(&skel.CmdArgs{StdinData: b.conf("1.1.0", map[string]any{"token_file": file})}))
	require.NoError(t, b.plugin.Status(&skel.CmdArgs{StdinData: b.conf("1.1.0", nil)}))
	b.mu.Lock()
	seen := b.tokens[len(b.tokens)-2:]
	b.mu.Unlock()
	assert.Equal(t, []string{"Bearer s3cret", ""}, seen)
	err := b.plugin.Status(&skel.CmdArgs{StdinData: b.conf("1.1.0", map[string]any{"token_file": filepath.Join(t.TempDir(), "missing")})})
	assert.ErrorContains(t, err, "token_file")
}

func TestParseConf(t *testing.T) {
	for name, c := range map[string]string{
		"no server":  `{"cniVersion":"1.0.0","name":"blue","type":"brtun-cni","network":"blue","host":"h1"}`,
		"bad server": `{"cniVersion":"1.0.0","name":"blue","type":"brtun-cni","server":"ftp://x","network":"blue","host":"h1"}`,
		"no network": `{"cniVersion":"1.0.0","name":"blue","type":"brtun-cni","server":"http://x:1","host":"h1"}`,
		"no host":    `{"cniVersion":"1.0.0","name":"blue","type":"brtun-cni","server":"http://x:1","network":"blue"}`,
		"not json":   `{`,
	} {
		_, err := parseConf([]byte(c))
		assert.Error(t, err, name)
	}
	conf, err := parseConf([]byte(`{"cniVersion":"1.0.0","name":"blue","type":"brtun-cni","server":"http://198.51.100.254:8080/",
		"network":"blue","host":"h1","token_file":"/etc/brtun/token","ipam":{"type":"host-local"}}`))
	require.NoError(t, err)
	assert.Equal(t, "http://198.51.100.254:8080", conf.Server)
	assert.Equal(t, "/etc/brtun/token", conf.TokenFile)
	assert.Equal(t, "host-local", conf.IPAM.Type)
}

// TestAttachmentNames: names follow from container id and interface name
// only, are valid brtun port and Linux interface names, and differ between
// attachments.
func TestAttachmentNames(t *testing.T) {
	a := newAttachment("3f1c0e5d2a7bXYZ", "eth0")
	assert.Equal(t, a, newAttachment("3f1c0e5d2a7bXYZ", "eth0"))
	assert.True(t, topology.ValidName(a.Port), a.Port)
	assert.LessOrEqual(t, len(a.HostIf), 15)
	assert.NotEqual(t, a.Port, newAttachment("3f1c0e5d2a7bXYZ", "eth1").Port)
	assert.NotEqual(t, a.HostIf, newAttachment("3f1c0e5d2a7bXY", "Zeth0").HostIf, "the separator keeps id and name apart")
}

// TestAddWithoutSubnets: on a network without subnets (and no ipam) the
// container gets its interface with brtun's MAC and no address.
func TestAddWithoutSubnets(t *testing.T) {
	b := newBed(t)
	b.api(201, "POST", "/v1/networks", `{"name":"red","type":"gre"}`, nil)
	res, err := b.add(args("ctr1", "eth0", b.conf("1.0.0", map[string]any{"network": "red"})))
	require.NoError(t, err)
	assert.Empty(t, res.IPs)
	assert.Empty(t, res.Routes)
	var pt port
	b.api(200, "GET", "/v1/networks/red/ports/"+newAttachment("ctr1", "eth0").Port, "", &pt)
	assert.Equal(t, pt.MAC, res.Interfaces[1].Mac)
	assert.Equal(t, 1458, b.dp.link(newAttachment("ctr1", "eth0").HostIf).mtu, "GRE's MTU")
}

// TestParallelAdds: containers added at once each get their own address
// and port; deleted at once, nothing is left.
func TestParallelAdds(t *testing.T) {
	b := newBed(t)
	conf := b.conf("1.0.0", nil)
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := *b.plugin
			p.out = io.Discard
			errs <- p.Add(args(fmt.Sprintf("ctr%d", i), "eth0", conf))
		}()
	}
	wg.Wait()
	var l portList
	b.api(200, "GET", "/v1/ports?limit=100", "", &l)
	require.Len(t, l.Ports, n)
	seen := map[string]bool{}
	for _, pt := range l.Ports {
		require.Len(t, pt.IPs, 1)
		assert.False(t, seen[pt.IPs[0]], "%s handed out twice", pt.IPs[0])
		seen[pt.IPs[0]] = true
	}
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- b.plugin.Del(args(fmt.Sprintf("ctr%d", i), "eth0", conf))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Empty(t, b.ports())
}
