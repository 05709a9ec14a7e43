// Command brtun-cni is a CNI plugin that puts containers on brtun
// networks. ADD creates a veth pair, moves one end into the container's
// namespace as CNI_IFNAME and registers the other, left in the host's
// namespace, as a brtun port through brtun's REST API (brtun's binding puts
// it on br-int; the plugin never talks to OVSDB). brtun generates the
// port's MAC and, on networks with subnets, allocates its addresses, unless
// the configuration delegates addressing to an IPAM plugin such as
// host-local. See docs/operations.md.
//
// Network configuration:
//
//	{"cniVersion":"1.0.0","name":"blue","type":"brtun-cni","server":"http://IP:PORT",
//	 "network":"blue","host":"h1","token_file":"/etc/brtun/token"}
//
// Test hook: with BRTUN_CNI_TEST_PAUSE_AT set to an ADD step (veth, port,
// configured), ADD writes its PID to the file BRTUN_CNI_TEST_PAUSE_FILE
// when it reaches that step and then waits to be killed; the integration
// tests kill it there to check that DEL cleans up after a half-done ADD.
package main

import (
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Environment variables of the test hook.
const (
	envPauseAt   = "BRTUN_CNI_TEST_PAUSE_AT"
	envPauseFile = "BRTUN_CNI_TEST_PAUSE_FILE"
)

func main() {
	p := &plugin{
		log:      newLogger(),
		dp:       linuxDataplane{},
		ipam:     delegatedIPAM{},
		http:     &http.Client{Timeout: requestTimeout + defaultBindWait},
		out:      os.Stdout,
		bindWait: defaultBindWait,
		pause:    pauseHook(os.Getenv(envPauseAt), os.Getenv(envPauseFile)),
	}
	defer func() { _ = p.log.Sync() }()
	skel.PluginMainFuncs(skel.CNIFuncs{Add: p.Add, Del: p.Del, Check: p.Check, Status: p.Status, GC: p.GC},
		version.PluginSupports("0.4.0", "1.0.0", "1.1.0"), "brtun-cni: CNI plugin for brtun networks")
}

// newLogger logs JSON lines to stderr (stdout carries the CNI result), at
// info level and above.
func newLogger() *zap.Logger {
	cfg := zap.NewProductionConfig()
	cfg.OutputPaths = []string{"stderr"}
	cfg.Level = zap.NewAtomicLevelAt(zapcore.InfoLevel)
	log, err := cfg.Build()
	if err != nil {
		return zap.NewNop()
	}
	return log.Named("brtun-cni")
}

// pauseHook returns the test hook's pause: at step at, write the PID to
// file and wait until killed. Without at it does nothing.
func pauseHook(at, file string) func(step string) {
	return func(step string) {
		if at == "" || step != at {
			return
		}
		if file != "" {
			_ = os.WriteFile(file, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
		}
		for {
			time.Sleep(time.Hour)
		}
	}
}
