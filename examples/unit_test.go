//go:build linux

package examples_test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/testbed"
)

// dynamicUID is a user id in systemd's DynamicUser= range (61184-65519)
// with no account: what brtun.service runs as.
const dynamicUID = 61234

// unitCredential returns the ID and source path of the unit's LoadCredential=.
func unitCredential(t *testing.T) (id, path string) {
	t.Helper()
	raw, err := os.ReadFile("brtun.service")
	require.NoError(t, err)
	unit := string(raw)
	assert.Contains(t, unit, "\nDynamicUser=yes\n")
	m := regexp.MustCompile(`(?m)^LoadCredential=([^:\s]+):(\S+)$`).FindStringSubmatch(unit)
	require.NotNil(t, m, "brtun.service passes the API token with LoadCredential=ID:PATH")
	return m[1], m[2]
}

// TestUnitServesWithToken runs `brtun serve` as brtun.service does, without
// systemd (PID 1 is not systemd here): as an unprivileged user of its own,
// with the settings of brtun.env, its state in a directory only that user
// owns (StateDirectory=) and the token from LoadCredential=, that is a
// read-only copy in $CREDENTIALS_DIRECTORY that user may read, while the
// token's source stays root's with mode 0600. Requests with the token
// succeed and requests without get 401. The setup the docs used to give
// (BRTUN_API_TOKEN_FILE naming the root-owned file) fails at start.
func TestUnitServesWithToken(t *testing.T) {
	credID, credSource := unitCredential(t)
	assert.Equal(t, "api-token", credID, "the credential `brtun serve` looks for")
	assert.Equal(t, "/etc/brtun/api-token", credSource)
	env := readEnvFile(t, "brtun.env")
	assert.NotContains(t, env, "BRTUN_API_TOKEN_FILE", "brtun.env leaves the token to the credential")
	bin := testbed.BrtunBinary(t)

	// A root like the machine's: readable to all, with root's token file,
	// the service's state directory and its credentials directory.
	root, err := os.MkdirTemp("", "brtun-unit-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(root) })
	require.NoError(t, os.Chmod(root, 0o755))
	token := "unit-test-token-0123456789abcdef"
	rootToken := filepath.Join(root, "api-token")
	require.NoError(t, os.WriteFile(rootToken, []byte(token+"\n"), 0o600))
	mkdirFor := func(name string, mode os.FileMode) string {
		dir := filepath.Join(root, name)
		require.NoError(t, os.MkdirAll(dir, 0o755))
		require.NoError(t, os.Chown(dir, dynamicUID, dynamicUID))
		require.NoError(t, os.Chmod(dir, mode))
		return dir
	}
	state := mkdirFor("state", 0o700) // StateDirectoryMode=0700
	creds := mkdirFor("credentials", 0o755)
	credFile := filepath.Join(creds, credID)
	require.NoError(t, os.WriteFile(credFile, []byte(token+"\n"), 0o400))
	require.NoError(t, os.Chown(credFile, dynamicUID, dynamicUID))
	require.NoError(t, os.Chmod(creds, 0o500))

	apiAddr := "127.0.0.1:" + strconv.Itoa(testbed.FreePort(t, "127.0.0.1"))
	serveEnv := []string{}
	for k, v := range env {
		serveEnv = append(serveEnv, k+"="+v)
	}
	serveEnv = append(serveEnv, // later entries win
		"BRTUN_API_LISTEN="+apiAddr,
		"BRTUN_OPENFLOW_LISTEN=tcp:127.0.0.1:"+strconv.Itoa(testbed.FreePort(t, "127.0.0.1")),
		"BRTUN_OPENFLOW_ADVERTISE=",
		"BRTUN_DATA_DIR="+state,
	)
	asService := &syscall.Credential{Uid: dynamicUID, Gid: dynamicUID}

	// The old way: the daemon's user cannot read root's token file.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	old := exec.CommandContext(ctx, bin, "serve")
	old.Env = append(append(os.Environ(), serveEnv...), "BRTUN_API_TOKEN_FILE="+rootToken, "CREDENTIALS_DIRECTORY=")
	old.SysProcAttr = &syscall.SysProcAttr{Credential: asService}
	out, err := old.CombinedOutput()
	require.Error(t, err, "brtun serve as uid %d with a root-owned 0600 token file: %s", dynamicUID, out)
	assert.Contains(t, string(out), "permission denied")

	// The unit's way.
	b := testbed.StartBrtun(t, testbed.BrtunOptions{
		Binary:     bin,
		API:        "http://" + apiAddr,
		Env:        append(serveEnv, "CREDENTIALS_DIRECTORY="+creds),
		Credential: asService,
	})
	t.Cleanup(func() {
		if !b.Terminate(15 * time.Second) {
			t.Errorf("brtun serve did not stop within 15s of SIGTERM")
		}
	})
	status, err := os.ReadFile("/proc/" + strconv.Itoa(b.PID()) + "/status")
	require.NoError(t, err)
	assert.Regexp(t, `(?m)^Uid:\s+`+strconv.Itoa(dynamicUID)+`\s`, string(status), "brtun runs as the service's user")

	request := func(method, path, body string, withToken bool) int {
		t.Helper()
		req, err := http.NewRequest(method, b.API+path, strings.NewReader(body))
		require.NoError(t, err)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if withToken {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = res.Body.Close()
		return res.StatusCode
	}
	const net = `{"name":"blue","type":"vxlan"}`
	assert.Equal(t, http.StatusUnauthorized, request("GET", "/v1/networks", "", false), "a read without the token")
	assert.Equal(t, http.StatusUnauthorized, request("POST", "/v1/networks", net, false), "a write without the token")
	assert.Equal(t, http.StatusOK, request("GET", "/v1/networks", "", true), "a read with the token")
	assert.Equal(t, http.StatusCreated, request("POST", "/v1/networks", net, true), "a write with the token")
	assert.Equal(t, http.StatusOK, request("GET", "/v1/networks/blue", "", true), "the write was stored")
	assert.Contains(t, b.Log(), `"from":"credential api-token"`)
	_, err = os.Stat(filepath.Join(state, "brtun.db"))
	assert.NoError(t, err, "the state file is in the state directory")
}
