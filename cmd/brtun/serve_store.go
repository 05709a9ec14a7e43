package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/brtun/brtun/controller"
	"github.com/brtun/brtun/mastership"
	"github.com/brtun/brtun/northbound"
	"github.com/brtun/brtun/topology"
)

// storeOptions choose where the desired state lives: a bbolt file in
// --data-dir (one replica), or etcd (several replicas share it).
type storeOptions struct {
	kind          string // "bolt" or "etcd"
	etcdEndpoints string
	etcdPrefix    string
	etcdCert      string
	etcdKey       string
	etcdCA        string
	replicaName   string
	leaseTTL      time.Duration
	macPrefix     string // of the MACs generated for ports created without one
}

func (o *storeOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.kind, "store", "bolt", "where the desired state lives: bolt (a file in --data-dir, one replica) or etcd (--etcd-endpoints, several replicas)")
	f.StringVar(&o.etcdEndpoints, "etcd-endpoints", "", "with --store etcd: etcd client URLs, comma-separated (e.g. https://198.51.100.10:2379,https://198.51.100.11:2379)")
	f.StringVar(&o.etcdPrefix, "etcd-prefix", topology.DefaultEtcdPrefix, "with --store etcd: key prefix of brtun's state; replicas of one deployment use the same")
	f.StringVar(&o.etcdCert, "etcd-tls-cert", "", "client certificate brtun presents to etcd (PEM; with --etcd-tls-key)")
	f.StringVar(&o.etcdKey, "etcd-tls-key", "", "private key of --etcd-tls-cert (PEM)")
	f.StringVar(&o.etcdCA, "etcd-tls-ca", "", "CA certificate that signed etcd's server certificates (PEM; default: the system's CAs)")
	f.StringVar(&o.replicaName, "replica-name", "", "with --store etcd: this replica's name among the others (default HOSTNAME@API-LISTEN)")
	f.StringVar(&o.macPrefix, "mac-prefix", topology.DefaultMACPrefix, "first 1 to 5 bytes of the MACs brtun generates for ports created without one (locally administered and unicast: the first byte's low nibble is 2, 6, a or e); replicas sharing etcd must use the same")
	f.DurationVar(&o.leaseTTL, "etcd-lease-ttl", 5*time.Second, "with --store etcd: how long a replica that died or lost etcd keeps its bridges before another replica takes them over")
}

// openedStore is the store serve runs on. With etcd it also has the
// client and this replica's part in the cluster (nil for bolt).
type openedStore struct {
	topology.Store
	etcd        *clientv3.Client
	cluster     *mastership.Etcd
	clusterDone chan struct{} // closed when cluster.Run returned; nil if never run
	name, api   string        // this replica's name and --api-listen
}

// mastership is what the controller places bridges with: nil for bolt.
func (s *openedStore) mastership() controller.Mastership {
	if s.cluster == nil {
		return nil
	}
	return s.cluster
}

// leads is nil for bolt (one replica), else a function telling whether this
// replica leads the cluster (see mastership.Etcd.Leads).
func (s *openedStore) leads() func() bool {
	if s.cluster == nil {
		return nil
	}
	return s.cluster.Leads
}

// runCluster makes this replica take part in the cluster until ctx ends.
func (s *openedStore) runCluster(ctx context.Context) {
	if s.cluster == nil {
		return
	}
	s.clusterDone = make(chan struct{})
	go func() {
		defer close(s.clusterDone)
		_ = s.cluster.Run(ctx)
	}()
}

// Close waits for the cluster part to leave (it hands its bridges over),
// then closes the store and the etcd client.
func (s *openedStore) Close() error {
	if s.clusterDone != nil {
		<-s.clusterDone
	}
	err := s.Store.Close()
	if s.etcd != nil {
		err = errors.Join(err, s.etcd.Close())
	}
	return err
}

// open checks the flags and opens the store they name, with the extra
// store options given.
func (o storeOptions) open(dataDir, apiListen string, log *zap.Logger, extra ...topology.Option) (*openedStore, error) {
	var prefix topology.MACPrefix // zero: the default
	if o.macPrefix != "" {
		var err error
		if prefix, err = topology.ParseMACPrefix(o.macPrefix); err != nil {
			return nil, fmt.Errorf("--mac-prefix: %w", err)
		}
	}
	switch o.kind {
	case "bolt":
		if o.etcdEndpoints != "" || o.etcdCert != "" || o.etcdKey != "" || o.etcdCA != "" || o.replicaName != "" {
			return nil, errors.New("--etcd-* and --replica-name need --store etcd")
		}
		s, err := topology.OpenBoltStore(dataDir, append(extra, topology.WithMACPrefix(prefix))...)
		if err != nil {
			return nil, err
		}
		return &openedStore{Store: s, name: o.name(apiListen), api: apiListen}, nil
	case "etcd":
	default:
		return nil, fmt.Errorf("--store must be bolt or etcd, got %q", o.kind)
	}
	endpoints := splitList(o.etcdEndpoints)
	if len(endpoints) == 0 {
		return nil, errors.New("--store etcd needs --etcd-endpoints")
	}
	name := o.name(apiListen)
	tlsConfig, err := o.tls()
	if err != nil {
		return nil, err
	}
	cli, err := topology.DialEtcd(endpoints, tlsConfig, log)
	if err != nil {
		return nil, err
	}
	s, err := topology.NewEtcdStore(topology.EtcdOptions{Client: cli, Prefix: o.etcdPrefix}, append(extra, topology.WithMACPrefix(prefix))...)
	if err != nil {
		_ = cli.Close()
		return nil, err
	}
	cluster, err := mastership.NewEtcd(mastership.EtcdOptions{
		Client: cli, Prefix: o.etcdPrefix, Name: name, API: apiListen, LeaseTTL: o.leaseTTL, Logger: log,
	})
	if err != nil {
		_ = s.Close()
		_ = cli.Close()
		return nil, fmt.Errorf("--replica-name: %w", err)
	}
	return &openedStore{Store: s, etcd: cli, cluster: cluster, name: name, api: apiListen}, nil
}

// name is --replica-name, by default HOSTNAME@API-LISTEN.
func (o storeOptions) name(apiListen string) string {
	if o.replicaName != "" {
		return o.replicaName
	}
	host, err := os.Hostname()
	if err != nil {
		host = "brtun"
	}
	return host + "@" + apiListen
}

// tls is the client TLS configuration for etcd: nil without any
// --etcd-tls-* flag (plain http endpoints).
func (o storeOptions) tls() (*tls.Config, error) {
	if o.etcdCert == "" && o.etcdKey == "" && o.etcdCA == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	switch {
	case o.etcdCert != "" && o.etcdKey != "":
		cert, err := tls.LoadX509KeyPair(o.etcdCert, o.etcdKey)
		if err != nil {
			return nil, fmt.Errorf("--etcd-tls-cert/--etcd-tls-key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	case o.etcdCert != "" || o.etcdKey != "":
		return nil, errors.New("--etcd-tls-cert and --etcd-tls-key go together")
	}
	if o.etcdCA != "" {
		pem, err := os.ReadFile(o.etcdCA)
		if err != nil {
			return nil, fmt.Errorf("--etcd-tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--etcd-tls-ca: no PEM certificate in %s", o.etcdCA)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// ClusterStatus answers GET /v1/cluster: the etcd view of the replicas and
// masters, or, with bolt, this one replica mastering every bridge.
func (s *openedStore) ClusterStatus(ctx context.Context) (northbound.ClusterStatus, error) {
	if s.cluster == nil {
		hosts, err := s.ListHosts(ctx)
		if err != nil {
			return northbound.ClusterStatus{}, err
		}
		st := northbound.ClusterStatus{Store: "bolt", Self: s.name, Masters: map[string]string{}}
		for _, h := range hosts {
			for _, b := range []string{controller.BrInt, controller.BrTun} {
				st.Masters[h.Name+"/"+b] = s.name
			}
		}
		st.Replicas = []northbound.ReplicaStatus{{Name: s.name, API: s.api, Healthy: true, Bridges: len(st.Masters)}}
		return st, nil
	}
	st := northbound.ClusterStatus{Store: "etcd", Self: s.cluster.Self(), Masters: s.cluster.Masters()}
	count := map[string]int{}
	for _, m := range st.Masters {
		count[m]++
	}
	self := false
	for _, r := range s.cluster.Replicas() {
		healthy := true
		if r.Name == st.Self {
			self, healthy = true, s.cluster.Connected()
		}
		st.Replicas = append(st.Replicas, northbound.ReplicaStatus{Name: r.Name, API: r.API, Healthy: healthy, Bridges: count[r.Name]})
	}
	if !self {
		st.Replicas = append(st.Replicas, northbound.ReplicaStatus{Name: st.Self, API: s.api, Healthy: false, Bridges: count[st.Self]})
		slices.SortFunc(st.Replicas, func(a, b northbound.ReplicaStatus) int { return strings.Compare(a.Name, b.Name) })
	}
	return st, nil
}
