// Command mcp is the GitOps deployer's single binary: the node agent and the
// operator CLI. Everything here is wiring; the commands live in package cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"metacircular.net/mcp/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
