//go:build wasip1

package sdk

import (
	"encoding/json"
	"runtime"
	"runtime/debug"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/sdk/internal/bridge"
	"github.com/pulpo/pulpo/sdk/internal/kernel"
)

// guestGCPercent is the plugin's GOGC. WebAssembly memory never shrinks, so the guest
// heap's high-water mark stays in the host for the instance's life, and the Go default of
// 100 lets the heap reach twice its live size first. 25 took a 100k-unit file sync's
// plugin memory from 22.5 to 15.2 MB and the host's peak RSS from 159 to 146 MiB at the
// same units/s (the plugin's own CPU is a small part of a sync).
const guestGCPercent = 25

func init() { debug.SetGCPercent(guestGCPercent) }

// The module's exports. Each reads the input through the kernel, runs the registered
// handler and writes the output or the error; 0 is success, 1 failure (always with an
// error message, so the host can tell a plugin error from a trap).

// abiMarker names the ABI version this SDK implements (abi.Current().Marker(); a test keeps
// the two in step). The host never calls it.
//
//go:wasmexport pulpo_abi_version_1_1
func abiMarker() {}

//go:wasmexport describe
func describeExport() int32 { return serve(bridge.Registered.Describe) }

//go:wasmexport sync_first_stage
func syncFirstStageExport() int32 { return serve(bridge.Registered.SyncFirstStage) }

//go:wasmexport publish
func publishExport() int32 { return serve(bridge.Registered.Publish) }

//go:wasmexport handle_route
func handleRouteExport() int32 { return serve(bridge.Registered.HandleRoute) }

//go:wasmexport content_from_upload
func contentFromUploadExport() int32 { return serve(bridge.Registered.FromUpload) }

func serve(h bridge.Handler) int32 {
	// Cheap insurance against the reactor GC issue seen with Go guests (go-plugin #78).
	defer runtime.Gosched()
	if h == nil {
		return fail(&abi.Error{Code: abi.CodeUnimplemented, Message: "no plugin registered (call sdk.Register from init)"})
	}
	out, err := h(&wasmHost{}, kernel.Input())
	if err != nil {
		return fail(err)
	}
	kernel.SetOutput(out)
	return 0
}

func fail(err error) int32 {
	b, merr := json.Marshal(toABI(err))
	if merr != nil {
		b = []byte(`{"code":"internal","message":"unencodable error"}`)
	}
	kernel.SetError(string(b))
	return 1
}
