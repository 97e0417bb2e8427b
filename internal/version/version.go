// Package version holds the build's version, injected at link time.
package version

// Version is set with -ldflags "-X metacircular.net/mcp/internal/version.Version=...".
var Version = "dev"
