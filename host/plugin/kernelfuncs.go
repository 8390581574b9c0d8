package plugin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/pulpo/pulpo/abi"
)

// errKernelOutsideCall is the trap of a kernel function called outside an export call (from
// a start function, say).
var errKernelOutsideCall = errors.New("extism kernel used outside a plugin call")

func kernelFrom(ctx context.Context) *kernel {
	if cs := callFrom(ctx); cs != nil && cs.kernel != nil {
		return cs.kernel
	}
	panic(errKernelOutsideCall)
}

// instantiateKernel defines the "extism:host/env" module in rt: every function of
// abi.KernelFunctions, natively. Extism's own HTTP, vars and config are off: http_request
// and var_set trap with a message pointing at pulpo:host/v1, config_get and var_get find
// nothing.
func (p *Plugin) instantiateKernel(ctx context.Context, rt wazero.Runtime) error {
	b := rt.NewHostModuleBuilder(abi.KernelNamespace)
	sigs := abi.KernelFunctions()
	def := func(name string, fn func(ctx context.Context, stack []uint64)) {
		sig := sigs[name]
		b.NewFunctionBuilder().
			WithGoFunction(api.GoFunc(fn), valueTypes(sig.Params), valueTypes(sig.Results)).
			Export(name)
		delete(sigs, name)
	}
	def("alloc", func(ctx context.Context, s []uint64) { s[0] = kernelFrom(ctx).alloc(s[0]) })
	def("free", func(ctx context.Context, s []uint64) { kernelFrom(ctx).freeBlock(s[0]) })
	def("length", func(ctx context.Context, s []uint64) { s[0] = kernelFrom(ctx).length(s[0]) })
	def("length_unsafe", func(ctx context.Context, s []uint64) { s[0] = kernelFrom(ctx).length(s[0]) })
	def("load_u8", func(ctx context.Context, s []uint64) { s[0] = uint64(kernelFrom(ctx).loadU8(s[0])) })
	def("load_u64", func(ctx context.Context, s []uint64) { s[0] = kernelFrom(ctx).loadU64(s[0]) })
	def("store_u8", func(ctx context.Context, s []uint64) { kernelFrom(ctx).storeU8(s[0], uint32(s[1])) })
	def("store_u64", func(ctx context.Context, s []uint64) { kernelFrom(ctx).storeU64(s[0], s[1]) })
	def("input_length", func(ctx context.Context, s []uint64) { s[0] = kernelFrom(ctx).inLen })
	def("input_offset", func(ctx context.Context, s []uint64) { s[0] = kernelFrom(ctx).inOff })
	def("input_load_u8", func(ctx context.Context, s []uint64) { s[0] = uint64(kernelFrom(ctx).inputLoadU8(s[0])) })
	def("input_load_u64", func(ctx context.Context, s []uint64) { s[0] = kernelFrom(ctx).inputLoadU64(s[0]) })
	def("input_set", func(ctx context.Context, s []uint64) {
		k := kernelFrom(ctx)
		k.inOff, k.inLen = s[0], s[1]
	})
	def("output_set", func(ctx context.Context, s []uint64) {
		k := kernelFrom(ctx)
		k.bytes(s[0], s[1]) // bounds check now, not after the call
		k.outOff, k.outLen = s[0], s[1]
	})
	def("output_length", func(ctx context.Context, s []uint64) { s[0] = kernelFrom(ctx).outLen })
	def("output_offset", func(ctx context.Context, s []uint64) { s[0] = kernelFrom(ctx).outOff })
	def("error_set", func(ctx context.Context, s []uint64) { kernelFrom(ctx).errOff = s[0] })
	def("error_get", func(ctx context.Context, s []uint64) { s[0] = kernelFrom(ctx).errOff })
	def("reset", func(ctx context.Context, s []uint64) { kernelFrom(ctx).reset() })
	def("memory_bytes", func(ctx context.Context, s []uint64) { s[0] = uint64(len(kernelFrom(ctx).mem)) })
	def("config_get", func(ctx context.Context, s []uint64) { s[0] = 0 })
	def("var_get", func(ctx context.Context, s []uint64) { s[0] = 0 })
	def("var_set", func(ctx context.Context, s []uint64) {
		panic(errors.New("extism vars are disabled in Pulpo: plugin instances share no state"))
	})
	def("http_request", func(ctx context.Context, s []uint64) {
		panic(fmt.Errorf("extism http_request is disabled in Pulpo: use %s.%s", abi.HostNamespace, abi.HostFetch))
	})
	def("http_status_code", func(ctx context.Context, s []uint64) { s[0] = 0 })
	def("http_headers", func(ctx context.Context, s []uint64) { s[0] = 0 })
	for name, level := range map[string]slog.Level{
		"log_trace": slog.LevelDebug - 4, "log_debug": slog.LevelDebug, "log_info": slog.LevelInfo,
		"log_warn": slog.LevelWarn, "log_error": slog.LevelError,
	} {
		def(name, func(ctx context.Context, s []uint64) {
			k := kernelFrom(ctx)
			msg, _ := k.block(s[0])
			k.freeBlock(s[0])
			if p.log.Enabled(ctx, level) {
				p.log.Log(ctx, level, string(truncate(msg, abi.MaxLogBytes)), "source", "extism_kernel")
			}
		})
	}
	def("get_log_level", func(ctx context.Context, s []uint64) {
		s[0] = 0x7fffffff // off
		for _, l := range []int32{abi.LevelTrace, abi.LevelDebug, abi.LevelInfo, abi.LevelWarn, abi.LevelError} {
			if p.log.Enabled(ctx, slogLevel(l)) {
				s[0] = uint64(l)
				break
			}
		}
	})
	if len(sigs) != 0 {
		return fmt.Errorf("kernel functions without an implementation: %v", sigs)
	}
	_, err := b.Instantiate(ctx)
	return err
}

func valueTypes(ts []abi.ValueType) []api.ValueType {
	out := make([]api.ValueType, len(ts))
	for i, t := range ts {
		out[i] = api.ValueType(t)
	}
	return out
}
