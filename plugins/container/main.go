// Command container is Pulp's container plugin as a Pulpo WebAssembly plugin: images,
// manifest lists / OCI indexes, OCI artifacts and tags, synced from any registry that
// speaks the OCI distribution API.
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o container.wasm ./plugins/container
//
// The plugin lists tags, reads manifests and declares blobs, manifests and tags with their
// relations; the host downloads, hashes and stores every blob and manifest. Units are
// content-addressed: a blob or a manifest is its digest, and its one artifact holds its exact
// bytes, so the registry API can serve what was synced byte for byte.
package main

import (
	"context"
	"encoding/json"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/sdk"
)

// Names the plugin declares.
const (
	pluginName   = "container"
	blobType     = "container.blob"
	manifestType = "container.manifest"
	tagType      = "container.tag"
	// containerType names the repository, remote and distribution types.
	containerType = "container.container"
	// pushType is the repository type that `docker push` / `podman push` fill.
	pushType = "container.container_push"
)

// Relation names.
const (
	relBlobs      = "blobs"
	relConfig     = "config_blob"
	relListed     = "listed_manifests"
	relTaggedWith = "tagged_manifest"
)

// Blob is a container.blob unit: a layer or a config, named by its digest. Its one artifact
// is the blob, at relative path Digest.
type Blob struct {
	Digest string `json:"digest" desc:"Digest of the blob, <algorithm>:<hex>"`
}

// Manifest is a container.manifest unit: an image manifest, a manifest list / OCI index, or
// an OCI artifact manifest. Its one artifact holds the manifest's bytes exactly as the
// registry sent them (their digest is Digest), at relative path Digest.
type Manifest struct {
	Digest        string `json:"digest" desc:"Digest of the manifest's bytes, <algorithm>:<hex>"`
	SchemaVersion int    `json:"schema_version" pulpo:"required"`
	MediaType     string `json:"media_type" pulpo:"required"`
	// Type classifies the manifest as Pulp does (init_manifest_nature).
	Type string `json:"type" pulpo:"required" desc:"image, index, artifact, helm, bootable, flatpak, cosign_signature, cosign_attestation, cosign_attestation_bundle or cosign_sbom"`
	// ArtifactType is an OCI artifact's artifactType, or its config media type.
	ArtifactType        string            `json:"artifact_type,omitempty" desc:"An OCI artifact's artifactType, or else its config media type"`
	Subject             string            `json:"subject,omitempty" desc:"Digest of the manifest this one refers to (OCI 1.1 subject)"`
	Annotations         map[string]string `json:"annotations" desc:"OCI annotations of the manifest"`
	Labels              map[string]string `json:"labels" desc:"Labels of the image config"`
	Architecture        string            `json:"architecture,omitempty" desc:"From the image config, else from the index entry"`
	OS                  string            `json:"os,omitempty" desc:"From the image config, else from the index entry"`
	CompressedImageSize int64             `json:"compressed_image_size,omitempty" desc:"Sum of the sizes of the layers"`
}

// Tag is a container.tag unit: a name pointing at a manifest. Two tags of one name pointing
// at different manifests are different units; within a repository version a name is
// unique (its repo key), so re-tagging replaces the tag.
type Tag struct {
	Name   string `json:"name" desc:"The tag"`
	Digest string `json:"digest" desc:"Digest of the tagged manifest"`
}

// Platform is the platform of an index entry, kept on the listed_manifests relation.
type Platform struct {
	Architecture string   `json:"architecture,omitempty"`
	OS           string   `json:"os,omitempty"`
	OSVersion    string   `json:"os_version,omitempty"`
	OSFeatures   []string `json:"os_features,omitempty"`
	Features     []string `json:"features,omitempty"`
	Variant      string   `json:"variant,omitempty"`
}

// platformFields declares Platform's members as the relation's fields.
var platformFields = []abi.Field{ //nolint:gochecknoglobals // read-only declaration
	{Name: "architecture", Type: abi.TypeString},
	{Name: "os", Type: abi.TypeString},
	{Name: "os_version", Type: abi.TypeString},
	{Name: "os_features", Type: abi.TypeArray, Items: abi.TypeString},
	{Name: "features", Type: abi.TypeArray, Items: abi.TypeString},
	{Name: "variant", Type: abi.TypeString},
}

// enum restricts a string field of a content type to values.
func enum(field string, values ...string) sdk.TypeOption {
	return func(ct *abi.ContentType) {
		for i := range ct.Fields {
			if ct.Fields[i].Name == field {
				ct.Fields[i].Enum = values
			}
		}
	}
}

func init() {
	contentTypes := []string{blobType, manifestType, tagType}
	sdk.Register(sdk.Plugin{
		Name:        pluginName,
		Version:     "0.1.0",
		Description: "Container images, manifest lists, OCI indexes and OCI artifacts from OCI registries",
		Types: []sdk.Type{
			sdk.ContentType[Blob](blobType,
				sdk.Description("A layer or config blob"),
				sdk.EndpointName("blobs"),
				sdk.NaturalKey("digest"),
				sdk.OneArtifact("digest")),
			sdk.ContentType[Manifest](manifestType,
				sdk.Description("An image manifest, manifest list, OCI index or OCI artifact manifest"),
				sdk.EndpointName("manifests"),
				sdk.NaturalKey("digest"),
				sdk.OneArtifact("digest"),
				enum("media_type", manifestMediaTypes...),
				sdk.Relates(abi.RelationType{Name: relBlobs, To: blobType, Many: true, Description: "Layers, in manifest order (foreign layers only with include_foreign_layers)"}),
				sdk.Relates(abi.RelationType{Name: relConfig, To: blobType, Description: "The config blob"}),
				sdk.Relates(abi.RelationType{Name: relListed, To: manifestType, Many: true, Fields: platformFields, Description: "Entries of a manifest list or index, with their platform"})),
			sdk.ContentType[Tag](tagType,
				sdk.Description("A tag pointing at a manifest"),
				sdk.EndpointName("tags"),
				sdk.NaturalKey("name", "digest"),
				sdk.RepoKey("name"),
				sdk.Relates(abi.RelationType{Name: relTaggedWith, To: manifestType, Required: true})),
		},
		RepositoryTypes: []abi.RepositoryType{
			{Name: containerType, ContentTypes: contentTypes, RemoteTypes: []string{containerType}},
			{Name: pushType, ContentTypes: contentTypes},
		},
		RemoteTypes: []abi.RemoteType{{
			Name:        containerType,
			Description: "The url is the registry's (https://registry.example.org); upstream_name the repository in it",
			Policies:    []string{abi.PolicyImmediate, abi.PolicyOnDemand, abi.PolicyStreamed},
			Fields: []abi.Field{
				{Name: "upstream_name", Type: abi.TypeString, Required: true, Description: "Name of the repository on the upstream registry, e.g. library/busybox"},
				{Name: "include_tags", Type: abi.TypeArray, Items: abi.TypeString, Description: "Tags to sync: glob patterns (*, ?, [...]); all tags when empty"},
				{Name: "exclude_tags", Type: abi.TypeArray, Items: abi.TypeString, Description: "Tags not to sync: glob patterns, applied after include_tags"},
				{Name: "includes", Type: abi.TypeArray, Items: abi.TypeString, Description: "Like include_tags (pulp_container 2.28 name), and sha256: digests of manifests to sync untagged"},
				{Name: "excludes", Type: abi.TypeArray, Items: abi.TypeString, Description: "Like exclude_tags (pulp_container 2.28 name)"},
				{Name: "include_foreign_layers", Type: abi.TypeBoolean, Default: json.RawMessage(`false`), Description: "Sync foreign and non-distributable layers too"},
			},
		}},
		DistributionTypes: []abi.DistributionType{{
			Name:        containerType,
			Description: "Serves a repository's latest version, or a pinned version, through the registry API",
			Fields: []abi.Field{
				{Name: "private", Type: abi.TypeBoolean, Default: json.RawMessage(`false`), Description: "Pulling needs a user with pull permission"},
				{Name: "description", Type: abi.TypeString, Description: "Free text"},
			},
		}},
		Sync:       syncFirstStage,
		FromUpload: fromUpload,
		Routes: []sdk.Route{{
			Prefix:      "/v2/",
			Description: "OCI distribution API",
			// The host serves the registry natively with these types in these roles.
			Protocol: abi.ProtocolOCIDistribution,
			Registry: &abi.RegistryRoles{BlobType: blobType, ManifestType: manifestType, TagType: tagType,
				DistributionType: containerType, PushRepositoryType: pushType},
			Handle: handleRegistry,
		}},
	})
}

// handleRegistry answers hosts that do not serve the oci-distribution protocol natively:
// the plugin does not implement the registry itself, so that the host can tell a missing
// feature from a missing repository.
func handleRegistry(_ context.Context, r *sdk.Request) (abi.RouteResponse, error) {
	return abi.RouteResponse{}, sdk.Errorf(abi.CodeUnimplemented, "registry API %s %s needs a host serving the %s protocol", r.Method, r.Path, abi.ProtocolOCIDistribution)
}

func main() {}
