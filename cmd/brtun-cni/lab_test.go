//go:build integration

package main

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/testbed"
	"github.com/brtun/brtun/testbed/lab"
)

// apiToken is the API token of the lab's brtun; the plugin reads it from
// its token_file.
const apiToken = "cni-lab-token-0123456789"

// cniLab is a lab whose hosts run brtun-cni against a real brtun: network
// blue (VXLAN) with subnet 198.18.0.0/24, and the plugin's binaries.
type cniLab struct {
	t         *testing.T
	lab       *lab.Lab
	brtun     *testbed.Brtun
	api       string // http://198.51.100.254:PORT, reachable from every host's namespace
	bin       string // CNI_PATH: brtun-cni (and cnitool)
	tokenFile string
}

func newCNILab(t *testing.T, hosts int) *cniLab {
	t.Helper()
	l := lab.New(t, lab.Options{Hosts: hosts})
	c := &cniLab{t: t, lab: l, bin: filepath.Join(l.Dir, "cni-bin"), tokenFile: filepath.Join(l.Dir, "token")}
	require.NoError(t, os.MkdirAll(c.bin, 0o755))
	require.NoError(t, os.WriteFile(c.tokenFile, []byte(apiToken+"\n"), 0o600))
	goBuild(t, filepath.Join(c.bin, "brtun-cni"), "github.com/brtun/brtun/cmd/brtun-cni")

	apiPort, ofPort := testbed.FreePort(t, l.ControllerIP), testbed.FreePort(t, l.ControllerIP)
	of := fmt.Sprintf("tcp:%s:%d", l.ControllerIP, ofPort)
	c.api = fmt.Sprintf("http://%s:%d", l.ControllerIP, apiPort)
	c.brtun = testbed.StartBrtun(t, testbed.BrtunOptions{
		Args: []string{
			"--api-listen", fmt.Sprintf("%s:%d", l.ControllerIP, apiPort),
			"--api-token-file", c.tokenFile, "--api-read-open",
			"--openflow-listen", of, "--openflow-advertise", of,
			"--data-dir", filepath.Join(l.Dir, "brtun-data"), "--log-level", "debug",
		},
		API: c.api, LogPath: filepath.Join(l.Dir, "brtun.log"),
	})
	for _, h := range l.Hosts {
		c.do(201, "POST", "/v1/hosts", map[string]any{"name": h.Name, "ovsdb": h.OVSDB, "tunnel_ip": h.TunnelIP, "datapath_type": h.DatapathType}, nil)
	}
	c.do(201, "POST", "/v1/networks", map[string]any{"name": "blue", "type": "vxlan", "segment_id": 5001}, nil)
	c.do(201, "POST", "/v1/networks/blue/subnets", map[string]any{"name": "v4", "cidr": "198.18.0.0/24", "dns_servers": []string{"198.18.0.53"}}, nil)
	return c
}

// goBuild builds a package of this module (or one it requires) into out.
func goBuild(t *testing.T, out, pkg string) {
	t.Helper()
	if b, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v: %s", pkg, err, b)
	}
}

// do sends a request to brtun and checks the answer's status; out (when not
// nil) receives the decoded answer.
func (c *cniLab) do(status int, method, path string, body, out any) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		require.NoError(c.t, err)
		rd = bytes.NewReader(data)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.api+path, rd)
	require.NoError(c.t, err)
	req.Header.Set("Authorization", "Bearer "+apiToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	require.Equal(c.t, status, resp.StatusCode, "%s %s: %s", method, path, data)
	if out != nil {
		require.NoError(c.t, json.Unmarshal(data, out))
	}
}

// cniPorts lists brtun-cni's ports on a host.
func (c *cniLab) cniPorts(host string) []port {
	c.t.Helper()
	var l portList
	c.do(200, "GET", "/v1/ports?tags=brtun-cni&host="+host, nil, &l)
	return l.Ports
}

// vmPort adds a VM on host h and registers it as a port of blue.
func (c *cniLab) vmPort(h *lab.Host, name, mac, ip string) *lab.VM {
	c.t.Helper()
	vm := c.lab.AddVM(c.t, h, lab.VMOptions{Name: name, MAC: mac, CIDR: ip + "/24", MTU: 1450, Quiet: true})
	c.do(201, "POST", "/v1/networks/blue/ports", map[string]any{
		"name": name, "host": h.Name, "interface": vm.HostIface, "mac": mac, "ips": []string{ip},
	}, nil)
	c.do(200, "GET", "/v1/networks/blue/ports/"+name+"?wait=30s", nil, nil)
	return vm
}

// netConf is the plugin's configuration for network blue on host h.
func (c *cniLab) netConf(h *lab.Host) map[string]any {
	return map[string]any{"type": "brtun-cni", "server": c.api, "network": "blue", "host": h.Name, "token_file": c.tokenFile}
}

// writeConflist writes a conflist named blue for host h into dir.
func (c *cniLab) writeConflist(dir string, h *lab.Host, version string) string {
	c.t.Helper()
	require.NoError(c.t, os.MkdirAll(dir, 0o755))
	data, err := json.MarshalIndent(map[string]any{"cniVersion": version, "name": "blue", "plugins": []any{c.netConf(h)}}, "", "  ")
	require.NoError(c.t, err)
	path := filepath.Join(dir, "blue.conflist")
	require.NoError(c.t, os.WriteFile(path, data, 0o644))
	return path
}

// container is a network namespace standing for a container.
type container struct {
	Netns string // name under /run/netns
	Path  string // /run/netns/NAME
}

func (c *cniLab) container(name string) *container {
	c.t.Helper()
	ctr := &container{Netns: c.lab.Prefix + "c" + name}
	ctr.Path = "/run/netns/" + ctr.Netns
	testbed.MustRun(c.t, nil, "ip", "netns", "add", ctr.Netns)
	c.t.Cleanup(func() { _, _ = testbed.Run(nil, "ip", "netns", "del", ctr.Netns) })
	return ctr
}

func (ctr *container) run(args ...string) (string, error) {
	return testbed.Run(nil, "ip", append([]string{"netns", "exec", ctr.Netns}, args...)...)
}

// ping sends count echo requests and reports whether one came back.
func (ctr *container) ping(ip string, count int) (bool, string) {
	out, err := ctr.run("ping", "-c", fmt.Sprint(count), "-i", "0.2", "-W", "1", ip)
	return err == nil, out
}

// hasLink reports whether host h's namespace has a link of this name.
func hasLink(h *lab.Host, name string) bool {
	_, err := h.Exec("ip", "link", "show", "dev", name)
	return err == nil
}

// cnitool runs cnitool inside host h's namespace (where the plugin must
// run: the host end of the veth stays there, next to the host's br-int).
func (c *cniLab) cnitool(h *lab.Host, confDir string, env []string, args ...string) (string, error) {
	cmd := append([]string{"netns", "exec", h.Netns, "env", "CNI_PATH=" + c.bin, "NETCONFPATH=" + confDir}, env...)
	cmd = append(cmd, filepath.Join(c.bin, "cnitool"))
	return testbed.Run(nil, "ip", append(cmd, args...)...)
}

func parseResult(t *testing.T, out string) *current.Result {
	t.Helper()
	raw, err := current.NewResult([]byte(out[strings.Index(out, "{"):]))
	require.NoError(t, err, "cnitool add printed: %s", out)
	res, err := current.NewResultFromResult(raw)
	require.NoError(t, err)
	return res
}

// containerIP is the first IPv4 address of a result.
func containerIP(t *testing.T, res *current.Result) string {
	t.Helper()
	for _, ipc := range res.IPs {
		if ipc.Address.IP.To4() != nil {
			return ipc.Address.IP.String()
		}
	}
	t.Fatalf("no IPv4 address in the result %+v", res)
	return ""
}

// TestCnitool: cnitool (the CNI project's own runtime stand-in) adds a
// container namespace to network blue on two hosts with a 1.1.0 conflist;
// the containers take brtun's MAC, address, gateway and MTU, ping each
// other and a VM of blue on a third host; cnitool check passes; cnitool
// del removes the port from brtun and the veth from the host, twice in a
// row without error; the freed address goes to the next container.
func TestCnitool(t *testing.T) {
	c := newCNILab(t, 3)
	goBuild(t, filepath.Join(c.bin, "cnitool"), "github.com/containernetworking/cni/cnitool")
	h1, h2, h3 := c.lab.Hosts[0], c.lab.Hosts[1], c.lab.Hosts[2]
	vm := c.vmPort(h3, "vm", "02:00:00:00:0a:01", "198.18.0.100")

	type added struct {
		host *lab.Host
		ctr  *container
		conf string
		ip   string
		port port
	}
	var all []*added
	for i, h := range []*lab.Host{h1, h2} {
		a := &added{host: h, ctr: c.container(fmt.Sprint(i + 1)), conf: filepath.Join(c.lab.Dir, "net.d-"+h.Name)}
		c.writeConflist(a.conf, h, "1.1.0")
		out, err := c.cnitool(h, a.conf, nil, "add", "blue", a.ctr.Path)
		require.NoError(t, err, "cnitool add on %s", h.Name)
		res := parseResult(t, out)
		a.ip = containerIP(t, res)
		ports := c.cniPorts(h.Name)
		require.Len(t, ports, 1, "one container port on %s", h.Name)
		a.port = ports[0]
		require.True(t, strings.HasPrefix(a.port.DeviceID, "cnitool-"), "device_id is the container id: %q", a.port.DeviceID)
		require.Equal(t, portBound, a.port.Status)
		require.Equal(t, []string{a.ip}, a.port.IPs, "the address brtun allocated")
		require.True(t, hasLink(h, a.port.Interface), "the host end %s is in %s's namespace", a.port.Interface, h.Name)
		link, err := a.ctr.run("ip", "-o", "link", "show", "dev", "eth0")
		require.NoError(t, err)
		require.Contains(t, link, "link/ether "+a.port.MAC, "eth0 carries the port's MAC")
		require.Contains(t, link, "mtu 1450", "eth0 has the network's MTU")
		route, err := a.ctr.run("ip", "route", "show", "default")
		require.NoError(t, err)
		require.Contains(t, route, "via 198.18.0.1 dev eth0", "default route via the subnet's gateway")
		all = append(all, a)
	}
	require.NotEqual(t, all[0].ip, all[1].ip)

	for _, p := range []struct {
		from *added
		to   string
		what string
	}{
		{all[0], all[1].ip, "container on h1 -> container on h2"},
		{all[1], all[0].ip, "container on h2 -> container on h1"},
		{all[0], vm.IP, "container on h1 -> VM on h3"},
		{all[1], vm.IP, "container on h2 -> VM on h3"},
	} {
		ok := testbed.Poll(20*time.Second, 200*time.Millisecond, func() bool { ok, _ := p.from.ctr.ping(p.to, 1); return ok })
		_, out := p.from.ctr.ping(p.to, 1)
		require.True(t, ok, "%s: %s", p.what, out)
	}
	ok, out := vm.Ping(all[0].ip, 3)
	require.True(t, ok, "the VM reaches the container back: %s", out)

	for _, a := range all {
		out, err := c.cnitool(a.host, a.conf, nil, "check", "blue", a.ctr.Path)
		require.NoError(t, err, "cnitool check on %s: %s", a.host.Name, out)
	}

	a := all[0]
	for i := 1; i <= 2; i++ {
		out, err := c.cnitool(a.host, a.conf, nil, "del", "blue", a.ctr.Path)
		require.NoError(t, err, "cnitool del #%d: %s", i, out)
		require.Empty(t, c.cniPorts(a.host.Name), "the port is gone from brtun after del #%d", i)
		require.False(t, hasLink(a.host, a.port.Interface), "the veth is gone from %s after del #%d", a.host.Name, i)
	}
	_, err := a.ctr.run("ip", "link", "show", "dev", "eth0")
	require.Error(t, err, "the container's eth0 went with the veth")
	ok, out = all[1].ctr.ping(vm.IP, 2)
	require.True(t, ok, "control: the other container still reaches the VM: %s", out)

	// The freed address is handed out again.
	out, err = c.cnitool(a.host, a.conf, nil, "add", "blue", a.ctr.Path)
	require.NoError(t, err)
	require.Equal(t, a.ip, containerIP(t, parseResult(t, out)), "the deleted port freed its address")

	// GC: cnitool names no valid attachment, so every brtun-cni port of
	// blue on h1 is stale; h2's is another host's and stays.
	readded := c.cniPorts(h1.Name)
	require.Len(t, readded, 1)
	out, err = c.cnitool(h1, a.conf, nil, "gc", "blue", a.ctr.Path)
	require.NoError(t, err, "cnitool gc: %s", out)
	require.Empty(t, c.cniPorts(h1.Name), "GC removed h1's stale port")
	require.False(t, hasLink(h1, readded[0].Interface), "GC removed its veth")
	require.Len(t, c.cniPorts(h2.Name), 1, "control: h2's port is not h1's to collect")

	// STATUS follows brtun: available while it runs, not while it is down
	// (error 50; cnitool shows the message).
	out, err = c.cnitool(h1, a.conf, nil, "status", "blue", a.ctr.Path)
	require.NoError(t, err, "cnitool status while brtun runs: %s", out)
	c.brtun.Kill()
	out, err = c.cnitool(h1, a.conf, nil, "status", "blue", a.ctr.Path)
	require.Error(t, err, "cnitool status while brtun is down")
	require.Contains(t, out, `brtun-cni: brtun at `+c.api+` cannot serve network "blue"`, "STATUS says why")
	c.brtun.Start(t)
	out, err = c.cnitool(h1, a.conf, nil, "status", "blue", a.ctr.Path)
	require.NoError(t, err, "cnitool status once brtun is back: %s", out)

	for _, a := range all {
		_, err := c.cnitool(a.host, a.conf, nil, "del", "blue", a.ctr.Path)
		require.NoError(t, err)
	}
	require.Empty(t, c.cniPorts(h1.Name))
	require.Empty(t, c.cniPorts(h2.Name))
}

// TestKilledAdd: a plugin killed in the middle of ADD (paused by its test
// hook once the veth, then also the port, then also the address exist,
// and SIGKILLed there) leaves, after the runtime's DEL, no port, no veth
// and no address; a new ADD then gets the same address.
func TestKilledAdd(t *testing.T) {
	c := newCNILab(t, 1)
	goBuild(t, filepath.Join(c.bin, "cnitool"), "github.com/containernetworking/cni/cnitool")
	h1 := c.lab.Hosts[0]
	conf := filepath.Join(c.lab.Dir, "net.d")
	c.writeConflist(conf, h1, "1.0.0")
	for i, step := range []string{stepVeth, stepPort, stepConfigured} {
		t.Run(step, func(t *testing.T) {
			ctr := c.container(fmt.Sprintf("k%d", i))
			// cnitool's container id: "cnitool-" and 20 hex digits of SHA-512(netns path).
			sum := sha512.Sum512([]byte(ctr.Path))
			att := newAttachment(fmt.Sprintf("cnitool-%x", sum[:10]), "eth0")
			pidFile := filepath.Join(c.lab.Dir, "plugin-"+step+".pid")

			var out bytes.Buffer
			add := exec.Command("ip", "netns", "exec", h1.Netns, "env", "CNI_PATH="+c.bin, "NETCONFPATH="+conf,
				envPauseAt+"="+step, envPauseFile+"="+pidFile, filepath.Join(c.bin, "cnitool"), "add", "blue", ctr.Path)
			add.Stdout, add.Stderr = &out, &out
			proc := testbed.StartProc(t, add, "")
			t.Cleanup(proc.Kill)
			var pid int
			require.True(t, testbed.Poll(60*time.Second, 100*time.Millisecond, func() bool {
				data, err := os.ReadFile(pidFile)
				if err != nil {
					return false
				}
				_, err = fmt.Sscan(string(data), &pid)
				return err == nil
			}), "the plugin did not reach step %s: %s", step, out.String())

			// Positive control: what the half-done ADD made so far.
			require.True(t, hasLink(h1, att.HostIf), "the veth exists at step %s", step)
			var ip string
			if step != stepVeth {
				ports := c.cniPorts(h1.Name)
				require.Len(t, ports, 1, "the port exists at step %s", step)
				require.Equal(t, att.Port, ports[0].Name)
				ip = ports[0].IPs[0]
			}
			if step == stepConfigured {
				addr, err := ctr.run("ip", "-o", "-4", "addr", "show", "dev", "eth0")
				require.NoError(t, err)
				require.Contains(t, addr, ip+"/24", "the address is configured")
			}

			require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
			select {
			case <-proc.Done():
			case <-time.After(30 * time.Second):
				t.Fatal("cnitool add did not end after its plugin was killed")
			}
			require.NotZero(t, proc.ExitCode(), "ADD failed: %s", out.String())
			require.True(t, hasLink(h1, att.HostIf), "the kill itself cleaned nothing: the veth is there before DEL")

			delOut, err := c.cnitool(h1, conf, nil, "del", "blue", ctr.Path)
			require.NoError(t, err, "cnitool del: %s", delOut)
			require.Empty(t, c.cniPorts(h1.Name), "no port after DEL")
			require.False(t, hasLink(h1, att.HostIf), "no veth after DEL")
			addrs, err := ctr.run("ip", "-o", "addr", "show")
			require.NoError(t, err)
			require.NotContains(t, addrs, "198.18.", "no address left in the container")
			require.NotContains(t, addrs, "eth0", "no eth0 left in the container")

			addOut, err := c.cnitool(h1, conf, nil, "add", "blue", ctr.Path)
			require.NoError(t, err, "a new ADD works: %s", addOut)
			if ip != "" {
				require.Equal(t, ip, containerIP(t, parseResult(t, addOut)), "the killed ADD's address was freed")
			}
			_, err = c.cnitool(h1, conf, nil, "del", "blue", ctr.Path)
			require.NoError(t, err)
		})
	}
}

// podman runs Debian's podman isolated from the machine's own: its own
// storage, run and temp directories and containers.conf (runc, the CNI
// backend with the lab's plugin and conflist directories), inside host h's
// network namespace (nsenter, not `ip netns exec`, whose private mount
// namespace would hide podman's /run/netns entries).
type podman struct {
	t    *testing.T
	host *lab.Host
	dir  string
	conf string // containers.conf
}

func (c *cniLab) podman(h *lab.Host, netDir string) *podman {
	t := c.t
	t.Helper()
	for _, bin := range []string{"podman", "runc", "nsenter"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not found: install podman and runc (`make deps` does)", bin)
		}
	}
	p := &podman{t: t, host: h, dir: filepath.Join(c.lab.Dir, "podman")}
	for _, d := range []string{"root", "run", "tmp"} {
		require.NoError(t, os.MkdirAll(filepath.Join(p.dir, d), 0o755))
	}
	p.conf = filepath.Join(p.dir, "containers.conf")
	conf := fmt.Sprintf(`[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = %q

[network]
network_backend = "cni"
cni_plugin_dirs = [%q]
network_config_dir = %q
`, filepath.Join(p.dir, "events.log"), c.bin, netDir)
	require.NoError(t, os.WriteFile(p.conf, []byte(conf), 0o644))
	return p
}

// run runs a podman command in the host's network namespace.
func (p *podman) run(args ...string) (string, error) {
	base := []string{"--net=/run/netns/" + p.host.Netns, "podman",
		"--root", filepath.Join(p.dir, "root"), "--runroot", filepath.Join(p.dir, "run"), "--tmpdir", filepath.Join(p.dir, "tmp"),
		"--storage-driver", "vfs"}
	env := append(os.Environ(), "CONTAINERS_CONF="+p.conf)
	return testbed.Run(env, "nsenter", append(base, args...)...)
}

// importBusybox makes image localhost/NAME from Debian's static busybox,
// no registry involved.
func (p *podman) importBusybox(name string) {
	t := p.t
	t.Helper()
	rootfs := filepath.Join(p.dir, "rootfs")
	require.NoError(t, os.MkdirAll(filepath.Join(rootfs, "bin"), 0o755))
	testbed.MustRun(t, nil, "cp", "/bin/busybox", filepath.Join(rootfs, "bin", "busybox"))
	testbed.MustRun(t, nil, "chroot", rootfs, "/bin/busybox", "--install", "-s")
	tar := filepath.Join(p.dir, "rootfs.tar")
	testbed.MustRun(t, nil, "tar", "-C", rootfs, "-cf", tar, ".")
	out, err := p.run("import", tar, "localhost/"+name)
	require.NoError(t, err, "podman import: %s", out)
}

// TestPodman: podman, configured as a host would be for brtun-cni, runs a
// container with --network naming a brtun conflist (cniVersion 0.4.0, as
// `podman network create` writes); the container gets brtun's MAC and
// address, pings a VM on another host, and `podman rm` removes its port.
func TestPodman(t *testing.T) {
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Fatalf("/bin/busybox not found: install busybox-static (`make deps` does)")
	}
	c := newCNILab(t, 2)
	h1, h2 := c.lab.Hosts[0], c.lab.Hosts[1]
	vm := c.vmPort(h2, "vm", "02:00:00:00:0b:01", "198.18.0.100")
	netDir := filepath.Join(c.lab.Dir, "podman-net.d")
	c.writeConflist(netDir, h1, "0.4.0")
	p := c.podman(h1, netDir)
	p.importBusybox("bb")

	name := c.lab.Prefix + "ctr"
	t.Cleanup(func() { _, _ = p.run("rm", "-f", "-t", "0", name) })
	out, err := p.run("run", "-d", "--name", name, "--network", "blue", "localhost/bb", "sleep", "600")
	require.NoError(t, err, "podman run: %s", out)
	id := strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])

	ports := c.cniPorts(h1.Name)
	require.Len(t, ports, 1, "podman's container has a port on h1")
	pt := ports[0]
	require.Equal(t, id, pt.DeviceID, "device_id is podman's container id")
	require.Equal(t, portBound, pt.Status)
	require.True(t, hasLink(h1, pt.Interface), "the host end is in h1's namespace")
	link, err := p.run("exec", name, "/bin/busybox", "ip", "-o", "link", "show", "eth0")
	require.NoError(t, err, link)
	require.Contains(t, link, pt.MAC, "the container's eth0 has the port's MAC")
	addr, err := p.run("exec", name, "/bin/busybox", "ip", "-o", "-4", "addr", "show", "eth0")
	require.NoError(t, err, addr)
	require.Contains(t, addr, pt.IPs[0]+"/24")

	ok := testbed.Poll(20*time.Second, 200*time.Millisecond, func() bool {
		_, err := p.run("exec", name, "/bin/busybox", "ping", "-c", "1", "-W", "1", vm.IP)
		return err == nil
	})
	out, _ = p.run("exec", name, "/bin/busybox", "ping", "-c", "2", "-W", "1", vm.IP)
	require.True(t, ok, "the podman container on h1 pings the VM on h2: %s", out)
	ok, out = vm.Ping(pt.IPs[0], 2)
	require.True(t, ok, "the VM pings the container back: %s", out)

	out, err = p.run("rm", "-f", "-t", "0", name)
	require.NoError(t, err, "podman rm: %s", out)
	require.Empty(t, c.cniPorts(h1.Name), "podman rm removed the port")
	require.False(t, hasLink(h1, pt.Interface), "podman rm removed the veth")
	ok, out = vm.Ping(pt.IPs[0], 2)
	require.False(t, ok, "nothing answers at the container's address any more: %s", out)
	require.True(t, testbed.Poll(10*time.Second, 200*time.Millisecond, func() bool { ok, _ := vm.Ping("198.18.0.100", 1); return ok }),
		"control: the VM itself still answers")
}

// TestHostLocalIPAM: with an ipam section naming Debian's host-local, the
// container takes host-local's address (from a range inside blue's
// subnet) and brtun's port carries it, so the container reaches a VM on
// another host; cnitool check passes; del releases host-local's
// reservation along with the port.
func TestHostLocalIPAM(t *testing.T) {
	const hostLocal = "/usr/lib/cni/host-local"
	if _, err := os.Stat(hostLocal); err != nil {
		t.Fatalf("%s not found: install containernetworking-plugins (`make deps` does)", hostLocal)
	}
	c := newCNILab(t, 2)
	goBuild(t, filepath.Join(c.bin, "cnitool"), "github.com/containernetworking/cni/cnitool")
	h1, h2 := c.lab.Hosts[0], c.lab.Hosts[1]
	vm := c.vmPort(h2, "vm", "02:00:00:00:0c:01", "198.18.0.100")

	dataDir := filepath.Join(c.lab.Dir, "host-local")
	plugin := c.netConf(h1)
	plugin["ipam"] = map[string]any{
		"type":    "host-local",
		"dataDir": dataDir,
		"ranges":  [][]map[string]string{{{"subnet": "198.18.0.0/24", "rangeStart": "198.18.0.200", "rangeEnd": "198.18.0.209", "gateway": "198.18.0.1"}}},
		"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
	}
	confDir := filepath.Join(c.lab.Dir, "net.d")
	require.NoError(t, os.MkdirAll(confDir, 0o755))
	data, err := json.Marshal(map[string]any{"cniVersion": "1.0.0", "name": "blue", "plugins": []any{plugin}})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(confDir, "blue.conflist"), data, 0o644))
	env := []string{"CNI_PATH=" + c.bin + ":" + filepath.Dir(hostLocal)}
	ctr := c.container("i")

	out, err := c.cnitool(h1, confDir, env, "add", "blue", ctr.Path)
	require.NoError(t, err, "cnitool add: %s", out)
	ip := containerIP(t, parseResult(t, out))
	require.Equal(t, "198.18.0.200", ip, "host-local's first address")
	reservation := filepath.Join(dataDir, "blue", ip)
	require.FileExists(t, reservation, "host-local holds the address")
	ports := c.cniPorts(h1.Name)
	require.Len(t, ports, 1)
	require.Equal(t, []string{ip}, ports[0].IPs, "the port carries host-local's address")
	ok := testbed.Poll(20*time.Second, 200*time.Millisecond, func() bool { ok, _ := ctr.ping(vm.IP, 1); return ok })
	require.True(t, ok, "the container on h1 reaches the VM on h2")

	out, err = c.cnitool(h1, confDir, env, "check", "blue", ctr.Path)
	require.NoError(t, err, "cnitool check: %s", out)
	out, err = c.cnitool(h1, confDir, env, "del", "blue", ctr.Path)
	require.NoError(t, err, "cnitool del: %s", out)
	require.NoFileExists(t, reservation, "DEL released host-local's address")
	require.Empty(t, c.cniPorts(h1.Name), "DEL removed the port")
	require.False(t, hasLink(h1, ports[0].Interface), "DEL removed the veth")
}
