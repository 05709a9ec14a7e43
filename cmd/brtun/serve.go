package main

// PLACEHOLDER serve command, written with the northbound package so that
// `brtun serve` builds and serves the REST API over the bbolt store. It runs
// NO controller (northbound.Options.Controller is nil: every host shows
// "disconnected", ports stay "pending", ?wait answers 504 and flows 503) and
// accepts --openflow-listen / --openflow-advertise without using them.
// The lead replaces this file with the full wiring; keep the flag names and
// readsEnv(cmd) so every flag also reads BRTUN_<FLAG>.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/brtun/brtun/northbound"
	"github.com/brtun/brtun/topology"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
)

type serveOptions struct {
	apiListen         string
	openflowListen    string
	openflowAdvertise string
	dataDir           string
	underlayMTU       int
	logLevel          string
}

func newServeCommand() *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the brtun controller and its REST API",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runServe(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.apiListen, "api-listen", "127.0.0.1:8080", "REST API listen address")
	f.StringVar(&o.openflowListen, "openflow-listen", "tcp:0.0.0.0:6653", "OpenFlow listen address for switches")
	f.StringVar(&o.openflowAdvertise, "openflow-advertise", "", "controller target written into managed bridges (empty: operator runs ovs-vsctl set-controller)")
	f.StringVar(&o.dataDir, "data-dir", "/var/lib/brtun", "directory of the state file")
	f.IntVar(&o.underlayMTU, "underlay-mtu", northbound.DefaultUnderlayMTU, "MTU of the underlay network (networks report the VM MTU that fits)")
	f.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	readsEnv(cmd)
	return cmd
}

func runServe(ctx context.Context, o serveOptions) error {
	level, err := zap.ParseAtomicLevel(o.logLevel)
	if err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	cfg := zap.NewProductionConfig()
	cfg.Level = level
	log, err := cfg.Build()
	if err != nil {
		return fmt.Errorf("build logger: %w", err)
	}
	defer func() { _ = log.Sync() }()

	store, err := topology.OpenBoltStore(o.dataDir)
	if err != nil {
		return err
	}
	defer func() {
		if err := store.Close(); err != nil {
			log.Error("close store", zap.Error(err))
		}
	}()
	api, err := northbound.New(northbound.Options{Store: store, Logger: log, UnderlayMTU: o.underlayMTU})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.apiListen)
	if err != nil {
		return fmt.Errorf("listen on --api-listen %s: %w", o.apiListen, err)
	}
	srv := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log.Warn("no controller in this build: serving the REST API only",
		zap.String("openflow_listen", o.openflowListen), zap.String("openflow_advertise", o.openflowAdvertise))
	log.Info("serving REST API", zap.String("addr", ln.Addr().String()), zap.String("data_dir", o.dataDir))

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve REST API: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shut down REST API: %w", err)
	}
	return nil
}
