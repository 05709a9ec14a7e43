package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"

	"github.com/spf13/cobra"
)

// Exit codes of brtun. exitCodesHelp documents them in `brtun --help`;
// docs/operations.md has the same table.
const (
	exitOK         = 0
	exitError      = 1 // anything not listed below
	exitUsage      = 2 // the command line is wrong, or the API refused the request as invalid (400)
	exitNotFound   = 3 // 404
	exitConflict   = 4 // 409, 412
	exitServer     = 5 // 5xx, 408, or no answer at all
	exitNotApplied = 6 // 504 not_applied / not_bound: committed, but the wait expired
)

const exitCodesHelp = `Exit codes:
  0  success
  1  any other error (authentication, unreadable --token-file, ...)
  2  usage: unknown command or flag, wrong arguments or flag values, or a
     request the API refused as invalid (HTTP 400)
  3  not found (HTTP 404)
  4  conflict: the object exists, is in use, a pool is used up (HTTP 409),
     or it changed since it was read (HTTP 412: read again and retry)
  5  server error or no answer: HTTP 5xx or 408, connection refused, TLS
     failure, --timeout expired (a write may or may not be committed)
  6  committed but not applied: the write is stored, but not every bridge
     applied it within --wait (HTTP 504 not_applied); port wait: the port
     was not bound in time (HTTP 504 not_bound)`

// usageError is a wrong command line found while a command runs (a flag
// value the command checks itself): exit code 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usageErrorf makes a usage error: exit code 2.
func usageErrorf(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

// runError marks an error a command's RunE returned. Errors without it come
// from cobra itself (flag parsing, arguments, required flags) or from the
// checks before a command runs: usage errors.
type runError struct{ err error }

func (e *runError) Error() string { return e.err.Error() }
func (e *runError) Unwrap() error { return e.err }

// exitCode is the exit code of an error Execute returned.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var ue *usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	var ae *apiError
	if errors.As(err, &ae) {
		return exitCodeOfStatus(ae.status, ae.body.Error.Code)
	}
	var re *runError
	if !errors.As(err, &re) {
		return exitUsage
	}
	var urlErr *url.Error
	var netErr net.Error
	if errors.As(err, &urlErr) || errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded) {
		return exitServer
	}
	return exitError
}

// exitCodeOfStatus maps an API error answer to an exit code.
func exitCodeOfStatus(status int, code string) int {
	switch {
	case status == http.StatusBadRequest:
		return exitUsage
	case status == http.StatusNotFound:
		return exitNotFound
	case status == http.StatusConflict, status == http.StatusPreconditionFailed:
		return exitConflict
	case status == http.StatusGatewayTimeout && (code == "not_applied" || code == "not_bound"):
		return exitNotApplied
	case status == http.StatusRequestTimeout, status >= 500:
		return exitServer
	}
	return exitError
}

// finishTree gives every command of the tree the shared behaviour, so that
// a command only has to be added to the tree to get it:
//   - a group (a command with subcommands and nothing to run) refuses an
//     unknown verb (`brtun host delete`) as a usage error instead of
//     printing its help and succeeding;
//   - errors of a command's RunE are marked, so that exitCode tells them from
//     cobra's usage errors;
//   - the shell completes its arguments with the server's names (addCompletion).
func finishTree(cmd *cobra.Command, o *cliOptions) {
	addCompletion(cmd, o)
	if cmd.HasSubCommands() && !cmd.Runnable() && cmd.HasParent() {
		cmd.Args = func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return nil
			}
			msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
			if s := c.SuggestionsFor(args[0]); len(s) > 0 {
				msg += fmt.Sprintf(" (did you mean %q?)", s[0])
			}
			return usageErrorf("%s", msg)
		}
		cmd.RunE = func(c *cobra.Command, args []string) error { return c.Help() }
	}
	// Other CLIs' verbs suggest brtun's: `brtun host delete` -> did you mean "rm"?
	switch cmd.Name() {
	case "rm":
		cmd.SuggestFor = append(cmd.SuggestFor, "delete", "remove")
	case "list":
		cmd.SuggestFor = append(cmd.SuggestFor, "ls")
	case "show":
		cmd.SuggestFor = append(cmd.SuggestFor, "get", "describe")
	}
	if run := cmd.RunE; run != nil {
		cmd.RunE = func(c *cobra.Command, args []string) error {
			if err := run(c, args); err != nil {
				return &runError{err: err}
			}
			return nil
		}
	}
	for _, sub := range cmd.Commands() {
		finishTree(sub, o)
	}
}

// execute runs the command tree root (its args set) and prints an error to
// stderr: as text, or as JSON (YAML) under -o json (-o yaml). It returns the
// exit code and the error.
func execute(ctx context.Context, root *cobra.Command, stderr io.Writer) (int, error) {
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK, nil
	}
	code := exitCode(err)
	format := outputTable
	if f := root.PersistentFlags().Lookup("output"); f != nil && f.Changed {
		format = f.Value.String()
	} else if v, ok := os.LookupEnv(envName("output")); ok {
		format = v // the error came before BRTUN_OUTPUT was applied
	}
	if cmd != nil && !isClient(cmd) {
		format = outputTable
	}
	printError(stderr, format, cmd, err, code)
	return code, err
}

// errorJSON is an error under -o json: the API's error body (when the error
// is an API answer) with the HTTP status and the exit code.
type errorJSON struct {
	Error struct {
		Code       string   `json:"code"`
		Message    string   `json:"message"`
		Field      string   `json:"field,omitempty"`
		NotApplied []string `json:"not_applied,omitempty"`
		HTTPStatus int      `json:"http_status,omitempty"`
	} `json:"error"`
	ExitCode int `json:"exit_code"`
}

// localErrorCode is the code of errorJSON for an error that is no API answer.
func localErrorCode(exit int) string {
	switch exit {
	case exitUsage:
		return "usage"
	case exitServer:
		return "unreachable"
	}
	return "error"
}

func printError(w io.Writer, format string, cmd *cobra.Command, err error, code int) {
	if format == outputJSON || format == outputYAML {
		var body errorJSON
		body.ExitCode = code
		var ae *apiError
		if errors.As(err, &ae) {
			d := ae.body.Error
			body.Error.Code, body.Error.Message, body.Error.Field, body.Error.NotApplied = d.Code, d.Message, d.Field, d.NotApplied
			body.Error.HTTPStatus = ae.status
		} else {
			body.Error.Code, body.Error.Message = localErrorCode(code), err.Error()
		}
		raw, mErr := json.Marshal(body)
		if mErr == nil && printFormatted(w, format, raw) == nil {
			return
		}
	}
	fmt.Fprintln(w, "Error:", err.Error())
	if code == exitUsage && cmd != nil {
		fmt.Fprintf(w, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
}
