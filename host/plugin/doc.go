// Package plugin loads and runs Pulpo content plugins: WebAssembly modules implementing the
// plugin ABI (abi/spec/v1.md).
//
// # Lifecycle
//
//  1. [Load] reads every *.wasm in the configured directories, serially: it checks the
//     file's SHA-256 (against a "<file>.sha256" sidecar or [Options].Expected), the ABI
//     marker, exports and imports (abi/wasmcheck, before compiling), compiles it through the
//     process-wide compilation cache, creates a first instance and calls describe, which must
//     validate. Any failure aborts Load with a [*LoadError] naming the file and the reason.
//  2. Calls: [Plugin.SyncFirstStage], [Plugin.Publish] and [Plugin.HandleRoute] take an
//     instance from the plugin's pool, give it the call's mounts and deadline, run the
//     export and return the instance, or discard it after any failure (a trap, a timeout,
//     an exit, a non-zero return with or without a message) and after [Options].MaxCalls calls.
//  3. [Registry.Close] stops new calls, waits for running ones and frees everything.
//
// Host services come from small interfaces the caller implements ([SyncHost],
// [PublishHost], [RouteHost]); package plugintest has an in-memory implementation and the
// ABI conformance runner.
//
// # Calls, deadlines and cancellation
//
// Every call runs under the caller's deadline and under [Options].CallTimeout of the guest's
// own CPU time: the clock stops while a host function runs (a fetch downloading, an emit
// waiting on a full pipeline), so a long sync or a busy machine does not cut a call short,
// while a guest that computes too long is stopped. When either runs out, wazero closes the instance mid-instruction (an
// infinite loop ends there). When
// the caller's context is cancelled, the guest's cancelled() turns 1 and host functions
// answer "cancelled" at once, and the instance is closed after [Options].CancelGrace.
// Memory is capped per plugin ([Options].MemoryPages); a guest that runs out dies and the
// call fails with [ErrTrap], whatever it wrote to stderr attached.
//
// # Mounts
//
// Instances are long-lived but each call brings its own directories: sync gets a fresh
// scratch directory, mounted read-only at /in, where fetch writes; publish gets the content
// listing in a read-only /in and a writable /out. An instance mounts a switchable file
// system at both paths and the call points it at its directories (mountFS). The caller owns
// the directories a call returns ([SyncResult].Dir, [PublishResult].Dir).
//
// # Rationale: raw wazero and a native Extism kernel, not go-sdk
//
// The guest ABI is Extism's, but the host does not use extism/go-sdk v1.7.1. Measured on
// the test plugin (2 vCPU, Go 1.26, wazero 1.12), with CloseOnContextDone on, which any host
// needs to stop a looping guest:
//
//	                        go-sdk v1.7.1     this package
//	empty handle_route call     281 µs            128 µs
//	garbage per empty call      256 KB              6 KB
//	emit (units/s)            13,000            16,600
//
// go-sdk runs the Extism kernel as a WebAssembly module and calls into it for every kernel
// access (reset, alloc, input, output, error, every byte-wise load and store) through
// ExportedFunction, which builds a new wazero call engine each time; with
// CloseOnContextDone each of those calls also starts a watcher goroutine. Its host
// functions get no user data, its log level is process-wide, HTTP and vars must be disabled
// by field values whose zero means "on" in JSON and "off" in Go, and its guest
// initialisation runs lazily inside the first call. Implementing the kernel natively (a byte
// arena per instance, ~200 lines, kernel.go) removes all of that and keeps the guest ABI
// identical, so a plugin can still be written with an Extism PDK plus the pulpo:host/v1
// imports. What remains is the cost of
// CloseOnContextDone on guest code itself (≈5× on a Go guest's JSON work; wazero #2466).
//
// One wazero runtime per plugin gives each plugin its own memory limit and host modules; the
// compilation cache ([Options].CacheDir) is shared, and plugins are compiled one at a time
// because wazero does not deduplicate parallel compiles of one module.
package plugin
