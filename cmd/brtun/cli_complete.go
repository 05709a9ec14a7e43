package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// completionTimeout bounds the request a shell completion sends.
const completionTimeout = 2 * time.Second

// Argument placeholders of a command's Use line that completion fills in
// from the server.
const (
	argHost    = "HOST"
	argNetwork = "NET"
	argPort    = "PORT" // a port of the NET before it
	argName    = "NAME" // an object of the command's group: host, net, port or subnet
)

// addCompletion makes the shell complete cmd's arguments and its --host
// flag with the names the server knows, read off cmd's Use line: HOST and
// NET complete to hosts and networks, NAME to the objects of cmd's group
// (not for add and create, which name a new one). Commands get it by naming
// their arguments so.
func addCompletion(cmd *cobra.Command, o *cliOptions) {
	if !isClient(cmd) {
		return
	}
	if cmd.Flags().Lookup("host") != nil {
		_ = cmd.RegisterFlagCompletionFunc("host", func(c *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			return o.completeNames(c, "/v1/hosts"), cobra.ShellCompDirectiveNoFileComp
		})
	}
	placeholders := argPlaceholders(cmd.Use)
	if len(placeholders) == 0 || cmd.ValidArgsFunction != nil {
		return
	}
	group := ""
	if cmd.HasParent() {
		group = cmd.Parent().Name()
	}
	creates := cmd.Name() == "add" || cmd.Name() == "create"
	cmd.ValidArgsFunction = func(c *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) >= len(placeholders) {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var path string
		switch placeholders[len(args)] {
		case argHost:
			path = "/v1/hosts"
		case argNetwork:
			path = "/v1/networks"
		case argPort:
			if len(args) > 0 {
				path = portObject().path(args[0])
			}
		case argName:
			if !creates {
				path = groupListPath(group, args)
			}
		}
		if path == "" {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return o.completeNames(c, path), cobra.ShellCompDirectiveNoFileComp
	}
}

// argPlaceholders are the argument placeholders of a Use line: "add NET
// NAME --host H" -> NET, NAME; "list [NET] [--tag T]..." -> NET.
func argPlaceholders(use string) []string {
	var out []string
	for _, f := range strings.Fields(use)[1:] {
		f = strings.Trim(f, "[]")
		if f == "" || strings.HasPrefix(f, "-") || strings.ToUpper(f) != f {
			break
		}
		out = append(out, f)
	}
	return out
}

// groupListPath lists the objects a NAME argument of a command of group
// names; args are the arguments before it (the network of a port).
func groupListPath(group string, args []string) string {
	switch group {
	case "host":
		return "/v1/hosts"
	case "net":
		return "/v1/networks"
	case "port":
		if len(args) > 0 {
			return portObject().path(args[0])
		}
	case "subnet":
		if len(args) > 0 {
			return subnetObject().path(args[0])
		}
	}
	return ""
}

// completeNames lists the names of the objects at path, for the shell:
// nothing when the server cannot say.
func (o *cliOptions) completeNames(cmd *cobra.Command, path string) []string {
	// Completion runs no PersistentPreRunE: read BRTUN_SERVER & co here.
	if err := applyEnv(cmd.Root().PersistentFlags()); err != nil {
		return nil
	}
	c, err := newClient(o, 0)
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), completionTimeout)
	defer cancel()
	raw, err := c.do(ctx, http.MethodGet, path, url.Values{}, nil)
	if err != nil {
		return nil
	}
	list, err := names(raw)
	if err != nil {
		return nil
	}
	for i, n := range list {
		list[i] = n[strings.LastIndex(n, "/")+1:] // a port's NAME, without its NET/
	}
	return list
}
