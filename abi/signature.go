package abi

import (
	"slices"
	"strings"
)

// ValueType is a WebAssembly value type, encoded as in the binary format.
type ValueType byte

// Value types used by the ABI.
const (
	I32 ValueType = 0x7f
	I64 ValueType = 0x7e
	F32 ValueType = 0x7d
	F64 ValueType = 0x7c
)

// String returns the text-format name ("i32").
func (t ValueType) String() string {
	switch t {
	case I32:
		return "i32"
	case I64:
		return "i64"
	case F32:
		return "f32"
	case F64:
		return "f64"
	}
	return "unknown"
}

// Signature is a WebAssembly function type.
type Signature struct {
	Params  []ValueType
	Results []ValueType
}

// Equal reports whether s and o are the same function type.
func (s Signature) Equal(o Signature) bool {
	return slices.Equal(s.Params, o.Params) && slices.Equal(s.Results, o.Results)
}

// String renders s as "(i64, i64) -> i64"; "()" stands for no values.
func (s Signature) String() string {
	list := func(ts []ValueType) string {
		parts := make([]string, len(ts))
		for i, t := range ts {
			parts[i] = t.String()
		}
		return "(" + strings.Join(parts, ", ") + ")"
	}
	return list(s.Params) + " -> " + list(s.Results)
}

func sig(params []ValueType, results ...ValueType) Signature {
	return Signature{Params: params, Results: results}
}

var (
	none = []ValueType(nil)
	i64  = []ValueType{I64}
	i32  = []ValueType{I32}
)

// ExportSignature is the type of every callable export: () -> i32.
func ExportSignature() Signature { return sig(none, I32) }

// MarkerSignature is the type of the version marker export: () -> ().
func MarkerSignature() Signature { return sig(none) }

// HostFunctions returns the host functions of HostNamespace with their types. The map is a
// fresh copy.
func HostFunctions() map[string]Signature {
	return map[string]Signature{
		HostFetch:         sig(i64, I64),
		HostContentEmit:   sig(i64, I64),
		HostContentLookup: sig(i64, I64),
		HostArtifactStat:  sig(i64, I64),
		HostArtifactRead:  sig(i64, I64),
		HostProgress:      sig(i64, I64),
		HostLog:           sig(i64),
		HostLogEnabled:    sig(i32, I32),
		HostCancelled:     sig(none, I32),
	}
}

// KernelFunctions returns the Extism kernel functions (KernelNamespace) a plugin may import,
// with their types, as listed in spec/v1.md section "The Extism kernel". The map is a fresh
// copy.
func KernelFunctions() map[string]Signature {
	i64i64 := []ValueType{I64, I64}
	return map[string]Signature{
		"alloc":            sig(i64, I64),
		"free":             sig(i64),
		"length":           sig(i64, I64),
		"length_unsafe":    sig(i64, I64),
		"load_u8":          sig(i64, I32),
		"load_u64":         sig(i64, I64),
		"store_u8":         sig([]ValueType{I64, I32}),
		"store_u64":        sig(i64i64),
		"input_length":     sig(none, I64),
		"input_offset":     sig(none, I64),
		"input_load_u8":    sig(i64, I32),
		"input_load_u64":   sig(i64, I64),
		"input_set":        sig(i64i64),
		"output_set":       sig(i64i64),
		"output_length":    sig(none, I64),
		"output_offset":    sig(none, I64),
		"error_set":        sig(i64),
		"error_get":        sig(none, I64),
		"reset":            sig(none),
		"memory_bytes":     sig(none, I64),
		"config_get":       sig(i64, I64),
		"var_get":          sig(i64, I64),
		"var_set":          sig(i64i64),
		"http_request":     sig(i64i64, I64),
		"http_status_code": sig(none, I32),
		"http_headers":     sig(none, I64),
		"log_trace":        sig(i64),
		"log_debug":        sig(i64),
		"log_info":         sig(i64),
		"log_warn":         sig(i64),
		"log_error":        sig(i64),
		"get_log_level":    sig(none, I32),
	}
}
