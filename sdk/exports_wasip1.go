//go:build wasip1

package sdk

import (
	"encoding/json"
	"runtime"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/sdk/internal/bridge"
	"github.com/pulpo/pulpo/sdk/internal/kernel"
)

// The module's exports. Each reads the input through the kernel, runs the registered
// handler and writes the output or the error; 0 is success, 1 failure (always with an
// error message, so the host can tell a plugin error from a trap).

// abiMarker names the ABI version this SDK implements (abi.Current().Marker(); a test keeps
// the two in step). The host never calls it.
//
//go:wasmexport pulpo_abi_version_1_0
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
