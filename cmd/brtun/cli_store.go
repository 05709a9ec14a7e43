package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/brtun/brtun/topology"
)

// newStoreCommand is `brtun store`: work on a state store directly, with no
// brtun serving it.
func newStoreCommand(o *cliOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Work on brtun's state store directly (brtun serve stopped)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return fmt.Errorf("%s needs a subcommand: migrate", cmd.CommandPath())
		},
	}
	cmd.AddCommand(newStoreMigrateCommand(o))
	return cmd
}

type migrateOptions struct {
	dataDir string
	store   storeOptions // the etcd flags only
	force   bool
	dryRun  bool
}

func newStoreMigrateCommand(o *cliOptions) *cobra.Command {
	var m migrateOptions
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Copy the bbolt state file of --data-dir into etcd, for brtun serve --store etcd",
		Long: `Copy the state of a single brtun (the bbolt file in --data-dir) into etcd
under --etcd-prefix, so that replicas started with --store etcd and the same
--etcd-prefix serve it: every host, network, subnet and port with its local
VLAN, generated MAC and addresses, the objects' revision numbers and the
store's revision, which the next write continues from. Stop brtun serve
first: the state file is opened read-only and locked. The file is not
changed. A prefix that already holds keys is refused unless --force, which
deletes them first. --dry-run lists what would be copied and writes nothing.
After the copy, etcd's state is read back and compared with the file's.
Every flag --x-y can also be set with BRTUN_X_Y, as for brtun serve, so
brtun.env's settings apply.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runMigrate(cmd, o, m) },
	}
	f := cmd.Flags()
	f.StringVar(&m.dataDir, "data-dir", "/var/lib/brtun", "directory of the state file to copy")
	f.StringVar(&m.store.etcdEndpoints, "etcd-endpoints", "", "etcd client URLs, comma-separated (required)")
	f.StringVar(&m.store.etcdPrefix, "etcd-prefix", topology.DefaultEtcdPrefix, "key prefix the replicas will use (--etcd-prefix of brtun serve)")
	f.StringVar(&m.store.etcdCert, "etcd-tls-cert", "", "client certificate to present to etcd (PEM; with --etcd-tls-key)")
	f.StringVar(&m.store.etcdKey, "etcd-tls-key", "", "private key of --etcd-tls-cert (PEM)")
	f.StringVar(&m.store.etcdCA, "etcd-tls-ca", "", "CA certificate that signed etcd's server certificates (PEM; default: the system's CAs)")
	f.BoolVar(&m.force, "force", false, "replace whatever the etcd prefix holds")
	f.BoolVar(&m.dryRun, "dry-run", false, "list what would be copied and whether the prefix is empty; write nothing")
	readsEnv(cmd)
	return cmd
}

// migrateReport is what `store migrate -o json` prints.
type migrateReport struct {
	StateFile    string            `json:"state_file"`
	EtcdPrefix   string            `json:"etcd_prefix"`
	DryRun       bool              `json:"dry_run"`
	Revision     uint64            `json:"revision"`
	Keys         int               `json:"keys"`
	TargetKeys   int               `json:"target_keys"`
	Transactions int               `json:"transactions"`
	State        topology.Snapshot `json:"state"`
}

func runMigrate(cmd *cobra.Command, o *cliOptions, m migrateOptions) error {
	endpoints := splitList(m.store.etcdEndpoints)
	if len(endpoints) == 0 {
		return errors.New("--etcd-endpoints is required")
	}
	tlsConfig, err := m.store.tls()
	if err != nil {
		return err
	}
	cli, err := topology.DialEtcd(endpoints, tlsConfig, nil)
	if err != nil {
		return err
	}
	defer func() { _ = cli.Close() }()
	res, err := topology.MigrateBoltToEtcd(cmd.Context(), m.dataDir,
		topology.EtcdOptions{Client: cli, Prefix: m.store.etcdPrefix},
		topology.MigrateOptions{Force: m.force, DryRun: m.dryRun})
	if res.Keys == 0 && err != nil {
		return err // the state file could not be read
	}
	rep := migrateReport{
		StateFile: res.Source, EtcdPrefix: m.store.etcdPrefix, DryRun: m.dryRun, Revision: res.Snapshot.Revision,
		Keys: res.Keys, TargetKeys: res.TargetKeys, Transactions: res.Transactions, State: res.Snapshot,
	}
	if o.output == outputJSON {
		raw, jerr := json.Marshal(rep)
		if jerr != nil {
			return jerr
		}
		if perr := printJSON(o.out, raw); perr != nil {
			return perr
		}
		return err
	}
	printMigrate(o.out, rep, strings.Join(endpoints, ","))
	if err != nil {
		return err
	}
	if m.dryRun {
		_, err = fmt.Fprintln(o.out, "dry run: nothing written")
		return err
	}
	_, err = fmt.Fprintf(o.out, "copied %d keys in %d transactions; etcd serves revision %d\n", rep.Keys, rep.Transactions, rep.Revision)
	return err
}

// printMigrate prints the source's summary, with a dry run its objects, and
// the target's state.
func printMigrate(w io.Writer, r migrateReport, endpoints string) {
	s := r.State
	fmt.Fprintf(w, "state file %s: revision %d, %d hosts, %d networks, %d subnets, %d ports (%d keys)\n",
		r.StateFile, s.Revision, len(s.Hosts), len(s.Networks), len(s.Subnets), len(s.Ports), r.Keys)
	if r.DryRun {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, h := range s.Hosts {
			fmt.Fprintf(tw, "host\t%s\ttunnel_ip %s\tovsdb %s\trevision %d\n", h.Name, h.TunnelIP, h.OVSDB, h.RevisionNumber)
		}
		for _, n := range s.Networks {
			fmt.Fprintf(tw, "network\t%s\t%s %d\t\trevision %d\n", n.Name, n.Type, n.SegmentID, n.RevisionNumber)
		}
		for _, sub := range s.Subnets {
			fmt.Fprintf(tw, "subnet\t%s/%s\t%s\t\trevision %d\n", sub.Network, sub.Name, sub.CIDR, sub.RevisionNumber)
		}
		for _, p := range s.Ports {
			fmt.Fprintf(tw, "port\t%s/%s\thost %s interface %s local_vlan %d\tmac %s ips %s\trevision %d\n",
				p.Network, p.Name, p.Host, p.Interface, p.LocalVLAN, orDash(p.MAC), orDash(strings.Join(p.IPs, ",")), p.RevisionNumber)
		}
		_ = tw.Flush()
	}
	target := "empty"
	if r.TargetKeys > 0 {
		target = fmt.Sprintf("holds %d keys", r.TargetKeys)
	}
	fmt.Fprintf(w, "etcd prefix %s at %s: %s\n", r.EtcdPrefix, endpoints, target)
}
