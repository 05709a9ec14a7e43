package main

import (
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/brtun/brtun/northbound"
)

func newTraceCommand(o *cliOptions) *cobra.Command {
	var dstMAC, dstIP string
	var arp, dhcp, broadcast bool
	cmd := &cobra.Command{
		Use:   "trace NET PORT [--dst-mac MAC] [--dst-ip IP] [--arp | --dhcp | --broadcast]",
		Short: "Walk a packet from a port through the flows the switches hold, hop by hop, to the ports it reaches or the flow that drops it",
		Long: `Walk a packet from a port through the flows the switches hold now (read
from the switches, not brtun's desired state, so drift shows): the port's
br-int, br-tun, the tunnel, the remote br-tun and br-int. Each hop names the
bridge, every table lookup with the matching flow and its owner, and where
the copies go. br-int's NORMAL is stood in for by the ports brtun knows (its
MAC table is not visible); such hops say so.

The packet: a unicast to --dst-mac, or to the port of the network holding
--dst-ip (the default kind); --arp: an ARP request for --dst-ip; --dhcp: a
DHCPv4 discover; --broadcast: an IPv4 broadcast. -o json gives the hops as
the API answers them.`,
		Example: `  brtun trace blue vm1 --dst-ip 198.18.0.2
  brtun trace blue vm1 --arp --dst-ip 198.18.0.2
  brtun trace blue vm1 --broadcast -o json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind := "unicast"
			n := 0
			for flag, set := range map[string]bool{"arp": arp, "dhcp": dhcp, "broadcast": broadcast} {
				if set {
					kind = flag
					n++
				}
			}
			if n > 1 {
				return usageErrorf("--arp, --dhcp and --broadcast exclude each other")
			}
			q := url.Values{"packet": {kind}}
			if dstMAC != "" {
				q.Set("dst_mac", dstMAC)
			}
			if dstIP != "" {
				q.Set("dst_ip", dstIP)
			}
			raw, err := o.getQuery(cmd, portObject().path(args[0], args[1])+"/trace", q)
			if err != nil {
				return err
			}
			return show(o, raw, traceText)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dstMAC, "dst-mac", "", "destination MAC of a unicast")
	f.StringVar(&dstIP, "dst-ip", "", "destination IP of a unicast, or the address an --arp request asks for")
	f.BoolVar(&arp, "arp", false, "send an ARP request for --dst-ip")
	f.BoolVar(&dhcp, "dhcp", false, "send a DHCPv4 discover")
	f.BoolVar(&broadcast, "broadcast", false, "send an IPv4 broadcast")
	return cmd
}

// traceText prints a trace hop by hop.
func traceText(w io.Writer, v northbound.TraceView) {
	fmt.Fprintf(w, "%s from %s/%s on %s\n", v.Kind, v.Network, v.Port, v.Host)
	for i, h := range v.Hops {
		from := ""
		if h.From >= 0 {
			from = fmt.Sprintf(" (from hop %d)", h.From)
		}
		fmt.Fprintf(w, "hop %d: %s/%s%s, in on %s: %s\n", i, h.Host, h.Bridge, from, h.InPort, h.Packet)
		for _, l := range h.Lookups {
			if l.Flow == "" {
				fmt.Fprintf(w, "  table %d: no flow matches\n", l.Table)
				continue
			}
			fmt.Fprintf(w, "  table %d [%s]: %s\n", l.Table, l.Owner, l.Flow)
		}
		for _, o := range h.Outputs {
			var to []string
			switch {
			case o.Reached != nil:
				to = append(to, fmt.Sprintf("reaches %s/%s on %s", o.Reached.Network, o.Reached.Port, o.Reached.Host))
			case o.Next >= 0:
				to = append(to, fmt.Sprintf("hop %d", o.Next))
			}
			if o.Note != "" {
				to = append(to, o.Note)
			}
			fmt.Fprintf(w, "  out %s: %s\n", o.Port, orDash(strings.Join(to, "; ")))
		}
		for _, n := range h.Notes {
			fmt.Fprintf(w, "  note: %s\n", n)
		}
		if h.Dropped != "" {
			fmt.Fprintf(w, "  dropped: %s\n", h.Dropped)
		}
	}
	if len(v.Reached) == 0 {
		fmt.Fprintln(w, "reached: no port")
		return
	}
	for _, e := range v.Reached {
		fmt.Fprintf(w, "reached: %s/%s on %s (%s)\n", e.Network, e.Port, e.Host, e.Interface)
	}
}
