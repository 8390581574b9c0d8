package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// EnvPrefix starts every environment variable read by Load.
const EnvPrefix = "PULPO_"

// kind says how a setting's text is parsed and how it may be written in the
// configuration file.
type kind int

const (
	kindString   kind = iota
	kindInt           // also a JSON number in the file
	kindDuration      // Go syntax
	kindMinutes       // whole minutes; also a JSON number in the file
	kindList          // sep-separated; also a JSON array of strings in the file
	kindBool          // true or false (strconv.ParseBool); also a JSON boolean in the file
)

// setting describes one configurable field. Its names derive from key: file
// key key, environment variable PULPO_KEY, flag --key-with-dashes.
type setting struct {
	key  string
	kind kind
	sep  string // list separator, for kindList
	arg  string // value placeholder in usage
	def  string // default as documented
	help string
	// set parses and stores one value (a scalar) or the values of one layer
	// (a list). It returns the problem without naming the source.
	set func(c *Config, v []string) error
}

func (s setting) env() string  { return EnvPrefix + strings.ToUpper(s.key) }
func (s setting) flag() string { return strings.ReplaceAll(s.key, "_", "-") }

// names is how errors refer to a setting: its flag and its variable.
func (s setting) names() string { return "--" + s.flag() + "/" + s.env() }

// settings is the table behind Load, the usage text and the README's table.
// Order is the order of the usage text.
func settings() []setting {
	return []setting{
		{key: "listen", arg: "ADDR", def: DefaultListen,
			help: "address of the HTTP server (API, content app, plugin routes)",
			set:  str(func(c *Config) *string { return &c.Listen })},
		{key: "metrics_listen", arg: "ADDR", def: "none",
			help: "extra address serving only /metrics, /livez and /readyz (for worker)",
			set:  str(func(c *Config) *string { return &c.MetricsListen })},
		{key: "data_dir", arg: "DIR", def: DefaultDataDir,
			help: "root of media/, tmp/, postgres/, cache/ and plugins/",
			set:  str(func(c *Config) *string { return &c.DataDir })},
		{key: "plugin_dir", kind: kindList, sep: ":", arg: "DIR", def: "<data-dir>/plugins, then ./" + BundledPluginDir + " if present",
			help: "plugin directories, searched in order",
			set:  list(func(c *Config) *[]string { return &c.PluginDirs })},
		{key: "database_url", arg: "URL", def: "none: an embedded cluster under <data-dir>/postgres",
			help: "PostgreSQL connection string",
			set:  str(func(c *Config) *string { return &c.DatabaseURL })},
		{key: "database_max_conns", kind: kindInt, arg: "N", def: "20",
			help: "most database connections this process opens",
			set:  integer(func(c *Config) *int { return &c.DatabaseMaxConns })},
		{key: "workers", kind: kindInt, arg: "N", def: "2",
			help: "tasks run at once by this process (serve: 0 runs none)",
			set:  integer(func(c *Config) *int { return &c.Workers })},
		{key: "worker_ttl", kind: kindDuration, arg: "DURATION", def: "30s",
			help: "missed heartbeats after which a worker counts as dead",
			set:  duration(func(c *Config) *time.Duration { return &c.WorkerTTL })},
		{key: "task_poll", kind: kindDuration, arg: "DURATION", def: "5s",
			help: "how often an idle worker polls for tasks",
			set:  duration(func(c *Config) *time.Duration { return &c.TaskPoll })},
		{key: "storage_root", arg: "DIR", def: "<data-dir>/media",
			help: "directory of the filesystem artifact storage",
			set:  str(func(c *Config) *string { return &c.StorageRoot })},
		{key: "storage", arg: "KIND", def: "fs",
			help: "artifact storage: fs (files under storage_root) or s3 (an S3 bucket, see the s3_* settings)",
			set:  str(func(c *Config) *string { return &c.Storage })},
		{key: "s3_bucket", arg: "NAME", def: "none",
			help: "existing bucket of the s3 storage",
			set:  str(func(c *Config) *string { return &c.S3Bucket })},
		{key: "s3_endpoint", arg: "URL", def: "none: Amazon S3 in s3_region",
			help: "URL of an S3-compatible service, e.g. https://minio.example.com:9000",
			set:  str(func(c *Config) *string { return &c.S3Endpoint })},
		{key: "s3_public_endpoint", arg: "URL", def: "none: s3_endpoint",
			help: "URL clients use to reach the store, in presigned redirects, when it differs from s3_endpoint",
			set:  str(func(c *Config) *string { return &c.S3PublicEndpoint })},
		{key: "s3_region", arg: "REGION", def: "us-east-1",
			help: "region the S3 requests are signed for",
			set:  str(func(c *Config) *string { return &c.S3Region })},
		{key: "s3_access_key", arg: "KEY", def: "none",
			help: "access key id of the s3 storage",
			set:  str(func(c *Config) *string { return &c.S3AccessKey })},
		{key: "s3_secret_key", arg: "SECRET", def: "none",
			help: "secret access key of the s3 storage (never logged)",
			set:  str(func(c *Config) *string { return &c.S3SecretKey })},
		{key: "s3_prefix", arg: "PATH", def: "none: the bucket's root",
			help: "folder inside the bucket holding the objects, so installations can share a bucket",
			set:  str(func(c *Config) *string { return &c.S3Prefix })},
		{key: "s3_path_style", kind: kindBool, arg: "BOOL", def: "false",
			help: "address the bucket as ENDPOINT/BUCKET (most self-hosted stores) rather than BUCKET.ENDPOINT",
			set:  boolean(func(c *Config) *bool { return &c.S3PathStyle })},
		{key: "allowed_content_checksums", kind: kindList, sep: ",", arg: "LIST", def: "sha224,sha256,sha384,sha512",
			help: "artifact digests from md5 sha1 sha224 sha256 sha384 sha512; sha256 required",
			set:  list(func(c *Config) *[]string { return &c.AllowedChecksums })},
		{key: "upload_max_chunk_size", kind: kindInt, arg: "BYTES", def: "104857600",
			help: "largest chunk of a chunked upload, in bytes",
			set: func(c *Config, v []string) error {
				n, err := strconv.ParseInt(v[0], 10, 64)
				if err != nil {
					return fmt.Errorf("%q is not a whole number of bytes", v[0])
				}
				c.MaxUploadChunk = n
				return nil
			}},
		{key: "orphan_protection_time", kind: kindMinutes, arg: "MINUTES", def: "1440",
			help: "minutes before unreferenced content may be cleaned up",
			set: func(c *Config, v []string) error {
				n, err := strconv.ParseInt(v[0], 10, 64)
				if err != nil || n > int64(1<<62/time.Minute) {
					return fmt.Errorf("%q is not a whole number of minutes", v[0])
				}
				c.OrphanProtectionTime = time.Duration(n) * time.Minute
				return nil
			}},
		{key: "content_origin", arg: "URL", def: "none: derived from each request",
			help: "scheme and host of the content app, e.g. https://pulp.example.com",
			set:  str(func(c *Config) *string { return &c.ContentOrigin })},
		{key: "content_path_prefix", arg: "PATH", def: DefaultContentPathPrefix,
			help: "path under which distributions are served",
			set:  str(func(c *Config) *string { return &c.ContentPathPrefix })},
		{key: "content_redirect", kind: kindBool, arg: "BOOL", def: "false",
			help: "answer content GETs of stored artifacts with a 302 to a presigned URL of the object store (s3 storage only) instead of streaming them",
			set:  boolean(func(c *Config) *bool { return &c.ContentRedirect })},
		{key: "token_auth", kind: kindBool, arg: "BOOL", def: "true",
			help: "registry clients need tokens from /token; false opens the registry to anyone, pushes included",
			set:  boolean(func(c *Config) *bool { return &c.TokenAuth })},
		{key: "pull_through_ttl", kind: kindDuration, arg: "DURATION", def: "5m",
			help: "how long a tag pulled through a pull-through distribution is served before the upstream is asked again",
			set:  duration(func(c *Config) *time.Duration { return &c.PullThroughTTL })},
		{key: "content_redirect_ttl", kind: kindDuration, arg: "DURATION", def: "5m",
			help: "validity of the presigned URLs of content_redirect",
			set:  duration(func(c *Config) *time.Duration { return &c.ContentRedirectTTL })},
		{key: "admin_username", arg: "NAME", def: "admin",
			help: "username of the bootstrap administrator (a superuser)",
			set:  str(func(c *Config) *string { return &c.AdminUsername })},
		{key: "admin_password", arg: "PASSWORD", def: "none: generated into <data-dir>/admin-password on first start",
			help: "password of the bootstrap administrator, set at every start; never logged",
			set:  str(func(c *Config) *string { return &c.AdminPassword })},
		{key: "admin_password_file", arg: "FILE", def: "none",
			help: "file holding the bootstrap administrator's password (instead of admin_password)",
			set:  str(func(c *Config) *string { return &c.AdminPasswordFile })},
		{key: "auth_cache_ttl", kind: kindDuration, arg: "DURATION", def: "30s",
			help: "how long verified API credentials are remembered in memory (0: not at all)",
			set:  duration(func(c *Config) *time.Duration { return &c.AuthCacheTTL })},
		{key: "log_level", arg: "LEVEL", def: "info",
			help: "debug, info, warn or error",
			set:  str(func(c *Config) *string { return &c.LogLevel })},
		{key: "log_format", arg: "FORMAT", def: "text",
			help: "text or json",
			set:  str(func(c *Config) *string { return &c.LogFormat })},
		{key: "plugin_memory_pages", kind: kindInt, arg: "PAGES", def: "4096",
			help: "memory limit of a plugin instance, in 64 KiB pages",
			set: func(c *Config, v []string) error {
				n, err := strconv.ParseUint(v[0], 10, 32)
				if err != nil {
					return fmt.Errorf("%q is not a number of pages", v[0])
				}
				c.PluginMemoryPages = uint32(n)
				return nil
			}},
		{key: "plugin_call_timeout", kind: kindDuration, arg: "DURATION", def: "60s",
			help: "most CPU time a plugin may use in one call (time in host functions not counted)",
			set:  duration(func(c *Config) *time.Duration { return &c.PluginCallTimeout })},
		{key: "plugin_pool_size", kind: kindInt, arg: "N", def: "4",
			help: "instances kept per plugin",
			set:  integer(func(c *Config) *int { return &c.PluginPoolSize })},
		{key: "plugin_idle_timeout", kind: kindDuration, arg: "DURATION", def: "30s",
			help: "time uncalled after which a plugin's instances and compiled code are freed (0: kept)",
			set:  duration(func(c *Config) *time.Duration { return &c.PluginIdleTimeout })},
		{key: "otel_endpoint", arg: "URL", def: "none: $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else $OTEL_EXPORTER_OTLP_ENDPOINT/v1/traces, else no tracing",
			help: "OTLP/HTTP (JSON) traces endpoint that OpenTelemetry spans are sent to",
			set:  str(func(c *Config) *string { return &c.OTelEndpoint })},
		{key: "otel_sample_ratio", arg: "RATIO", def: "1",
			help: "share of new traces recorded, 0 to 1 (traces continued from a sampled request are always recorded)",
			set: func(c *Config, v []string) error {
				f, err := strconv.ParseFloat(v[0], 64)
				if err != nil {
					return fmt.Errorf("%q is not a number", v[0])
				}
				c.OTelSampleRatio = f
				return nil
			}},
		{key: "memory_limit", kind: kindInt, arg: "BYTES", def: "83886080",
			help: "soft limit of the Go runtime's memory, in bytes (0: none; GOMEMLIMIT wins)",
			set: func(c *Config, v []string) error {
				n, err := strconv.ParseInt(v[0], 10, 64)
				if err != nil {
					return fmt.Errorf("%q is not a whole number of bytes", v[0])
				}
				c.MemoryLimit = n
				return nil
			}},
	}
}

func str(field func(*Config) *string) func(*Config, []string) error {
	return func(c *Config, v []string) error {
		*field(c) = v[0]
		return nil
	}
}

func list(field func(*Config) *[]string) func(*Config, []string) error {
	return func(c *Config, v []string) error {
		*field(c) = v
		return nil
	}
}

func integer(field func(*Config) *int) func(*Config, []string) error {
	return func(c *Config, v []string) error {
		n, err := strconv.Atoi(v[0])
		if err != nil {
			return fmt.Errorf("%q is not an integer", v[0])
		}
		*field(c) = n
		return nil
	}
}

func boolean(field func(*Config) *bool) func(*Config, []string) error {
	return func(c *Config, v []string) error {
		b, err := strconv.ParseBool(v[0])
		if err != nil {
			return fmt.Errorf("%q is not true or false", v[0])
		}
		*field(c) = b
		return nil
	}
}

func duration(field func(*Config) *time.Duration) func(*Config, []string) error {
	return func(c *Config, v []string) error {
		d, err := time.ParseDuration(v[0])
		if err != nil {
			return fmt.Errorf("%q is not a duration (use Go syntax such as 30s or 1m30s)", v[0])
		}
		*field(c) = d
		return nil
	}
}

// splitList splits a list value and drops empty elements, so "a::b" and a
// trailing separator do no harm.
func splitList(v, sep string) []string {
	var out []string
	for p := range strings.SplitSeq(v, sep) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
