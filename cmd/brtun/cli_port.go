package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/brtun/brtun/northbound"
	"github.com/spf13/cobra"
)

func newPortCommand(o *cliOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "port", Short: "Bind VM interfaces to networks"}
	cmd.AddCommand(newPortAddCommand(o), newPortSetCommand(o), newPortListCommand(o), newPortShowCommand(o), newPortRmCommand(o))
	return cmd
}

func portPath(network string, port ...string) string {
	p := "/v1/networks/" + url.PathEscape(network) + "/ports"
	for _, name := range port {
		p += "/" + url.PathEscape(name)
	}
	return p
}

// portFlags adds the flags of port add and port set to cmd.
func portFlags(cmd *cobra.Command, req *northbound.PortRequest) {
	cmd.Flags().StringVar(&req.Host, "host", "", "host the VM runs on")
	cmd.Flags().StringVar(&req.Interface, "interface", "", "the VM's interface on the host's br-int (e.g. tap0)")
	cmd.Flags().StringVar(&req.MAC, "mac", "", "the VM's MAC address")
	cmd.Flags().StringArrayVar(&req.IPs, "ip", nil, "an IP address of the VM (repeat for more)")
}

func newPortAddCommand(o *cliOptions) *cobra.Command {
	var req northbound.PortRequest
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "add NET NAME --host H --interface IF [--mac M] [--ip IP]...",
		Short: "Bind a VM interface on a host to a network",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Name = args[1]
			return o.write(cmd, wait, http.MethodPost, portPath(args[0]), false, req, showPort)
		},
	}
	portFlags(cmd, &req)
	_ = cmd.MarkFlagRequired("host")
	_ = cmd.MarkFlagRequired("interface")
	addWaitFlag(cmd, &wait)
	return cmd
}

func newPortSetCommand(o *cliOptions) *cobra.Command {
	var req northbound.PortRequest
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "set NET NAME [--host H] [--interface IF] [--mac M] [--ip IP]...",
		Short: "Change a port's host, interface, MAC or IPs (e.g. after a VM moved); flags not given keep their value",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := o.get(cmd, portPath(args[0], args[1]))
			if err != nil {
				return err
			}
			var cur northbound.PortView
			if err := json.Unmarshal(raw, &cur); err != nil {
				return fmt.Errorf("decode port: %w", err)
			}
			next := northbound.PortRequest{Host: cur.Host, Interface: cur.Interface, MAC: cur.MAC, IPs: cur.IPs}
			f := cmd.Flags()
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
				next.IPs = req.IPs
			}
			return o.write(cmd, wait, http.MethodPut, portPath(args[0], args[1]), false, next, showPort)
		},
	}
	portFlags(cmd, &req)
	addWaitFlag(cmd, &wait)
	return cmd
}

func newPortListCommand(o *cliOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "list NET",
		Short: "List the ports of a network",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := o.get(cmd, portPath(args[0]))
			if err != nil {
				return err
			}
			return show(o, raw, portTable)
		},
	}
}

func newPortShowCommand(o *cliOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "show NET NAME",
		Short: "Show a port",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := o.get(cmd, portPath(args[0], args[1]))
			if err != nil {
				return err
			}
			return showPort(o, raw)
		},
	}
}

func newPortRmCommand(o *cliOptions) *cobra.Command {
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "rm NET NAME",
		Short: "Delete a port",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.remove(cmd, wait, portPath(args[0], args[1]), false, "port "+args[0]+"/"+args[1])
		},
	}
	addWaitFlag(cmd, &wait)
	return cmd
}

func showPort(o *cliOptions, raw []byte) error { return show(o, raw, portDetail) }
