package cli

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"metacircular.net/mcp/api"
)

var jsonMarshal = json.Marshal

// versionInfo is `mcp version --json`.
type versionInfo struct {
	CLI api.Version `json:"cli"`
	// Agent is absent when no agent answered (see AgentError).
	Agent      *api.Version `json:"agent,omitempty"`
	AgentError string       `json:"agent_error,omitempty"`
	// Skew is true when the CLI and the agent are different builds.
	Skew bool `json:"skew"`
}

func newVersionCmd(s streams) *cobra.Command {
	var (
		socket  string
		asJSON  bool
		cliOnly bool
	)
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the CLI's version and the local agent's, warning when they differ",
		Long: `Version prints this mcp binary's version and asks the local agent for its own.
When they differ it warns on stderr: a CLI newer or older than the agent may
not know every field the agent reports. With --client, the agent is not
asked.

Exit status: 0, also when no agent is reachable (the CLI's version is still
printed and the reason is given), so it works on a machine without an agent.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := versionInfo{CLI: api.CurrentVersion()}
			if !cliOnly {
				v, err := agentClient(socket).Version(cmd.Context())
				switch {
				case err == nil:
					info.Agent = &v
				case errors.Is(err, api.ErrNotFound):
					// An agent from before GET /v1/version: its status
					// still names its build.
					st, serr := agentClient(socket).Status(cmd.Context())
					if serr != nil {
						info.AgentError = serr.Error()
					} else {
						info.Agent = &api.Version{Version: st.AgentVersion}
					}
				default:
					info.AgentError = err.Error()
				}
				info.Skew = info.Agent != nil && info.Agent.Version != info.CLI.Version
			}
			if asJSON {
				return writeJSON(s.out, info)
			}
			ew := &errWriter{w: s.out}
			ew.printf("cli:    %s (%s)\n", info.CLI.Version, info.CLI.GoVersion)
			switch {
			case cliOnly:
			case info.Agent != nil && info.Agent.GoVersion != "":
				ew.printf("agent:  %s (%s)\n", info.Agent.Version, info.Agent.GoVersion)
			case info.Agent != nil:
				ew.printf("agent:  %s\n", info.Agent.Version)
			default:
				ew.printf("agent:  unknown (%s)\n", info.AgentError)
			}
			if ew.err != nil {
				return ew.err
			}
			if info.Skew {
				fmt.Fprintf(s.err, "mcp: warning: the CLI (%s) and the agent (%s) are different builds; upgrade the older one\n",
					info.CLI.Version, info.Agent.Version)
			}
			return nil
		},
	}
	addSocketFlag(cmd, &socket)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print both versions as JSON")
	cmd.Flags().BoolVar(&cliOnly, "client", false, "print only the CLI's version; do not ask the agent")
	return cmd
}
