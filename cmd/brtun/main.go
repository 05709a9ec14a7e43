// Command brtun is the brtun SDN controller (`brtun serve`) and its command
// line client (`brtun host|net|port|flows ...`), which talks to a running
// controller's REST API.
package main

import (
	"context"
	"os"
)

func main() {
	root := newRootCommand(os.Stdout, os.Stderr)
	code, _ := execute(context.Background(), root, os.Stderr)
	os.Exit(code)
}
