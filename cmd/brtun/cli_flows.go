package main

import (
	"net/url"
	"strconv"

	"github.com/brtun/brtun/northbound"
	"github.com/spf13/cobra"
)

func newFlowsCommand(o *cliOptions) *cobra.Command {
	var bridge string
	var table int
	cmd := &cobra.Command{
		Use:         "flows HOST [--bridge br-tun] [--table N]",
		Short:       "Show the flows a host's bridge holds, read from the switch (-o text: ovs-ofctl lines)",
		Args:        cobra.ExactArgs(1),
		Annotations: map[string]string{textAnnotation: "true"},
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{"bridge": {bridge}}
			if cmd.Flags().Changed("table") {
				q.Set("table", strconv.Itoa(table))
			}
			if o.output == outputText {
				q.Set("format", "text")
			}
			c, err := newClient(o, 0)
			if err != nil {
				return err
			}
			raw, err := c.do(cmd.Context(), "GET", "/v1/hosts/"+url.PathEscape(args[0])+"/flows", q, nil)
			if err != nil {
				return err
			}
			if o.output == outputText {
				_, err := o.out.Write(raw)
				return err
			}
			return show(o, raw, flowTable)
		},
	}
	cmd.Flags().StringVar(&bridge, "bridge", northbound.BridgeTun, "bridge: br-tun or br-int")
	cmd.Flags().IntVar(&table, "table", 0, "only this table (default: all)")
	return cmd
}
