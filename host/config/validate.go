package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Validate reports every problem of c together, one per line, each naming
// the setting's flag and environment variable. Load calls it; call it on a
// Config built by hand.
func (c Config) Validate() error { return errors.Join(c.problems()...) }

func (c Config) problems() []error {
	var out []error
	bad := func(key, format string, args ...any) {
		s := setting{key: key}
		out = append(out, fmt.Errorf("%s (%s): %s", key, s.names(), fmt.Sprintf(format, args...)))
	}

	if _, port, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "%q is not HOST:PORT", c.Listen)
	} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		bad("listen", "port %q of %q is not a number from 0 to 65535", port, c.Listen)
	}
	if c.DataDir == "" {
		bad("data_dir", "must not be empty")
	}
	for _, d := range c.PluginDirs {
		if d == "" {
			bad("plugin_dir", "empty directory name")
		}
	}
	if err := checkDatabaseURL(c.DatabaseURL); err != nil {
		bad("database_url", "%v", err)
	}
	if c.DatabaseMaxConns < 1 {
		bad("database_max_conns", "must be at least 1, got %d", c.DatabaseMaxConns)
	}
	if c.Workers < 0 {
		bad("workers", "must be 0 or more, got %d", c.Workers)
	}
	if c.WorkerTTL <= 0 {
		bad("worker_ttl", "must be positive, got %v", c.WorkerTTL)
	}
	if c.TaskPoll <= 0 {
		bad("task_poll", "must be positive, got %v", c.TaskPoll)
	}
	if c.StorageRoot == "" {
		bad("storage_root", "must not be empty")
	}
	var unknown []string
	for _, n := range c.AllowedChecksums {
		if !slices.Contains(checksums, n) {
			unknown = append(unknown, strconv.Quote(n))
		}
	}
	if len(unknown) > 0 {
		bad("allowed_content_checksums", "unknown %s (known: %s)", strings.Join(unknown, ", "), strings.Join(checksums, ", "))
	}
	if !slices.Contains(c.AllowedChecksums, "sha256") {
		bad("allowed_content_checksums", "must include sha256, got %q", strings.Join(c.AllowedChecksums, ","))
	}
	if c.MaxUploadChunk <= 0 {
		bad("upload_max_chunk_size", "must be positive, got %d", c.MaxUploadChunk)
	}
	if c.OrphanProtectionTime < 0 {
		bad("orphan_protection_time", "must be 0 or more minutes, got %v", c.OrphanProtectionTime)
	}
	if err := checkOrigin(c.ContentOrigin); err != nil {
		bad("content_origin", "%v", err)
	}
	if p := c.ContentPathPrefix; len(p) < 2 || !strings.HasPrefix(p, "/") || !strings.HasSuffix(p, "/") || strings.Contains(p, "//") {
		bad("content_path_prefix", "%q must start and end with / and name a path, such as /pulp/content/", p)
	} else if strings.HasPrefix(p, "/pulp/api/") {
		bad("content_path_prefix", "%q lies under the REST API's /pulp/api/", p)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.LogLevel) {
		bad("log_level", "%q is not one of debug, info, warn, error", c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("log_format", "%q is not text or json", c.LogFormat)
	}
	if c.PluginMemoryPages < 1 || c.PluginMemoryPages > 65536 {
		bad("plugin_memory_pages", "must be from 1 to 65536 pages of 64 KiB, got %d", c.PluginMemoryPages)
	}
	if c.PluginCallTimeout <= 0 {
		bad("plugin_call_timeout", "must be positive, got %v", c.PluginCallTimeout)
	}
	if c.PluginPoolSize < 1 {
		bad("plugin_pool_size", "must be at least 1, got %d", c.PluginPoolSize)
	}
	return out
}

// checkDatabaseURL accepts "", a postgres:// or postgresql:// URL, or a
// keyword/value string. The driver parses it fully when connecting.
func checkDatabaseURL(s string) error {
	if s == "" {
		return nil
	}
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			return errors.New("not a valid URL")
		}
		if u.Scheme != "postgres" && u.Scheme != "postgresql" {
			return fmt.Errorf("scheme %q is not postgres or postgresql", u.Scheme)
		}
		return nil
	}
	if !strings.Contains(s, "=") {
		return errors.New("neither a postgres:// URL nor keyword=value pairs")
	}
	return nil
}

// checkOrigin accepts "" or scheme://host[:port] with scheme http or https.
func checkOrigin(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http:// or https:// origin such as https://pulp.example.com", s)
	}
	if u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q must be scheme and host only, without path, query or user", s)
	}
	return nil
}
