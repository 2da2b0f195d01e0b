// Command render writes deploy/dashboards/rendered/*.json from the Jsonnet sources.
// It runs from deploy/ through `go generate ./deploy`.
package main

import (
	"fmt"
	"os"

	"github.com/seamless-data/seamless/deploy"
)

func main() {
	if err := deploy.WriteDashboards("."); err != nil {
		fmt.Fprintln(os.Stderr, "render dashboards:", err)
		os.Exit(1)
	}
}
