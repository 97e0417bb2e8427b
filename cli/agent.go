package cli

import (
	"fmt"
	"log/slog"
	"os"
	"syscall"

	"github.com/spf13/cobra"

	"metacircular.net/mcp/agent"
)

func newAgentCmd(s streams) *cobra.Command {
	var (
		config     string
		once       bool
		crashAfter int
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
			var opts []agent.DaemonOption
			if crashAfter > 0 {
				opts = append(opts, agent.WithAfterStep(crashAfterStep(s, crashAfter)))
			}
			out, err := agent.Daemon(cmd.Context(), cfg, log, once, opts...)
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
	cmd.Flags().IntVar(&crashAfter, "crash-after-step", 0,
		"test hook: kill the agent with SIGKILL right after the Nth plan step of a reconcile finished (0: never)")
	_ = cmd.Flags().MarkHidden("crash-after-step")
	return cmd
}

// crashAfterStep is the crash-injection hook behind --crash-after-step:
// after the nth finished step the process kills itself with SIGKILL, so
// nothing runs after it (no deferred cleanup, no registry close, no flush),
// exactly as if the machine's OOM killer or an operator's kill -9 had hit
// it between two steps.
func crashAfterStep(s streams, n int) func(int) {
	return func(done int) {
		if done != n {
			return
		}
		fmt.Fprintf(s.err, "mcp: crash injection: killing the agent after step %d\n", n)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		// SIGKILL cannot be caught; should it somehow not be delivered at
		// once, exit without cleanup anyway, with the shell's code for it.
		os.Exit(137)
	}
}

func newLogger(s streams, c agent.LogConfig) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.SlogLevel()}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(s.err, opts))
	}
	return slog.New(slog.NewTextHandler(s.err, opts))
}
