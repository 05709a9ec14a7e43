//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/testbed/lab"
	"github.com/brtun/brtun/topology"
)

// Tokens of the topology page tests: the API token writes, the viewer
// token only reads, and the page is given the viewer token.
const (
	uiAdminToken  = "ui-admin-token-0123456789"
	uiViewerToken = "ui-viewer-token-0123456789"
)

// chromium runs Debian's headless Chromium with a fresh profile and the
// flags that keep it off the network.
func chromium(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	require.NoError(t, err, "install Debian's chromium package (make test does)")
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--window-size=1400,900", "--virtual-time-budget=6000"}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, append(base, args...)...).Output()
	require.NoError(t, err, "chromium %v", args)
	return string(out)
}

// screenshot saves a screenshot of url as name: into $BRTUN_UI_SCREENSHOTS
// when set, else into the test's temporary directory. The pictures in
// docs/img come from
// BRTUN_UI_SCREENSHOTS=$PWD/docs/img go test -tags integration -run TestTopologyPage ./integration/.
func screenshot(t *testing.T, url, name string) {
	t.Helper()
	dir := os.Getenv("BRTUN_UI_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	shot := filepath.Join(dir, name)
	chromium(t, "--screenshot="+shot, url)
	info, err := os.Stat(shot)
	require.NoError(t, err)
	require.Greater(t, info.Size(), int64(10_000), "a real screenshot, not an empty image")
	t.Logf("screenshot of the topology page: %s", shot)
}

// pageDOM is the DOM of the topology page as Chromium rendered it.
type pageDOM string

// count reads a numeric data attribute of the element with id.
func (d pageDOM) count(t *testing.T, id, attr string) int {
	t.Helper()
	m := regexp.MustCompile(`id="` + id + `"[^>]*\b` + attr + `="(\d+)"`).FindStringSubmatch(string(d))
	require.NotNil(t, m, "#%s[%s] in the page", id, attr)
	n, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	return n
}

// hosts lists the host cards drawn, by name, and those marked lagging.
func (d pageDOM) hosts() (all, lagging []string) {
	for _, m := range regexp.MustCompile(`<article class="host[^"]*" data-host="([^"]+)" data-lagging="(true|false)"`).FindAllStringSubmatch(string(d), -1) {
		all = append(all, m[1])
		if m[2] == "true" {
			lagging = append(lagging, m[1])
		}
	}
	return all, lagging
}

// loginShown reports whether the token prompt is visible.
func (d pageDOM) loginShown() bool {
	return regexp.MustCompile(`<form id="login">`).MatchString(string(d))
}

func renderPage(t *testing.T, url string) pageDOM {
	t.Helper()
	return pageDOM(chromium(t, "--dump-dom", url))
}

// TestTopologyPageRendersThreeHosts renders GET /ui in headless Chromium
// while brtun, with an API token and a viewer token, manages three real lab
// hosts: the page asks for a token, then with the viewer token shows the
// hosts, the tunnels with live counters after traffic, each host's VLAN <->
// segment mapping and no host lagging. Then 97 hosts with unreachable OVSDB
// addresses join: at 100 hosts those 97 are marked as lagging the revision
// and the 3 real ones are not, and the network filter and the search
// narrow the page. Screenshots of both are saved.
func TestTopologyPageRendersThreeHosts(t *testing.T) {
	l := lab.New(t, lab.Options{Hosts: 3})
	viewerFile := filepath.Join(l.Dir, "viewer-token")
	require.NoError(t, os.WriteFile(viewerFile, []byte(uiViewerToken+"\n"), 0o600))
	s := newScenarioOn(t, l, daemonOptions{Advertise: true, Token: uiAdminToken,
		ExtraArgs: []string{"--api-token-file", writeToken(t, l.Dir, uiAdminToken), "--api-viewer-token-file", viewerFile}})
	s.network("blue", topology.VXLAN, 5001)
	s.network("red", topology.GRE, 5001)
	b1 := s.vm(s.lab.Hosts[0], "b1", "blue", "02:00:00:00:0b:01", "198.18.0.1/24")
	b2 := s.vm(s.lab.Hosts[1], "b2", "blue", "02:00:00:00:0b:02", "198.18.0.2/24")
	s.vm(s.lab.Hosts[2], "r3", "red", "02:00:00:00:0e:03", "198.18.0.3/24")
	s.waitApplied(30 * time.Second)
	ok, out := b1.Ping(b2.IP, 3)
	require.True(t, ok, "b1 reaches b2 over the VXLAN tunnel: %s", out)

	// Without a token the page shows its prompt and no data; a write with
	// the viewer token is refused while the API token writes.
	dom := renderPage(t, s.brtun.API+"/ui")
	require.True(t, dom.loginShown(), "the page asks for a token")
	assert.Equal(t, 0, dom.count(t, "hosts", "data-total"), "no data without a token")
	status, body := call(t, s.brtun, "POST", "/v1/networks", uiViewerToken, map[string]any{"name": "green", "type": "vxlan"})
	require.Equal(t, http.StatusForbidden, status, "%s", body)

	page := s.brtun.API + "/ui#token=" + uiViewerToken
	dom = renderPage(t, page)
	require.False(t, dom.loginShown(), "the viewer token is enough to read")
	all, lagging := dom.hosts()
	require.Equal(t, []string{"h1", "h2", "h3"}, all)
	require.Empty(t, lagging, "every bridge applied the current revision")
	for _, pair := range []string{"h1 h2", "h1 h3", "h2 h3"} {
		require.Regexp(t, `class="tunnel" data-hosts="`+pair+`" data-types="gre vxlan"`, string(dom), "tunnel %s shown", pair)
	}
	require.Len(t, regexp.MustCompile(`data-openflow="connected"`).FindAllString(string(dom), -1), 6, "both bridges of the three hosts show connected")
	require.Len(t, regexp.MustCompile(`data-ovsdb="connected"`).FindAllString(string(dom), -1), 3)
	require.Regexp(t, `data-network="blue" data-vlan="1" data-segment="vxlan:5001"`, string(dom))
	require.Regexp(t, `data-network="red" data-vlan="1" data-segment="gre:5001"`, string(dom))
	require.Regexp(t, `class="network" data-network="blue" data-hosts="h1 h2"`, string(dom), "blue is carried by h1 and h2")
	require.Regexp(t, `class="network" data-network="red" data-hosts="h3"`, string(dom))
	// Live counters: the ping crossed the h1 <-> h2 tunnel both ways; the
	// counters come from the switches' tunnel flows.
	m := regexp.MustCompile(`data-hosts="h1 h2" data-types="[^"]*" data-rx-ab="(\d+)" data-rx-ba="(\d+)"`).FindStringSubmatch(string(dom))
	require.NotNil(t, m, "the h1 <-> h2 tunnel has counters")
	for _, c := range m[1:] {
		n, _ := strconv.Atoi(c)
		assert.GreaterOrEqual(t, n, 3, "the 3 pings crossed the tunnel each way")
	}
	screenshot(t, s.brtun.API+"/ui#token="+uiViewerToken, "ui.png")

	// 97 more hosts whose OVSDB nobody serves: they never apply a revision.
	for i := 4; i <= 100; i++ {
		s.brtun.MustDo(201, "POST", "/v1/hosts", map[string]any{"name": fmt.Sprintf("h%d", i),
			"ovsdb": "unix:" + filepath.Join(l.Dir, fmt.Sprintf("absent-%d.sock", i)), "tunnel_ip": fmt.Sprintf("192.0.2.%d", i)}, nil)
	}
	s.brtun.MustDo(201, "POST", "/v1/networks/red/ports", map[string]any{"name": "far", "host": "h77", "interface": "tapfar"}, nil)
	s.waitApplied(60 * time.Second) // the lab hosts, with tunnels to 97 more peers
	dom = renderPage(t, page)
	all, lagging = dom.hosts()
	require.Len(t, all, 100)
	assert.Equal(t, 100, dom.count(t, "hosts", "data-total"))
	assert.Equal(t, 97, dom.count(t, "hosts", "data-lagging"))
	require.Len(t, lagging, 97, "the unreachable hosts lag the revision")
	for _, h := range []string{"h1", "h2", "h3"} {
		assert.NotContains(t, lagging, h, "a lab host applied every revision")
	}
	assert.Regexp(t, `<article class="host down lagging" data-host="h77" data-lagging="true"`, string(dom))
	assert.Regexp(t, `id="tunnels-note">\(4950 pairs: filter`, string(dom), "no 4950-row table: the page asks for a filter")

	// The network filter narrows to the hosts that carry it; so does the search.
	dom = renderPage(t, s.brtun.API+"/ui?network=red#token="+uiViewerToken)
	all, lagging = dom.hosts()
	assert.Equal(t, []string{"h3", "h77"}, all, "red is on h3 and h77")
	assert.Equal(t, []string{"h77"}, lagging)
	assert.Equal(t, 2, dom.count(t, "hosts", "data-shown"))
	assert.Equal(t, 100, dom.count(t, "hosts", "data-total"))
	dom = renderPage(t, s.brtun.API+"/ui?q=b2#token="+uiViewerToken)
	all, _ = dom.hosts()
	assert.Equal(t, []string{"h2"}, all, "the search finds port b2's host")
	dom = renderPage(t, s.brtun.API+"/ui?q=h4#token="+uiViewerToken)
	all, _ = dom.hosts()
	want := []string{"h4"}
	for i := 40; i <= 49; i++ {
		want = append(want, fmt.Sprintf("h%d", i))
	}
	assert.ElementsMatch(t, want, all, "the search matches host names")
	screenshot(t, s.brtun.API+"/ui#token="+uiViewerToken, "ui-100.png")
}

// TestTopologyPageAtHundredHosts needs no OVS: brtun with an API token and
// a viewer token, 100 hosts registered with OVSDB addresses nobody serves,
// six networks and a port per host. The page asks for a token, shows all
// 100 hosts with the viewer token (each lagging: none has a switch), and the
// network filter shows exactly the hosts the API says carry the network.
func TestTopologyPageAtHundredHosts(t *testing.T) {
	l := &lab.Lab{Dir: t.TempDir(), ControllerIP: "127.0.0.1"} // brtun next to no lab
	viewerFile := filepath.Join(l.Dir, "viewer-token")
	require.NoError(t, os.WriteFile(viewerFile, []byte(uiViewerToken+"\n"), 0o600))
	d := startBrtun(t, l, daemonOptions{Token: uiAdminToken,
		ExtraArgs: []string{"--api-token-file", writeToken(t, l.Dir, uiAdminToken), "--api-viewer-token-file", viewerFile}})
	types := []topology.NetworkType{topology.VXLAN, topology.GRE, topology.Geneve}
	for n := 1; n <= 6; n++ {
		d.MustDo(201, "POST", "/v1/networks", map[string]any{"name": fmt.Sprintf("net%d", n), "type": types[n%3]}, nil)
	}
	carriers := map[string][]string{}
	for i := 1; i <= 100; i++ {
		host, net := fmt.Sprintf("host%03d", i), fmt.Sprintf("net%d", i%6+1)
		d.MustDo(201, "POST", "/v1/hosts", map[string]any{"name": host,
			"ovsdb": "unix:" + filepath.Join(l.Dir, fmt.Sprintf("absent-%d.sock", i)), "tunnel_ip": fmt.Sprintf("192.0.2.%d", i)}, nil)
		d.MustDo(201, "POST", "/v1/networks/"+net+"/ports", map[string]any{"name": fmt.Sprintf("vm%d", i), "host": host,
			"interface": fmt.Sprintf("tap%d", i)}, nil)
		carriers[net] = append(carriers[net], host)
	}

	dom := renderPage(t, d.API+"/ui")
	require.True(t, dom.loginShown(), "the page asks for a token")
	assert.Equal(t, 0, dom.count(t, "hosts", "data-total"))
	dom = renderPage(t, d.API+"/ui#token=wrong-token-0123456789")
	require.True(t, dom.loginShown(), "a wrong token brings the prompt back")
	assert.Contains(t, string(dom), "the API refused this token")

	dom = renderPage(t, d.API+"/ui#token="+uiViewerToken)
	require.False(t, dom.loginShown())
	all, lagging := dom.hosts()
	require.Len(t, all, 100)
	assert.Equal(t, all, lagging, "no host has a switch, so every one lags the revision")
	assert.Equal(t, 100, dom.count(t, "hosts", "data-shown"))
	assert.Regexp(t, `id="summary">100 hosts · 4950 tunnel pairs \(geneve \+ gre \+ vxlan\) · 6 networks · 100 ports`, string(dom))
	for net, hosts := range carriers {
		require.Regexp(t, `class="network" data-network="`+net+`" data-hosts="`+regexp.QuoteMeta(joinSorted(hosts))+`"`, string(dom),
			"the network view lists the hosts carrying %s", net)
	}

	dom = renderPage(t, d.API+"/ui?network=net3#token="+uiViewerToken)
	all, _ = dom.hosts()
	assert.Equal(t, carriers["net3"], all, "the filter shows exactly the hosts carrying net3")
	assert.Equal(t, len(carriers["net3"]), dom.count(t, "hosts", "data-shown"))
	assert.Less(t, len(all), 100)
	assert.Equal(t, 100, dom.count(t, "hosts", "data-total"))

	dom = renderPage(t, d.API+"/ui?q=vm42#token="+uiViewerToken)
	all, _ = dom.hosts()
	assert.Equal(t, []string{"host042"}, all, "the search finds port vm42's host")
	screenshot(t, d.API+"/ui?network=net3#token="+uiViewerToken, "ui-100-filtered.png")
}

func joinSorted(s []string) string {
	s = slices.Clone(s)
	slices.Sort(s)
	out := ""
	for i, v := range s {
		if i > 0 {
			out += " "
		}
		out += v
	}
	return out
}

// devtools drives a headless Chromium page over the DevTools protocol, for
// what --dump-dom cannot do: typing into the page and clicking.
type devtools struct {
	t    *testing.T
	conn *websocket.Conn
	id   int
}

// openPage starts Chromium on url with remote debugging on a free loopback
// port and connects to the page; a cleanup stops the browser.
func openPage(t *testing.T, url string) *devtools {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	require.NoError(t, err, "install Debian's chromium package (make test does)")
	profile := t.TempDir()
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+profile, "--window-size=1400,900", "--remote-debugging-address=127.0.0.1",
		"--remote-debugging-port=0", url)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	// Chromium writes the port it chose into its profile.
	var port string
	require.True(t, waitUntil(30*time.Second, func() bool {
		raw, err := os.ReadFile(filepath.Join(profile, "DevToolsActivePort"))
		if err != nil {
			return false
		}
		port, _, _ = strings.Cut(string(raw), "\n")
		return port != ""
	}), "chromium wrote no DevToolsActivePort")
	var wsURL string
	require.True(t, waitUntil(30*time.Second, func() bool {
		res, err := http.Get("http://127.0.0.1:" + port + "/json/list")
		if err != nil {
			return false
		}
		defer res.Body.Close()
		var targets []struct{ Type, URL, WebSocketDebuggerURL string }
		if json.NewDecoder(res.Body).Decode(&targets) != nil {
			return false
		}
		for _, tg := range targets {
			if tg.Type == "page" && strings.HasPrefix(tg.URL, url) {
				wsURL = tg.WebSocketDebuggerURL
			}
		}
		return wsURL != ""
	}), "chromium shows no page for %s", url)
	conn, _, err := websocket.DefaultDialer.Dial(wsURL, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return &devtools{t: t, conn: conn}
}

// eval runs a JavaScript expression in the page and answers its value.
func (d *devtools) eval(expr string) any {
	d.t.Helper()
	d.id++
	deadline := time.Now().Add(20 * time.Second)
	require.NoError(d.t, d.conn.SetWriteDeadline(deadline))
	require.NoError(d.t, d.conn.SetReadDeadline(deadline))
	require.NoError(d.t, d.conn.WriteJSON(map[string]any{"id": d.id, "method": "Runtime.evaluate",
		"params": map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}}))
	for {
		var msg struct {
			ID     int `json:"id"`
			Result struct {
				Result           struct{ Value any }
				ExceptionDetails any `json:"exceptionDetails"`
			}
			Error any
		}
		require.NoError(d.t, d.conn.ReadJSON(&msg))
		if msg.ID != d.id {
			continue // an event
		}
		require.Nil(d.t, msg.Error, "evaluate %s", expr)
		require.Nil(d.t, msg.Result.ExceptionDetails, "evaluate %s", expr)
		return msg.Result.Result.Value
	}
}

// waitFor polls a JavaScript condition until it is true (an exception,
// while the page is still loading, counts as false).
func (d *devtools) waitFor(cond string) {
	d.t.Helper()
	expr := "(() => { try { return Boolean(" + cond + "); } catch (e) { return false; } })()"
	require.True(d.t, waitUntil(20*time.Second, func() bool { return d.eval(expr) == true }),
		"the page never got to %s", cond)
}

// TestTopologyPageLoginPrompt types a token into the page's prompt in
// headless Chromium: a wrong token is refused, the viewer token shows the
// 100 hosts and stays in sessionStorage, the network filter set in the page
// narrows the hosts and goes into the address, and "forget token" brings the
// prompt back. No OVS: the hosts' OVSDB addresses are served by nobody.
func TestTopologyPageLoginPrompt(t *testing.T) {
	l := &lab.Lab{Dir: t.TempDir(), ControllerIP: "127.0.0.1"}
	viewerFile := filepath.Join(l.Dir, "viewer-token")
	require.NoError(t, os.WriteFile(viewerFile, []byte(uiViewerToken+"\n"), 0o600))
	d := startBrtun(t, l, daemonOptions{Token: uiAdminToken,
		ExtraArgs: []string{"--api-token-file", writeToken(t, l.Dir, uiAdminToken), "--api-viewer-token-file", viewerFile}})
	d.MustDo(201, "POST", "/v1/networks", map[string]any{"name": "blue", "type": "vxlan"}, nil)
	d.MustDo(201, "POST", "/v1/networks", map[string]any{"name": "red", "type": "gre"}, nil)
	for i := 1; i <= 100; i++ {
		host := fmt.Sprintf("host%03d", i)
		d.MustDo(201, "POST", "/v1/hosts", map[string]any{"name": host,
			"ovsdb": "unix:" + filepath.Join(l.Dir, fmt.Sprintf("absent-%d.sock", i)), "tunnel_ip": fmt.Sprintf("192.0.2.%d", i)}, nil)
		if i%10 == 0 {
			d.MustDo(201, "POST", "/v1/networks/red/ports", map[string]any{"name": fmt.Sprintf("vm%d", i), "host": host,
				"interface": fmt.Sprintf("tap%d", i)}, nil)
		}
	}

	page := openPage(t, d.API+"/ui?refresh=0.5")
	page.waitFor(`!document.getElementById("login").hidden`)
	assert.Equal(t, "0", page.eval(`document.getElementById("hosts").dataset.total`), "no data before a token")

	login := func(token string) {
		page.eval(`document.getElementById("token").value = ` + strconv.Quote(token) + `; document.getElementById("login").requestSubmit(); true`)
	}
	login("wrong-token-0123456789")
	page.waitFor(`document.getElementById("login-why").textContent === "the API refused this token"`)
	assert.Equal(t, false, page.eval(`document.getElementById("login").hidden`))

	login(uiViewerToken)
	page.waitFor(`document.getElementById("hosts").dataset.total === "100"`)
	assert.Equal(t, true, page.eval(`document.getElementById("login").hidden`))
	assert.Equal(t, uiViewerToken, page.eval(`sessionStorage.getItem("brtun-token")`), "the token stays in the tab")
	assert.Equal(t, 100.0, page.eval(`document.querySelectorAll("article.host").length`))

	page.eval(`const s = document.getElementById("network-filter"); s.value = "red"; s.dispatchEvent(new Event("input")); true`)
	page.waitFor(`document.getElementById("hosts").dataset.shown === "10"`)
	assert.Equal(t, "?refresh=0.5&network=red", page.eval(`location.search`), "the filter is kept in the address")
	assert.Equal(t, "host010 host020 host030 host040 host050 host060 host070 host080 host090 host100",
		page.eval(`[...document.querySelectorAll("article.host")].map(e => e.dataset.host).join(" ")`))
	page.eval(`const q = document.getElementById("search"); q.value = "vm70"; q.dispatchEvent(new Event("input")); true`)
	page.waitFor(`document.getElementById("hosts").dataset.shown === "1"`)
	assert.Equal(t, "host070", page.eval(`document.querySelector("article.host").dataset.host`))

	page.eval(`document.getElementById("forget").click(); true`)
	page.waitFor(`!document.getElementById("login").hidden`)
	assert.Nil(t, page.eval(`sessionStorage.getItem("brtun-token")`), "forget drops the token")
}
