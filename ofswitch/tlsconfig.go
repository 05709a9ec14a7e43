package ofswitch

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// TLSFiles names the PEM files of an ssl: endpoint, as OVS's own SSL
// settings do (ovs-vsctl set-ssl PRIVKEY CERT CACERT).
type TLSFiles struct {
	CertFile string // this side's certificate
	KeyFile  string // this side's private key
	CAFile   string // the CA that signed the peers' certificates
}

// ServerTLSConfig is the TLS config for an ssl: Listener: it presents
// brtun's certificate and accepts only switches whose certificate the CA
// signed.
func ServerTLSConfig(files TLSFiles) (*tls.Config, error) {
	cert, pool, err := files.load()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}, nil
}

// ClientTLSConfig is the TLS config for Dial to an ssl: switch endpoint. Like
// OVS, it checks that the CA signed the switch's certificate and does not
// compare host names (switch certificates rarely carry their address).
func ClientTLSConfig(files TLSFiles) (*tls.Config, error) {
	cert, pool, err := files.load()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		// Verification is done in VerifyConnection, without the host name.
		InsecureSkipVerify: true, //nolint:gosec // chain checked against the CA below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("switch presented no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
				Roots:         pool,
				Intermediates: inter,
				KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
			})
			if err != nil {
				return fmt.Errorf("switch certificate: %w", err)
			}
			return nil
		},
	}, nil
}

// load reads the key pair and the CA pool.
func (f TLSFiles) load() (tls.Certificate, *x509.CertPool, error) {
	cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("load certificate %s / key %s: %w", f.CertFile, f.KeyFile, err)
	}
	caPEM, err := os.ReadFile(f.CAFile)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("read CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return tls.Certificate{}, nil, fmt.Errorf("CA file %s holds no PEM certificate", f.CAFile)
	}
	return cert, pool, nil
}
