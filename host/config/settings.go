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
			help: "longest call into a plugin",
			set:  duration(func(c *Config) *time.Duration { return &c.PluginCallTimeout })},
		{key: "plugin_pool_size", kind: kindInt, arg: "N", def: "4",
			help: "instances kept per plugin",
			set:  integer(func(c *Config) *int { return &c.PluginPoolSize })},
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
