package main

import (
	"slices"
	"testing"
)

const local = "github.com/seamless-data/seamless"

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string
	}{
		{"NoImports", "package p\n", nil},
		{"Single", "package p\n\nimport \"fmt\"\n", nil},
		{"ThreeGroups", `package p

import (
	"context"
	"fmt"

	"go.uber.org/goleak"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/grid"
)
`, nil},
		{"CommentedAndNamed", `package p

import (
	// fmt for printing
	"fmt"
	_ "embed"

	clientv3 "go.etcd.io/etcd/client/v3"
)
`, nil},
		{"OnlyOurs", `package p

import "github.com/seamless-data/seamless/frame"
`, nil},
		{"ThirdPartyInStdGroup", `package p

import (
	"context"

	"fmt"
	"go.opentelemetry.io/otel/trace"
	"log/slog"

	"github.com/seamless-data/seamless/grid"
)
`, []string{
			`x.go:7: third-party import "go.opentelemetry.io/otel/trace" in a group of standard-library imports`,
			`x.go:6: standard-library imports split across groups (the group at line 4 is one too)`,
		}},
		{"StdSplit", `package p

import (
	"context"

	"errors"
)
`, []string{`x.go:6: standard-library imports split across groups (the group at line 4 is one too)`}},
		{"OursBeforeThirdParty", `package p

import (
	"github.com/seamless-data/seamless"

	"go.uber.org/goleak"
)
`, []string{`x.go:6: third-party imports after own-module imports (want standard library, third-party, own module)`}},
		{"OursMixedWithThirdParty", `package p

import (
	"go.uber.org/goleak"
	"github.com/seamless-data/seamless"
)
`, []string{`x.go:5: own-module import "github.com/seamless-data/seamless" in a group of third-party imports`}},
		{"TwoDecls", `package p

import "fmt"
import "os"
`, []string{`x.go:4: standard-library imports split across groups (the group at line 3 is one too)`}},
		{"PrefixIsNotOurs", `package p

import (
	"fmt"

	"github.com/seamless-data/seamless-extra"
)
`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Check("x.go", []byte(tc.src), local)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("Check =\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

func TestCheckSyntaxError(t *testing.T) {
	if _, err := Check("x.go", []byte("package p\nimport (\n"), local); err == nil {
		t.Fatal("want a parse error")
	}
}
