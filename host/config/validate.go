package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
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
	if c.OTelEndpoint != "" {
		if u, err := url.Parse(c.OTelEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("otel_endpoint", "%q is not an http(s) URL", RedactURL(c.OTelEndpoint))
		}
	}
	if c.PullThroughTTL <= 0 {
		bad("pull_through_ttl", "%v is not a positive duration", c.PullThroughTTL)
	}
	if c.OTelSampleRatio < 0 || c.OTelSampleRatio > 1 {
		bad("otel_sample_ratio", "%v is not within 0 to 1", c.OTelSampleRatio)
	}
	if c.MetricsListen != "" {
		if _, port, err := net.SplitHostPort(c.MetricsListen); err != nil {
			bad("metrics_listen", "%q is not HOST:PORT", c.MetricsListen)
		} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			bad("metrics_listen", "port %q of %q is not a number from 0 to 65535", port, c.MetricsListen)
		}
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
	switch c.Storage {
	case "fs":
	case "s3":
		if c.S3Bucket == "" {
			bad("s3_bucket", "must be set with storage s3")
		}
		if c.S3AccessKey == "" {
			bad("s3_access_key", "must be set with storage s3")
		}
		if c.S3SecretKey == "" {
			bad("s3_secret_key", "must be set with storage s3")
		}
		if err := checkEndpoint(c.S3Endpoint); err != nil {
			bad("s3_endpoint", "%v", err)
		}
		if err := checkEndpoint(c.S3PublicEndpoint); err != nil {
			bad("s3_public_endpoint", "%v", err)
		}
		if p := strings.Trim(c.S3Prefix, "/"); strings.Contains(p, "//") || slices.Contains(strings.Split(p, "/"), "..") || slices.Contains(strings.Split(p, "/"), ".") {
			bad("s3_prefix", "%q must be a slash-separated path without empty, . or .. parts", c.S3Prefix)
		}
		if c.S3Region == "" {
			bad("s3_region", "must not be empty")
		}
	default:
		bad("storage", "%q is not fs or s3", c.Storage)
	}
	if c.ContentRedirect && c.Storage != "s3" {
		bad("content_redirect", "needs storage s3 (storage is %q)", c.Storage)
	}
	if c.AdminUsername == "" {
		bad("admin_username", "must not be empty")
	}
	if len(c.AdminPassword) > 72 {
		bad("admin_password", "must be at most 72 bytes (bcrypt reads no more)")
	}
	if c.AuthCacheTTL < 0 {
		bad("auth_cache_ttl", "must be 0 or more, got %v", c.AuthCacheTTL)
	}
	if c.ContentRedirectTTL < time.Second || c.ContentRedirectTTL > 7*24*time.Hour {
		bad("content_redirect_ttl", "must be from 1s to 168h, got %v", c.ContentRedirectTTL)
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
	if c.MemoryLimit < 0 {
		bad("memory_limit", "must be 0 (none) or a number of bytes, got %d", c.MemoryLimit)
	}
	if c.PluginCallTimeout <= 0 {
		bad("plugin_call_timeout", "must be positive, got %v", c.PluginCallTimeout)
	}
	if c.PluginIdleTimeout < 0 {
		bad("plugin_idle_timeout", "must be 0 (never) or positive, got %v", c.PluginIdleTimeout)
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

// checkEndpoint accepts "" or an http:// or https:// URL with a host.
func checkEndpoint(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http:// or https:// URL such as https://s3.example.com", s)
	}
	if u.User != nil {
		return fmt.Errorf("%q must not carry credentials (use s3_access_key and s3_secret_key)", RedactURL(s))
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
