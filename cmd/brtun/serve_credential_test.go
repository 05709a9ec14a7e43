package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Without --api-token-file, serve takes the token from the systemd
// credential api-token in $CREDENTIALS_DIRECTORY; the flag wins over it,
// and without either the API is open.
func TestAPITokenCredential(t *testing.T) {
	creds := t.TempDir()
	credToken := "credential-token-0123456789"
	require.NoError(t, os.WriteFile(filepath.Join(creds, apiTokenCredential), []byte(credToken+"\n"), 0o400))
	flagFile := writeFile(t, "token", cliTestToken)

	t.Setenv("CREDENTIALS_DIRECTORY", creds)
	s, err := securityOptions{}.load("tcp:127.0.0.1:6653")
	require.NoError(t, err)
	assert.Equal(t, credToken, s.apiToken, "the credential's token")
	assert.Equal(t, "credential api-token", s.apiTokenSource)
	s, err = securityOptions{apiReadOpen: true}.load("tcp:127.0.0.1:6653")
	require.NoError(t, err, "a credential is a token for --api-read-open")
	assert.True(t, s.apiReadOpen)

	s, err = securityOptions{apiTokenFile: flagFile}.load("tcp:127.0.0.1:6653")
	require.NoError(t, err)
	assert.Equal(t, cliTestToken, s.apiToken, "--api-token-file wins over the credential")

	t.Setenv("CREDENTIALS_DIRECTORY", t.TempDir()) // other credentials, not api-token
	s, err = securityOptions{}.load("tcp:127.0.0.1:6653")
	require.NoError(t, err)
	assert.Empty(t, s.apiToken, "no api-token credential: the API is open")

	t.Setenv("CREDENTIALS_DIRECTORY", "")
	s, err = securityOptions{}.load("tcp:127.0.0.1:6653")
	require.NoError(t, err)
	assert.Empty(t, s.apiToken)

	// A credential too short to be a token is refused like a file.
	short := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(short, apiTokenCredential), []byte("abc"), 0o400))
	t.Setenv("CREDENTIALS_DIRECTORY", short)
	_, err = securityOptions{}.load("tcp:127.0.0.1:6653")
	assert.ErrorContains(t, err, "credential api-token")
	assert.ErrorContains(t, err, "at least 16")
}
