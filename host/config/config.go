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
// repeated, and in the file a list may be a JSON array of strings. Booleans
// (s3_path_style, content_redirect) are true or false (also 1 or 0). In the
// file, integer settings may also be JSON numbers and booleans JSON
// booleans. The file may carry "version": 1; unknown keys are errors.
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

	// MetricsListen, when set, is a second TCP address serving only
	// /metrics (Prometheus), /livez and /readyz, so that `pulpo worker`,
	// which has no HTTP server of its own, can be scraped and probed; serve
	// answers them on Listen as well. Default: "" (none). Key metrics_listen.
	MetricsListen string

	// OTelEndpoint, when set, is the OTLP/HTTP traces URL spans are sent
	// to; the standard OTEL_EXPORTER_OTLP_TRACES_ENDPOINT and
	// OTEL_EXPORTER_OTLP_ENDPOINT variables fill it when the setting is not
	// given. OTelService is OTEL_SERVICE_NAME (default pulpo).
	// OTelSampleRatio is the share of new traces recorded. Keys
	// otel_endpoint, otel_sample_ratio.
	OTelEndpoint    string
	OTelService     string
	OTelSampleRatio float64

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

	// Storage is where artifacts are kept: "fs", files under StorageRoot, or
	// "s3", objects in the bucket S3Bucket. Working files (WorkDir) stay on
	// local disk either way. Processes sharing a database must share the
	// storage: the same bucket and prefix, or the same shared directory.
	// Default: fs. Key storage.
	Storage string

	// S3Bucket, S3Endpoint, S3PublicEndpoint, S3Region, S3AccessKey,
	// S3SecretKey, S3Prefix and S3PathStyle configure the s3 storage; see
	// package storage/s3 for their meaning. The bucket and both keys are
	// required with storage s3. S3SecretKey is never logged.
	// Defaults: none, except S3Region us-east-1 and S3PathStyle false.
	// Keys s3_bucket, s3_endpoint, s3_public_endpoint, s3_region,
	// s3_access_key, s3_secret_key, s3_prefix, s3_path_style.
	S3Bucket, S3Endpoint, S3PublicEndpoint, S3Region string
	S3AccessKey, S3SecretKey, S3Prefix               string
	S3PathStyle                                      bool

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

	// ContentRedirect has the content app answer a GET of a stored artifact
	// with a 302 to a presigned URL of the object store, valid for
	// ContentRedirectTTL, instead of streaming the bytes itself; content
	// guards are checked first. Needs storage s3. Default: false.
	// Key content_redirect.
	ContentRedirect bool

	// ContentRedirectTTL is how long a presigned redirect URL is valid, from
	// 1s to 7 days; clients follow it at once, so keep it short.
	// Default: 5m. Key content_redirect_ttl.
	ContentRedirectTTL time.Duration

	// AdminUsername is the bootstrap administrator (a superuser). Default:
	// admin. Key admin_username.
	AdminUsername string

	// AdminPassword, or the content of AdminPasswordFile, is the bootstrap
	// administrator's password, set at every start. Without either, the
	// first start generates one into DataDir/admin-password (mode 0600).
	// Never logged. Keys admin_password, admin_password_file.
	AdminPassword     string
	AdminPasswordFile string

	// TokenAuth has the OCI registry under /v2/ demand bearer tokens from the token
	// endpoint /token (Docker token authentication, signed with a key generated into
	// DataDir/registry-token.key): anonymous clients may only pull public distributions.
	// false serves the registry to anyone, private distributions and pushes included: an
	// explicit operator choice for closed networks. Default: true. Key token_auth.
	TokenAuth bool

	// PullThroughTTL is how long a tag cached by a pull-through distribution
	// is served before a pull asks the upstream again (an upstream that does
	// not answer leaves the cached tag served). Default 5m. Key
	// pull_through_ttl.
	PullThroughTTL time.Duration

	// AuthCacheTTL is how long verified API credentials are remembered in
	// memory, so bcrypt runs once per client and period rather than per
	// request; 0 disables the cache. Default: 30s. Key auth_cache_ttl.
	AuthCacheTTL time.Duration

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

	// PluginCallTimeout bounds the CPU time a plugin uses during one call;
	// time in host functions (downloads, a full queue downstream) does not
	// count, so a long sync is not cut short. A plugin that runs
	// longer is aborted and its task fails. Default: 60s.
	// Key plugin_call_timeout.
	PluginCallTimeout time.Duration

	// PluginPoolSize is the number of instances kept per plugin, which bounds
	// how many calls into one plugin run at once. Default: 4.
	// Key plugin_pool_size.
	PluginPoolSize int

	// PluginIdleTimeout is how long a plugin goes uncalled before its
	// instances and compiled code are freed (about 70 MiB for the container
	// plugin); the next call compiles it again from the on-disk cache, which
	// costs it about half a second. 0 keeps them. Default: 30s.
	// Key plugin_idle_timeout.
	PluginIdleTimeout time.Duration

	// MemoryLimit is the Go runtime's soft memory limit in bytes
	// (debug.SetMemoryLimit): the garbage collector works harder as the
	// process's Go memory nears it, which keeps peak RSS flat. It applies
	// once the plugins are loaded (a first, uncached compile needs more).
	// 0 turns it off; the GOMEMLIMIT environment variable wins. Compiled
	// plugin code (about 45 MiB for the bundled plugins) and the binary come
	// on top. Default: 80 MiB. Key memory_limit.
	MemoryLimit int64

	workDir string // set by WithWorkDir
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
		OTelSampleRatio:      1,
		PullThroughTTL:       5 * time.Minute,
		OTelService:          "pulpo",
		DataDir:              DefaultDataDir,
		DatabaseMaxConns:     20,
		Workers:              2,
		API:                  true,
		Content:              true,
		WorkerTTL:            30 * time.Second,
		TaskPoll:             5 * time.Second,
		Storage:              "fs",
		S3Region:             "us-east-1",
		ContentRedirectTTL:   5 * time.Minute,
		AllowedChecksums:     []string{"sha224", "sha256", "sha384", "sha512"},
		MaxUploadChunk:       100 << 20,
		OrphanProtectionTime: 1440 * time.Minute,
		ContentPathPrefix:    DefaultContentPathPrefix,
		LogLevel:             "info",
		LogFormat:            "text",
		AdminUsername:        "admin",
		AuthCacheTTL:         30 * time.Second,
		TokenAuth:            true,
		PluginMemoryPages:    4096,
		PluginCallTimeout:    60 * time.Second,
		PluginPoolSize:       4,
		PluginIdleTimeout:    30 * time.Second,
		MemoryLimit:          80 << 20,
	}
}

// WorkDir is the directory for working files of uploads and tasks: DataDir/tmp.
func (c Config) WorkDir() string {
	if c.workDir != "" {
		return c.workDir
	}
	return filepath.Join(c.DataDir, "tmp")
}

// WithWorkDir returns c with WorkDir answering dir: the server gives each process its
// own directory under DataDir/tmp (package scratch).
func (c Config) WithWorkDir(dir string) Config {
	c.workDir = dir
	return c
}

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
		slog.String("metrics_listen", c.MetricsListen),
		slog.String("otel_endpoint", RedactURL(c.OTelEndpoint)),
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
		slog.String("storage", c.Storage),
		slog.String("s3_bucket", c.S3Bucket),
		slog.String("s3_endpoint", c.S3Endpoint),
		slog.String("s3_public_endpoint", c.S3PublicEndpoint),
		slog.String("s3_region", c.S3Region),
		slog.String("s3_access_key", c.S3AccessKey),
		slog.String("s3_secret_key", redacted(c.S3SecretKey)),
		slog.String("s3_prefix", c.S3Prefix),
		slog.Bool("s3_path_style", c.S3PathStyle),
		slog.Any("allowed_content_checksums", c.AllowedChecksums),
		slog.Int64("upload_max_chunk_size", c.MaxUploadChunk),
		slog.Duration("orphan_protection_time", c.OrphanProtectionTime),
		slog.String("content_origin", c.ContentOrigin),
		slog.String("content_path_prefix", c.ContentPathPrefix),
		slog.Bool("content_redirect", c.ContentRedirect),
		slog.Duration("content_redirect_ttl", c.ContentRedirectTTL),
		slog.String("admin_username", c.AdminUsername),
		slog.String("admin_password", redacted(c.AdminPassword)),
		slog.String("admin_password_file", c.AdminPasswordFile),
		slog.Duration("auth_cache_ttl", c.AuthCacheTTL),
		slog.Bool("token_auth", c.TokenAuth),
		slog.String("log_level", c.LogLevel),
		slog.String("log_format", c.LogFormat),
		slog.Uint64("plugin_memory_pages", uint64(c.PluginMemoryPages)),
		slog.Duration("plugin_call_timeout", c.PluginCallTimeout),
		slog.Int("plugin_pool_size", c.PluginPoolSize),
		slog.Duration("plugin_idle_timeout", c.PluginIdleTimeout),
		slog.Int64("memory_limit", c.MemoryLimit),
	)
}

// redacted hides a secret, saying only whether one is set.
func redacted(s string) string {
	if s == "" {
		return ""
	}
	return "xxxxx"
}

var dsnPassword = regexp.MustCompile(`(password\s*=\s*)('(\\.|[^'])*'|\S+)`)

// RedactURL hides the password of a connection string, URL or keyword/value.
func RedactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.Scheme != "" && u.User != nil {
		return u.Redacted()
	}
	return dsnPassword.ReplaceAllString(s, "${1}xxxxx")
}
