package main

import (
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/brtun/brtun/northbound"
	"github.com/spf13/cobra"
)

func newHostCommand(o *cliOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "host", Short: "Register and inspect hypervisors"}
	cmd.AddCommand(newHostAddCommand(o), newHostListCommand(o), newHostShowCommand(o), newHostRmCommand(o))
	return cmd
}

func newHostAddCommand(o *cliOptions) *cobra.Command {
	var req northbound.HostRequest
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "add NAME --ovsdb ADDR --tunnel-ip IP [--datapath-type T]",
		Short: "Register a host whose br-int and br-tun brtun manages",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Name = args[0]
			return o.write(cmd, wait, http.MethodPost, "/v1/hosts", false, req, showHost)
		},
	}
	cmd.Flags().StringVar(&req.OVSDB, "ovsdb", "", "the host's OVSDB: tcp:IP:PORT, ssl:IP:PORT or unix:PATH")
	cmd.Flags().StringVar(&req.TunnelIP, "tunnel-ip", "", "underlay address the host's tunnels use")
	cmd.Flags().StringVar(&req.DatapathType, "datapath-type", "", "OVS datapath type of the host's bridges (default system)")
	_ = cmd.MarkFlagRequired("ovsdb")
	_ = cmd.MarkFlagRequired("tunnel-ip")
	addWaitFlag(cmd, &wait)
	return cmd
}

func newHostListCommand(o *cliOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List hosts and their connection status",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := o.get(cmd, "/v1/hosts")
			if err != nil {
				return err
			}
			return show(o, raw, hostTable)
		},
	}
}

func newHostShowCommand(o *cliOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show a host and the status of its bridges",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := o.get(cmd, "/v1/hosts/"+url.PathEscape(args[0]))
			if err != nil {
				return err
			}
			return showHost(o, raw)
		},
	}
}

func newHostRmCommand(o *cliOptions) *cobra.Command {
	var wait time.Duration
	var cascade bool
	cmd := &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove a host (with --cascade also its ports)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.remove(cmd, wait, "/v1/hosts/"+url.PathEscape(args[0]), cascade, "host "+args[0])
		},
	}
	cmd.Flags().BoolVar(&cascade, "cascade", false, "also delete the ports bound on the host")
	addWaitFlag(cmd, &wait)
	return cmd
}

func showHost(o *cliOptions, raw []byte) error { return show(o, raw, hostDetail) }

// get reads path.
func (o *cliOptions) get(cmd *cobra.Command, path string) ([]byte, error) {
	c, err := newClient(o, 0)
	if err != nil {
		return nil, err
	}
	return c.do(cmd.Context(), http.MethodGet, path, nil, nil)
}

// write sends a create or update and prints the stored object. When ?wait
// expires the object is printed too, and the command fails.
func (o *cliOptions) write(cmd *cobra.Command, wait time.Duration, method, path string, cascade bool, body any,
	print func(o *cliOptions, raw []byte) error) error {
	c, err := newClient(o, wait)
	if err != nil {
		return err
	}
	raw, err := c.do(cmd.Context(), method, path, writeQuery(wait, cascade), body)
	if err != nil {
		if obj := objectOf(err); obj != nil {
			if pErr := print(o, obj); pErr != nil {
				return pErr
			}
		}
		return err
	}
	return print(o, raw)
}

// remove deletes path and says so.
func (o *cliOptions) remove(cmd *cobra.Command, wait time.Duration, path string, cascade bool, what string) error {
	c, err := newClient(o, wait)
	if err != nil {
		return err
	}
	if _, err := c.do(cmd.Context(), http.MethodDelete, path, writeQuery(wait, cascade), nil); err != nil {
		return err
	}
	if o.output == outputTable {
		fmt.Fprintf(o.out, "deleted %s\n", what)
	}
	return nil
}
