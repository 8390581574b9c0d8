// Command file is Pulp's file plugin as a Pulpo WebAssembly plugin: files listed in a
// PULP_MANIFEST (one "relative_path,sha256,size" line per file), synced from a remote
// whose url points at the manifest, and published as a directory tree with a fresh
// PULP_MANIFEST.
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o file.wasm ./plugins/file
//
// The plugin parses and writes manifests; the host downloads, hashes, stores and serves
// every file.
package main

import (
	"encoding/json"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/sdk"
)

// Names the plugin declares.
const (
	pluginName = "file"
	// fileType names the content, repository, remote, publication and distribution types.
	fileType = "file.file"
	// defaultManifest is the file name of the manifest a publication writes by default.
	defaultManifest = "PULP_MANIFEST"
)

// File is a file.file unit: a file at a relative path with a known SHA-256. Its one
// artifact lives at RelativePath.
type File struct {
	RelativePath string `json:"relative_path" desc:"Path of the file in a publication"`
	SHA256       string `json:"sha256" desc:"SHA-256 of the file, lowercase hex"`
}

// manifestField is the "manifest" field of repositories and publications.
var manifestField = abi.Field{ //nolint:gochecknoglobals // read-only declaration
	Name: "manifest", Type: abi.TypeString,
	Description: "File name of the manifest a publication writes; null or empty writes none",
	Default:     json.RawMessage(`"` + defaultManifest + `"`),
}

func init() {
	sdk.Register(sdk.Plugin{
		Name:        pluginName,
		Version:     "0.1.0",
		Description: "Files listed in a PULP_MANIFEST, served as a directory tree",
		Types: []sdk.Type{
			sdk.ContentType[File](fileType,
				sdk.Description("A file at a relative path"),
				sdk.EndpointName("files"),
				sdk.NaturalKey("relative_path", "sha256"),
				sdk.RepoKey("relative_path"),
				sdk.OneArtifact("relative_path"),
				sdk.DigestField("sha256")),
		},
		RepositoryTypes: []abi.RepositoryType{{
			Name:         fileType,
			ContentTypes: []string{fileType},
			RemoteTypes:  []string{fileType},
			Fields: []abi.Field{
				manifestField,
				{
					Name: "autopublish", Type: abi.TypeBoolean,
					Description: "Publish every new version, with the repository's manifest",
					Default:     json.RawMessage(`false`),
				},
			},
		}},
		RemoteTypes: []abi.RemoteType{{
			Name:        fileType,
			Description: "The url points at a PULP_MANIFEST",
			Policies:    []string{abi.PolicyImmediate, abi.PolicyOnDemand, abi.PolicyStreamed},
		}},
		PublicationTypes: []abi.PublicationType{{
			Name:   fileType,
			Fields: []abi.Field{manifestField},
		}},
		DistributionTypes: []abi.DistributionType{{
			Name:                 fileType,
			Description:          "Serves the files of a publication",
			ServeFromPublication: true,
		}},
		SyncOptions: []abi.Field{{
			Name: "optimize", Type: abi.TypeBoolean,
			Description: "Skip the sync when nothing changed upstream",
			Default:     json.RawMessage(`true`),
		}},
		Sync:    syncFirstStage,
		Publish: publish,
	})
}

func main() {}
