// Package kernel is the guest side of the Extism kernel ABI ("extism:host/env"): the call's
// input and output, blocks of kernel memory, the error message and kernel logs.
//
// The kernel has its own linear memory; a block is named by an i64 offset into it. Bytes
// move 8 at a time (load_u64/store_u64); the tail of a block of 8 bytes or more is one
// overlapping u64 access, so only blocks shorter than 8 bytes use the single-byte calls. The host calls reset before every export call, so no block outlives
// a call.
//
// Under GOOS=wasip1 the raw functions are WebAssembly imports; elsewhere an in-memory fake
// kernel stands in, so this copying code is tested by plain go test.
package kernel

import "encoding/binary"

// Input returns a copy of the current call's input.
func Input() []byte {
	n := inputLength()
	buf := make([]byte, n)
	i := uint64(0)
	for ; i+8 <= n; i += 8 {
		binary.LittleEndian.PutUint64(buf[i:], inputLoadU64(i))
	}
	if i < n && n >= 8 {
		// The tail as one overlapping u64 read: byte-wise reads cost a host call each.
		binary.LittleEndian.PutUint64(buf[n-8:], inputLoadU64(n-8))
		return buf
	}
	for ; i < n; i++ {
		buf[i] = byte(inputLoadU8(i))
	}
	return buf
}

// Store copies b into a new kernel block and returns its offset. An empty b gives 0, the
// kernel's null block.
func Store(b []byte) uint64 {
	n := uint64(len(b))
	if n == 0 {
		return 0
	}
	p := alloc(n)
	if p == 0 {
		panic("extism kernel: out of memory")
	}
	i := uint64(0)
	for ; i+8 <= n; i += 8 {
		storeU64(p+i, binary.LittleEndian.Uint64(b[i:]))
	}
	if i < n && n >= 8 {
		storeU64(p+n-8, binary.LittleEndian.Uint64(b[n-8:])) // overlapping tail
		return p
	}
	for ; i < n; i++ {
		storeU8(p+i, uint32(b[i]))
	}
	return p
}

// Load copies the content of block p, which the host just handed over (so length_unsafe is
// safe). It does not free p.
func Load(p uint64) []byte {
	if p == 0 {
		return nil
	}
	n := lengthUnsafe(p)
	buf := make([]byte, n)
	i := uint64(0)
	for ; i+8 <= n; i += 8 {
		binary.LittleEndian.PutUint64(buf[i:], loadU64(p+i))
	}
	if i < n && n >= 8 {
		binary.LittleEndian.PutUint64(buf[n-8:], loadU64(p+n-8)) // overlapping tail
		return buf
	}
	for ; i < n; i++ {
		buf[i] = byte(loadU8(p + i))
	}
	return buf
}

// Free releases block p; 0 is ignored.
func Free(p uint64) {
	if p != 0 {
		free(p)
	}
}

// SetOutput makes b the call's output. The kernel owns the block afterwards.
func SetOutput(b []byte) {
	outputSet(Store(b), uint64(len(b)))
}

// SetError sets the call's error message (the kernel owns the block). An empty message
// would clear the error, so it is replaced by a placeholder.
func SetError(msg string) {
	if msg == "" {
		msg = "error without message"
	}
	errorSet(Store([]byte(msg)))
}

// Kernel log levels for Log.
const (
	Trace = iota
	Debug
	Info
	Warn
	Error
)

// Log sends msg to the kernel's logger at level; the host frees the block.
func Log(level int, msg string) {
	p := Store([]byte(msg))
	if p == 0 {
		return
	}
	switch level {
	case Trace:
		logTrace(p)
	case Debug:
		logDebug(p)
	case Info:
		logInfo(p)
	case Warn:
		logWarn(p)
	default:
		logError(p)
	}
}
