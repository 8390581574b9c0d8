//go:build wasip1

package kernel

// The Extism kernel imports, typed exactly as in abi/spec/v1.md ("The Extism kernel"). A
// pointer is an i64 offset into the kernel's own memory, never into the guest's.

//go:wasmimport extism:host/env alloc
func alloc(n uint64) uint64

//go:wasmimport extism:host/env free
func free(p uint64)

//go:wasmimport extism:host/env length_unsafe
func lengthUnsafe(p uint64) uint64

//go:wasmimport extism:host/env load_u8
func loadU8(p uint64) uint32

//go:wasmimport extism:host/env load_u64
func loadU64(p uint64) uint64

//go:wasmimport extism:host/env store_u8
func storeU8(p uint64, v uint32)

//go:wasmimport extism:host/env store_u64
func storeU64(p uint64, v uint64)

//go:wasmimport extism:host/env input_length
func inputLength() uint64

//go:wasmimport extism:host/env input_load_u8
func inputLoadU8(off uint64) uint32

//go:wasmimport extism:host/env input_load_u64
func inputLoadU64(off uint64) uint64

//go:wasmimport extism:host/env output_set
func outputSet(p uint64, n uint64)

//go:wasmimport extism:host/env error_set
func errorSet(p uint64)

//go:wasmimport extism:host/env log_trace
func logTrace(p uint64)

//go:wasmimport extism:host/env log_debug
func logDebug(p uint64)

//go:wasmimport extism:host/env log_info
func logInfo(p uint64)

//go:wasmimport extism:host/env log_warn
func logWarn(p uint64)

//go:wasmimport extism:host/env log_error
func logError(p uint64)
