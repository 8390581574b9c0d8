package abi_test

import "github.com/pulpo/pulpo/abi"

// describeFile is what a pulp_file equivalent declares.
var describeFile = abi.Describe{
	ABIVersion:  "1.1",
	Name:        "file",
	Version:     "0.1.0",
	Description: "Files listed in a PULP_MANIFEST, served as a directory tree",
	ContentTypes: []abi.ContentType{{
		Name:         "file.file",
		Description:  "A file at a relative path",
		EndpointName: "files",
		Fields: []abi.Field{
			{Name: "relative_path", Type: abi.TypeString, Required: true, Description: "Path of the file in a publication"},
			{Name: "digest", Type: abi.TypeString, Required: true, Description: "SHA-256 of the file, lowercase hex"},
		},
		NaturalKey: []string{"relative_path", "digest"},
		RepoKey:    []string{"relative_path"},
		Artifacts:  abi.ArtifactSpec{Count: abi.ArtifactsOne, RelativePathField: "relative_path", DigestField: "digest"},
	}},
	RepositoryTypes: []abi.RepositoryType{{
		Name:         "file.file",
		ContentTypes: []string{"file.file"},
		RemoteTypes:  []string{"file.file"},
		Fields: []abi.Field{
			{Name: "manifest", Type: abi.TypeString, Description: "File name of the manifest autopublish writes", Default: raw(`"PULP_MANIFEST"`)},
			{Name: "autopublish", Type: abi.TypeBoolean, Description: "Publish every new version", Default: raw(`false`)},
		},
	}},
	RemoteTypes: []abi.RemoteType{{
		Name:        "file.file",
		Description: "The url points at a PULP_MANIFEST",
		Policies:    []string{abi.PolicyImmediate, abi.PolicyOnDemand, abi.PolicyStreamed},
	}},
	PublicationTypes: []abi.PublicationType{{
		Name:   "file.file",
		Fields: []abi.Field{{Name: "manifest", Type: abi.TypeString, Description: "File name of the manifest to write; null writes none", Default: raw(`"PULP_MANIFEST"`)}},
	}},
	DistributionTypes: []abi.DistributionType{{Name: "file.file", ServeFromPublication: true}},
	SyncOptions: []abi.Field{
		{Name: "optimize", Type: abi.TypeBoolean, Description: "Skip the sync when nothing changed upstream", Default: raw(`true`)},
	},
}

// describeContainer is what a pulp_container equivalent declares: exactly what
// plugins/container's describe returns (its tests compare the two).
var describeContainer = abi.Describe{
	ABIVersion:  "1.1",
	Name:        "container",
	Version:     "0.1.0",
	Description: "Container images, manifest lists, OCI indexes and OCI artifacts from OCI registries",
	ContentTypes: []abi.ContentType{
		{
			Name:         "container.blob",
			Description:  "A layer or config blob",
			EndpointName: "blobs",
			Fields:       []abi.Field{{Name: "digest", Type: abi.TypeString, Required: true, Description: "Digest of the blob, <algorithm>:<hex>"}},
			NaturalKey:   []string{"digest"},
			Artifacts:    abi.ArtifactSpec{Count: abi.ArtifactsOne, RelativePathField: "digest"},
		},
		{
			Name:         "container.manifest",
			Description:  "An image manifest, manifest list, OCI index or OCI artifact manifest",
			EndpointName: "manifests",
			Fields: []abi.Field{
				{Name: "digest", Type: abi.TypeString, Required: true, Description: "Digest of the manifest's bytes, <algorithm>:<hex>"},
				{Name: "schema_version", Type: abi.TypeInteger, Required: true},
				{Name: "media_type", Type: abi.TypeString, Required: true, Enum: []string{
					"application/vnd.oci.image.index.v1+json",
					"application/vnd.docker.distribution.manifest.list.v2+json",
					"application/vnd.oci.image.manifest.v1+json",
					"application/vnd.docker.distribution.manifest.v2+json",
				}},
				{Name: "type", Type: abi.TypeString, Required: true, Description: "image, index, artifact, helm, bootable, flatpak, cosign_signature, cosign_attestation, cosign_attestation_bundle or cosign_sbom"},
				{Name: "artifact_type", Type: abi.TypeString, Description: "An OCI artifact's artifactType, or else its config media type"},
				{Name: "subject", Type: abi.TypeString, Description: "Digest of the manifest this one refers to (OCI 1.1 subject)"},
				{Name: "annotations", Type: abi.TypeObject, Description: "OCI annotations of the manifest"},
				{Name: "labels", Type: abi.TypeObject, Description: "Labels of the image config"},
				{Name: "architecture", Type: abi.TypeString, Description: "From the image config, else from the index entry"},
				{Name: "os", Type: abi.TypeString, Description: "From the image config, else from the index entry"},
				{Name: "compressed_image_size", Type: abi.TypeInteger, Description: "Sum of the sizes of the layers"},
			},
			NaturalKey: []string{"digest"},
			Artifacts:  abi.ArtifactSpec{Count: abi.ArtifactsOne, RelativePathField: "digest"},
			Relations: []abi.RelationType{
				{Name: "blobs", To: "container.blob", Many: true, Description: "Layers, in manifest order (foreign layers only with include_foreign_layers)"},
				{Name: "config_blob", To: "container.blob", Description: "The config blob"},
				{Name: "listed_manifests", To: "container.manifest", Many: true, Description: "Entries of a manifest list or index, with their platform",
					Fields: []abi.Field{
						{Name: "architecture", Type: abi.TypeString},
						{Name: "os", Type: abi.TypeString},
						{Name: "os_version", Type: abi.TypeString},
						{Name: "os_features", Type: abi.TypeArray, Items: abi.TypeString},
						{Name: "features", Type: abi.TypeArray, Items: abi.TypeString},
						{Name: "variant", Type: abi.TypeString},
					}},
			},
		},
		{
			Name:         "container.tag",
			Description:  "A tag pointing at a manifest",
			EndpointName: "tags",
			Fields: []abi.Field{
				{Name: "name", Type: abi.TypeString, Required: true, Description: "The tag"},
				{Name: "digest", Type: abi.TypeString, Required: true, Description: "Digest of the tagged manifest"},
			},
			NaturalKey: []string{"name", "digest"},
			RepoKey:    []string{"name"},
			Artifacts:  abi.ArtifactSpec{Count: abi.ArtifactsNone},
			Relations:  []abi.RelationType{{Name: "tagged_manifest", To: "container.manifest", Required: true}},
		},
	},
	RepositoryTypes: []abi.RepositoryType{
		{
			Name:         "container.container",
			ContentTypes: []string{"container.blob", "container.manifest", "container.tag"},
			RemoteTypes:  []string{"container.container"},
		},
		{
			Name:         "container.container_push",
			ContentTypes: []string{"container.blob", "container.manifest", "container.tag"},
		},
	},
	RemoteTypes: []abi.RemoteType{{
		Name:        "container.container",
		Description: "The url is the registry's (https://registry.example.org); upstream_name the repository in it",
		Policies:    []string{abi.PolicyImmediate, abi.PolicyOnDemand, abi.PolicyStreamed},
		Fields: []abi.Field{
			{Name: "upstream_name", Type: abi.TypeString, Required: true, Description: "Name of the repository on the upstream registry, e.g. library/busybox"},
			{Name: "include_tags", Type: abi.TypeArray, Items: abi.TypeString, Description: "Tags to sync: glob patterns (*, ?, [...]); all tags when empty"},
			{Name: "exclude_tags", Type: abi.TypeArray, Items: abi.TypeString, Description: "Tags not to sync: glob patterns, applied after include_tags"},
			{Name: "includes", Type: abi.TypeArray, Items: abi.TypeString, Description: "Like include_tags (pulp_container 2.28 name), and sha256: digests of manifests to sync untagged"},
			{Name: "excludes", Type: abi.TypeArray, Items: abi.TypeString, Description: "Like exclude_tags (pulp_container 2.28 name)"},
			{Name: "include_foreign_layers", Type: abi.TypeBoolean, Description: "Sync foreign and non-distributable layers too", Default: raw(`false`)},
		},
	}},
	DistributionTypes: []abi.DistributionType{{
		Name:        "container.container",
		Description: "Serves a repository's latest version, or a pinned version, through the registry API",
		Fields: []abi.Field{
			{Name: "private", Type: abi.TypeBoolean, Description: "Pulling needs a user with pull permission", Default: raw(`false`)},
			{Name: "description", Type: abi.TypeString, Description: "Free text"},
		},
	}},
	Routes: []abi.Route{{Prefix: "/v2/", Description: "OCI distribution API", Protocol: abi.ProtocolOCIDistribution,
		Registry: &abi.RegistryRoles{BlobType: "container.blob", ManifestType: "container.manifest", TagType: "container.tag",
			DistributionType: "container.container", PushRepositoryType: "container.container_push"}}},
}
