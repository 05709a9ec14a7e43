package main

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/brtun/brtun/northbound"
	"github.com/brtun/brtun/topology"
	"github.com/spf13/cobra"
)

func newNetCommand(o *cliOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "net", Short: "Create and inspect tenant networks"}
	cmd.AddCommand(newNetCreateCommand(o), newNetSetCommand(o), newNetListCommand(o), newNetShowCommand(o), newNetRmCommand(o))
	return cmd
}

func newNetCreateCommand(o *cliOptions) *cobra.Command {
	var (
		typ          string
		segment      int64
		noMACLearned bool
		evpnOn       bool
		routeTarget  string
		description  string
		tags         []string
		wait         time.Duration
	)
	var typeNames []string
	for _, tt := range topology.TunnelTypes() {
		typeNames = append(typeNames, string(tt.Name))
	}
	cmd := &cobra.Command{
		Use:   "create NAME --type " + strings.Join(typeNames, "|") + " [--segment N] [--no-mac-learning]",
		Short: "Create a network (the segment id is allocated when not given)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := northbound.NetworkRequest{Name: args[0], Type: typ, Description: description, Tags: tags,
				EVPN: evpnOn, RouteTarget: routeTarget}
			if cmd.Flags().Changed("segment") {
				req.SegmentID = &segment
			}
			if noMACLearned {
				learn := false
				req.MACLearning = &learn
			}
			return o.write(cmd, wait, http.MethodPost, "/v1/networks", false, req, showNetwork)
		},
	}
	cmd.Flags().StringVar(&typ, "type", "", "tunnel type: "+topology.TunnelTypeNames())
	cmd.Flags().Int64Var(&segment, "segment", 0, "segment id ("+topology.SegmentRanges()+"); lowest free of the type when not given")
	cmd.Flags().BoolVar(&noMACLearned, "no-mac-learning", false, "no learned MACs: only ports registered with a MAC are reachable")
	cmd.Flags().BoolVar(&evpnOn, "evpn", false, "advertise and import the network over BGP EVPN (VXLAN only; serve --bgp-asn)")
	cmd.Flags().StringVar(&routeTarget, "route-target", "", "EVPN route target ASN:N or IPv4:N (default ASN:VNI)")
	metaFlags(cmd, &description, &tags)
	_ = cmd.MarkFlagRequired("type")
	addWaitFlag(cmd, &wait)
	return cmd
}

func newNetSetCommand(o *cliOptions) *cobra.Command {
	var (
		macLearning bool
		description string
		tags        []string
		wait        time.Duration
	)
	cmd := &cobra.Command{
		Use:   "set NAME [--mac-learning=BOOL] [--description D] [--tag T]...",
		Short: "Change a network (type and segment cannot change); flags not given keep their value",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			patch := changedFields(cmd, map[string]fieldValue{
				"mac-learning": {"mac_learning", macLearning},
				"description":  {"description", description}, "tag": {"tags", tagsOrEmpty(tags)},
			})
			return o.patch(cmd, wait, "/v1/networks/"+url.PathEscape(args[0]), patch, showNetwork)
		},
	}
	cmd.Flags().BoolVar(&macLearning, "mac-learning", true, "learn MACs (false: only ports registered with a MAC are reachable)")
	metaFlags(cmd, &description, &tags)
	addWaitFlag(cmd, &wait)
	return cmd
}

func newNetListCommand(o *cliOptions) *cobra.Command {
	var (
		typ  string
		tags []string
	)
	cmd := &cobra.Command{
		Use:   "list [--type T] [--tag T]...",
		Short: "List networks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			q := tagQuery(tags)
			if typ != "" {
				q.Set("type", typ)
			}
			raw, err := o.getQuery(cmd, "/v1/networks", q)
			if err != nil {
				return err
			}
			return show(o, raw, networkTable)
		},
	}
	cmd.Flags().StringVar(&typ, "type", "", "only networks of this tunnel type")
	cmd.Flags().StringArrayVar(&tags, "tag", nil, "only networks carrying this tag (repeat: all of them)")
	return cmd
}

func newNetShowCommand(o *cliOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show a network",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := o.get(cmd, "/v1/networks/"+url.PathEscape(args[0]))
			if err != nil {
				return err
			}
			return showNetwork(o, raw)
		},
	}
}

func newNetRmCommand(o *cliOptions) *cobra.Command {
	var wait time.Duration
	var cascade bool
	cmd := &cobra.Command{
		Use:   "rm NAME",
		Short: "Delete a network (with --cascade also its ports)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.remove(cmd, wait, "/v1/networks/"+url.PathEscape(args[0]), cascade, "network "+args[0])
		},
	}
	cmd.Flags().BoolVar(&cascade, "cascade", false, "also delete the network's ports")
	addWaitFlag(cmd, &wait)
	return cmd
}

func showNetwork(o *cliOptions, raw []byte) error { return show(o, raw, networkDetail) }
