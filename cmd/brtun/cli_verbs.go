package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// cliObject is an object type as the CLI's verbs name and print it. The
// show and rm verbs of every type come from it (showCommand, rmCommand),
// its list verb from a listVerb.
type cliObject struct {
	kind string   // in messages: "host", "remote VTEP" ("deleted host h1")
	args []string // the arguments naming one object: NAME, NET NAME, ADDRESS
	// collection is the API path of the objects; the leading args fill
	// its placeholders ("/v1/networks/{NET}/subnets").
	collection string
	// print prints one object as the API answered it (show, and the writes).
	print func(o *cliOptions, raw []byte) error
}

// path is the API path of the object args name, or, given only the
// arguments that fill the collection's placeholders, of the collection.
func (c cliObject) path(args ...string) string {
	p := c.collection
	for len(args) > 0 && strings.Contains(p, "{") {
		start := strings.Index(p, "{")
		end := start + strings.Index(p[start:], "}")
		p = p[:start] + url.PathEscape(args[0]) + p[end+1:]
		args = args[1:]
	}
	return apiPath(p, args...)
}

// apiPath is base followed by each of names, escaped.
func apiPath(base string, names ...string) string {
	for _, name := range names {
		base += "/" + url.PathEscape(name)
	}
	return base
}

// showCommand is the show verb of obj: it reads the object and prints it.
// more, when not nil, prints what follows the object under -o table (the
// ports of a host).
func showCommand(o *cliOptions, obj cliObject, short string, more func(cmd *cobra.Command, args []string) error) *cobra.Command {
	return &cobra.Command{
		Use:   "show " + strings.Join(obj.args, " "),
		Short: short,
		Args:  cobra.ExactArgs(len(obj.args)),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := o.get(cmd, obj.path(args...))
			if err != nil {
				return err
			}
			if err := obj.print(o, raw); err != nil || more == nil || o.output != outputTable {
				return err
			}
			return more(cmd, args)
		},
	}
}

// rmCommand is the rm verb of obj, with --wait; cascadeHelp, when not "",
// is the help of its --cascade flag.
func rmCommand(o *cliOptions, obj cliObject, short, cascadeHelp string) *cobra.Command {
	var wait time.Duration
	var cascade bool
	cmd := &cobra.Command{
		Use:   "rm " + strings.Join(obj.args, " "),
		Short: short,
		Args:  cobra.ExactArgs(len(obj.args)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.remove(cmd, wait, obj.path(args...), cascade, obj.kind, strings.Join(args, "/"))
		},
	}
	if cascadeHelp != "" {
		cmd.Flags().BoolVar(&cascade, "cascade", false, cascadeHelp)
	}
	addWaitFlag(cmd, &wait)
	return cmd
}

// remove deletes path and says so: "deleted KIND ID" ("deleted port
// blue/vm1"), or with -o name the ID.
func (o *cliOptions) remove(cmd *cobra.Command, wait time.Duration, path string, cascade bool, kind, id string) error {
	c, err := newClient(o, wait)
	if err != nil {
		return err
	}
	if _, err := c.do(cmd.Context(), http.MethodDelete, path, writeQuery(wait, cascade), nil); err != nil {
		return err
	}
	switch o.output {
	case outputTable:
		fmt.Fprintf(o.out, "deleted %s %s\n", kind, id)
	case outputName:
		fmt.Fprintln(o.out, id)
	}
	return nil
}

// listVerb is the list verb of an object type: it reads the collection
// its arguments name, filtered by the flags given, and prints it as table,
// or as -o asks.
type listVerb[T any] struct {
	use, short string
	args       cobra.PositionalArgs // nil: none
	// path, when set, is the collection args name; nil: the object's
	// path(args...).
	path  func(args []string) string
	table func(args []string) func(w io.Writer, list T)
	// filters are flags that filter the list by an API field.
	filters []listFilter
	// tagged, when not "", gives the list --tag; it names the objects in
	// its help ("hosts").
	tagged string
}

// listFilter is a flag --flag VALUE that filters a list by ?param=VALUE.
type listFilter struct {
	flag, param, help string
}

// anyArgs is a list's table whatever its arguments.
func anyArgs[T any](table func(w io.Writer, list T)) func([]string) func(io.Writer, T) {
	return func([]string) func(io.Writer, T) { return table }
}

func listCommand[T any](o *cliOptions, obj cliObject, l listVerb[T]) *cobra.Command {
	var tags []string
	path := l.path
	if path == nil {
		path = func(args []string) string { return obj.path(args...) }
	}
	values := make([]string, len(l.filters))
	args := l.args
	if args == nil {
		args = cobra.NoArgs
	}
	cmd := &cobra.Command{
		Use:   l.use,
		Short: l.short,
		Args:  args,
		RunE: func(cmd *cobra.Command, args []string) error {
			q := tagQuery(tags)
			for i, f := range l.filters {
				if values[i] != "" {
					q.Set(f.param, values[i])
				}
			}
			raw, err := o.getQuery(cmd, path(args), q)
			if err != nil {
				return err
			}
			return show(o, raw, l.table(args))
		},
	}
	for i, f := range l.filters {
		cmd.Flags().StringVar(&values[i], f.flag, "", f.help)
	}
	if l.tagged != "" {
		cmd.Flags().StringArrayVar(&tags, "tag", nil, "only "+l.tagged+" carrying this tag (repeat: all of them)")
	}
	return cmd
}
