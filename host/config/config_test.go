package config

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// envMap turns a map into Load's env function.
func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// writeFile writes a config file into a temporary directory.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pulpo.json")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func abs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c, cmd, err := Load([]string{"serve"}, envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cmd != Serve {
		t.Fatalf("command %q", cmd)
	}
	data := abs(t, "var")
	want := Config{
		Listen:               "127.0.0.1:24817",
		OTelService:          "pulpo",
		OTelSampleRatio:      1,
		PullThroughTTL:       5 * time.Minute,
		DataDir:              data,
		PluginDirs:           []string{filepath.Join(data, "plugins")}, // no ./plugins/build beside this test
		DatabaseMaxConns:     20,
		Workers:              2,
		API:                  true,
		Content:              true,
		WorkerTTL:            30 * time.Second,
		TaskPoll:             5 * time.Second,
		StorageRoot:          filepath.Join(data, "media"),
		Storage:              "fs",
		S3Region:             "us-east-1",
		ContentRedirectTTL:   5 * time.Minute,
		AllowedChecksums:     []string{"sha224", "sha256", "sha384", "sha512"},
		MaxUploadChunk:       100 << 20,
		OrphanProtectionTime: 24 * time.Hour,
		ContentPathPrefix:    "/pulp/content/",
		LogLevel:             "info",
		LogFormat:            "text",
		AdminUsername:        "admin",
		AuthCacheTTL:         30 * time.Second,
		TokenAuth:            true,
		PluginMemoryPages:    4096,
		PluginCallTimeout:    time.Minute,
		PluginPoolSize:       4,
		PluginIdleTimeout:    30 * time.Second,
		MemoryLimit:          80 << 20,
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("defaults\n got %+v\nwant %+v", c, want)
	}
	if !reflect.DeepEqual(Default(), want) {
		t.Fatalf("Default() = %+v", Default())
	}
	if err := want.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.WorkDir() != filepath.Join(data, "tmp") || c.PostgresDir() != filepath.Join(data, "postgres") || c.CacheDir() != filepath.Join(data, "cache") {
		t.Fatalf("derived dirs %s %s %s", c.WorkDir(), c.PostgresDir(), c.CacheDir())
	}
}

// TestPrecedence sets one setting in several layers and checks which wins:
// flag > env > file > default.
func TestPrecedence(t *testing.T) {
	t.Parallel()
	file := writeFile(t, `{"version": 1, "listen": "127.0.0.1:1001", "workers": 3, "worker_ttl": "11s",
		"allowed_content_checksums": ["sha256", "sha1"], "log_level": "warn", "orphan_protection_time": 7}`)
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, c Config)
	}{
		{"default", []string{"serve"}, nil, func(t *testing.T, c Config) {
			if c.Listen != DefaultListen || c.Workers != 2 {
				t.Errorf("listen %s workers %d", c.Listen, c.Workers)
			}
		}},
		{"file over default", []string{"serve", "--config", file}, nil, func(t *testing.T, c Config) {
			if c.Listen != "127.0.0.1:1001" || c.Workers != 3 || c.WorkerTTL != 11*time.Second || c.LogLevel != "warn" || c.OrphanProtectionTime != 7*time.Minute {
				t.Errorf("%+v", c)
			}
			if !slices.Equal(c.AllowedChecksums, []string{"sha1", "sha256"}) {
				t.Errorf("checksums %v", c.AllowedChecksums)
			}
		}},
		{"file named by PULPO_CONFIG", []string{"worker"}, map[string]string{"PULPO_CONFIG": file}, func(t *testing.T, c Config) {
			if c.Workers != 3 {
				t.Errorf("workers %d", c.Workers)
			}
		}},
		{"--config over PULPO_CONFIG", []string{"serve", "--config", file}, map[string]string{"PULPO_CONFIG": "/nonexistent.json"}, func(t *testing.T, c Config) {
			if c.Workers != 3 {
				t.Errorf("workers %d", c.Workers)
			}
		}},
		{"env over file", []string{"serve", "--config", file}, map[string]string{
			"PULPO_LISTEN": "127.0.0.1:1002", "PULPO_WORKERS": "4", "PULPO_WORKER_TTL": "2s",
			"PULPO_ALLOWED_CONTENT_CHECKSUMS": "SHA512, sha256,sha256",
		}, func(t *testing.T, c Config) {
			if c.Listen != "127.0.0.1:1002" || c.Workers != 4 || c.WorkerTTL != 2*time.Second {
				t.Errorf("%+v", c)
			}
			if c.LogLevel != "warn" {
				t.Errorf("file value lost: log_level %s", c.LogLevel)
			}
			if !slices.Equal(c.AllowedChecksums, []string{"sha256", "sha512"}) {
				t.Errorf("checksums %v", c.AllowedChecksums)
			}
		}},
		{"flag over env", []string{"serve", "--config", file, "--listen", "127.0.0.1:1003", "--workers=0", "--worker-ttl", "1m",
			"--allowed-content-checksums", "sha256", "--allowed-content-checksums", "sha384"},
			map[string]string{"PULPO_LISTEN": "127.0.0.1:1002", "PULPO_WORKERS": "4", "PULPO_ALLOWED_CONTENT_CHECKSUMS": "md5,sha256"},
			func(t *testing.T, c Config) {
				if c.Listen != "127.0.0.1:1003" || c.Workers != 0 || c.WorkerTTL != time.Minute {
					t.Errorf("%+v", c)
				}
				if !slices.Equal(c.AllowedChecksums, []string{"sha256", "sha384"}) {
					t.Errorf("checksums %v", c.AllowedChecksums)
				}
			}},
		{"last flag wins", []string{"serve", "--workers", "5", "--workers", "6"}, nil, func(t *testing.T, c Config) {
			if c.Workers != 6 {
				t.Errorf("workers %d", c.Workers)
			}
		}},
		{"empty env is unset", []string{"serve"}, map[string]string{"PULPO_LISTEN": ""}, func(t *testing.T, c Config) {
			if c.Listen != DefaultListen {
				t.Errorf("listen %s", c.Listen)
			}
		}},
		{"derived paths follow data dir", []string{"serve", "--data-dir", "/srv/pulpo"}, nil, func(t *testing.T, c Config) {
			if c.StorageRoot != "/srv/pulpo/media" || !slices.Equal(c.PluginDirs, []string{"/srv/pulpo/plugins"}) || c.CacheDir() != "/srv/pulpo/cache" {
				t.Errorf("%+v", c)
			}
		}},
		{"explicit storage root", []string{"serve", "--data-dir", "/srv/pulpo"}, map[string]string{"PULPO_STORAGE_ROOT": "/mnt/media"}, func(t *testing.T, c Config) {
			if c.StorageRoot != "/mnt/media" {
				t.Errorf("storage root %s", c.StorageRoot)
			}
		}},
		{"plugin dirs from env, replaced by flags", []string{"serve", "--plugin-dir", "/p/c", "--plugin-dir", "/p/d:/p/e"},
			map[string]string{"PULPO_PLUGIN_DIR": "/p/a:/p/b"}, func(t *testing.T, c Config) {
				if !slices.Equal(c.PluginDirs, []string{"/p/c", "/p/d", "/p/e"}) {
					t.Errorf("plugin dirs %v", c.PluginDirs)
				}
			}},
		{"plugin dirs from env", []string{"serve"}, map[string]string{"PULPO_PLUGIN_DIR": "/p/a::/p/b:"}, func(t *testing.T, c Config) {
			if !slices.Equal(c.PluginDirs, []string{"/p/a", "/p/b"}) {
				t.Errorf("plugin dirs %v", c.PluginDirs)
			}
		}},
		{"relative paths made absolute", []string{"serve", "--data-dir", "d", "--plugin-dir", "p"}, nil, func(t *testing.T, c Config) {
			if c.DataDir != abs(t, "d") || c.StorageRoot != abs(t, "d/media") || !slices.Equal(c.PluginDirs, []string{abs(t, "p")}) {
				t.Errorf("%+v", c)
			}
		}},
		{"roles", []string{"serve", "--no-api"}, nil, func(t *testing.T, c Config) {
			if c.API || !c.Content {
				t.Errorf("api %v content %v", c.API, c.Content)
			}
		}},
		{"worker has no HTTP roles", []string{"worker"}, nil, func(t *testing.T, c Config) {
			if c.API || c.Content || c.Workers != 2 {
				t.Errorf("%+v", c)
			}
		}},
		{"every env var", []string{"migrate"}, map[string]string{
			"PULPO_LISTEN": "0.0.0.0:80", "PULPO_DATA_DIR": "/d", "PULPO_PLUGIN_DIR": "/p", "PULPO_DATABASE_URL": "postgres://u:pw@h/db",
			"PULPO_DATABASE_MAX_CONNS": "7", "PULPO_WORKERS": "9", "PULPO_WORKER_TTL": "3s", "PULPO_TASK_POLL": "250ms",
			"PULPO_STORAGE_ROOT": "/s", "PULPO_ALLOWED_CONTENT_CHECKSUMS": "sha256", "PULPO_UPLOAD_MAX_CHUNK_SIZE": "1024",
			"PULPO_ORPHAN_PROTECTION_TIME": "0", "PULPO_CONTENT_ORIGIN": "https://cdn.example.com/",
			"PULPO_CONTENT_PATH_PREFIX": "/c/", "PULPO_LOG_LEVEL": "debug", "PULPO_LOG_FORMAT": "json",
			"PULPO_PLUGIN_MEMORY_PAGES": "16", "PULPO_PLUGIN_CALL_TIMEOUT": "1s", "PULPO_PLUGIN_POOL_SIZE": "1",
			"PULPO_PLUGIN_IDLE_TIMEOUT": "2m",
			"PULPO_STORAGE":             "s3", "PULPO_S3_BUCKET": "b", "PULPO_S3_ENDPOINT": "http://s3:9000", "PULPO_S3_PUBLIC_ENDPOINT": "https://s3.example.com",
			"PULPO_S3_REGION": "eu-west-1", "PULPO_S3_ACCESS_KEY": "a", "PULPO_S3_SECRET_KEY": "s", "PULPO_S3_PREFIX": "p",
			"PULPO_S3_PATH_STYLE": "1", "PULPO_CONTENT_REDIRECT": "true", "PULPO_CONTENT_REDIRECT_TTL": "30s",
			"PULPO_MEMORY_LIMIT": "0", "PULPO_ADMIN_USERNAME": "root", "PULPO_ADMIN_PASSWORD": "pw-from-env",
			"PULPO_ADMIN_PASSWORD_FILE": "/pw", "PULPO_AUTH_CACHE_TTL": "0s",
			"PULPO_TOKEN_AUTH": "false", "PULPO_OTEL_ENDPOINT": "http://collector:4318/v1/traces", "PULPO_OTEL_SAMPLE_RATIO": "0.25",
			"OTEL_SERVICE_NAME": "pulpo-eu", "PULPO_PULL_THROUGH_TTL": "1m",
		}, func(t *testing.T, c Config) {
			want := Config{Listen: "0.0.0.0:80", OTelEndpoint: "http://collector:4318/v1/traces", OTelService: "pulpo-eu", OTelSampleRatio: 0.25,
				PullThroughTTL: time.Minute, DataDir: "/d", PluginDirs: []string{"/p"}, DatabaseURL: "postgres://u:pw@h/db",
				DatabaseMaxConns: 7, Workers: 9, WorkerTTL: 3 * time.Second, TaskPoll: 250 * time.Millisecond,
				StorageRoot: "/s", AllowedChecksums: []string{"sha256"}, MaxUploadChunk: 1024,
				ContentOrigin: "https://cdn.example.com", ContentPathPrefix: "/c/", LogLevel: "debug", LogFormat: "json",
				PluginMemoryPages: 16, PluginCallTimeout: time.Second, PluginPoolSize: 1, PluginIdleTimeout: 2 * time.Minute,
				Storage: "s3", S3Bucket: "b", S3Endpoint: "http://s3:9000", S3PublicEndpoint: "https://s3.example.com", S3Region: "eu-west-1",
				S3AccessKey: "a", S3SecretKey: "s", S3Prefix: "p", S3PathStyle: true, ContentRedirect: true, ContentRedirectTTL: 30 * time.Second,
				MemoryLimit: 0, AdminUsername: "root", AdminPassword: "pw-from-env", AdminPasswordFile: "/pw"}
			if !reflect.DeepEqual(c, want) {
				t.Errorf("\n got %+v\nwant %+v", c, want)
			}
		}},
		{"file strings and numbers", []string{"serve", "--config", writeFile(t, `{"workers": "5", "database_max_conns": 8,
			"plugin_dir": "/x:/y", "upload_max_chunk_size": 2048, "plugin_memory_pages": "32"}`)}, nil, func(t *testing.T, c Config) {
			if c.Workers != 5 || c.DatabaseMaxConns != 8 || !slices.Equal(c.PluginDirs, []string{"/x", "/y"}) || c.MaxUploadChunk != 2048 || c.PluginMemoryPages != 32 {
				t.Errorf("%+v", c)
			}
		}},
		{"file empty plugin list means none", []string{"serve", "--config", writeFile(t, `{"plugin_dir": []}`)}, nil, func(t *testing.T, c Config) {
			if c.PluginDirs == nil || len(c.PluginDirs) != 0 {
				t.Errorf("plugin dirs %#v", c.PluginDirs)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _, err := Load(tt.args, envMap(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

// TestBundledPluginDir checks that ./plugins/build joins the default plugin
// directories only when it exists.
func TestBundledPluginDir(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	c, _, err := Load([]string{"serve"}, envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.PluginDirs, []string{filepath.Join(dir, "var", "plugins")}) {
		t.Fatalf("without plugins/build: %v", c.PluginDirs)
	}
	if err := os.MkdirAll(filepath.Join(dir, "plugins", "build"), 0o755); err != nil {
		t.Fatal(err)
	}
	c, _, err = Load([]string{"serve"}, envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join(dir, "var", "plugins"), filepath.Join(dir, "plugins", "build")}; !slices.Equal(c.PluginDirs, want) {
		t.Fatalf("with plugins/build: %v, want %v", c.PluginDirs, want)
	}
}

// TestErrors checks that each bad value is reported, naming where it came
// from, and that all problems are reported together.
func TestErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string // substrings, each expected on its own line of the error
	}{
		{"listen", []string{"serve", "--listen", "nope"}, nil, []string{`listen (--listen/PULPO_LISTEN): "nope" is not HOST:PORT`}},
		{"listen port", []string{"serve", "--listen", "127.0.0.1:99999"}, nil, []string{`--listen/PULPO_LISTEN): port "99999"`}},
		{"data dir empty", []string{"serve", "--data-dir", ""}, nil, []string{"data_dir (--data-dir/PULPO_DATA_DIR): must not be empty", "storage_root (--storage-root/PULPO_STORAGE_ROOT): must not be empty"}},
		{"database url scheme", []string{"serve", "--database-url", "mysql://x/y"}, nil, []string{`database_url (--database-url/PULPO_DATABASE_URL): scheme "mysql"`}},
		{"database url garbage", nil, map[string]string{"PULPO_DATABASE_URL": "localhost"}, []string{"database_url (--database-url/PULPO_DATABASE_URL): neither"}},
		{"max conns", nil, map[string]string{"PULPO_DATABASE_MAX_CONNS": "0"}, []string{"database_max_conns (--database-max-conns/PULPO_DATABASE_MAX_CONNS): must be at least 1, got 0"}},
		{"max conns not int", nil, map[string]string{"PULPO_DATABASE_MAX_CONNS": "many"}, []string{`PULPO_DATABASE_MAX_CONNS: "many" is not an integer`}},
		{"workers negative", []string{"serve", "--workers", "-1"}, nil, []string{"workers (--workers/PULPO_WORKERS): must be 0 or more, got -1"}},
		{"workers not int", []string{"serve", "--workers", "two"}, nil, []string{`--workers: "two" is not an integer`}},
		{"worker needs workers", []string{"worker"}, map[string]string{"PULPO_WORKERS": "0"}, []string{"worker: workers (--workers/PULPO_WORKERS) must be at least 1, got 0"}},
		{"serve with nothing to run", []string{"serve", "--no-api", "--no-content", "--workers", "0"}, nil, []string{"serve: --no-api, --no-content and 0 workers leave nothing to run"}},
		{"worker ttl syntax", nil, map[string]string{"PULPO_WORKER_TTL": "30"}, []string{`PULPO_WORKER_TTL: "30" is not a duration`}},
		{"worker ttl zero", nil, map[string]string{"PULPO_WORKER_TTL": "0s"}, []string{"worker_ttl (--worker-ttl/PULPO_WORKER_TTL): must be positive, got 0s"}},
		{"task poll negative", []string{"serve", "--task-poll", "-1s"}, nil, []string{"task_poll (--task-poll/PULPO_TASK_POLL): must be positive, got -1s"}},
		{"checksums unknown", nil, map[string]string{"PULPO_ALLOWED_CONTENT_CHECKSUMS": "sha256,crc32"}, []string{`allowed_content_checksums (--allowed-content-checksums/PULPO_ALLOWED_CONTENT_CHECKSUMS): unknown "crc32"`}},
		{"checksums without sha256", nil, map[string]string{"PULPO_ALLOWED_CONTENT_CHECKSUMS": "sha512"}, []string{"allowed_content_checksums (--allowed-content-checksums/PULPO_ALLOWED_CONTENT_CHECKSUMS): must include sha256"}},
		{"checksums empty", []string{"serve", "--allowed-content-checksums", ","}, nil, []string{"must include sha256"}},
		{"upload chunk", nil, map[string]string{"PULPO_UPLOAD_MAX_CHUNK_SIZE": "0"}, []string{"upload_max_chunk_size (--upload-max-chunk-size/PULPO_UPLOAD_MAX_CHUNK_SIZE): must be positive, got 0"}},
		{"upload chunk syntax", nil, map[string]string{"PULPO_UPLOAD_MAX_CHUNK_SIZE": "100MiB"}, []string{`PULPO_UPLOAD_MAX_CHUNK_SIZE: "100MiB" is not a whole number of bytes`}},
		{"orphan negative", nil, map[string]string{"PULPO_ORPHAN_PROTECTION_TIME": "-5"}, []string{"orphan_protection_time (--orphan-protection-time/PULPO_ORPHAN_PROTECTION_TIME): must be 0 or more minutes"}},
		{"orphan syntax", nil, map[string]string{"PULPO_ORPHAN_PROTECTION_TIME": "1h"}, []string{`PULPO_ORPHAN_PROTECTION_TIME: "1h" is not a whole number of minutes`}},
		{"origin scheme", nil, map[string]string{"PULPO_CONTENT_ORIGIN": "ftp://x"}, []string{`content_origin (--content-origin/PULPO_CONTENT_ORIGIN): "ftp://x" is not an http:// or https:// origin`}},
		{"origin path", nil, map[string]string{"PULPO_CONTENT_ORIGIN": "https://x/pulp"}, []string{`content_origin (--content-origin/PULPO_CONTENT_ORIGIN): "https://x/pulp" must be scheme and host only`}},
		{"prefix slashes", nil, map[string]string{"PULPO_CONTENT_PATH_PREFIX": "/content"}, []string{`content_path_prefix (--content-path-prefix/PULPO_CONTENT_PATH_PREFIX): "/content" must start and end with /`}},
		{"prefix root", nil, map[string]string{"PULPO_CONTENT_PATH_PREFIX": "/"}, []string{`"/" must start and end with /`}},
		{"prefix under api", nil, map[string]string{"PULPO_CONTENT_PATH_PREFIX": "/pulp/api/v3/c/"}, []string{"lies under the REST API"}},
		{"log level", nil, map[string]string{"PULPO_LOG_LEVEL": "trace"}, []string{`log_level (--log-level/PULPO_LOG_LEVEL): "trace" is not one of debug, info, warn, error`}},
		{"log format", []string{"serve", "--log-format", "xml"}, nil, []string{`log_format (--log-format/PULPO_LOG_FORMAT): "xml" is not text or json`}},
		{"memory pages zero", nil, map[string]string{"PULPO_PLUGIN_MEMORY_PAGES": "0"}, []string{"plugin_memory_pages (--plugin-memory-pages/PULPO_PLUGIN_MEMORY_PAGES): must be from 1 to 65536"}},
		{"memory pages too many", nil, map[string]string{"PULPO_PLUGIN_MEMORY_PAGES": "65537"}, []string{"must be from 1 to 65536 pages of 64 KiB, got 65537"}},
		{"memory pages syntax", nil, map[string]string{"PULPO_PLUGIN_MEMORY_PAGES": "-1"}, []string{`PULPO_PLUGIN_MEMORY_PAGES: "-1" is not a number of pages`}},
		{"call timeout", nil, map[string]string{"PULPO_PLUGIN_CALL_TIMEOUT": "0s"}, []string{"plugin_call_timeout (--plugin-call-timeout/PULPO_PLUGIN_CALL_TIMEOUT): must be positive"}},
		{"memory limit", nil, map[string]string{"PULPO_MEMORY_LIMIT": "-1"}, []string{"memory_limit (--memory-limit/PULPO_MEMORY_LIMIT): must be 0 (none) or a number of bytes"}},
		{"idle timeout", nil, map[string]string{"PULPO_PLUGIN_IDLE_TIMEOUT": "-1s"}, []string{"plugin_idle_timeout (--plugin-idle-timeout/PULPO_PLUGIN_IDLE_TIMEOUT): must be 0 (never) or positive"}},
		{"pool size", nil, map[string]string{"PULPO_PLUGIN_POOL_SIZE": "0"}, []string{"plugin_pool_size (--plugin-pool-size/PULPO_PLUGIN_POOL_SIZE): must be at least 1, got 0"}},
		{"storage kind", nil, map[string]string{"PULPO_STORAGE": "gcs"}, []string{`storage (--storage/PULPO_STORAGE): "gcs" is not fs or s3`}},
		{"s3 incomplete", nil, map[string]string{"PULPO_STORAGE": "s3", "PULPO_S3_REGION": " "}, []string{
			"s3_bucket (--s3-bucket/PULPO_S3_BUCKET): must be set with storage s3",
			"s3_access_key (--s3-access-key/PULPO_S3_ACCESS_KEY): must be set",
			"s3_secret_key (--s3-secret-key/PULPO_S3_SECRET_KEY): must be set"}},
		{"s3 endpoints and prefix", []string{"serve", "--storage", "s3", "--s3-bucket", "b", "--s3-access-key", "a", "--s3-secret-key", "s",
			"--s3-endpoint", "minio:9000", "--s3-public-endpoint", "https://u:p@s3.example.com", "--s3-prefix", "a/../b"}, nil, []string{
			`s3_endpoint (--s3-endpoint/PULPO_S3_ENDPOINT): "minio:9000" is not an http:// or https:// URL`,
			`s3_public_endpoint (--s3-public-endpoint/PULPO_S3_PUBLIC_ENDPOINT): "https://u:xxxxx@s3.example.com" must not carry credentials`,
			`s3_prefix (--s3-prefix/PULPO_S3_PREFIX): "a/../b" must be`}},
		{"path style syntax", nil, map[string]string{"PULPO_S3_PATH_STYLE": "yes"}, []string{`PULPO_S3_PATH_STYLE: "yes" is not true or false`}},
		{"redirect needs s3", []string{"serve", "--content-redirect", "true"}, nil, []string{`content_redirect (--content-redirect/PULPO_CONTENT_REDIRECT): needs storage s3 (storage is "fs")`}},
		{"redirect ttl", nil, map[string]string{"PULPO_CONTENT_REDIRECT_TTL": "200h"}, []string{"content_redirect_ttl (--content-redirect-ttl/PULPO_CONTENT_REDIRECT_TTL): must be from 1s to 168h, got 200h0m0s"}},
		{"file bool type", []string{"serve", "--config", writeFile(t, `{"s3_path_style": 1, "content_redirect": "maybe"}`)}, nil, []string{
			"s3_path_style: must be a boolean or a string", `content_redirect: "maybe" is not true or false`}},
		{"file missing", []string{"serve", "--config", "/nonexistent/pulpo.json"}, nil, []string{"config file: open /nonexistent/pulpo.json"}},
		{"file not json", []string{"serve", "--config", writeFile(t, `listen: x`)}, nil, []string{"not a JSON object"}},
		{"file trailing data", []string{"serve", "--config", writeFile(t, `{} {}`)}, nil, []string{"data after the JSON object"}},
		{"file unknown key", []string{"serve", "--config", writeFile(t, `{"lisen": "x"}`)}, nil, []string{"lisen: unknown key"}},
		{"file version", []string{"serve", "--config", writeFile(t, `{"version": 2}`)}, nil, []string{"version: unsupported version 2"}},
		{"file wrong types", []string{"serve", "--config", writeFile(t, `{"listen": 5, "workers": true, "plugin_dir": [1], "worker_ttl": 30, "allowed_content_checksums": {}}`)}, nil, []string{
			"listen: must be a string", "workers: must be a number or a string", "plugin_dir: list element 1 is not a string",
			"worker_ttl: must be a string", "allowed_content_checksums: must be a string or an array of strings"}},
		{"file bad value", []string{"serve", "--config", writeFile(t, `{"workers": 1.5, "task_poll": "soon"}`)}, nil, []string{
			`workers: "1.5" is not an integer`, `task_poll: "soon" is not a duration`}},
		{"all together", []string{"serve", "--workers", "x", "--log-format", "xml"},
			map[string]string{"PULPO_LOG_LEVEL": "trace", "PULPO_WORKER_TTL": "soon", "PULPO_PLUGIN_POOL_SIZE": "0"}, []string{
				`--workers: "x" is not an integer`, "PULPO_WORKER_TTL:", "log_level (", "log_format (", "plugin_pool_size ("}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := tt.args
			if args == nil {
				args = []string{"serve"}
			}
			_, _, err := Load(args, envMap(tt.env))
			if err == nil {
				t.Fatal("no error")
			}
			var ue *UsageError
			if errors.As(err, &ue) {
				t.Fatalf("usage error for a configuration problem: %v", err)
			}
			lines := strings.Split(err.Error(), "\n")
			for _, w := range tt.want {
				if !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, w) }) {
					t.Errorf("no line contains %q in:\n%v", w, err)
				}
			}
			if len(lines) != len(tt.want) {
				t.Errorf("%d problems reported, want %d:\n%v", len(lines), len(tt.want), err)
			}
		})
	}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		args      []string
		help      bool   // errors.Is(err, ErrHelp)
		errText   string // in err.Error() unless help
		usageText string // in the usage
	}{
		{"no command", nil, false, "no command given", "Commands:"},
		{"help", []string{"help"}, true, "", "serve    run the REST API"},
		{"-h", []string{"-h"}, true, "", "Commands:"},
		{"help serve", []string{"help", "serve"}, true, "", "--no-content"},
		{"help unknown", []string{"help", "frob"}, false, `unknown command "frob"`, "Commands:"},
		{"serve --help", []string{"serve", "--help"}, true, "", "PULPO_WORKER_TTL; default 30s"},
		{"unknown command", []string{"frob"}, false, `unknown command "frob"`, "worker"},
		{"unknown flag", []string{"serve", "--frob"}, false, "flag provided but not defined: -frob", "Usage: pulpo serve"},
		{"flag without value", []string{"serve", "--listen"}, false, "flag needs an argument: -listen", "Usage: pulpo serve"},
		{"no-api is serve only", []string{"worker", "--no-api"}, false, "flag provided but not defined: -no-api", "Usage: pulpo worker"},
		{"positional argument", []string{"migrate", "now"}, false, `migrate: unexpected argument "now"`, "Usage: pulpo migrate"},
		{"version takes no flags", []string{"version", "--listen", "x"}, false, "flag provided but not defined", "Usage: pulpo version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := Load(tt.args, envMap(nil))
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("want *UsageError, got %v", err)
			}
			if errors.Is(err, ErrHelp) != tt.help {
				t.Fatalf("help = %v, err %v", !tt.help, err)
			}
			if !tt.help && !strings.Contains(err.Error(), tt.errText) {
				t.Errorf("error %q does not contain %q", err, tt.errText)
			}
			if !strings.Contains(ue.Usage, tt.usageText) {
				t.Errorf("usage does not contain %q:\n%s", tt.usageText, ue.Usage)
			}
		})
	}
}

func TestCommands(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"serve", "worker", "migrate", "plugins", "version"} {
		// version ignores the environment, so a bad variable must not matter.
		env := map[string]string{}
		if name == "version" {
			env["PULPO_WORKERS"] = "bad"
		}
		_, cmd, err := Load([]string{name}, envMap(env))
		if err != nil || string(cmd) != name {
			t.Errorf("%s: command %q, err %v", name, cmd, err)
		}
	}
}

func TestImmutable(t *testing.T) {
	t.Parallel()
	a, _, err := Load([]string{"serve"}, envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	b, _, _ := Load([]string{"serve"}, envMap(nil))
	a.PluginDirs[0] = "changed"
	a.AllowedChecksums[0] = "changed"
	if b.PluginDirs[0] == "changed" || b.AllowedChecksums[0] == "changed" || Default().AllowedChecksums[0] == "changed" {
		t.Fatal("two loaded configurations share a slice")
	}
	c := b.Clone()
	c.PluginDirs[0] = "changed"
	if b.PluginDirs[0] == "changed" {
		t.Fatal("Clone shares a slice")
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                                        "",
		"postgres://pulpo:secret@db:5432/pulpo":   "postgres://pulpo:xxxxx@db:5432/pulpo",
		"postgres://pulpo@db/pulpo":               "postgres://pulpo@db/pulpo",
		"host=db password=secret user=pulpo":      "host=db password=xxxxx user=pulpo",
		"host=db password = 'se cret' user=pulpo": "host=db password = xxxxx user=pulpo",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLevel(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]string{"debug": "DEBUG", "info": "INFO", "warn": "WARN", "error": "ERROR"} {
		if got := (Config{LogLevel: name}).Level().String(); got != want {
			t.Errorf("%s: %s", name, got)
		}
	}
}

// TestReadme checks that the README's configuration table names every
// environment variable and flag.
func TestReadme(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Skip("no README.md:", err)
	}
	for _, s := range settings() {
		for _, name := range []string{s.env(), "--" + s.flag()} {
			if !strings.Contains(string(data), name) {
				t.Errorf("README.md does not mention %s", name)
			}
		}
	}
}

// TestS3 loads a complete s3 configuration from the three layers and checks
// that logging it hides the secret key.
func TestS3(t *testing.T) {
	t.Parallel()
	file := writeFile(t, `{"storage": "s3", "s3_bucket": "pulp", "s3_path_style": true, "s3_secret_key": "file-secret"}`)
	c, _, err := Load([]string{"serve", "--config", file, "--s3-secret-key", "hunter2-secret", "--content-redirect=true"},
		envMap(map[string]string{"PULPO_S3_ACCESS_KEY": "AKIAEXAMPLE", "PULPO_S3_ENDPOINT": "http://127.0.0.1:9000", "PULPO_S3_PREFIX": "pulpo/"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Storage != "s3" || c.S3Bucket != "pulp" || !c.S3PathStyle || c.S3SecretKey != "hunter2-secret" || c.S3AccessKey != "AKIAEXAMPLE" ||
		c.S3Endpoint != "http://127.0.0.1:9000" || c.S3Prefix != "pulpo/" || c.S3Region != "us-east-1" || !c.ContentRedirect || c.ContentRedirectTTL != 5*time.Minute {
		t.Fatalf("loaded %+v", c)
	}
	var b strings.Builder
	slog.New(slog.NewJSONHandler(&b, nil)).Info("config", "config", c)
	if strings.Contains(b.String(), "hunter2") {
		t.Errorf("the secret key is logged: %s", b.String())
	}
	for _, want := range []string{`"s3_secret_key":"xxxxx"`, `"s3_bucket":"pulp"`, `"content_redirect":true`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("log lacks %s: %s", want, b.String())
		}
	}
}

// OpenTelemetry's standard variables fill otel_endpoint when the setting is
// not given; a bad endpoint or ratio is refused by name.
func TestOTelSettings(t *testing.T) {
	load := func(env map[string]string, args ...string) (Config, error) {
		c, _, err := Load(append([]string{"migrate"}, args...), func(k string) string { return env[k] })
		return c, err
	}
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318/"}, nil, "http://otel:4318/v1/traces"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:1/x"}, nil, "http://t:1/x"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318"}, []string{"--otel-endpoint", "https://mine/v1/traces"}, "https://mine/v1/traces"},
		{map[string]string{}, nil, ""},
	} {
		c, err := load(tc.env, tc.args...)
		if err != nil || c.OTelEndpoint != tc.want {
			t.Errorf("env %v args %v: endpoint %q, %v; want %q", tc.env, tc.args, c.OTelEndpoint, err, tc.want)
		}
	}
	for _, args := range [][]string{{"--otel-endpoint", "collector:4318"}, {"--otel-sample-ratio", "1.5"}, {"--otel-sample-ratio", "half"}} {
		if _, err := load(nil, args...); err == nil || !strings.Contains(strings.ReplaceAll(err.Error(), "-", "_"), strings.ReplaceAll(strings.TrimPrefix(args[0], "--"), "-", "_")) {
			t.Errorf("%v: %v, want an error naming the setting", args, err)
		}
	}
}
