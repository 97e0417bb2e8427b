package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"metacircular.net/mcp/api"
)

// socketEnv overrides the default socket of the commands that talk to the
// agent; --socket overrides both.
const socketEnv = "MCP_SOCKET"

// addSocketFlag registers --socket on a command that talks to the agent.
func addSocketFlag(cmd *cobra.Command, dst *string) {
	cmd.Flags().StringVar(dst, "socket", "", fmt.Sprintf("the agent's API socket (default $%s, else %s)", socketEnv, api.DefaultSocket))
}

// agentClient resolves the socket (--socket, $MCP_SOCKET, the default) and
// returns a client for it.
func agentClient(flag string) *api.Client {
	sock := flag
	if sock == "" {
		sock = os.Getenv(socketEnv)
	}
	if sock == "" {
		sock = api.DefaultSocket
	}
	return api.NewClient(sock)
}

// writeJSON prints v as indented JSON, the --json form of every command.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}

type statusFlags struct {
	socket string
	json   bool
}

func newStatusCmd(s streams) *cobra.Command {
	var f statusFlags
	var gf statusGitFlags // status_git.go: --repo, --node
	cmd := &cobra.Command{
		Use:   "status [SERVICE]",
		Short: "Show what the agent on this node runs",
		Long: `Status asks the local agent for its node, the commit it applied, the outcome
of its last reconcile, and every service with its components: state, version,
host ports, restarts and last error. Invalid definitions are shown with their
validation messages. With SERVICE, only that service.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if gf.repo != "" {
				return runStatusFromGit(cmd, s, gf, f.json)
			}
			c := agentClient(f.socket)
			var (
				st  api.Status
				err error
			)
			if len(args) == 1 {
				st, err = c.ServiceStatus(cmd.Context(), args[0])
			} else {
				st, err = c.Status(cmd.Context())
			}
			if err != nil {
				return err
			}
			if f.json {
				return writeJSON(s.out, st)
			}
			return renderStatus(s.out, st)
		},
	}
	addSocketFlag(cmd, &f.socket)
	cmd.Flags().BoolVar(&f.json, "json", false, "print the agent's status object as JSON")
	addStatusGitFlags(cmd, &gf)
	return cmd
}

// renderStatus prints the node summary, then a table of services and one of
// their components.
func renderStatus(w io.Writer, st api.Status) error {
	ew := &errWriter{w: w}
	ew.printf("node:            %s (agent %s)\n", st.Node, orDash(st.AgentVersion))
	commit := orDash(shortCommit(st.AppliedCommit))
	if st.Branch != "" {
		commit += " on " + st.Branch
	}
	ew.printf("applied commit:  %s\n", commit)
	ew.printf("last reconcile:  %s\n", reconcileLine(st.LastReconcile))
	if st.LastReconcile.Error != "" {
		ew.printf("                 %s\n", st.LastReconcile.Error)
	}
	if st.RuntimeError != "" {
		ew.printf("runtime:         %s\n", st.RuntimeError)
	}
	if ew.err != nil {
		return ew.err
	}
	if len(st.Services) == 0 {
		ew.printf("\nno services on this node\n")
		return ew.err
	}
	ew.printf("\n")
	if err := renderServices(w, st.Services); err != nil {
		return err
	}
	if err := renderRoutes(w, st.Services); err != nil {
		return err
	}
	if err := renderRecords(w, st.Services); err != nil { // status_records.go
		return err
	}
	if err := renderCerts(w, st.Services, time.Now()); err != nil { // status_certs.go
		return err
	}
	return renderRollout(w, st.Services) // status_rollout.go: health, waits, drift
}

// renderServices prints the services table and, when any service has
// components, the components table.
func renderServices(w io.Writer, services []api.ServiceStatus) error {
	pal := paletteFor(w) // states in colour on a terminal (color.go)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	ew := &errWriter{w: tw}
	ew.printf("SERVICE\t%s\tCOMMIT\tERROR\n", pal.paint(sgrPlain, "STATE"))
	for _, svc := range services {
		// One line per problem, the first beside the service, so long
		// diagnostics stay readable and columns stay aligned.
		problems := slices.Clone(svc.Diagnostics)
		if svc.Error != "" {
			problems = append([]string{svc.Error}, problems...)
		}
		first := "-"
		if len(problems) > 0 {
			first = problems[0]
		}
		ew.printf("%s\t%s\t%s\t%s\n", svc.Name, pal.state(svc.State), orDash(shortCommit(svc.Commit)), first)
		for _, p := range problems[min(1, len(problems)):] {
			ew.printf("\t\t\t%s\n", p)
		}
	}
	if ew.err == nil {
		ew.err = tw.Flush()
	}
	if ew.err != nil {
		return ew.err
	}

	hasComponents := slices.ContainsFunc(services, func(s api.ServiceStatus) bool { return len(s.Components) > 0 })
	if !hasComponents {
		return nil
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	ew = &errWriter{w: tw}
	ew.printf("SERVICE\tCOMPONENT\t%s\tVERSION\tPORTS\tRESTARTS\tLAST ERROR\n", pal.paint(sgrPlain, "STATE"))
	for _, svc := range services {
		for _, c := range svc.Components {
			ew.printf("%s\t%s\t%s\t%s\t%s\t%d\t%s\n", svc.Name, c.Name, pal.state(orDash(c.State)), orDash(c.Version), ports(c.Ports), c.Restarts, orDash(c.LastError))
		}
	}
	if ew.err == nil {
		ew.err = tw.Flush()
	}
	return ew.err
}

// reconcileLine summarises a reconcile on one line.
func reconcileLine(r api.Reconcile) string {
	if r.Started.IsZero() {
		return "none yet"
	}
	var b strings.Builder
	b.WriteString(formatTime(r.Started))
	if r.Finished.IsZero() {
		b.WriteString(": running")
		return b.String()
	}
	fmt.Fprintf(&b, ": %s", orDash(r.Result))
	var details []string
	if r.Commit != "" {
		details = append(details, "commit "+shortCommit(r.Commit))
	}
	details = append(details, fmt.Sprintf("%d step%s", r.Steps, plural(r.Steps)))
	if r.PlanHash != "" {
		details = append(details, "plan "+shortHash(r.PlanHash))
	}
	details = append(details, "took "+r.Finished.Sub(r.Started).Round(time.Millisecond).String())
	fmt.Fprintf(&b, " (%s)", strings.Join(details, ", "))
	return b.String()
}

// formatTime prints a time in the zone the agent reported it in, so the
// output does not depend on where the CLI runs.
func formatTime(t time.Time) string {
	return t.Format("2006-01-02 15:04:05 MST")
}

// ports renders a component's leased host ports: just the port for a
// single unnamed route, else name=port pairs; fixed ports are marked.
func ports(m map[string]int) string {
	if len(m) == 0 {
		return "-"
	}
	if p, ok := m["default"]; ok && len(m) == 1 {
		return strconv.Itoa(p)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		if strings.HasPrefix(k, "fixed:") {
			parts[i] = fmt.Sprintf("%d(fixed)", m[k])
		} else {
			parts[i] = fmt.Sprintf("%s=%d", k, m[k])
		}
	}
	return strings.Join(parts, ",")
}

// shortCommit abbreviates a commit id the way git does by default.
func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}

// shortHash abbreviates "sha256:<hex>" to its first 12 hex digits.
func shortHash(h string) string {
	algo, hex, ok := strings.Cut(h, ":")
	if ok && len(hex) > 12 {
		return algo + ":" + hex[:12]
	}
	return h
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// errWriter keeps the first write error so rendering code can print freely
// and check once.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err != nil {
		return
	}
	_, e.err = fmt.Fprintf(e.w, format, args...)
}
