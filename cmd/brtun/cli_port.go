package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/brtun/brtun/northbound"
	"github.com/brtun/brtun/topology"
	"github.com/spf13/cobra"
)

// portObject is a port as the CLI's verbs name it.
func portObject() cliObject {
	return cliObject{kind: "port", args: []string{"NET", "NAME"}, collection: "/v1/networks/{NET}/ports", print: showPort}
}

func newPortCommand(o *cliOptions) *cobra.Command {
	port := portObject()
	cmd := &cobra.Command{Use: "port", Short: "Bind VM interfaces to networks"}
	cmd.AddCommand(newPortAddCommand(o), newPortSetCommand(o),
		listCommand(o, port, listVerb[northbound.PortList]{
			use: "list [NET] [--host H] [--device-id ID] [--tag T]...", short: "List the ports of a network, or of every network",
			args: cobra.MaximumNArgs(1),
			path: func(args []string) string {
				if len(args) == 0 {
					return "/v1/ports"
				}
				return port.path(args...)
			},
			table: func(args []string) func(io.Writer, northbound.PortList) {
				if len(args) == 0 {
					return portTableWithNetwork
				}
				return portTable
			},
			filters: []listFilter{
				{flag: "host", param: "host", help: "only ports on this host"},
				{flag: "device-id", param: "device_id", help: "only ports of this device (a container's, as brtun-cni sets it)"},
			}, tagged: "ports",
		}),
		showCommand(o, port, "Show a port", nil),
		newPortWaitCommand(o),
		rmCommand(o, port, "Delete a port", ""))
	return cmd
}

// portSecurityFlags are the port-security flags of port add and port set.
type portSecurityFlags struct {
	enabled bool
	pairs   []string // IP[,MAC]
}

// portFlags adds the flags of port add and port set to cmd.
func portFlags(cmd *cobra.Command, req *northbound.PortRequest, sec *portSecurityFlags, adminState *string) {
	cmd.Flags().StringVar(&req.Host, "host", "", "host the VM runs on")
	cmd.Flags().StringVar(&req.Interface, "interface", "", "the VM's interface on the host's br-int (e.g. tap0)")
	cmd.Flags().StringVar(&req.MAC, "mac", "", "the VM's MAC address (add: generated under the server's --mac-prefix when not given)")
	cmd.Flags().StringArrayVar(&req.IPs, "ip", nil, "IP addresses of the VM, comma-separated or repeated (add: on a network with subnets, one address of each subnet is allocated when not given; set: --ip '' clears them)")
	cmd.Flags().BoolVar(&sec.enabled, "port-security", true,
		"drop what the VM sends from other addresses than its own and its allowed ones (needs --mac; false for routers and bridges)")
	cmd.Flags().StringArrayVar(&sec.pairs, "allowed-address", nil,
		"IP[,MAC]: a further address the VM may send from, e.g. a VRRP virtual IP; an IPv4 prefix or an IPv6 address (repeat for more)")
	cmd.Flags().StringVar(adminState, "admin-state", "up", "up, or down: the port stays but its traffic is dropped and other hosts forget it")
	metaFlags(cmd, &req.Description, &req.Tags)
}

// addressPairs parses --allowed-address values.
func addressPairs(values []string) ([]topology.AddressPair, error) {
	out := make([]topology.AddressPair, 0, len(values))
	for _, v := range values {
		ip, mac, _ := strings.Cut(v, ",")
		if ip == "" || strings.Contains(mac, ",") {
			return nil, fmt.Errorf("--allowed-address %q: want IP[,MAC]", v)
		}
		out = append(out, topology.AddressPair{IPAddress: ip, MACAddress: mac})
	}
	return out, nil
}

// parseAdminState reads --admin-state.
func parseAdminState(s string) (bool, error) {
	switch s {
	case "up":
		return true, nil
	case "down":
		return false, nil
	}
	return false, usageErrorf("--admin-state %q: want up or down", s)
}

func newPortAddCommand(o *cliOptions) *cobra.Command {
	var req northbound.PortRequest
	var sec portSecurityFlags
	var wait time.Duration
	var adminState string
	cmd := &cobra.Command{
		Use:   "add NET NAME --host H --interface IF [--mac M] [--ip IP]... [--port-security=false] [--allowed-address IP[,MAC]]... [--admin-state up|down]",
		Short: "Bind a VM interface on a host to a network (without --mac and --ip brtun picks them and prints them)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Name = args[1]
			req.IPs = splitList(strings.Join(req.IPs, ","))
			req.PortSecurityEnabled = &sec.enabled
			var err error
			if req.AllowedAddressPairs, err = addressPairs(sec.pairs); err != nil {
				return err
			}
			up, err := parseAdminState(adminState)
			if err != nil {
				return err
			}
			if !up {
				req.AdminStateUp = &up
			}
			return o.write(cmd, wait, http.MethodPost, portObject().path(args[0]), false, req, showPort)
		},
	}
	portFlags(cmd, &req, &sec, &adminState)
	_ = cmd.MarkFlagRequired("host")
	_ = cmd.MarkFlagRequired("interface")
	addWaitFlag(cmd, &wait)
	return cmd
}

func newPortSetCommand(o *cliOptions) *cobra.Command {
	var req northbound.PortRequest
	var sec portSecurityFlags
	var noPairs bool
	var wait time.Duration
	var adminState string
	cmd := &cobra.Command{
		Use: "set NET NAME [--host H] [--interface IF] [--mac M] [--ip IP]... [--port-security=BOOL] " +
			"[--allowed-address IP[,MAC]]... [--no-allowed-addresses] [--admin-state up|down] [--description D] [--tag T]...",
		Short: "Change a port (e.g. after a VM moved, or its port security); flags not given keep their value",
		Long: "Reads the port and writes it back with the flags given changed. The write carries the read's ETag in " +
			"If-Match, so when someone changed the port in between it fails (HTTP 412) instead of overwriting their change.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, etag, err := o.getETag(cmd, portObject().path(args[0], args[1]), nil, 0)
			if err != nil {
				return err
			}
			var cur northbound.PortView
			if err := json.Unmarshal(raw, &cur); err != nil {
				return fmt.Errorf("decode port: %w", err)
			}
			next := northbound.PortRequest{Host: cur.Host, Interface: cur.Interface, MAC: cur.MAC, IPs: cur.IPs,
				PortSecurityEnabled: &cur.PortSecurityEnabled, AllowedAddressPairs: cur.AllowedAddressPairs,
				AdminStateUp: cur.AdminStateUp, DeviceID: cur.DeviceID, Description: cur.Description, Tags: cur.Tags}
			f := cmd.Flags()
			if cur.MAC == "" {
				// Without a MAC the port answers false; keep the default
				// so that a MAC given now turns port security on.
				next.PortSecurityEnabled = nil
			}
			if f.Changed("port-security") {
				next.PortSecurityEnabled = &sec.enabled
			}
			if f.Changed("allowed-address") {
				if next.AllowedAddressPairs, err = addressPairs(sec.pairs); err != nil {
					return err
				}
			}
			if noPairs {
				next.AllowedAddressPairs = nil
			}
			if f.Changed("admin-state") {
				up, err := parseAdminState(adminState)
				if err != nil {
					return err
				}
				next.AdminStateUp = &up
			}
			if f.Changed("description") {
				next.Description = req.Description
			}
			if f.Changed("tag") {
				next.Tags = tagsOrEmpty(req.Tags)
			}
			if f.Changed("host") {
				next.Host = req.Host
			}
			if f.Changed("interface") {
				next.Interface = req.Interface
			}
			if f.Changed("mac") {
				next.MAC = req.MAC
			}
			if f.Changed("ip") {
				next.IPs = splitList(strings.Join(req.IPs, ",")) // --ip '': none
			}
			return o.writeHeaders(cmd, wait, http.MethodPut, portObject().path(args[0], args[1]), false, next,
				http.Header{"If-Match": {etag}}, showPort)
		},
	}
	portFlags(cmd, &req, &sec, &adminState)
	cmd.Flags().BoolVar(&noPairs, "no-allowed-addresses", false, "remove every allowed address")
	cmd.MarkFlagsMutuallyExclusive("allowed-address", "no-allowed-addresses")
	addWaitFlag(cmd, &wait)
	return cmd
}

func newPortWaitCommand(o *cliOptions) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "wait NET NAME [--timeout 60s]",
		Short: "Wait until a port is bound (its interface is on the host's br-int), then show it",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if timeout <= 0 {
				return usageErrorf("--timeout %s: want a positive duration", timeout)
			}
			raw, _, err := o.getETag(cmd, portObject().path(args[0], args[1]), url.Values{"wait": {timeout.String()}}, timeout)
			if err != nil {
				if obj := objectOf(err); obj != nil {
					if pErr := showPort(o, obj); pErr != nil {
						return pErr
					}
				}
				return err
			}
			return showPort(o, raw)
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", time.Minute, "how long to wait for the binding (at most the server's --api-max-wait); here it replaces the global --timeout")
	return cmd
}

func showPort(o *cliOptions, raw []byte) error { return show(o, raw, portDetail) }
