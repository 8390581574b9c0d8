// Package sdk is the Go SDK for Pulpo content plugins: plain Go in, a WebAssembly plugin
// that speaks ABI v1 (abi/spec/v1.md) out.
//
// A plugin registers itself from init and leaves main empty. The SDK owns every export,
// every pointer and every JSON envelope:
//
//	type File struct {
//		RelativePath string `json:"relative_path"`
//		Digest       string `json:"digest"`
//	}
//
//	func init() {
//		sdk.Register(sdk.Plugin{
//			Name:    "file",
//			Version: "0.1.0",
//			Types: []sdk.Type{sdk.ContentType[File]("file.file",
//				sdk.NaturalKey("relative_path", "digest"), sdk.RepoKey("relative_path"),
//				sdk.OneArtifact("relative_path"))},
//			RemoteTypes: []abi.RemoteType{{Name: "file.file"}},
//			Sync:        sync,
//		})
//	}
//
//	func sync(ctx context.Context, s *sdk.Sync) error {
//		f, err := s.Fetch(ctx, s.Remote.URL, sdk.Name("PULP_MANIFEST")) // the host downloads
//		if err != nil {
//			return err
//		}
//		file, err := f.Open() // a read-only mount: normal file I/O at memory speed
//		...
//		return s.Emit(ctx, File{path, digest}, abi.DeclarativeArtifact{...}) // batched
//	}
//
//	func main() {}
//
// Build it with the standard toolchain:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o file.wasm ./plugins/file
//
// The module is marked for the ABI version of package abi (abi.Current, 1.1): it runs on
// hosts of that version and later minors, and may use what 1.1 added (Upload, and
// ReadArtifact: a bounded read of a stored artifact such as an image config).
//
// # Testing
//
// The same plugin code runs natively under go test: package sdk/sdktest drives the
// registered plugin against an in-memory host (fetch serves from a map, emitted content is
// collected and checked against the plugin's own describe). Only the thin binding in the
// wasip1 files is specific to WebAssembly.
//
// # Errors
//
// Return errors as usual. An *abi.Error (see [Errorf]) keeps its code across the ABI;
// anything else arrives at the host as code "internal" with err.Error() as the message. A
// panic is recovered and reported the same way.
//
// Package sdk imports only package abi and the standard library.
package sdk
