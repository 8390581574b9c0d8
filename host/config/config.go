// Package config holds the configuration of a pulpo process: one documented
// [Config] struct, filled once by [Load] and never changed afterwards.
//
// # Sources
//
// Each setting is read from four layers; a later layer overrides an earlier one:
//
//  1. the defaults documented on each [Config] field;
//  2. an optional JSON file, named by --config FILE or PULPO_CONFIG;
//  3. environment variables PULPO_<KEY>;
//  4. command-line flags --<key>.
//
// Every setting has a key, such as worker_ttl, from which the other names are
// derived mechanically: the file key is the key itself, the environment
// variable is PULPO_ plus the key in upper case (PULPO_WORKER_TTL), and the
// flag is the key with dashes (--worker-ttl). An empty environment variable
// counts as unset.
//
// Values are written the same way in every layer: durations in Go syntax
// ("30s", "1m30s"), sizes in bytes, orphan_protection_time in minutes. Lists
// are separated by commas (allowed_content_checksums) or colons (plugin_dir)
// in the environment and in flags; a flag holding a list may also be
// repeated, and in the file a list may be a JSON array of strings. In the
// file, integer settings may also be JSON numbers. The file may carry
// "version": 1; unknown keys are errors.
//
//	{
//	  "version": 1,
//	  "listen": "0.0.0.0:24817",
//	  "data_dir": "/var/lib/pulpo",
//	  "database_url": "postgres://pulpo@db.example.com/pulpo",
//	  "workers": 4,
//	  "worker_ttl": "45s",
//	  "allowed_content_checksums": ["sha256", "sha512"]
//	}
//
// Relative paths are made absolute against the working directory when the
// configuration is loaded. Paths that default to a place under data_dir
// follow data_dir wherever it was set.
//
// # Usage
//
// Load parses the command line as well as the configuration:
//
//	cfg, cmd, err := config.Load(os.Args[1:], os.Getenv)
//	var usage *config.UsageError
//	switch {
//	case errors.Is(err, config.ErrHelp):
//		fmt.Print(usage.Usage) // errors.As(err, &usage) holds here too
//	case errors.As(err, &usage):
//		fmt.Fprintf(os.Stderr, "pulpo: %v\n\n%s", err, usage.Usage) // exit 2
//	case err != nil:
//		fmt.Fprintf(os.Stderr, "pulpo: configuration:\n%v\n", err) // every problem, one per line
//	}
//
// Only cmd/pulpo and the server wiring import this package; every component
// takes its own options in its constructor.
package config

import (
	"log/slog"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"time"
)

// Config is the configuration of one pulpo process. Load returns it fully
// resolved and validated; treat it as read-only (Load hands out fresh slices,
// so no two values share state).
type Config struct {
	// Listen is the TCP address of the HTTP server, which serves the REST API
	// (/pulp/api/v3/), the content app (ContentPathPrefix) and plugin live
	// routes on one port. Only used by serve.
	// Default: 127.0.0.1:24817. Key listen.
	Listen string

	// DataDir holds everything a single-machine install keeps on disk:
	//
	//	DataDir/
	//	  media/      artifacts (StorageRoot's default)
	//	  tmp/        working files of uploads and tasks (WorkDir)
	//	  postgres/   the embedded PostgreSQL cluster, when DatabaseURL is empty (PostgresDir)
	//	  cache/      compiled WebAssembly (CacheDir)
	//	  plugins/    plugins installed by hand (first of PluginDirs' defaults)
	//
	// Default: ./var. Key data_dir.
	DataDir string

	// PluginDirs are the directories searched for plugin .wasm files, in
	// order. Default: DataDir/plugins, followed by ./plugins/build (where
	// `make plugins` writes the bundled plugins) when that directory exists
	// in the working directory at load time. Key plugin_dir (colon-separated).
	PluginDirs []string

	// DatabaseURL is the PostgreSQL connection string, as a URL
	// (postgres://user:pass@host:5432/db?sslmode=...) or in keyword/value
	// form; PG* environment variables fill in what it leaves out. Empty
	// means an embedded private cluster under PostgresDir, run with the
	// system's PostgreSQL server binaries.
	// Default: "" (embedded). Key database_url.
	DatabaseURL string

	// DatabaseMaxConns caps the connections this process opens.
	// Default: 20. Key database_max_conns.
	DatabaseMaxConns int

	// Workers is the number of tasks this process runs at once. serve runs
	// workers too unless this is 0; worker needs at least 1.
	// Default: 2. Key workers.
	Workers int

	// API and Content select the roles of serve: the REST API and the content
	// app. Set from the serve flags --no-api and --no-content only; false for
	// every other command. Default: true for serve.
	API, Content bool

	// WorkerTTL is how long a worker may miss heartbeats before the others
	// consider it dead, fail its running tasks and release their locks.
	// Default: 30s. Key worker_ttl.
	WorkerTTL time.Duration

	// TaskPoll is how often an idle worker looks for tasks when no
	// notification woke it. Default: 5s. Key task_poll.
	TaskPoll time.Duration

	// StorageRoot is the directory of the filesystem artifact storage.
	// Default: DataDir/media. Key storage_root.
	StorageRoot string

	// AllowedChecksums are the digests computed and accepted for artifacts,
	// from md5, sha1, sha224, sha256, sha384 and sha512; sha256 is required.
	// Load lower-cases them, drops duplicates and sorts them from weakest to
	// strongest. Default: sha224,sha256,sha384,sha512.
	// Key allowed_content_checksums (comma-separated).
	AllowedChecksums []string

	// MaxUploadChunk is the largest chunk, in bytes, accepted by one request
	// of a chunked upload. Default: 104857600 (100 MiB).
	// Key upload_max_chunk_size.
	MaxUploadChunk int64

	// OrphanProtectionTime is how long content and artifacts that belong to
	// no repository version are kept before orphan cleanup may remove them.
	// Written in whole minutes, as in Pulp. Default: 1440 (one day).
	// Key orphan_protection_time.
	OrphanProtectionTime time.Duration

	// ContentOrigin is the scheme and host clients use to reach the content
	// app, such as https://content.example.com; it prefixes the content URLs
	// the API reports (base_url). Empty means derived from each request.
	// Default: "". Key content_origin.
	ContentOrigin string

	// ContentPathPrefix is the path under which distributions are served; it
	// starts and ends with a slash. Default: /pulp/content/.
	// Key content_path_prefix.
	ContentPathPrefix string

	// LogLevel is the lowest level logged: debug, info, warn or error.
	// Default: info. Key log_level.
	LogLevel string

	// LogFormat is text (human-readable) or json (one object per line).
	// Default: text. Key log_format.
	LogFormat string

	// PluginMemoryPages caps the linear memory of one plugin instance, in
	// 64 KiB WebAssembly pages (1 to 65536). Default: 4096 (256 MiB).
	// Key plugin_memory_pages.
	PluginMemoryPages uint32

	// PluginCallTimeout bounds one call into a plugin; a call that runs
	// longer is aborted and its task fails. Default: 60s.
	// Key plugin_call_timeout.
	PluginCallTimeout time.Duration

	// PluginPoolSize is the number of instances kept per plugin, which bounds
	// how many calls into one plugin run at once. Default: 4.
	// Key plugin_pool_size.
	PluginPoolSize int
}

// Defaults, exported for documentation and tests.
const (
	DefaultListen            = "127.0.0.1:24817"
	DefaultDataDir           = "./var"
	DefaultContentPathPrefix = "/pulp/content/"
	// BundledPluginDir is where `make plugins` writes the bundled plugins,
	// relative to the repository root.
	BundledPluginDir = "plugins/build"
)

// defaults returns the static defaults. Paths under DataDir are left empty
// and filled in by resolve, once DataDir is final.
func defaults() Config {
	return Config{
		Listen:               DefaultListen,
		DataDir:              DefaultDataDir,
		DatabaseMaxConns:     20,
		Workers:              2,
		API:                  true,
		Content:              true,
		WorkerTTL:            30 * time.Second,
		TaskPoll:             5 * time.Second,
		AllowedChecksums:     []string{"sha224", "sha256", "sha384", "sha512"},
		MaxUploadChunk:       100 << 20,
		OrphanProtectionTime: 1440 * time.Minute,
		ContentPathPrefix:    DefaultContentPathPrefix,
		LogLevel:             "info",
		LogFormat:            "text",
		PluginMemoryPages:    4096,
		PluginCallTimeout:    60 * time.Second,
		PluginPoolSize:       4,
	}
}

// WorkDir is the directory for working files of uploads and tasks: DataDir/tmp.
func (c Config) WorkDir() string { return filepath.Join(c.DataDir, "tmp") }

// PostgresDir is the directory of the embedded PostgreSQL cluster, used when
// DatabaseURL is empty: DataDir/postgres.
func (c Config) PostgresDir() string { return filepath.Join(c.DataDir, "postgres") }

// CacheDir is the directory of the WebAssembly compilation cache: DataDir/cache.
func (c Config) CacheDir() string { return filepath.Join(c.DataDir, "cache") }

// Level returns LogLevel as a slog.Level (info for an unknown name, which
// Validate rejects).
func (c Config) Level() slog.Level {
	switch c.LogLevel {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// Clone returns a copy sharing no slices with c.
func (c Config) Clone() Config {
	c.PluginDirs = slices.Clone(c.PluginDirs)
	c.AllowedChecksums = slices.Clone(c.AllowedChecksums)
	return c
}

// LogValue logs the configuration with the database password hidden, so
// that a process can log what it runs with.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("listen", c.Listen),
		slog.String("data_dir", c.DataDir),
		slog.Any("plugin_dir", c.PluginDirs),
		slog.String("database_url", RedactURL(c.DatabaseURL)),
		slog.Int("database_max_conns", c.DatabaseMaxConns),
		slog.Int("workers", c.Workers),
		slog.Bool("api", c.API),
		slog.Bool("content", c.Content),
		slog.Duration("worker_ttl", c.WorkerTTL),
		slog.Duration("task_poll", c.TaskPoll),
		slog.String("storage_root", c.StorageRoot),
		slog.Any("allowed_content_checksums", c.AllowedChecksums),
		slog.Int64("upload_max_chunk_size", c.MaxUploadChunk),
		slog.Duration("orphan_protection_time", c.OrphanProtectionTime),
		slog.String("content_origin", c.ContentOrigin),
		slog.String("content_path_prefix", c.ContentPathPrefix),
		slog.String("log_level", c.LogLevel),
		slog.String("log_format", c.LogFormat),
		slog.Uint64("plugin_memory_pages", uint64(c.PluginMemoryPages)),
		slog.Duration("plugin_call_timeout", c.PluginCallTimeout),
		slog.Int("plugin_pool_size", c.PluginPoolSize),
	)
}

var dsnPassword = regexp.MustCompile(`(password\s*=\s*)('(\\.|[^'])*'|\S+)`)

// RedactURL hides the password of a connection string, URL or keyword/value.
func RedactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.Scheme != "" && u.User != nil {
		return u.Redacted()
	}
	return dsnPassword.ReplaceAllString(s, "${1}xxxxx")
}
