package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/brtun/brtun/northbound"
	"github.com/brtun/brtun/topology"
)

// vtepObject is a static remote VTEP as the CLI's verbs name it.
func vtepObject() cliObject {
	return cliObject{kind: "remote VTEP", args: []string{"NAME"}, collection: "/v1/remote-vteps", print: showVTEP}
}

func newVTEPCommand(o *cliOptions) *cobra.Command {
	vtep := vtepObject()
	cmd := &cobra.Command{Use: "vtep", Short: "Static remote VTEPs (kernel VXLAN hosts, hardware switches) and the VTEPs of a network"}
	cmd.AddCommand(newVTEPAddCommand(o), newVTEPSetCommand(o), newVTEPListCommand(o),
		showCommand(o, vtep, "Show a static remote VTEP", nil),
		rmCommand(o, vtep, "Remove a static remote VTEP", ""))
	return cmd
}

// parseMACs reads --mac values: MAC or MAC,IP,IP...
func parseMACs(values []string) []topology.RemoteMAC {
	out := []topology.RemoteMAC{}
	for _, v := range values {
		parts := strings.Split(v, ",")
		m := topology.RemoteMAC{MAC: parts[0]}
		for _, ip := range parts[1:] {
			if ip != "" {
				m.IPs = append(m.IPs, ip)
			}
		}
		out = append(out, m)
	}
	return out
}

const macFlagHelp = "a MAC behind the VTEP, optionally with its addresses: MAC[,IP...] (repeat for more)"

func newVTEPAddCommand(o *cliOptions) *cobra.Command {
	var (
		req  northbound.RemoteVTEPRequest
		macs []string
		wait time.Duration
	)
	cmd := &cobra.Command{
		Use:   "add NAME --tunnel-ip IP --network NET... [--mac MAC[,IP...]]...",
		Short: "Add a VTEP brtun does not program to VXLAN or Geneve networks",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Name = args[0]
			req.MACs = parseMACs(macs)
			return o.write(cmd, wait, http.MethodPost, vtepObject().path(), false, req, showVTEP)
		},
	}
	cmd.Flags().StringVar(&req.TunnelIP, "tunnel-ip", "", "the VTEP's underlay address")
	cmd.Flags().StringArrayVar(&req.Networks, "network", nil, "a network the VTEP joins (repeat for more)")
	cmd.Flags().StringArrayVar(&macs, "mac", nil, macFlagHelp)
	metaFlags(cmd, &req.Description, &req.Tags)
	_ = cmd.MarkFlagRequired("tunnel-ip")
	_ = cmd.MarkFlagRequired("network")
	addWaitFlag(cmd, &wait)
	return cmd
}

func newVTEPSetCommand(o *cliOptions) *cobra.Command {
	var (
		req  northbound.RemoteVTEPRequest
		macs []string
		wait time.Duration
	)
	cmd := &cobra.Command{
		Use:   "set NAME [--tunnel-ip IP] [--network NET]... [--mac MAC[,IP...]]... [--description D] [--tag T]...",
		Short: "Change a remote VTEP; --network and --mac replace the stored lists (--mac '' clears it)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var kept []string
			for _, m := range macs {
				if m != "" {
					kept = append(kept, m)
				}
			}
			patch := changedFields(cmd, map[string]fieldValue{
				"tunnel-ip": {"tunnel_ip", req.TunnelIP}, "network": {"networks", req.Networks},
				"mac":         {"macs", parseMACs(kept)},
				"description": {"description", req.Description}, "tag": {"tags", tagsOrEmpty(req.Tags)},
			})
			return o.patch(cmd, wait, vtepObject().path(args...), patch, showVTEP)
		},
	}
	cmd.Flags().StringVar(&req.TunnelIP, "tunnel-ip", "", "the VTEP's underlay address")
	cmd.Flags().StringArrayVar(&req.Networks, "network", nil, "a network the VTEP joins (repeat for more)")
	cmd.Flags().StringArrayVar(&macs, "mac", nil, macFlagHelp)
	metaFlags(cmd, &req.Description, &req.Tags)
	addWaitFlag(cmd, &wait)
	return cmd
}

// newVTEPListCommand is vtep list, not a listVerb: with --network it lists
// another collection, of another type (a network's VTEPs, VTEPList).
func newVTEPListCommand(o *cliOptions) *cobra.Command {
	var network string
	cmd := &cobra.Command{
		Use:   "list [--network NET]",
		Short: "List the static remote VTEPs, or with --network every VTEP of a network and how it was learned",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if network != "" {
				raw, err := o.get(cmd, networkObject().path(network)+"/vteps")
				if err != nil {
					return err
				}
				return show(o, raw, networkVTEPTable)
			}
			raw, err := o.get(cmd, vtepObject().path())
			if err != nil {
				return err
			}
			return show(o, raw, vtepTable)
		},
	}
	cmd.Flags().StringVar(&network, "network", "", "list the VTEPs of this network: brtun hosts, static and EVPN-learned remote VTEPs")
	return cmd
}

func showVTEP(o *cliOptions, raw []byte) error { return show(o, raw, vtepDetail) }

func macCell(m topology.RemoteMAC) string {
	if len(m.IPs) == 0 {
		return m.MAC
	}
	return m.MAC + " (" + strings.Join(m.IPs, ", ") + ")"
}

func vtepTable(w io.Writer, list northbound.RemoteVTEPList) {
	fmt.Fprintln(w, "NAME\tTUNNEL-IP\tNETWORKS\tMACS")
	for _, v := range list.RemoteVTEPs {
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\n", v.Name, v.TunnelIP, strings.Join(v.Networks, ","), len(v.MACs))
	}
}

func vtepDetail(w io.Writer, v topology.RemoteVTEP) {
	fmt.Fprintf(w, "Name:\t%s\n", v.Name)
	fmt.Fprintf(w, "Tunnel IP:\t%s\n", v.TunnelIP)
	fmt.Fprintf(w, "Networks:\t%s\n", strings.Join(v.Networks, ", "))
	for i, m := range v.MACs {
		label := ""
		if i == 0 {
			label = "MACs:"
		}
		fmt.Fprintf(w, "%s\t%s\n", label, macCell(m))
	}
	metaDetail(w, v.Meta)
}

func networkVTEPTable(w io.Writer, list northbound.VTEPList) {
	fmt.Fprintln(w, "TUNNEL-IP\tKIND\tNAME\tLEARNED-BY\tBGP-PEERS\tMACS")
	for _, v := range list.VTEPs {
		name := v.Host
		if name == "" {
			name = v.Name
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\n", v.TunnelIP, v.Kind, orDash(name),
			orDash(strings.Join(v.LearnedBy, ",")), orDash(strings.Join(v.BGPPeers, ",")), v.MACs)
	}
}

// bgpPeerObject is a BGP neighbor as the CLI's verbs name it.
func bgpPeerObject() cliObject {
	return cliObject{kind: "BGP peer", args: []string{"ADDRESS"}, collection: "/v1/bgp/peers", print: showBGPPeer}
}

func newBGPCommand(o *cliOptions) *cobra.Command {
	bgpPeer := bgpPeerObject()
	cmd := &cobra.Command{Use: "bgp", Short: "BGP EVPN peers of brtun's speaker (serve --bgp-asn)"}
	peer := &cobra.Command{Use: "peer", Short: "Add, inspect and remove BGP neighbors"}
	peer.AddCommand(newBGPPeerAddCommand(o), newBGPPeerSetCommand(o),
		listCommand(o, bgpPeer, listVerb[northbound.BGPPeerList]{
			use: "list", short: "List BGP neighbors and their sessions", table: anyArgs(bgpPeerTable),
		}),
		showCommand(o, bgpPeer, "Show a BGP neighbor, its session state and route counts", nil),
		rmCommand(o, bgpPeer, "Remove a BGP neighbor (its session closes, its routes are withdrawn)", ""))
	cmd.AddCommand(peer)
	return cmd
}

func newBGPPeerAddCommand(o *cliOptions) *cobra.Command {
	var (
		req  northbound.BGPPeerRequest
		wait time.Duration
	)
	cmd := &cobra.Command{
		Use:   "add ADDRESS --asn N [--password P]",
		Short: "Add a BGP neighbor (same ASN as --bgp-asn: iBGP, else eBGP)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Address = args[0]
			return o.write(cmd, wait, http.MethodPost, bgpPeerObject().path(), false, req, showBGPPeer)
		},
	}
	cmd.Flags().Uint32Var(&req.ASN, "asn", 0, "the neighbor's AS number")
	cmd.Flags().StringVar(&req.Password, "password", "", "TCP MD5 password of the session")
	metaFlags(cmd, &req.Description, &req.Tags)
	_ = cmd.MarkFlagRequired("asn")
	addWaitFlag(cmd, &wait)
	return cmd
}

func newBGPPeerSetCommand(o *cliOptions) *cobra.Command {
	var (
		req  northbound.BGPPeerRequest
		wait time.Duration
	)
	cmd := &cobra.Command{
		Use:   "set ADDRESS [--asn N] [--password P] [--description D] [--tag T]...",
		Short: "Change a BGP neighbor (the session is re-established)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			patch := changedFields(cmd, map[string]fieldValue{
				"asn": {"asn", req.ASN}, "password": {"password", req.Password},
				"description": {"description", req.Description}, "tag": {"tags", tagsOrEmpty(req.Tags)},
			})
			return o.patch(cmd, wait, bgpPeerObject().path(args...), patch, showBGPPeer)
		},
	}
	cmd.Flags().Uint32Var(&req.ASN, "asn", 0, "the neighbor's AS number")
	cmd.Flags().StringVar(&req.Password, "password", "", "TCP MD5 password of the session ('' removes it)")
	metaFlags(cmd, &req.Description, &req.Tags)
	addWaitFlag(cmd, &wait)
	return cmd
}

func showBGPPeer(o *cliOptions, raw []byte) error { return show(o, raw, bgpPeerDetail) }

func bgpPeerTable(w io.Writer, list northbound.BGPPeerList) {
	fmt.Fprintln(w, "ADDRESS\tASN\tSTATE\tSINCE\tRECEIVED\tACCEPTED\tADVERTISED")
	for _, p := range list.Peers {
		s := p.Session
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%d\t%d\t%d\n", p.Address, p.ASN, s.State, orDash(s.Since), s.RoutesReceived, s.RoutesAccepted, s.RoutesAdvertised)
	}
}

func bgpPeerDetail(w io.Writer, p northbound.BGPPeerView) {
	fmt.Fprintf(w, "Address:\t%s\n", p.Address)
	fmt.Fprintf(w, "ASN:\t%d\n", p.ASN)
	fmt.Fprintf(w, "Password:\t%t\n", p.PasswordSet)
	fmt.Fprintf(w, "State:\t%s\n", p.Session.State)
	fmt.Fprintf(w, "Since:\t%s\n", orDash(p.Session.Since))
	fmt.Fprintf(w, "Routes:\treceived %d, accepted %d, advertised %d\n", p.Session.RoutesReceived, p.Session.RoutesAccepted, p.Session.RoutesAdvertised)
	metaDetail(w, p.Meta)
}
