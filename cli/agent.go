package cli

import (
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"metacircular.net/mcp/agent"
)

func newAgentCmd(s streams) *cobra.Command {
	var (
		config string
		once   bool
	)
	cmd := &cobra.Command{
		Use:   "agent --config FILE",
		Short: "Run the node agent: follow the repo and converge this node on it",
		Long: `The agent follows the desired-state repository, plans every change against
the node's registry and applies it: host ports, images, containers. It serves
the local API that status, ps, logs, sync and plan --socket use.

SIGTERM or Ctrl-C stop the agent cleanly; the containers keep running.
With --once it reconciles a single time and exits: 0 when every service
converged, 1 otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := agent.LoadConfig(config)
			if err != nil {
				return err
			}
			log := newLogger(s, cfg.Log)
			out, err := agent.Daemon(cmd.Context(), cfg, log, once)
			if err != nil {
				return err
			}
			if once && out.Result != agent.ResultOK {
				fmt.Fprintf(s.err, "reconcile %s: %s\n", out.Result, out.Err)
				return exitError{ExitError}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&config, "config", "/etc/mcp/agent.toml", "agent configuration file")
	cmd.Flags().BoolVar(&once, "once", false, "reconcile once and exit")
	return cmd
}

func newLogger(s streams, c agent.LogConfig) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.SlogLevel()}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(s.err, opts))
	}
	return slog.New(slog.NewTextHandler(s.err, opts))
}
