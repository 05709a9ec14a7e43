package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/brtun/brtun/northbound"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCLIExitCodes: each class of failure has its exit code, against the
// real API where it can answer that way.
func TestCLIExitCodes(t *testing.T) {
	url, ctrl := newCLIServer(t)
	s := "--server=" + url
	_, _, code, err := runExit(t, s, "host", "add", "h1", "--ovsdb", "tcp:198.51.100.1:6640", "--tunnel-ip", "192.0.2.1")
	require.NoError(t, err)
	assert.Equal(t, exitOK, code)
	mustRun(t, s, "net", "create", "blue", "--type", "vxlan")

	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"unknown verb", []string{"host", "delete", "h1"}, exitUsage, `unknown command "delete" for "brtun host" (did you mean "rm"?)`},
		{"unknown verb of port", []string{"port", "ls", "blue"}, exitUsage, `unknown command "ls" for "brtun port" (did you mean "list"?)`},
		{"unknown command", []string{"hots", "list"}, exitUsage, `unknown command "hots" for "brtun"`},
		{"unknown flag", []string{"host", "list", "--bogus"}, exitUsage, "unknown flag: --bogus"},
		{"missing argument", []string{"host", "show"}, exitUsage, "accepts 1 arg(s), received 0"},
		{"missing required flag", []string{"host", "add", "h2", "--ovsdb", "tcp:198.51.100.2:6640"}, exitUsage, `required flag(s) "tunnel-ip" not set`},
		{"bad -o", []string{"-o", "xml", "host", "list"}, exitUsage, `-o "xml": want table, json, yaml or name`},
		{"bad flag value the command checks", []string{"port", "add", "blue", "vm9", "--host", "h1", "--interface", "tap9", "--admin-state", "sideways"}, exitUsage, `--admin-state "sideways"`},
		{"nothing to change", []string{"host", "set", "h1"}, exitUsage, "nothing to change"},
		{"API refuses as invalid (400)", []string{"net", "create", "x", "--type", "vxlan", "--segment", "0"}, exitUsage, "HTTP 400 invalid"},
		{"bad --server", []string{"--server=ftp://x", "host", "list"}, exitUsage, `--server "ftp://x"`},
		{"not found", []string{"host", "show", "nope"}, exitNotFound, "HTTP 404 not_found"},
		{"not found on delete", []string{"port", "rm", "blue", "nope"}, exitNotFound, "HTTP 404"},
		{"conflict: exists", []string{"host", "add", "h1", "--ovsdb", "tcp:198.51.100.1:6640", "--tunnel-ip", "192.0.2.1"}, exitConflict, "HTTP 409 conflict"},
		{"no answer", []string{"--server=http://127.0.0.1:1", "host", "list"}, exitServer, "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if !strings.HasPrefix(args[0], "--server") {
				args = append([]string{s}, args...)
			}
			out, errOut, code, err := runExit(t, args...)
			require.Error(t, err)
			assert.Equal(t, tc.code, code, "stderr: %s", errOut)
			assert.Contains(t, errOut, tc.stderr)
			assert.True(t, strings.HasPrefix(errOut, "Error: "), "a text error: %s", errOut)
			assert.Empty(t, out)
			if tc.code == exitUsage {
				assert.Contains(t, errOut, "--help' for usage.")
			}
		})
	}

	// A group without a verb prints its help and succeeds.
	out, _, code, err := runExit(t, s, "host")
	require.NoError(t, err)
	assert.Equal(t, exitOK, code)
	assert.Contains(t, out, "Available Commands:")
	assert.Contains(t, out, "rm          Remove a host")

	// ?wait expiring: committed, not applied; the object is printed.
	ctrl.mu.Lock()
	ctrl.notApplied = []string{"h1/br-int"}
	ctrl.mu.Unlock()
	out, errOut, code, err := runExit(t, s, "port", "add", "blue", "vm1", "--host", "h1", "--interface", "tap0", "--wait", "100ms")
	require.Error(t, err)
	assert.Equal(t, exitNotApplied, code, errOut)
	assert.Contains(t, out, "Name:         vm1")
	assert.Contains(t, mustRun(t, s, "port", "list", "blue"), "vm1", "the write is committed")
	// port wait: not bound in time.
	mustRun(t, s, "port", "add", "blue", "vm2", "--host", "h1", "--interface", "tap1")
	_, errOut, code, err = runExit(t, s, "port", "wait", "blue", "vm2", "--timeout", "100ms")
	require.Error(t, err)
	assert.Equal(t, exitNotApplied, code, errOut)
	assert.Contains(t, errOut, "HTTP 504 not_bound")
}

// cannedServer answers every request with status and an API error body of
// code, or with a 200 JSON list of hosts when status is 200.
func cannedServer(t *testing.T, status int, code string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if status == http.StatusOK {
			_, _ = w.Write([]byte(`{"hosts":[]}`))
			return
		}
		_ = json.NewEncoder(w).Encode(northbound.ErrorBody{Error: northbound.ErrorDetail{Code: code, Message: "canned " + code}})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestCLIExitCodesOfStatuses covers the answers the test API does not give
// on demand.
func TestCLIExitCodesOfStatuses(t *testing.T) {
	for _, tc := range []struct {
		status int
		code   string
		exit   int
	}{
		{http.StatusOK, "", exitOK}, // control
		{http.StatusUnauthorized, "unauthorized", exitError},
		{http.StatusPreconditionFailed, "precondition_failed", exitConflict},
		{http.StatusRequestTimeout, "request_timeout", exitServer},
		{http.StatusInternalServerError, "internal", exitServer},
		{http.StatusServiceUnavailable, "no_space", exitServer},
		{http.StatusGatewayTimeout, "not_applied", exitNotApplied},
		{http.StatusGatewayTimeout, "gateway_timeout", exitServer}, // a proxy's, not brtun's wait
	} {
		t.Run(fmt.Sprintf("%d %s", tc.status, tc.code), func(t *testing.T) {
			_, errOut, code, _ := runExit(t, "--server="+cannedServer(t, tc.status, tc.code), "host", "list")
			assert.Equal(t, tc.exit, code, errOut)
		})
	}
}

// TestCLIErrorsAsJSON: under -o json (or BRTUN_OUTPUT=json) errors are a
// JSON object on stderr; -o yaml gives the same as YAML.
func TestCLIErrorsAsJSON(t *testing.T) {
	url, ctrl := newCLIServer(t)
	s := "--server=" + url
	decode := func(t *testing.T, errOut string) errorJSON {
		t.Helper()
		var e errorJSON
		require.NoError(t, json.Unmarshal([]byte(errOut), &e), "stderr is JSON: %s", errOut)
		return e
	}

	_, errOut, code, _ := runExit(t, s, "-o", "json", "host", "show", "nope")
	assert.Equal(t, exitNotFound, code)
	e := decode(t, errOut)
	assert.Equal(t, "not_found", e.Error.Code)
	assert.Equal(t, `host "nope" does not exist`, e.Error.Message)
	assert.Equal(t, http.StatusNotFound, e.Error.HTTPStatus)
	assert.Equal(t, exitNotFound, e.ExitCode)

	_, errOut, code, _ = runExit(t, s, "-o", "json", "net", "create", "x", "--type", "vxlan", "--segment", "0")
	assert.Equal(t, exitUsage, code)
	e = decode(t, errOut)
	assert.Equal(t, "invalid", e.Error.Code)
	assert.Equal(t, "segment_id", e.Error.Field)

	// Errors of the command line, and errors without an answer.
	_, errOut, code, _ = runExit(t, s, "-o", "json", "host", "delete", "h1")
	assert.Equal(t, exitUsage, code)
	e = decode(t, errOut)
	assert.Equal(t, "usage", e.Error.Code)
	assert.Contains(t, e.Error.Message, `unknown command "delete"`)
	assert.Equal(t, exitUsage, e.ExitCode)
	_, errOut, _, _ = runExit(t, "--server=http://127.0.0.1:1", "-o", "json", "host", "list")
	e = decode(t, errOut)
	assert.Equal(t, "unreachable", e.Error.Code)
	assert.Equal(t, exitServer, e.ExitCode)

	// Committed but not applied: the object on stdout, the error on stderr.
	mustRun(t, s, "host", "add", "h1", "--ovsdb", "tcp:198.51.100.1:6640", "--tunnel-ip", "192.0.2.1")
	mustRun(t, s, "net", "create", "blue", "--type", "vxlan")
	ctrl.mu.Lock()
	ctrl.notApplied = []string{"h1/br-int"}
	ctrl.mu.Unlock()
	out, errOut, code, _ := runExit(t, s, "-o", "json", "port", "add", "blue", "vm1", "--host", "h1", "--interface", "tap0", "--wait", "100ms")
	assert.Equal(t, exitNotApplied, code)
	var p northbound.PortView
	require.NoError(t, json.Unmarshal([]byte(out), &p))
	assert.Equal(t, "vm1", p.Name)
	e = decode(t, errOut)
	assert.Equal(t, "not_applied", e.Error.Code)
	assert.Equal(t, []string{"h1/br-int"}, e.Error.NotApplied)
	assert.Equal(t, http.StatusGatewayTimeout, e.Error.HTTPStatus)

	// BRTUN_OUTPUT counts even for an error found before it is applied.
	t.Setenv("BRTUN_OUTPUT", "json")
	_, errOut, code, _ = runExit(t, s, "host", "list", "--bogus")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, decode(t, errOut).Error.Message, "unknown flag: --bogus")

	// YAML.
	_, errOut, _, _ = runExit(t, s, "-o", "yaml", "host", "show", "nope")
	assert.Contains(t, errOut, "error:\n  code: not_found\n  http_status: 404\n")
	assert.Contains(t, errOut, "exit_code: 3\n")

	// Control: -o table prints text.
	_, errOut, _, _ = runExit(t, s, "-o", "table", "host", "show", "nope")
	assert.Equal(t, "Error: host \"nope\" does not exist (HTTP 404 not_found)\n", errOut)
}

func TestCLIOutputYAMLAndName(t *testing.T) {
	url, _ := newCLIServer(t)
	s := "--server=" + url
	mustRun(t, s, "host", "add", "h1", "--ovsdb", "tcp:198.51.100.1:6640", "--tunnel-ip", "192.0.2.1")
	mustRun(t, s, "host", "add", "h2", "--ovsdb", "tcp:198.51.100.2:6640", "--tunnel-ip", "192.0.2.2")

	out := mustRun(t, s, "-o", "yaml", "host", "show", "h1")
	assert.Contains(t, out, "\nname: h1\n")
	assert.Contains(t, out, "\ntunnel_ip: 192.0.2.1\n")
	assert.NotContains(t, out, "{", "YAML, not JSON")
	out = mustRun(t, s, "-o", "yaml", "host", "list")
	assert.True(t, strings.HasPrefix(out, "hosts:\n- "), out)

	assert.Equal(t, "h1\nh2\n", mustRun(t, s, "-o", "name", "host", "list"))
	assert.Equal(t, "h1\n", mustRun(t, s, "-o", "name", "host", "show", "h1"), "host show -o name: the host only")
	assert.Equal(t, "blue\n", mustRun(t, s, "-o", "name", "net", "create", "blue", "--type", "vxlan"))
	mustRun(t, s, "net", "create", "red", "--type", "gre")
	assert.Equal(t, "blue\nred\n", mustRun(t, s, "-o", "name", "net", "list"))
	assert.Equal(t, "blue/vm1\n", mustRun(t, s, "-o", "name", "port", "add", "blue", "vm1", "--host", "h1", "--interface", "tap0"))
	mustRun(t, s, "port", "add", "red", "vm2", "--host", "h2", "--interface", "tap1")
	assert.Equal(t, "blue/vm1\n", mustRun(t, s, "-o", "name", "port", "list", "blue"))
	assert.Equal(t, "blue/vm1\nred/vm2\n", mustRun(t, s, "-o", "name", "port", "list"))
	out = mustRun(t, s, "-o", "yaml", "port", "show", "red", "vm2")
	assert.Contains(t, out, "\nnetwork: red\n")
	mustRun(t, s, "subnet", "create", "blue", "v4", "--cidr", "198.18.0.0/24")
	assert.Equal(t, "blue/v4\n", mustRun(t, s, "-o", "name", "subnet", "list", "blue"))
	assert.Equal(t, "red/vm2\n", mustRun(t, s, "-o", "name", "port", "rm", "red", "vm2"))
	assert.Empty(t, mustRun(t, s, "-o", "yaml", "port", "rm", "blue", "vm1"))

	// Flows have no names.
	out, errOut, code, err := runExit(t, s, "-o", "name", "flows", "h1")
	require.Error(t, err)
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "-o name: these objects have no names")
	assert.Empty(t, out)
	assert.Contains(t, mustRun(t, s, "-o", "yaml", "flows", "h1"), "owner: pipeline:br-tun")
}

func TestCLIVersion(t *testing.T) {
	out := mustRun(t, "version")
	assert.Regexp(t, `^brtun \S+ \(go1\.\d+\S*, \w+/\w+\)\n$`, out)
	assert.Equal(t, out, mustRun(t, "--version"))
	var v versionInfo
	require.NoError(t, json.Unmarshal([]byte(mustRun(t, "version", "-o", "json")), &v))
	assert.Equal(t, buildVersion(), v.Version)
	assert.True(t, strings.HasPrefix(v.GoVersion, "go1."), v.GoVersion)
	assert.Contains(t, mustRun(t, "version", "-o", "yaml"), "version: "+buildVersion()+"\n")
}

// TestCLITimeout: --timeout bounds the wait for an answer, on top of --wait.
func TestCLITimeout(t *testing.T) {
	const delay = 600 * time.Millisecond
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodDelete {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		_, _ = w.Write([]byte(`{"hosts":[]}`))
	}))
	t.Cleanup(srv.Close)
	s := "--server=" + srv.URL

	start := time.Now()
	_, errOut, code, err := runExit(t, s, "--timeout", "100ms", "host", "list")
	require.Error(t, err)
	assert.Equal(t, exitServer, code, errOut)
	assert.Contains(t, errOut, "Client.Timeout exceeded")
	assert.Less(t, time.Since(start), delay, "gave up at --timeout")

	mustRun(t, s, "--timeout", "5s", "host", "list") // control
	mustRun(t, s, "--timeout", "0", "host", "list")  // no limit
	// A write with --wait may take --timeout plus --wait.
	assert.Equal(t, "deleted host h1\n", mustRun(t, s, "--timeout", "100ms", "host", "rm", "h1", "--wait", "2s"))

	t.Setenv("BRTUN_TIMEOUT", "100ms")
	_, _, code, _ = runExit(t, s, "host", "list")
	assert.Equal(t, exitServer, code, "BRTUN_TIMEOUT is read")

	_, _, code, _ = runExit(t, s, "--timeout", "-1s", "host", "list")
	assert.Equal(t, exitUsage, code)
}

func TestCLIPortIPLists(t *testing.T) {
	url, _ := newCLIServer(t)
	s := "--server=" + url
	mustRun(t, s, "host", "add", "h1", "--ovsdb", "tcp:198.51.100.1:6640", "--tunnel-ip", "192.0.2.1")
	mustRun(t, s, "net", "create", "blue", "--type", "vxlan")

	out := mustRun(t, s, "port", "add", "blue", "vm1", "--host", "h1", "--interface", "tap0",
		"--ip", "198.18.0.1,2001:db8:100::1", "--ip", "198.18.0.2")
	assert.Contains(t, out, "IPs:          198.18.0.1, 2001:db8:100::1, 198.18.0.2", "a comma list and a repeat")

	out = mustRun(t, s, "port", "set", "blue", "vm1", "--ip", "198.18.0.3, 198.18.0.4")
	assert.Contains(t, out, "IPs:          198.18.0.3, 198.18.0.4")
	out = mustRun(t, s, "port", "set", "blue", "vm1", "--description", "web")
	assert.Contains(t, out, "IPs:          198.18.0.3, 198.18.0.4", "set without --ip keeps them")

	out = mustRun(t, s, "port", "set", "blue", "vm1", "--ip", "")
	assert.Contains(t, out, "IPs:          -", "--ip '' clears them")
	var p northbound.PortView
	require.NoError(t, json.Unmarshal([]byte(mustRun(t, s, "-o", "json", "port", "show", "blue", "vm1")), &p))
	assert.Empty(t, p.IPs)
	assert.Equal(t, "web", p.Description)
}

// TestServeTakesNoClientFlags: serve --help shows serve's flags only, and
// serve refuses the client's.
func TestServeTakesNoClientFlags(t *testing.T) {
	out := mustRun(t, "serve", "--help")
	assert.Contains(t, out, "--api-listen")
	assert.Contains(t, out, "--data-dir")
	for _, f := range []string{"--server", "--output", "--token-file", "--ca-file", "--timeout", "Global Flags"} {
		assert.NotContains(t, out, f)
	}

	root := mustRun(t, "--help")
	for _, f := range []string{"--server", "--output", "--token-file", "--ca-file", "--timeout", "--version", "Exit codes:"} {
		assert.Contains(t, root, f)
	}
	assert.Contains(t, mustRun(t, "host", "list", "--help"), "--server", "client commands show the client flags")

	_, errOut, code, err := runExit(t, "serve", "--server", "http://127.0.0.1:1")
	require.Error(t, err)
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "--server is a flag of the client commands; brtun serve does not take it")
}

func TestCLICompletion(t *testing.T) {
	for shell, marker := range map[string]string{
		"bash": "__start_brtun",
		"zsh":  "#compdef brtun",
		"fish": "complete -c brtun",
	} {
		out := mustRun(t, "completion", shell)
		assert.Contains(t, out, marker, shell)
	}
	out := mustRun(t, "__complete", "-o", "")
	for _, f := range []string{"table", "json", "yaml", "name"} {
		assert.Contains(t, out, f+"\n")
	}
	out = mustRun(t, "__complete", "port", "")
	assert.Contains(t, out, "wait\t")
	_, _, code, _ := runExit(t, "completion", "tcsh")
	assert.Equal(t, exitUsage, code)
}

// TestExitCodesDocumented: docs/operations.md's table and `brtun --help`
// list the same exit codes.
func TestExitCodesDocumented(t *testing.T) {
	raw, err := os.ReadFile("../../docs/operations.md")
	require.NoError(t, err)
	docCodes := regexp.MustCompile(`(?m)^  \| (\d) \| `).FindAllStringSubmatch(string(raw), -1)
	helpCodes := regexp.MustCompile(`(?m)^  (\d)  `).FindAllStringSubmatch(exitCodesHelp, -1)
	var doc, help []string
	for _, m := range docCodes {
		doc = append(doc, m[1])
	}
	for _, m := range helpCodes {
		help = append(help, m[1])
	}
	want := []string{}
	for _, c := range []int{exitOK, exitError, exitUsage, exitNotFound, exitConflict, exitServer, exitNotApplied} {
		want = append(want, strconv.Itoa(c))
	}
	assert.Equal(t, want, doc, "docs/operations.md")
	assert.Equal(t, want, help, "brtun --help")
	assert.Contains(t, mustRun(t, "--help"), exitCodesHelp)
}

// TestCLICompletesNames: the shell completes hosts, networks, ports and
// subnets from the server.
func TestCLICompletesNames(t *testing.T) {
	url, _ := newCLIServer(t)
	s := "--server=" + url
	mustRun(t, s, "host", "add", "h1", "--ovsdb", "tcp:198.51.100.1:6640", "--tunnel-ip", "192.0.2.1")
	mustRun(t, s, "host", "add", "h2", "--ovsdb", "tcp:198.51.100.2:6640", "--tunnel-ip", "192.0.2.2")
	mustRun(t, s, "net", "create", "blue", "--type", "vxlan")
	mustRun(t, s, "port", "add", "blue", "vm1", "--host", "h1", "--interface", "tap0")
	mustRun(t, s, "subnet", "create", "blue", "v4", "--cidr", "198.18.0.0/24")

	complete := func(args ...string) []string {
		t.Helper()
		out := mustRun(t, append([]string{"__complete", s}, args...)...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		return lines[:len(lines)-1] // the last line is the directive
	}
	assert.Equal(t, []string{"h1", "h2"}, complete("host", "show", ""))
	assert.Equal(t, []string{"h1", "h2"}, complete("flows", ""))
	assert.Equal(t, []string{"blue"}, complete("net", "rm", ""))
	assert.Equal(t, []string{"blue"}, complete("port", "show", ""))
	assert.Equal(t, []string{"vm1"}, complete("port", "set", "blue", ""))
	assert.Equal(t, []string{"v4"}, complete("subnet", "show", "blue", ""))
	assert.Equal(t, []string{"blue"}, complete("trace", ""))
	assert.Equal(t, []string{"vm1"}, complete("trace", "blue", ""), "PORT completes to the network's ports")
	assert.Equal(t, []string{"h1", "h2"}, complete("port", "add", "blue", "vm2", "--host", ""))
	// A new object's name is not completed (cobra offers the required flags).
	assert.NotContains(t, complete("port", "add", "blue", ""), "vm1")
	assert.NotContains(t, complete("host", "add", ""), "h1")
	assert.Empty(t, complete("host", "show", "h1", ""), "one argument only")

	t.Setenv("BRTUN_SERVER", url)
	out := mustRun(t, "__complete", "host", "rm", "")
	assert.Contains(t, out, "h1\nh2\n", "BRTUN_SERVER is read")
}
