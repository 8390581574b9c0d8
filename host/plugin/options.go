package plugin

import (
	"io"
	"log/slog"
	"runtime"
	"time"
)

// Options configure Load. The zero value of each field means its documented default.
type Options struct {
	// Dirs are scanned in order for *.wasm files: typically the operator's plugin folder and
	// the bundled build output. A directory that does not exist is skipped.
	Dirs []string
	// CacheDir holds wazero's compilation cache, shared by every plugin of the process; a
	// restart then compiles a Go plugin in ~40 ms instead of ~1 s. Empty: in memory only.
	// The directory must be writable only by the host (the cache is executable code).
	CacheDir string
	// ScratchDir is where per-call mount directories are created. Default os.TempDir().
	ScratchDir string
	// Logger receives load events, discarded instances and plugin log records. Default:
	// discard.
	Logger *slog.Logger
	// HostVersion is reported to plugins in describe. Default "dev".
	HostVersion string

	// MemoryPages caps each plugin's memory in 64 KiB pages (its WebAssembly runtime as a
	// whole: guest and Extism kernel). Default 4096 (256 MiB).
	MemoryPages uint32
	// CallTimeout bounds one export call; the instance is closed when it expires. A caller
	// deadline that comes sooner wins. Default 30 minutes.
	CallTimeout time.Duration
	// CancelGrace is how long a call may go on after its context is cancelled: cancelled()
	// answers 1 and host functions fail with code cancelled at once, the instance is closed
	// when the grace ends. Default 5 s.
	CancelGrace time.Duration
	// PoolSize bounds the instances of one plugin (each ≈5 MB for a Go plugin). Default
	// 2×GOMAXPROCS.
	PoolSize int
	// MaxCalls retires an instance after this many calls. Default 10,000.
	MaxCalls int
	// MaxFetchBytes caps one fetched body. Default 1 GiB.
	MaxFetchBytes int64

	// Expected maps a plugin file's base name to the SHA-256 (hex) it must have. A file
	// "<name>.sha256" next to a plugin (sha256sum format) is checked too.
	Expected map[string]string
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.HostVersion == "" {
		o.HostVersion = "dev"
	}
	if o.MemoryPages == 0 {
		o.MemoryPages = 4096
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 30 * time.Minute
	}
	if o.CancelGrace <= 0 {
		o.CancelGrace = 5 * time.Second
	}
	if o.PoolSize <= 0 {
		o.PoolSize = 2 * runtime.GOMAXPROCS(0)
	}
	if o.MaxCalls <= 0 {
		o.MaxCalls = 10_000
	}
	if o.MaxFetchBytes <= 0 {
		o.MaxFetchBytes = 1 << 30
	}
	return o
}
