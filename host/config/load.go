package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Command is what a pulpo process was asked to do: the first argument.
type Command string

// The commands of the pulpo binary.
const (
	Serve   Command = "serve"   // API, content app and workers, roles selectable
	Worker  Command = "worker"  // task workers only
	Migrate Command = "migrate" // apply database migrations, then exit
	Plugins Command = "plugins" // list and check the plugins found, then exit
	Version Command = "version" // print the version, then exit
)

// commands lists every command with its one-line summary, in usage order.
var commands = []struct {
	name    Command
	summary string
}{
	{Serve, "run the REST API, the content app and task workers in one process"},
	{Worker, "run task workers only (no HTTP server)"},
	{Migrate, "apply pending database migrations and exit"},
	{Plugins, "load the plugins found in the plugin directories, list and check them, and exit"},
	{Version, "print the version and exit"},
}

// EnvConfigFile names the configuration file when --config is not given.
const EnvConfigFile = EnvPrefix + "CONFIG"

// ErrHelp is returned, inside a *UsageError, when the arguments ask for help
// (pulpo help, pulpo -h, pulpo serve --help). Print the usage and exit 0.
var ErrHelp = flag.ErrHelp

// UsageError reports command-line arguments that cannot be parsed, or a
// request for help. Usage is the text to show the user.
type UsageError struct {
	Err   error
	Usage string
}

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Load parses the command line, args without the program name (os.Args[1:]),
// and builds the configuration from the defaults, the optional file
// (--config or PULPO_CONFIG), the environment (env is os.Getenv in
// production) and the flags, in that order of precedence, lowest first; then
// it resolves derived paths and validates the result.
//
// A malformed command line yields a *UsageError (errors.Is(err, ErrHelp) when
// help was asked for). Otherwise every problem found, in the file, the
// environment, the flags or the resulting values, is reported in one joined
// error, one problem per line, each naming its flag and environment variable
// or its file. The command is returned whenever it was recognised.
//
// version reads no configuration and returns [Default].
func Load(args []string, env func(string) string) (Config, Command, error) {
	if len(args) == 0 {
		return Config{}, "", &UsageError{Err: errors.New("no command given"), Usage: Usage("")}
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		topic := ""
		if len(args) > 1 {
			topic = args[1]
		}
		if topic != "" && !known(Command(topic)) {
			return Config{}, "", &UsageError{Err: fmt.Errorf("unknown command %q", topic), Usage: Usage("")}
		}
		return Config{}, "", &UsageError{Err: ErrHelp, Usage: Usage(Command(topic))}
	}
	cmd := Command(name)
	if !known(cmd) {
		return Config{}, "", &UsageError{Err: fmt.Errorf("unknown command %q", name), Usage: Usage("")}
	}

	fl := newFlags(cmd)
	if err := fl.set.Parse(args[1:]); err != nil {
		return Config{}, cmd, &UsageError{Err: err, Usage: Usage(cmd)}
	}
	if rest := fl.set.Args(); len(rest) > 0 {
		return Config{}, cmd, &UsageError{Err: fmt.Errorf("%s: unexpected argument %q", cmd, rest[0]), Usage: Usage(cmd)}
	}
	if cmd == Version {
		return Default(), cmd, nil
	}

	c := defaults()
	var problems []error
	ss := settings()

	// Layer 2: the file.
	file := fl.config
	if file == "" {
		file = env(EnvConfigFile)
	}
	if file != "" {
		problems = append(problems, applyFile(&c, ss, file)...)
	}

	// Layer 3: the environment.
	for _, s := range ss {
		v := env(s.env())
		if v == "" {
			continue
		}
		vals := []string{v}
		if s.kind == kindList {
			vals = nonNil(splitList(v, s.sep))
		}
		if err := s.set(&c, vals); err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", s.env(), err))
		}
	}

	// OpenTelemetry's own variables, under the setting: what an operator of
	// OpenTelemetry-instrumented services sets for all of them.
	if c.OTelEndpoint == "" {
		if v := env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); v != "" {
			c.OTelEndpoint = v
		} else if v := env("OTEL_EXPORTER_OTLP_ENDPOINT"); v != "" {
			c.OTelEndpoint = strings.TrimSuffix(v, "/") + "/v1/traces"
		}
	}
	if c.OTelService = env("OTEL_SERVICE_NAME"); c.OTelService == "" {
		c.OTelService = "pulpo"
	}

	// Layer 4: the flags, in table order (not command-line order), so that
	// errors come out in a stable order.
	for _, s := range ss {
		vals, ok := fl.values[s.key]
		if !ok {
			continue
		}
		if s.kind == kindList {
			var all []string
			for _, v := range vals {
				all = append(all, splitList(v, s.sep)...)
			}
			vals = nonNil(all)
		} else {
			vals = vals[len(vals)-1:] // the last occurrence wins
		}
		if err := s.set(&c, vals); err != nil {
			problems = append(problems, fmt.Errorf("--%s: %w", s.flag(), err))
		}
	}

	c.API = cmd == Serve && !fl.noAPI
	c.Content = cmd == Serve && !fl.noContent

	if err := c.resolve(); err != nil {
		problems = append(problems, err)
	}
	problems = append(problems, c.problems()...)
	switch cmd {
	case Serve:
		if !c.API && !c.Content && c.Workers == 0 {
			problems = append(problems, errors.New("serve: --no-api, --no-content and 0 workers leave nothing to run"))
		}
	case Worker:
		if c.Workers < 1 {
			problems = append(problems, fmt.Errorf("worker: workers (--workers/PULPO_WORKERS) must be at least 1, got %d", c.Workers))
		}
	}
	if len(problems) > 0 {
		return Config{}, cmd, errors.Join(problems...)
	}
	return c, cmd, nil
}

// Default returns the configuration Load builds from no file, environment or
// flags, with the roles of serve.
func Default() Config {
	c := defaults()
	c.resolve() //nolint:errcheck // only fails without a working directory; paths then stay relative
	return c
}

func known(cmd Command) bool {
	for _, c := range commands {
		if c.name == cmd {
			return true
		}
	}
	return false
}

// flags holds what the command line said, unparsed: the values of each
// setting's flag in order of appearance.
type flags struct {
	set       *flag.FlagSet
	values    map[string][]string
	config    string
	noAPI     bool
	noContent bool
}

// recorder is a flag.Value that keeps every occurrence of a flag.
type recorder struct {
	key    string
	values map[string][]string
}

func (r recorder) String() string { return "" }
func (r recorder) Set(v string) error {
	r.values[r.key] = append(r.values[r.key], v)
	return nil
}

func newFlags(cmd Command) *flags {
	f := &flags{set: flag.NewFlagSet("pulpo "+string(cmd), flag.ContinueOnError), values: map[string][]string{}}
	f.set.SetOutput(io.Discard) // Load's caller prints the usage
	f.set.Usage = func() {}
	if cmd == Version {
		return f
	}
	f.set.StringVar(&f.config, "config", "", "")
	for _, s := range settings() {
		f.set.Var(recorder{key: s.key, values: f.values}, s.flag(), "")
	}
	if cmd == Serve {
		f.set.BoolVar(&f.noAPI, "no-api", false, "")
		f.set.BoolVar(&f.noContent, "no-content", false, "")
	}
	return f
}

// applyFile reads a JSON configuration file into c.
func applyFile(c *Config, ss []setting, path string) []error {
	data, err := os.ReadFile(path)
	if err != nil {
		return []error{fmt.Errorf("config file: %w", err)}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return []error{fmt.Errorf("config file %s: not a JSON object: %w", path, err)}
	}
	if dec.More() {
		return []error{fmt.Errorf("config file %s: data after the JSON object", path)}
	}
	byKey := make(map[string]setting, len(ss))
	for _, s := range ss {
		byKey[s.key] = s
	}
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	slices.Sort(keys)

	var problems []error
	fail := func(key string, err error) {
		problems = append(problems, fmt.Errorf("config file %s: %s: %w", path, key, err))
	}
	for _, k := range keys {
		v := doc[k]
		if k == "version" {
			if n, ok := v.(json.Number); !ok || n.String() != "1" {
				fail(k, fmt.Errorf("unsupported version %v (this pulpo reads version 1)", v))
			}
			continue
		}
		s, ok := byKey[k]
		if !ok {
			fail(k, errors.New("unknown key"))
			continue
		}
		vals, err := fileValues(s, v)
		if err != nil {
			fail(k, err)
			continue
		}
		if err := s.set(c, vals); err != nil {
			fail(k, err)
		}
	}
	return problems
}

// fileValues turns a decoded JSON value into a setting's text values.
func fileValues(s setting, v any) ([]string, error) {
	switch v := v.(type) {
	case string:
		if s.kind == kindList {
			return nonNil(splitList(v, s.sep)), nil
		}
		return []string{v}, nil
	case json.Number:
		if s.kind == kindInt || s.kind == kindMinutes {
			return []string{v.String()}, nil
		}
	case bool:
		if s.kind == kindBool {
			return []string{strconv.FormatBool(v)}, nil
		}
	case []any:
		if s.kind == kindList {
			out := []string{}
			for _, e := range v {
				str, ok := e.(string)
				if !ok {
					return nil, fmt.Errorf("list element %v is not a string", e)
				}
				if str = strings.TrimSpace(str); str != "" {
					out = append(out, str)
				}
			}
			return out, nil
		}
	}
	switch s.kind {
	case kindList:
		return nil, errors.New("must be a string or an array of strings")
	case kindInt, kindMinutes:
		return nil, errors.New("must be a number or a string")
	case kindBool:
		return nil, errors.New("must be a boolean or a string")
	}
	return nil, errors.New("must be a string")
}

// nonNil makes an explicitly empty list distinguishable from an unset one.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// resolve makes paths absolute, fills in the defaults that depend on DataDir
// and the working directory, and normalises lists.
func (c *Config) resolve() error {
	var errs []error
	abs := func(p *string) {
		if *p == "" {
			return
		}
		a, err := filepath.Abs(*p)
		if err != nil {
			errs = append(errs, fmt.Errorf("resolve %s: %w", *p, err))
			return
		}
		*p = a
	}
	abs(&c.DataDir)
	if c.StorageRoot == "" && c.DataDir != "" {
		c.StorageRoot = filepath.Join(c.DataDir, "media")
	}
	abs(&c.StorageRoot)
	abs(&c.AdminPasswordFile)
	if c.PluginDirs == nil && c.DataDir != "" {
		c.PluginDirs = []string{filepath.Join(c.DataDir, "plugins")}
		if fi, err := os.Stat(BundledPluginDir); err == nil && fi.IsDir() {
			c.PluginDirs = append(c.PluginDirs, BundledPluginDir)
		}
	}
	c.PluginDirs = slices.Clone(c.PluginDirs)
	for i := range c.PluginDirs {
		abs(&c.PluginDirs[i])
	}
	c.AllowedChecksums = normalizeChecksums(c.AllowedChecksums)
	c.ContentOrigin = strings.TrimSuffix(c.ContentOrigin, "/")
	return errors.Join(errs...)
}

// checksums are the digest names Pulp knows, weakest first.
var checksums = []string{"md5", "sha1", "sha224", "sha256", "sha384", "sha512"}

// normalizeChecksums lower-cases, removes duplicates and orders known names
// weakest first; unknown names follow, for Validate to report.
func normalizeChecksums(in []string) []string {
	seen := map[string]bool{}
	var unknown []string
	for _, n := range in {
		n = strings.ToLower(strings.TrimSpace(n))
		if n == "" || seen[n] {
			continue
		}
		seen[n] = true
		if !slices.Contains(checksums, n) {
			unknown = append(unknown, n)
		}
	}
	out := []string{}
	for _, n := range checksums {
		if seen[n] {
			out = append(out, n)
		}
	}
	return append(out, unknown...)
}
