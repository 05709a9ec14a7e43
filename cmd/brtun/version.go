package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
)

// version is brtun's version, set at build time by the Makefile's build
// target: go build -ldflags "-X main.version=$(git describe ...)". It is a
// package variable because the linker can set nothing else; read it only
// through buildVersion.
var version string

// buildVersion is brtun's version: the one injected at build time, else the
// module version Go stamped into the binary (go install ...@v1.2.3, or the
// VCS pseudo-version of a build in a git checkout), else "dev".
func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// versionInfo is `brtun version -o json`.
type versionInfo struct {
	Version   string `json:"version"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
}

func currentVersion() versionInfo {
	return versionInfo{Version: buildVersion(), GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
}

// versionLine is what `brtun version` and `brtun --version` print.
func versionLine() string {
	v := currentVersion()
	return fmt.Sprintf("brtun %s (%s, %s)", v.Version, v.GoVersion, v.Platform)
}

func newVersionCommand(o *cliOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print brtun's version (that of a running server: the brtun_build_info metric on /metrics)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.output == outputTable || o.output == outputName {
				_, err := fmt.Fprintln(o.out, versionLine())
				return err
			}
			raw, err := json.Marshal(currentVersion())
			if err != nil {
				return fmt.Errorf("encode version: %w", err)
			}
			return printFormatted(o.out, o.output, raw)
		},
	}
}

// newBuildInfo is the brtun_build_info metric `brtun serve` serves: always
// 1, its labels say which brtun runs.
func newBuildInfo() prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "brtun_build_info",
		Help:        "Always 1; the labels are the version of the running brtun and the Go version it was built with.",
		ConstLabels: prometheus.Labels{"version": buildVersion(), "go_version": runtime.Version()},
	})
	g.Set(1)
	return g
}
