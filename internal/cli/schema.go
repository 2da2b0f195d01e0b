package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/seamless-data/seamless"
	sr "github.com/seamless-data/seamless/schemaregistry"
	"github.com/seamless-data/seamless/schemaregistry/filestore"
	"github.com/seamless-data/seamless/schemaregistry/registryhttp"
)

// schemaAPI is what the schema commands drive: a *schemaregistry.Registry on the
// embedded store, or a registryhttp.Client of a server.
type schemaAPI interface {
	Register(ctx context.Context, subject string, s sr.Schema) (sr.Registered, error)
	Subjects(ctx context.Context) ([]string, error)
	Versions(ctx context.Context, subject string) ([]int, error)
	Version(ctx context.Context, subject string, v int) (sr.SubjectVersion, error)
	SchemaByID(ctx context.Context, id int64) (sr.Schema, error)
	CheckCompatibility(ctx context.Context, subject string, s sr.Schema) ([]string, error)
	Compatibility(ctx context.Context, subject string) (sr.Level, error)
	SetCompatibility(ctx context.Context, subject string, level sr.Level) (*sr.Record, error)
	Status(ctx context.Context, subject string) (sr.Status, error)
	SetMode(ctx context.Context, subject string, mode sr.Mode, req sr.PromoteRequest) (*sr.Record, error)
	Promote(ctx context.Context, subject string, req sr.PromoteRequest) (*sr.Record, error)
	Audit(ctx context.Context, q sr.AuditQuery) ([]sr.Record, error)
	VerifyAudit(ctx context.Context) (int, error)
}

var (
	_ schemaAPI = (*sr.Registry)(nil)
	_ schemaAPI = (*registryhttp.Client)(nil)
)

// schemaFlags are the flags every schema command shares.
type schemaFlags struct {
	server string
	format string
}

func (f *schemaFlags) json() bool { return f.format == "json" }

// open connects to the server, or opens the embedded registry under the data dir; the
// returned func releases it.
func (f *schemaFlags) open(ctx context.Context, g *globals) (schemaAPI, context.Context, func(), error) {
	if f.format != "table" && f.format != "json" {
		return nil, ctx, nil, &sr.RequestError{Message: fmt.Sprintf("unknown format %q (want table or json)", f.format)}
	}
	if f.server != "" {
		c, err := registryhttp.NewClient(f.server, g.config().raw("api_token"), nil)
		return c, ctx, func() {}, err
	}
	st, err := filestore.Open(filepath.Join(g.dataDir, "schemaregistry"))
	if err != nil {
		return nil, ctx, nil, err
	}
	reg, err := sr.Open(ctx, st, sr.Options{})
	if err != nil {
		st.Close()
		return nil, ctx, nil, err
	}
	// Local changes are audited under the OS user's name.
	actor := "local"
	if u, err := user.Current(); err == nil && u.Username != "" {
		actor = "local:" + u.Username
	}
	return reg, sr.WithActor(ctx, actor), func() { reg.Close(); st.Close() }, nil
}

// schemaFail reports err like globals.fail, with the registry's error codes, and makes
// malformed input a bad request (exit 2).
func (g *globals) schemaFail(err error, jsonOut bool) error {
	fmt.Fprintln(g.stderr, "seamless:", err)
	code := sr.ErrorCode(err)
	if jsonOut {
		doc := map[string]any{"error": map[string]any{"code": code, "message": err.Error()}}
		var ie *sr.IncompatibleError
		if errors.As(err, &ie) {
			doc["error"].(map[string]any)["messages"] = ie.Reasons
		}
		json.NewEncoder(g.stdout).Encode(doc)
	}
	if code == sr.CodeBadRequest || code == sr.CodeInvalidSchema {
		err = &seamless.RequestError{Message: err.Error()}
	}
	return &reportedError{err}
}

func newSchemaCmd(g *globals) *cobra.Command {
	f := &schemaFlags{}
	cmd := &cobra.Command{
		Use:   "schema",
		Short: "Govern schemas: register versions, check compatibility, canary/strict modes, promotion, audit",
		Long: `Drive the schema registry of a Seamless server (--server URL, token from
SEAMLESS_API_TOKEN) or, without --server, the embedded registry under the data dir
({data-dir}/schemaregistry). Subjects are node ids (ohlcv:binance:BTC/USDT:1m) or
node kinds (ohlcv). Schema files hold {"fields":[{"name","dtype","enum"?,"required"?}]}.`,
	}
	cmd.PersistentFlags().StringVar(&f.server, "server", g.config().raw("server"), "Seamless server URL (env SEAMLESS_SERVER); empty: the embedded registry")
	cmd.PersistentFlags().StringVar(&f.format, "format", "table", "table | json")
	cmd.AddCommand(
		schemaRegisterCmd(g, f), schemaGetCmd(g, f), schemaListCmd(g, f), schemaCheckCmd(g, f),
		schemaConfigCmd(g, f), schemaModeCmd(g, f), schemaPromoteCmd(g, f), schemaAuditCmd(g, f), schemaBundleCmd(g, f),
	)
	return cmd
}

// schemaRun wraps a schema command: it opens the registry, runs fn and prints its
// result as JSON or through table.
func schemaRun(g *globals, f *schemaFlags, fn func(ctx context.Context, api schemaAPI) (any, func(w io.Writer) error, error)) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		api, ctx, closeAPI, err := f.open(cmd.Context(), g)
		if err != nil {
			return g.schemaFail(err, f.json())
		}
		defer closeAPI()
		v, table, err := fn(ctx, api)
		if err != nil {
			return g.schemaFail(err, f.json())
		}
		return writeOutput(g, "", func(w io.Writer) error {
			if f.json() {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(v)
			}
			return table(w)
		})
	}
}

func readSchemaFile(path string) (sr.Schema, error) {
	var (
		b   []byte
		err error
	)
	if path == "-" {
		b, err = io.ReadAll(os.Stdin)
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return sr.Schema{}, &sr.RequestError{Message: fmt.Sprintf("schema file: %v", err)}
	}
	return sr.Parse(b)
}

func schemaRegisterCmd(g *globals, f *schemaFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "register SUBJECT FILE|-",
		Short: "Register a schema as the subject's next version (rejected if incompatible)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return schemaRun(g, f, func(ctx context.Context, api schemaAPI) (any, func(io.Writer) error, error) {
				s, err := readSchemaFile(args[1])
				if err != nil {
					return nil, nil, err
				}
				r, err := api.Register(ctx, args[0], s)
				return r, func(w io.Writer) error {
					what := "registered"
					if r.Existing {
						what = "already registered"
					}
					_, err := fmt.Fprintf(w, "%s: %s as version %d, schema id %d (%s)\n", r.Subject, what, r.Version, r.ID, r.Fingerprint)
					return err
				}, err
			})(cmd, args)
		},
	}
}

func printSchema(w io.Writer, header string, s sr.Schema) error {
	fmt.Fprintln(w, header)
	for _, fd := range s.Fields {
		line := fmt.Sprintf("  %-16s %-9s", fd.Name, fd.Dtype)
		if fd.Optional {
			line += " optional"
		}
		if fd.Enum != nil {
			line += fmt.Sprintf(" enum %s", strings.Join(fd.Enum, ","))
		}
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
	return nil
}

func schemaGetCmd(g *globals, f *schemaFlags) *cobra.Command {
	var (
		version string
		id      int64
	)
	cmd := &cobra.Command{
		Use:   "get [SUBJECT]",
		Short: "Show a subject's version (latest by default) or, with --id, a schema by id",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return schemaRun(g, f, func(ctx context.Context, api schemaAPI) (any, func(io.Writer) error, error) {
				if id > 0 {
					s, err := api.SchemaByID(ctx, id)
					doc := map[string]any{"id": id, "schema": json.RawMessage(s.Canonical()), "fingerprint": s.Fingerprint()}
					return doc, func(w io.Writer) error {
						return printSchema(w, fmt.Sprintf("schema id %d (%s)", id, s.Fingerprint()), s)
					}, err
				}
				if len(args) != 1 {
					return nil, nil, &sr.RequestError{Message: "give a SUBJECT or --id"}
				}
				v := -1
				if version != "latest" {
					n, err := strconv.Atoi(version)
					if err != nil || n < 1 {
						return nil, nil, &sr.RequestError{Message: fmt.Sprintf("--version %q: want a positive integer or latest", version)}
					}
					v = n
				}
				sv, err := api.Version(ctx, args[0], v)
				doc := map[string]any{"subject": sv.Subject, "version": sv.Version, "id": sv.ID,
					"schema": json.RawMessage(sv.Schema.Canonical()), "fingerprint": sv.Schema.Fingerprint()}
				return doc, func(w io.Writer) error {
					return printSchema(w, fmt.Sprintf("%s version %d, schema id %d (%s)", sv.Subject, sv.Version, sv.ID, sv.Schema.Fingerprint()), sv.Schema)
				}, err
			})(cmd, args)
		},
	}
	cmd.Flags().StringVar(&version, "version", "latest", "version number or latest")
	cmd.Flags().Int64Var(&id, "id", 0, "show the schema with this global id instead")
	return cmd
}

func schemaListCmd(g *globals, f *schemaFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list [SUBJECT]",
		Short: "List the subjects, or a subject's versions",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return schemaRun(g, f, func(ctx context.Context, api schemaAPI) (any, func(io.Writer) error, error) {
				if len(args) == 1 {
					vs, err := api.Versions(ctx, args[0])
					return vs, func(w io.Writer) error {
						for _, v := range vs {
							fmt.Fprintln(w, v)
						}
						return nil
					}, err
				}
				subjects, err := api.Subjects(ctx)
				return subjects, func(w io.Writer) error {
					for _, s := range subjects {
						fmt.Fprintln(w, s)
					}
					return nil
				}, err
			})(cmd, args)
		},
	}
}

func schemaCheckCmd(g *globals, f *schemaFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "check SUBJECT FILE|-",
		Short: "Check a schema against the subject's compatibility level without registering it (exit 1 if incompatible)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var incompatible []string
			err := schemaRun(g, f, func(ctx context.Context, api schemaAPI) (any, func(io.Writer) error, error) {
				s, err := readSchemaFile(args[1])
				if err != nil {
					return nil, nil, err
				}
				msgs, err := api.CheckCompatibility(ctx, args[0], s)
				incompatible = msgs
				doc := map[string]any{"is_compatible": len(msgs) == 0, "messages": append([]string{}, msgs...)}
				return doc, func(w io.Writer) error {
					if len(msgs) == 0 {
						_, err := fmt.Fprintf(w, "%s: compatible\n", args[0])
						return err
					}
					fmt.Fprintf(w, "%s: incompatible\n", args[0])
					for _, m := range msgs {
						fmt.Fprintf(w, "  - %s\n", m)
					}
					return nil
				}, err
			})(cmd, args)
			if err == nil && len(incompatible) > 0 {
				return &reportedError{fmt.Errorf("%s: incompatible schema", args[0])}
			}
			return err
		},
	}
}

func schemaConfigCmd(g *globals, f *schemaFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "config SUBJECT [LEVEL]",
		Short: "Show or set a subject's compatibility level (BACKWARD, FORWARD, FULL, their _TRANSITIVE forms, NONE)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return schemaRun(g, f, func(ctx context.Context, api schemaAPI) (any, func(io.Writer) error, error) {
				if len(args) == 2 {
					level, err := sr.ParseLevel(args[1])
					if err != nil {
						return nil, nil, err
					}
					if _, err := api.SetCompatibility(ctx, args[0], level); err != nil {
						return nil, nil, err
					}
				}
				l, err := api.Compatibility(ctx, args[0])
				return map[string]any{"subject": args[0], "compatibility": l}, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "%s: %s\n", args[0], l)
					return err
				}, err
			})(cmd, args)
		},
	}
}

// modeFlags are the flags of a mode change.
type modeFlags struct {
	force  bool
	reason string
	bundle string
}

func (m *modeFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&m.force, "force", false, "promote inside the canary window (needs --reason)")
	cmd.Flags().StringVar(&m.reason, "reason", "", "why (recorded in the audit trail; required to force or demote)")
	cmd.Flags().StringVar(&m.bundle, "bundle", "", "directory of the schema bundle being promoted: its fingerprint is recorded")
}

func (m *modeFlags) request() (sr.PromoteRequest, error) {
	req := sr.PromoteRequest{Force: m.force, Reason: m.reason}
	if m.bundle != "" {
		b, err := sr.BundleDir(m.bundle)
		if err != nil {
			return req, &sr.RequestError{Message: err.Error()}
		}
		req.Bundle = b.Fingerprint
	}
	return req, nil
}

func printStatus(w io.Writer, s sr.Status) error {
	fmt.Fprintf(w, "%s: %s since %s (schema id %d, version %d, %s)\n", s.Subject, s.Mode, s.Since.Format(time.RFC3339), s.SchemaID, s.Version, s.Compatibility)
	fmt.Fprintf(w, "  validations %d, failures %d, clean for %s of a %s window\n", s.Stats.Validations, s.Stats.Failures,
		time.Duration(s.CleanSeconds)*time.Second, time.Duration(s.WindowSeconds)*time.Second)
	switch {
	case s.Eligible:
		fmt.Fprintln(w, "  eligible for promotion to strict")
	case s.Blocker != "":
		fmt.Fprintf(w, "  not eligible: %s\n", s.Blocker)
	}
	return nil
}

func modeChanged(ctx context.Context, api schemaAPI, subject string, rec *sr.Record, err error) (any, func(io.Writer) error, error) {
	if err != nil {
		return nil, nil, err
	}
	st, err := api.Status(ctx, subject)
	return map[string]any{"record": rec, "status": st}, func(w io.Writer) error {
		if rec != nil {
			forced := ""
			if rec.Forced {
				forced = " (forced)"
			}
			fmt.Fprintf(w, "%s: %s%s, audit record %d by %s\n", subject, rec.Action, forced, rec.Seq, rec.Actor)
		}
		return printStatus(w, st)
	}, err
}

func schemaModeCmd(g *globals, f *schemaFlags) *cobra.Command {
	var m modeFlags
	cmd := &cobra.Command{
		Use:   "mode SUBJECT [canary|strict]",
		Short: "Show a subject's validation mode and canary evidence, or change it",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return schemaRun(g, f, func(ctx context.Context, api schemaAPI) (any, func(io.Writer) error, error) {
				if len(args) == 1 {
					st, err := api.Status(ctx, args[0])
					return st, func(w io.Writer) error { return printStatus(w, st) }, err
				}
				mode, err := sr.ParseMode(args[1])
				if err != nil {
					return nil, nil, err
				}
				req, err := m.request()
				if err != nil {
					return nil, nil, err
				}
				rec, err := api.SetMode(ctx, args[0], mode, req)
				return modeChanged(ctx, api, args[0], rec, err)
			})(cmd, args)
		},
	}
	m.register(cmd)
	return cmd
}

func schemaPromoteCmd(g *globals, f *schemaFlags) *cobra.Command {
	var m modeFlags
	cmd := &cobra.Command{
		Use:   "promote SUBJECT",
		Short: "Promote a subject from canary to strict (after a clean canary window, or --force with --reason)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return schemaRun(g, f, func(ctx context.Context, api schemaAPI) (any, func(io.Writer) error, error) {
				req, err := m.request()
				if err != nil {
					return nil, nil, err
				}
				rec, err := api.Promote(ctx, args[0], req)
				return modeChanged(ctx, api, args[0], rec, err)
			})(cmd, args)
		},
	}
	m.register(cmd)
	return cmd
}

func schemaAuditCmd(g *globals, f *schemaFlags) *cobra.Command {
	var (
		q      sr.AuditQuery
		action string
		since  string
		verify bool
	)
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "List the audit trail (filtered), or --verify its hash chain (exit 1 if broken)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return schemaRun(g, f, func(ctx context.Context, api schemaAPI) (any, func(io.Writer) error, error) {
				if verify {
					n, err := api.VerifyAudit(ctx)
					return map[string]any{"ok": true, "records": n}, func(w io.Writer) error {
						_, err := fmt.Fprintf(w, "audit chain intact: %d records\n", n)
						return err
					}, err
				}
				q.Action = sr.Action(action)
				if since != "" {
					t, err := time.Parse(time.RFC3339, since)
					if err != nil {
						return nil, nil, &sr.RequestError{Message: fmt.Sprintf("--since %q: want RFC 3339", since)}
					}
					q.Since = t
				}
				recs, err := api.Audit(ctx, q)
				return recs, func(w io.Writer) error {
					for _, r := range recs {
						fmt.Fprintf(w, "%d  %s  %-18s %-16s %s", r.Seq, r.Time.Format(time.RFC3339), r.Action, r.Actor, r.Subject)
						switch r.Action {
						case sr.ActionRegister:
							fmt.Fprintf(w, "  version %d id %d", r.Version, r.SchemaID)
						case sr.ActionSetCompatibility:
							fmt.Fprintf(w, "  %s", r.Compatibility)
						default:
							fmt.Fprintf(w, "  → %s", r.Mode)
							if r.Forced {
								fmt.Fprint(w, " forced")
							}
							if r.Bundle != "" {
								fmt.Fprintf(w, " bundle %s", r.Bundle)
							}
						}
						if r.Reason != "" {
							fmt.Fprintf(w, "  %q", r.Reason)
						}
						fmt.Fprintln(w)
					}
					return nil
				}, err
			})(cmd, args)
		},
	}
	cmd.Flags().StringVar(&q.Subject, "subject", "", "only this subject")
	cmd.Flags().StringVar(&action, "action", "", "only this action (register, set_compatibility, promote, demote)")
	cmd.Flags().StringVar(&q.Actor, "actor", "", "only this actor")
	cmd.Flags().StringVar(&since, "since", "", "only records at or after this RFC 3339 time")
	cmd.Flags().IntVar(&q.Limit, "limit", 0, "only the newest N records")
	cmd.Flags().BoolVar(&verify, "verify", false, "verify the hash chain instead of listing")
	return cmd
}

func schemaBundleCmd(g *globals, f *schemaFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "bundle DIR",
		Short: "Compute the fingerprint of a directory of schema files (what promote --bundle records)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := sr.BundleDir(args[0])
			if err != nil {
				return g.schemaFail(&sr.RequestError{Message: err.Error()}, f.json())
			}
			return writeOutput(g, "", func(w io.Writer) error {
				if f.json() {
					return json.NewEncoder(w).Encode(b)
				}
				fmt.Fprintln(w, b.Fingerprint)
				for _, file := range b.Files {
					fmt.Fprintf(w, "  %s  %8d  %s\n", file.SHA256, file.Size, file.Path)
				}
				return nil
			})
		},
	}
}
