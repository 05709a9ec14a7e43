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
	outputText  = "text" // flows only: ovs-ofctl lines
)

// Command annotations.
const (
	// envAnnotation marks a command whose own flags also read BRTUN_* variables.
	envAnnotation = "brtun/env"
	// textAnnotation marks a command that also has -o text.
	textAnnotation = "brtun/text-output"
)

// cliOptions are the settings every client command shares.
type cliOptions struct {
	server    string
	output    string
	tokenFile string // API bearer token
	caFile    string // CA of an https:// server
	out       io.Writer
}

// newRootCommand builds the brtun command tree. Commands print results to
// stdout and errors (through cobra) to stderr.
func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	o := &cliOptions{out: stdout}
	root := &cobra.Command{
		Use:           "brtun",
		Short:         "brtun: an SDN controller for Open vSwitch tunnel overlays",
		SilenceUsage:  true,
		SilenceErrors: false,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if err := applyEnv(cmd.Root().PersistentFlags()); err != nil {
				return err
			}
			if cmd.Annotations[envAnnotation] == "true" {
				if err := applyEnv(cmd.LocalFlags()); err != nil {
					return err
				}
			}
			switch {
			case o.output == outputTable, o.output == outputJSON:
			case o.output == outputText && cmd.Annotations[textAnnotation] == "true":
			default:
				return fmt.Errorf("-o %q: want table or json", o.output)
			}
			return nil
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.StringVar(&o.server, "server", defaultServer, "brtun REST API address (env BRTUN_SERVER)")
	pf.StringVarP(&o.output, "output", "o", outputTable, "output format: table or json (env BRTUN_OUTPUT)")
	pf.StringVar(&o.tokenFile, "token-file", "", "file holding the API token of brtun serve --api-token-file (env BRTUN_TOKEN_FILE)")
	pf.StringVar(&o.caFile, "ca-file", "", "CA certificate (PEM) to verify an https:// --server with, instead of the system's (env BRTUN_CA_FILE)")

	root.AddCommand(
		newServeCommand(),
		newHostCommand(o),
		newNetCommand(o),
		newPortCommand(o),
		newFlowsCommand(o),
		newVTEPCommand(o),
		newBGPCommand(o),
	)
	return root
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
