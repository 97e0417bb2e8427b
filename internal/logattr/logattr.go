// Package logattr builds the attributes every log line about a service
// carries, so that one query (service="web" in JSON logs, or grep
// service=web in text) finds everything mcp said about it, whichever
// package said it.
package logattr

import "log/slog"

// Keys used on every line about a service.
const (
	KeyService   = "service"
	KeyComponent = "component"
	KeyCommit    = "commit"
	KeyPlan      = "plan"
)

// Service returns the service, component, commit and plan hash attributes
// as slog key-value arguments. All four keys are always present (empty when
// not known, e.g. the plan of a repair made outside any plan) so JSON log
// consumers see one shape.
func Service(service, component, commit, plan string) []any {
	return []any{
		slog.String(KeyService, service),
		slog.String(KeyComponent, component),
		slog.String(KeyCommit, commit),
		slog.String(KeyPlan, plan),
	}
}

// With appends more key-value arguments to the service attributes, for a
// call like log.Warn("msg", logattr.With(attrs, "err", err)...).
func With(attrs []any, more ...any) []any {
	out := make([]any, 0, len(attrs)+len(more))
	out = append(out, attrs...)
	return append(out, more...)
}
