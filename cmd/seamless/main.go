// Command seamless fetches, backfills, imports and inspects market-data bars on the
// embedded store. Run `seamless --help` for the commands.
package main

import (
	"os"

	"github.com/seamless-data/seamless/internal/cli"
)

func main() { os.Exit(cli.Execute(os.Args[1:], os.Stdout, os.Stderr)) }
