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

	// MemoryPages caps each plugin's linear memory in 64 KiB pages. Default 4096 (256 MiB).
	MemoryPages uint32
	// CallTimeout bounds the CPU time the guest uses in one export call; time spent in host
	// functions (fetch, emit...) does not count. The instance is closed when it expires. A
	// caller deadline applies on its own. Default 30 minutes.
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
	// PluginLimits overrides the six limits above for single plugins, keyed by file name
	// without ".wasm" ("file" for file.wasm); zero fields keep the registry-wide value.
	PluginLimits map[string]Limits

	// IdleTimeout closes an instance that waited this long in its pool, so the memory a
	// guest grew to during a sync is given back (wasm memory never shrinks), and, with a
	// CacheDir, a plugin's compiled code once it has no instance left. Default 30 s;
	// negative: never.
	IdleTimeout time.Duration

	// Artifacts answers artifact_read (ABI 1.1) in every call but describe; nil: the
	// function answers unavailable.
	Artifacts ArtifactReader

	// Observer, when set, hears of every export call (describe at load too), e.g. to
	// count them as metrics.
	Observer CallObserver

	// Expected maps a plugin file's base name to the SHA-256 (hex) it must have. A file
	// "<name>.sha256" next to a plugin (sha256sum format) is checked too.
	Expected map[string]string
}

// Limits bound what one plugin may use; the fields mean what the Options fields of the same
// names mean. A zero field keeps the registry-wide value.
type Limits struct {
	MemoryPages   uint32
	CallTimeout   time.Duration
	CancelGrace   time.Duration
	PoolSize      int
	MaxCalls      int
	MaxFetchBytes int64
}

// over returns l with its zero fields taken from base.
func (l Limits) over(base Limits) Limits {
	if l.MemoryPages == 0 {
		l.MemoryPages = base.MemoryPages
	}
	if l.CallTimeout <= 0 {
		l.CallTimeout = base.CallTimeout
	}
	if l.CancelGrace <= 0 {
		l.CancelGrace = base.CancelGrace
	}
	if l.PoolSize <= 0 {
		l.PoolSize = base.PoolSize
	}
	if l.MaxCalls <= 0 {
		l.MaxCalls = base.MaxCalls
	}
	if l.MaxFetchBytes <= 0 {
		l.MaxFetchBytes = base.MaxFetchBytes
	}
	return l
}

// limitsFor returns the limits of the plugin in file stem (its name without ".wasm").
func (o Options) limitsFor(stem string) Limits {
	return o.PluginLimits[stem].over(Limits{
		MemoryPages: o.MemoryPages, CallTimeout: o.CallTimeout, CancelGrace: o.CancelGrace,
		PoolSize: o.PoolSize, MaxCalls: o.MaxCalls, MaxFetchBytes: o.MaxFetchBytes,
	})
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.HostVersion == "" {
		o.HostVersion = "dev"
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 30 * time.Second
	}
	l := Limits{
		MemoryPages: o.MemoryPages, CallTimeout: o.CallTimeout, CancelGrace: o.CancelGrace,
		PoolSize: o.PoolSize, MaxCalls: o.MaxCalls, MaxFetchBytes: o.MaxFetchBytes,
	}.over(Limits{
		MemoryPages:   4096,
		CallTimeout:   30 * time.Minute,
		CancelGrace:   5 * time.Second,
		PoolSize:      2 * runtime.GOMAXPROCS(0),
		MaxCalls:      10_000,
		MaxFetchBytes: 1 << 30,
	})
	o.MemoryPages, o.CallTimeout, o.CancelGrace = l.MemoryPages, l.CallTimeout, l.CancelGrace
	o.PoolSize, o.MaxCalls, o.MaxFetchBytes = l.PoolSize, l.MaxCalls, l.MaxFetchBytes
	return o
}

// CallObserver records plugin calls. plugin is the name from describe (the file's base
// name for describe itself); err is the call's error, nil on success.
type CallObserver interface {
	PluginCall(plugin, export string, elapsed time.Duration, err error)
}
