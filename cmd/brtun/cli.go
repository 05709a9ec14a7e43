package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// defaultServer is where the CLI looks for brtun when neither --server nor
// BRTUN_SERVER says otherwise.
const defaultServer = "http://127.0.0.1:8080"

// Output formats of -o.
const (
	outputTable = "table"
	outputJSON  = "json"
	outputYAML  = "yaml"
	outputName  = "name" // the objects' names, one a line (NET/NAME for ports and subnets)
	outputText  = "text" // flows only: ovs-ofctl lines
)

// defaultTimeout is the default of --timeout.
const defaultTimeout = 30 * time.Second

// Command annotations.
const (
	// envAnnotation marks a command whose own flags also read BRTUN_* variables.
	envAnnotation = "brtun/env"
	// textAnnotation marks a command that also has -o text.
	textAnnotation = "brtun/text-output"
	// noClientAnnotation marks a command that does not talk to the REST API.
	noClientAnnotation = "brtun/no-client"
)

// cliOptions are the settings every client command shares.
type cliOptions struct {
	server    string
	output    string
	tokenFile string // API bearer token
	caFile    string // CA of an https:// server
	timeout   time.Duration
	out       io.Writer
}

// newRootCommand builds the brtun command tree. Commands print results to
// stdout; execute prints errors to stderr.
func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	o := &cliOptions{out: stdout}
	root := &cobra.Command{
		Use:   "brtun",
		Short: "brtun: an SDN controller for Open vSwitch tunnel overlays",
		Long: `brtun: an SDN controller for Open vSwitch tunnel overlays.

'brtun serve' runs the controller; the other commands are its client and
talk to its REST API (--server). Commands that print objects take
-o table (default), json, yaml or name (one name a line, NET/NAME for ports
and subnets); under -o json (yaml) errors are printed to stderr as JSON
(YAML) too.

` + exitCodesHelp,
		Version:       buildVersion(),
		SilenceUsage:  true,
		SilenceErrors: true, // execute prints them
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Annotations[envAnnotation] == "true" {
				if err := applyEnv(cmd.LocalFlags()); err != nil {
					return err
				}
			}
			if !isClient(cmd) {
				return noClientFlags(cmd)
			}
			if err := applyEnv(cmd.Root().PersistentFlags()); err != nil {
				return err
			}
			switch o.output {
			case outputTable, outputJSON, outputYAML, outputName:
			case outputText:
				if cmd.Annotations[textAnnotation] != "true" {
					return fmt.Errorf("-o text is for flows only; want table, json, yaml or name")
				}
			default:
				return fmt.Errorf("-o %q: want table, json, yaml or name", o.output)
			}
			if o.timeout < 0 {
				return fmt.Errorf("--timeout %s: want 0 (none) or a positive duration", o.timeout)
			}
			return nil
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetVersionTemplate(versionLine() + "\n")
	pf := root.PersistentFlags()
	pf.StringVar(&o.server, "server", defaultServer, "brtun REST API address (env BRTUN_SERVER)")
	pf.StringVarP(&o.output, "output", "o", outputTable, "output format: table, json, yaml or name (env BRTUN_OUTPUT)")
	pf.StringVar(&o.tokenFile, "token-file", "", "file holding the API token of brtun serve --api-token-file (env BRTUN_TOKEN_FILE)")
	pf.StringVar(&o.caFile, "ca-file", "", "CA certificate (PEM) to verify an https:// --server with, instead of the system's (env BRTUN_CA_FILE)")
	pf.DurationVar(&o.timeout, "timeout", defaultTimeout, "longest wait for the server's answer to a request, on top of any --wait; 0: no limit (env BRTUN_TIMEOUT)")
	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(
		[]string{outputTable, outputJSON, outputYAML, outputName}, cobra.ShellCompDirectiveNoFileComp))

	root.AddCommand(
		newServeCommand(),
		newVersionCommand(o),
		newHostCommand(o),
		newNetCommand(o),
		newSubnetCommand(o),
		newPortCommand(o),
		newFlowsCommand(o),
		newStoreCommand(o),
		newVTEPCommand(o),
		newBGPCommand(o),
		newTraceCommand(o),
	)
	root.InitDefaultCompletionCmd() // brtun completion bash|zsh|fish|powershell, now so that finishTree sees it
	finishTree(root, o)
	return root
}

// withoutClientFlags marks a command that does not talk to the REST API
// (serve): its help shows only its own flags, and the client's global flags
// (--server, -o, ...) are refused. Its subcommands inherit the mark.
func withoutClientFlags(cmd *cobra.Command) {
	if cmd.Annotations == nil {
		cmd.Annotations = make(map[string]string)
	}
	cmd.Annotations[noClientAnnotation] = "true"
	cmd.SetUsageTemplate(`Usage:{{if .Runnable}}
  {{.UseLine}}{{end}}{{if .HasAvailableSubCommands}}
  {{.CommandPath}} [command]{{end}}{{if .HasAvailableSubCommands}}

Available Commands:{{range .Commands}}{{if .IsAvailableCommand}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}{{if .HasAvailableLocalFlags}}

Flags:
{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}
`)
}

// isClient tells whether cmd talks to the REST API and so takes the global
// client flags.
func isClient(cmd *cobra.Command) bool {
	for c := cmd; c != nil; c = c.Parent() {
		if c.Annotations[noClientAnnotation] == "true" {
			return false
		}
	}
	return true
}

// noClientFlags refuses the client's global flags on a command that does
// not talk to the REST API.
func noClientFlags(cmd *cobra.Command) error {
	var err error
	cmd.Root().PersistentFlags().VisitAll(func(f *pflag.Flag) {
		if err == nil && f.Changed {
			err = fmt.Errorf("--%s is a flag of the client commands; %s does not take it", f.Name, cmd.CommandPath())
		}
	})
	return err
}

// readsEnv makes every flag of cmd also read BRTUN_<FLAG_NAME> (upper case,
// '-' as '_'); a flag given on the command line wins. Use it for `serve`.
func readsEnv(cmd *cobra.Command) {
	if cmd.Annotations == nil {
		cmd.Annotations = make(map[string]string)
	}
	cmd.Annotations[envAnnotation] = "true"
}

// envName is the environment variable a flag reads: --api-listen -> BRTUN_API_LISTEN.
func envName(flag string) string {
	return "BRTUN_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applyEnv sets every flag of fs that the command line did not set from its
// environment variable, when that is set.
func applyEnv(fs *pflag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed {
			return
		}
		v, ok := os.LookupEnv(envName(f.Name))
		if !ok {
			return
		}
		if e := fs.Set(f.Name, v); e != nil {
			err = fmt.Errorf("$%s: %w", envName(f.Name), e)
		}
	})
	return err
}

// addWaitFlag gives a write command --wait.
func addWaitFlag(cmd *cobra.Command, wait *time.Duration) {
	cmd.Flags().DurationVar(wait, "wait", 0, "wait until every bridge the change touches has applied it (e.g. 5s)")
}
