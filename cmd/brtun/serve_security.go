package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/brtun/brtun/northbound"
	"github.com/brtun/brtun/ofswitch"
)

// securityOptions are serve's access-control flags: the API token, TLS for
// the API, and TLS for OpenFlow and OVSDB.
type securityOptions struct {
	apiTokenFile       string
	apiViewerTokenFile string
	apiReadOpen        bool
	apiTLS             ofswitch.TLSFiles // CAFile unused: API clients are not asked for certificates
	openflowTLS        ofswitch.TLSFiles
	ovsdbTLS           ofswitch.TLSFiles
}

func (o *securityOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.apiTokenFile, "api-token-file", "", "file holding the API bearer token (default: the service credential "+apiTokenCredential+", $CREDENTIALS_DIRECTORY/"+apiTokenCredential+", when systemd passes one); without a token the API is open to anyone who reaches it")
	f.StringVar(&o.apiViewerTokenFile, "api-viewer-token-file", "", "with an API token: file holding a second bearer token that may only read (GET, HEAD; writes answer 403), e.g. for the /ui page")
	f.BoolVar(&o.apiReadOpen, "api-read-open", false, "with an API token: GET and HEAD need no token (writes and --pprof profiles still do)")
	f.StringVar(&o.apiTLS.CertFile, "api-tls-cert", "", "serve the API over HTTPS with this certificate (PEM; with --api-tls-key)")
	f.StringVar(&o.apiTLS.KeyFile, "api-tls-key", "", "private key of --api-tls-cert (PEM)")
	f.StringVar(&o.openflowTLS.CertFile, "openflow-tls-cert", "", "certificate brtun presents to switches on an ssl: --openflow-listen (PEM)")
	f.StringVar(&o.openflowTLS.KeyFile, "openflow-tls-key", "", "private key of --openflow-tls-cert (PEM)")
	f.StringVar(&o.openflowTLS.CAFile, "openflow-tls-ca", "", "CA certificate that signed the switches' certificates; others are refused (PEM)")
	f.StringVar(&o.ovsdbTLS.CertFile, "ovsdb-tls-cert", "", "certificate brtun presents to hosts registered with an ssl: OVSDB address (PEM)")
	f.StringVar(&o.ovsdbTLS.KeyFile, "ovsdb-tls-key", "", "private key of --ovsdb-tls-cert (PEM)")
	f.StringVar(&o.ovsdbTLS.CAFile, "ovsdb-tls-ca", "", "CA certificate that signed the hosts' ovsdb-server certificates (PEM)")
}

// security is what the flags load to.
type security struct {
	apiToken       string      // empty: the API is open
	apiTokenSource string      // where apiToken came from, for the log
	apiViewerToken string      // empty: no read-only token
	apiReadOpen    bool        // reads need no token
	apiTLS         *tls.Config // nil: plain HTTP
	openflowTLS    *tls.Config // nil: --openflow-listen is tcp:
	ovsdbTLS       *tls.Config // nil: hosts with an ssl: OVSDB address cannot be reached
}

// apiTokenCredential is the name of the systemd credential (LoadCredential=)
// serve takes the API token from when --api-token-file is not given.
const apiTokenCredential = "api-token"

// tokenFile is the file the API token is read from: --api-token-file, else
// the credential apiTokenCredential when the service manager passed it
// ($CREDENTIALS_DIRECTORY, see systemd.exec(5)), else "" (no token).
// getenv is os.Getenv outside tests.
func (o securityOptions) tokenFile(getenv func(string) string) (file, source string, err error) {
	if o.apiTokenFile != "" {
		return o.apiTokenFile, "--api-token-file", nil
	}
	dir := getenv("CREDENTIALS_DIRECTORY")
	if dir == "" {
		return "", "", nil
	}
	path := filepath.Join(dir, apiTokenCredential)
	switch _, err := os.Stat(path); {
	case err == nil:
		return path, "credential " + apiTokenCredential, nil
	case errors.Is(err, fs.ErrNotExist):
		return "", "", nil
	default:
		return "", "", fmt.Errorf("credential %s: %w", apiTokenCredential, err)
	}
}

// load checks the flags against each other and reads the files they name.
func (o securityOptions) load(openflowListen string) (security, error) {
	var s security
	file, source, err := o.tokenFile(os.Getenv)
	if err != nil {
		return s, err
	}
	if o.apiReadOpen && file == "" {
		return s, fmt.Errorf("--api-read-open needs an API token: --api-token-file, or the credential %s in $CREDENTIALS_DIRECTORY", apiTokenCredential)
	}
	if file != "" {
		token, err := northbound.ReadTokenFile(file)
		if err != nil {
			return s, fmt.Errorf("%s: %w", source, err)
		}
		s.apiToken, s.apiReadOpen, s.apiTokenSource = token, o.apiReadOpen, source
	}
	if o.apiViewerTokenFile != "" {
		if s.apiToken == "" {
			return s, errors.New("--api-viewer-token-file needs an API token (--api-token-file or the credential " + apiTokenCredential + ")")
		}
		token, err := northbound.ReadTokenFile(o.apiViewerTokenFile)
		if err != nil {
			return s, fmt.Errorf("--api-viewer-token-file: %w", err)
		}
		if token == s.apiToken {
			return s, errors.New("--api-viewer-token-file holds the same token as --api-token-file: a viewer token must differ")
		}
		s.apiViewerToken = token
	}

	switch {
	case o.apiTLS.CertFile != "" && o.apiTLS.KeyFile != "":
		cert, err := tls.LoadX509KeyPair(o.apiTLS.CertFile, o.apiTLS.KeyFile)
		if err != nil {
			return s, fmt.Errorf("--api-tls-cert/--api-tls-key: %w", err)
		}
		s.apiTLS = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	case o.apiTLS.CertFile != "" || o.apiTLS.KeyFile != "":
		return s, errors.New("--api-tls-cert and --api-tls-key go together")
	}

	ssl := strings.HasPrefix(openflowListen, "ssl:")
	switch n := given(o.openflowTLS); {
	case ssl && n == 3:
		cfg, err := ofswitch.ServerTLSConfig(o.openflowTLS)
		if err != nil {
			return s, fmt.Errorf("--openflow-tls-*: %w", err)
		}
		s.openflowTLS = cfg
	case ssl:
		return s, errors.New("--openflow-listen ssl: needs --openflow-tls-cert, --openflow-tls-key and --openflow-tls-ca")
	case n > 0:
		return s, fmt.Errorf("--openflow-tls-* need an ssl: --openflow-listen, got %s", openflowListen)
	}

	switch n := given(o.ovsdbTLS); n {
	case 3:
		cfg, err := ofswitch.ClientTLSConfig(o.ovsdbTLS)
		if err != nil {
			return s, fmt.Errorf("--ovsdb-tls-*: %w", err)
		}
		s.ovsdbTLS = cfg
	case 0:
	default:
		return s, errors.New("--ovsdb-tls-cert, --ovsdb-tls-key and --ovsdb-tls-ca go together")
	}
	return s, nil
}

// given counts the files of f that are set.
func given(f ofswitch.TLSFiles) int {
	n := 0
	for _, s := range []string{f.CertFile, f.KeyFile, f.CAFile} {
		if s != "" {
			n++
		}
	}
	return n
}

// warn logs what an operator should know about an insecure setting.
func (s security) warn(log *zap.Logger, apiListen string) {
	if s.apiToken == "" {
		log.Warn("the REST API is open: anyone who reaches --api-listen can read and change the network; set --api-token-file (or pass the systemd credential "+apiTokenCredential+")",
			zap.String("api", apiListen))
		return
	}
	log.Info("the REST API needs a token", zap.String("from", s.apiTokenSource), zap.Bool("reads_open", s.apiReadOpen))
	if s.apiTLS == nil && !loopback(apiListen) {
		log.Warn("the API token crosses the network in clear text; set --api-tls-cert and --api-tls-key",
			zap.String("api", apiListen))
	}
}

// loopback reports whether a listen address is on a loopback interface only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
