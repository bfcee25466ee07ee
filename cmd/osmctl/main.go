// Command osmctl is the command-line client of a running osmanager's
// local API. The verbs live in osmanager/internal/osmctl; it links the
// API's client, not the agent.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"osmanager/internal/osmctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := osmctl.Main(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
