package main

import (
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/brtun/brtun/northbound"
	"github.com/spf13/cobra"
)

// hostObject is a host as the CLI's verbs name it.
func hostObject() cliObject {
	return cliObject{kind: "host", args: []string{"NAME"}, collection: "/v1/hosts", print: showHost}
}

func newHostCommand(o *cliOptions) *cobra.Command {
	host := hostObject()
	cmd := &cobra.Command{Use: "host", Short: "Register and inspect hypervisors"}
	cmd.AddCommand(newHostAddCommand(o), newHostSetCommand(o),
		listCommand(o, host, listVerb[northbound.HostList]{
			use: "list [--tag T]...", short: "List hosts and their connection status", table: anyArgs(hostTable), tagged: "hosts",
		}),
		showCommand(o, host, "Show a host, the status of its bridges and the ports bound on it (-o json, yaml, name: the host only)",
			o.hostPorts),
		rmCommand(o, host, "Remove a host (with --cascade also its ports)", "also delete the ports bound on the host"))
	return cmd
}

// hostPorts prints the ports bound on the host args[0] names (host show).
func (o *cliOptions) hostPorts(cmd *cobra.Command, args []string) error {
	ports, err := o.getQuery(cmd, "/v1/ports", url.Values{"host": {args[0]}})
	if err != nil {
		return err
	}
	fmt.Fprintln(o.out, "\nPorts:")
	return show(o, ports, portTableWithNetwork)
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
			return o.write(cmd, wait, http.MethodPost, hostObject().path(), false, req, showHost)
		},
	}
	cmd.Flags().StringVar(&req.OVSDB, "ovsdb", "", "the host's OVSDB: tcp:IP:PORT, ssl:IP:PORT or unix:PATH")
	cmd.Flags().StringVar(&req.TunnelIP, "tunnel-ip", "", "underlay address the host's tunnels use")
	cmd.Flags().StringVar(&req.DatapathType, "datapath-type", "", "OVS datapath type of the host's bridges (default system)")
	metaFlags(cmd, &req.Description, &req.Tags)
	_ = cmd.MarkFlagRequired("ovsdb")
	_ = cmd.MarkFlagRequired("tunnel-ip")
	addWaitFlag(cmd, &wait)
	return cmd
}

func newHostSetCommand(o *cliOptions) *cobra.Command {
	var (
		req  northbound.HostRequest
		wait time.Duration
	)
	cmd := &cobra.Command{
		Use:   "set NAME [--tunnel-ip IP] [--ovsdb ADDR] [--datapath-type T] [--description D] [--tag T]...",
		Short: "Change a host (a re-IP keeps its ports); flags not given keep their value",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			patch := changedFields(cmd, map[string]fieldValue{
				"ovsdb": {"ovsdb", req.OVSDB}, "tunnel-ip": {"tunnel_ip", req.TunnelIP},
				"datapath-type": {"datapath_type", req.DatapathType},
				"description":   {"description", req.Description}, "tag": {"tags", tagsOrEmpty(req.Tags)},
			})
			return o.patch(cmd, wait, hostObject().path(args...), patch, showHost)
		},
	}
	cmd.Flags().StringVar(&req.OVSDB, "ovsdb", "", "the host's OVSDB: tcp:IP:PORT, ssl:IP:PORT or unix:PATH")
	cmd.Flags().StringVar(&req.TunnelIP, "tunnel-ip", "", "underlay address the host's tunnels use")
	cmd.Flags().StringVar(&req.DatapathType, "datapath-type", "", "OVS datapath type of the host's bridges")
	metaFlags(cmd, &req.Description, &req.Tags)
	addWaitFlag(cmd, &wait)
	return cmd
}

func showHost(o *cliOptions, raw []byte) error { return show(o, raw, hostDetail) }

// get reads path.
func (o *cliOptions) get(cmd *cobra.Command, path string) ([]byte, error) {
	return o.getQuery(cmd, path, nil)
}

// getQuery reads path with a query (list filters).
func (o *cliOptions) getQuery(cmd *cobra.Command, path string, query url.Values) ([]byte, error) {
	raw, _, err := o.getETag(cmd, path, query, 0)
	return raw, err
}

// getETag reads path and returns the answer's ETag too, for a write that
// must not overwrite a concurrent change. timeout, when set, bounds a
// request that waits (?wait).
func (o *cliOptions) getETag(cmd *cobra.Command, path string, query url.Values, timeout time.Duration) ([]byte, string, error) {
	c, err := newClient(o, timeout)
	if err != nil {
		return nil, "", err
	}
	raw, hdr, err := c.doHeaders(cmd.Context(), http.MethodGet, path, query, nil, nil)
	if err != nil {
		return raw, "", err
	}
	return raw, hdr.Get("ETag"), nil
}

// write sends a create or update and prints the stored object. When ?wait
// expires the object is printed too, and the command fails.
func (o *cliOptions) write(cmd *cobra.Command, wait time.Duration, method, path string, cascade bool, body any,
	print func(o *cliOptions, raw []byte) error) error {
	return o.writeHeaders(cmd, wait, method, path, cascade, body, nil, print)
}

// patch sends a JSON merge patch of the fields given and prints the result.
func (o *cliOptions) patch(cmd *cobra.Command, wait time.Duration, path string, patch map[string]any,
	print func(o *cliOptions, raw []byte) error) error {
	if len(patch) == 0 {
		return usageErrorf("nothing to change: give at least one flag")
	}
	return o.writeHeaders(cmd, wait, http.MethodPatch, path, false, patch,
		http.Header{"Content-Type": {"application/merge-patch+json"}}, print)
}

// writeHeaders is write with extra request headers (If-Match, Content-Type).
func (o *cliOptions) writeHeaders(cmd *cobra.Command, wait time.Duration, method, path string, cascade bool, body any,
	headers http.Header, print func(o *cliOptions, raw []byte) error) error {
	c, err := newClient(o, wait)
	if err != nil {
		return err
	}
	raw, _, err := c.doHeaders(cmd.Context(), method, path, writeQuery(wait, cascade), body, headers)
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
