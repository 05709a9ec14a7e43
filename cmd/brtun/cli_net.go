package main

import (
	"net/http"
	"strings"
	"time"

	"github.com/brtun/brtun/northbound"
	"github.com/brtun/brtun/topology"
	"github.com/spf13/cobra"
)

// networkObject is a network as the CLI's verbs name it.
func networkObject() cliObject {
	return cliObject{kind: "network", args: []string{"NAME"}, collection: "/v1/networks", print: showNetwork}
}

func newNetCommand(o *cliOptions) *cobra.Command {
	network := networkObject()
	cmd := &cobra.Command{Use: "net", Short: "Create and inspect tenant networks"}
	cmd.AddCommand(newNetCreateCommand(o), newNetSetCommand(o),
		listCommand(o, network, listVerb[northbound.NetworkList]{
			use: "list [--type T] [--tag T]...", short: "List networks", table: anyArgs(networkTable),
			filters: []listFilter{{flag: "type", param: "type", help: "only networks of this tunnel type"}}, tagged: "networks",
		}),
		showCommand(o, network, "Show a network", nil),
		rmCommand(o, network, "Delete a network (with --cascade also its ports)", "also delete the network's ports"))
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
			return o.write(cmd, wait, http.MethodPost, networkObject().path(), false, req, showNetwork)
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
			return o.patch(cmd, wait, networkObject().path(args...), patch, showNetwork)
		},
	}
	cmd.Flags().BoolVar(&macLearning, "mac-learning", true, "learn MACs (false: only ports registered with a MAC are reachable)")
	metaFlags(cmd, &description, &tags)
	addWaitFlag(cmd, &wait)
	return cmd
}

func showNetwork(o *cliOptions, raw []byte) error { return show(o, raw, networkDetail) }
