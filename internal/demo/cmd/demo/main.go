// Command demo drives mcp's quick start; demo.sh builds and runs it after
// starting a private containerd and registry. Wiring only: the logic is in
// package internal/demo.
//
//	demo up --registry HOST:PORT [--state DIR] [--work DIR] [--containerd SOCK] [--mcp BIN] [--proxy-port PORT]
//	demo status [--state DIR]
//	demo down [--state DIR] [--remove-work] [--keep-state]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"metacircular.net/mcp/internal/demo"
)

const defaultState = "/var/lib/mcp-demo"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("usage: demo up|status|down [flags]")
	}
	fs := flag.NewFlagSet("demo "+args[0], flag.ContinueOnError)
	state := fs.String("state", defaultState, "the demo's state directory")
	p := demo.NewPrinter(os.Stdout)
	switch args[0] {
	case "up":
		var s demo.Settings
		fs.StringVar(&s.WorkDir, "work", "", "the working clone to create (default STATE/work)")
		fs.StringVar(&s.Containerd, "containerd", "", "containerd socket (default STATE/containerd.sock)")
		fs.StringVar(&s.Registry, "registry", "", "host:port of a plain-HTTP registry (required)")
		fs.StringVar(&s.MCP, "mcp", "bin/mcp", "the mcp binary")
		fs.StringVar(&s.Namespace, "namespace", demo.Namespace, "containerd namespace for the demo's containers")
		fs.StringVar(&s.Owner, "owner", "", "uid:gid to give the repo and the clone to")
		fs.IntVar(&s.ProxyPort, "proxy-port", 0, fmt.Sprintf("haproxy's listener on 127.0.0.1 (default: the first free port of %d-%d)", demo.ProxyPortFirst, demo.ProxyPortLast))
		timeout := fs.Duration("timeout", 3*time.Minute, "how long to wait for the service")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		var err error
		if s.StateDir, err = filepath.Abs(*state); err != nil {
			return err
		}
		if s.WorkDir == "" {
			s.WorkDir = filepath.Join(s.StateDir, "work")
		}
		if s.Containerd == "" {
			s.Containerd = filepath.Join(s.StateDir, "containerd.sock")
		}
		for _, p := range []*string{&s.WorkDir, &s.Containerd, &s.MCP} {
			if *p, err = filepath.Abs(*p); err != nil {
				return err
			}
		}
		err = demo.Up(ctx, s, p, *timeout)
		if errors.Is(err, demo.ErrRunning) {
			p.Step("%v", err)
			return demo.Status(ctx, s, p)
		}
		return err
	case "status", "down":
		var o demo.DownOptions
		fs.BoolVar(&o.RemoveWork, "remove-work", false, "down: also remove the working clone when it is outside the state dir")
		fs.BoolVar(&o.KeepState, "keep-state", false, "down: stop the agent and haproxy and remove the containers only; leave the state dir and the daemons demo.sh started")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		s, err := demo.Load(*state)
		if err != nil {
			return err
		}
		if args[0] == "status" {
			return demo.Status(ctx, s, p)
		}
		return demo.Down(ctx, s, p, o)
	}
	return fmt.Errorf("unknown command %q: want up, status or down", args[0])
}
