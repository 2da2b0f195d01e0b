package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/seamless-data/seamless"
)

// shownSetting is one setting as config show prints it.
type shownSetting struct {
	Key string `json:"key"`
	Env string `json:"env"`
	// Value is the value in effect (secrets redacted); "" when unset and the default
	// is not a literal value (see Default).
	Value string `json:"value"`
	// Source is default, file, env or flag; Origin details it (the file's path, the
	// variable read, the flag).
	Source string `json:"source"`
	Origin string `json:"origin"`
	// Default is the default as the settings table documents it.
	Default string `json:"default"`
	Flag    string `json:"flag,omitempty"`
	Doc     string `json:"doc"`
}

// show lists every setting of the table, in its order, with its effective value and
// where that came from.
func (c *config) show() []shownSetting {
	out := make([]shownSetting, 0, len(c.table))
	for _, s := range c.table {
		v := c.value(s.Key)
		raw := v.raw
		if raw == "" {
			raw = s.Default // set empty: the default applies
		}
		def := s.Default
		if s.DefaultDoc != "" {
			def = s.DefaultDoc
		}
		out = append(out, shownSetting{Key: s.Key, Env: s.Env(), Value: redact(s.Secret, raw), Source: v.source.String(),
			Origin: v.origin, Default: def, Flag: s.Flag, Doc: plainDoc(s.Doc)})
	}
	return out
}

func newConfigCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Inspect the configuration (the settings table)"}
	var format string
	show := &cobra.Command{
		Use:   "show",
		Short: "Print every setting's effective value and where it came from (default, file, env, flag)",
		Long: `Print every setting of the settings table: its variable, the value in effect and
where that value came from — the default, the configuration file, the environment (the
variable read, QMTL_… when the reference's alias gave it) or a flag. Later wins:
file < env < flags. Secrets (API tokens, S3 keys, DSN and URL passwords) are redacted.

Values are shown as given: a bad one is shown here and refused by the commands that
use it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "table" && format != "json" {
				return g.fail(&seamless.RequestError{Field: "format", Message: fmt.Sprintf("unknown format %q (want table or json)", format)}, false)
			}
			c := g.config()
			rows := c.show()
			return writeOutput(g, "", func(w io.Writer) error {
				if format == "json" {
					return json.NewEncoder(w).Encode(map[string]any{"config_file": c.path, "settings": rows})
				}
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "SETTING\tVALUE\tSOURCE")
				for _, r := range rows {
					val := r.Value
					if val == "" && r.Source == "default" && r.Default != "" {
						val = "(" + r.Default + ")"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Env, val, r.Origin)
				}
				return tw.Flush()
			})
		},
	}
	show.Flags().StringVar(&format, "format", "table", "table | json")
	cmd.AddCommand(show)
	return cmd
}
