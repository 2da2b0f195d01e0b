package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/seamless-data/seamless"
)

// The configuration (SPEC §7) is resolved once per process, from three layers:
// the configuration file (seamless.yaml in the working directory, or the file named by
// --config or SEAMLESS_CONFIG), the environment, and flags; later wins. A setting the
// environment sets, under its SEAMLESS_ name or, where the table allows it, its QMTL_
// alias, keeps the file's value out even when set empty; an empty value means the
// setting's default. Nothing is written back to the environment.

// source is the layer a setting's value came from.
type source int

const (
	fromDefault source = iota
	fromFile
	fromEnv
	fromFlag
)

func (s source) String() string {
	return [...]string{"default", "file", "env", "flag"}[s]
}

// value is a setting's value as one layer gave it.
type value struct {
	// raw is the value as given; "" means the setting's default applies.
	raw    string
	source source
	// origin details the source: the file's path, the variable read (QMTL_… when
	// the alias gave it), the flag.
	origin string
}

// config is the resolved settings table.
type config struct {
	table  []Setting
	byKey  map[string]Setting
	path   string           // the configuration file read; "" when none
	layers map[string]value // file and environment values, by key
	flags  map[string]*pflag.Flag
}

// newConfig resolves table over the file's values (by key) and the environment seen
// through lookup.
func newConfig(table []Setting, path string, file map[string]string, lookup func(string) (string, bool)) *config {
	c := &config{table: table, byKey: make(map[string]Setting, len(table)), path: path,
		layers: map[string]value{}, flags: map[string]*pflag.Flag{}}
	for _, s := range table {
		c.byKey[s.Key] = s
		if v, ok := file[s.Key]; ok {
			c.layers[s.Key] = value{raw: v, source: fromFile, origin: "file " + path}
		}
		if v, ok := lookupEnv(s, lookup); ok {
			c.layers[s.Key] = v
		}
	}
	return c
}

// lookupEnv reads s from the environment: its SEAMLESS_ name, else its QMTL_ alias
// where it has one. Set but empty, a name still counts as set (and keeps the file's
// value out), but a non-empty alias wins over an empty SEAMLESS_ name.
func lookupEnv(s Setting, lookup func(string) (string, bool)) (value, bool) {
	name := s.Env()
	v, set := lookup(name)
	if v == "" && s.QMTL {
		if av, aset := lookup("QMTL_" + name); aset && (av != "" || !set) {
			return value{raw: av, source: fromEnv, origin: "env QMTL_" + name}, true
		}
	}
	if !set {
		return value{}, false
	}
	return value{raw: v, source: fromEnv, origin: "env"}, true
}

// loadConfig resolves table from the configuration file args name (see configPath) and
// the environment. A file it cannot use (asked for but missing, not YAML, an unknown
// key or a value that is not a scalar or a list) is a *seamless.RequestError on field
// "config"; the configuration returned with it is the environment's alone, so nothing
// of a bad file is used.
func loadConfig(table []Setting, args []string, lookup func(string) (string, bool)) (*config, error) {
	path, explicit := configPath(args, lookup)
	if path == "" {
		return newConfig(table, "", nil, lookup), nil
	}
	file, err := readConfigFile(table, path, explicit)
	if err != nil {
		return newConfig(table, "", nil, lookup), err
	}
	if file == nil {
		path = ""
	}
	return newConfig(table, path, file, lookup), nil
}

// configPath finds the configuration file: --config / --config=FILE in args, else
// SEAMLESS_CONFIG, else ./seamless.yaml when it exists. explicit reports whether the
// file was asked for (a missing one is then an error).
func configPath(args []string, lookup func(string) (string, bool)) (path string, explicit bool) {
	for i, a := range args {
		if a == "--" {
			break
		}
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			return v, true
		}
		if a == "--config" && i+1 < len(args) {
			return args[i+1], true
		}
	}
	if v, _ := lookup("SEAMLESS_CONFIG"); v != "" {
		return v, true
	}
	if _, err := os.Stat("seamless.yaml"); err == nil {
		return "seamless.yaml", false
	}
	return "", false
}

// readConfigFile reads the file's settings by key; nil when an implicit file is gone.
func readConfigFile(table []Setting, path string, explicit bool) (map[string]string, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !explicit {
		return nil, nil
	}
	if err != nil {
		return nil, &seamless.RequestError{Field: "config", Message: err.Error()}
	}
	var doc map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) { // io.EOF: an empty file
		return nil, &seamless.RequestError{Field: "config", Message: fmt.Sprintf("%s: %v", path, err)}
	}
	known := map[string]bool{}
	for _, s := range table {
		if !s.NoFile {
			known[s.Key] = true
		}
	}
	values := make(map[string]string, len(doc))
	for key, v := range doc {
		if !known[key] {
			keys := make([]string, 0, len(known))
			for k := range known {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			return nil, &seamless.RequestError{Field: "config", Message: fmt.Sprintf("%s: unknown key %q (known: %s)", path, key, strings.Join(keys, ", "))}
		}
		var s string
		switch t := v.(type) {
		case string:
			s = t
		case int:
			s = strconv.Itoa(t)
		case float64:
			s = strconv.FormatFloat(t, 'g', -1, 64)
		case bool:
			s = strconv.FormatBool(t)
		case []any:
			parts := make([]string, len(t))
			for i, p := range t {
				parts[i] = fmt.Sprint(p)
			}
			s = strings.Join(parts, ",")
		default:
			return nil, &seamless.RequestError{Field: "config", Message: fmt.Sprintf("%s: key %q: want a scalar or a list", path, key)}
		}
		values[key] = s
	}
	return values, nil
}

// setting returns the table's entry for key. An unknown key is a programming error.
func (c *config) setting(key string) Setting {
	s, ok := c.byKey[key]
	if !ok {
		panic("cli: no setting " + key)
	}
	return s
}

// value is key's value from the highest layer that sets it: a flag given on the
// command line, the environment, the file, else the default.
func (c *config) value(key string) value {
	s := c.setting(key)
	if f := c.flags[key]; f != nil && f.Changed {
		return value{raw: f.Value.String(), source: fromFlag, origin: "flag --" + f.Name}
	}
	if v, ok := c.layers[key]; ok {
		return v
	}
	if key == "config" && c.path != "" {
		return value{raw: c.path, source: fromDefault, origin: "default"}
	}
	return value{raw: s.Default, source: fromDefault, origin: "default"}
}

// raw is the value of key as set, "" when it is unset or set empty (the default
// applies: parsers leave the option zero so the library's own default, which the
// table's Default documents, applies).
func (c *config) raw(key string) string {
	v := c.value(key)
	if v.source == fromDefault {
		return ""
	}
	return v.raw
}

// text is the value of key, its Default when unset or empty.
func (c *config) text(key string) string {
	if v := c.raw(key); v != "" {
		return v
	}
	return c.setting(key).Default
}

// textOr is the value of key, def when unset or empty (for a setting whose default
// depends on the command).
func (c *config) textOr(key, def string) string {
	if v := c.raw(key); v != "" {
		return v
	}
	return def
}

// bindFlag registers key's flag on fs, defaulting to the file's and environment's
// value, and makes it the setting's top layer when given. The flag is a string: its
// value is parsed, like the other layers', where the setting is used, so a bad one
// is reported in the same words.
func (c *config) bindFlag(fs *pflag.FlagSet, key string) {
	s := c.setting(key)
	f := strings.Fields(s.Flag)
	name := strings.TrimPrefix(f[len(f)-1], "--")
	def := ""
	if v, ok := c.layers[key]; ok {
		def = v.raw
	}
	if def == "" {
		def = s.Default
	}
	fs.String(name, def, fmt.Sprintf("%s (env %s)", plainDoc(s.Doc), s.Env()))
	c.flags[key] = fs.Lookup(name)
}

// plainDoc is a setting's doc without the README's code quotes, for terminals (pflag
// would also take a quoted word for the flag's value name).
func plainDoc(doc string) string { return strings.ReplaceAll(doc, "`", "") }

// SettingError is a setting's value that cannot be used. It is a bad request (it
// unwraps to a *seamless.RequestError whose Field is the variable), and its message
// names the variable, the value (hidden for secrets) and where the value came from:
//
//	SEAMLESS_LIVE_BUFFER_BARS="x" (env): want a positive number of bars
type SettingError struct {
	// Env is the setting's variable; Value its value as given (redacted for secrets).
	Env, Value string
	// Source is the layer ("file", "env", "flag") and Origin the detail ("file
	// seamless.yaml", "env QMTL_SEAMLESS_STORE", "flag --max-bars").
	Source, Origin string
	// Reason says what the setting wants.
	Reason string
}

func (e *SettingError) Error() string {
	return fmt.Sprintf("%s=%q (%s): %s", e.Env, e.Value, e.Origin, e.Reason)
}

// Unwrap makes the error a bad request on the variable (exit 2, and the JSON error
// document's field).
func (e *SettingError) Unwrap() error {
	return &seamless.RequestError{Field: e.Env, Message: fmt.Sprintf("%q (%s): %s", e.Value, e.Origin, e.Reason)}
}

// boolean is key's value as true or false (its Default when unset).
func (c *config) boolean(key string) (bool, error) {
	switch strings.ToLower(c.text(key)) {
	case "true", "1", "yes":
		return true, nil
	case "false", "0", "no":
		return false, nil
	}
	return false, c.invalid(key, "want true or false")
}

// invalid is key's current value refused for reason.
func (c *config) invalid(key, reason string, args ...any) error {
	s, v := c.setting(key), c.value(key)
	return &SettingError{Env: s.Env(), Value: redact(s.Secret, v.raw), Source: v.source.String(), Origin: v.origin, Reason: fmt.Sprintf(reason, args...)}
}

// intIn reads a whole number in [lo, hi]; unset is 0.
func (c *config) intIn(key, what string, lo, hi int64) (int64, error) {
	v := c.raw(key)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, c.invalid(key, "want a whole number of %s from %d to %d (default %s)", what, lo, hi, c.setting(key).Default)
	}
	return n, nil
}

// positiveInt reads a whole number above 0; unset is 0.
func (c *config) positiveInt(key, want string) (int, error) {
	v := c.raw(key)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n <= 0 {
		return 0, c.invalid(key, "%s", want)
	}
	return n, nil
}

// durationIn reads a duration in [lo, hi] (hi 0: no bound); unset is 0.
func (c *config) durationIn(key string, lo, hi time.Duration, want string) (time.Duration, error) {
	v := c.raw(key)
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil || d < lo || (hi > 0 && d > hi) {
		return 0, c.invalid(key, "%s", want)
	}
	return d, nil
}

// ratio reads a number in [lo, hi] (lo excluded when open); unset is 0.
func (c *config) ratio(key string, lo, hi float64, open bool, want string) (float64, error) {
	v := c.raw(key)
	if v == "" {
		return 0, nil
	}
	r, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || math.IsNaN(r) || r < lo || (open && r == lo) || r > hi {
		return 0, c.invalid(key, "%s", want)
	}
	return r, nil
}

// redact is the value v of a setting hidden as r says, the way url.URL.Redacted hides
// a password.
func redact(r redaction, v string) string {
	const hidden = "xxxxx"
	if v == "" {
		return ""
	}
	switch r {
	case secret:
		return hidden
	case secretURL:
		u, err := url.Parse(v)
		if err != nil {
			return hidden // unparseable: it may still hold a password
		}
		// libpq also takes the password as a query parameter.
		if q := u.Query(); q.Has("password") {
			q.Set("password", hidden)
			u.RawQuery = q.Encode()
		}
		return u.Redacted()
	case secretTokens:
		entries := strings.Split(v, ",")
		for i, e := range entries {
			if name, _, ok := strings.Cut(strings.TrimSpace(e), ":"); ok {
				entries[i] = name + ":" + hidden
			} else {
				entries[i] = hidden
			}
		}
		return strings.Join(entries, ",")
	}
	return v
}
